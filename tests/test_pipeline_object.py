"""The Pipeline object: built and checked once, streamed with bounded delay, the same 2D
and 3D whether frames are streamed (``lift``) or keypoints are run (``finetune``), and a
failed ``lift`` leaves nothing behind."""

from pathlib import Path

import numpy as np
import pytest

from wsgcn_cli import api
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.io.video import Frame
from wsgcn_cli.pipeline import Pipeline, Track, load

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "sports2d_clip.mp4"
W, H, FPS = 320, 240, 25.0


def blazepose(t: int, width: int = W, height: int = H, seed: int = 0):
    """(T, 33, 2) px and (T, 33) scores of a swaying person-sized cloud of BlazePose keypoints,
    with a short gap (frames 20-22), a long one (40-54) and a wrist missing for 3 frames."""
    rng = np.random.default_rng(seed)
    base = np.stack([rng.uniform(0.35, 0.65, 33) * width, rng.uniform(0.15, 0.9, 33) * height], -1)
    sway = 0.03 * width * np.sin(np.arange(t) / 7.0)[:, None, None] * np.array([1.0, 0.3])
    xy = (base[None] + sway + rng.normal(0, 1.0, (t, 33, 2))).astype(np.float32)
    score = rng.uniform(0.4, 1.0, (t, 33)).astype(np.float32)
    for a, b in ((20, 23), (40, 55)):
        xy[a:b], score[a:b] = np.nan, 0.0
    xy[30:33, 15], score[30:33, 15] = np.nan, 0.0
    return xy, score


def write_keypoints(path: Path, xy, score, times, width=W, height=H, fps=FPS) -> Path:
    np.savez(path, keypoints_2d=xy, scores=score, times=np.asarray(times, np.float64), fps=np.float64(fps),
             image_size=np.int32([width, height]), layout=np.array("blazepose33"))
    return path


class FakeSource:
    """A FrameSource stand-in: ``t`` grey frames; counts the frames read so far."""

    kind, width, height, fps, path = "video", W, H, FPS, Path("fake.mp4")

    def __init__(self, t: int):
        self.num_frames, self.read = t, 0

    def __iter__(self):
        for i in range(self.num_frames):
            self.read += 1
            yield Frame(i, i / FPS, np.full((H, W, 3), i % 255, np.uint8))


def test_from_file_builds_every_stage_once_and_checks_across_stages(tmp_path):
    p = Pipeline.from_file("body17", device="cpu", refine=False)
    assert p.net is None and p.refiner is None and p.lifter.sha256 and p.max_height == 720
    network = Pipeline.from_file("body17-network", device="cpu")  # no [refiner] table: none by default
    assert network.net is not None and network.refiner is None
    r = Pipeline.from_file("body17", device="cpu")  # body17's refiner is on by default
    assert r.refiner is not None and r.refiner.window == 64 and r.warnings == []
    assert Pipeline.from_file("body17", device="cpu", refine=True).refiner is not None
    assert Pipeline.from_spec(dict(load("body17"), refiner={**load("body17")["refiner"], "enabled": False}),
                              device="cpu").refiner is None
    with pytest.raises(WsgcnError, match=r"\[refiner\] enabled"):
        Pipeline.from_spec(dict(load("body17"), refiner={**load("body17")["refiner"], "enabled": "yes"}), device="cpu")
    with pytest.raises(WsgcnError, match=r"\[refiner\]"):
        Pipeline.from_file("body17-network", device="cpu", refine=True)
    with pytest.raises(WsgcnError, match="keypoint file"):
        Pipeline.from_file("body17", device="cpu", keypoints=tmp_path / "none.json")
    joint = load("body17-network-joint")
    spec = dict(joint, representation={"kind": "geometric"})
    with pytest.raises(WsgcnError, match="reads the 2D representation network's confidences"):
        Pipeline.from_spec(spec, device="cpu")
    spec = dict(load("body17"), refiner={"weights": str(tmp_path / "missing.safetensors")})
    with pytest.raises(WsgcnError, match="refiner weights .* not found"):
        Pipeline.from_spec(spec, device="cpu")
    with pytest.raises(WsgcnError, match="unknown detector"):
        Pipeline.from_spec(dict(load("body17"), detector={"name": "openpose"}), device="cpu")
    with pytest.raises(WsgcnError, match="max_gap_frames"):
        Pipeline.from_spec(dict(load("body17"), representation={"max_gap_frames": -1}), device="cpu")
    with pytest.raises(WsgcnError, match="max_height"):
        Pipeline.from_spec(dict(load("body17"), render={"max_height": "tall"}), device="cpu")
    # lifter weights of another 2D codec (e.g. an older root_scale lifter): lift without the refiner, say so
    from wsgcn_cli import weights as wio
    from wsgcn_cli.models.registry import build_model

    opts = {"hidden": 16, "num_blocks": 1, "dropout": 0.0}
    wio.save(tmp_path / "rs.safetensors", build_model("semgcn_nonlocal", **opts).state_dict(),
             {"model": "semgcn_nonlocal", "model_options": opts, "layout": "h36m17", "codec": "root_scale",
              "output": "root-relative camera coordinates, metres"})
    other = Pipeline.from_file("body17", device="cpu", lifter_weights=tmp_path / "rs.safetensors")
    assert other.refiner is None and any("'root_scale'" in w and "without the refiner" in w for w in other.warnings)
    (tmp_path / "value.toml").write_text('representation = "network"\n[lifter]\nweights = "x"\n')
    with pytest.raises(WsgcnError, match="representation must be a table"):
        Pipeline.from_file(tmp_path / "value.toml", device="cpu")


@pytest.mark.parametrize("name", ["body17-network", "body17"])
def test_stream_equals_run_over_the_same_keypoints_with_bounded_delay(tmp_path, name):
    t = 140
    xy, score = blazepose(t)
    kp_file = write_keypoints(tmp_path / "kp.npz", xy, score, np.arange(t) / FPS)
    pipe = Pipeline.from_file(name, device="cpu", keypoints=kp_file)  # body17: with its refiner
    source = FakeSource(t)
    track, held = Track(), 0
    with pipe.stream(source) as results:
        for i, r in enumerate(results):
            assert r.index == i and r.image is not None and r.image[0, 0, 0] == i % 255
            track.add(r)
            held = max(held, source.read - len(track))
    # 2D stage (max gap 10 + batch 8) + lifter batch (7) + worker queue; the refiner holds a window more
    assert held <= (25 + 5 if pipe.refiner is None else 25 + 5 + 64 + 48 - 2)
    from wsgcn_cli.detect.precomputed import load_keypoints

    batch = pipe.run(load_keypoints(kp_file))
    assert np.array_equal(track.keypoints_2d, batch.keypoints_2d, equal_nan=True)
    assert np.array_equal(track.scores, batch.scores) and np.array_equal(track.missing, batch.missing)
    assert np.allclose(track.keypoints_3d, batch.keypoints_3d, atol=1e-6, equal_nan=True)
    assert np.array_equal(track.detector_keypoints, xy, equal_nan=True)
    assert track.missing[40:55].all() and not track.missing[20:23].any()  # the long gap stays, the short is filled
    assert np.isfinite(track.keypoints_3d[~track.missing]).all() and np.isnan(track.keypoints_3d[track.missing]).all()


def test_stream_refuses_a_keypoint_file_of_another_length_before_reading(tmp_path):
    xy, score = blazepose(30)
    pipe = Pipeline.from_file("body17", device="cpu", keypoints=write_keypoints(tmp_path / "kp.npz", xy, score,
                                                                                np.arange(30) / FPS))
    source = FakeSource(31)
    with pytest.raises(WsgcnError, match="30 frames of keypoints"):
        pipe.stream(source)
    assert source.read == 0


def _sample_keypoints(path: Path, person: bool = True) -> Path:
    """A BlazePose keypoint file for the bundled clip (its size and frame times)."""
    from wsgcn_cli.io.video import open_frames

    with open_frames(SAMPLE) as src:
        times = [f.time_s for f in src]
        size, fps = (src.width, src.height), src.fps
    xy, score = blazepose(len(times), *size)
    if not person:
        xy[:], score[:] = np.nan, 0.0
    return write_keypoints(path, xy, score, times, *size, fps)


def test_failed_lift_leaves_no_output_folder_and_no_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"frame_id": 0, "instances": [')                              # malformed JSON
    cases = [(dict(input=SAMPLE, keypoints=bad), "cannot read"),
             (dict(input=tmp_path / "missing.mp4"), "does not exist"),
             (dict(input=SAMPLE, keypoints=_sample_keypoints(tmp_path / "empty.npz", person=False)), "no person"),
             (dict(input=SAMPLE, keypoints=write_keypoints(tmp_path / "short.npz", *blazepose(5), np.arange(5) / FPS)),
              "frames")]
    before = sorted(p.name for p in tmp_path.iterdir())
    for args, words in cases:
        out = tmp_path / "new" / "out"
        with pytest.raises(WsgcnError, match=words):
            api.lift(out_dir=out, quiet=True, device="cpu", **args)
        assert not (tmp_path / "new").exists(), args
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing stray beside it either
    # an existing folder is kept, empty
    (tmp_path / "kept").mkdir()
    with pytest.raises(WsgcnError, match="no person"):
        api.lift(SAMPLE, out_dir=tmp_path / "kept", keypoints=tmp_path / "empty.npz", quiet=True, device="cpu")
    assert (tmp_path / "kept").is_dir() and not list((tmp_path / "kept").iterdir())


def test_lift_with_keypoints_writes_the_streamed_track(tmp_path):
    """api.lift only opens, streams and writes: its pose file is Pipeline.run's track."""
    from wsgcn_cli.detect.precomputed import load_keypoints

    kp_file = _sample_keypoints(tmp_path / "kp.npz")
    r = api.lift(SAMPLE, pipeline="body17-network", out_dir=tmp_path / "out", keypoints=kp_file, video=False,
                 quiet=True, device="cpu")
    z = np.load(r["outputs"]["npz"])
    track = Pipeline.from_file("body17-network", device="cpu").run(load_keypoints(kp_file), whole_clip=True)
    assert np.array_equal(z["keypoints_2d"], track.keypoints_2d, equal_nan=True)
    assert np.array_equal(z["keypoints_3d"], track.keypoints_3d, equal_nan=True)
    assert str(z["pipeline"]) == "body17-network" and str(z["detector_layout"]) == "blazepose33"
    assert r["frames"] == len(track) and r["frames_with_pose"] == track.frames_with_pose
