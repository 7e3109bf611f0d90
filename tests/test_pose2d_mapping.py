"""Mapping 2D layouts to H36M-17 (wsgcn_cli.pose2d.mapping)."""

from __future__ import annotations

import numpy as np
import pytest

from wsgcn_cli.detect.base import Keypoints2D
from wsgcn_cli.data.h36m import sh16_to_h36m17
from wsgcn_cli.pose2d.mapping import ADJUST, SH16_NECK, mapping_matrix, to_h36m17
from wsgcn_cli.skeletons import BLAZEPOSE33, COCO17, COCO_WHOLEBODY133, H36M17, SH16

# A person facing the camera, 1000x1000 image: their left side is on the image's right.
POSE = {
    "nose": (500, 200), "left_eye_inner": (505, 190), "left_eye": (510, 190),
    "left_eye_outer": (515, 190), "right_eye_inner": (495, 190), "right_eye": (490, 190),
    "right_eye_outer": (485, 190), "left_ear": (525, 200), "right_ear": (475, 200),
    "mouth_left": (505, 215), "mouth_right": (495, 215),
    "left_shoulder": (560, 260), "right_shoulder": (440, 260),
    "left_elbow": (580, 340), "right_elbow": (420, 340),
    "left_wrist": (590, 420), "right_wrist": (410, 420),
    "left_pinky": (595, 440), "right_pinky": (405, 440), "left_index": (590, 445),
    "right_index": (410, 445), "left_thumb": (585, 435), "right_thumb": (415, 435),
    "left_hip": (530, 450), "right_hip": (470, 450),
    "left_knee": (535, 580), "right_knee": (465, 580),
    "left_ankle": (535, 700), "right_ankle": (465, 700),
    "left_heel": (535, 716), "right_heel": (465, 716),
    "left_foot_index": (545, 725), "right_foot_index": (455, 725),
}


def blazepose(T=1, score=0.9) -> Keypoints2D:
    xy = np.array([POSE[n] for n in BLAZEPOSE33.joint_names], np.float32)
    return Keypoints2D("blazepose33", np.repeat(xy[None], T, 0), np.full((T, 33), score),
                       np.arange(T) / 25.0, 1000, 1000, 25.0)


def joint(kp, name, t=0):
    return kp.xy[t, H36M17.index(name)]


def test_raw_mapping_blazepose():
    h = to_h36m17(blazepose(), adjust=False)
    assert h.layout == "h36m17" and h.xy.shape == (1, 17, 2) and h.score.shape == (1, 17)
    np.testing.assert_allclose(joint(h, "Hip"), (500, 450))
    np.testing.assert_allclose(joint(h, "Thorax"), (500, 260))
    np.testing.assert_allclose(joint(h, "Spine"), (500, 355))
    np.testing.assert_allclose(joint(h, "Neck/Nose"), POSE["nose"])
    np.testing.assert_allclose(joint(h, "LHip"), POSE["left_hip"])
    np.testing.assert_allclose(joint(h, "RWrist"), POSE["right_wrist"])
    np.testing.assert_allclose(joint(h, "LFoot"), POSE["left_ankle"])
    assert joint(h, "Head")[1] < POSE["left_eye"][1]  # head top above the eyes


def test_adjusted_mapping_blazepose():
    h = to_h36m17(blazepose())
    up = 0.5 * (np.add(POSE["left_shoulder"], POSE["right_shoulder"])
                - np.add(POSE["left_hip"], POSE["right_hip"]))
    lhip = (np.array(POSE["left_hip"])
            + ADJUST["hip_widen"] * np.subtract(POSE["left_hip"], POSE["right_hip"])
            + ADJUST["hip_raise"] * up)
    np.testing.assert_allclose(joint(h, "LHip"), lhip, atol=1e-3)
    np.testing.assert_allclose(joint(h, "Hip"), (500, 450 + ADJUST["hip_raise"] * up[1]), atol=1e-3)
    # H36M hips are higher and wider apart than BlazePose's hip landmarks.
    assert joint(h, "LHip")[1] < POSE["left_hip"][1] and joint(h, "LHip")[0] > POSE["left_hip"][0]
    # Thorax above the shoulder line, below the ears; spine between pelvis and thorax.
    assert 200 < joint(h, "Thorax")[1] < 260
    assert joint(h, "Thorax")[1] < joint(h, "Spine")[1] < joint(h, "Hip")[1]
    assert joint(h, "Head")[1] < POSE["left_eye"][1]
    np.testing.assert_allclose(mapping_matrix("blazepose33").sum(axis=1), 1.0)


def test_left_stays_left():
    h = to_h36m17(blazepose())
    x = h.xy[0, :, 0]
    assert np.all(x[list(H36M17.left)] > 500) and np.all(x[list(H36M17.right)] < 500)
    # Mirroring the image and swapping the left/right labels mirrors the H36M result.
    kp = blazepose()
    flipped = kp.xy[:, BLAZEPOSE33.flip_permutation()].copy()
    flipped[..., 0] = 1000 - flipped[..., 0]
    hf = to_h36m17(Keypoints2D("blazepose33", flipped, kp.score, kp.times, 1000, 1000, 25))
    expected = h.xy[:, H36M17.flip_permutation()].copy()
    expected[..., 0] = 1000 - expected[..., 0]
    np.testing.assert_allclose(hf.xy, expected, atol=1e-3)


def test_scores_and_missing_sources():
    kp = blazepose(T=2)
    kp.score[0, BLAZEPOSE33.index("left_ear")] = 0.2
    kp.xy[1, BLAZEPOSE33.index("left_ear")] = np.nan
    h = to_h36m17(kp)
    for name in ("Thorax", "Neck/Nose", "Head"):
        assert h.score[0, H36M17.index(name)] == pytest.approx(0.2)
        assert np.isnan(joint(h, name, 1)).all() and h.score[1, H36M17.index(name)] == 0
    assert h.score[0, H36M17.index("LKnee")] == pytest.approx(0.9)
    assert np.isfinite(joint(h, "LKnee", 1)).all()


@pytest.mark.parametrize("skeleton", [COCO17, COCO_WHOLEBODY133])
def test_coco_layouts(skeleton):
    names = skeleton.joint_names
    xy = np.array([POSE.get(n, (0.0, 0.0)) for n in names], np.float32)[None]
    kp = Keypoints2D(skeleton.name, xy, np.ones((1, len(names))), [0.0], 1000, 1000, 0)
    h = to_h36m17(kp)
    ref = to_h36m17(blazepose())
    if skeleton is COCO17:  # no heel: the ankle is used as the foot
        np.testing.assert_allclose(joint(h, "LFoot"), POSE["left_ankle"])
        same = [j for j in range(17) if j not in (3, 6)]
    else:
        same = list(range(17))
    np.testing.assert_allclose(h.xy[0, same], ref.xy[0, same], atol=1e-3)


def test_sh16_and_identity():
    base = to_h36m17(blazepose())
    sh = Keypoints2D("sh16", base.xy[:, [j for j in range(17) if j != 9]],
                     base.score[:, [j for j in range(17) if j != 9]], base.times, 1000, 1000, 25)
    raw = to_h36m17(sh, adjust=False)
    thorax, head = joint(base, "Thorax"), joint(base, "Head")
    np.testing.assert_allclose(joint(raw, "Neck/Nose"), thorax + SH16_NECK * (head - thorax),
                               atol=1e-3)
    np.testing.assert_allclose(np.delete(raw.xy, 9, axis=1), sh.xy)
    h = to_h36m17(sh)  # adjusted: limbs, hips, thorax kept; spine, neck/nose, head re-made
    np.testing.assert_allclose(h.xy, sh16_to_h36m17(sh.xy), atol=1e-4)  # as the loader
    kept = [j for j in range(17) if j not in (7, 9, 10)]
    np.testing.assert_allclose(h.xy[:, kept], base.xy[:, kept], atol=1e-4)
    # an affine map: moving the whole pose moves every made joint with it
    shifted = Keypoints2D("sh16", sh.xy + np.float32([30, -12]), sh.score, sh.times, 1000, 1000, 25)
    np.testing.assert_allclose(to_h36m17(shifted).xy, h.xy + np.float32([30, -12]), atol=1e-3)
    assert SH16.num_joints == 16
    np.testing.assert_array_equal(to_h36m17(base).xy, base.xy)
