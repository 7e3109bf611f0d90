"""Lifters on motion that is not Human3.6M: the Bandai-Namco mocap, seen by a fixed camera rig.

Human3.6M numbers alone reward learning its four cameras, its seven actors and their
fifteen actions. This benchmark scores the lifters on other people, other motion
(walks, runs, dances, kicks, waves, in many styles) and other viewpoints: the
Bandai-Namco Research motion dataset (``../shared/data/mocap_bandai``, CC BY-NC 4.0,
Bandai Namco Research Inc., arXiv:2306.08861; used only to measure, never to train).

* Poses: every ``--step``-th frame of the 10 fps file (default 10: one per second,
  about 14,000 poses), 21 mocap joints -> H36M-17: pelvis = Hips; hips, knees, ankles,
  shoulders (UpperArm), elbows (LowerArm), wrists (Hand) directly; Spine = mean of Spine
  and Chest (about 20 cm above the pelvis, as H36M's); Thorax = Neck; Neck/Nose = Head
  (the upper neck); head top = Head + 11 cm along Neck -> Head. Only the 12 limb
  joints are scored, so these approximate trunk and head joints enter as inputs only.
* Cameras: a fixed rig, the same for every lifter and unlike the training
  augmentation's random cameras: 8 directions around the person (every 45°) x
  elevations 0° and 25°, 4 m away, 60° horizontal field of view (1000 px wide), the
  pelvis at the image centre; each pose is seen by one rig camera (pose index modulo
  16). The 2D is the exact projection (no detector noise): this measures the lifter.
* Scores (mm): the 12 limb joints after centroid alignment, MPJPE and P-MPJPE, as
  ``lift_body3d_demo.py``; and per camera elevation.

    python benchmarks/cross_dataset_bandai.py [--weights W ...] [--step 10]

Writes ``benchmarks/results/cross_dataset_bandai.json``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "mocap_bandai" / "bandai_namco_21j_10fps_m.npz"
LIMB_JOINTS = [1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16]
#: H36M-17 joint <- Bandai-Namco joint index (-1: made from several, see to_h36m17)
DIRECT = {0: 0, 1: 17, 2: 18, 3: 19, 4: 13, 5: 14, 6: 15, 8: 3, 9: 4, 11: 6, 12: 7, 13: 8, 14: 10, 15: 11, 16: 12}
WEIGHTS = ("semgcn_nl_h36m_gt2d.safetensors", "semgcn_nl_h36m_det2d.safetensors")


def to_h36m17(j21):
    """(N, 21, 3) Bandai-Namco joints (metres, Y up) -> (N, 17, 3) H36M-17, metres, Z up, root-relative."""
    import numpy as np

    out = np.zeros((len(j21), 17, 3), np.float32)
    for h, b in DIRECT.items():
        out[:, h] = j21[:, b]
    out[:, 7] = 0.5 * (j21[:, 1] + j21[:, 2])
    up = j21[:, 4] - j21[:, 3]
    out[:, 10] = j21[:, 4] + 0.11 * up / np.linalg.norm(up, axis=-1, keepdims=True)
    out = out - out[:, :1]
    return np.stack([out[..., 0], -out[..., 2], out[..., 1]], -1)  # Y-up (x, y, z) -> Z-up (x, -z, y)


#: The rig's pinhole camera: a 1000 x 1000 px image with a 60-degree field of view, the
#: person at its centre (the principal point).
RIG_FOCAL_PX, RIG_SIZE_PX = 500.0 / math.tan(math.radians(30.0)), 1000


def rig_views(pose_zup):
    """The fixed rig (module docstring): (2D px (N, 17, 2), camera-frame 3D (N, 17, 3) m, elevation deg (N,))."""
    import torch

    from wsgcn_cli.data.augment import view_through_camera

    n = len(pose_zup)
    cam = torch.arange(n) % 16
    yaw = (cam % 8).float() * (math.pi / 4)
    elev_deg = torch.where(cam < 8, 0.0, 25.0)
    focal = torch.full((n,), RIG_FOCAL_PX)
    centre = torch.full((n, 2), 500.0)
    uv, pose_cam = view_through_camera(torch.as_tensor(pose_zup), yaw, torch.deg2rad(elev_deg), torch.zeros(n),
                                       torch.full((n,), 4.0), focal, centre, centre)
    return uv.numpy(), pose_cam.numpy(), elev_deg.numpy()


def limb_scores(pred_mm, gt_mm) -> dict:
    from wsgcn_cli import metrics

    p, g = pred_mm[:, LIMB_JOINTS], gt_mm[:, LIMB_JOINTS]
    p, g = p - p.mean(1, keepdims=True), g - g.mean(1, keepdims=True)
    return {"mpjpe_mm": float(metrics.mpjpe(p, g).mean()), "p_mpjpe_mm": float(metrics.p_mpjpe(p, g).mean())}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", nargs="*", default=[str(REPO / "weights" / w) for w in WEIGHTS])
    p.add_argument("--step", type=int, default=10)
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "cross_dataset_bandai.json"))
    args = p.parse_args()

    import numpy as np

    from wsgcn_cli import weights as wio
    from wsgcn_cli.io.atomic import write_json
    from wsgcn_cli.lifter import Lifter

    z = np.load(args.data)
    pose = to_h36m17(z["joints"][:: args.step].astype(np.float32))
    uv, gt, elev = rig_views(pose)
    gt_mm = gt * 1000.0
    results = {}
    for w in args.weights:
        lifter = Lifter.from_weights(w, flip_test=True, device=args.device)
        half = RIG_SIZE_PX / 2  # the intrinsics are read by a virtual_camera lifter only
        pred_mm = lifter(uv, RIG_SIZE_PX, RIG_SIZE_PX, focal=[RIG_FOCAL_PX] * 2, center=[half, half]) * 1000.0
        r = {"all": limb_scores(pred_mm, gt_mm),
             "per_elevation_deg": {f"{e:g}": limb_scores(pred_mm[elev == e], gt_mm[elev == e]) for e in np.unique(elev)},
             "sha256": lifter.sha256, "samples_seen": wio.load(w)[1].get("samples_seen_total")}
        results[Path(w).name] = r
        print(f"{Path(w).name:45s} limbs12 MPJPE {r['all']['mpjpe_mm']:6.2f} P-MPJPE {r['all']['p_mpjpe_mm']:6.2f} mm; "
              + ", ".join(f"elev {e}: {v['p_mpjpe_mm']:.1f}" for e, v in r["per_elevation_deg"].items()), flush=True)
    write_json(args.out, {"dataset": "Bandai-Namco Research motion (CC BY-NC 4.0), every "
                          f"{args.step}th frame at 10 fps", "poses": len(pose),
                          "rig": "8 yaws x elevations 0/25 deg, 4 m, 60 deg fov, 1000 px", "results": results})


if __name__ == "__main__":
    main()
