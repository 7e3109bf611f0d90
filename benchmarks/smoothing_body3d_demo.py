"""Does temporal smoothing help ``wsgcn lift`` on body3d_demo.mp4? none / one-euro / butterworth.

The clip is Human3.6M S11 "WalkDog 1", camera 60457274, 50 fps (see ``body3d_demo.py``).
The 2D is detected once (or read from a cache, see ``world_body3d_demo.clip_2d``); then
for each ``--smooth`` kind, without and with the temporal refiner (pipeline
``body17`` with ``--no-refine`` and with the refiner, its default), the stages after the detector run as ``lift`` runs
them (:meth:`wsgcn_cli.pipeline.Pipeline.run`: One-Euro on the 2D in the stream,
Butterworth on the 3D after it) and the 3D is scored against the ground truth (mm,
camera coordinates, all 17 joints root-relative): MPJPE, P-MPJPE, and the acceleration
error (mm / frame^2, :func:`wsgcn_cli.metrics.acceleration_error`, over frames whose
neighbours have a pose too); ``limbs12`` as in ``lift_body3d_demo.py``.

``sweep`` (without the refiner): the Butterworth cutoff and the One-Euro parameters
tried to choose the pipelines' defaults (chosen on this one clip: a small, honest sample).

    python benchmarks/smoothing_body3d_demo.py [--keypoints CACHE.npz]

Writes ``benchmarks/results/smoothing_body3d_demo.json`` (``--out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from body3d_demo import REPO, SHARED, ground_truth  # beside this script
from lift_body3d_demo import scores
from world_body3d_demo import clip_2d


def measure(pred_m, gt_mm) -> dict:
    """All-17 MPJPE / P-MPJPE / acceleration error and limbs12 of (T, 17, 3) metres."""
    import numpy as np

    from wsgcn_cli import metrics

    pred = pred_m.astype(np.float64) * 1000.0
    r = scores(pred, gt_mm)
    ok = np.isfinite(pred).all(axis=(1, 2))
    acc = metrics.acceleration_error(np.nan_to_num(pred), gt_mm)
    acc_ok = ok[:-2] & ok[1:-1] & ok[2:]
    return {"frames": r["frames"], "mpjpe_mm": r["all17"]["mpjpe_mm"], "p_mpjpe_mm": r["all17"]["p_mpjpe_mm"],
            "accel_error_mm_per_frame2": float(acc[acc_ok].mean()), "limbs12": r["limbs12"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keypoints", default=None, help="the clip's raw 2D (.npz) instead of the cache or detecting")
    p.add_argument("--data", default=str(SHARED / "h36m"))
    p.add_argument("--work", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-sweep", action="store_true")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "smoothing_body3d_demo.json"))
    args = p.parse_args()

    from wsgcn_cli import pipeline as pipelines
    from wsgcn_cli.io.atomic import write_json
    from wsgcn_cli.pipeline import Pipeline
    from wsgcn_cli.smoothing import KINDS, butterworth

    gt_mm, _, _ = ground_truth(Path(args.data))
    raw = clip_2d(Pipeline.from_file("body17", device=args.device), args.keypoints, args.work)
    results, options = {}, {}
    for name, refine in (("body17", False), ("body17", True)):
        for kind in KINDS:
            pipe = Pipeline.from_file(name, device=args.device, refine=refine, smooth=kind)
            options[kind] = vars(pipe.smoothing)
            r = measure(pipe.run(raw, whole_clip=True).keypoints_3d, gt_mm)
            results[f"{kind}{' + refine' if refine else ''}"] = r
            print(f"{kind:12s} refine={refine!s:5s} MPJPE {r['mpjpe_mm']:6.2f} P-MPJPE {r['p_mpjpe_mm']:6.2f} "
                  f"accel {r['accel_error_mm_per_frame2']:5.2f}", flush=True)
    sweep = {}
    if not args.no_sweep:
        base = Pipeline.from_file("body17", device=args.device, smooth="none", refine=False).run(
            raw, whole_clip=True).keypoints_3d
        for cutoff in (2.0, 3.0, 4.0, 6.0, 8.0, 10.0):
            r = measure(butterworth(base, raw.fps, cutoff, 4), gt_mm)
            sweep[f"butterworth cutoff_hz={cutoff:g} order=4"] = r
            print(f"butterworth {cutoff:4.1f} Hz  MPJPE {r['mpjpe_mm']:6.2f} accel {r['accel_error_mm_per_frame2']:5.2f}",
                  flush=True)
        for min_cutoff, beta in ((0.5, 1.0), (1.0, 1.0), (2.0, 1.0), (1.0, 0.3), (1.0, 3.0), (1.0, 10.0)):
            spec = pipelines.load("body17", kind="lift")
            spec["smoothing"] = {**spec.get("smoothing", {}), "kind": "one-euro", "min_cutoff_hz": min_cutoff,
                                 "beta": beta}
            r = measure(Pipeline.from_spec(spec, device=args.device, refine=False).run(raw, whole_clip=True).keypoints_3d,
                        gt_mm)
            sweep[f"one-euro min_cutoff_hz={min_cutoff:g} beta={beta:g}"] = r
            print(f"one-euro {min_cutoff:g} Hz beta {beta:g}  MPJPE {r['mpjpe_mm']:6.2f} "
                  f"accel {r['accel_error_mm_per_frame2']:5.2f}", flush=True)
    write_json(args.out, {"clip": "body3d_demo.mp4 (H36M S11 WalkDog 1, camera 60457274, frames 0-398, 50 fps)",
                          "metrics": "all 17 joints root-relative, mm; acceleration error mm/frame^2",
                          "smoothing_options": options, "results": results, "sweep": sweep})


if __name__ == "__main__":
    main()
