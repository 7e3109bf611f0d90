"""People tracking with persistent IDs (wsgcn_cli/tracking.py).

Synthetic people (a fixed random 33-point body moved along a path) for crossing paths,
an occlusion gap, a newcomer, a track that ends; then the multi-person detector on the
first 150 frames of the Sports2D demo (skipped without the video, mediapipe or a TFLite
runtime; its detections are cached for the session).
"""

from __future__ import annotations

import importlib.util
import itertools
import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.tracking import PeopleTracker, TrackedPerson, track_people

DEMO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos" / "sports2d_demo.mp4"
HAS_MODELS = importlib.util.find_spec("mediapipe") is not None and any(
    importlib.util.find_spec(m) is not None for m in ("ai_edge_litert", "tflite_runtime"))


def _body(seed: int) -> np.ndarray:
    """(33, 2) keypoints of a 100 x 200 px body centred on the origin."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(-0.5, 0.5, (33, 2)) * [100, 200]).astype(np.float32)


def _person(body: np.ndarray, centre) -> SimpleNamespace:
    xy = body + np.asarray(centre, np.float32)
    return SimpleNamespace(xy=xy, score=np.full(33, 0.9, np.float32), presence=0.9,
                           box=np.concatenate([xy.min(0), xy.max(0)]))


def test_crossing_paths_keep_their_ids():
    """A walks right, B walks left on the same line; while they overlap only the one in
    front is detected (as the detector does); afterwards each keeps its ID."""
    a, b = _body(1), _body(2)
    frames, truth = [], []
    for f in range(80):
        xa, xb = 100 + 10 * f, 900 - 10 * f
        people, who = [], []
        if abs(xa - xb) > 60 or f % 2 == 0:  # overlapping: B hidden behind A in odd frames
            people.append(_person(a, (xa, 300)))
            who.append("a")
        if abs(xa - xb) > 60:
            people.append(_person(b, (xb, 305)))
            who.append("b")
        if f % 3 == 0:  # the detector's order is no identity
            people, who = people[::-1], who[::-1]
        frames.append(people)
        truth.append(who)
    tracker = PeopleTracker(fps=30)
    ids = [tracker.update(p) for p in frames]
    id_of = {}
    for who, got in zip(truth, ids):
        for w, i in zip(who, got):
            assert id_of.setdefault(w, i) == i, "ID swap"
    assert id_of["a"] != id_of["b"]
    tracks = tracker.finish()
    assert [t.track_id for t in tracks] == [0, 1]
    assert tracks[0].num_seen + tracks[1].num_seen == sum(len(w) for w in truth)


def test_occlusion_gap_is_reidentified_and_a_long_one_ends_the_track():
    body = _body(3)
    frames = []
    for f in range(120):
        hidden = 20 <= f < 40 or 60 <= f < 100  # 20 frames (< 30 = 1 s), then 40 (> 1 s)
        frames.append([] if hidden else [_person(body, (100 + 4 * f, 300))])
    tracks = track_people(frames, fps=30)
    assert [(t.first, t.last, t.num_seen) for t in tracks] == [(0, 59, 40), (100, 119, 20)]
    t = tracks[0]
    assert isinstance(t, TrackedPerson) and t.track_id == 0 and tracks[1].track_id == 1
    assert t.xy.shape == (60, 33, 2) and t.score.shape == (60, 33) and t.box.shape == (60, 4)
    assert np.isnan(t.xy[20:40]).all() and (t.score[20:40] == 0).all() and not t.seen[20:40].any()
    np.testing.assert_array_equal(t.frames, np.arange(60))
    # with a longer memory the second gap is bridged too
    assert [t.num_seen for t in track_people(frames, fps=30, max_missed=45)] == [60]


def test_newcomer_gets_a_new_id_and_short_tracks_are_dropped():
    a, b, ghost = _body(4), _body(5), _body(6)
    frames = []
    for f in range(50):
        people = [_person(a, (200, 300))]
        if f >= 20:
            people.append(_person(b, (700 - 2 * f, 320)))
        if f in (3, 4):  # a false person for two frames
            people.append(_person(ghost, (500, 50)))
        frames.append(people)
    tracker = PeopleTracker(fps=25)
    ids = [tracker.update(p) for p in frames]
    assert ids[0] == [0] and ids[3] == [0, 1] and ids[20] == [0, 2] and ids[49] == [0, 2]
    tracks = tracker.finish(min_frames=5)
    assert [(t.track_id, t.first, t.num_seen) for t in tracks] == [(0, 0, 50), (2, 20, 30)]
    assert len(track_people(frames, fps=25, min_frames=1)) == 3


def test_bad_options_and_order():
    with pytest.raises(WsgcnError):
        PeopleTracker(fps=-1)
    with pytest.raises(WsgcnError):
        PeopleTracker(max_missed=-1)
    assert PeopleTracker(fps=30).max_missed == 30 and PeopleTracker().max_missed == 25
    tracker = PeopleTracker()
    tracker.update([], frame=5)
    with pytest.raises(WsgcnError, match="in order"):
        tracker.update([], frame=5)


@pytest.fixture(scope="session")
def demo_detections(tmp_path_factory):
    """The multi-person detector's people in the first 150 frames of the Sports2D demo,
    cached in the session's temp folder."""
    if not DEMO.is_file():
        pytest.skip(f"{DEMO} is absent")
    if not HAS_MODELS:
        pytest.skip("mediapipe or a TFLite runtime is not installed")
    cache = tmp_path_factory.getbasetemp() / "sports2d_demo_150_people.pkl"
    if cache.is_file():
        return pickle.loads(cache.read_bytes())
    from wsgcn_cli.detect.multi_person import BlazePoseMultiDetector
    from wsgcn_cli.io.video import open_frames

    with open_frames(DEMO) as src, BlazePoseMultiDetector() as det:
        out = dict(fps=src.fps, height=src.height,
                   people=[det.detect_people(f.image) for f in itertools.islice(src, 150)])
    cache.write_bytes(pickle.dumps(out))
    return out


def test_both_people_of_the_sports2d_demo_keep_one_id(demo_detections):
    """Measured: the man on the box, frames 1-149 (149 seen), the woman walking in front
    from frame 48 (102 seen); 2 tracks (before dropping short ones too)."""
    d = demo_detections
    assert len(track_people(d["people"], d["fps"], min_frames=1)) <= 4
    tracks = track_people(d["people"], d["fps"])
    assert 2 <= len(tracks) <= 4
    hips = {t.track_id: float(np.nanmean(t.xy[t.seen][:, [23, 24], 1])) / d["height"] for t in tracks}
    man = [t for t in tracks if hips[t.track_id] < 0.5]
    woman = [t for t in tracks if hips[t.track_id] >= 0.5]
    assert len(man) == 1 and len(woman) == 1, hips  # each under one ID
    assert man[0].num_seen >= 140 and woman[0].num_seen >= 100
    for t in tracks:  # no detection of the other person under this ID
        assert (np.abs(t.xy[t.seen][:, [23, 24], 1].mean(1) / d["height"] - hips[t.track_id]) < 0.25).all()
