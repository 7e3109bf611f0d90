"""The person's trajectory and a world frame: camera-space root, floor, gravity, foot contact.

The lifter gives root-relative 3D in the camera frame (x right, y down, z forward,
metres). Over a whole clip, :func:`estimate_world` adds:

1. **Root trajectory** (``root_camera_m``, (T, 3)): per frame, the pelvis position in the
   camera frame that best reprojects the lifted pose onto the 2D keypoints
   (:func:`wsgcn_cli.camera.estimate_root_translation`, closed-form least squares with
   reprojection reweighting), from pinhole intrinsics: ``focal_px``, or a field of view
   (:func:`wsgcn_cli.camera.default_intrinsics`, :data:`DEFAULT_FOV_DEG`), principal point
   at the image centre unless given (``principal_px``, ``--principal-point``), no distortion,
   on the keypoints inside the image (:data:`MIN_ROOT_JOINTS`). Then smoothed with a zero-phase Butterworth
   low-pass over the whole clip (:func:`wsgcn_cli.smoothing.butterworth`, order 2,
   ``root_cutoff_hz``): the per-frame depth is noisy (it comes from the ratio of the
   lifted pose's size to its 2D size), a walking person's pelvis is not.
2. **Floor and gravity**: the ankles (H36M-17 ``LFoot`` / ``RFoot``) placed in the camera
   frame; per frame the lower ankle (along the body's mean up direction, thorax minus the
   ankles' midpoint) is a floor-contact candidate; a plane is fitted to the candidates by
   iteratively reweighted total least squares (Tukey biweight on the residuals, MAD
   scale) with a prior towards the body's up direction (:func:`fit_floor`), so that a
   straight walk, whose contact points lie near a line, still gets a defined tilt across
   the line. Gravity is the plane's normal; the floor lies :attr:`WorldOptions.ankle_height_m`
   below the ankle plane (Human3.6M: the lower ankle's median height is 44-69 mm).
3. **World frame** (metres, right-handed): y up (the floor normal), the floor at y = 0,
   the origin on the floor under the first frame's pelvis, x towards the camera's right
   and z towards the camera (both along the floor; see :func:`world_rotation`).
   ``world = R @ camera + t`` (:attr:`World.camera_to_world`, (4, 4)).
4. **Foot contact** ((T, 2) bool, left / right): the ankle within ``contact_height_m`` of
   its resting height above the floor and slower than ``contact_speed_m_s`` (speed of
   the ankle in the world frame after a 6 Hz zero-phase low-pass; a single image has no
   speed, so there the height alone decides).

It needs the whole clip (the smoothing is zero-phase, the floor fits every frame's feet),
so in a lift pipeline it runs after the stream, on the whole :class:`wsgcn_cli.pipeline.Track`
(:meth:`wsgcn_cli.pipeline.Pipeline.whole_clip`). Frames without a pose get NaN (and no
contact). A single image still gets a world frame, from that frame's feet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.options import from_table

#: The assumed field of view (degrees, of the image's longer side: the horizontal one of
#: a landscape video) when no focal length is given; a typical phone or camcorder main
#: camera, and ``wsgcn finetune``'s default.
DEFAULT_FOV_DEG = 55.0
#: H36M-17 ankles (``LFoot``, ``RFoot``): the order of :attr:`World.foot_contact`.
ANKLES = (6, 3)
THORAX = 8
#: Speed estimates of the ankles are low-passed at this cutoff (Hz) first.
CONTACT_SPEED_CUTOFF_HZ = 6.0
#: A frame's root is solved only from keypoints inside the image, and only when at least
#: this many are (else it is unknown, NaN): a detector's guesses for a body part beyond
#: the image edge are squeezed towards it and would place a person walking out of the
#: frame far too deep (sports2d_demo.mp4: 6 m -> 11 m in the last ten frames).
MIN_ROOT_JOINTS = 4


@dataclass
class WorldOptions:
    """A lift pipeline's ``[world]`` table.

    Attributes:
        enabled: run the world stage (``false``: no world outputs in the pose file).
        focal_px: the camera's focal length in pixels; 0 (the default) = unknown, use
            ``fov_deg``. ``wsgcn lift --focal`` replaces it.
        fov_deg: the assumed field of view of the image's longer side (degrees, in
            (10, 170)) when the focal length is unknown. ``--fov`` replaces it.
        root_cutoff_hz: zero-phase low-pass cutoff of the root trajectory (Hz).
        ankle_height_m: the ankle joint's height above the floor when standing on it.
        contact_height_m: an ankle at most this far above its resting height may be in contact.
        contact_speed_m_s: ...and slower than this (m/s).
        prior_m: strength of the up-direction prior of the floor fit (metres; see :func:`fit_floor`).
        principal_px: the principal point ``[cx, cy]`` in pixels (origin top-left), for a
            calibrated camera; empty (the default) = the image centre.
            ``wsgcn lift --principal-point`` replaces it.
    """

    enabled: bool = True
    focal_px: float = 0.0
    fov_deg: float = DEFAULT_FOV_DEG
    root_cutoff_hz: float = 1.0
    ankle_height_m: float = 0.06
    contact_height_m: float = 0.05
    contact_speed_m_s: float = 0.6
    prior_m: float = 0.1
    principal_px: list = field(default_factory=list)

    @classmethod
    def from_spec(cls, table: dict, focal_px: float | None = None, fov_deg: float | None = None,
                  principal_px=None) -> "WorldOptions":
        """From a pipeline's ``[world]`` table; ``focal_px`` / ``fov_deg`` /
        ``principal_px`` (``--focal``, ``--fov``, ``--principal-point``) replace the
        table's. Raises WsgcnError for unknown keys or bad values."""
        o = from_table(cls, table, "world")
        if not isinstance(o.enabled, bool):
            raise WsgcnError(f"[world] enabled must be true or false, got {o.enabled!r}")
        if not _number(o.focal_px) or o.focal_px < 0:
            raise WsgcnError(f"[world] focal_px must be a number of pixels > 0 (or 0: unknown), got {o.focal_px!r}")
        check_camera(o.focal_px or None, o.fov_deg)
        for name in ("root_cutoff_hz", "contact_speed_m_s", "prior_m"):
            if not _number(getattr(o, name)) or getattr(o, name) <= 0:
                raise WsgcnError(f"[world] {name} must be a number > 0, got {getattr(o, name)!r}")
        for name in ("ankle_height_m", "contact_height_m"):
            if not _number(getattr(o, name)) or getattr(o, name) < 0:
                raise WsgcnError(f"[world] {name} must be a number >= 0, got {getattr(o, name)!r}")
        o.principal_px = check_principal_point(o.principal_px, "[world] principal_px")
        check_camera(focal_px, fov_deg)
        if principal_px is not None:
            o.principal_px = check_principal_point(principal_px)
        if focal_px is not None:
            o.focal_px = float(focal_px)
        if fov_deg is not None:
            o.fov_deg = float(fov_deg)
        return o

    def camera(self, width: int, height: int):
        """The intrinsics these options give a ``width`` x ``height`` image: (f (2,),
        c (2,)) pixels; ``focal_px`` if set, else from ``fov_deg`` (:func:`intrinsics`);
        ``principal_px`` if set, else the image centre."""
        f, c = intrinsics(width, height, self.focal_px or None, None if self.focal_px else self.fov_deg)
        return f, (np.asarray(self.principal_px, np.float64) if self.principal_px else c)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_camera(focal_px: float | None = None, fov_deg: float | None = None) -> None:
    """WsgcnError (one line) unless ``focal_px`` is None or > 0 pixels and ``fov_deg`` is
    None or within (10, 170) degrees."""
    if focal_px is not None and not (_number(focal_px) and focal_px > 0):
        raise WsgcnError(f"--focal must be a focal length in pixels > 0, got {focal_px!r}")
    if fov_deg is not None and not (_number(fov_deg) and 10 < fov_deg < 170):
        raise WsgcnError(f"--fov must be a field of view in degrees within (10, 170), got {fov_deg!r}")


def check_principal_point(value, name: str = "--principal-point") -> list:
    """``value`` as ``[cx, cy]`` (floats, pixels) or ``[]`` (none given: the image
    centre); WsgcnError (one line naming ``name``) for anything but two finite numbers."""
    if isinstance(value, (list, tuple)) and len(value) == 0:
        return []
    try:
        items = np.asarray(value, dtype=np.float64) if not isinstance(value, (str, bytes, dict)) else None
    except (TypeError, ValueError):
        items = None
    if items is None or items.shape != (2,) or not np.isfinite(items).all() \
            or any(isinstance(v, bool) for v in np.asarray(value, dtype=object).ravel()):
        raise WsgcnError(f"{name} must be two numbers CX CY in pixels, got {value!r}")
    return [float(items[0]), float(items[1])]


def intrinsics(width: int, height: int, focal_px: float | None = None, fov_deg: float | None = None):
    """Pinhole intrinsics (f (2,), c (2,)) in pixels of a ``width`` x ``height`` image:
    ``focal_px`` if given, else from ``fov_deg`` (default :data:`DEFAULT_FOV_DEG`) with
    :func:`wsgcn_cli.camera.default_intrinsics`; principal point at the image centre.
    Raises WsgcnError for a bad focal length or field of view."""
    from wsgcn_cli.camera import default_intrinsics

    check_camera(focal_px, fov_deg)
    if focal_px is not None:
        return np.array([focal_px, focal_px], np.float64), np.array([width / 2.0, height / 2.0])
    return default_intrinsics(width, height, DEFAULT_FOV_DEG if fov_deg is None else fov_deg)


@dataclass
class World:
    """What :func:`estimate_world` finds (T frames; metres).

    Attributes:
        root_camera_m: (T, 3) the pelvis in the camera frame (x right, y down, z forward),
            smoothed; NaN for frames without a pose.
        keypoints_3d_world: (T, 17, 3) the pose in the world frame (y up, floor at y = 0,
            origin on the floor under the first frame's pelvis, x towards the camera's
            right, z towards the camera); NaN for frames without a pose.
        camera_to_world: (4, 4) rigid transform, ``world = R @ camera + t``.
        foot_contact: (T, 2) bool, left / right ankle on the floor.
        focal_px: the focal length used (pixels).
        up_camera: (3,) the up direction (floor normal) in the camera frame.
    """

    root_camera_m: np.ndarray
    keypoints_3d_world: np.ndarray
    camera_to_world: np.ndarray
    foot_contact: np.ndarray
    focal_px: float
    up_camera: np.ndarray


def root_trajectory(keypoints_2d, keypoints_3d, f, c, fps: float, cutoff_hz: float = 1.0,
                    weights=None, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """The pelvis in the camera frame per frame, smoothed: (T, 3) metres, NaN where missing.

    ``keypoints_2d`` (T, 17, 2) px; ``keypoints_3d`` (T, 17, 3) m root-relative camera
    frame; ``f``, ``c`` (2,) px; ``weights`` (17,) or (T, 17) per-joint weights of the
    solve (e.g. the joints the detector observes directly). With ``image_size`` (width,
    height px), keypoints outside the image get weight 0 and a frame with fewer than
    :data:`MIN_ROOT_JOINTS` weighted keypoints gets no root (NaN). Per frame
    :func:`wsgcn_cli.camera.estimate_root_translation`, then
    :func:`wsgcn_cli.smoothing.butterworth` (order 2, ``cutoff_hz``, each run of frames
    with a root on its own; not for ``fps`` 0).
    """
    from wsgcn_cli.camera import estimate_root_translation
    from wsgcn_cli.smoothing import butterworth

    kp3 = np.asarray(keypoints_3d, np.float64)
    kp2 = np.asarray(keypoints_2d, np.float64)
    w = np.ones(kp3.shape[:2]) if weights is None else \
        np.broadcast_to(np.asarray(weights, np.float64), kp3.shape[:2]).copy()
    if image_size is not None:
        with np.errstate(invalid="ignore"):
            inside = (kp2[..., 0] >= 0) & (kp2[..., 0] <= image_size[0] - 1) \
                & (kp2[..., 1] >= 0) & (kp2[..., 1] <= image_size[1] - 1)
        w = np.where(inside, w, 0.0)
    root = estimate_root_translation(kp3, kp2, f, c, weights=w)
    root[~np.isfinite(kp3).all(axis=(1, 2))] = np.nan
    if image_size is not None:
        root[(w > 0).sum(axis=1) < MIN_ROOT_JOINTS] = np.nan
    return butterworth(root, fps, cutoff_hz, order=2)


def up_prior(points_camera: np.ndarray) -> np.ndarray:
    """The body's mean up direction (3,) in the camera frame from absolute or
    root-relative poses (T, 17, 3): the mean over frames of the unit vector from the
    ankles' midpoint to the thorax. (0, -1, 0) (a level camera) without any pose."""
    p = np.asarray(points_camera, np.float64)
    v = p[:, THORAX] - p[:, list(ANKLES)].mean(1)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    ok = np.isfinite(v).all(-1) & (n[:, 0] > 1e-6)
    if not ok.any():
        return np.array([0.0, -1.0, 0.0])
    u = (v[ok] / n[ok]).mean(0)
    return u / np.linalg.norm(u)


def fit_floor(points, up, weights=None, prior_m: float = 0.1, iterations: int = 10):
    """A plane through floor-contact points, robustly, with a prior on its normal.

    Minimises over unit normals ``n`` the weighted scatter of the points along ``n`` plus
    ``prior_m**2 * (1 - (n . up)**2)``: the smallest eigenvector of
    ``C + prior_m**2 (I - up up^T)`` (``C``, the weighted covariance), so a direction in
    which the points spread by much more than ``prior_m`` is taken from the data and one
    in which they hardly spread (across a straight walk; one frame) from ``up``. Repeated
    with Tukey biweights (c = 4.685) of the residuals over their MAD scale (at least 1 cm).

    Args:
        points: (N, 3) candidate contact points (camera frame, metres); NaN rows ignored.
        up: (3,) unit prior of the normal (the body's up direction).
        weights: (N,) initial weights or None.
    Returns:
        (n (3,) unit normal with ``n . up > 0``, d) for the plane ``n . X = d``; (up, nan)
        without any finite point.
    """
    p = np.asarray(points, np.float64)
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    ok = np.isfinite(p).all(-1)
    p = p[ok]
    w = np.ones(len(p)) if weights is None else np.asarray(weights, np.float64)[ok]
    if len(p) == 0 or w.sum() <= 0:
        return up, float("nan")
    prior = prior_m**2 * (np.eye(3) - np.outer(up, up))
    n = up
    for _ in range(iterations):
        m = (w[:, None] * p).sum(0) / w.sum()
        q = p - m
        cov = (w[:, None, None] * q[:, :, None] * q[:, None, :]).sum(0) / w.sum()
        n = np.linalg.eigh(cov + prior)[1][:, 0]
        n = n if n @ up > 0 else -n
        r = q @ n
        scale = max(1.4826 * np.median(np.abs(r - np.median(r))), 0.01)
        u = r / (4.685 * scale)
        w_new = np.where(np.abs(u) < 1, (1 - u**2) ** 2, 0.0)
        if w_new.sum() <= 0:
            break
        w = w_new
    m = (w[:, None] * p).sum(0) / w.sum()
    return n, float(n @ m)


def world_rotation(up) -> np.ndarray:
    """The (3, 3) rotation camera -> world for the up direction ``up`` (3,) in the camera
    frame: rows are the world axes in camera coordinates, y = up, z = the camera's
    backward direction (-z_cam) along the floor, x = y x z (the camera's right along the
    floor). A camera looking straight along ``up`` uses the image's down direction
    (+y_cam) along the floor as z."""
    y = np.asarray(up, np.float64) / np.linalg.norm(up)
    back = np.array([0.0, 0.0, -1.0])
    if abs(back @ y) > 0.99:
        back = np.array([0.0, 1.0, 0.0])
    z = back - (back @ y) * y
    z /= np.linalg.norm(z)
    return np.stack([np.cross(y, z), y, z])


def estimate_world(keypoints_2d, keypoints_3d, width: int, height: int, fps: float,
                   focal_px: float | None = None, fov_deg: float | None = None,
                   options: WorldOptions | None = None, joint_weights=None,
                   principal_px=None) -> World:
    """Root trajectory, floor, world frame and foot contact of a whole clip (see the module
    docstring for the method and the frames).

    Args:
        keypoints_2d: (T, 17, 2) H36M-17 pixels (origin top-left, x right, y down), NaN
            where missing.
        keypoints_3d: (T, 17, 3) root-relative camera-frame pose, metres; NaN rows for
            frames without a pose.
        width, height: the image size (pixels); fps: frames per second (0: single images,
            no temporal smoothing or speeds).
        focal_px / fov_deg: the intrinsics (:func:`intrinsics`); default: ``options``'
            (``focal_px`` if set, else ``fov_deg``).
        options: :class:`WorldOptions` (default: the defaults).
        joint_weights: (17,) or (T, 17) weights of the joints in the root solve, or None.
        principal_px: (2,) principal point in pixels (default ``options.principal_px``,
            else the image centre).

    Returns a :class:`World`. Raises WsgcnError for mismatched shapes or a bad focal
    length / field of view.
    """
    o = options or WorldOptions()
    kp2 = np.asarray(keypoints_2d, np.float64)
    kp3 = np.asarray(keypoints_3d, np.float64)
    if kp2.ndim != 3 or kp3.shape != kp2.shape[:2] + (3,) or kp2.shape[1:] != (17, 2):
        raise WsgcnError(f"the world stage needs 2D (T, 17, 2) and 3D (T, 17, 3); got {kp2.shape} and {kp3.shape}")
    if focal_px is not None or fov_deg is not None:
        check_camera(focal_px, fov_deg)
        o = replace(o, focal_px=float(focal_px or 0.0), fov_deg=o.fov_deg if fov_deg is None else float(fov_deg))
    if principal_px is not None:
        o = replace(o, principal_px=check_principal_point(principal_px))
    f, c = o.camera(width, height)
    t_frames = len(kp3)
    root = root_trajectory(kp2, kp3, f, c, fps, o.root_cutoff_hz, joint_weights, image_size=(width, height))
    valid = np.isfinite(root).all(-1) & np.isfinite(kp3).all(axis=(1, 2))
    cam = kp3 + root[:, None]
    cam[~valid] = np.nan

    up0 = up_prior(cam[valid])
    ankles = cam[:, list(ANKLES)]                                  # (T, 2, 3)
    h = ankles @ up0                                               # (T, 2) height along the prior
    low = np.nanargmin(np.where(np.isfinite(h), h, np.inf), axis=1)
    cand = ankles[np.arange(t_frames), low][valid]
    n, d_ankle = fit_floor(cand, up0, prior_m=o.prior_m)
    if not math.isfinite(d_ankle):  # no pose at all: a level camera, floor through nothing
        d_ankle = 0.0
    d_floor = d_ankle - o.ankle_height_m

    rot = world_rotation(n)
    first = int(np.flatnonzero(valid)[0]) if valid.any() else None
    p0 = root[first] if first is not None else np.zeros(3)
    origin = p0 - (n @ p0 - d_floor) * n
    t = -rot @ origin
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot, t
    world = cam @ rot.T + t

    contact = foot_contact(world[:, list(ANKLES)], fps, o)
    contact[~valid] = False
    root_out = root.copy()
    root_out[~valid] = np.nan
    return World(root_camera_m=root_out.astype(np.float32), keypoints_3d_world=world.astype(np.float32),
                 camera_to_world=m, foot_contact=contact, focal_px=float(f[0]), up_camera=n)


def foot_contact(ankles_world, fps: float, options: WorldOptions | None = None) -> np.ndarray:
    """(T, 2) bool: the ankles (T, 2, 3) (world frame, metres, y up, floor at y = 0) on the
    floor: height above the floor at most ``ankle_height_m + contact_height_m`` and, when
    ``fps`` > 0 and there are at least 2 frames, speed (after a
    :data:`CONTACT_SPEED_CUTOFF_HZ` zero-phase low-pass) below ``contact_speed_m_s``.
    NaN frames: False."""
    from wsgcn_cli.smoothing import butterworth

    o = options or WorldOptions()
    a = np.asarray(ankles_world, np.float64)
    ok = np.isfinite(a).all(-1)
    with np.errstate(invalid="ignore"):
        near = a[..., 1] <= o.ankle_height_m + o.contact_height_m
    if fps and fps > 0 and len(a) >= 2:
        smooth = butterworth(a, fps, CONTACT_SPEED_CUTOFF_HZ)
        speed = np.linalg.norm(np.gradient(smooth, 1.0 / fps, axis=0), axis=-1)
        with np.errstate(invalid="ignore"):
            near &= speed < o.contact_speed_m_s
    return near & ok
