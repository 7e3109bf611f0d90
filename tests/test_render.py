"""2D overlay, 3D panel and composed frames: shapes, colours, sides, no-person frames."""

from __future__ import annotations

import numpy as np
import pytest

from wsgcn_cli.errors import WsgcnError
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


# --- world view -------------------------------------------------------------------------
from wsgcn_cli.render.view3d import WorldView, render_world_panel, world_frame_args  # noqa: E402

# POSE3D in the world frame (y up, floor at y = 0, z towards the camera): the camera 3 m in
# front at 0.9 m height, looking along -z; world = R @ camera + t.
CAM_TO_WORLD = np.array([[1.0, 0, 0, 0], [0, -1, 0, 0.9], [0, 0, -1, 3.0], [0, 0, 0, 1]])
WORLD = POSE3D @ CAM_TO_WORLD[:3, :3].T + CAM_TO_WORLD[:3, 3]


def _person(image):
    """(rows, cols) of the skeleton's pixels (any side colour)."""
    from wsgcn_cli.render.style import CENTRE_COLOR

    m = _mask(image, LEFT_COLOR) | _mask(image, RIGHT_COLOR) | _mask(image, CENTRE_COLOR)
    return np.nonzero(m)


def test_world_pose_is_upright_on_the_floor_and_depth_runs_left_to_right():
    assert abs(WORLD[:, 1].min()) < 1e-9 and WORLD[10, 1] > 1.5  # feet on the floor, head up
    view = WorldView(lo=(-1.0, 0.0, -4.0), hi=(1.0, 2.0, 1.0), azimuth=0.0, elevation=0.0)
    size = (400, 200)
    scale, offset = view.fit(*size)
    near = render_world_panel(WORLD, view, size=size, title=None)
    far = render_world_panel(WORLD + [0, 0, -2.0], view, size=size, title=None)  # 2 m further away
    assert near.shape == (200, 400, 3) and near.dtype == np.uint8
    (ry, rx), (fy, fx) = _person(near), _person(far)
    assert rx.size > 100 and fx.size > 100
    # feet on the floor line (world y = 0 is row offset[1] at elevation 0), head well above it
    assert abs(ry.max() - offset[1]) < 6 and ry.min() < offset[1] - 1.5 * scale
    # seen from the camera's right: further from the camera = further right, by 2 m
    assert abs((np.median(fx) - np.median(rx)) - 2.0 * scale) < 3
    # the same size in both frames (fixed scale)
    assert abs((ry.max() - ry.min()) - (fy.max() - fy.min())) <= 1


def test_world_view_for_clip_frames_every_frame():
    clip = np.stack([WORLD + [0, 0, -z] for z in np.linspace(0, 3, 20)])
    clip[5] = np.nan
    view = WorldView.for_clip(clip, CAM_TO_WORLD)
    assert view.lo[1] <= 0.0 and view.hi[1] >= WORLD[:, 1].max()
    assert view.lo[2] < -3.0 and view.hi[2] > WORLD[:, 2].max()
    assert view.hi[0] - view.lo[0] >= 2.0  # at least a 2 m floor across
    np.testing.assert_allclose(view.camera, [0, 0.9, 3.0])
    np.testing.assert_allclose(view.camera_axis, [0, 0, -1.0])  # the camera looks along -z
    assert WorldView.for_clip(np.full((3, 17, 3), np.nan)) == WorldView(grid_step=0.5)
    with pytest.raises(ValueError, match="T, J, 3"):
        WorldView.for_clip(WORLD)
    with pytest.raises(ValueError, match="4, 4"):
        WorldView.for_clip(clip, np.eye(3))
    args = world_frame_args(view, clip, 7, np.ones((20, 2), bool))
    assert args["world_view"] is view and args["trail"].shape == (8, 3) and args["contact"].shape == (2,)
    np.testing.assert_array_equal(args["world"], clip[7])


def test_world_panel_draws_trail_camera_and_no_person():
    from wsgcn_cli.render.view3d import CAMERA_COLOR, CONTACT_COLOR, TRAIL_COLOR

    clip = np.stack([WORLD + [0, 0, -z] for z in np.linspace(0, 3, 20)])
    near_cam = WorldView.for_clip(clip, CAM_TO_WORLD)  # the camera 3 m in front: in the picture
    far = CAM_TO_WORLD.copy()
    far[2, 3] = 23.0  # 23 m in front: marked on the panel's edge
    far_cam = WorldView.for_clip(clip, far)
    trail = clip[:, 0].copy()
    trail[[3, 10, 11]] = np.nan  # frames without a pose break the trace
    for view in (near_cam, far_cam):
        img = render_world_panel(clip[19], view, size=(480, 240), trail=trail, contact=np.array([True, False]))
        assert _mask(img, TRAIL_COLOR, 10).sum() > 30
        assert _mask(img[:, :120], CAMERA_COLOR, 60).sum() > 20  # "<- camera 4.5 m" on the left
        assert _mask(img, CONTACT_COLOR, 10).sum() > 5
    import dataclasses

    framed = dataclasses.replace(near_cam, hi=(1.2, 1.95, 3.5))  # the camera inside the framing: a dot
    scale, offset = framed.fit(480, 240)
    cx, cy = (np.asarray(framed.camera) @ framed.rotation().T)[:2] * scale + offset
    img = render_world_panel(clip[19], framed, size=(480, 240))
    assert _mask(img[int(cy) - 3:int(cy) + 4, int(cx) - 3:int(cx) + 4], CAMERA_COLOR, 10).sum() > 20
    empty = render_world_panel(np.full((17, 3), np.nan), near_cam, size=(480, 240), trail=clip[:, 0])
    assert _person(empty)[0].size < 40  # only text, no skeleton
    assert _mask(empty, TRAIL_COLOR, 10).sum() > 30  # the floor and trail stay


def test_panel_with_world_view_keeps_the_camera_view_on_top():
    view = WorldView.for_clip(WORLD[None], CAM_TO_WORLD)
    split = render_3d_panel(POSE3D, H36M17, size=(300, 300), world=WORLD, world_view=view)
    assert split.shape == (300, 300, 3)
    np.testing.assert_array_equal(split[:150], render_3d_panel(POSE3D, H36M17, size=(300, 150), title="camera"))
    np.testing.assert_array_equal(split[151:], render_world_panel(WORLD, view, size=(300, 150))[1:])
    # without world_view, world is ignored: the camera view alone
    np.testing.assert_array_equal(render_3d_panel(POSE3D, world=WORLD), render_3d_panel(POSE3D))


@pytest.mark.parametrize("height, width", [(540, 960), (1280, 720), (101, 75)])
def test_compose_overlay_with_world_has_the_same_size(height, width):
    frame = np.full((height, width, 3), 90, np.uint8)
    view = WorldView.for_clip(WORLD[None], CAM_TO_WORLD)
    plain = compose_overlay(frame, None, None, POSE3D)
    world = compose_overlay(frame, None, None, POSE3D, world=WORLD, world_view=view, trail=WORLD[None, 0])
    assert world.shape == plain.shape
    fw = overlay_size(width, height)[0]
    np.testing.assert_array_equal(world[:, :fw], plain[:, :fw])
    assert not np.array_equal(world[:, fw:], plain[:, fw:])


def test_api_render_uses_the_world_view(tmp_path):
    from wsgcn_cli import api
    from wsgcn_cli.io import posefile
    from wsgcn_cli.io.video import VideoWriter, open_frames

    t, w, h = 6, 96, 64
    clip = np.stack([WORLD + [0, 0, -0.2 * i] for i in range(t)])
    base = dict(keypoints_2d=np.full((t, 17, 2), 30.0), scores=np.ones((t, 17)),
                keypoints_3d=np.repeat(POSE3D[None] - POSE3D[0], t, 0), times=np.arange(t) / 25.0, fps=25.0,
                image_size=(w, h))
    plain = posefile.PoseFile(**base)
    world = posefile.PoseFile(**base, root_camera_m=np.repeat(POSE3D[None, 0], t, 0), keypoints_3d_world=clip,
                              camera_to_world=CAM_TO_WORLD, foot_contact=np.ones((t, 2), bool), focal_px=100.0)
    video = tmp_path / "v.mp4"
    with VideoWriter(video, 25.0, w, h) as vw:
        for _ in range(t):
            vw.write(np.full((h, w, 3), 90, np.uint8))
    frames = {}
    for name, p in (("plain", plain), ("world", world)):
        posefile.write(p, tmp_path / f"{name}.wsgcn.npz")
        for with_video in (True, False):
            out = api.render(tmp_path / f"{name}.wsgcn.npz", video=video if with_video else None, quiet=True)
            with open_frames(out) as src:
                frames[name, with_video] = [f.image for f in src]
            assert len(frames[name, with_video]) == t
    assert frames["plain", True][0].shape == frames["world", True][0].shape  # the same overlay size
    assert frames["plain", False][0].shape == (480, 480, 3) and frames["world", False][0].shape == (640, 640, 3)
    # the world view's bottom half differs from the plain panel's
    fw = overlay_size(w, h)[0]
    a, b = frames["plain", True][0][:, fw:], frames["world", True][0][:, fw:]
    assert np.abs(a[h // 2 + 4:].astype(int) - b[h // 2 + 4:]).mean() > 1


# --- several people (lift --people) -----------------------------------------------------
ROOTS = {0: np.array([-1.0, 0.0, 3.0]), 1: np.array([1.0, 0.0, 6.0])}  # camera frame: B 3 m further away


def people_pose_file(t: int = 10, world: bool = True, size=(96, 64), f: float | None = None):
    """Two people standing on the floor of CAM_TO_WORLD (track IDs 0 and 1) at ROOTS,
    their 2D the exact projection of their 3D (principal point at the centre; focal ``f``,
    default the world stage's assumed one for ``size``), each with their own world outputs."""
    from wsgcn_cli.io import posefile
    from wsgcn_cli.world import intrinsics

    fxy, c = intrinsics(*size, focal_px=f)
    rel = POSE3D - POSE3D[0]
    people = []
    for tid, root in ROOTS.items():
        cam = rel + root
        kw = {}
        if world:
            kw = dict(root_camera_m=np.repeat(root[None], t, 0), keypoints_3d_world=np.repeat(
                (cam @ CAM_TO_WORLD[:3, :3].T + CAM_TO_WORLD[:3, 3])[None], t, 0), camera_to_world=CAM_TO_WORLD,
                foot_contact=np.ones((t, 2), bool), focal_px=float(fxy[0]))
        people.append(posefile.PoseFile(
            keypoints_2d=np.repeat((cam[:, :2] / cam[:, 2:] * fxy + c)[None], t, 0), scores=np.ones((t, 17)),
            keypoints_3d=np.repeat(rel[None], t, 0), times=np.arange(t) / 25.0, fps=25.0, image_size=size, **kw))
    return posefile.PeoplePoseFile(people, list(ROOTS))


def _centre_of(image, color, tol=30):
    rows, cols = np.nonzero(_mask(image, color, tol))
    assert rows.size > 20, f"{color} hardly drawn ({rows.size} pixels)"
    return np.median(cols), np.median(rows)


def test_people_at_different_depths_are_drawn_where_they_are():
    """Camera view: A (x = -1 m) left of B (x = +1 m), and B, 3 m further away, higher
    (the view looks down by 15 degrees), both the same size (one scale); world view from
    the side: depth runs left to right, so A, nearer the camera, is left of B."""
    from wsgcn_cli.render.people import PeopleScene
    from wsgcn_cli.render.style import person_color
    from wsgcn_cli.render.view3d import render_people_panel, render_world_panel_people

    scene = PeopleScene.from_pose_file(people_pose_file())
    people = scene.people_3d(4)
    assert [q.track_id for q in people] == [0, 1]
    np.testing.assert_allclose(people[1].camera[0], ROOTS[1], atol=1e-6)  # at the root, not root-relative
    cam = render_people_panel(people, scene.camera_view, size=(480, 240))
    (ax, ay), (bx, by) = _centre_of(cam, person_color(0)), _centre_of(cam, person_color(1))
    scale, _ = scene.camera_view.fit(480, 240)
    assert abs((bx - ax) - 2.0 * scale) < 4  # 2 m apart across
    assert ay - by > 0.5 * 3.0 * np.sin(np.radians(15)) * scale  # the further one higher
    widths = [np.ptp(np.nonzero(_mask(cam, person_color(k), 30))[1]) for k in (0, 1)]  # arm span
    assert abs(widths[0] - widths[1]) <= 2 and widths[0] > 0.8 * 0.9 * scale
    side = render_world_panel_people(people, scene.world_view, size=(480, 240))
    (ax, _), (bx, _) = _centre_of(side, person_color(0)), _centre_of(side, person_color(1))
    assert bx - ax > 1.5 * scene.world_view.fit(480, 240)[0]  # 3 m deeper, seen at 25 degrees
    # the split panel: camera view on top, world view below, at the same size
    both = scene.panel(4, (480, 480))
    assert both.shape == (480, 480, 3)
    for k in (0, 1):
        _centre_of(both[:240], person_color(k)), _centre_of(both[241:], person_color(k))


def test_api_render_of_several_people_round_trips(tmp_path):
    """``wsgcn render`` of a pose file with a person axis draws what ``lift --people``
    draws: the overlay with both people in the 2D and in the 3D panel, same frame count
    and size as the single-person overlay; without a video, the 3D panel alone."""
    from wsgcn_cli import api
    from wsgcn_cli.io import posefile
    from wsgcn_cli.io.video import VideoWriter, open_frames
    from wsgcn_cli.render.style import person_color

    t, (w, h) = 6, (96, 64)
    video = tmp_path / "v.mp4"
    with VideoWriter(video, 25.0, w, h) as vw:
        for _ in range(t):
            vw.write(np.full((h, w, 3), 90, np.uint8))
    for name, world in (("world", True), ("plain", False)):
        path = posefile.write(people_pose_file(t, world=world), tmp_path / f"{name}.wsgcn.npz")
        out = api.render(path, video=video, quiet=True)
        assert out.name == f"{name}.overlay.mp4"
        with open_frames(out) as src:
            frames = [fr.image for fr in src]
        fw = overlay_size(w, h)[0]
        assert len(frames) == t and frames[0].shape == (overlay_size(w, h)[1], fw + overlay_size(w, h)[2], 3)
        for k in (0, 1):  # both in the 3D panel (H.264 shifts colours a little)
            assert _mask(frames[3][:, fw:], person_color(k), 90).sum() > 3
        with open_frames(api.render(path, quiet=True)) as src:
            panels = [fr.image for fr in src]
        assert len(panels) == t and panels[0].shape == ((640, 640, 3) if world else (480, 480, 3))
        for k in (0, 1):
            assert _mask(panels[3], person_color(k), 60).sum() > 50
    with pytest.raises(WsgcnError, match="exists"):
        api.render(tmp_path / "world.wsgcn.npz", quiet=True)
