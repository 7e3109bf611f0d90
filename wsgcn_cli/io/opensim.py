"""OpenSim files: marker trajectories (``.trc``) and joint angles (``.mot``).

* ``.trc`` (Track Row Column, Motion Analysis Corp.; the marker format OpenSim's
  ``TRCFileAdapter`` reads): one marker per H36M-17 joint (:data:`MARKER_NAMES`, the
  H36M-17 names with ``/`` -> ``_``), positions in **millimetres** in wsgcn's world frame:
  **Y up** (OpenSim's vertical), floor at y = 0, x towards the camera's right, z towards
  the camera, origin under the first frame's pelvis. OpenSim models face +X; the
  markers face wherever the person faced, which does not matter to inverse kinematics
  (the model's pelvis is free) but does to a model's default view. Tab-separated: the
  ``PathFileType 4 (X/Y/Z)`` line, the ``DataRate CameraRate NumFrames NumMarkers Units
  OrigDataRate OrigDataStartFrame OrigNumFrames`` header and its values, ``Frame# Time``
  and the marker names (each over its three columns), ``X1 Y1 Z1 X2 ...``, a blank
  line, then one row per frame (frames numbered from 1, times in seconds). Frames
  without a pose have ``NaN`` coordinates.
* ``.mot`` (OpenSim Storage, version 1): the joint angles of :mod:`wsgcn_cli.angles` in
  **degrees** (``inDegrees=yes``): a name line, ``version=1``, ``nRows``, ``nColumns``
  (``time`` included), ``inDegrees=yes``, ``endheader``, then the tab-separated ``time``
  and angle columns. Frames without a pose are left out (the ``time`` column says which
  frames are there): OpenSim's ``Storage`` reader, which the GUI uses for motions, stops
  at the first row holding a NaN. The columns are keypoint angles, not the coordinates
  of an OpenSim model (see :mod:`wsgcn_cli.angles`).

Both writers go through :mod:`wsgcn_cli.io.atomic`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.io.atomic import atomic_open
from wsgcn_cli.skeletons import H36M17

#: TRC marker name of each H36M-17 joint.
MARKER_NAMES = tuple(n.replace("/", "_") for n in H36M17.joint_names)


def _check(joints_world: np.ndarray, times: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    j = np.asarray(joints_world, np.float64)
    t = np.asarray(times, np.float64)
    if j.ndim != 3 or j.shape[1:] != (17, 3):
        raise WsgcnError(f"{what} needs (T, 17, 3) H36M-17 world joints, got shape {j.shape}")
    if t.shape != (len(j),):
        raise WsgcnError(f"{what} needs one time per frame: {len(j)} frames, times of shape {t.shape}")
    return j, t


def _num(v: float, fmt: str) -> str:
    return format(v, fmt) if np.isfinite(v) else "NaN"


def write_trc(path: str | Path, joints_world: np.ndarray, times: np.ndarray, fps: float) -> Path:
    """Write H36M-17 world joints as OpenSim marker trajectories (see the module docstring).

    Args:
        path: destination ``.trc``.
        joints_world: (T, 17, 3) metres, wsgcn's world frame (y up); NaN where missing.
        times: (T,) seconds of each frame.
        fps: frame rate for ``DataRate`` / ``CameraRate`` / ``OrigDataRate`` (> 0).

    Returns:
        ``path`` as a Path.

    Raises:
        WsgcnError: bad shapes, fps <= 0, or an unwritable destination.
    """
    j, t = _check(joints_world, times, "TRC export")
    if not fps > 0:
        raise WsgcnError(f"TRC export needs a frame rate > 0, got {fps}")
    mm = j * 1000.0
    n, m = len(j), len(MARKER_NAMES)
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{Path(path).name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{fps:.6g}\t{fps:.6g}\t{n}\t{m}\tmm\t{fps:.6g}\t1\t{n}",
        "\t".join(["Frame#", "Time"] + [f"{name}\t\t" for name in MARKER_NAMES]).rstrip("\t"),
        "\t".join(["", ""] + [f"{a}{k + 1}" for k in range(m) for a in "XYZ"]),
        "",
    ]
    for i in range(n):
        lines.append("\t".join([str(i + 1), f"{t[i]:.6f}"] + [_num(v, ".4f") for v in mm[i].ravel()]))
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    return Path(path)


def write_mot(path: str | Path, joints_world: np.ndarray, times: np.ndarray) -> Path:
    """Write the joint angles of H36M-17 world joints as an OpenSim ``.mot`` (degrees).

    Args:
        path: destination ``.mot``.
        joints_world: (T, 17, 3) wsgcn's world frame (y up), metres; NaN where missing.
        times: (T,) seconds of each frame (the ``time`` column).

    Returns:
        ``path`` as a Path. Columns: ``time`` and :data:`wsgcn_cli.angles.ANGLE_NAMES`;
        one row per frame whose angles are all defined (frames with NaN are left out).

    Raises:
        WsgcnError: bad shapes, no frame with a pose, or an unwritable destination.
    """
    from wsgcn_cli.angles import joint_angles

    j, t = _check(joints_world, times, "MOT export")
    angles = joint_angles(j)
    names = list(angles)
    table = np.stack([angles[k] for k in names], axis=1)
    keep = np.isfinite(table).all(axis=1)
    if not keep.any():
        raise WsgcnError("cannot write a .mot: no frame has a complete world pose")
    table, t = table[keep], t[keep]
    lines = [Path(path).stem, "version=1", f"nRows={len(t)}", f"nColumns={len(names) + 1}", "inDegrees=yes",
             "endheader", "\t".join(["time"] + names)]
    for i in range(len(t)):
        lines.append("\t".join([f"{t[i]:.6f}"] + [f"{v:.4f}" for v in table[i]]))
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    return Path(path)
