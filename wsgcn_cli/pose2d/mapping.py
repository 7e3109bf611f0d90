"""The geometric part of the 2D stage: any supported 2D layout to H36M-17.

:func:`to_h36m17` makes the lifter's 17 Human3.6M joints from the keypoints of a 2D
detector (:func:`wsgcn_cli.pose2d.gaps.fill_gaps` then interpolates short runs of
missing keypoints over time). Coordinates stay in pixels of the image frame (origin
top-left, x right, y down).

How each H36M-17 joint is made
------------------------------
Every H36M joint is an affine combination (weights summing to 1) of the source
keypoints, so the mapping commutes with any 2D translation, rotation and scaling of
the image. Below, ``hip_mid``/``shoulder_mid``/``ear_mid`` are midpoints of the left
and right source keypoints, and for joints with a side, ``other`` is the same keypoint
on the other side. With ``adjust=True`` (the default) the corrections in
:data:`ADJUST` move the detector's landmarks to where Human3.6M's motion-capture
skeleton puts its joints; with ``adjust=False`` limb joints are the detector's own
keypoints and the made joints use the plain midpoints (the "raw" mapping).

=============== ===============================================================
H36M joint      made from (BlazePose-33; COCO-17 and COCO-WholeBody-133 alike)
=============== ===============================================================
0 Hip (pelvis)  mean of the two H36M hips below = hip_mid + 0.13 (shoulder_mid - hip_mid)
1/4 R/LHip      hip + 0.19 (hip - other_hip) + 0.13 (shoulder_mid - hip_mid):
                H36M's hip joints sit wider apart and higher than the hip
                landmarks (BlazePose's are ~20 px too low and too close together
                on the 1000 px test clip)
2/5 R/LKnee     knee + 0.07 (knee - ankle): slightly up the shank
3/6 R/LFoot     ankle + 0.47 (heel - ankle) (H36M "Foot" is the ankle joint, which
                lies between the ankle and heel landmarks); the ankle itself for
                COCO-17, which has no heel
7 Spine         pelvis + 0.50 (thorax - pelvis)
8 Thorax        shoulder_mid + 0.27 (ear_mid - shoulder_mid): the base of the neck,
                above the shoulder line
9 Neck/Nose     nose + 0.44 (ear_mid - nose) + 0.25 (shoulder_mid - nose)
10 Head         ear_mid + 0.32 (ear_mid - shoulder_mid) - 0.35 (nose - ear_mid):
                the top of the head, extrapolated upwards from the ears and
                slightly back from the face
11/14 Shoulder  shoulder + 0.08 (other_shoulder - shoulder): the joint centre is
                medial to the shoulder landmark
12/15 Elbow     elbow (no systematic offset found)
13/16 Wrist     wrist (no systematic offset found)
=============== ===============================================================

COCO-17 and COCO-WholeBody-133 keypoints use the same recipes and constants (their
hip, shoulder, knee and ankle keypoints are defined like BlazePose's), but the
constants were measured with BlazePose only.

SH-16 (the Stacked-Hourglass detections of the Human3.6M data: H36M-17 without joint
9) is mapped with :data:`SH16_ADJUST` (adjust=True): the detector's "Spine" sits far
above H36M's spine joint (MPII's thorax), and its head top and the missing Neck/Nose
are re-made from the trunk, each an affine combination fitted by least squares to the
projected ground truth of the training subjects (S1 S5 S6 S7 S8, every 10th frame, 4
cameras). Mean error on the test subjects S9/S11 (every 10th frame), raw -> mapped:
Spine 47.4 -> 8.3 px, Head 29.0 -> 15.6 px, Neck/Nose 17.3 -> 11.3 px (against the
thorax-head midpoint). With adjust=False, SH joints are kept and Neck/Nose is put at
:data:`SH16_NECK` of the thorax -> head segment. H36M-17 input is returned unchanged.

Where the numbers come from: BlazePose full (video mode) was run on
``body3d_demo.mp4`` (Human3.6M S11 "WalkDog 1", camera 60457274, 1000x1002 px, 399
frames) and compared with the ground-truth 3D projected through the camera model of
``CONVENTIONS.md``; each correction was fitted by least squares (left and right
sharing one constant). Mean pixel error per joint, raw mapping (``adjust=False``) and
adjusted, on that clip, and on the 4 Human3.6M frames of MMPose's test fixture (S1,
S5, S7, S8; cameras 54138969 and 55011271; not used for fitting; BlazePose in image
mode):

============  ==============  ==============
joint         clip raw / adj  held-out raw / adj
============  ==============  ==============
Hip (pelvis)  18.9 /  3.5     17.8 /  5.9
RHip          23.2 /  4.6     19.9 /  6.0
RKnee         10.6 /  7.0      7.4 /  6.5
RFoot          7.1 /  7.3      7.0 /  6.5
LHip          20.2 /  6.7     18.2 /  6.6
LKnee         10.2 /  9.7      7.8 /  7.5
LFoot         11.9 /  6.8      9.1 /  7.2
Spine         16.2 /  4.5     16.7 / 10.9
Thorax        13.5 /  3.1     15.7 /  6.6
Neck/Nose     10.3 /  2.6      6.7 /  4.1
Head           7.5 /  3.5     10.9 /  5.6
LShoulder      6.4 /  3.6      8.5 /  6.7
LElbow        11.8 / 11.8      3.4 /  3.4
LWrist         9.6 /  9.6      4.6 /  4.6
RShoulder      8.8 /  4.6     11.7 /  8.7
RElbow         8.1 /  8.1      6.6 /  6.6
RWrist        14.4 / 14.4     10.9 / 10.9
12 limb jts   11.86 / 7.86     9.58 / 6.77
all 17        12.27 / 6.56    10.75 / 6.72
============  ==============  ==============

A 2-fold cross-validation on the clip (fit on one half, measure on the other) gives
nearly the fitted errors (hips 5.8, pelvis 3.6, thorax 3.4, spine 4.7, neck/nose 2.6,
head 3.9, shoulders 4.6, knees 8.4, feet 7.8 px), so the constants do not overfit the
clip; they describe where Human3.6M's mocap skeleton puts its joints, but come from few
subjects and views: treat them as approximate elsewhere.

Scores: a made joint's score is the minimum of the scores of the keypoints it uses.
"""

from __future__ import annotations

import functools

import numpy as np

from wsgcn_cli.detect.base import Keypoints2D
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.skeletons import H36M17, SH16_IN_H36M17, get_layout

#: Corrections (fractions of body segments, dimensionless) applied when ``adjust=True``;
#: see the module docstring for what each one does and how it was measured.
ADJUST = {
    "hip_widen": 0.19,       # hip += hip_widen * (hip - other_hip)
    "hip_raise": 0.13,       # hips and pelvis += hip_raise * (shoulder_mid - hip_mid)
    "knee_raise": 0.07,      # knee += knee_raise * (knee - ankle)
    "ankle_to_heel": 0.47,   # foot = ankle + ankle_to_heel * (heel - ankle)
    "spine": 0.50,           # spine = pelvis + spine * (thorax - pelvis)
    "thorax_up": 0.27,       # thorax = shoulder_mid + thorax_up * (ear_mid - shoulder_mid)
    "neck_to_ears": 0.44,    # neck/nose = nose + neck_to_ears * (ear_mid - nose)
    "neck_down": 0.25,       #             + neck_down * (shoulder_mid - nose)
    "head_up": 0.32,         # head = ear_mid + head_up * (ear_mid - shoulder_mid)
    "head_back": 0.35,       #        - head_back * (nose - ear_mid)
    "shoulder_in": 0.08,     # shoulder += shoulder_in * (other_shoulder - shoulder)
}

#: Without adjustment: hips/limbs as detected, pelvis = hip_mid, thorax = shoulder_mid,
#: spine halfway, neck/nose = nose, head top half the shoulder-to-ear distance above the ears.
RAW = dict.fromkeys(ADJUST, 0.0) | {"spine": 0.5, "head_up": 0.5}

#: Neck/Nose = thorax + SH16_NECK * (head - thorax) when completing SH-16 input: the
#: median position of H36M's Neck/Nose projected onto the 2D thorax -> head-top segment,
#: over the projected ground truth of the training subjects (S1 S5 S6 S7 S8, 4 cameras,
#: 1.46M samples: median 0.451, median distance off the segment 7.9 px). The Human3.6M
#: loader completes its Stacked-Hourglass detections with the same mapping.
SH16_NECK = 0.45

#: SH-16 corrections, fitted as described in the module docstring (dimensionless):
#:   Spine     = hip + 0.701 (spine_sh - hip) - 0.101 (thorax - hip)
#:   Neck/Nose = thorax + 0.163 (head_sh - thorax) - 0.344 (spine_sh - thorax)
#:   Head      = thorax + 0.293 (head_sh - thorax) - 1.109 (spine_sh - thorax)
SH16_ADJUST = {"spine": (0.701, -0.101), "neck": (0.163, -0.344), "head": (0.293, -1.109)}

class _Comb(dict):
    """An affine combination of named source keypoints, {keypoint name: weight}."""

    def __add__(self, other):
        out = _Comb(self)
        for k, w in other.items():
            out[k] = out.get(k, 0.0) + w
        return out

    def __sub__(self, other):
        return self + (-1.0) * other

    def __rmul__(self, c: float):
        return _Comb({k: c * w for k, w in self.items()})


def _p(name: str) -> _Comb:
    return _Comb({name: 1.0})


def _mid(part: str) -> _Comb:
    return 0.5 * (_p(f"left_{part}") + _p(f"right_{part}"))


def _recipes(c: dict, has_heel: bool) -> list[_Comb]:
    """The 17 H36M joints as combinations of source keypoints (names as in COCO/BlazePose)."""
    hip_mid, shoulder_mid, ear_mid = _mid("hip"), _mid("shoulder"), _mid("ear")
    up = shoulder_mid - hip_mid
    out = {}
    for side, other in (("left", "right"), ("right", "left")):
        s = side[0].upper()
        hip, other_hip = _p(f"{side}_hip"), _p(f"{other}_hip")
        out[f"{s}Hip"] = hip + c["hip_widen"] * (hip - other_hip) + c["hip_raise"] * up
        knee, ankle = _p(f"{side}_knee"), _p(f"{side}_ankle")
        out[f"{s}Knee"] = knee + c["knee_raise"] * (knee - ankle)
        out[f"{s}Foot"] = (ankle + c["ankle_to_heel"] * (_p(f"{side}_heel") - ankle)
                           if has_heel else ankle)
        shoulder = _p(f"{side}_shoulder")
        out[f"{s}Shoulder"] = shoulder + c["shoulder_in"] * (_p(f"{other}_shoulder") - shoulder)
        out[f"{s}Elbow"] = _p(f"{side}_elbow")
        out[f"{s}Wrist"] = _p(f"{side}_wrist")
    out["Hip"] = 0.5 * (out["LHip"] + out["RHip"])
    out["Thorax"] = shoulder_mid + c["thorax_up"] * (ear_mid - shoulder_mid)
    out["Spine"] = out["Hip"] + c["spine"] * (out["Thorax"] - out["Hip"])
    nose = _p("nose")
    out["Neck/Nose"] = (nose + c["neck_to_ears"] * (ear_mid - nose)
                        + c["neck_down"] * (shoulder_mid - nose))
    out["Head"] = (ear_mid + c["head_up"] * (ear_mid - shoulder_mid)
                   - c["head_back"] * (nose - ear_mid))
    return [out[name] for name in H36M17.joint_names]


@functools.lru_cache(maxsize=None)
def mapping_matrix(layout: str, adjust: bool = True) -> np.ndarray:
    """Cached, read-only :func:`_mapping_matrix` (it is used on every frame)."""
    w = _mapping_matrix(layout, adjust)
    w.setflags(write=False)
    return w


def observed_joints(layout: str) -> np.ndarray:
    """(17,) bool: the H36M-17 joints that are a single keypoint of ``layout``.

    The others are built from several keypoints (e.g. BlazePose's pelvis, spine,
    thorax and head), so they are estimates, not observations. Raises WsgcnError for a
    layout that cannot be mapped.
    """
    return (mapping_matrix(layout, adjust=False) != 0.0).sum(axis=1) == 1


def _mapping_matrix(layout: str, adjust: bool = True) -> np.ndarray:
    """(17, J) weights W such that H36M-17 keypoints = W @ source keypoints.

    Rows sum to 1. ``layout`` is one of ``blazepose33``, ``coco17``,
    ``coco_wholebody133``, ``sh16``, ``h36m17``.

    Raises:
        WsgcnError: the layout cannot be mapped to H36M-17.
    """
    skeleton = get_layout(layout)
    if layout == "h36m17":
        return np.eye(17)
    if layout == "sh16":
        w = np.zeros((17, 16))
        w[list(SH16_IN_H36M17), np.arange(16)] = 1.0
        hip, spine, thorax, head = (SH16_IN_H36M17.index(j) for j in (0, 7, 8, 10))
        if not adjust:
            w[9, thorax], w[9, head] = 1.0 - SH16_NECK, SH16_NECK
            return w
        a, b = SH16_ADJUST["spine"]
        w[7] = 0.0
        w[7, hip], w[7, spine], w[7, thorax] = 1.0 - a - b, a, b
        for row, key in ((9, "neck"), (10, "head")):
            a, b = SH16_ADJUST[key]
            w[row] = 0.0
            w[row, thorax], w[row, head], w[row, spine] = 1.0 - a - b, a, b
        return w
    if layout not in ("blazepose33", "coco17", "coco_wholebody133"):
        raise WsgcnError(f"no mapping from the {layout} layout to h36m17")
    has_heel = "left_heel" in skeleton.joint_names
    w = np.zeros((17, skeleton.num_joints))
    for row, comb in enumerate(_recipes(ADJUST if adjust else RAW, has_heel)):
        for name, weight in comb.items():
            w[row, skeleton.index(name)] += weight
    w[np.abs(w) < 1e-12] = 0.0
    return w


def to_h36m17(kp: Keypoints2D, adjust: bool = True) -> Keypoints2D:
    """Map 2D keypoints to the H36M-17 layout (see the module docstring for how).

    Args:
        kp: keypoints in ``blazepose33``, ``coco17``, ``coco_wholebody133``, ``sh16`` or
            ``h36m17`` (returned as a copy).
        adjust: apply the :data:`ADJUST` corrections towards Human3.6M's joint
            definitions (default); False gives the raw mapping.

    Returns:
        :class:`Keypoints2D` with layout ``h36m17``: xy (T, 17, 2) pixels, NaN where any
        keypoint a joint is made from is missing; score (T, 17) = minimum score of those
        keypoints (0 where missing); times, size and fps unchanged.

    Raises:
        WsgcnError: the layout cannot be mapped.
    """
    w = mapping_matrix(kp.layout, adjust)
    used = w != 0.0
    missing = ~np.isfinite(kp.xy).all(axis=-1)                           # (T, J)
    xy = np.einsum("kj,tjc->tkc", w, np.where(missing[..., None], 0.0, kp.xy))
    out_missing = (missing.astype(np.float32) @ used.T.astype(np.float32)) > 0
    xy[out_missing] = np.nan
    score = np.stack([kp.score[:, used[k]].min(axis=1) for k in range(17)], axis=1) \
        if kp.num_frames else np.zeros((0, 17), np.float32)
    score = np.where(out_missing, 0.0, score)
    return Keypoints2D("h36m17", xy.astype(np.float32), score.astype(np.float32),
                       kp.times.copy(), kp.width, kp.height, kp.fps)
