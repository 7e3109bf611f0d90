"""Transductive check of ``wsgcn finetune``: adapt on S9/S11 Stacked-Hourglass 2D, score on S9/S11.

The lifter adapts to the test subjects' 2D alone (no 3D is read by the adaptation),
exactly as ``wsgcn finetune`` does with a user's clips: each Human3.6M test sequence
(subject / take / camera) becomes one clip, a wsgcn keypoint ``.npz`` of its
Stacked-Hourglass 2D (H36M-17, pixels; frames without a detection are NaN) at
``50 / stride`` fps. Intrinsics: one focal length for all clips, the mean of the four
cameras' (they differ by < 0.5 %), principal point at the image centre (the real ones
are 10-20 px away), no distortion: what the command knows about uncalibrated footage.

Before and after, the lifter is scored on the same frames with the protocol of
``wsgcn eval`` (:func:`wsgcn_cli.evaluate.evaluate`: MPJPE and P-MPJPE in mm, per
action then averaged; Stacked-Hourglass and ground-truth 2D input), and on the
finetune's held-out chunks alone, which it never trained on.

    python benchmarks/finetune_h36m_transductive.py [--weights weights/semgcn_nl_h36m_det2d.safetensors]
        [--stride 5] [--epochs 20] [--data DIR] [--work DIR]

Writes ``benchmarks/results/finetune_h36m_transductive.json`` (atomically).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

from body3d_demo import REPO, SHARED  # beside this script


def write_clips(data, stride: int, folder: Path) -> list[Path]:
    """One keypoint .npz per sequence of ``data`` (Stacked-Hourglass 2D); returns the paths."""
    import numpy as np

    from wsgcn_cli.data import h36m
    from wsgcn_cli.train.refine import sequence_bounds

    paths = []
    for a, b in sequence_bounds(data.sequence):
        kp = data.kp2d_sh[a:b]
        name = data.sequences[data.sequence[a]].replace("/", "_").replace(" ", "-")
        path = folder / f"{name}.npz"
        t = np.arange(b - a)
        np.savez(path, keypoints_2d=kp.astype(np.float32),
                 scores=np.isfinite(kp).all(-1).astype(np.float32), times=t * stride / h36m.FPS,
                 fps=np.float64(h36m.FPS / stride), image_size=data.image_size[a].astype(np.int32),
                 layout=np.array("h36m17"))
        paths.append(path)
    return paths


def scores(lifter, data, held=None) -> dict:
    """``wsgcn eval`` numbers on ``data`` (optionally only the rows in ``held``) for SH and GT 2D."""
    from wsgcn_cli.data import h36m
    from wsgcn_cli.evaluate import evaluate

    sub = data if held is None else h36m.H36MSamples(
        *(getattr(data, f)[held] for f in ("pose3d", "kp2d_gt", "kp2d_sh", "image_size", "subject", "action",
                                           "camera", "sequence", "frame")), data.subjects, data.sequences)
    out = {}
    for source in ("sh", "gt"):
        r = evaluate(lifter, source=source, data=sub)
        out[source] = {k: r[k] for k in ("mpjpe_mm", "p_mpjpe_mm", "n_mpjpe_mm", "frames")}
        out[source]["per_action"] = {a: {k: v[k] for k in ("mpjpe_mm", "p_mpjpe_mm")}
                                     for a, v in r["per_action"].items()}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(REPO / "weights" / "semgcn_nl_h36m_det2d.safetensors"))
    parser.add_argument("--data", default=str(SHARED / "h36m"))
    parser.add_argument("--stride", type=int, default=5, help="frame stride of the clips (5: 10 fps, 105k frames)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--work", default=None, help="folder for the clips and adapted weights (default: temporary)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "finetune_h36m_transductive.json"))
    args = parser.parse_args(argv)

    import numpy as np

    from wsgcn_cli import weights as wio
    from wsgcn_cli.camera import load_h36m_cameras
    from wsgcn_cli.data import h36m
    from wsgcn_cli.errors import WsgcnError
    from wsgcn_cli.io.atomic import write_json
    from wsgcn_cli.lifter import Lifter
    from wsgcn_cli.train.finetune import FinetuneConfig, finetune, split_holdout
    from wsgcn_cli.train.refine import sequence_bounds

    t_start = time.time()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="wsgcn-ft-h36m-"))
    (work / "clips").mkdir(parents=True, exist_ok=True)
    try:
        data = h36m.load(h36m.TEST_SUBJECTS, args.data, args.stride, with_sh=True)
        cams = load_h36m_cameras(Path(args.data) / "h36m_cameras.json")
        focal = float(np.mean([c.f.mean() for (s, _), c in cams.items() if s in h36m.TEST_SUBJECTS]))
        clips = write_clips(data, args.stride, work / "clips")
        cfg = FinetuneConfig()
        held = np.zeros(len(data), bool)  # the finetune's held-out chunks, per clip as it cuts them
        for a, b in sequence_bounds(data.sequence):
            held[a:b] = split_holdout(b - a, cfg.holdout, max(50, 2 * cfg.window))
        base = Lifter.from_weights(args.weights, device=args.device)
        before = {"all": scores(base, data), "heldout": scores(base, data, held)}
        print(f"base: SH MPJPE {before['all']['sh']['mpjpe_mm']:.2f} / P-MPJPE {before['all']['sh']['p_mpjpe_mm']:.2f} mm",
              flush=True)
        out = work / "adapted.safetensors"
        t0 = time.time()
        r = finetune(clips, args.weights, out, focal=focal, epochs=args.epochs, data=args.data, overwrite=True,
                     device=args.device, quiet=True, command="benchmarks/finetune_h36m_transductive.py")
        ft_wall = time.time() - t0
        adapted = Lifter.from_weights(out, device=args.device)
        after = {"all": scores(adapted, data), "heldout": scores(adapted, data, held)}
    except WsgcnError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for name, res in (("base", before), ("adapted", after)):
        for part in ("all", "heldout"):
            s, g = res[part]["sh"], res[part]["gt"]
            print(f"{name:8s} {part:8s}: SH 2D MPJPE {s['mpjpe_mm']:6.2f} / P-MPJPE {s['p_mpjpe_mm']:6.2f} mm, "
                  f"GT 2D {g['mpjpe_mm']:6.2f} / {g['p_mpjpe_mm']:6.2f} mm ({s['frames']} frames)", flush=True)
    print(f"held-out reprojection {r['heldout_px']['base']:.2f} -> {r['heldout_px']['best']:.2f} px "
          f"(epoch {r['heldout_px']['best_epoch']} of {r['epochs_run']}), finetune {ft_wall / 60:.1f} min", flush=True)
    _, meta = wio.load(out)
    report = {
        "base_weights": Path(args.weights).name, "base_sha256": wio.sha256(args.weights),
        "subjects": list(h36m.TEST_SUBJECTS), "stride": args.stride, "fps": h36m.FPS / args.stride,
        "clips": len(clips), "frames": int(len(data)), "heldout_frames": int(held.sum()),
        "focal_px": focal, "principal_point": "image centre",
        "finetune": {"config": meta["finetune"]["config"], "heldout_reprojection_px": r["heldout_px"],
                     "epochs_run": r["epochs_run"], "stopped_early": r["stopped_early"], "history": r["history"],
                     "adapted_parameters": meta["finetune"].get("adapted_parameters"), "wall_s": round(ft_wall, 1)},
        "before": before, "after": after,
        "notes": ("transductive: the adaptation saw the S9/S11 Stacked-Hourglass 2D it is scored on, never their 3D; "
                  "'heldout' rows are the finetune's held-out chunks (never trained on). MPJPE / P-MPJPE in mm, "
                  "per action then averaged; our copy lacks the 3D of S9 'Discussion 1'."),
        "machine": f"{platform.machine()} {platform.processor()}", "wall_s": round(time.time() - t_start, 1),
    }
    print(f"wrote {write_json(args.out, report)} ({time.time() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
