"""The world stage (wsgcn_cli/world.py): a known 3D walk seen by a known, tilted camera.

A standing H36M-17 skeleton (world frame: y up, floor at y = 0, ankles 6 cm above it)
walks along a line, lifting its feet in turn; a pinhole camera at 1.6 m, pitched down
and rolled, sees it. The exact root-relative camera-frame 3D and its projection go in;
the root, the up direction, heights above the floor, the origin, the axes and the
contact flags must come out.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.world import (ANKLES, WorldOptions, check_camera, estimate_world, fit_floor, intrinsics,
                             world_rotation)

W, H, F, FPS = 1280, 720, 1000.0, 25.0
#: A standing H36M-17 pose (world frame, metres, y up, feet on the floor).
TEMPLATE = np.array([
    [0, 0.95, 0], [-0.12, 0.95, 0], [-0.12, 0.5, 0.02], [-0.12, 0.06, 0], [0.12, 0.95, 0], [0.12, 0.5, 0.02],
    [0.12, 0.06, 0], [0, 1.2, 0], [0, 1.45, 0], [0, 1.55, 0.03], [0, 1.72, 0], [0.18, 1.42, 0], [0.22, 1.15, 0],
    [0.24, 0.9, 0.05], [-0.18, 1.42, 0], [-0.22, 1.15, 0], [-0.24, 0.9, 0.05]])


def walk(t: int = 150, lift_m: float = 0.2):
    """(world poses (T, 17, 3), true contact (T, 2) left/right): a walk along x and away in z."""
    s = np.arange(t) / FPS
    path = np.stack([np.linspace(-1.0, 1.0, t), np.zeros(t), np.linspace(0.0, -1.5, t)], -1)
    poses = TEMPLATE[None] + path[:, None]
    phase = np.sin(2 * np.pi * s / 1.2)
    lift = np.stack([lift_m * np.clip(phase, 0, None), lift_m * np.clip(-phase, 0, None)], -1)  # left, right
    for k, (knee, ankle) in enumerate(((5, 6), (2, 3))):
        poses[:, knee, 1] += lift[:, k] / 2
        poses[:, ankle, 1] += lift[:, k]
    return poses, lift < 0.04


def camera(pitch_deg: float = -15.0, roll_deg: float = 6.0, centre=(0.3, 1.6, 5.0)):
    """(R (3, 3) world -> camera, centre (3,)): a camera looking along -z, pitched and rolled."""
    level = np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]])  # camera axes (rows) in the world: x right, y down
    tilt = Rotation.from_euler("xz", [pitch_deg, roll_deg], degrees=True)
    return tilt.apply(level), np.asarray(centre, np.float64)


def observe(poses, R, centre, f=F):
    cam = (poses - centre) @ R.T
    kp2 = f * cam[..., :2] / cam[..., 2:3] + np.array([W / 2, H / 2])
    return cam, kp2, cam - cam[:, :1]


def test_root_up_floor_origin_axes_and_contact_under_a_tilted_camera():
    poses, contact = walk()
    R, centre = camera()
    cam, kp2, rel = observe(poses, R, centre)
    w = estimate_world(kp2, rel, W, H, FPS, focal_px=F)
    assert w.focal_px == F
    assert np.abs(w.root_camera_m - cam[:, 0]).max() < 0.01            # a straight walk survives the low-pass
    up_true = R @ np.array([0.0, 1.0, 0.0])
    assert np.degrees(np.arccos(np.clip(w.up_camera @ up_true, -1, 1))) < 1.0
    world = w.keypoints_3d_world
    assert np.abs(world[..., 1] - poses[..., 1]).max() < 0.02         # heights above the floor
    assert np.abs(world[0, 0, [0, 2]]).max() < 1e-6                   # origin under the first pelvis
    rot, t = w.camera_to_world[:3, :3], w.camera_to_world[:3, 3]
    assert np.allclose(rot @ rot.T, np.eye(3), atol=1e-9) and np.linalg.det(rot) > 0.999
    assert np.allclose((rel + w.root_camera_m[:, None]) @ rot.T + t, world, atol=1e-4)
    assert rot[2] @ np.array([0, 0, 1.0]) < -0.9 and rot[0] @ np.array([1.0, 0, 0]) > 0.9  # z to the camera, x right
    # the world frame's yaw and origin differ from the scene's: compare distances travelled
    d_est = np.linalg.norm(world[:, 0] - world[0, 0], axis=-1)
    d_true = np.linalg.norm(poses[:, 0] - poses[0, 0], axis=-1)
    assert np.abs(d_est - d_true).max() < 0.02
    assert (w.foot_contact == contact).mean() > 0.85
    assert w.foot_contact.any(axis=1).mean() > 0.9                     # one foot is always down


def test_missing_frames_and_default_field_of_view():
    poses, _ = walk(60)
    R, centre = camera(pitch_deg=-5, roll_deg=0)
    cam, kp2, rel = observe(poses, R, centre)
    rel[20:25] = np.nan
    kp2[20:25] = np.nan
    w = estimate_world(kp2, rel, W, H, FPS)                            # no focal: the default 55 degrees
    f, c = intrinsics(W, H)
    assert w.focal_px == pytest.approx(f[0]) and np.allclose(c, [W / 2, H / 2])
    assert np.isnan(w.root_camera_m[20:25]).all() and np.isnan(w.keypoints_3d_world[20:25]).all()
    assert not w.foot_contact[20:25].any()
    assert np.isfinite(w.keypoints_3d_world[:20]).all() and np.isfinite(w.keypoints_3d_world[25:]).all()
    # the wrong focal length scales the depth, not the heights' proportions
    assert np.abs(w.keypoints_3d_world[25:, 10, 1] / w.keypoints_3d_world[25:, 0, 1] - 1.72 / 0.95).max() < 0.05


def test_a_single_image_still_gets_a_world_frame():
    poses, _ = walk(1)
    R, centre = camera(pitch_deg=-10, roll_deg=0)
    cam, kp2, rel = observe(poses, R, centre)
    w = estimate_world(kp2, rel, W, H, 0.0, focal_px=F)
    assert np.isfinite(w.keypoints_3d_world).all()
    assert np.abs(w.keypoints_3d_world[0, list(ANKLES), 1] - 0.06).max() < 0.01
    assert w.foot_contact.all()
    assert np.allclose(w.root_camera_m[0], cam[0, 0], atol=1e-6)


def test_floor_fit_ignores_outliers_and_leans_on_the_prior_across_a_line():
    rng = np.random.default_rng(0)
    n = np.array([0.1, -0.99, 0.05])
    n /= np.linalg.norm(n)
    basis = np.linalg.svd(np.eye(3) - np.outer(n, n))[0][:, :2]
    pts = rng.uniform(-2, 2, (200, 2)) @ basis.T + 0.8 * n + rng.normal(0, 0.003, (200, 3))
    pts[:20] += 0.3 * n                                                 # feet in the air
    est, d = fit_floor(pts, np.array([0, -1.0, 0]))
    assert np.degrees(np.arccos(est @ n)) < 0.5 and d == pytest.approx(0.8, abs=0.01)
    line = np.linspace(-2, 2, 50)[:, None] * basis[:, 0] + 0.8 * n     # collinear points: the prior decides the roll
    est, _ = fit_floor(line, n)
    assert np.degrees(np.arccos(est @ n)) < 0.5


def test_keypoints_beyond_the_image_edge_do_not_push_the_root_away():
    """A person walking out of the image on the right: the detector's guesses for the
    parts beyond the edge are squeezed towards it (here to a fifth of their true distance
    past it), which would shrink the 2D pose and push the root away. The root comes from
    the keypoints inside the image only; with fewer than MIN_ROOT_JOINTS of them the frame
    has no root (NaN), not a guess far away."""
    from wsgcn_cli.world import MIN_ROOT_JOINTS

    poses, _ = walk(150)
    R, centre = camera(centre=(-2.0, 1.6, 5.0))
    cam, kp2, rel = observe(poses, R, centre)
    width = 1000                                                  # the image's right part is cut off
    beyond = kp2[..., 0] > width - 1
    assert beyond[0].sum() == 0 and beyond[-1].all()              # in view at first, gone at the end
    squeezed = kp2.copy()
    squeezed[..., 0] = np.where(beyond, width - 1 + 0.2 * (kp2[..., 0] - (width - 1)), kp2[..., 0])
    w = estimate_world(squeezed, rel, width, H, FPS, focal_px=F, principal_px=(W / 2, H / 2))
    inside = (~beyond).sum(1)
    known = np.isfinite(w.root_camera_m).all(-1)
    assert not known[inside < MIN_ROOT_JOINTS].any() and known[inside >= 8].all()
    err = np.linalg.norm(w.root_camera_m[known] - cam[known, 0], axis=-1)
    assert err.max() < 0.05, err.max()


def test_world_rotation_is_right_handed_with_x_to_the_cameras_right():
    rot = world_rotation(np.array([0, -1.0, 0]))
    assert np.allclose(rot, [[1, 0, 0], [0, -1, 0], [0, 0, -1]])
    rot = world_rotation(np.array([0, 0, -1.0]))                      # looking straight down
    assert np.isclose(np.linalg.det(rot), 1.0)


@pytest.mark.parametrize("focal, fov, words", [(0, None, "--focal"), (-5, None, "--focal"), (None, 10, "--fov"),
                                               (None, 170, "--fov"), (None, float("nan"), "--fov")])
def test_bad_camera_options(focal, fov, words):
    with pytest.raises(WsgcnError, match=words):
        check_camera(focal, fov)


def test_world_options_from_a_pipeline_table():
    o = WorldOptions.from_spec({"fov_deg": 60.0}, focal_px=900)
    assert o.focal_px == 900 and o.fov_deg == 60 and o.enabled
    for table, words in (({"bogus": 1}, "unknown"), ({"enabled": "yes"}, "enabled"), ({"fov_deg": 200}, "--fov"),
                         ({"root_cutoff_hz": 0}, "root_cutoff_hz"), ({"principal_px": [1.0]}, "principal_px"),
                         ({"principal_px": "centre"}, "principal_px"), ({"principal_px": [True, 1]}, "principal_px")):
        with pytest.raises(WsgcnError, match=words):
            WorldOptions.from_spec(table)
    assert WorldOptions.from_spec({}).principal_px == []
    assert WorldOptions.from_spec({"principal_px": [600, 400]}, principal_px=(10, 20)).principal_px == [10.0, 20.0]
    assert WorldOptions.from_spec({}, principal_px=np.array([10.0, 20.0])).principal_px == [10.0, 20.0]
    with pytest.raises(WsgcnError, match="--principal-point"):
        WorldOptions.from_spec({}, principal_px=(float("nan"), 3.0))


def test_a_given_principal_point_moves_the_root_as_the_pinhole_model_says():
    """The same 2D under a principal point dx pixels to the right: the root moves
    -dx * z / f along x (the person is further left of the optical axis); y and depth
    change only through the slightly different viewing angle (< 0.1 %)."""
    poses, _ = walk(30)
    R, centre = camera()
    cam, kp2, _ = observe(poses, R, centre)
    rel = cam - cam[:, :1]
    base = estimate_world(kp2, rel, W, H, FPS, focal_px=F)
    dx = 15.0
    shifted = estimate_world(kp2, rel, W, H, FPS, focal_px=F, principal_px=(W / 2 + dx, H / 2))
    from_options = estimate_world(kp2, rel, W, H, FPS, focal_px=F,
                                  options=WorldOptions(principal_px=[W / 2 + dx, H / 2]))
    z = base.root_camera_m[:, 2]
    assert np.allclose(shifted.root_camera_m[:, 0], base.root_camera_m[:, 0] - dx * z / F, atol=2e-3)
    assert np.allclose(shifted.root_camera_m[:, 1:], base.root_camera_m[:, 1:], rtol=1e-3, atol=1e-3)
    assert np.allclose(from_options.root_camera_m, shifted.root_camera_m)


def test_pipeline_fills_the_pose_files_world_fields(tmp_path):
    """Pipeline.run(whole_clip=True) -> pose_file -> npz and back, with the world fields."""
    from wsgcn_cli.detect.base import Keypoints2D
    from wsgcn_cli.io import posefile
    from wsgcn_cli.pipeline import Pipeline

    poses, _ = walk(40)
    R, centre = camera()
    _, kp2, _ = observe(poses, R, centre)
    kp = Keypoints2D("h36m17", kp2.astype(np.float32), np.ones((40, 17), np.float32), np.arange(40) / FPS, W, H, FPS)
    pipe = Pipeline.from_file("body17", device="cpu", keypoints=None, focal_px=F)
    track = pipe.run(kp, whole_clip=True)
    assert track.world is not None and track.world.focal_px == F
    path = posefile.write(pipe.pose_file(track, FPS, (W, H), "synthetic"), tmp_path / "x.wsgcn.npz")
    back = posefile.read(path)
    assert back.has_world and back.focal_px == F and back.foot_contact.shape == (40, 2)
    assert np.isfinite(back.keypoints_3d_world).all() and np.isfinite(back.root_camera_m).all()
    off = Pipeline.from_spec({**pipe.spec, "world": {"enabled": False}}, device="cpu")
    assert off.run(kp, whole_clip=True).world is None
    assert not off.pose_file(off.run(kp, whole_clip=True), FPS, (W, H), "x").has_world


def run_lift(args, capsys, cwd: Path):
    """``wsgcn lift ARGS`` through ``wsgcn_cli.cli.main`` in ``cwd``: (exit code, stderr)."""
    from wsgcn_cli import cli

    capsys.readouterr()
    argv, sys.argv = sys.argv, ["wsgcn", "lift", *map(str, args)]
    try:
        cli.main()
        code = 0
    except SystemExit as e:
        code = e.code
    finally:
        sys.argv = argv
    return code, capsys.readouterr().err


@pytest.mark.parametrize("flags, words", [(["--focal", "0"], "--focal"), (["--focal", "-100"], "--focal"),
                                          (["--fov", "5"], "--fov"), (["--fov", "175"], "--fov"),
                                          (["--smooth", "kalman"], "smoothing"),
                                          (["--principal-point", "nan", "500"], "--principal-point")])
def test_bad_lift_flags_are_one_line_errors_before_anything_is_written(flags, words, tmp_path, capsys):
    sample = Path(__file__).resolve().parents[1] / "samples" / "sports2d_clip.mp4"
    out = tmp_path / "out"
    code, err = run_lift([sample, "--out", out, *flags, "--quiet"], capsys, tmp_path)
    lines = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert code == 1 and len(lines) == 1 and words in lines[0] and "Traceback" not in err, err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_api_lift_writes_the_world_outputs_with_the_new_options(tmp_path):
    """api.lift over the bundled clip with 2D from a keypoint file (no detector): --focal,
    --smooth, --weights reach the pose file, which carries the world fields."""
    from wsgcn_cli import api
    from wsgcn_cli.io import posefile
    from wsgcn_cli.io.video import open_frames
    from wsgcn_cli.pipeline import ROOT

    sample = ROOT / "samples" / "sports2d_clip.mp4"
    with open_frames(sample) as src:
        times = np.array([f.time_s for f in src])
        size, fps = (src.width, src.height), src.fps
    t = len(times)
    poses, _ = walk(t)
    R, centre = camera()
    _, kp2, _ = observe(poses, R, centre, f=F * size[0] / W)
    kp2 = kp2 * np.array([size[0] / W, size[1] / H])
    kp_file = tmp_path / "kp.npz"
    np.savez(kp_file, keypoints_2d=kp2.astype(np.float32), scores=np.ones((t, 17), np.float32), times=times,
             fps=np.float64(fps), image_size=np.int32(size), layout=np.array("h36m17"))
    weights = ROOT / "weights" / "semgcn_nl_h36m_det2d.safetensors"
    r = api.lift(sample, out_dir=tmp_path / "out", keypoints=kp_file, video=False, quiet=True, device="cpu",
                 focal=1234.0, smooth="one-euro", weights=weights.name, formats=("npz", "json"))
    p = posefile.read(r["outputs"]["npz"])
    assert p.has_world and p.focal_px == 1234.0 and p.keypoints_3d_world.shape == (t, 17, 3)
    import json

    meta = json.loads(Path(r["outputs"]["json"]).read_text())["meta"]
    assert meta["smoothing"] == "one-euro" and meta["focal_px"] == 1234.0 and "camera_to_world" in meta


def test_verbose_reaches_the_detector(monkeypatch):
    """--verbose / api.lift(verbose=...) -> Pipeline(verbose) -> the detector's verbose option."""
    import types

    from wsgcn_cli.detect import base
    from wsgcn_cli.pipeline import Pipeline

    seen = {}
    monkeypatch.setattr(base, "make_detector", lambda name, **options: seen.update(options) or "detector")
    source = types.SimpleNamespace(kind="video", width=W, height=H, fps=FPS, num_frames=None)
    for verbose in (False, True):
        Pipeline.from_file("body17", device="cpu", verbose=verbose).detector(source)
        assert seen["verbose"] is verbose
