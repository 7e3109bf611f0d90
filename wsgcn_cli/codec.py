"""Normalisation codec shared by training, evaluation and ``lift``.

2D (lifter input), two modes, recorded in every weights file:

* ``"screen"``: VideoPose3D's normalised screen coordinates,
  ``u = x / w * 2 - 1``, ``v = y / w * 2 - h / w`` (both divided by the width so the
  aspect ratio is kept). Depends on the image size and the person's place in it.
* ``"root_scale"``: root-centred and scale-normalised pixels,
  ``(xy - xy[root]) / s`` with ``s`` the root-mean-square distance of the keypoints
  from the root. Independent of image size, position and the person's size in the
  frame, so a model trained on Human3.6M sees the same kind of input from any video.

3D (lifter output): root-relative camera coordinates in metres (x right, y down,
z forward; every joint minus joint 0, the pelvis). Datasets store millimetres; metrics
report millimetres.
"""

from __future__ import annotations

import numpy as np

MODES = ("screen", "root_scale")
ROOT = 0


def screen_normalize(xy, width, height):
    """Pixels (..., 2) -> VideoPose3D normalised screen coordinates (..., 2)."""
    out = xy / width * 2.0
    out[..., 0] -= 1.0
    out[..., 1] -= height / width
    return out


def screen_denormalize(uv, width, height):
    """Inverse of :func:`screen_normalize`: (..., 2) -> pixels."""
    xy = uv.copy()
    xy[..., 0] += 1.0
    xy[..., 1] += height / width
    return xy * width / 2.0


def root_scale_normalize(xy, root: int = ROOT):
    """Pixels (..., J, 2) -> (normalised (..., J, 2), centre (..., 2), scale (...)).

    ``centre`` is the root keypoint, ``scale`` the RMS distance of the keypoints from it
    in pixels (NaN keypoints are ignored). A pose whose keypoints all coincide gets
    scale 1 to avoid a division by zero.
    """
    xy = np.asarray(xy, dtype=np.float32)
    centre = xy[..., root, :]
    rel = xy - centre[..., None, :]
    scale = np.sqrt(np.nanmean((rel**2).sum(-1), axis=-1))
    scale = np.where(np.isfinite(scale) & (scale > 1e-6), scale, 1.0).astype(np.float32)
    return rel / scale[..., None, None], centre, scale


def root_scale_normalize_torch(xy, root: int = ROOT):
    """:func:`root_scale_normalize` for complete poses in a torch tensor (B, J, 2) pixels
    -> (B, J, 2) normalised; differentiable (for training through the lifter)."""
    rel = xy - xy[:, root : root + 1]
    scale = (rel**2).sum(-1).mean(-1).sqrt().clamp(min=1e-6)
    return rel / scale[:, None, None]


def encode_2d(xy, mode: str, width=None, height=None):
    """Lifter input from pixel keypoints (..., J, 2) in the given codec mode.

    ``width`` and ``height`` (pixels) are needed by ``"screen"`` only.
    Raises ValueError for an unknown mode.
    """
    if mode == "root_scale":
        return root_scale_normalize(xy)[0]
    if mode == "screen":
        if width is None or height is None:
            raise ValueError("screen normalisation needs the image width and height")
        return screen_normalize(np.asarray(xy, dtype=np.float32), width, height)
    raise ValueError(f"unknown codec mode {mode!r}; known: {MODES}")


def root_relative(pose, root: int = ROOT):
    """Poses (..., J, 3) minus their root joint (same unit)."""
    return pose - pose[..., root : root + 1, :]


def to_metres_root_relative(pose_mm):
    """Camera-frame poses in millimetres (..., J, 3) -> root-relative metres."""
    return root_relative(pose_mm) / 1000.0


def flip_2d(x, perm):
    """Mirror normalised 2D (..., J, 2) (root-centred or screen) and swap left/right.

    ``perm`` is the layout's left/right permutation (Skeleton.flip_permutation).
    For ``"screen"`` inputs the mirror is about u = 0 (the image centre line).
    """
    out = x[..., perm, :].copy() if isinstance(x, np.ndarray) else x[..., perm, :].clone()
    out[..., 0] = -out[..., 0]
    return out


def flip_3d(pose, perm):
    """Mirror camera-frame 3D (..., J, 3) in x and swap left/right keypoints."""
    out = pose[..., perm, :].copy() if isinstance(pose, np.ndarray) else pose[..., perm, :].clone()
    out[..., 0] = -out[..., 0]
    return out
