"""Smoothing (wsgcn_cli/smoothing.py): One-Euro streaming = batch, Butterworth lowers jitter."""

import numpy as np
import pytest

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.smoothing import OneEuroFilter, OneEuroStage, Smoothing, butterworth, check_kind, one_euro

FPS = 50.0


def noisy_motion(t: int = 200, seed: int = 0):
    """(clean (T, 17, 3), noisy): smooth sinusoidal joint motion (metres) plus 1 cm jitter."""
    rng = np.random.default_rng(seed)
    s = np.arange(t)[:, None, None] / FPS
    clean = 0.3 * np.sin(2 * np.pi * 1.0 * s + rng.uniform(0, 6, (1, 17, 3))) + rng.normal(0, 0.2, (1, 17, 3))
    return clean, clean + rng.normal(0, 0.01, clean.shape)


def accel(x):
    return np.abs(np.diff(x, n=2, axis=0)).mean()


def test_butterworth_lowers_jitter_without_lag():
    clean, noisy = noisy_motion()
    out = butterworth(noisy, FPS, 6.0)
    assert out.shape == noisy.shape
    assert accel(out - clean) < 0.2 * accel(noisy - clean)
    assert np.abs(out - clean).mean() < 0.6 * np.abs(noisy - clean).mean()
    # zero phase: a clean 1 Hz sine passes unshifted
    assert np.abs(butterworth(clean, FPS, 6.0) - clean)[10:-10].max() < 2e-3


def test_butterworth_handles_gaps_short_runs_and_single_images():
    _, noisy = noisy_motion(60)
    x = noisy.copy()
    x[20:23] = np.nan
    x[40, 3, 1] = np.nan                     # a partial frame is a gap too
    out = butterworth(x, FPS, 6.0)
    assert np.isnan(out[20:23]).all() and np.isnan(out[40, 3, 1]) and np.isfinite(out[41]).all()
    assert np.array_equal(out[40], x[40], equal_nan=True)
    assert np.isfinite(out[:20]).all() and np.isfinite(out[23:40]).all()
    assert not np.allclose(out[:20], x[:20])
    short = noisy[:3]
    assert np.array_equal(butterworth(short, FPS, 6.0), short)      # too short to filter
    assert np.array_equal(butterworth(noisy, 0.0, 6.0), noisy)      # no frame rate (images)
    assert np.array_equal(butterworth(noisy, 10.0, 6.0), noisy)     # cutoff above Nyquist
    assert np.isfinite(butterworth(noisy[:5], FPS, 6.0)).all()      # a run shorter than the usual padding


def test_one_euro_streaming_equals_batch_and_restarts_after_gaps():
    _, noisy = noisy_motion(80)
    times = np.arange(80) / FPS
    x = noisy.copy()
    x[30:33] = np.nan
    batch = one_euro(x, times, 1.0, 5.0, 1.0)
    f = OneEuroFilter(1.0, 5.0, 1.0)
    stream = np.stack([f(x[i], times[i]) for i in range(80)])
    assert np.array_equal(batch, stream, equal_nan=True)
    assert np.isnan(batch[30:33]).all()
    assert np.array_equal(batch[33], x[33]) and np.array_equal(batch[0], x[0])   # fresh starts pass through
    assert accel(batch[:30] - noisy[:30]) > 0                                      # it did filter
    assert np.abs(np.diff(batch[1:30], axis=0)).mean() < np.abs(np.diff(noisy[1:30], axis=0)).mean()


def test_one_euro_follows_fast_motion_with_a_high_beta():
    t = np.arange(100) / FPS
    ramp = np.where(t < 1, 0.0, (t - 1) * 2.0)[:, None]            # still, then 2 units/s
    slow = one_euro(ramp, t, 1.0, 0.0)
    fast = one_euro(ramp, t, 1.0, 50.0)
    assert np.abs(fast - ramp)[-1] < 0.2 * np.abs(slow - ramp)[-1]


def test_one_euro_stage_filters_the_2d_in_the_stream():
    from wsgcn_cli.pipeline.stages import FrameResult

    stage = OneEuroStage(Smoothing(kind="one-euro"), 640, 480, FPS)
    rng = np.random.default_rng(1)
    xy = 300 + rng.normal(0, 3, (40, 17, 2))
    out = []
    for i in range(40):
        r = FrameResult(i, i / FPS, None, np.zeros((33, 2), np.float32), np.zeros(33, np.float32),
                        keypoints_2d=xy[i].astype(np.float32))
        out += stage.push(r)
    assert stage.finish() == [] and [r.index for r in out] == list(range(40))
    filtered = np.stack([r.keypoints_2d for r in out])
    expect = one_euro(xy.astype(np.float32) / 640.0, np.arange(40) / FPS, 1.0, 10.0, 1.0) * 640.0
    assert np.allclose(filtered, expect, atol=1e-3)
    assert np.abs(np.diff(filtered, axis=0)).mean() < np.abs(np.diff(xy, axis=0)).mean()


def test_smoothing_options():
    assert Smoothing.from_spec({}).kind == "none"
    assert Smoothing.from_spec({"kind": "none"}, kind="butterworth").kind == "butterworth"
    for table, words in (({"kind": "kalman"}, "unknown smoothing"), ({"bogus": 1}, "unknown"),
                         ({"cutoff_hz": 0}, "cutoff_hz"), ({"order": 0}, "order"), ({"beta": -1}, "beta")):
        with pytest.raises(WsgcnError, match=words):
            Smoothing.from_spec(table)
    with pytest.raises(WsgcnError, match="one-euro"):
        check_kind("median")


def test_pipeline_runs_the_chosen_smoothing():
    """--smooth through Pipeline.from_file: One-Euro changes the lifter's 2D in the stream,
    Butterworth the 3D after it (whole_clip), none neither."""
    from wsgcn_cli.detect.base import Keypoints2D
    from wsgcn_cli.pipeline import Pipeline

    rng = np.random.default_rng(2)
    base = np.array([[500, 400], [470, 400], [470, 520], [470, 640], [530, 400], [530, 520], [530, 640],
                     [500, 340], [500, 280], [500, 250], [500, 220], [540, 285], [560, 340], [570, 395],
                     [460, 285], [440, 340], [430, 395]], np.float32)
    xy = base[None] + rng.normal(0, 2, (30, 17, 2)).astype(np.float32)
    kp = Keypoints2D("h36m17", xy, np.ones((30, 17), np.float32), np.arange(30) / FPS, 1000, 800, FPS)
    runs = {k: Pipeline.from_file("body17", device="cpu", smooth=k).run(kp, whole_clip=True)
            for k in ("none", "one-euro", "butterworth")}
    assert np.allclose(runs["none"].keypoints_2d, runs["butterworth"].keypoints_2d)
    assert not np.allclose(runs["none"].keypoints_2d, runs["one-euro"].keypoints_2d)
    assert accel(runs["butterworth"].keypoints_3d) < accel(runs["none"].keypoints_3d)
    with pytest.raises(WsgcnError, match="unknown smoothing"):
        Pipeline.from_file("body17", device="cpu", smooth="kalman")
