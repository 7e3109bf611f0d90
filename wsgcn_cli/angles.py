"""Joint angles of H36M-17 poses in wsgcn's world frame, in degrees.

Input: ``keypoints_3d_world`` (T, 17, 3), metres, wsgcn's world frame (y up, floor at
y = 0, right-handed; see :mod:`wsgcn_cli.io.posefile`). Any unit works: angles do not
depend on scale. A frame with a NaN joint gives NaN for the angles that use that joint.

Every angle is 0 in upright standing (legs straight down, arms hanging, trunk vertical)
and derived from joint positions only. Body axes, per frame:

* pelvis lateral axis ``L``: RHip -> LHip (towards the person's left);
* pelvis up axis ``U``: pelvis (joint 0) -> Spine, made perpendicular to ``L``;
* pelvis forward axis ``F = L x U`` (right-handed: the way the pelvis faces).
* trunk axis: pelvis -> Thorax; horizontal forward / right: ``F`` and ``-L`` with their
  vertical parts removed (the pelvis heading).

=========================== =============================================================
angle                       definition (sign)
=========================== =============================================================
trunk_lean_forward          angle of the trunk axis from the world vertical (+y), in the
                            vertical plane through the pelvis heading: atan2(trunk . F_h,
                            trunk . y); + leaning forward, - leaning back
trunk_lean_right            the same in the vertical plane through the person's right:
                            atan2(trunk . R_h, trunk . y); + leaning to the person's right
trunk_rotation              twist of the shoulder line (RShoulder -> LShoulder) against the
                            hip line (RHip -> LHip) about the world vertical, both projected
                            on the floor; + the shoulders turned to the person's left
                            (counter-clockwise seen from above)
hip_flexion_l / _r          thigh (hip joint -> knee) in the pelvis' sagittal plane (U, F):
                            atan2(thigh . F, -thigh . U); + thigh forward (flexion),
                            - behind (extension)
hip_abduction_l / _r        angle between the thigh and the pelvis' sagittal plane:
                            asin(thigh_unit . S) with S = L for the left leg and -L for the
                            right; + away from the midline (abduction), - across it
knee_flexion_l / _r         angle between the thigh (hip -> knee) and the shank (knee ->
                            ankle); 0 straight, always >= 0 (hyperextension cannot be told
                            apart without a knee axis)
shoulder_elevation_l / _r   angle between the upper arm (shoulder -> elbow) and the trunk's
                            downward axis (Thorax -> pelvis): 0 arm hanging, 90 arm
                            horizontal (T-pose), 180 straight overhead; in any direction
elbow_flexion_l / _r        angle between the upper arm (shoulder -> elbow) and the forearm
                            (elbow -> wrist); 0 straight, >= 0
=========================== =============================================================

Not provided: ankle dorsiflexion (H36M-17's "Foot" joints are the ankles; without toe
or heel keypoints the foot's direction is unknown), wrist, neck and hip/shoulder axial
rotation (no keypoint fixes the twist of a limb about its own axis).

The pelvis up axis comes from the Spine keypoint (H36M-17 has no other pelvic landmark),
so bending of the lower back shows partly as hip flexion. These are keypoint angles in
the spirit of OpenSim's coordinate names (``hip_flexion_r``, ...), not the result of
OpenSim's inverse kinematics on a musculoskeletal model.
"""

from __future__ import annotations

import numpy as np

from wsgcn_cli.errors import WsgcnError

#: Names of the angles :func:`joint_angles` returns, in column order (degrees).
ANGLE_NAMES = (
    "trunk_lean_forward", "trunk_lean_right", "trunk_rotation",
    "hip_flexion_l", "hip_flexion_r", "hip_abduction_l", "hip_abduction_r",
    "knee_flexion_l", "knee_flexion_r",
    "shoulder_elevation_l", "shoulder_elevation_r", "elbow_flexion_l", "elbow_flexion_r",
)

# H36M-17 indices (shared/CONVENTIONS.md)
_PELVIS, _RHIP, _RKNEE, _RANKLE, _LHIP, _LKNEE, _LANKLE, _SPINE, _THORAX = range(9)
_LSHO, _LELB, _LWRI, _RSHO, _RELB, _RWRI = 11, 12, 13, 14, 15, 16
_UP = np.array([0.0, 1.0, 0.0])


def _unit(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=-1)


def _between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between vectors a and b (..., 3) in degrees, robust near 0 and 180."""
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), _dot(a, b)))


def pelvis_axes(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pelvis' lateral ``L``, up ``U`` and forward ``F`` unit axes, each (T, 3).

    ``L``: RHip -> LHip; ``U``: pelvis -> Spine made perpendicular to ``L``; ``F = L x U``.
    ``joints``: (T, 17, 3) H36M-17 positions in a right-handed frame.
    """
    lat = _unit(joints[:, _LHIP] - joints[:, _RHIP])
    up = joints[:, _SPINE] - joints[:, _PELVIS]
    up = _unit(up - _dot(up, lat)[:, None] * lat)
    return lat, up, np.cross(lat, up)


def joint_angles(joints_world: np.ndarray) -> dict[str, np.ndarray]:
    """Joint angles of each frame, as defined in this module's docstring.

    Args:
        joints_world: (T, 17, 3) H36M-17 joints in wsgcn's world frame (y up; metres,
            though the unit does not matter); NaN joints give NaN angles.

    Returns:
        ``{name: (T,) float64 degrees}`` for every name in :data:`ANGLE_NAMES`, in that order.

    Raises:
        WsgcnError: ``joints_world`` is not (T, 17, 3).
    """
    j = np.asarray(joints_world, np.float64)
    if j.ndim != 3 or j.shape[1:] != (17, 3):
        raise WsgcnError(f"joint angles need (T, 17, 3) H36M-17 world joints, got shape {j.shape}")
    lat, up, fwd = pelvis_axes(j)
    out: dict[str, np.ndarray] = {}

    # Trunk against the world vertical, in the planes of the pelvis heading.
    trunk = j[:, _THORAX] - j[:, _PELVIS]
    fwd_h = _unit(fwd - _dot(fwd, _UP)[:, None] * _UP)
    right_h = np.cross(fwd_h, _UP)
    out["trunk_lean_forward"] = np.degrees(np.arctan2(_dot(trunk, fwd_h), trunk @ _UP))
    out["trunk_lean_right"] = np.degrees(np.arctan2(_dot(trunk, right_h), trunk @ _UP))
    hips = (j[:, _LHIP] - j[:, _RHIP]) * [1.0, 0.0, 1.0]
    shoulders = (j[:, _LSHO] - j[:, _RSHO]) * [1.0, 0.0, 1.0]
    # counter-clockwise seen from above (+y towards the viewer): sign of (hips x shoulders) . y
    out["trunk_rotation"] = np.degrees(np.arctan2(np.cross(hips, shoulders) @ _UP, _dot(hips, shoulders)))

    for side, (hip, knee, ankle), s in (("l", (_LHIP, _LKNEE, _LANKLE), 1.0), ("r", (_RHIP, _RKNEE, _RANKLE), -1.0)):
        thigh = j[:, knee] - j[:, hip]
        shank = j[:, ankle] - j[:, knee]
        out[f"hip_flexion_{side}"] = np.degrees(np.arctan2(_dot(thigh, fwd), -_dot(thigh, up)))
        with np.errstate(invalid="ignore"):
            out[f"hip_abduction_{side}"] = np.degrees(np.arcsin(np.clip(_dot(_unit(thigh), s * lat), -1, 1)))
        out[f"knee_flexion_{side}"] = _between(thigh, shank)

    down = j[:, _PELVIS] - j[:, _THORAX]
    for side, (sho, elb, wri) in (("l", (_LSHO, _LELB, _LWRI)), ("r", (_RSHO, _RELB, _RWRI))):
        out[f"shoulder_elevation_{side}"] = _between(j[:, elb] - j[:, sho], down)
        out[f"elbow_flexion_{side}"] = _between(j[:, elb] - j[:, sho], j[:, wri] - j[:, elb])
    return {k: out[k] for k in ANGLE_NAMES}
