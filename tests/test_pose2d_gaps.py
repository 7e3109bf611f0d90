"""Filling gaps over time (wsgcn_cli.pose2d.gaps)."""

from __future__ import annotations

import numpy as np
import pytest

from wsgcn_cli.detect.base import Keypoints2D
from wsgcn_cli.pose2d.gaps import INTERPOLATED_SCORE, fill_gaps


def _track(values, scores=None):
    """One-joint-wide keypoints (coco17, all joints equal) following ``values`` in x."""
    x = np.asarray(values, dtype=np.float32)
    xy = np.stack([x, 2 * x], axis=-1)[:, None].repeat(17, axis=1)
    s = np.ones((len(x), 17), np.float32) if scores is None else np.asarray(scores)[:, None].repeat(17, 1)
    return Keypoints2D("coco17", xy, s, np.arange(len(x)) / 10.0, 100, 100, 10.0)


def test_fill_short_gap():
    kp = _track([0, 1, np.nan, np.nan, 4, 5])
    out, missing = fill_gaps(kp, max_gap_frames=2)
    np.testing.assert_allclose(out.xy[:, 0, 0], [0, 1, 2, 3, 4, 5])
    np.testing.assert_allclose(out.xy[:, 0, 1], [0, 2, 4, 6, 8, 10])
    np.testing.assert_allclose(out.score[:, 0], [1, 1, INTERPOLATED_SCORE, INTERPOLATED_SCORE, 1, 1])
    assert not missing.any()


def test_long_gap_and_ends_stay_missing():
    kp = _track([np.nan, 1, np.nan, np.nan, np.nan, 5, 6, np.nan])
    out, missing = fill_gaps(kp, max_gap_frames=2)
    assert np.isnan(out.xy[[0, 2, 3, 4, 7], 0]).all()
    assert (out.score[[0, 2, 3, 4, 7], 0] == 0).all()
    np.testing.assert_array_equal(missing, [1, 0, 1, 1, 1, 0, 0, 1])


def test_low_scores_count_as_missing_and_times_weight():
    kp = _track([0, 50, 3], scores=[1.0, 0.01, 1.0])
    kp.times[:] = [0.0, 0.1, 0.3]  # variable frame rate: frame 1 is 1/3 of the way
    out, missing = fill_gaps(kp, max_gap_frames=1)
    assert out.xy[1, 0, 0] == pytest.approx(1.0)
    assert not missing.any()
    out, missing = fill_gaps(kp, max_gap_frames=0)
    assert np.isnan(out.xy[1, 0]).all() and missing.tolist() == [False, True, False]
