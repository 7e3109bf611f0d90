"""End-to-end: the ``wsgcn`` command on the bundled real clip, and every bad input.

Runs the real command in a subprocess (``python -m wsgcn_cli``), as a user would, and
checks exit codes, one-line errors without tracebacks, and that nothing partial is left.
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "sports2d_clip.mp4"
pytest.importorskip("mediapipe", reason="the lift pipeline needs mediapipe")


def wsgcn(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "wsgcn_cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout)


def assert_one_line_error(r, *words):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    err = [line for line in r.stderr.strip().splitlines() if line.startswith("error: ")]
    assert len(err) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in err[0], err[0]


def no_partial_files(folder: Path):
    return not [p for p in folder.iterdir() if "partial" in p.name]


@pytest.fixture(scope="module")
def lifted(tmp_path_factory):
    out = tmp_path_factory.mktemp("lift")
    r = wsgcn("lift", SAMPLE, "--out", out, "--format", "npz", "--format", "json", "--format", "csv", "--quiet")
    assert r.returncode == 0, r.stderr
    return out


def test_lift_writes_pose_files_and_overlay(lifted):
    import av

    files = sorted(p.name for p in lifted.iterdir())
    assert files == ["sports2d_clip.overlay.mp4", "sports2d_clip.wsgcn.csv", "sports2d_clip.wsgcn.json",
                     "sports2d_clip.wsgcn.npz"]
    z = np.load(lifted / "sports2d_clip.wsgcn.npz")
    with av.open(str(SAMPLE)) as src, av.open(str(lifted / "sports2d_clip.overlay.mp4")) as ov:
        n_in = sum(1 for _ in src.decode(video=0))
        assert ov.streams.video[0].codec_context.name == "h264"
        assert abs(float(ov.streams.video[0].average_rate) - float(src.streams.video[0].average_rate)) < 0.01
        assert sum(1 for _ in ov.decode(video=0)) == n_in
    t = len(z["times"])
    assert t == n_in and z["keypoints_3d"].shape == (t, 17, 3) and z["keypoints_2d"].shape == (t, 17, 2)
    assert np.all(np.diff(z["times"]) > 0)
    ok = np.isfinite(z["keypoints_3d"]).all(axis=(1, 2))
    assert ok.mean() > 0.9
    pose = z["keypoints_3d"][ok]
    assert np.allclose(pose[:, 0], 0.0)  # root-relative
    # upright in camera coordinates (y down): head above the pelvis above the feet
    assert (pose[:, 10, 1] < pose[:, 0, 1]).mean() > 0.9
    assert (pose[:, [3, 6], 1].max(1) > pose[:, 0, 1]).mean() > 0.9
    # metres: a plausible thigh length
    thigh = np.linalg.norm(pose[:, 2] - pose[:, 1], axis=-1)
    assert 0.25 < np.median(thigh) < 0.6
    assert len(str(z["weights_sha256"])) == 64 and str(z["pipeline"]) == "body17"


def test_render_overlay_and_3d_only(lifted, tmp_path):
    import av

    npz = lifted / "sports2d_clip.wsgcn.npz"
    r = wsgcn("render", npz, "--video", SAMPLE, "--out", tmp_path / "again.mp4", "--quiet")
    assert r.returncode == 0, r.stderr
    r = wsgcn("render", npz, "--out", tmp_path / "only3d.mp4", "--quiet")
    assert r.returncode == 0, r.stderr
    t = len(np.load(npz)["times"])
    for name in ("again.mp4", "only3d.mp4"):
        with av.open(str(tmp_path / name)) as c:
            assert sum(1 for _ in c.decode(video=0)) == t
    # a video that does not belong to the poses is refused
    other = tmp_path / "short.mp4"
    _make_video(other, frames=5, person=False)
    assert_one_line_error(wsgcn("render", npz, "--video", other, "--out", tmp_path / "x.mp4"), "frames")


def test_keypoints_file_skips_detection(lifted, tmp_path):
    """--keypoints reads 2D from our own npz (or an mmpose JSON) instead of detecting."""
    npz = lifted / "sports2d_clip.wsgcn.npz"
    r = wsgcn("lift", SAMPLE, "--keypoints", npz, "--out", tmp_path, "--no-video", "--quiet")
    assert r.returncode == 0, r.stderr
    a, b = np.load(npz), np.load(tmp_path / "sports2d_clip.wsgcn.npz")
    assert np.allclose(a["keypoints_2d"], b["keypoints_2d"], equal_nan=True)
    assert np.allclose(a["keypoints_3d"], b["keypoints_3d"], atol=1e-5, equal_nan=True)
    assert not (tmp_path / "sports2d_clip.overlay.mp4").exists()


def test_existing_outputs_need_overwrite(lifted):
    r = wsgcn("lift", SAMPLE, "--out", lifted, "--quiet")
    assert_one_line_error(r, "exists", "--overwrite")


def _make_video(path: Path, frames: int, person: bool = False):
    from wsgcn_cli.io.video import VideoWriter

    with VideoWriter(path, 25, 160, 120, threaded=False) as w:
        for i in range(frames):
            w.write(np.full((120, 160, 3), 40 + i, np.uint8))


def test_bad_inputs(tmp_path):
    out = tmp_path / "out"
    assert_one_line_error(wsgcn("lift", tmp_path / "missing.mp4", "--out", out), "does not exist")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    assert_one_line_error(wsgcn("lift", text, "--out", out))
    truncated = tmp_path / "truncated.mp4"
    data = SAMPLE.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    assert_one_line_error(wsgcn("lift", truncated, "--out", out))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(wsgcn("lift", empty, "--out", out), "image")
    blank = tmp_path / "blank.mp4"
    _make_video(blank, frames=12)
    assert_one_line_error(wsgcn("lift", blank, "--out", out), "no person")
    assert not out.exists() or not list(out.iterdir())
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert_one_line_error(wsgcn("lift", SAMPLE, "--out", a_file / "sub"), "output folder")
    assert_one_line_error(wsgcn("lift", SAMPLE, "--out", out, "--pipeline", "nope"), "unknown pipeline")
    assert_one_line_error(wsgcn("lift", SAMPLE, "--out", out, "--format", "xls"), "format")
    no_world = tmp_path / "no_world.toml"
    no_world.write_text((Path(__file__).resolve().parents[1] / "pipelines" / "body17.toml").read_text()
                        .replace('name = "body17"', 'name = "no_world"').replace("enabled = true", "enabled = false"))
    assert_one_line_error(wsgcn("lift", SAMPLE, "--out", out, "--pipeline", no_world, "--format", "bvh"),
                          "world", "bvh")
    assert not out.exists() or not list(out.iterdir())


def test_ctrl_c_leaves_no_partial_output(tmp_path):
    out = tmp_path / "out"
    # a shell's background jobs inherit an ignored SIGINT: restore the default first
    proc = subprocess.Popen([sys.executable, "-m", "wsgcn_cli", "lift", str(SAMPLE), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and list(out.iterdir())):
        time.sleep(0.2)  # wait until the overlay's temporary file exists: lifting has started
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not out.exists() or not list(out.iterdir())


def test_image_input(tmp_path):
    """A single image gives a one-frame pose file and a PNG overlay."""
    from wsgcn_cli.io.video import open_frames

    with open_frames(SAMPLE) as src:
        frame = next(iter(src)).image
    import cv2

    img = tmp_path / "frame.png"  # lossless: image mode is sensitive to this backlit frame
    cv2.imwrite(str(img), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    r = wsgcn("lift", img, "--quiet")
    assert r.returncode == 0, r.stderr
    z = np.load(tmp_path / "frame.wsgcn.npz")
    assert z["keypoints_3d"].shape == (1, 17, 3) and float(z["fps"]) == 0.0
    assert (tmp_path / "frame.overlay.png").is_file()


def test_usage_errors_print_usage_not_a_traceback():
    for args in (("eval", "--weights", "x"), ("lift",), ("finetune", "clip.mp4")):
        r = wsgcn(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr and "Usage: " in r.stderr and "Error: " in r.stderr, r.stderr


def test_failed_lift_leaves_no_output_folder(tmp_path):
    """A lift that fails (malformed --keypoints JSON, a missing input) leaves no folder it
    created and no partial or stray file."""
    bad = tmp_path / "preds.json"
    bad.write_text('[{"frame_id": 0, "instances": [{"keypoints": [[1, 2]')
    out = tmp_path / "results" / "run1"
    assert_one_line_error(wsgcn("lift", SAMPLE, "--keypoints", bad, "--out", out), "cannot read", "JSON")
    assert_one_line_error(wsgcn("lift", tmp_path / "missing.mp4", "--out", out), "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.json"]
