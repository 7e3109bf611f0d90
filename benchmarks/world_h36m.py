"""The `lift` trajectory on Human3.6M S9/S11: pelvis position in the camera frame.

``body3d_demo.py`` scores one clip; here the same root solve ``lift`` runs
(:func:`wsgcn_cli.world.root_trajectory`: per-frame closed-form translation from the 2D,
the lifted root-relative 3D and the intrinsics, a 1 Hz zero-phase low-pass) is scored on
every S9/S11 sequence of the chosen cameras, so a change to the lifter or to the root
solve is judged on about a hundred walks, sittings and greetings rather than one walk.
Per sequence (subject / take / camera), at ``50 / stride`` fps, with the calibrated focal
length and principal point:

* ``pelvis_mm``: mean distance of the solved pelvis to the true pelvis (camera frame);
* ``shape_mm``: the same after removing each sequence's mean (the trajectory's shape);
* ``bias_mm``: the mean error per camera axis (x right, y down, z forward);

averaged over the frames of each action, then over actions (as ``wsgcn eval``), for
ground-truth 2D and for Stacked-Hourglass 2D (the lifter sees what it was made for; all
17 keypoints weigh the same in the solve; a frame without a complete 2D has no root).

    python benchmarks/world_h36m.py [--weights W.safetensors ...] [--stride 2] [--cameras 54138969 ...]

Writes ``benchmarks/results/world_h36m.json`` (``--out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def score_sequences(data, kp2d, pose3d_m, intr, fps: float) -> dict:
    """Per-action averages of ``pelvis_mm``, ``shape_mm``, ``bias_mm`` (module docstring)
    for samples ``data`` with 2D ``kp2d`` (N, 17, 2) px and lifted ``pose3d_m`` (N, 17, 3)."""
    import numpy as np

    from wsgcn_cli.data import h36m
    from wsgcn_cli.world import root_trajectory

    true = data.pose3d[:, 0].astype(np.float64)  # camera frame, mm
    err = np.full((len(data), 3), np.nan)
    shape = np.full(len(data), np.nan)
    for s in np.unique(data.sequence):
        rows = np.flatnonzero(data.sequence == s)
        rows = rows[np.argsort(data.frame[rows])]
        i = rows[0]
        size = tuple(int(v) for v in data.image_size[i])
        root = root_trajectory(kp2d[rows], pose3d_m[rows], intr["f"][i], intr["c"][i], fps,
                               image_size=size) * 1000.0
        e = root - true[rows]
        err[rows] = e
        ok = np.isfinite(e).all(-1)
        if ok.sum() > 1:
            shape[rows[ok]] = np.linalg.norm((root[ok] - root[ok].mean(0)) - (true[rows][ok] - true[rows][ok].mean(0)),
                                             axis=-1)
    dist = np.linalg.norm(err, axis=-1)
    out = {"pelvis_mm": [], "shape_mm": [], "bias_mm": []}
    per_action = {}
    for a, name in enumerate(h36m.ACTIONS):
        sel = (data.action == a) & np.isfinite(dist)
        if not sel.any():
            continue
        per_action[name] = {"pelvis_mm": float(dist[sel].mean()), "shape_mm": float(np.nanmean(shape[sel])),
                            "bias_mm": [float(v) for v in err[sel].mean(0)], "frames": int(sel.sum())}
        for k in out:
            out[k].append(per_action[name][k])
    return {"pelvis_mm": float(np.mean(out["pelvis_mm"])), "shape_mm": float(np.mean(out["shape_mm"])),
            "bias_mm": [float(v) for v in np.mean(out["bias_mm"], 0)],
            "frames_with_root": int(np.isfinite(dist).sum()), "frames": len(data), "per_action": per_action}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", nargs="*", default=[str(REPO / "weights" / "semgcn_nl_h36m_det2d.safetensors")])
    p.add_argument("--stride", type=int, default=2, help="every stride-th frame (default 2: 25 fps)")
    p.add_argument("--cameras", nargs="*", default=None, help="camera ids (default: all four)")
    p.add_argument("--data", default=None, help="Human3.6M folder (default ../shared/data/h36m)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "world_h36m.json"))
    args = p.parse_args()

    from wsgcn_cli.data import h36m
    from wsgcn_cli.io.atomic import write_json
    from wsgcn_cli.lifter import Lifter

    cameras = tuple(args.cameras) if args.cameras else h36m.CAMERAS
    data = h36m.load(h36m.TEST_SUBJECTS, args.data, args.stride, cameras=cameras, with_sh=True)
    intr = h36m.intrinsics(data, args.data)
    fps = h36m.FPS / args.stride
    results = {}
    for w in args.weights:
        lifter = Lifter.from_weights(w, flip_test=True, device=args.device)
        r = {"sha256": lifter.sha256, "codec": lifter.codec_mode}
        for source in ("gt", "sh"):
            kp = data.kp2d(source)
            size = data.image_size.astype("float32")
            pose = lifter(kp, size[:, 0, None, None], size[:, 1, None, None], focal=intr["f"], center=intr["c"])
            r[source] = score_sequences(data, kp, pose, intr, fps)
            print(f"{Path(w).name:40s} 2D {source}: pelvis {r[source]['pelvis_mm']:7.1f} mm, shape "
                  f"{r[source]['shape_mm']:6.1f} mm, bias x/y/z " + " / ".join(f"{v:.0f}" for v in r[source]["bias_mm"])
                  + f" ({r[source]['frames_with_root']} frames)", flush=True)
        results[Path(w).name] = r
    write_json(args.out, {"subjects": list(h36m.TEST_SUBJECTS), "cameras": list(cameras), "stride": args.stride,
                          "fps": fps, "intrinsics": "calibrated (h36m_cameras.json), no distortion",
                          "root_solve": "wsgcn_cli.world.root_trajectory (lift's), 1 Hz low-pass, all 17 keypoints",
                          "results": results})


if __name__ == "__main__":
    main()
