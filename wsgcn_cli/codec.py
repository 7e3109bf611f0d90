"""Normalisation codec shared by training, evaluation and ``lift``.

2D (lifter input), two modes, recorded in every weights file:

* ``"screen"``: VideoPose3D's normalised screen coordinates,
  ``u = x / w * 2 - 1``, ``v = y / w * 2 - h / w`` (both divided by the width so the
  aspect ratio is kept). Depends on the image size and the person's place in it.
* ``"root_scale"``: root-centred and scale-normalised pixels,
  ``(xy - xy[root]) / s`` with ``s`` the root-mean-square distance of the keypoints
  from the root. Independent of image size, position and the person's size in the
  frame, so a model trained on Human3.6M sees the same kind of input from any video.
* ``"virtual_camera"``: ``root_scale`` after a perspective correction (the perspective
  crop of Yu, Salzmann, Fua, Rhodin, "PCLs: Geometry-aware Neural Reconstruction of 3D
  Pose with Perspective Crop Layers", CVPR 2021): the keypoints are re-projected into a
  virtual camera with the same centre, rotated to look straight at the root
  (:func:`virtual_camera_rotation`). ``root_scale`` removes where the person is in the
  image, and with it the direction the camera sees them from (a person 15 degrees off
  the optical axis is seen 15 degrees from the side); here that direction is kept
  exactly, by geometry. Needs the intrinsics (focal length, principal point, pixels);
  the model predicts the pose in the virtual camera and :func:`from_virtual_camera`
  rotates it back.

3D (lifter output): root-relative camera coordinates in metres (x right, y down,
z forward; every joint minus joint 0, the pelvis). Datasets store millimetres; metrics
report millimetres.
"""

from __future__ import annotations

import warnings

import numpy as np

from wsgcn_cli.camera import _is_torch

MODES = ("screen", "root_scale", "virtual_camera")
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
    with warnings.catch_warnings():  # a pose without any keypoint: NaN, then scale 1
        warnings.simplefilter("ignore", RuntimeWarning)
        scale = np.sqrt(np.nanmean((rel**2).sum(-1), axis=-1))
    scale = np.where(np.isfinite(scale) & (scale > 1e-6), scale, 1.0).astype(np.float32)
    return rel / scale[..., None, None], centre, scale


def root_scale_normalize_torch(xy, root: int = ROOT):
    """:func:`root_scale_normalize` for complete poses in a torch tensor (B, J, 2) pixels
    -> (B, J, 2) normalised; differentiable (for training through the lifter)."""
    rel = xy - xy[:, root : root + 1]
    scale = (rel**2).sum(-1).mean(-1).sqrt().clamp(min=1e-6)
    return rel / scale[:, None, None]


def _stack(items, axis):
    if _is_torch(items[0]):
        import torch

        return torch.stack(items, axis)
    return np.stack(items, axis)


def _rotation_z_to(d):
    """(..., 3, 3) the smallest rotation taking the optical axis (0, 0, 1) to the unit rays
    ``d`` (..., 3) with ``d_z > 0`` (numpy or torch): Rodrigues' formula for the rotation
    taking unit ``a`` to unit ``b``, ``I + K + K^2 / (1 + a.b)`` with ``K = [a x b]_x``."""
    ax, ay, cz = -d[..., 1], d[..., 0], d[..., 2]  # a x b = z x d = (-d_y, d_x, 0)
    zero, one = ax * 0, ax * 0 + 1
    k = _stack([_stack([zero, zero, ay], -1), _stack([zero, zero, -ax], -1), _stack([-ay, ax, zero], -1)], -2)
    eye = _stack([_stack([one, zero, zero], -1), _stack([zero, one, zero], -1), _stack([zero, zero, one], -1)], -2)
    return eye + k + (k @ k) / (1 + cz)[..., None, None]


def _rays(xy, focal, center):
    """Pixels (..., 2) -> (..., 3) rays ``K^-1 [x, y, 1]`` (numpy or torch)."""
    r = (xy - center) / focal
    return _stack([r[..., 0], r[..., 1], r[..., 0] * 0 + 1], -1)


def virtual_camera_rotation(root_px, focal, center):
    """Rotation of the virtual camera that looks straight at the root (perspective crop).

    Args:
        root_px: (..., 2) the root keypoint, pixels.
        focal, center: (..., 2) or (2,) focal lengths and principal point, pixels.
    Returns:
        (..., 3, 3) float32 ``R``, virtual -> real camera coordinates: ``R @ [0, 0, 1]``
        is the unit ray to the root and a virtual-camera point ``v`` is ``R @ v`` in the
        real camera. The smallest rotation that does it (axis perpendicular to the optical
        axis and the ray: no roll about the ray). numpy in, numpy out; torch in, torch out
        (differentiable).
    """
    if _is_torch(root_px):
        d = _rays(root_px, focal, center)
        return _rotation_z_to(d / d.norm(dim=-1, keepdim=True))
    d = _rays(np.asarray(root_px, np.float64), np.asarray(focal, np.float64), np.asarray(center, np.float64))
    return _rotation_z_to(d / np.linalg.norm(d, axis=-1, keepdims=True)).astype(np.float32)


def virtual_camera_normalize(xy, focal, center, root: int = ROOT):
    """Pixels (..., J, 2) -> (``root_scale`` input in the virtual camera (..., J, 2),
    rotation ``R`` (..., 3, 3) virtual -> real camera; see :func:`virtual_camera_rotation`).

    Each keypoint's ray ``K^-1 [x, y, 1]`` is rotated into the virtual camera (``R^T``)
    and projected there (root at 0), then scale-normalised as :func:`root_scale_normalize`
    (the virtual focal length cancels). ``focal``/``center``: (..., 2) or (2,) pixels.
    numpy (float32) or torch (complete poses, differentiable) in and out.
    """
    if _is_torch(xy):
        rot = virtual_camera_rotation(xy[..., root, :], focal, center)
        v = _rays(xy, focal[..., None, :], center[..., None, :]) @ rot
        return root_scale_normalize_torch(v[..., :2] / v[..., 2:], root), rot
    xy = np.asarray(xy, np.float32)
    focal = np.asarray(focal, np.float32)
    center = np.asarray(center, np.float32)
    rot = virtual_camera_rotation(xy[..., root, :], focal, center)
    v = _rays(xy, focal[..., None, :], center[..., None, :]) @ rot  # row vectors: R^T r
    return root_scale_normalize(v[..., :2] / v[..., 2:])[0], rot


def to_virtual_camera(pose, rot):
    """Real camera -> virtual camera: (..., J, 3) poses, (..., 3, 3) ``R`` -> ``R^T p``."""
    return pose @ rot


def from_virtual_camera(pose, rot):
    """Virtual camera -> real camera: (..., J, 3) poses, (..., 3, 3) ``R`` -> ``R p``."""
    return pose @ (rot.transpose(-1, -2) if _is_torch(rot) else np.swapaxes(rot, -1, -2))


def encode_2d(xy, mode: str, width=None, height=None, focal=None, center=None):
    """Lifter input from pixel keypoints (..., J, 2) in the given codec mode.

    ``width`` and ``height`` (pixels) are needed by ``"screen"`` only; ``focal`` and
    ``center`` ((..., 2) or (2,) pixels) by ``"virtual_camera"`` only (whose rotation
    :func:`virtual_camera_normalize` also returns). Raises ValueError for an unknown mode
    or a missing argument.
    """
    if mode == "root_scale":
        return root_scale_normalize(xy)[0]
    if mode == "virtual_camera":
        if focal is None or center is None:
            raise ValueError("virtual_camera normalisation needs the focal length and principal point")
        return virtual_camera_normalize(xy, focal, center)[0]
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
