"""Several people: ``lift --people all|N``, the pose file's person axis, the overlay's
per-person colours (issue 15).

The file and drawing checks run anywhere; the lifts on ``samples/sports2d_clip.mp4`` are
skipped without mediapipe or a TFLite runtime (ai-edge-litert / tflite_runtime).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.io import posefile

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "sports2d_clip.mp4"
HAS_MODELS = importlib.util.find_spec("mediapipe") is not None and any(
    importlib.util.find_spec(m) is not None for m in ("ai_edge_litert", "tflite_runtime"))
needs_models = pytest.mark.skipif(not HAS_MODELS, reason="mediapipe or a TFLite runtime is not installed")


def _person(t: int, first: int, n: int, seed: int) -> posefile.PoseFile:
    rng = np.random.default_rng(seed)
    kp3d = rng.normal(size=(n, 17, 3)).astype(np.float32) * 0.3
    kp3d[:, 0] = 0
    p = posefile.PoseFile(
        keypoints_2d=rng.uniform(0, 640, (n, 17, 2)), scores=rng.uniform(size=(n, 17)), keypoints_3d=kp3d,
        times=np.arange(first, first + n) / 30.0, fps=30.0, image_size=(640, 480),
        detector_keypoints=rng.uniform(size=(n, 33, 2)), detector_scores=rng.uniform(size=(n, 33)),
        detector_layout="blazepose33", pipeline="body17", source="clip.mp4")
    return posefile.pad_to_clip(p, first, np.arange(t) / 30.0)


def _people() -> posefile.PeoplePoseFile:
    return posefile.PeoplePoseFile([_person(8, 0, 8, 1), _person(8, 3, 4, 2)], [0, 4])


def test_pad_to_clip_marks_the_frames_outside_missing():
    p = _person(8, 3, 4, 2)
    assert p.num_frames == 8 and p.missing.tolist() == [True] * 3 + [False] * 4 + [True]
    assert np.isnan(p.keypoints_2d[:3]).all() and (p.scores[7] == 0).all()
    assert np.isfinite(p.keypoints_3d[3:7]).all()
    with pytest.raises(WsgcnError):
        posefile.pad_to_clip(p, 2, np.arange(8) / 30.0)


def test_npz_has_a_person_axis_and_reads_back(tmp_path):
    p = _people()
    path = posefile.write(p, tmp_path / "clip.wsgcn.npz")
    z = np.load(path)
    assert z["keypoints_2d"].shape == (2, 8, 17, 2) and z["scores"].shape == (2, 8, 17)
    assert z["keypoints_3d"].shape == (2, 8, 17, 3) and z["missing"].shape == (2, 8)
    assert z["detector_keypoints"].shape == (2, 8, 33, 2) and z["times"].shape == (8,)
    assert z["track_id"].tolist() == [0, 4]
    back = posefile.read_people(path)
    assert back.track_ids.tolist() == [0, 4]
    np.testing.assert_array_equal(back.stacked("keypoints_3d"), p.stacked("keypoints_3d"))
    with pytest.raises(WsgcnError, match="read_people"):
        posefile.read(path)  # a single-person reader must not take the first person silently
    single = posefile.write(p.people[0], tmp_path / "one.wsgcn.npz")
    with pytest.raises(WsgcnError, match="multi-person"):
        posefile.read_people(single)


def test_json_and_csv_carry_the_person(tmp_path):
    p = _people()
    j = json.loads(posefile.write(p, tmp_path / "clip.wsgcn.json").read_text())
    assert j["meta"]["people"] == 2 and j["meta"]["track_ids"] == [0, 4]
    assert [[q["track_id"] for q in f["people"]] for f in j["frames"]] == [[0]] * 3 + [[0, 4]] * 4 + [[0]]
    assert len(j["frames"][4]["people"][1]["keypoints_3d"]) == 17
    rows = list(csv.DictReader(posefile.write(p, tmp_path / "clip.wsgcn.csv").open()))
    assert len(rows) == (8 + 4) * 17
    assert {r["person"] for r in rows if r["frame"] == "5"} == {"0", "4"}


def test_people_pose_file_checks():
    with pytest.raises(WsgcnError):
        posefile.PeoplePoseFile([], [])
    with pytest.raises(WsgcnError, match="distinct"):
        posefile.PeoplePoseFile([_person(8, 0, 8, 1), _person(8, 0, 8, 2)], [3, 3])
    with pytest.raises(WsgcnError, match="same frames"):
        posefile.PeoplePoseFile([_person(8, 0, 8, 1), _person(9, 0, 8, 2)], [0, 1])
    assert posefile.person_path(Path("a/clip.wsgcn.bvh"), 3) == Path("a/clip.wsgcn.p3.bvh")


def test_parse_people():
    from wsgcn_cli.api import ALL_PEOPLE, parse_people

    assert parse_people(1) == 1 and parse_people("3") == 3 and parse_people("ALL") == ALL_PEOPLE
    for bad in (0, -1, "0", "abc", "1.5", "", True):
        with pytest.raises(WsgcnError, match="--people"):
            parse_people(bad)


def test_overlay_draws_each_person_in_their_colour():
    from test_render import people_pose_file

    from wsgcn_cli.render.overlay import compose_overlay, compose_overlay_people, overlay_size, person_color
    from wsgcn_cli.render.people import PeopleScene

    scene = PeopleScene.from_pose_file(people_pose_file(4, size=(320, 240)))
    frame = np.zeros((240, 320, 3), np.uint8)
    out = compose_overlay_people(frame, scene, 2)
    assert out.shape == compose_overlay(frame, None, None, None).shape
    fw = overlay_size(320, 240)[0]
    for k in (0, 1):  # each person in their colour on the frame and in the 3D panel
        for part in (out[:, :fw], out[:, fw:]):
            assert (np.abs(part.reshape(-1, 3).astype(int) - person_color(k)).sum(1) < 10).sum() > 30
    assert person_color(0) != person_color(1)


def test_scene_shares_the_lowest_floor_and_leaves_out_unknown_roots():
    """The shared world frame is that of the person standing lowest (the ground, not a
    box top), whoever has the most frames; a person whose root is unknown in a frame is
    not drawn there."""
    from test_render import people_pose_file

    from wsgcn_cli.render.people import PeopleScene, reference_person

    p = people_pose_file(6)
    box = p.people[0]  # person 0 stands on a 1.5 m box: 1.5 m higher, their floor the box top
    box.root_camera_m[:, 1] -= 1.5  # (camera y points down; their own world pose is unchanged)
    box.camera_to_world = box.camera_to_world.copy()
    box.camera_to_world[1, 3] -= 1.5  # world y = 0.9 - 1.5 - y_camera
    p.people[1].missing[:2] = True  # ... and has more frames with a pose
    p.people[1].keypoints_3d[:2] = np.nan
    scene = PeopleScene.from_pose_file(p)
    assert scene.reference == 1
    roots, c2w = p.stacked("root_camera_m"), p.stacked("camera_to_world")
    assert reference_person(roots, c2w, np.array([6, 4])) == 1
    assert reference_person(roots, c2w, np.array([6, 1])) == 0  # too few frames to count
    pelvis_y = scene.world[:, 3, 0, 1]
    np.testing.assert_allclose(pelvis_y, [0.9 + 1.5, 0.9], atol=1e-5)  # on the box, on the ground
    assert [q.track_id for q in scene.people_3d(0)] == [0]  # person 1 unknown in frame 0
    assert [q.track_id for q in scene.people_3d(3)] == [0, 1]
    scene.camera[0, 3, :] = np.nan  # a root unknown: not drawn
    assert [q.track_id for q in scene.people_3d(3)] == [1]


def test_scene_without_world_outputs_estimates_the_roots():
    """A pose file without world outputs still places people: roots solved from their 2D
    and 3D with the assumed field of view (here the 2D was made with it, so exactly)."""
    from test_render import ROOTS, people_pose_file

    from wsgcn_cli.render.people import PeopleScene

    scene = PeopleScene.from_pose_file(people_pose_file(8, world=False))
    assert not scene.roots_measured and scene.world is None and scene.world_view is None
    for k, root in enumerate(ROOTS.values()):
        np.testing.assert_allclose(scene.camera[k, :, 0], np.repeat(root[None], 8, 0), atol=0.02)
    panel = scene.panel(3, (320, 320))
    assert panel.shape == (320, 320, 3)


def test_read_any_reads_either_kind(tmp_path):
    multi = posefile.write(_people(), tmp_path / "m.wsgcn.npz")
    single = posefile.write(_people().people[0], tmp_path / "s.wsgcn.npz")
    assert isinstance(posefile.read_any(multi), posefile.PeoplePoseFile)
    assert isinstance(posefile.read_any(single), posefile.PoseFile)
    with pytest.raises(WsgcnError, match="not found"):
        posefile.read_any(tmp_path / "none.wsgcn.npz")


def _wsgcn(*args):
    return subprocess.run([sys.executable, "-m", "wsgcn_cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("value", ["0", "abc", "-2"])
def test_bad_people_is_a_one_line_error_and_writes_nothing(tmp_path, value):
    out = tmp_path / "out"
    r = _wsgcn("lift", SAMPLE, "--people", value, "--out", out, "--quiet")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert [line for line in r.stderr.splitlines() if line.startswith("error: ")] == \
        [f"error: --people takes all or a whole number >= 1, not {value!r}"]
    assert not out.exists()


def test_people_with_a_keypoint_file_is_refused(tmp_path):
    from wsgcn_cli.api import lift

    with pytest.raises(WsgcnError, match="--keypoints"):
        lift(SAMPLE, out_dir=tmp_path, people="all", keypoints=tmp_path / "k.npz", quiet=True)
    assert not list(tmp_path.iterdir())


@needs_models
def test_lift_everyone_in_the_sample_clip(tmp_path):
    """Measured: the woman (ID 1, frames 3-104) and the man on the box (ID 3, from
    frame 24; the detector loses him in frames 8-23), 102 and 81 frames with a 3D pose;
    short tracks (a false person in frames 0-3, the man's sideways frames 4-7) dropped."""
    r = _wsgcn("lift", SAMPLE, "--people", "all", "--out", tmp_path, "-f", "npz", "-f", "json", "-f", "bvh",
               "--quiet")
    assert r.returncode == 0, r.stderr
    p = posefile.read_people(tmp_path / "sports2d_clip.wsgcn.npz")
    t = p.num_frames
    assert t == 105 and 2 <= p.num_people <= 3
    k3 = p.stacked("keypoints_3d")
    assert k3.shape == (p.num_people, t, 17, 3) and p.stacked("missing").shape == (p.num_people, t)
    assert p.has_world and p.stacked("keypoints_3d_world").shape == (p.num_people, t, 17, 3)
    seen = (~p.stacked("missing")).sum(1)
    assert (np.sort(seen)[-2:] >= 75).all(), seen
    hips = [np.nanmean(p.people[k].keypoints_2d[:, 0, 1]) / 540 for k in range(p.num_people)]
    assert min(hips) < 0.5 < max(hips)  # the man on the box and the woman in front
    names = sorted(x.name for x in tmp_path.iterdir())
    assert names == sorted(["sports2d_clip.overlay.mp4", "sports2d_clip.wsgcn.json", "sports2d_clip.wsgcn.npz"]
                           + [f"sports2d_clip.wsgcn.p{i}.bvh" for i in p.track_ids])
    # again without --overwrite: refused, nothing changed
    r = _wsgcn("lift", SAMPLE, "--people", "2", "--out", tmp_path, "--quiet")
    assert r.returncode == 1 and "exists" in r.stderr


@needs_models
def test_people_one_person_keeps_the_person_axis(tmp_path):
    """``--people N`` caps the people: with 1 < N the axis is there even for one person;
    a still image goes through the detector in image mode."""
    import cv2

    from wsgcn_cli.api import lift
    from wsgcn_cli.io.video import open_frames

    with open_frames(SAMPLE) as src:
        image = next(f.image for f in src if f.index == 60)
    img = tmp_path / "frame.png"
    cv2.imwrite(str(img), cv2.cvtColor(image[270:], cv2.COLOR_RGB2BGR))  # the woman only
    r = lift(img, out_dir=tmp_path, people=2, quiet=True)
    p = posefile.read_people(r["outputs"]["npz"])
    assert p.num_people == 1 and p.stacked("keypoints_3d").shape == (1, 1, 17, 3)
    assert (tmp_path / "frame.overlay.png").is_file()
