"""Draw a 3D pose as an image with OpenCV lines (fast enough to run on every frame).

The pose is in camera coordinates (metres; x right, y down, z forward away from the
camera). The panel shows it with an orthographic projection from a viewpoint that orbits
the root joint: ``azimuth=0, elevation=0`` looks exactly along the camera's axis, so the
person's left and right appear on the same sides as in the video (a person facing the
camera has their left hand on the right of the panel). Screen "up" is the camera's -y,
so an upright person stands upright in the panel. The scale is fixed: ``extent`` metres
from the root reach the nearest panel edge (with the default 1 m, a 1.8 m person fills
most of the panel's height), so sizes can be compared between frames.

With a pose in the world frame (:mod:`wsgcn_cli.io.posefile`: metres, y up, floor at
y = 0, origin on the floor under the first frame's pelvis, x towards the camera's right,
z towards the camera), :func:`render_3d_panel` splits the panel: the camera view above,
and below it the world view (:func:`render_world_panel`): the person seen from the side
(from the camera's right, raised, so the camera is on the left and depth -- the distance
from the camera -- runs left to right), standing on the floor grid, with the pelvis
trajectory on the floor and the camera marked. Its framing and scale are fixed for a
whole clip by a :class:`WorldView` (:meth:`WorldView.for_clip`).

Several people (:func:`render_people_panel`, ``lift --people``): everyone at their
camera-frame position (not root-relative) in one orthographic view whose framing and scale
are fixed for the clip by a :class:`CameraView`, on a floor grid, each person in their
colour (:func:`wsgcn_cli.render.style.person_color`) with their ID; below it, with world
outputs, the world view of everyone in one shared world frame
(:func:`render_world_panel_people`). :mod:`wsgcn_cli.render.people` builds both from a
multi-person pose file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import cv2
import numpy as np

from wsgcn_cli.render.style import (LEFT_COLOR, RIGHT_COLOR, detail_edges, detail_joints, edge_colors, joint_colors,
                                    person_color, thin_width, detail_radius)
from wsgcn_cli.skeletons import H36M17, Skeleton

BACKGROUND = (28, 28, 32)
GRID_COLOR = (80, 80, 90)
TEXT_COLOR = (220, 220, 220)
FLOOR_AXIS_COLOR = (120, 120, 135)   # the world view's grid lines through the origin
TRAIL_COLOR = (0, 200, 170)          # pelvis trajectory on the floor (world view)
CAMERA_COLOR = (235, 235, 235)
CONTACT_COLOR = (60, 220, 90)        # a foot on the floor (world view)
GRID_TEXT_COLOR = (150, 150, 160)
ROOT_RAISE = 0.2  # root drawn this fraction of `extent` above the panel centre
_SHIFT = 4  # fixed-point bits for sub-pixel cv2 drawing
_ONE = 1 << _SHIFT


def _canvas(size: tuple[int, int], out: np.ndarray | None):
    """(width, height, image): ``out`` checked to be (height, width, 3) uint8, or a new
    uninitialised one. Raises ValueError for an ``out`` of the wrong shape or dtype."""
    w, h = int(size[0]), int(size[1])
    image = np.empty((h, w, 3), np.uint8) if out is None else out
    if image.shape != (h, w, 3) or image.dtype != np.uint8:
        raise ValueError(f"out must be a ({h}, {w}, 3) uint8 array, got {image.shape}")
    return w, h, image


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


def _hips(skeleton: Skeleton) -> tuple[int, int] | None:
    """The hip keypoints of a layout without a tree (COCO-17, COCO-WholeBody-133: their
    mean is the pelvis, H3WB's root), or None."""
    names = set(skeleton.joint_names)
    if skeleton.parents is None and {"left_hip", "right_hip"} <= names:
        return skeleton.index("left_hip"), skeleton.index("right_hip")
    return None


def _centre(pose3d: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """The point a pose is drawn around: the tree root, else the mean of the hips, else the
    mean of the finite joints."""
    root = root_index(skeleton)
    if root is not None and np.isfinite(pose3d[root]).all():
        return pose3d[root]
    hips = _hips(skeleton)
    if hips is not None and np.isfinite(pose3d[list(hips)]).all():
        return pose3d[list(hips)].mean(axis=0)
    return np.nanmean(pose3d[np.isfinite(pose3d).all(axis=1)], axis=0)


def _text_scale(width: int, height: int) -> float:
    """OpenCV font scale of a panel's labels."""
    return max(0.4, min(width, height) / 900)


def _label(image: np.ndarray, text: str, org: tuple[int, int], color, scale: float) -> None:
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color,
                max(1, int(round(scale * 2))), cv2.LINE_AA)


def _draw_bones(image: np.ndarray, view: np.ndarray, ok: np.ndarray, px: np.ndarray,
                skeleton: Skeleton, thickness: int, color: tuple | None = None) -> None:
    """Bones and joints of one pose: ``view`` (J, 3) view coordinates (z into the screen;
    far bones drawn first), ``px`` (J, 2) fixed-point pixels, ``ok`` (J,) joints to draw;
    ``color``: one RGB colour for all (a person's), default the left / right / centre ones."""
    edges = [(i, e) for i, e in enumerate(skeleton.edges) if ok[e[0]] and ok[e[1]]]
    edges.sort(key=lambda ie: -(view[ie[1][0], 2] + view[ie[1][1], 2]))  # far first
    colors = edge_colors(skeleton) if color is None else [tuple(color)] * len(skeleton.edges)
    thin, edge_thin, joint_thin = thin_width(thickness), detail_edges(skeleton), detail_joints(skeleton)
    dot = detail_radius(thickness)
    for i, (a, b) in edges:
        cv2.line(image, tuple(px[a]), tuple(px[b]), colors[i], thin if edge_thin[i] else thickness, cv2.LINE_AA,
                 _SHIFT)
    jcolors = joint_colors(skeleton) if color is None else [tuple(color)] * skeleton.num_joints
    for j in np.flatnonzero(ok):
        cv2.circle(image, tuple(px[j]), (dot if joint_thin[j] else thickness + 1) * _ONE, jcolors[j], -1,
                   cv2.LINE_AA, _SHIFT)


def draw_tag(image: np.ndarray, text: str, anchor, color, scale: float, thickness: int) -> None:
    """``text`` (e.g. a track ID) centred just above ``anchor`` ((x, y) pixels, e.g. a
    person's highest keypoint), in ``color`` outlined in black, kept inside ``image``
    (modified in place)."""
    h, w = image.shape[:2]
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x = int(np.clip(anchor[0] - tw / 2, 0, max(0, w - tw)))
    y = int(np.clip(anchor[1] - 10 * scale, th + 2, h - 2))
    for c, t in (((0, 0, 0), thickness + 2), (tuple(color), thickness)):
        cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, c, t, cv2.LINE_AA)


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


#: World -> view rotation of the plain side view: the viewer stands at +x (the camera's
#: right) looking towards -x, so screen right is -z (away from the camera), screen down
#: is -y; view z (into the screen) is -x.
_SIDE = np.array([[0.0, 0.0, -1.0], [0.0, -1.0, 0.0], [-1.0, 0.0, 0.0]])


@dataclass(frozen=True)
class WorldView:
    """Fixed framing of the world-frame panel for one clip (so nothing jumps).

    Coordinates are the world frame of :mod:`wsgcn_cli.io.posefile` (metres, y up, floor at
    y = 0, x towards the camera's right, z towards the camera). The default frames a
    3 m x 3 m floor around the origin and 2 m of height: usable before a clip is known
    (e.g. while streaming); :meth:`for_clip` fits a clip.

    Attributes:
        lo, hi: (x, y, z) corners of the box that must stay in view; the floor grid covers
            x in [lo.x, hi.x], z in [lo.z, hi.z] at y = 0 (lo.y is normally 0).
        camera: (3,) the camera centre in the world frame, or None (not drawn).
        camera_axis: (3,) unit vector of the camera's optical axis in the world frame, or None.
        azimuth: degrees the side viewpoint is turned about the vertical, positive towards
            the camera (0: exactly from the camera's right, depth purely left to right).
        elevation: degrees the viewpoint is raised (positive: looking down onto the floor).
        grid_step: metres between floor grid lines.
    """

    lo: tuple[float, float, float] = (-1.5, 0.0, -1.5)
    hi: tuple[float, float, float] = (1.5, 2.0, 1.5)
    camera: tuple[float, float, float] | None = None
    camera_axis: tuple[float, float, float] | None = None
    azimuth: float = 25.0
    elevation: float = 15.0
    grid_step: float = 0.5

    @classmethod
    def for_clip(cls, poses_world: np.ndarray, camera_to_world: np.ndarray | None = None, *,
                 margin: float = 0.3, min_floor: float = 2.0, **options) -> "WorldView":
        """The framing of a clip: every joint of every frame in view (0.5-99.5 percentile
        per axis, so a stray frame does not shrink the person), plus ``margin`` metres, on a
        floor of at least ``min_floor`` x ``min_floor`` metres, from y = 0 to above the
        highest head.

        Args:
            poses_world: (T, J, 3) metres, world frame; NaN rows for frames without a pose.
            camera_to_world: (4, 4) rigid transform (``world = R @ camera + t``) or None:
                gives :attr:`camera` (its translation) and :attr:`camera_axis` (R's third
                column, the camera's z).
            options: other :class:`WorldView` fields (``azimuth``, ``elevation``, ``grid_step``).

        Raises:
            ValueError: ``poses_world`` not (T, J, 3) or ``camera_to_world`` not (4, 4).
        """
        pts = np.asarray(poses_world, np.float64)
        if pts.ndim != 3 or pts.shape[-1] != 3:
            raise ValueError(f"poses_world must be (T, J, 3), got {pts.shape}")
        pts = pts.reshape(-1, 3)
        pts = pts[np.isfinite(pts).all(axis=1)]
        if len(pts):
            lo, hi = np.percentile(pts, 0.5, axis=0) - margin, np.percentile(pts, 99.5, axis=0) + margin
        else:
            lo, hi = np.array(cls.lo, float), np.array(cls.hi, float)
        for k in (0, 2):  # at least min_floor across, around the middle
            mid, half = 0.5 * (lo[k] + hi[k]), max(0.5 * (hi[k] - lo[k]), 0.5 * min_floor)
            lo[k], hi[k] = mid - half, mid + half
        lo[1], hi[1] = min(0.0, lo[1] + margin), max(hi[1], 1.9)  # no margin below the feet
        step = options.pop("grid_step", 0.5 if max(hi[0] - lo[0], hi[2] - lo[2]) <= 8.0 else 1.0)
        camera = axis = None
        if camera_to_world is not None:
            m = np.asarray(camera_to_world, np.float64)
            if m.shape != (4, 4):
                raise ValueError(f"camera_to_world must be (4, 4), got {m.shape}")
            camera, axis = tuple(m[:3, 3]), tuple(m[:3, 2] / np.linalg.norm(m[:3, 2]))
        return cls(lo=tuple(lo), hi=tuple(hi), camera=camera, camera_axis=axis, grid_step=step,
                   **options)

    def rotation(self) -> np.ndarray:
        """(3, 3) rotation from the world frame to view coordinates (x right, y down, z
        into the screen)."""
        # view_rotation orbits about the view's vertical; -azimuth turns towards the camera (+z)
        return view_rotation(-self.azimuth, self.elevation) @ _SIDE

    def fit(self, width: int, height: int) -> tuple[float, np.ndarray]:
        """(pixels per metre, (2,) pixel offset) that put the box ``lo``-``hi`` inside a
        ``width`` x ``height`` panel below its title line: pixel = view[:, :2] * scale +
        offset, with view = world @ :meth:`rotation`.T."""
        return _fit_box(self.lo, self.hi, self.rotation(), width, height)


def _fit_box(lo, hi, rot: np.ndarray, width: int, height: int) -> tuple[float, np.ndarray]:
    """(pixels per metre, (2,) offset) of an orthographic view (``rot``: frame -> view) that
    puts the box ``lo``-``hi`` (corners in the frame) inside a ``width`` x ``height`` panel
    below its title line: pixel = (point @ rot.T)[:, :2] * scale + offset."""
    top = int(24 * _text_scale(width, height))
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                        for z in (lo[2], hi[2])]) @ rot.T
    vmin, vmax = corners[:, :2].min(axis=0), corners[:, :2].max(axis=0)
    pad = 0.04 * min(width, height)
    room = np.array([width - 2 * pad, height - top - 2 * pad])
    scale = float(np.min(room / np.maximum(vmax - vmin, 1e-6)))
    offset = np.array([width / 2.0, top + pad + room[1] / 2.0]) - 0.5 * (vmin + vmax) * scale
    return scale, offset


def render_world_panel(pose_world: np.ndarray | None, view: WorldView = WorldView(),
                       skeleton: Skeleton = H36M17, size: tuple[int, int] = (480, 240), *,
                       trail: np.ndarray | None = None, contact: np.ndarray | None = None,
                       title: str | None = "world, from the side",
                       out: np.ndarray | None = None) -> np.ndarray:
    """Draw one pose in the world frame, from the side, on the floor grid.

    Orthographic view set by ``view`` (fixed per clip: the same scale and framing in every
    frame). Drawn: the floor (y = 0) as a grid of ``view.grid_step`` metres (the lines
    through the origin lighter), ``trail`` on the floor, the camera (a dot and its optical
    axis; clamped to the panel's edge with its distance when outside the framing), the
    skeleton (same colours as the camera view), a ring on the floor under each foot in
    contact, a title and the grid step.

    Args:
        pose_world: (J, 3) metres, world frame (y up, floor at y = 0, x towards the camera's
            right, z towards the camera); None or all-NaN: "no person" (floor, trail and
            camera are still drawn). Joints with NaN are left out.
        view: the framing, e.g. ``WorldView.for_clip(poses_world, camera_to_world)``.
        skeleton: the pose's layout; feet for ``contact`` are its ``LFoot`` / ``RFoot``.
        size: (width, height) in pixels.
        trail: (N, 3) world positions (e.g. the pelvis in the frames so far), drawn
            projected onto the floor as a line; NaN rows break it. None: no trail.
        contact: (2,) bool, left / right foot on the floor (the pose file's
            ``foot_contact[t]``), or None.
        title: text at the top-left, or None.
        out: optional (height, width, 3) uint8 array to draw into.

    Returns:
        (height, width, 3) uint8 RGB.

    Raises:
        ValueError: ``out`` of the wrong shape or dtype.
    """
    w, h, image = _canvas(size, out)
    _world_panel(image, view, skeleton, [_Figure(pose_world, trail, contact)], title)
    return image


@dataclass
class _Figure:
    """One person drawn in the world view: pose (J, 3) world or None, trail (N, 3) or None,
    contact (2,) or None, one colour (None: left / right / centre colours, the trail in
    :data:`TRAIL_COLOR`) and an ID tag (or None)."""

    pose: np.ndarray | None
    trail: np.ndarray | None = None
    contact: np.ndarray | None = None
    color: tuple | None = None
    tag: str | None = None


def _world_panel(image: np.ndarray, view: "WorldView", skeleton: Skeleton, figures: list, title: str | None) -> None:
    """Draw the world view of ``figures`` (:class:`_Figure`) into ``image``: background,
    floor grid, trails, camera, then the people far to near, contact rings, tags, labels."""
    h, w = image.shape[:2]
    image[:] = np.tile(np.array(BACKGROUND, np.uint8), (w, 1))
    text_scale = _text_scale(w, h)
    rot = view.rotation()
    scale, offset = view.fit(w, h)

    def to_px(points):  # world (N, 3) -> fixed-point pixels (N, 2)
        v = np.asarray(points, np.float64).reshape(-1, 3) @ rot.T
        xy = np.clip(v[:, :2] * scale + offset, -4.0 * max(w, h), 5.0 * max(w, h))
        return np.round(xy * _ONE).astype(np.int32)

    # floor grid
    (x0, _, z0), (x1, _, z1), step = view.lo, view.hi, view.grid_step
    xs = np.arange(np.ceil(x0 / step), np.floor(x1 / step) + 1) * step
    zs = np.arange(np.ceil(z0 / step), np.floor(z1 / step) + 1) * step
    for vals, make in ((xs, lambda v: [[v, 0.0, z0], [v, 0.0, z1]]),
                       (zs, lambda v: [[x0, 0.0, v], [x1, 0.0, v]])):
        for v in vals:
            a, b = to_px(make(v))
            color = FLOOR_AXIS_COLOR if abs(v) < 1e-9 else GRID_COLOR
            cv2.line(image, tuple(a), tuple(b), color, 1, cv2.LINE_AA, _SHIFT)
    thickness = max(2, int(round(min(w, h) / 160)))
    for fig in figures:
        if fig.trail is None:
            continue
        tr = np.array(fig.trail, np.float64).reshape(-1, 3)
        tr[:, 1] = 0.0
        finite = np.isfinite(tr).all(axis=1)
        px = to_px(np.where(finite[:, None], tr, 0.0))
        # one polyline per run of finite points (a NaN frame breaks the line)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(np.int8), [0]])))
        runs = [px[a:b] for a, b in zip(edges[::2], edges[1::2]) if b - a > 1]
        if runs:
            cv2.polylines(image, runs, False, TRAIL_COLOR if fig.color is None else tuple(fig.color),
                          max(2, thickness // 2), cv2.LINE_AA, _SHIFT)
    _draw_camera(image, view, to_px, rot, scale, offset, text_scale, thickness)

    drawn = []
    for fig in figures:
        pose = None if fig.pose is None else np.asarray(fig.pose, np.float64)
        ok = None if pose is None else np.isfinite(pose).all(axis=1)
        if pose is not None and ok.any():
            safe = np.where(ok[:, None], pose, 0.0)
            drawn.append((float(np.mean((safe[ok] @ rot.T)[:, 2])), fig, safe, ok))
    if not drawn:
        _label(image, "no person", (int(w * 0.5 - 60 * text_scale), int(h * 0.5)), TEXT_COLOR,
               text_scale * 1.2)
    for _, fig, safe, ok in sorted(drawn, key=lambda d: -d[0]):  # far first
        if fig.contact is not None:
            feet = (skeleton.index("LFoot"), skeleton.index("RFoot"))
            for foot, on in zip(feet, np.asarray(fig.contact, bool)):
                if on and ok[foot]:
                    ring = [[safe[foot, 0] + 0.09 * np.cos(a), 0.0, safe[foot, 2] + 0.09 * np.sin(a)]
                            for a in np.linspace(0, 2 * np.pi, 25)]
                    cv2.polylines(image, [to_px(ring)], True, CONTACT_COLOR, max(2, thickness // 2),
                                  cv2.LINE_AA, _SHIFT)
        px = to_px(safe)
        _draw_bones(image, safe @ rot.T, ok, px, skeleton, thickness, fig.color)
        if fig.tag:
            top = px[ok][np.argmin(px[ok][:, 1])] / _ONE
            draw_tag(image, fig.tag, top, fig.color or TEXT_COLOR, text_scale, max(1, thickness // 2))
    grid_text = f"grid {step:g} m"
    (tw, _), _ = cv2.getTextSize(grid_text, cv2.FONT_HERSHEY_SIMPLEX, text_scale, 1)
    _label(image, grid_text, (w - tw - int(10 * text_scale), int(30 * text_scale)), GRID_TEXT_COLOR, text_scale)
    if title:
        _label(image, title, (int(10 * text_scale), int(30 * text_scale)), TEXT_COLOR, text_scale)


def _draw_camera(image, view: WorldView, to_px, rot, scale, offset, text_scale, thickness) -> None:
    """The camera of ``view`` as a dot with a short stroke along its optical axis; when it is
    outside the panel, a dot on the edge towards it labelled with its distance from the
    framing's centre on the floor."""
    if view.camera is None:
        return
    h, w = image.shape[:2]
    cam = np.asarray(view.camera, np.float64)
    c_px = (cam @ rot.T)[:2] * scale + offset
    inset = 14 * text_scale
    inside = (inset <= c_px[0] <= w - inset) and (inset <= c_px[1] <= h - inset)
    if inside:
        p = to_px(cam)[0]
        if view.camera_axis is not None:
            q = to_px(cam + 0.4 * np.asarray(view.camera_axis))[0]
            cv2.line(image, tuple(p), tuple(q), CAMERA_COLOR, max(1, thickness // 2), cv2.LINE_AA, _SHIFT)
        cv2.circle(image, tuple(p), (thickness + 2) * _ONE, CAMERA_COLOR, -1, cv2.LINE_AA, _SHIFT)
        (tw, _), _ = cv2.getTextSize("camera", cv2.FONT_HERSHEY_SIMPLEX, text_scale * 0.9, 1)
        _label(image, "camera", (int(c_px[0] - tw / 2), int(c_px[1] - 3 * thickness - 4)), CAMERA_COLOR,
               text_scale * 0.9)
        return
    centre = 0.5 * (np.asarray(view.lo) + np.asarray(view.hi))
    mid = np.array([w / 2.0, h / 2.0])
    d = c_px - mid
    t = min((w / 2.0 - inset) / max(abs(d[0]), 1e-9), (h / 2.0 - inset) / max(abs(d[1]), 1e-9))
    edge = mid + d * t
    tail = edge - 22 * text_scale * d / np.linalg.norm(d)
    cv2.arrowedLine(image, (int(tail[0]), int(tail[1])), (int(edge[0]), int(edge[1])), CAMERA_COLOR,
                    max(1, thickness // 2), cv2.LINE_AA, tipLength=0.4)
    dist = float(np.hypot(cam[0] - centre[0], cam[2] - centre[2]))
    text = f"camera {dist:.1f} m"
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, text_scale * 0.9, 1)
    gap = 26 * text_scale
    tx = int(np.clip(edge[0] + (gap if d[0] < 0 else -tw - gap), 2, w - tw - 2))
    ty = int(np.clip(edge[1] + th / 2, 2 * th + 4, h - 4))
    _label(image, text, (tx, ty), CAMERA_COLOR, text_scale * 0.9)


def world_frame_args(view: WorldView, poses_world: np.ndarray, t: int,
                     foot_contact: np.ndarray | None = None, skeleton: Skeleton = H36M17) -> dict:
    """Keyword arguments of :func:`render_3d_panel` / :func:`~wsgcn_cli.render.overlay.compose_overlay`
    that add the world view of frame ``t`` of a clip: ``world_view=view``, ``world`` (its
    pose), ``trail`` (the root joint -- the pelvis -- in frames 0..t) and ``contact``.

    Args:
        view: the clip's framing (:meth:`WorldView.for_clip`).
        poses_world: (T, J, 3) metres, world frame (NaN rows: no pose).
        t: frame index in [0, T).
        foot_contact: (T, 2) bool (left, right) or None.
        skeleton: the layout of ``poses_world`` (its root gives the trail).
    """
    root = root_index(skeleton)
    return {"world_view": view, "world": poses_world[t],
            "trail": poses_world[:t + 1, root if root is not None else 0],
            "contact": None if foot_contact is None else foot_contact[t]}


def render_3d_panel(pose3d: np.ndarray | None, skeleton: Skeleton = H36M17,
                    size: tuple[int, int] = (480, 480), *, azimuth: float = 0.0,
                    elevation: float = 15.0, extent: float = 1.0,
                    ground_y: float | None = None, title: str | None = None,
                    out: np.ndarray | None = None, world: np.ndarray | None = None,
                    world_view: WorldView | None = None, trail: np.ndarray | None = None,
                    contact: np.ndarray | None = None) -> np.ndarray:
    """Draw one 3D pose: the camera view, and with ``world_view`` the world view below it.

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
        world_view: None (default): the panel is the camera view alone. A
            :class:`WorldView` (fixed for the clip): the panel is split, the camera view in
            the top ``height // 2`` rows (titled "camera"), :func:`render_world_panel` of
            ``world`` in the rest.
        world: (J, 3) the same pose in the world frame (metres, y up, floor at y = 0, x
            towards the camera's right, z towards the camera), or None / all-NaN for a
            frame without one. Only used with ``world_view``.
        trail, contact: see :func:`render_world_panel` (only used with ``world_view``).

    Returns:
        (height, width, 3) uint8 RGB image. Bones: person's left blue, right red,
        centre yellow (see :mod:`wsgcn_cli.render.style`), nearer bones drawn last.

    Raises:
        ValueError: ``out`` of the wrong shape or dtype.
    """
    w, h, image = _canvas(size, out)
    if world_view is not None:
        top = h // 2
        render_3d_panel(pose3d, skeleton, (w, top), azimuth=azimuth, elevation=elevation,
                        extent=extent, ground_y=ground_y, title=title or "camera", out=image[:top])
        render_world_panel(world, world_view, skeleton, (w, h - top), trail=trail, contact=contact,
                           out=image[top:])
        image[top, :] = GRID_COLOR  # a thin separator
        return image
    image[:] = np.tile(np.array(BACKGROUND, np.uint8), (w, 1))  # row-wise: 50x faster
    text_scale = _text_scale(w, h)
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
        _draw_bones(image, view, ok, to_px(view), skeleton, max(2, int(round(min(w, h) / 160))))
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


# --- several people ---------------------------------------------------------------------


@dataclass
class PersonPose:
    """One person in one frame of the multi-person 3D views (:func:`render_people_panel`).

    Attributes:
        track_id: the tracker's ID (gives the colour, :func:`~wsgcn_cli.render.style.person_color`,
            and the tag).
        camera: (J, 3) metres, camera frame (x right, y down, z forward), at the person's
            position (root-relative pose + root), or None / all-NaN: not drawn.
        world: (J, 3) metres, the scene's shared world frame (y up, floor at y = 0), or None.
        trail: (N, 3) world positions of the pelvis so far (drawn on the floor), or None.
        contact: (2,) bool, left / right foot on the floor, or None.
    """

    track_id: int
    camera: np.ndarray | None
    world: np.ndarray | None = None
    trail: np.ndarray | None = None
    contact: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class CameraView:
    """Fixed framing of the camera-frame view of several people for one clip.

    Coordinates: the camera frame (metres; x right, y down, z forward), absolute, so people
    appear where they are relative to each other. Orthographic projection from the
    camera's own viewpoint turned by ``azimuth`` and raised by ``elevation``
    (:func:`view_rotation`): people keep their left-right order of the video, and a
    nearer person is drawn lower (seen from above). One scale for the whole clip.

    Attributes:
        lo, hi: (x, y, z) corners of the camera-frame box that must stay in view.
        azimuth, elevation: degrees, see :func:`view_rotation`.
        grid: (L, 2, 3) floor grid line segments in the camera frame (drawn first).
        grid_step: metres between grid lines (shown as a label).
    """

    lo: tuple[float, float, float] = (-2.0, -1.0, 2.0)
    hi: tuple[float, float, float] = (2.0, 1.0, 6.0)
    azimuth: float = 0.0
    elevation: float = 15.0
    grid: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, 3)))
    grid_step: float = 0.5

    @classmethod
    def for_clip(cls, poses_camera: np.ndarray, camera_to_world: np.ndarray | None = None,
                 world_view: "WorldView | None" = None, *, margin: float = 0.3,
                 **options) -> "CameraView":
        """The framing of a clip: every joint of everyone in every frame in view (0.5-99.5
        percentile per axis, plus ``margin`` metres), and the floor grid.

        Args:
            poses_camera: (..., J, 3) metres, camera frame, absolute (e.g. (P, T, J, 3));
                NaN where unknown.
            camera_to_world, world_view: the shared world frame ((4, 4), ``world = R @
                camera + t``) and its :class:`WorldView`: the grid is the world view's floor
                (y = 0 over its x / z range, same step) seen from the camera. Without
                them, a grid perpendicular to the camera's y axis at the height of the
                feet (95th percentile over poses of the lowest joint).
            options: other fields (``azimuth``, ``elevation``).

        Raises:
            ValueError: ``poses_camera`` not (..., J, 3), or ``camera_to_world`` not (4, 4).
        """
        p = np.asarray(poses_camera, np.float64)
        if p.ndim < 2 or p.shape[-1] != 3:
            raise ValueError(f"poses_camera must be (..., J, 3), got {p.shape}")
        poses = p.reshape(-1, p.shape[-2], 3)
        pts = poses.reshape(-1, 3)
        pts = pts[np.isfinite(pts).all(axis=1)]
        if len(pts):
            lo, hi = np.percentile(pts, 0.5, axis=0) - margin, np.percentile(pts, 99.5, axis=0) + margin
        else:
            lo, hi = np.array(cls.lo, float), np.array(cls.hi, float)
        if camera_to_world is not None and world_view is not None:
            m = np.asarray(camera_to_world, np.float64)
            if m.shape != (4, 4):
                raise ValueError(f"camera_to_world must be (4, 4), got {m.shape}")
            (x0, _, z0), (x1, _, z1), step = world_view.lo, world_view.hi, world_view.grid_step
            segs = _grid_segments(x0, x1, z0, z1, step, lambda x, z: [x, 0.0, z])
            grid = (segs - m[:3, 3]) @ m[:3, :3]  # world -> camera: R^T (w - t)
        else:
            with warnings.catch_warnings():  # all-NaN poses give NaN, dropped below
                warnings.simplefilter("ignore", RuntimeWarning)
                lowest = np.nanmax(poses[..., 1], axis=1)
            lowest = lowest[np.isfinite(lowest)]
            floor_y = float(np.percentile(lowest, 95)) if lowest.size else hi[1]
            step = 0.5 if max(hi[0] - lo[0], hi[2] - lo[2]) <= 8.0 else 1.0
            grid = _grid_segments(lo[0], hi[0], lo[2], hi[2], step, lambda x, z: [x, floor_y, z])
        if len(grid):
            lo, hi = np.minimum(lo, grid.reshape(-1, 3).min(0)), np.maximum(hi, grid.reshape(-1, 3).max(0))
        return cls(lo=tuple(lo), hi=tuple(hi), grid=grid, grid_step=step, **options)

    def rotation(self) -> np.ndarray:
        """(3, 3) rotation from the camera frame to view coordinates (x right, y down, z
        into the screen)."""
        return view_rotation(self.azimuth, self.elevation)

    def fit(self, width: int, height: int) -> tuple[float, np.ndarray]:
        """(pixels per metre, (2,) pixel offset) that put the box ``lo``-``hi`` inside a
        ``width`` x ``height`` panel: pixel = view[:, :2] * scale + offset."""
        return _fit_box(self.lo, self.hi, self.rotation(), width, height)


def _grid_segments(x0, x1, z0, z1, step, point) -> np.ndarray:
    """(L, 2, 3) segments of a grid of ``step`` over [x0, x1] x [z0, z1] (lines at multiples
    of ``step``), each end made by ``point(x, z)``."""
    xs = np.arange(np.ceil(x0 / step), np.floor(x1 / step) + 1) * step
    zs = np.arange(np.ceil(z0 / step), np.floor(z1 / step) + 1) * step
    segs = [[point(x, z0), point(x, z1)] for x in xs] + [[point(x0, z), point(x1, z)] for z in zs]
    return np.asarray(segs, np.float64).reshape(-1, 2, 3)


def render_people_panel(people: list, view: CameraView, skeleton: Skeleton = H36M17,
                        size: tuple[int, int] = (480, 480), *, world_view: WorldView | None = None,
                        title: str | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Draw several people in 3D: the camera view, and with ``world_view`` the world view below.

    Each person (:class:`PersonPose`) is drawn in their colour
    (:func:`~wsgcn_cli.render.style.person_color`) with their ID above the head, at their
    camera-frame position, with the clip's fixed framing ``view`` (:meth:`CameraView.for_clip`),
    far people first, over the floor grid. A person whose ``camera`` is None or all-NaN is
    not drawn (in that view); with nobody drawn the panel says "no person".

    Args:
        people: the people of one frame, :class:`PersonPose` each.
        view: the clip's camera-view framing.
        skeleton: the poses' layout.
        size: (width, height) in pixels.
        world_view: None: the camera view fills the panel. A :class:`WorldView` (of the
            shared world frame, fixed for the clip): the camera view in the top ``height // 2``
            rows, :func:`render_world_panel_people` in the rest.
        title: the camera view's title (default "camera" when split, else none).
        out: optional (height, width, 3) uint8 array to draw into.

    Returns:
        (height, width, 3) uint8 RGB.

    Raises:
        ValueError: ``out`` of the wrong shape or dtype.
    """
    w, h, image = _canvas(size, out)
    if world_view is not None:
        top = h // 2
        render_people_panel(people, view, skeleton, (w, top), title=title or "camera", out=image[:top])
        render_world_panel_people(people, world_view, skeleton, (w, h - top), out=image[top:])
        image[top, :] = GRID_COLOR  # a thin separator
        return image
    image[:] = np.tile(np.array(BACKGROUND, np.uint8), (w, 1))
    text_scale = _text_scale(w, h)
    rot = view.rotation()
    scale, offset = view.fit(w, h)

    def to_px(points):  # camera (N, 3) -> fixed-point pixels (N, 2)
        v = np.asarray(points, np.float64).reshape(-1, 3) @ rot.T
        xy = np.clip(v[:, :2] * scale + offset, -4.0 * max(w, h), 5.0 * max(w, h))
        return np.round(xy * _ONE).astype(np.int32)

    for a, b in to_px(view.grid.reshape(-1, 3)).reshape(-1, 2, 2):
        cv2.line(image, tuple(a), tuple(b), GRID_COLOR, 1, cv2.LINE_AA, _SHIFT)
    thickness = max(2, int(round(min(w, h) / 160)))
    drawn = []
    for person in people:
        pose = None if person.camera is None else np.asarray(person.camera, np.float64)
        ok = None if pose is None else np.isfinite(pose).all(axis=1)
        if pose is not None and ok.any():
            safe = np.where(ok[:, None], pose, 0.0)
            v = safe @ rot.T
            drawn.append((float(np.mean(v[ok, 2])), person, v, ok, to_px(safe)))
    if not drawn:
        _label(image, "no person", (int(w * 0.5 - 60 * text_scale), int(h * 0.5)), TEXT_COLOR,
               text_scale * 1.2)
    for _, person, v, ok, px in sorted(drawn, key=lambda d: -d[0]):  # far first
        color = person_color(person.track_id)
        _draw_bones(image, v, ok, px, skeleton, thickness, color)
        top = px[ok][np.argmin(px[ok][:, 1])] / _ONE
        draw_tag(image, str(int(person.track_id)), top, color, text_scale, max(1, thickness // 2))
    grid_text = f"grid {view.grid_step:g} m"
    (tw, _), _ = cv2.getTextSize(grid_text, cv2.FONT_HERSHEY_SIMPLEX, text_scale, 1)
    _label(image, grid_text, (w - tw - int(10 * text_scale), int(30 * text_scale)), GRID_TEXT_COLOR, text_scale)
    if title:
        _label(image, title, (int(10 * text_scale), int(30 * text_scale)), TEXT_COLOR, text_scale)
    return image


def render_world_panel_people(people: list, view: WorldView, skeleton: Skeleton = H36M17,
                              size: tuple[int, int] = (480, 240), *,
                              title: str | None = "world, from the side",
                              out: np.ndarray | None = None) -> np.ndarray:
    """:func:`render_world_panel` of several people (:class:`PersonPose`: ``world``,
    ``trail``, ``contact``) in one world frame: each in their colour with their ID, their
    pelvis trail on the floor in their colour, far people first. People without a
    ``world`` pose are not drawn; their trail still is. Returns (height, width, 3) uint8
    RGB; raises ValueError for an ``out`` of the wrong shape or dtype."""
    w, h, image = _canvas(size, out)
    figures = [_Figure(q.world, q.trail, q.contact, person_color(q.track_id), str(int(q.track_id)))
               for q in people]
    _world_panel(image, view, skeleton, figures, title)
    return image
