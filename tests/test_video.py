"""Reading frames (video, image, folder), bad inputs, and the H.264 VideoWriter."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.io.atomic import atomic_open, atomic_write, write_json
from wsgcn_cli.io.video import DEFAULT_FOLDER_FPS, VideoWriter, open_frames

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "sports2d_clip.mp4"


def _write_png(path: Path, rgb: np.ndarray) -> None:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def test_read_sample_clip():
    with open_frames(SAMPLE) as src:
        assert (src.kind, src.width, src.height, src.num_frames) == ("video", 960, 540, 105)
        assert src.fps == pytest.approx(30.0)
        frames = [(f.index, f.time_s, f.image.shape, f.image.dtype) for f in src]
    assert len(frames) == 105
    assert [f[0] for f in frames] == list(range(105))
    times = np.array([f[1] for f in frames])
    assert times[0] == 0.0 and np.all(np.diff(times) > 0)
    assert times[-1] == pytest.approx(104 / 30, abs=1e-3)
    assert frames[0][2:] == ((540, 960, 3), np.uint8)


def test_frame_source_iterates_once():
    with open_frames(SAMPLE) as src:
        next(iter(src))
        with pytest.raises(RuntimeError):
            iter(src)


def test_image_input_is_rgb(tmp_path):
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[..., 0] = 200  # red
    _write_png(tmp_path / "red.png", rgb)
    with open_frames(tmp_path / "red.png") as src:
        assert (src.kind, src.width, src.height, src.num_frames, src.fps) == ("image", 40, 30, 1, 0.0)
        (frame,) = list(src)
    assert frame.time_s == 0.0 and frame.image.shape == (30, 40, 3)
    assert tuple(frame.image[0, 0]) == (200, 0, 0)


def test_folder_input_natural_order(tmp_path):
    for i in (10, 1, 2):
        _write_png(tmp_path / f"frame{i}.png", np.full((8, 6, 3), i, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    with open_frames(tmp_path) as src:
        assert (src.kind, src.num_frames, src.fps) == ("folder", 3, DEFAULT_FOLDER_FPS)
        frames = list(src)
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2, 10]
    assert [f.time_s for f in frames] == pytest.approx([0, 1 / DEFAULT_FOLDER_FPS, 2 / DEFAULT_FOLDER_FPS])
    with open_frames(tmp_path, folder_fps=10) as src:
        assert [f.time_s for f in src] == pytest.approx([0.0, 0.1, 0.2])


def test_folder_with_mixed_sizes_fails(tmp_path):
    _write_png(tmp_path / "a.png", np.zeros((8, 6, 3), np.uint8))
    _write_png(tmp_path / "b.png", np.zeros((10, 6, 3), np.uint8))
    with open_frames(tmp_path) as src, pytest.raises(WsgcnError, match="size"):
        list(src)


def test_rotation_metadata_is_applied(tmp_path):
    path = tmp_path / "rotated.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(90)  # stored landscape, shown rotated 90 deg CCW
        for i in range(3):
            img = np.zeros((32, 64, 3), np.uint8)
            img[:8, :8] = 255  # white block at the stored top-left corner
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    with open_frames(path) as src:
        assert (src.width, src.height, src.rotation) == (32, 64, 90)
        image = next(iter(src)).image
    assert image.shape == (64, 32, 3)
    # Rotating counter-clockwise moves the top-left corner to the bottom-left.
    assert image[-4, 4].mean() > 200 and image[4, 4].mean() < 50


@pytest.mark.parametrize("make, match", [
    (lambda d: d / "missing.mp4", "does not exist"),
    (lambda d: (d / "notes.txt").write_text("hello") and d / "notes.txt", "not a readable video"),
    (lambda d: (d / "fake.mp4").write_text("hello") and d / "fake.mp4", "not a readable video"),
    (lambda d: (d / "bad.png").write_bytes(b"\x89PNG garbage") and d / "bad.png", "not a readable image"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "no images"),
])
def test_bad_inputs(tmp_path, make, match):
    with pytest.raises(WsgcnError, match=match):
        with open_frames(make(tmp_path)) as src:
            list(src)


def test_truncated_video(tmp_path):
    data = SAMPLE.read_bytes()
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(WsgcnError, match="truncated|corrupt"):
        with open_frames(bad) as src:
            list(src)


def test_zero_frames(tmp_path):
    path = tmp_path / "zero.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        out.start_encoding()
    with pytest.raises(WsgcnError, match="no video stream|zero"):
        open_frames(path)


def test_video_writer_roundtrip(tmp_path):
    path = tmp_path / "out.mp4"
    w, h, n = 101, 75, 12  # odd sizes are padded to even
    with VideoWriter(path, 25, w, h) as writer:
        for i in range(n - 1):
            writer.write(np.full((h, w, 3), (20 * i, 100, 50), np.uint8))
        writer.write_rendered(np.full, (h, w, 3), 128, np.uint8)
    assert path.is_file() and _leftovers(tmp_path) == []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert float(stream.average_rate) == pytest.approx(25)
    with open_frames(path) as src:
        assert (src.width, src.height) == (102, 76)
        frames = list(src)
    assert len(frames) == n
    assert np.diff([f.time_s for f in frames]) == pytest.approx(np.full(n - 1, 1 / 25))
    assert np.abs(frames[3].image[:h, :w].astype(int).mean(axis=(0, 1)) - (60, 100, 50)).max() < 6
    assert np.abs(frames[-1].image[:h, :w].astype(int) - 128).mean() < 3


def test_video_writer_ntsc_rate(tmp_path):
    path = tmp_path / "ntsc.mp4"
    with VideoWriter(path, 30000 / 1001, 32, 32, threaded=False) as writer:
        for _ in range(3):
            writer.write(np.zeros((32, 32, 3), np.uint8))
    with av.open(str(path)) as c:
        assert c.streams.video[0].average_rate == Fraction(30000, 1001)


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_video_writer_aborts_on_exception(tmp_path, exc):
    path = tmp_path / "out.mp4"
    with pytest.raises(exc):
        with VideoWriter(path, 25, 32, 32) as writer:
            writer.write(np.zeros((32, 32, 3), np.uint8))
            raise exc()
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_video_writer_abort_keeps_old_file(tmp_path):
    path = tmp_path / "out.mp4"
    path.write_bytes(b"old")
    writer = VideoWriter(path, 25, 32, 32)
    writer.write(np.zeros((32, 32, 3), np.uint8))
    writer.abort()
    assert path.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_video_writer_errors(tmp_path):
    with pytest.raises(WsgcnError, match="does not exist"):
        VideoWriter(tmp_path / "nope" / "out.mp4", 25, 32, 32)
    with pytest.raises(WsgcnError, match="frames per second"):
        VideoWriter(tmp_path / "out.mp4", 0, 32, 32)
    writer = VideoWriter(tmp_path / "out.mp4", 25, 32, 32)
    with pytest.raises(ValueError):
        writer.write(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(WsgcnError, match="no frames"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write(tmp_path):
    path = tmp_path / "a.json"
    with atomic_write(path) as tmp:
        assert tmp.parent == tmp_path and tmp != path
        tmp.write_text(json.dumps({"x": 1}))
    assert json.loads(path.read_text()) == {"x": 1}
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(path, encoding="utf-8") as f:
            f.write("partial")
            raise KeyboardInterrupt
    assert json.loads(path.read_text()) == {"x": 1} and _leftovers(tmp_path) == []
    with atomic_write(tmp_path / "b.npz") as tmp:
        assert tmp.suffix == ".npz"
        np.savez(tmp, a=np.arange(3))
    assert np.load(tmp_path / "b.npz")["a"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.npz"]


def test_write_json_creates_parents_and_writes_nothing_for_unserialisable_data(tmp_path):
    import json

    out = write_json(tmp_path / "a" / "b.json", {"mpjpe_mm": 1.5})
    assert json.loads(out.read_text()) == {"mpjpe_mm": 1.5}
    with pytest.raises(TypeError):
        write_json(tmp_path / "c.json", {"x": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
