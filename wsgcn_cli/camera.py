"""Camera model: world -> camera transform and perspective projection with distortion.

The model is Human3.6M's (``shared/CONVENTIONS.md``, verified against mmpose's H36M
ground truth to 0.000 px)::

    Xc = R_world_to_cam @ (X_world - T_center_world)
    x, y = Xc[0] / Xc[2], Xc[1] / Xc[2];  r2 = x*x + y*y
    radial = 1 + k1*r2 + k2*r2**2 + k3*r2**3;  tan = p1*y + p2*x
    u = f * ([x, y] * (radial + tan) + [p2, p1] * r2) + c

Camera frame: x right, y down, z forward (away from the camera). Image: pixels, origin
top-left. The functions take numpy arrays or torch tensors (projection is written with
operators only, so it is differentiable in torch and used by the reprojection loss).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsgcn_cli.errors import WsgcnError


@dataclass(frozen=True)
class Camera:
    """Intrinsics and extrinsics of one calibrated camera.

    Attributes:
        id: camera name (e.g. ``"54138969"``).
        R: (3, 3) rotation, world -> camera.
        T: (3,) camera centre in world coordinates (same unit as the world points).
        f: (2,) focal lengths in pixels; c: (2,) principal point in pixels.
        k: (3,) radial distortion k1..k3; p: (2,) tangential distortion p1, p2.
        width, height: image size in pixels.
    """

    id: str
    R: np.ndarray
    T: np.ndarray
    f: np.ndarray
    c: np.ndarray
    k: np.ndarray
    p: np.ndarray
    width: int
    height: int

    def world_to_camera(self, x_world):
        """World points (..., 3) -> camera coordinates (..., 3), same unit."""
        return world_to_camera(x_world, self.R, self.T)

    def project(self, x_cam):
        """Camera-frame points (..., 3) -> pixels (..., 2) with distortion."""
        return project(x_cam, self.f, self.c, self.k, self.p)


def world_to_camera(x_world, R, T):
    """``R @ (X - T)`` for points (..., 3); R (3,3) world->camera, T (3,) camera centre."""
    return (x_world - T) @ R.T


def camera_to_world(x_cam, R, T):
    """Inverse of :func:`world_to_camera`: ``R.T @ Xc + T`` for points (..., 3)."""
    return x_cam @ R + T


def project(x_cam, f, c, k=None, p=None):
    """Perspective projection with Brown-Conrady distortion (Human3.6M's model).

    Args:
        x_cam: (..., 3) points in the camera frame (any unit; z > 0 in front).
        f, c: (2,) focal length and principal point in pixels (or broadcastable
            (..., 2) per-sample intrinsics).
        k: (3,) radial coefficients or None; p: (2,) tangential coefficients or None.
    Returns:
        (..., 2) pixel coordinates (origin top-left, x right, y down).
    """
    xy = x_cam[..., :2] / x_cam[..., 2:3]
    if k is not None or p is not None:
        r2 = (xy**2).sum(-1, keepdims=True)
        radial = 1.0
        if k is not None:
            radial = 1 + k[..., 0:1] * r2 + k[..., 1:2] * r2**2 + k[..., 2:3] * r2**3
        if p is not None:
            tan = p[..., 0:1] * xy[..., 1:2] + p[..., 1:2] * xy[..., 0:1]
            xy = xy * (radial + tan) + p[..., [1, 0]] * r2
        else:
            xy = xy * radial
    return f * xy + c


def load_h36m_cameras(path: str | Path) -> dict[tuple[str, str], Camera]:
    """Read ``h36m_cameras.json`` into ``{(subject, camera_id): Camera}``.

    Units: ``T`` in millimetres (world frame, z up), intrinsics in pixels.
    Raises WsgcnError if the file is missing or malformed.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise WsgcnError(f"camera file not found: {path}")
    except (OSError, ValueError) as e:
        raise WsgcnError(f"cannot read camera file {path}: {e}")
    cams = {}
    for subject, entries in raw.items():
        for e in entries:
            cams[(subject, str(e["id"]))] = Camera(
                id=str(e["id"]),
                R=np.asarray(e["R_world_to_cam"], dtype=np.float64),
                T=np.asarray(e["T_center_world_mm"], dtype=np.float64),
                f=np.asarray(e["f"], dtype=np.float64),
                c=np.asarray(e["c"], dtype=np.float64),
                k=np.asarray(e["k"], dtype=np.float64),
                p=np.asarray(e["p"], dtype=np.float64),
                width=int(e["res_w"]),
                height=int(e["res_h"]),
            )
    return cams


def default_intrinsics(width: int, height: int, fov_deg: float = 55.0):
    """Pinhole intrinsics for an uncalibrated video: focal from an assumed field of view.

    ``f = 0.5 * max(width, height) / tan(fov/2)`` (the horizontal field of view of the
    longer side), principal point at the image centre, no distortion. 55 degrees is a
    typical phone/camcorder main camera. Returns (f (2,), c (2,)) in pixels.
    """
    f = 0.5 * max(width, height) / np.tan(np.radians(fov_deg) / 2)
    return np.array([f, f]), np.array([width / 2.0, height / 2.0])
