"""Does ``wsgcn finetune`` on a clip improve that clip's own ``lift`` output? (3D error vs GT)

The clip is ``../shared/data/videos/body3d_demo.mp4``: Human3.6M S11 "WalkDog 1",
camera 60457274, frames 0-398 (1000x1002 px, 50 fps). Its 3D ground truth,
``h36m_3d_17j_world_mm.npz["S11/WalkDog 1"][:399]`` moved into that camera's frame with
``h36m_cameras.json``, is used only to measure; the adaptation sees the video alone
(unlabelled, transductive: it is evaluated on the footage it adapted to, and
separately on its held-out chunks, which it never trained on).

Steps: ``finetune`` (BlazePose 2D, cached; intrinsics from the assumed field of view,
and, as a variant, the camera's true focal length) -> ``lift --keypoints <cached 2D>``
with the base and with each adapted lifter (the same 2D stage and flip test as
``wsgcn lift`` on the video: the cache holds the detector's raw output) -> MPJPE and
P-MPJPE (mm, 17 joints, root-relative camera coordinates) against the ground truth,
all frames and held-out frames only; plus the held-out 2D reprojection error (px).

    python benchmarks/finetune_body3d.py [--weights weights/semgcn_nl_h36m_det2d.safetensors]
        [--work DIR] [--epochs 20] [--no-true-focal]

Writes ``benchmarks/results/finetune_body3d.json``. The weights' training record
(epochs, history length, command) is copied into the JSON so that results of
placeholder weights are not mistaken for those of the trained ones.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

from body3d_demo import CAMERA, FRAMES, REPO, SHARED, SUBJECT, TAKE, VIDEO, ground_truth  # beside this script


def lift_with(weights: Path, keypoints: Path, work: Path, tag: str):
    """``wsgcn lift`` of the video with the given lifter weights and precomputed 2D -> (T, 17, 3) mm."""
    import tomllib

    import numpy as np

    from wsgcn_cli import api, pipeline

    lines = (pipeline.PIPELINE_DIR / "body17.toml").read_text().splitlines()
    lines = [f'weights = "{weights}"' if ln.strip().startswith("weights") else ln for ln in lines]
    pipe = work / f"body17-{tag}.toml"
    pipe.write_text("\n".join(lines) + "\n")
    assert tomllib.loads(pipe.read_text())["lifter"]["weights"] == str(weights)
    out_dir = work / f"lift-{tag}"
    out_dir.mkdir(exist_ok=True)
    r = api.lift(VIDEO, pipeline=str(pipe), out_dir=out_dir, keypoints=keypoints, video=False,
                 overwrite=True, quiet=True)
    z = np.load(r["outputs"]["npz"])
    return z["keypoints_3d"].astype(np.float64) * 1000.0, str(z["weights_sha256"])


def errors(pred_mm, gt_mm, mask):
    import numpy as np

    from wsgcn_cli import metrics

    ok = mask & np.isfinite(pred_mm).all(axis=(1, 2))
    return {"mpjpe_mm": float(metrics.mpjpe(pred_mm[ok], gt_mm[ok]).mean()),
            "p_mpjpe_mm": float(metrics.p_mpjpe(pred_mm[ok], gt_mm[ok]).mean()),
            "n_mpjpe_mm": float(metrics.n_mpjpe(pred_mm[ok], gt_mm[ok]).mean()),
            "frames": int(ok.sum())}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(REPO / "weights" / "semgcn_nl_h36m_det2d.safetensors"))
    parser.add_argument("--data", default=str(SHARED / "h36m"))
    parser.add_argument("--work", default=None, help="folder for the 2D cache, adapted weights and lift outputs "
                        "(default: a temporary folder)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--no-true-focal", action="store_true", help="skip the variant with the camera's real focal")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "finetune_body3d.json"))
    args = parser.parse_args()

    import numpy as np

    from wsgcn_cli import weights as wio
    from wsgcn_cli.data.clips import cache_path
    from wsgcn_cli.io.atomic import write_json
    from wsgcn_cli.train.finetune import FinetuneConfig, finetune, split_holdout

    t_start = time.time()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="wsgcn-ft-body3d-"))
    work.mkdir(parents=True, exist_ok=True)
    base = Path(args.weights)
    _, base_meta = wio.load(base)
    gt, _, cam = ground_truth(Path(args.data))
    cfg = FinetuneConfig()
    held = split_holdout(FRAMES, 0.2, max(50, 2 * cfg.window))

    variants = {"fov55": {"focal": None, "fov_deg": 55.0}}
    if not args.no_true_focal:
        variants["true_focal"] = {"focal": float(cam.f.mean()), "fov_deg": 55.0}
    results = {}
    cache = cache_path(VIDEO, work)
    for name, cam_opts in variants.items():
        t0 = time.time()
        out = work / f"body3d_{name}.safetensors"
        r = finetune([VIDEO], base, out, epochs=args.epochs, holdout=0.2, cache_dir=work, data=args.data,
                     overwrite=True, device=args.device, quiet=True, command=f"benchmarks/finetune_body3d.py ({name})",
                     **cam_opts)
        results[name] = {"camera": cam_opts, "finetune_wall_s": round(time.time() - t0, 1),
                         "heldout_reprojection_px": r["heldout_px"], "epochs_run": r["epochs_run"],
                         "stopped_early": r["stopped_early"], "history": r["history"], "weights": str(out)}
        print(f"{name}: held-out reprojection {r['heldout_px']['base']:.2f} -> {r['heldout_px']['best']:.2f} px "
              f"(best epoch {r['heldout_px']['best_epoch']} of {r['epochs_run']}), {time.time() - t0:.0f} s", flush=True)

    lifted = {"base": lift_with(base.resolve(), cache, work, "base")}
    for name, res in results.items():
        lifted[name] = lift_with(Path(res["weights"]).resolve(), cache, work, name)
    every = np.ones(FRAMES, bool)
    table = {}
    for name, (pred, sha) in lifted.items():
        table[name] = {"all_frames": errors(pred, gt, every), "heldout_frames": errors(pred, gt, held),
                       "trained_frames": errors(pred, gt, ~held), "weights_sha256": sha}
        a, h = table[name]["all_frames"], table[name]["heldout_frames"]
        print(f"{name:10s} MPJPE {a['mpjpe_mm']:6.2f} mm, P-MPJPE {a['p_mpjpe_mm']:6.2f} mm (all {a['frames']} frames); "
              f"held-out: {h['mpjpe_mm']:6.2f} / {h['p_mpjpe_mm']:6.2f} mm ({h['frames']} frames)", flush=True)

    report = {
        "clip": {"video": VIDEO.name, "subject": SUBJECT, "take": TAKE, "camera": CAMERA, "frames": FRAMES,
                 "true_focal_px": cam.f.tolist()},
        "base_weights": {"file": base.name, "sha256": wio.sha256(base), "epochs": base_meta.get("epochs"),
                         "history_length": len(base_meta.get("history", [])),
                         "samples_per_epoch": base_meta.get("samples_per_epoch"),
                         "trained_on": base_meta.get("trained_on"), "command": base_meta.get("command")},
        "finetune": results, "lift_vs_ground_truth": table,
        "notes": ("3D errors in mm of the lift output (17 joints, root-relative camera frame, flip test) against "
                  "Human3.6M ground truth; the adaptation is transductive (it saw this video's 2D, never its 3D); "
                  "held-out frames: the finetune hold-out chunks, never trained on."),
        "machine": f"{platform.machine()} {platform.processor()}", "wall_s": round(time.time() - t_start, 1),
    }
    print(f"wrote {write_json(args.out, report)} ({time.time() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
