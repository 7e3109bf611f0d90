"""2D overlay, 3D panel and composed frames: shapes, colours, sides, no-person frames."""

from __future__ import annotations

import numpy as np
import pytest

from wsgcn_cli.render.overlay import compose_overlay, draw_skeleton_2d, overlay_size
from wsgcn_cli.render.style import LEFT_COLOR, RIGHT_COLOR
from wsgcn_cli.render.view3d import render_3d_animation, render_3d_panel
from wsgcn_cli.skeletons import H36M17

# H36M-17 pose facing the camera, camera coordinates (m): x right, y down, z forward.
# Facing the camera, the person's left side is at +x.
POSE3D = np.array([
    [0.0, 0.0, 3.0],                                                # pelvis
    [-0.12, 0.0, 3.0], [-0.12, 0.45, 3.0], [-0.12, 0.9, 3.0],       # right leg
    [0.12, 0.0, 3.0], [0.12, 0.45, 3.0], [0.12, 0.9, 3.0],          # left leg
    [0.0, -0.25, 3.0], [0.0, -0.5, 3.0], [0.0, -0.6, 2.95], [0.0, -0.75, 3.0],
    [0.2, -0.5, 3.0], [0.45, -0.5, 3.0], [0.7, -0.5, 3.0],          # left arm, out to +x
    [-0.2, -0.5, 3.0], [-0.3, -0.25, 3.0], [-0.3, 0.0, 3.0],        # right arm, down
])


def _mask(image, color, tol=40):
    return (np.abs(image.astype(int) - np.array(color)).sum(axis=-1) < tol)


def test_panel_shape_and_sides():
    panel = render_3d_panel(POSE3D, H36M17, size=(320, 240))
    assert panel.shape == (240, 320, 3) and panel.dtype == np.uint8
    ys, xs = np.nonzero(_mask(panel, LEFT_COLOR))
    ry, rx = np.nonzero(_mask(panel, RIGHT_COLOR))
    assert xs.size > 50 and rx.size > 50
    # The left wrist is at +x: seen from the camera, left limbs are on the panel's right.
    assert np.median(xs) > 160 > np.median(rx)
    # Fixed scale: extent 1 m = half the panel's smaller side (120 px), wrist at x=0.7 m.
    assert abs(xs.max() - (160 + 0.7 * 120)) < 8


def test_panel_is_upright_and_view_from_behind_swaps_sides():
    panel = render_3d_panel(POSE3D, H36M17, size=(240, 240), elevation=0)
    ys, xs = np.nonzero(_mask(panel, LEFT_COLOR))
    # camera y is down: the arm (y=-0.5) is drawn above the foot (y=+0.9)
    assert ys.min() < 120 < ys.max()
    behind = render_3d_panel(POSE3D, H36M17, size=(240, 240), azimuth=180)
    assert np.median(np.nonzero(_mask(behind, LEFT_COLOR))[1]) < 120


def test_empty_panel():
    empty = render_3d_panel(None, size=(200, 100))
    nan = render_3d_panel(np.full((17, 3), np.nan), size=(200, 100))
    assert empty.shape == (100, 200, 3)
    np.testing.assert_array_equal(empty, nan)
    assert not _mask(empty, LEFT_COLOR)[:80].any()  # only the "L" legend is coloured


def test_draw_skeleton_2d_in_place():
    image = np.zeros((200, 200, 3), np.uint8)
    xy = np.full((17, 2), np.nan)
    xy[11:14] = [[120, 60], [150, 80], [180, 100]]  # left arm on the image's right
    xy[14:17] = [[80, 60], [50, 80], [20, 100]]
    score = np.ones(17)
    score[16] = 0.1  # right wrist below min_score: its bone is not drawn
    out = draw_skeleton_2d(image, xy, score, H36M17, min_score=0.3)
    assert out is image
    assert np.median(np.nonzero(_mask(image, LEFT_COLOR))[1]) > 100
    assert np.nonzero(_mask(image, RIGHT_COLOR))[1].min() > 35


@pytest.mark.parametrize("height, width", [(1002, 1000), (540, 960), (1280, 720), (101, 75)])
def test_compose_overlay_sizes(height, width):
    frame = np.full((height, width, 3), 90, np.uint8)
    xy = np.random.default_rng(0).uniform(0, min(height, width), (17, 2))
    out = compose_overlay(frame, xy, np.ones(17), POSE3D)
    fw, ph, pw = overlay_size(width, height)
    assert out.shape == (ph, fw + pw, 3) and out.dtype == np.uint8
    assert out.shape[0] <= 720 and out.shape[0] % 2 == 0 and out.shape[1] % 2 == 0
    assert pw == ph  # square panel as tall as the frame
    assert (frame == 90).all()  # input untouched
    plain = compose_overlay(frame, None, None, POSE3D)
    assert (plain[:, :fw] == 90).all()  # the (resized) frame fills the left part


def test_compose_overlay_no_person():
    frame = np.full((300, 400, 3), 90, np.uint8)
    out = compose_overlay(frame, np.full((17, 2), np.nan), np.zeros(17), np.full((17, 3), np.nan))
    assert (out[:, :400] == 90).all()  # frame shown without a skeleton
    np.testing.assert_array_equal(out[:, 400:], render_3d_panel(None, size=(300, 300)))


def test_render_3d_animation():
    poses = np.stack([POSE3D, POSE3D + [0, -0.3, 0], np.full((17, 3), np.nan)])
    frames = list(render_3d_animation(poses, size=(64, 48), spin_deg_per_frame=10))
    assert len(frames) == 3 and all(f.shape == (48, 64, 3) for f in frames)
