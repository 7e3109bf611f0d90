"""The ground truth of ``../shared/data/videos/body3d_demo.mp4``, shared by the benchmarks.

The clip is Human3.6M S11 "WalkDog 1", camera 60457274, frames 0-398 (1000x1002 px,
50 fps; video frame n = 3D frame n). Its 3D ground truth,
``h36m_3d_17j_world_mm.npz["S11/WalkDog 1"][:399]``, is moved into that camera's frame
with ``h36m_cameras.json`` and projected with the camera model of CONVENTIONS.md. It is
used only to measure. The benchmark scripts beside it import it as ``body3d_demo`` (they
run as ``python benchmarks/<script>.py`` with the package installed, so their folder is
on the import path).
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
VIDEO = SHARED / "videos" / "body3d_demo.mp4"
SUBJECT, TAKE, CAMERA, FRAMES = "S11", "WalkDog 1", "60457274", 399
#: H36M-17 joints of the four limbs (hips, knees, feet, shoulders, elbows, wrists).
LIMB_JOINTS = [1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16]


def ground_truth(data_root: Path):
    """(3D (399, 17, 3) root-relative camera coordinates mm, 2D (399, 17, 2) px, the camera)."""
    import numpy as np

    from wsgcn_cli.camera import load_h36m_cameras
    from wsgcn_cli.codec import root_relative

    cam = load_h36m_cameras(Path(data_root) / "h36m_cameras.json")[(SUBJECT, CAMERA)]
    world = np.load(Path(data_root) / "h36m_3d_17j_world_mm.npz")[f"{SUBJECT}/{TAKE}"][:FRAMES].astype(np.float64)
    xc = cam.world_to_camera(world)
    return root_relative(xc), cam.project(xc), cam
