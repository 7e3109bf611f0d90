"""Draw a 3D pose as an image with OpenCV lines (fast enough to run on every frame).

The pose is in camera coordinates (metres; x right, y down, z forward away from the
camera). The panel shows it with an orthographic projection from a viewpoint that orbits
the root joint: ``azimuth=0, elevation=0`` looks exactly along the camera's axis, so the
person's left and right appear on the same sides as in the video (a person facing the
camera has their left hand on the right of the panel). Screen "up" is the camera's -y,
so an upright person stands upright in the panel. The scale is fixed: ``extent`` metres
from the root reach the nearest panel edge (with the default 1 m, a 1.8 m person fills
most of the panel's height), so sizes can be compared between frames.
"""

from __future__ import annotations

import warnings
from typing import Iterable, Iterator

import cv2
import numpy as np

from wsgcn_cli.render.style import LEFT_COLOR, RIGHT_COLOR, edge_colors, joint_colors
from wsgcn_cli.skeletons import H36M17, Skeleton

BACKGROUND = (28, 28, 32)
GRID_COLOR = (80, 80, 90)
TEXT_COLOR = (220, 220, 220)
ROOT_RAISE = 0.2  # root drawn this fraction of `extent` above the panel centre
_SHIFT = 4  # fixed-point bits for sub-pixel cv2 drawing
_ONE = 1 << _SHIFT


def view_rotation(azimuth: float, elevation: float) -> np.ndarray:
    """(3, 3) rotation from camera coordinates to view coordinates (x right, y down).

    ``azimuth`` (degrees) orbits the viewpoint about the vertical (camera y) axis,
    positive towards the camera's right (+x); ``elevation`` (degrees) raises the
    viewpoint, positive looking down from above.
    """
    a, e = np.radians(azimuth), np.radians(elevation)
    ry = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(e), -np.sin(e)], [0.0, np.sin(e), np.cos(e)]])
    return rx @ ry


def root_index(skeleton: Skeleton) -> int | None:
    """Index of the tree root (the pelvis for H36M-17), or None for non-tree layouts."""
    return skeleton.parents.index(-1) if skeleton.parents is not None else None


def _centre(pose3d: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    root = root_index(skeleton)
    if root is not None and np.isfinite(pose3d[root]).all():
        return pose3d[root]
    return np.nanmean(pose3d[np.isfinite(pose3d).all(axis=1)], axis=0)


def _label(image: np.ndarray, text: str, org: tuple[int, int], color, scale: float) -> None:
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color,
                max(1, int(round(scale * 2))), cv2.LINE_AA)


def _draw_grid(image, rot, ground_y, extent, to_px, step=0.25):
    """Square floor grid of side 2*extent at height ground_y (camera y, root-relative)."""
    ticks = np.arange(-extent, extent + 1e-9, step)
    ends = []
    for t in ticks:
        ends.append(((t, -extent), (t, extent)))   # lines along z
        ends.append(((-extent, t), (extent, t)))   # lines along x
    pts = np.array([[[x, ground_y, z] for x, z in seg] for seg in ends])  # (L, 2, 3)
    px = to_px(pts.reshape(-1, 3) @ rot.T).reshape(-1, 2, 2)
    for p, q in px:
        cv2.line(image, tuple(p), tuple(q), GRID_COLOR, 1, cv2.LINE_AA, _SHIFT)


def render_3d_panel(pose3d: np.ndarray | None, skeleton: Skeleton = H36M17,
                    size: tuple[int, int] = (480, 480), *, azimuth: float = 0.0,
                    elevation: float = 15.0, extent: float = 1.0,
                    ground_y: float | None = None, title: str | None = None,
                    out: np.ndarray | None = None) -> np.ndarray:
    """Draw one 3D pose.

    Args:
        pose3d: (J, 3) metres in camera coordinates (x right, y down, z forward), any
            origin (absolute or root-relative); None or all-NaN draws an empty panel
            labelled "no person". Joints with NaN are left out.
        skeleton: the pose's layout (H36M-17 by default).
        size: (width, height) of the panel in pixels.
        azimuth, elevation: viewpoint in degrees (see :func:`view_rotation`); the
            default (0, 15) is the camera's view raised by 15 degrees to show depth.
        extent: metres from the root to the nearest panel edge (fixed scale).
        ground_y: height of the floor grid in camera y, metres relative to the root
            (positive = below it); None puts it under the lowest joint of this pose.
        title: optional text at the top-left.
        out: optional (height, width, 3) uint8 array (e.g. a view into a larger canvas)
            to draw into instead of a new image.

    Returns:
        (height, width, 3) uint8 RGB image. Bones: person's left blue, right red,
        centre yellow (see :mod:`wsgcn_cli.render.style`), nearer bones drawn last.
    """
    w, h = int(size[0]), int(size[1])
    image = np.empty((h, w, 3), np.uint8) if out is None else out
    if image.shape != (h, w, 3) or image.dtype != np.uint8:
        raise ValueError(f"out must be a ({h}, {w}, 3) uint8 array, got {image.shape}")
    image[:] = np.tile(np.array(BACKGROUND, np.uint8), (w, 1))  # row-wise: 50x faster
    text_scale = max(0.4, min(w, h) / 900)
    pose = None if pose3d is None else np.asarray(pose3d, dtype=np.float64)
    ok = None if pose is None else np.isfinite(pose).all(axis=1)
    rot = view_rotation(azimuth, elevation)
    pix_per_m = 0.5 * min(w, h) / extent
    # The root is drawn a little above the centre so that feet and floor fit below it.
    centre_px = np.array([w / 2.0, h / 2.0 - ROOT_RAISE * pix_per_m * extent])

    def to_px(v):  # view coordinates (N, 3) -> fixed-point pixel ints (N, 2)
        xy = np.clip(v[:, :2], -50.0 * extent, 50.0 * extent)  # keep OpenCV ints in range
        return np.round((xy * pix_per_m + centre_px) * _ONE).astype(np.int32)

    if pose is None or not ok.any():
        _draw_grid(image, rot, 0.9 if ground_y is None else ground_y, extent, to_px)
        _label(image, "no person", (int(w * 0.5 - 60 * text_scale), int(h * 0.5)),
               TEXT_COLOR, text_scale * 1.2)
    else:
        rel = pose - _centre(pose, skeleton)
        floor = np.nanmax(rel[ok, 1]) if ground_y is None else ground_y
        _draw_grid(image, rot, floor, extent, to_px)
        view = np.where(ok[:, None], rel, 0.0) @ rot.T
        px = to_px(view)
        thickness = max(2, int(round(min(w, h) / 160)))
        edges = [(i, e) for i, e in enumerate(skeleton.edges) if ok[e[0]] and ok[e[1]]]
        edges.sort(key=lambda ie: -(view[ie[1][0], 2] + view[ie[1][1], 2]))  # far first
        colors = edge_colors(skeleton)
        for i, (a, b) in edges:
            cv2.line(image, tuple(px[a]), tuple(px[b]), colors[i], thickness, cv2.LINE_AA,
                     _SHIFT)
        jcolors = joint_colors(skeleton)
        for j in np.flatnonzero(ok):
            cv2.circle(image, tuple(px[j]), (thickness + 1) * _ONE, jcolors[j], -1,
                       cv2.LINE_AA, _SHIFT)
    # legend, in the same colours as the 2D overlay
    y = h - int(12 * text_scale)
    _label(image, "L", (int(10 * text_scale), y), LEFT_COLOR, text_scale)
    _label(image, "R", (int(40 * text_scale), y), RIGHT_COLOR, text_scale)
    if title:
        _label(image, title, (int(10 * text_scale), int(30 * text_scale)), TEXT_COLOR, text_scale)
    return image


def render_3d_animation(poses3d: np.ndarray | Iterable[np.ndarray], skeleton: Skeleton = H36M17,
                        size: tuple[int, int] = (480, 480), *, azimuth: float = 0.0,
                        elevation: float = 15.0, spin_deg_per_frame: float = 0.0,
                        extent: float = 1.0, ground_y: float | None = None) -> Iterator[np.ndarray]:
    """Yield one :func:`render_3d_panel` image per pose, for a 3D-only video.

    Args:
        poses3d: (T, J, 3) metres, camera coordinates (or an iterable of (J, 3) poses).
            Frames with all-NaN poses give "no person" panels.
        spin_deg_per_frame: added to ``azimuth`` at each frame (turntable view).
        ground_y: floor height relative to the root (camera y, metres); None uses, for
            a (T, J, 3) array, the 95th percentile over frames of the lowest joint, so
            the floor stays put while the person jumps; for an iterable, per frame.
        Other arguments as in :func:`render_3d_panel`.

    Yields:
        (height, width, 3) uint8 RGB images.
    """
    if ground_y is None and isinstance(poses3d, np.ndarray) and poses3d.ndim == 3:
        root = root_index(skeleton)
        rel = poses3d - (poses3d[:, root:root + 1] if root is not None
                         else np.nanmean(poses3d, axis=1, keepdims=True))
        with warnings.catch_warnings():  # all-NaN frames give NaN, dropped below
            warnings.simplefilter("ignore", RuntimeWarning)
            lowest = np.nanmax(rel[..., 1], axis=1)
        lowest = lowest[np.isfinite(lowest)]
        ground_y = float(np.percentile(lowest, 95)) if lowest.size else None
    for t, pose in enumerate(poses3d):
        yield render_3d_panel(pose, skeleton, size, azimuth=azimuth + t * spin_deg_per_frame,
                              elevation=elevation, extent=extent, ground_y=ground_y)
