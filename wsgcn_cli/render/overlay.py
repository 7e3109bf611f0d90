"""Draw 2D keypoints on video frames and put the 3D panel beside them.

Images are (H, W, 3) uint8 RGB; keypoints are pixels in the image frame (origin
top-left, x right, y down). Colours follow :mod:`wsgcn_cli.render.style` (person's left
blue, right red, centre yellow) in both the 2D overlay and the 3D panel.
"""

from __future__ import annotations

import cv2
import numpy as np

from wsgcn_cli.render.style import (PERSON_COLORS, detail_edges, detail_joints, edge_colors,  # noqa: F401
                                    joint_colors, person_color, thin_width, detail_radius)
from wsgcn_cli.render.view3d import WorldView, draw_tag, render_3d_panel
from wsgcn_cli.skeletons import H36M17, Skeleton

_SHIFT = 4
_ONE = 1 << _SHIFT

#: Default cap on the height of composed frames (keeps encoding cheap).
MAX_HEIGHT = 720


def draw_skeleton_2d(image: np.ndarray, xy: np.ndarray, score: np.ndarray | None,
                     skeleton: Skeleton = H36M17, min_score: float = 0.3, *,
                     thickness: int | None = None, color: tuple | None = None,
                     label: str | None = None) -> np.ndarray:
    """Draw bones and keypoints on ``image`` in place, and return it.

    Args:
        image: (H, W, 3) uint8 RGB, modified in place.
        xy: (J, 2) pixels in ``image``; NaN keypoints are skipped.
        score: (J,) in [0, 1] or None; keypoints with ``score < min_score`` are skipped
            (and bones touching them).
        skeleton: layout of ``xy`` (bones from ``skeleton.edges``).
        thickness: line width in pixels; default scales with the image size. Face and
            hand bones and keypoints (:func:`~wsgcn_cli.render.style.detail_joints`) are
            drawn with :func:`~wsgcn_cli.render.style.thin_width` lines and
            :func:`~wsgcn_cli.render.style.detail_radius` dots.
        color: one (R, G, B) colour for every bone and keypoint (several people, see
            :func:`person_color`); default None: :mod:`wsgcn_cli.render.style`'s left /
            right / centre colours.
        label: text written above the skeleton's highest keypoint (e.g. a track ID),
            in ``color`` (white by default).

    Returns:
        ``image``.
    """
    xy = np.asarray(xy, dtype=np.float64)
    ok = np.isfinite(xy).all(axis=1)
    if score is not None:
        ok &= np.asarray(score) >= min_score
    if not ok.any():
        return image
    h, w = image.shape[:2]
    if thickness is None:
        thickness = max(2, int(round(min(h, w) / 250)))
    # Keypoints far outside the image would overflow OpenCV's fixed-point coordinates.
    px = np.round(np.clip(np.where(ok[:, None], xy, 0.0), -4 * max(h, w), 5 * max(h, w))
                  * _ONE).astype(np.int32)
    colors = edge_colors(skeleton) if color is None else [tuple(color)] * len(skeleton.edges)
    thin, edge_thin, joint_thin = thin_width(thickness), detail_edges(skeleton), detail_joints(skeleton)
    dot = detail_radius(thickness)
    for i, (a, b) in enumerate(skeleton.edges):
        if ok[a] and ok[b]:
            cv2.line(image, tuple(px[a]), tuple(px[b]), colors[i], thin if edge_thin[i] else thickness,
                     cv2.LINE_AA, _SHIFT)
    jcolors = joint_colors(skeleton) if color is None else [tuple(color)] * skeleton.num_joints
    for j in np.flatnonzero(ok):
        cv2.circle(image, tuple(px[j]), (dot if joint_thin[j] else thickness + 1) * _ONE, jcolors[j], -1,
                   cv2.LINE_AA, _SHIFT)
    if label:
        top = int(np.argmin(np.where(ok, xy[:, 1], np.inf)))
        draw_tag(image, label, (float(np.clip(xy[top, 0], 0, w - 1)), float(np.clip(xy[top, 1], 0, h - 1))),
                 tuple(color) if color is not None else (255, 255, 255), max(0.5, min(h, w) / 900), thickness)
    return image


def _even(n: float) -> int:
    return max(2, int(round(n / 2.0)) * 2)


def overlay_size(width: int, height: int, max_height: int = MAX_HEIGHT) -> tuple[int, int, int]:
    """(frame width, panel width, height) of :func:`compose_overlay` output for a
    ``width`` x ``height`` input: the frame is scaled down (never up) to at most
    ``max_height`` rows, all sizes even; the 3D panel is square. The output is
    (height, frame width + panel width)."""
    s = min(1.0, max_height / height)
    out_h, out_w = _even(height * s), _even(width * s)
    return out_w, out_h, out_h


def compose_overlay(frame: np.ndarray, xy: np.ndarray | None, score: np.ndarray | None,
                    pose3d: np.ndarray | None, *, skeleton_2d: Skeleton = H36M17,
                    skeleton_3d: Skeleton = H36M17, min_score: float = 0.3,
                    max_height: int = MAX_HEIGHT, azimuth: float = 0.0,
                    elevation: float = 15.0, extent: float = 1.0,
                    ground_y: float | None = None, world: np.ndarray | None = None,
                    world_view: WorldView | None = None, trail: np.ndarray | None = None,
                    contact: np.ndarray | None = None) -> np.ndarray:
    """The video frame with its 2D skeleton, beside the 3D pose panel.

    Args:
        frame: (H, W, 3) uint8 RGB video frame (not modified).
        xy: (J, 2) keypoints in ``frame`` pixels (layout ``skeleton_2d``), or None;
            NaN keypoints are not drawn, so a frame with no person shows no skeleton.
        score: (J,) scores or None; keypoints below ``min_score`` are not drawn.
        pose3d: (K, 3) metres in camera coordinates (layout ``skeleton_3d``), or None /
            all NaN for an empty panel labelled "no person".
        max_height: the frame is downscaled (never upscaled) to at most this many rows.
        azimuth, elevation, extent, ground_y: 3D view, see
            :func:`wsgcn_cli.render.view3d.render_3d_panel`.
        world_view, world, trail, contact: with a
            :class:`~wsgcn_cli.render.view3d.WorldView` (fixed for the clip) the panel
            shows the camera view in its top half and, below, ``world`` -- (K, 3) metres in
            the world frame (y up, floor at y = 0), or None / NaN for no pose -- from the
            side on the floor grid, with ``trail`` ((N, 3) world points, e.g. the pelvis so
            far) and ``contact`` ((2,) bool, left / right foot on the floor); see
            :func:`wsgcn_cli.render.view3d.render_3d_panel`. The output size is the same.

    Returns:
        (h, w_frame + h, 3) uint8 RGB, with h = min(H, max_height) rounded to even and a
        square panel on the right; every size is even (ready for H.264), see
        :func:`overlay_size`.
    """
    canvas, left, scale = _canvas(frame, max_height)
    if xy is not None:
        draw_skeleton_2d(left, np.asarray(xy) * scale, score, skeleton_2d, min_score)
    out_h, out_w = left.shape[:2]
    render_3d_panel(pose3d, skeleton_3d, (canvas.shape[1] - out_w, out_h), azimuth=azimuth, elevation=elevation,
                    extent=extent, ground_y=ground_y, out=canvas[:, out_w:], world=world,
                    world_view=world_view, trail=trail, contact=contact)
    return canvas


def _canvas(frame: np.ndarray, max_height: int):
    """(canvas (h, w_frame + h, 3) uint8 with the scaled frame on its left and the panel
    area uninitialised, that left part (a view), (2,) pixel scale frame -> left part)."""
    height, width = frame.shape[:2]
    out_w, out_h, panel = overlay_size(width, height, max_height)
    canvas = np.empty((out_h, out_w + panel, 3), np.uint8)
    left = canvas[:, :out_w]  # OpenCV resizes and draws straight into these views
    if (out_w, out_h) == (width, height):
        left[:] = frame
    else:
        # INTER_AREA avoids aliasing on strong reductions but costs ~8x INTER_LINEAR.
        interp = cv2.INTER_AREA if out_h < 0.5 * height else cv2.INTER_LINEAR
        cv2.resize(frame, (out_w, out_h), dst=left, interpolation=interp)
    return canvas, left, np.array([out_w / width, out_h / height])


def compose_overlay_people(frame: np.ndarray, scene, t: int, *, min_score: float = 0.3,
                           max_height: int = MAX_HEIGHT) -> np.ndarray:
    """The video frame with several people's 2D skeletons, each in its own colour
    (:func:`~wsgcn_cli.render.style.person_color`) with its ID, beside the 3D panel of
    everyone (:meth:`wsgcn_cli.render.people.PeopleScene.panel`: all at their camera-frame
    positions, and with world outputs the shared world view below).

    Args:
        frame: (H, W, 3) uint8 RGB video frame (not modified).
        scene: the clip's :class:`~wsgcn_cli.render.people.PeopleScene` (H36M-17 2D in
            ``frame`` pixels; people with NaN / low-score keypoints in frame ``t`` are not drawn).
        t: the frame's index in the scene.
        min_score, max_height: as :func:`compose_overlay`.

    Returns:
        the same layout and size as :func:`compose_overlay`.
    """
    canvas, left, scale = _canvas(frame, max_height)
    for k, track_id in enumerate(scene.track_ids):
        draw_skeleton_2d(left, scene.keypoints_2d[k, t] * scale, scene.scores[k, t], H36M17, min_score,
                         color=person_color(track_id), label=str(int(track_id)))
    out_h, out_w = left.shape[:2]
    scene.panel(t, (canvas.shape[1] - out_w, out_h), out=canvas[:, out_w:])
    return canvas
