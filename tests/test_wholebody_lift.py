"""``wsgcn lift --pipeline wholebody``: COCO-WholeBody-133 through the lift pipeline.

The whole-body lifter's weights here are a randomly initialised small SemGAN written with
the project's weights writer (the trained ones may not have shipped): its 3D is garbage,
but shapes, layouts, NaN where a part was not seen, the files and the checks are not.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from wsgcn_cli import api, weights
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.io import posefile
from wsgcn_cli.io.video import Frame, VideoWriter
from wsgcn_cli.lifter import WholeBodyLifter, load_lifter
from wsgcn_cli.models.semgan import CODEC, SemGAN, encode_input
from wsgcn_cli.pipeline import Pipeline, Track, load
from wsgcn_cli.skeletons import COCO_WHOLEBODY133

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "sports2d_clip.mp4"
W, H, FPS, T = 320, 240, 25.0, 24
SMALL = {"hidden": 16, "depth": 1, "heads": 2, "decoder_depth": 1}
FACE, LHAND, RHAND = slice(23, 91), slice(91, 112), slice(112, 133)


@pytest.fixture(scope="module")
def semgan_weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "semgan_random.safetensors"
    weights.save(path, SemGAN(**SMALL).state_dict(),
                 {"model": "semgan", "model_options": SMALL, "layout": "coco_wholebody133", "codec": CODEC})
    return path


def wholebody(t: int = T, seed: int = 0):
    """(t, 133, 2) px and (t, 133) scores of a swaying person-sized cloud: body always
    seen; the face in frames 0-5 and 12-23 only (a 6-frame gap, filled); the left hand
    never; the right hand from frame 8 on."""
    rng = np.random.default_rng(seed)
    base = np.stack([rng.uniform(0.35, 0.65, 133) * W, rng.uniform(0.15, 0.9, 133) * H], -1)
    sway = 0.03 * W * np.sin(np.arange(t) / 5.0)[:, None, None] * np.array([1.0, 0.3])
    xy = (base[None] + sway + rng.normal(0, 0.5, (t, 133, 2))).astype(np.float32)
    score = rng.uniform(0.5, 1.0, (t, 133)).astype(np.float32)
    for part, frames in ((FACE, slice(6, 12)), (LHAND, slice(None)), (RHAND, slice(0, 8))):
        xy[frames, part], score[frames, part] = np.nan, 0.0
    return xy, score


def keypoint_file(path: Path, xy, score, fps: float = FPS) -> Path:
    t = len(xy)
    np.savez(path, keypoints_2d=xy, scores=score, times=np.arange(t) / (fps or 1.0), fps=np.float64(fps),
             image_size=np.int32([W, H]), layout=np.array("coco_wholebody133"))
    return path


def video(path: Path, t: int = T) -> Path:
    with VideoWriter(path, FPS, W, H) as w:
        for i in range(t):
            w.write(np.full((H, W, 3), 40 + 4 * i, np.uint8))
    return path


def test_lift_wholebody_from_a_keypoint_file(tmp_path, semgan_weights):
    """api.lift --pipeline wholebody (no detector): 133-keypoint npz / json / csv, NaN in 3D
    exactly where the 2D is NaN, the pelvis (mean of hips) at 0, an overlay video."""
    xy, score = wholebody()
    r = api.lift(video(tmp_path / "clip.mp4"), pipeline="wholebody", out_dir=tmp_path / "out",
                 keypoints=keypoint_file(tmp_path / "kp.npz", xy, score), weights=semgan_weights,
                 formats=("npz", "json", "csv"), quiet=True, device="cpu")
    assert r["frames"] == T and r["frames_with_pose"] == T
    z = np.load(r["outputs"]["npz"])
    assert str(z["layout"]) == "coco_wholebody133" and str(z["pipeline"]) == "wholebody"
    assert z["keypoints_2d"].shape == (T, 133, 2) and z["scores"].shape == (T, 133)
    assert z["keypoints_3d"].shape == (T, 133, 3) and z["joint_names"].shape == (133,)
    assert z["edges"].shape == (len(COCO_WHOLEBODY133.edges), 2) and "root_camera_m" not in z.files
    k2, k3 = z["keypoints_2d"], z["keypoints_3d"]
    seen = np.isfinite(k2).all(-1)
    assert (np.isfinite(k3).all(-1) == seen).all()                     # 3D exactly where 2D is
    assert seen[:, FACE].all() and not seen[:, LHAND].any() and seen[8:, RHAND].all() and not seen[:8, RHAND].any()
    assert np.allclose(z["scores"][6:12, FACE], 0.2)                    # the face's gap is interpolated
    assert np.abs(k3[:, [11, 12]].mean(axis=1)).max() < 1e-5            # root: the mean of the hips
    assert not z["missing"].any()
    back = posefile.read(r["outputs"]["npz"], layouts=("coco_wholebody133",))
    assert back.layout == "coco_wholebody133" and np.array_equal(back.keypoints_3d, k3, equal_nan=True)
    with pytest.raises(WsgcnError, match="coco_wholebody133"):        # read() alone: H36M-17 unless asked
        posefile.read(r["outputs"]["npz"])
    assert posefile.read_any(r["outputs"]["npz"]).layout == "coco_wholebody133"
    for clip in (tmp_path / "clip.mp4", None):                          # render: overlay and 3D only
        out = api.render(r["outputs"]["npz"], video=clip, out=tmp_path / f"r{clip is None}.mp4", quiet=True)
        assert out.stat().st_size > 0
    js = json.loads(Path(r["outputs"]["json"]).read_text())
    assert js["meta"]["layout"] == "coco_wholebody133" and len(js["meta"]["joint_names"]) == 133
    assert len(js["frames"]) == T and js["frames"][0]["keypoints_3d"][91] == [None] * 3
    assert len(js["frames"][0]["keypoints_3d"]) == 133
    rows = Path(r["outputs"]["csv"]).read_text().splitlines()
    assert len(rows) == 1 + T * 133 and rows[1 + 112].split(",")[2:4] == ["112", "right_hand_wrist"]
    assert Path(r["outputs"]["overlay"]).stat().st_size > 0


def test_mmpose_133_json_and_an_image(tmp_path, semgan_weights):
    """A single image with an MMPose 133-keypoint prediction (list of instances): one
    frame, an overlay PNG with the hands drawn."""
    import cv2

    xy, score = wholebody(1)
    xy[0, RHAND] = np.array([W * 0.8, H * 0.5]) + np.random.default_rng(1).normal(0, 6, (21, 2))
    score[0, RHAND] = 0.9
    instance = {"keypoints": np.nan_to_num(xy[0], nan=0.0).tolist(), "keypoint_scores": score[0].tolist()}
    (tmp_path / "pred.json").write_text(json.dumps([instance]))
    image = tmp_path / "person.png"
    cv2.imwrite(str(image), np.full((H, W, 3), 30, np.uint8))
    r = api.lift(image, pipeline="wholebody", out_dir=tmp_path / "out", keypoints=tmp_path / "pred.json",
                 weights=semgan_weights, quiet=True, device="cpu")
    z = np.load(r["outputs"]["npz"])
    assert z["keypoints_3d"].shape == (1, 133, 3) and str(z["detector_layout"]) == "coco_wholebody133"
    # MMPose gives every keypoint (score 0 for the unseen left hand): all lifted
    assert np.isfinite(z["keypoints_3d"]).all()
    png = cv2.imread(r["outputs"]["overlay"])[..., ::-1]
    assert png.shape[0] == H
    hand = png[int(H * 0.5) - 25 : int(H * 0.5) + 25, int(W * 0.8) - 25 : int(W * 0.8) + 25].astype(int)
    assert (np.abs(hand - np.array([255, 60, 60])).sum(-1) < 60).sum() > 20   # red: the person's right hand


@pytest.mark.parametrize("old, new, words", [
    ("[world]\nenabled = false", "[world]\nenabled = true", "[world]"),
    ('[bones]\nmode = "none"', '[bones]\nmode = "clip"', "[bones]"),
    ("[render]", '[refiner]\nweights = "weights/lstm_refiner_h36m.safetensors"\n\n[render]', "refiner"),
    ('kind = "geometric"', 'kind = "network"\nweights = "weights/pose_representation_h36m.safetensors"',
     "representation"),
])
def test_a_wholebody_pipeline_enabling_an_h36m_stage_is_a_one_line_error(tmp_path, semgan_weights, old, new, words):
    text = (REPO / "pipelines" / "wholebody.toml").read_text()
    assert text.count(old) == 1
    user = tmp_path / "mine.toml"
    user.write_text(text.replace(old, new).replace("weights/semgan_wholebody_composite.safetensors",
                                                   str(semgan_weights)))
    with pytest.raises(WsgcnError) as e:
        Pipeline.from_file(user, device="cpu")
    assert words in str(e.value) and "\n" not in str(e.value)


def test_cli_errors_are_one_line_and_write_nothing(tmp_path, semgan_weights, capsys, monkeypatch):
    from wsgcn_cli import cli

    xy, score = wholebody()
    kp = keypoint_file(tmp_path / "kp.npz", xy, score)
    clip = video(tmp_path / "clip.mp4")
    for extra, words in ((["--keypoints", str(kp), "--format", "bvh"], "world"), (["--people", "all"], "H36M-17")):
        monkeypatch.setattr("sys.argv", ["wsgcn", "lift", str(clip), "--pipeline", "wholebody", "--weights",
                                         str(semgan_weights), "-o", str(tmp_path / "out"), *extra])
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            cli.main()
        err = capsys.readouterr().err.strip()
        assert e.value.code == 1 and words in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
    with pytest.raises(WsgcnError, match="needs coco_wholebody133"):  # a BlazePose file cannot feed it
        pipe = Pipeline.from_file("wholebody", device="cpu", lifter_weights=semgan_weights)
        pipe.stages("blazepose33", W, H, FPS)
    with pytest.raises(WsgcnError, match="layout"):                 # body weights in the whole-body pipeline
        Pipeline.from_file("wholebody", device="cpu", lifter_weights=REPO / "weights" / "semgcn_nl_h36m_det2d.safetensors")


class FakeSource:
    kind, width, height, fps, path = "video", W, H, FPS, Path("fake.mp4")

    def __init__(self, t: int):
        self.num_frames = t

    def __iter__(self):
        for i in range(self.num_frames):
            yield Frame(i, i / FPS, np.zeros((H, W, 3), np.uint8))


def test_stream_equals_run_with_parts_filled_relative_to_the_body(tmp_path, semgan_weights):
    """The face lost while the body moves is filled relative to the nose (it moves with the
    head); streaming gives the whole-clip result; Butterworth leaves unseen parts NaN."""
    xy, score = wholebody(40)
    xy[:, :, 1] += np.linspace(0, 30, 40, dtype=np.float32)[:, None]    # the whole person drifts down...
    xy[6:12, 0, 1] += 15.0                                               # ...and the head dips during the gap
    kp_file = keypoint_file(tmp_path / "kp.npz", xy, score)
    pipe = Pipeline.from_file("wholebody", device="cpu", keypoints=kp_file, lifter_weights=semgan_weights)
    assert pipe.layout == "coco_wholebody133" and pipe.refiner is None and not pipe.world.enabled
    track = Track("coco_wholebody133", pipe.layout)
    with pipe.stream(FakeSource(40)) as results:
        track.extend(results)
    from wsgcn_cli.detect.precomputed import load_keypoints

    batch = pipe.run(load_keypoints(kp_file))
    assert np.array_equal(track.keypoints_2d, batch.keypoints_2d, equal_nan=True)
    assert np.allclose(track.keypoints_3d, batch.keypoints_3d, atol=1e-6, equal_nan=True)
    nose_tip = track.keypoints_2d[:, 23 + 30]                            # follows the nose's dip
    offset = nose_tip[5] - xy[5, 0]
    assert np.abs(nose_tip[6:12] - (track.keypoints_2d[6:12, 0] + offset)).max() < 2.0  # the dip is 15 px
    smoothed = pipe.whole_clip(batch, W, H, FPS).keypoints_3d
    assert (np.isfinite(smoothed).all(-1) == np.isfinite(batch.keypoints_2d).all(-1)).all()


def test_flip_test_is_the_exact_mirror(semgan_weights):
    """Mirroring the encoded input (u -> -u, left/right swapped) is the encoding of the
    mirrored image, and the flip-tested lifter is mirror-equivariant."""
    xy, score = wholebody(4)
    perm = COCO_WHOLEBODY133.flip_permutation()
    assert (perm[perm] == np.arange(133)).all()
    mirror_xy = xy[:, perm] * np.array([-1.0, 1.0], np.float32) + np.array([W, 0], np.float32)
    enc, enc_m = encode_input(xy, score), encode_input(mirror_xy, score[:, perm])
    assert np.allclose(enc_m, enc[:, perm] * np.array([-1, 1, 1, 1]), atol=1e-5)
    lifter = load_lifter(semgan_weights, flip_test=True, device="cpu")
    assert isinstance(lifter, WholeBodyLifter) and lifter.reads_scores
    a, b = lifter(xy, score=score), lifter(mirror_xy, score=score[:, perm])
    assert np.isnan(a[:, LHAND]).all() and np.isnan(b[:, RHAND]).all()
    assert np.allclose(b, a[:, perm] * np.array([-1, 1, 1]), atol=1e-5, equal_nan=True)


BODY17_DIGESTS = {  # body17 over a fixed BlazePose keypoint file on the sample clip (before whole-body lift)
    "keypoints_2d": "c8709d1748cdc052", "scores": "a7191d3a0c0b99a1", "keypoints_3d": "c25363209b78f52f",
    "missing": "30d2fa64f3f896e9", "detector_keypoints": "221f1affec1340ef", "detector_scores": "f80b83e8d8e541ba",
    "joint_names": "dacbdcf1433dfca5", "parents": "9624857e743b0c84", "layout": "700f3201a4413d80",
}
#: sha256 of the lifter and refiner weights the digests were made with
BODY17_WEIGHTS = ("28d95e8eaf5327d47d84308fa77a17c8c863baf34f1765920114a5409e7b16f5",
                  "8a2bc03d58589674aa0e0ea4b9ce5f3bb3d7c5bb1bcc4ee98a90912361998293")


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes() + str(a.dtype).encode() + str(a.shape).encode()
                          ).hexdigest()[:16]


def test_body17_outputs_do_not_change(tmp_path):
    """The default pipeline's pose file over a fixed keypoint file is bit for bit what it was
    before the whole-body path existed (skipped if the body weights were re-shipped)."""
    from wsgcn_cli.io.video import open_frames

    with open_frames(SAMPLE) as src:
        times, w, h, fps = [f.time_s for f in src], src.width, src.height, src.fps
    t = len(times)
    rng = np.random.default_rng(7)
    base = np.stack([rng.uniform(0.35, 0.65, 33) * w, rng.uniform(0.15, 0.9, 33) * h], -1)
    sway = 0.03 * w * np.sin(np.arange(t) / 7.0)[:, None, None] * np.array([1.0, 0.3])
    xy = (base[None] + sway + rng.normal(0, 1.0, (t, 33, 2))).astype(np.float32)
    score = rng.uniform(0.4, 1.0, (t, 33)).astype(np.float32)
    xy[20:23], score[20:23] = np.nan, 0.0
    kp = tmp_path / "kp.npz"
    np.savez(kp, keypoints_2d=xy, scores=score, times=np.asarray(times), fps=np.float64(fps),
             image_size=np.int32([w, h]), layout=np.array("blazepose33"))
    r = api.lift(SAMPLE, out_dir=tmp_path / "o", keypoints=kp, formats=("npz", "json"), video=False, quiet=True,
                 device="cpu")
    z = np.load(r["outputs"]["npz"])
    meta = json.loads(Path(r["outputs"]["json"]).read_text())["meta"]
    if (str(z["weights_sha256"]), meta.get("refiner_sha256")) != BODY17_WEIGHTS:
        pytest.skip("the body17 lifter or refiner weights changed since the digests were taken")
    assert {k: _digest(z[k]) for k in BODY17_DIGESTS} == BODY17_DIGESTS
    assert meta["layout"] == "h36m17" and "edges" not in meta and load("body17")["name"] == "body17"
