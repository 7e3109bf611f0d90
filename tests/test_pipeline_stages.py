"""The lift stages (wsgcn_cli.pipeline.stages): the 2D stage and the lifter, streamed one
frame at a time, give exactly the whole-sequence result."""

import numpy as np
import pytest

from wsgcn_cli.detect.base import Keypoints2D
from wsgcn_cli.pipeline import Representation, Track
from wsgcn_cli.pipeline.stages import FrameResult, Lift, Pose2D, finish_through, push_through
from wsgcn_cli.pose2d.gaps import fill_gaps
from wsgcn_cli.pose2d.mapping import to_h36m17


class StreamingLift:
    """Test harness: :class:`Pose2D` then :class:`Lift`, fed one frame of detector keypoints
    at a time as :meth:`wsgcn_cli.pipeline.Pipeline.stream` feeds them, with a
    :class:`Track` of every finished frame.

    :meth:`push` ``(time_s, xy (J, 2) px, score (J,), payload=None)`` and :meth:`finish`
    return the finished items ``(payload, xy (17, 2) px, score (17,), pose3d (17, 3) m)``.
    """

    def __init__(self, lifter, layout, width, height, fps, rep, batch=8, net=None):
        self.stages = [Pose2D(rep, layout, width, height, fps, net, batch), Lift(lifter, width, height, batch)]
        self.track, self.size, self.payloads = Track(layout), (width, height, fps), []

    def _items(self, results):
        self.track.extend(results)
        return [(self.payloads[r.index], r.keypoints_2d, r.scores, r.keypoints_3d) for r in results]

    def push(self, time_s, xy, score, payload=None):
        item = FrameResult(len(self.payloads), float(time_s), None, np.asarray(xy, np.float32),
                           np.asarray(score, np.float32))
        self.payloads.append(payload)
        return self._items(push_through(self.stages, [item]))

    def finish(self):
        return self._items(finish_through(self.stages))

    @property
    def raw(self):
        t = self.track
        return Keypoints2D(t.layout, t.detector_keypoints, t.detector_scores, t.times, *self.size)

    @property
    def h36m(self):
        return self.track.keypoints(*self.size)

    @property
    def poses3d(self):
        return self.track.keypoints_3d

    @property
    def missing(self):
        return self.track.missing


class FakeLifter:
    """Maps 2D to 3D deterministically (x, y, x*y) so outputs can be compared."""

    def __call__(self, xy, width=None, height=None):
        xy = np.asarray(xy, np.float32)
        out = np.concatenate([xy, xy[..., :1] * xy[..., 1:]], axis=-1) / 1000.0
        out[~np.isfinite(xy).all(axis=(-1, -2))] = np.nan
        return out


def _detections(t=60, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(100, 500, size=(t, 33, 2)).astype(np.float32)
    score = rng.uniform(0.5, 1.0, size=(t, 33)).astype(np.float32)
    for a, b in ((5, 8), (20, 35), (50, 51)):  # short, long and 1-frame gaps without a person
        xy[a:b] = np.nan
        score[a:b] = 0.0
    xy[40:43, 15] = np.nan  # a 3-frame gap of one wrist
    return xy, score


def test_streaming_equals_whole_sequence():
    xy, score = _detections()
    times = np.arange(len(xy)) / 30.0
    rep = Representation(max_gap_frames=4)
    stream = StreamingLift(FakeLifter(), "blazepose33", 640, 480, 30.0, rep, batch=3)
    out, held = [], 0
    for i in range(len(xy)):
        done = stream.push(times[i], xy[i], score[i], payload=i)
        out += done
        held = max(held, i + 1 - len(out))
    out += stream.finish()
    assert [o[0] for o in out] == list(range(len(xy)))  # every frame once, in order
    assert held <= rep.max_gap_frames + 1 + 3 + 2  # bounded delay: gap window + 2D batch + lifter batch

    whole = to_h36m17(Keypoints2D("blazepose33", xy, score, times, 640, 480, 30.0))
    filled, missing = fill_gaps(whole, rep.max_gap_frames, min_score=rep.min_score)
    assert np.allclose(stream.h36m.xy, filled.xy, equal_nan=True)
    assert np.array_equal(stream.missing, missing)
    assert np.allclose(stream.poses3d, FakeLifter()(filled.xy), equal_nan=True)
    # the short gaps are filled, the long one is not
    assert np.isfinite(stream.poses3d[5:8]).all() and np.isfinite(stream.poses3d[40:43]).all()
    assert np.isnan(stream.poses3d[20:35]).all() and missing[20:35].all()
    assert stream.raw.xy.shape == (60, 33, 2)


@pytest.mark.parametrize("max_gap,batch,seed", [(0, 1, 0), (3, 2, 1), (10, 8, 2), (5, 1, 3)])
def test_streaming_random_gaps_equal_whole_sequence(max_gap, batch, seed):
    """Per-joint misses of random lengths (low scores and NaN): streaming gives the
    whole-sequence result, and holds a frame only while a gap may still be filled."""
    rng = np.random.default_rng(seed)
    xy, score = _detections()
    xy, score = xy.copy(), score.copy()
    for _ in range(25):
        j, t0, length = rng.integers(0, 33), rng.integers(0, 60), rng.integers(1, 14)
        if rng.random() < 0.5:
            score[t0 : t0 + length, j] = 0.05
        else:
            xy[t0 : t0 + length, j] = np.nan
    times = np.arange(len(xy)) / 25.0
    rep = Representation(max_gap_frames=max_gap, min_score=0.3)
    stream = StreamingLift(FakeLifter(), "blazepose33", 640, 480, 25.0, rep, batch=batch)
    out, held = [], 0
    for i in range(len(xy)):
        out += stream.push(times[i], xy[i], score[i], payload=i)
        held = max(held, i + 1 - len(out))
    out += stream.finish()
    assert [o[0] for o in out] == list(range(len(xy)))
    assert held <= max_gap + 2 * batch - 1  # gap filling + the 2D stage's batch + the lifter's
    whole = to_h36m17(Keypoints2D("blazepose33", xy, score, times, 640, 480, 25.0))
    filled, missing = fill_gaps(whole, max_gap, min_score=0.3)
    assert np.allclose(stream.h36m.xy, filled.xy, equal_nan=True)
    assert np.array_equal(stream.missing, missing)


def test_streaming_without_gaps_holds_only_a_batch():
    xy, score = _detections()
    xy, score = xy.copy(), np.ones_like(score)
    xy[np.isnan(xy)] = 100.0
    stream = StreamingLift(FakeLifter(), "blazepose33", 640, 480, 30.0, Representation(max_gap_frames=10), batch=4)
    for i in range(len(xy)):
        done = stream.push(i / 30.0, xy[i], score[i], payload=i)
        assert len(done) == (4 if (i + 1) % 4 == 0 else 0)
