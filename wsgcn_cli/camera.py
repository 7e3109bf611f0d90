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


# ---------------------------------------------------------------------------------------
# Root (camera-frame translation) estimation from root-relative 3D and 2D keypoints.
# ---------------------------------------------------------------------------------------

def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def undistort_normalized(kp2d_px, f, c, k=None, p=None, iterations: int = 10):
    """Pixels (..., 2) -> undistorted normalised image coordinates ``(x/z, y/z)`` (..., 2).

    Inverts :func:`project`'s Brown-Conrady distortion by fixed-point iteration
    (``x <- (x_d - [p2, p1] r2) / (radial + tan)``), which converges for the mild
    distortion of Human3.6M's cameras (|k1| < 0.3). Without ``k`` and ``p`` it is just
    ``(kp2d_px - c) / f``. numpy arrays or torch tensors (differentiable).

    Args:
        kp2d_px: (..., 2) pixel coordinates (origin top-left, x right, y down).
        f, c: (2,) or broadcastable (..., 2) focal length and principal point, pixels.
        k: (3,) / (..., 3) radial coefficients or None; p: (2,) / (..., 2) tangential
            coefficients or None.
        iterations: fixed-point iterations (10 gives < 1e-6 px on Human3.6M's cameras).
    """
    xd = (kp2d_px - c) / f
    if k is None and p is None:
        return xd
    x = xd
    for _ in range(iterations):
        r2 = (x**2).sum(-1, keepdims=True)
        radial = 1.0
        if k is not None:
            radial = 1 + k[..., 0:1] * r2 + k[..., 1:2] * r2**2 + k[..., 2:3] * r2**3
        if p is not None:
            tan = p[..., 0:1] * x[..., 1:2] + p[..., 1:2] * x[..., 0:1]
            x = (xd - p[..., [1, 0]] * r2) / (radial + tan)
        else:
            x = xd / radial
    return x


def estimate_root_translation(pose3d_rel_m, kp2d_px, f, c, weights=None, k=None, p=None,
                              refine: int = 2):
    """Camera-frame root position that best reprojects a root-relative 3D pose onto 2D.

    Closed-form linear least squares on the pinhole model. With the root-relative joint
    ``P_j = (X_j, Y_j, Z_j)``, the unknown root ``T = (tx, ty, tz)`` and the undistorted
    normalised 2D ``(x_j, y_j) = ((u_j - cx) / fx, (v_j - cy) / fy)``, projection
    ``x_j = (X_j + tx) / (Z_j + tz)`` is linear in T after multiplying out::

        tx - x_j tz = x_j Z_j - X_j,     ty - y_j tz = y_j Z_j - Y_j

    2J equations in 3 unknowns; the weighted normal equations are solved in closed form
    (no matrix inverse: tx and ty are eliminated, tz is a ratio of weighted sums), so it
    is vectorised over any leading dimensions. This minimises an *algebraic* error (the
    image residual times the joint's depth); ``refine`` re-solves with the weights
    divided by ``(f (Z_j + tz))^2`` from the previous solution (Sturm-style iterative
    reweighting), which turns it into the pixel reprojection error to first order —
    the "weak-perspective, then refine" scheme used to place VideoPose3D-style
    root-relative outputs in the camera frame. With noise-free 2D of an exact pose the
    solution is exact for any ``refine``.

    Works on numpy arrays and torch tensors; in torch it is differentiable with respect
    to the pose and the 2D (use ``.detach()`` on the result for a fixed root).

    Args:
        pose3d_rel_m: (..., J, 3) root-relative camera-frame pose, metres (x right,
            y down, z forward).
        kp2d_px: (..., J, 2) 2D keypoints in pixels; NaN keypoints are ignored.
        f, c: focal length and principal point in pixels, (2,) for one camera or (..., 2)
            per sample (leading shape of the pose without J).
        weights: (..., J) non-negative per-joint confidences, or None (all 1).
        k, p: radial (3,) / (..., 3) and tangential (2,) / (..., 2) distortion as in
            :func:`project` (the 2D is undistorted first), or None for a pinhole camera.
        refine: reweighting iterations after the algebraic solution (0 = algebraic only).

    Returns:
        (..., 3) root position in the camera frame, metres (same unit as the pose).
        NaN (numpy) where fewer than two distinct valid keypoints make it undetermined;
        in torch such rows are finite but meaningless (give them zero weight in a loss).
        No check that tz > 0 (a person behind the camera) is made.
    """
    torch_mode = _is_torch(pose3d_rel_m)
    if torch_mode:
        import torch

        as_f = lambda a: a if a is None or _is_torch(a) else torch.as_tensor(  # noqa: E731
            np.asarray(a), dtype=pose3d_rel_m.dtype, device=pose3d_rel_m.device)
        f, c, k, p, kp2d_px = as_f(f), as_f(c), as_f(k), as_f(p), as_f(kp2d_px)
        where, isfinite, zeros = torch.where, torch.isfinite, torch.zeros_like
    else:
        pose3d_rel_m = np.asarray(pose3d_rel_m, dtype=np.float64)
        kp2d_px = np.asarray(kp2d_px, dtype=np.float64)
        f, c = np.asarray(f, dtype=np.float64), np.asarray(c, dtype=np.float64)
        k = None if k is None else np.asarray(k, dtype=np.float64)
        p = None if p is None else np.asarray(p, dtype=np.float64)
        where, isfinite, zeros = np.where, np.isfinite, np.zeros_like
    if pose3d_rel_m.shape[-1] != 3 or kp2d_px.shape[-1] != 2 \
            or pose3d_rel_m.shape[:-1] != kp2d_px.shape[:-1]:
        raise WsgcnError(f"root estimation needs a pose (..., J, 3) and 2D (..., J, 2) with the "
                         f"same leading shape; got {tuple(pose3d_rel_m.shape)} and {tuple(kp2d_px.shape)}")

    # Per-sample intrinsics (..., 2) get a joint axis so they broadcast with (..., J, 2).
    f, c, k, p = (a if a is None or a.ndim <= 1 else a[..., None, :] for a in (f, c, k, p))
    ok = isfinite(kp2d_px).all(-1) & isfinite(pose3d_rel_m).all(-1)              # (..., J)
    w0 = ok * 1.0 if weights is None else where(ok, weights, zeros(weights))
    kp = where(ok[..., None], kp2d_px, zeros(kp2d_px))
    pose = where(ok[..., None], pose3d_rel_m, zeros(pose3d_rel_m))
    xy = undistort_normalized(kp, f, c, k, p)
    x, y = xy[..., 0], xy[..., 1]
    X, Y, Z = pose[..., 0], pose[..., 1], pose[..., 2]
    bx, by = x * Z - X, y * Z - Y
    fx, fy = f[..., 0], f[..., 1]

    def solve(wx, wy):
        sx, sy = wx.sum(-1), wy.sum(-1)
        sx = where(sx > 0, sx, 1.0 + 0.0 * sx)
        sy = where(sy > 0, sy, 1.0 + 0.0 * sy)
        mx, my = (wx * x).sum(-1), (wy * y).sum(-1)
        sbx, sby = (wx * bx).sum(-1), (wy * by).sum(-1)
        q = (wx * x * bx).sum(-1) + (wy * y * by).sum(-1)
        sxx = (wx * x * x).sum(-1) + (wy * y * y).sum(-1)
        den = sxx - mx * mx / sx - my * my / sy
        bad = ~(den > 1e-12 * sxx)
        den = where(bad, 1.0 + 0.0 * den, den)
        tz = (mx * sbx / sx + my * sby / sy - q) / den
        tx = (sbx + mx * tz) / sx
        ty = (sby + my * tz) / sy
        return tx, ty, tz, bad

    wx, wy = w0 * fx**2, w0 * fy**2
    tx, ty, tz, bad = solve(wx, wy)
    for _ in range(refine):
        depth = Z + tz[..., None]
        depth = where(depth.abs() > 1e-6 if torch_mode else np.abs(depth) > 1e-6, depth,
                      1e-6 + 0.0 * depth)
        tx, ty, tz, bad2 = solve(wx / depth**2, wy / depth**2)
        bad = bad | bad2
    if torch_mode:
        import torch

        return torch.stack([tx, ty, tz], -1)
    out = np.stack([tx, ty, tz], -1)
    out[bad] = np.nan
    return out
