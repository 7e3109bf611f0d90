"""Human3.6M effect of the temporal LSTM refiner: lifter alone vs lifter + refiner.

The lifter and the refiner are those of a lift pipeline (``--pipeline``, default
``body17``, built with :meth:`wsgcn_cli.pipeline.Pipeline.from_file`; ``--lifter``,
``--refiner``, ``--window``, ``--overlap`` and ``--flip-test`` override its tables).
For each 2D source (projected ground truth ``gt``, Stacked Hourglass ``sh``), lifts
S9 and S11 (all four cameras by default) with the lifter, refines every sequence
(subject / take / camera, frames in order) with the refiner, and reports MPJPE
(Protocol 1), P-MPJPE (Protocol 2), MPJVE (mm/frame) and acceleration error
(mm/frame²), per action then averaged over actions, at the refiner's training frame
rate (50 fps / its ``frame_stride``) unless ``--stride`` says otherwise. Our copy lacks
the 3D of S9 "Discussion 1" (noted in the JSON). Refiner architecture: 3D Human Pose
Machines (Wang et al., TPAMI 2019 / CVPR 2018).

On ``../shared/data/videos/body3d_demo.mp4`` (Human3.6M S11 "WalkDog 1", 50 fps; see
``benchmarks/body3d_demo.py``) it compares ``wsgcn lift`` and ``wsgcn lift --refine`` with
the pipeline file (the same BlazePose 2D, read back with ``--keypoints``) against the ground truth, and times both whole commands (overlay video
included) to give the refiner's share of ``lift`` time.

    python benchmarks/refiner_h36m.py [--pipeline body17] [--lifter WEIGHTS] [--refiner WEIGHTS]
        [--data DIR] [--stride N]

Writes ``benchmarks/results/refiner_h36m.json`` (atomically).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from body3d_demo import REPO, SHARED, VIDEO, ground_truth  # beside this script


def body3d_demo(pipeline: str, data_root: Path, work: Path, rounds: int = 2) -> dict:
    """Errors and wall time of ``lift`` and ``lift --refine`` with ``pipeline`` on the clip."""
    import time

    import numpy as np

    from wsgcn_cli import api, metrics

    gt3d, _, _ = ground_truth(data_root)
    first = api.lift(VIDEO, pipeline=pipeline, out_dir=work / "2d", video=False, overwrite=True, quiet=True)
    keypoints = first["outputs"]["npz"]
    result = {}
    for name, refine in (("lift", False), ("lift_refine", True)):
        r = api.lift(VIDEO, pipeline=pipeline, out_dir=work / name, keypoints=keypoints, refine=refine, video=False,
                     overwrite=True, quiet=True)
        pred = np.load(r["outputs"]["npz"])["keypoints_3d"].astype(np.float64) * 1000.0
        ok = np.isfinite(pred).all(axis=(1, 2))
        result[name] = {"mpjpe_mm": float(metrics.mpjpe(pred[ok], gt3d[ok]).mean()),
                        "p_mpjpe_mm": float(metrics.p_mpjpe(pred[ok], gt3d[ok]).mean()),
                        "mpjve_mm": float(np.nanmean(metrics.mpjve(pred, gt3d))),
                        "accel_mm": float(np.nanmean(metrics.acceleration_error(pred, gt3d))),
                        "frames": int(ok.sum())}
    seconds = {"lift": [], "lift_refine": []}
    for _ in range(rounds):  # whole commands from the video, overlay included, alternated
        for name, refine in (("lift", False), ("lift_refine", True)):
            t0 = time.perf_counter()
            api.lift(VIDEO, pipeline=pipeline, out_dir=work / "timed", refine=refine, overwrite=True, quiet=True)
            seconds[name].append(time.perf_counter() - t0)
    result["seconds"] = seconds
    result["refine_cost_percent"] = 100.0 * (min(seconds["lift_refine"]) / min(seconds["lift"]) - 1.0)
    result["units"] = "mm; MPJVE mm/frame and acceleration mm/frame^2 at 50 fps"
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="body17", help="lift pipeline with a [refiner] table")
    parser.add_argument("--lifter", default=None, help="lifter weights (default: the pipeline's)")
    parser.add_argument("--refiner", default=None, help="refiner weights (default: the pipeline's)")
    parser.add_argument("--data", default=None)
    parser.add_argument("--stride", type=int, default=None, help="frame stride (default: the refiner's)")
    parser.add_argument("--cameras", nargs="+", default=None)
    parser.add_argument("--sources", nargs="+", default=["gt", "sh"])
    parser.add_argument("--window", type=int, default=None)
    parser.add_argument("--overlap", type=int, default=None)
    parser.add_argument("--cache", default=str(REPO / "cache" / "refiner"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--flip-test", action=argparse.BooleanOptionalAction, default=None,
                        help="refiner test-time flip augmentation (default: the pipeline's)")
    parser.add_argument("--no-video", action="store_true", help="skip body3d_demo.mp4")
    parser.add_argument("--card", action="store_true", help="also write the refiner's model card from these results")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "refiner_h36m.json"))
    args = parser.parse_args(argv)

    from wsgcn_cli.data import h36m
    from wsgcn_cli.errors import WsgcnError
    from wsgcn_cli.io.atomic import write_json
    from wsgcn_cli.pipeline import Pipeline, load, resolve_path
    from wsgcn_cli.train.refine import evaluate_refined

    try:
        spec = load(args.pipeline, kind="lift")
        overrides = {"weights": args.refiner, "window": args.window, "overlap": args.overlap,
                     "flip_test": args.flip_test}
        spec["refiner"] = {**spec.get("refiner", {}), **{k: v for k, v in overrides.items() if v is not None}}
        pipe = Pipeline.from_spec(spec, device=args.device, refine=True, lifter_weights=args.lifter)
        lifter, refiner = pipe.lifter, pipe.refiner
        for warning in pipe.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        results = {}
        for source in args.sources:
            r = evaluate_refined(lifter, refiner, source, args.data, stride=args.stride,
                                 cameras=tuple(args.cameras or h36m.CAMERAS), cache=args.cache)
            results[source] = r
            for key in ("lifter", "refined"):
                m = r[key]
                print(f"2D {source} {key:8s}: MPJPE {m['mpjpe_mm']:6.2f} mm, P-MPJPE {m['p_mpjpe_mm']:6.2f} mm, "
                      f"MPJVE {m['mpjve_mm']:5.2f} mm/frame, accel {m['accel_mm']:5.2f} mm/frame² "
                      f"({r['frames']} frames, {r['fps']:g} fps)", flush=True)
            print(f"2D {source} refiner cost: {r['refine_ms_per_frame']:.3f} ms/frame", flush=True)
        if not args.no_video and VIDEO.is_file():
            import tempfile

            with tempfile.TemporaryDirectory() as work:
                clip = body3d_demo(spec["path"], Path(args.data) if args.data else SHARED / "h36m", Path(work))
            for key in ("lift", "lift_refine"):
                m = clip[key]
                print(f"body3d_demo {key:11s}: MPJPE {m['mpjpe_mm']:6.2f} mm, P-MPJPE {m['p_mpjpe_mm']:6.2f} mm, "
                      f"MPJVE {m['mpjve_mm']:5.2f} mm/frame, accel {m['accel_mm']:5.2f} mm/frame²", flush=True)
            print(f"body3d_demo: --refine costs {clip['refine_cost_percent']:+.1f} % of lift time", flush=True)
            results["body3d_demo"] = clip
        refiner_path = resolve_path(spec["refiner"]["weights"], spec)
        report = {
            "pipeline": pipe.name, "lifter": pipe.lifter_path.name, "lifter_sha256": lifter.sha256,
            "refiner": refiner_path.name, "refiner_sha256": refiner.sha256,
            "refiner_trained_on_this_lifter": refiner.lifter_matches,
            "window": refiner.window, "overlap": refiner.overlap, "refiner_flip_test": refiner.flip_test,
            "results": results,
        }
        write_json(args.out, report)
        if args.card:
            print(f"wrote {write_card(refiner_path, report)}")
    except WsgcnError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def card_markdown(report: dict) -> str:
    """The benchmark's results as the Markdown of a model card."""
    res = report["results"]
    lines = []
    for source, label in (("sh", "Stacked-Hourglass 2D"), ("gt", "ground-truth 2D")):
        if source not in res:
            continue
        r = res[source]
        lines += [f"Human3.6M S9/S11, {label}, cameras {', '.join(r['cameras'])}, {r['fps']:g} fps, "
                  f"{r['frames']} frames, lifter `{report['lifter']}` (flip test), window {r['window']}, "
                  f"overlap {r['overlap']}, refiner flip test {'on' if report.get('refiner_flip_test') else 'off'}; "
                  "per-action averages:", "",
                  "| | MPJPE (mm) | P-MPJPE (mm) | MPJVE (mm/frame) | accel. error (mm/frame²) |",
                  "|---|---:|---:|---:|---:|"]
        for key in ("lifter", "refined"):
            m = r[key]
            lines.append(f"| {'lifter alone' if key == 'lifter' else 'lifter + refiner'} | {m['mpjpe_mm']:.2f} | "
                         f"{m['p_mpjpe_mm']:.2f} | {m['mpjve_mm']:.2f} | {m['accel_mm']:.2f} |")
        lo, hi = r["lifter"], r["refined"]
        lines += ["", f"MPJPE {100 * (hi['mpjpe_mm'] / lo['mpjpe_mm'] - 1):+.1f} %, acceleration error "
                  f"{100 * (hi['accel_mm'] / lo['accel_mm'] - 1):+.1f} %; refining costs "
                  f"{r['refine_ms_per_frame']:.3f} ms per frame.", ""]
    if "body3d_demo" in res:
        b = res["body3d_demo"]
        lines += ["`body3d_demo.mp4` (Human3.6M S11 \"WalkDog 1\", 50 fps, BlazePose full):", "",
                  "| command | MPJPE (mm) | P-MPJPE (mm) | MPJVE (mm/frame) | accel. error (mm/frame²) |",
                  "|---|---:|---:|---:|---:|"]
        for key, label in (("lift", "`wsgcn lift`"), ("lift_refine", "`wsgcn lift --refine`")):
            m = b[key]
            lines.append(f"| {label} | {m['mpjpe_mm']:.2f} | {m['p_mpjpe_mm']:.2f} | {m['mpjve_mm']:.2f} | "
                         f"{m['accel_mm']:.2f} |")
        lines += ["", f"Whole `lift` with the overlay video: {min(b['seconds']['lift']):.1f} s, with `--refine` "
                  f"{min(b['seconds']['lift_refine']):.1f} s ({b['refine_cost_percent']:+.1f} %)."]
    return "\n".join(lines)


def write_card(weights: Path, report: dict) -> Path:
    from wsgcn_cli.model_card import write_stage_card

    return write_stage_card(
        weights, "Temporal refiner: two bidirectional LSTM layers over windows of the lifter's 3D and 2D "
        "(3D Human Pose Machines, Wang et al.), trained on the lifter's own Human3.6M outputs.",
        card_markdown(report),
        {"epoch": "epoch", "lifter_mpjpe_mm": "train lifter (mm)", "mpjpe_mm": "train refined (mm)",
         "val_sh_lifter_mm": "val SH lifter (mm)", "val_sh_mm": "val SH refined (mm)",
         "val_sh_lifter_mpjve_mm": "val SH lifter MPJVE", "val_sh_mpjve_mm": "val SH refined MPJVE"})


if __name__ == "__main__":
    sys.exit(main())
