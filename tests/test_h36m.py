"""The Human3.6M data module against the real files in ../shared/data (skipped without them)."""

import numpy as np
import pytest

from wsgcn_cli import camera
from wsgcn_cli.data import h36m
from wsgcn_cli.errors import WsgcnError

ROOT = h36m.default_root()
FIXTURE = ROOT / "mmpose_fixture" / "test_h36m_body3d.npz"
pytestmark = pytest.mark.skipif(not (ROOT / h36m.FILE_3D).is_file(),
                                reason=f"Human3.6M files not found in {ROOT}")


def test_projection_matches_mmpose_ground_truth():
    """Our 3D + cameras + projection reproduce mmpose's H36M fixture (px and camera mm)."""
    fx = np.load(FIXTURE, allow_pickle=True)
    cams = camera.load_h36m_cameras(ROOT / h36m.FILE_CAMERAS)
    world = np.load(ROOT / h36m.FILE_3D)
    for name, part, s in zip(fx["imgname"], fx["part"], fx["S"]):
        stem = name.split("/")[-1][: -len(".jpg")]  # S1_Directions_1.54138969_000001
        subject, rest = stem.split("_", 1)
        take_cam, frame = rest.rsplit("_", 1)
        take, cam_id = take_cam.split(".")
        take = take.replace("_", " ")
        cam = cams[(subject, cam_id)]
        xc = cam.world_to_camera(world[f"{subject}/{take}"][int(frame) - 1].astype(np.float64))
        # our 3D file is rounded to 1 mm, hence tolerances of a fraction of a pixel and 1 mm
        assert np.abs(cam.project(xc) - part[:, :2]).max() < 0.25
        assert np.abs(xc / 1000.0 - s[:, :3]).max() < 1e-3


def test_load_split_shapes_and_stride():
    d = h36m.load(("S9",), stride=50)
    n = len(d)
    assert d.pose3d.shape == (n, 17, 3) and d.kp2d_gt.shape == (n, 17, 2) and d.kp2d_sh.shape == (n, 17, 2)
    assert set(d.camera.tolist()) == {0, 1, 2, 3}
    assert (np.diff(d.frame[d.sequence == 0]) == 50).all()
    assert "S9/Discussion 1" in h36m.missing_3d()
    assert not any(s.startswith("S9/Discussion 1/") for s in d.sequences)
    # Stacked-Hourglass detections are close to the projected ground truth (SOURCES: 15.5 px mean)
    err = np.linalg.norm(d.kp2d_sh - d.kp2d_gt, axis=-1)
    assert 8 < np.nanmean(err[:, [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16]]) < 25
    # ground-truth cameras see the person in front of them
    assert (d.pose3d[..., 2] > 1000).all()


def test_actions_group_subtakes():
    assert h36m.action_of("Walking 1") == "Walking"
    assert h36m.action_of("SittingDown") == "SittingDown"
    d = h36m.load(("S11",), stride=200)
    assert len(set(d.action.tolist())) == 15


def test_bad_options():
    with pytest.raises(WsgcnError, match="subject"):
        h36m.load(("S42",))
    with pytest.raises(WsgcnError, match="not found"):
        h36m.load(("S1",), root="/nonexistent")
