import csv

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from wsgcn_cli.angles import ANGLE_NAMES, joint_angles
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.io import posefile

# H36M-17 indices
HIP, RHIP, RKNEE, RANK, LHIP, LKNEE, LANK, SPINE, THORAX, NECK, HEAD = range(11)
LSHO, LELB, LWRI, RSHO, RELB, RWRI = 11, 12, 13, 14, 15, 16


def standing():
    """Upright standing, facing +Z (person's left = +X), arms hanging, y up, metres."""
    p = np.zeros((17, 3))
    p[HIP] = [0, 0.95, 0]
    p[LHIP], p[RHIP] = p[HIP] + [0.12, 0, 0], p[HIP] - [0.12, 0, 0]
    for hip, knee, ank in ((LHIP, LKNEE, LANK), (RHIP, RKNEE, RANK)):
        p[knee] = p[hip] - [0, 0.45, 0]
        p[ank] = p[knee] - [0, 0.42, 0]
    p[SPINE], p[THORAX] = p[HIP] + [0, 0.25, 0], p[HIP] + [0, 0.5, 0]
    p[NECK], p[HEAD] = p[THORAX] + [0, 0.1, 0.02], p[THORAX] + [0, 0.25, 0]
    for sho, elb, wri, s in ((LSHO, LELB, LWRI, 1), (RSHO, RELB, RWRI, -1)):
        p[sho] = p[THORAX] + [s * 0.17, 0, 0]
        p[elb] = p[sho] - [0, 0.28, 0]
        p[wri] = p[elb] - [0, 0.25, 0]
    return p


def angles_of(p):
    return {k: float(v[0]) for k, v in joint_angles(p[None]).items()}


def test_upright_standing_is_zero():
    a = angles_of(standing())
    assert list(a) == list(ANGLE_NAMES)
    for name, v in a.items():
        assert abs(v) < 1e-6, name


def rotate_about(p, centre, joints, axis, deg):
    r = Rotation.from_rotvec(np.radians(deg) * np.asarray(axis, float))
    p = p.copy()
    p[joints] = r.apply(p[joints] - p[centre]) + p[centre]
    return p


def test_signs_and_values():
    p = standing()
    # left hip flexed 90 (thigh forward, +Z), knee flexed 90 (shank hanging straight down)
    q = rotate_about(p, LHIP, [LKNEE, LANK], [-1, 0, 0], 90)
    q = rotate_about(q, LKNEE, [LANK], [1, 0, 0], 90)
    a = angles_of(q)
    assert a["hip_flexion_l"] == pytest.approx(90, abs=1e-6) and a["knee_flexion_l"] == pytest.approx(90, abs=1e-6)
    assert a["hip_flexion_r"] == pytest.approx(0, abs=1e-6)
    # right hip extended 20 (thigh behind)
    a = angles_of(rotate_about(p, RHIP, [RKNEE, RANK], [1, 0, 0], 20))
    assert a["hip_flexion_r"] == pytest.approx(-20, abs=1e-6)
    # abduction: each leg 30 degrees away from the midline is +30
    q = rotate_about(p, LHIP, [LKNEE, LANK], [0, 0, 1], 30)    # left foot towards +X
    q = rotate_about(q, RHIP, [RKNEE, RANK], [0, 0, -1], 30)   # right foot towards -X
    a = angles_of(q)
    assert a["hip_abduction_l"] == pytest.approx(30, abs=1e-6)
    assert a["hip_abduction_r"] == pytest.approx(30, abs=1e-6)
    # arms: T-pose 90, overhead 180, elbow flexed 90
    q = rotate_about(p, LSHO, [LELB, LWRI], [0, 0, 1], 90)     # left arm out to +X
    q = rotate_about(q, RSHO, [RELB, RWRI], [0, 0, 1], 180)    # right arm straight up
    q = rotate_about(q, LELB, [LWRI], [0, 1, 0], -90)          # left forearm forward
    a = angles_of(q)
    assert a["shoulder_elevation_l"] == pytest.approx(90, abs=1e-6)
    assert a["shoulder_elevation_r"] == pytest.approx(180, abs=1e-6)
    assert a["elbow_flexion_l"] == pytest.approx(90, abs=1e-6) and a["elbow_flexion_r"] == pytest.approx(0, abs=1e-6)


def test_trunk_angles():
    p = standing()
    upper = [SPINE, THORAX, NECK, HEAD, LSHO, LELB, LWRI, RSHO, RELB, RWRI]
    # lean forward 30 (towards +Z): rotation about +X by +30 takes +Y towards +Z
    a = angles_of(rotate_about(p, HIP, upper, [1, 0, 0], 30))
    assert a["trunk_lean_forward"] == pytest.approx(30, abs=1e-6)
    assert a["trunk_lean_right"] == pytest.approx(0, abs=1e-6)
    # lean to the person's right (-X): rotation about +Z by +15 takes +Y towards -X
    a = angles_of(rotate_about(p, HIP, upper, [0, 0, 1], 15))
    assert a["trunk_lean_right"] == pytest.approx(15, abs=1e-6)
    assert a["trunk_lean_forward"] == pytest.approx(0, abs=1e-6)
    # shoulders turned 25 to the person's left (counter-clockwise from above, about +Y)
    a = angles_of(rotate_about(p, HIP, upper, [0, 1, 0], 25))
    assert a["trunk_rotation"] == pytest.approx(25, abs=1e-6)


def test_invariant_to_heading_position_and_scale():
    rng = np.random.default_rng(3)
    p = standing() + rng.normal(scale=0.03, size=(17, 3))
    base = joint_angles(p[None])
    moved = Rotation.from_euler("y", 137, degrees=True).apply(p) * 1.7 + [3.0, 0.2, -5.0]
    for k, v in joint_angles(moved[None]).items():
        assert v == pytest.approx(base[k], abs=1e-9), k


def test_nan_and_bad_shape():
    p = np.stack([standing(), standing()])
    p[1, LELB] = np.nan
    a = joint_angles(p)
    assert np.isnan(a["elbow_flexion_l"][1]) and np.isnan(a["shoulder_elevation_l"][1])
    assert np.isfinite(a["elbow_flexion_r"][1]) and np.isfinite(a["elbow_flexion_l"][0])
    with pytest.raises(WsgcnError, match="17, 3"):
        joint_angles(np.zeros((4, 16, 3)))


def world_posefile(t=5):
    w = np.repeat(standing()[None], t, axis=0).astype(np.float32)
    w[2] = np.nan
    kp3d = w - w[:, :1]
    return posefile.PoseFile(
        keypoints_2d=np.full((t, 17, 2), 100.0), scores=np.ones((t, 17)), keypoints_3d=kp3d,
        times=np.arange(t) / 25.0, fps=25.0, image_size=(640, 480),
        root_camera_m=np.tile([0.0, 0.0, 3.0], (t, 1)), keypoints_3d_world=w,
        camera_to_world=np.eye(4), foot_contact=np.ones((t, 2), bool), focal_px=600.0)


def test_csv_world_and_angle_columns(tmp_path):
    p = world_posefile()
    rows = list(csv.DictReader(open(posefile.write(p, tmp_path / "c.wsgcn.csv"), encoding="utf-8")))
    assert len(rows) == 5 * 17
    cols = list(rows[0])
    assert cols[:10] == ["frame", "time_s", "joint", "name", "x_px", "y_px", "score", "x_m", "y_m", "z_m"]
    assert cols[10:13] == ["xw_m", "yw_m", "zw_m"] and cols[13:] == [f"{k}_deg" for k in ANGLE_NAMES]
    assert float(rows[0]["yw_m"]) == pytest.approx(0.95) and float(rows[17 + 3]["yw_m"]) == pytest.approx(0.08)
    assert float(rows[5]["knee_flexion_l_deg"]) == pytest.approx(0.0, abs=1e-4)
    assert rows[2 * 17]["xw_m"] == "" and rows[2 * 17]["hip_flexion_l_deg"] == ""
    # without the world outputs the CSV keeps its ten columns
    p.root_camera_m = p.keypoints_3d_world = p.camera_to_world = p.foot_contact = None
    rows = list(csv.DictReader(open(posefile.write(p, tmp_path / "d.wsgcn.csv"), encoding="utf-8")))
    assert len(rows[0]) == 10
