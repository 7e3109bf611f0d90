"""The temporal LSTM refiner (wsgcn_cli.temporal): windows, streaming, NaN handling, weights."""

import types

import numpy as np
import pytest
import torch

from wsgcn_cli import weights
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.models.refiner_net import FlipTestRefiner, LSTMRefiner
from wsgcn_cli.temporal import (StreamingRefiner, TemporalRefiner, build_refiner, refine_sequence, runs_of,
                                valid_frames, window_plan)


def _refiner(seed=0, hidden=32):
    """A small refiner with a non-zero residual head, so it is not the identity."""
    torch.manual_seed(seed)
    m = LSTMRefiner(hidden=hidden)
    torch.nn.init.normal_(m.head.weight, std=0.05)
    return m.eval()


def _sequence(t, seed=0):
    rng = np.random.default_rng(seed)
    pose = (rng.normal(size=(t, 17, 3)) * 0.2).astype(np.float32)
    pose -= pose[:, :1]
    return pose, rng.normal(size=(t, 17, 2)).astype(np.float32)


def _stream(model, pose, x, window, overlap):
    s = StreamingRefiner(model, window, overlap)
    rows, pending = [], 0
    for t in range(len(pose)):
        rows += s.push(pose[t], x[t])
        pending = max(pending, t + 1 - len(rows))
    rows += s.finish()
    return np.array(rows).reshape(-1, 17, 3), pending


@pytest.mark.parametrize("t,window,overlap", [(5, 9, 2), (9, 9, 4), (10, 9, 2), (37, 9, 3), (38, 8, 4),
                                              (1, 5, 1), (50, 7, 0), (23, 1, 0), (101, 15, 7)])
def test_shapes_root_and_finite(t, window, overlap):
    pose, x = _sequence(t)
    out = refine_sequence(_refiner(), pose, x, window, overlap, batch_windows=2)
    assert out.shape == (t, 17, 3) and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert np.array_equal(out[:, 0], np.zeros((t, 3), np.float32))


def test_model_forward_odd_lengths_and_registry():
    m = build_refiner("lstm_refiner", hidden=16)
    for t in (1, 7, 33):
        y = m(torch.randn(3, t, 17, 3), torch.randn(3, t, 17, 2))
        assert y.shape == (3, t, 17, 3)
        assert torch.equal(y[..., 0, :], torch.zeros(3, t, 3))
    with pytest.raises(WsgcnError):
        m(torch.randn(3, 7, 17, 3), torch.randn(3, 6, 17, 2))
    with pytest.raises(WsgcnError):
        build_refiner("nope")
    with pytest.raises(WsgcnError):
        build_refiner("lstm_refiner", width=3)


def test_window_plan_weights_cover_every_frame_once():
    for a, b, w, o in [(0, 200, 16, 4), (3, 200, 16, 4), (5, 30, 16, 8), (7, 7 + 16, 16, 4), (2, 9, 16, 4),
                       (11, 100, 9, 0)]:
        total = np.zeros(b - a)
        for start, stop, lo, weights_ in window_plan(a, b, w, o):
            assert a <= start <= lo and lo + len(weights_) <= stop <= b and stop - start <= w
            total[lo - a : lo - a + len(weights_)] += weights_
        # cross-fades sum to one (no seams); only a run that starts on the grid has its
        # first window's fade-in alone, which the normalisation by the weight sum undoes
        alone = o if a % (w - o) == 0 and b - a >= w else 0
        assert (total[:alone] > 0).all()
        np.testing.assert_allclose(total[alone:], 1.0, atol=1e-6)


def test_untrained_refiner_is_identity_so_static_stays_static():
    m = LSTMRefiner(hidden=32).eval()  # residual head starts at zero
    pose, x = _sequence(1)
    static = np.repeat(pose, 70, 0)
    out = refine_sequence(m, static, np.repeat(x, 70, 0), 16, 4)
    np.testing.assert_allclose(out, static, atol=1e-7)
    moving, xs = _sequence(70)
    np.testing.assert_allclose(refine_sequence(m, moving, xs, 16, 4), moving, atol=1e-7)


def test_static_pose_stays_static_after_training_on_static_sequences():
    torch.manual_seed(0)
    m = LSTMRefiner(hidden=32)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        y = torch.randn(32, 1, 17, 3, generator=g) * 0.2
        y = y - y[:, :, :1]
        inp = y + 0.05 * torch.randn(32, 1, 17, 3, generator=g)  # a constant lifter error to correct
        inp = inp - inp[:, :, :1]
        x = torch.randn(32, 1, 17, 2, generator=g)
        pred = m(inp.expand(-1, 24, -1, -1), x.expand(-1, 24, -1, -1))
        target = y.expand(-1, 24, -1, -1)
        loss = (torch.linalg.vector_norm(pred - target, dim=-1).mean()
                + torch.linalg.vector_norm(torch.diff(pred, dim=1), dim=-1).mean())
        opt.zero_grad()
        loss.backward()
        opt.step()
    pose, x = _sequence(1, seed=5)
    out = refine_sequence(m, np.repeat(pose, 100, 0), np.repeat(x, 100, 0), 16, 4)
    move = np.linalg.norm(np.diff(out, axis=0), axis=-1) * 1000  # mm per frame
    assert np.linalg.norm(out - pose, axis=-1).mean() * 1000 > 2.0  # it does correct the pose...
    assert move.mean() < 1.0 and move.max() < 10.0  # ...but keeps it (nearly) still


@pytest.mark.parametrize("t,window,overlap", [(3, 8, 2), (8, 8, 4), (29, 8, 2), (77, 9, 3), (100, 16, 4),
                                              (64, 7, 0), (130, 64, 16)])
def test_streaming_equals_whole_sequence(t, window, overlap):
    m = _refiner(1)
    pose, x = _sequence(t, seed=t)
    if t > 20:
        pose[[4, 11, 12, t - 3]] = np.nan
    whole = refine_sequence(m, pose, x, window, overlap, batch_windows=3)
    streamed, pending = _stream(m, pose, x, window, overlap)
    assert streamed.shape == whole.shape
    assert np.array_equal(np.isnan(streamed), np.isnan(whole))
    np.testing.assert_allclose(streamed, whole, atol=1e-5)
    assert pending <= 2 * window - overlap - 1  # bounded delay: window + step - 2 frames


def test_nan_frames_stay_nan_and_do_not_reach_far_frames():
    m = _refiner(2)
    window, overlap = 16, 4
    pose, x = _sequence(300, seed=3)
    clean = refine_sequence(m, pose, x, window, overlap)
    gappy = pose.copy()
    gappy[150:153] = np.nan
    gappy[200, 5, 1] = np.nan  # one bad joint makes a frame invalid
    x_gappy = x.copy()
    x_gappy[40, 2, 0] = np.nan  # and so does a bad 2D keypoint
    out = refine_sequence(m, gappy, x_gappy, window, overlap)
    bad = ~valid_frames(gappy, x_gappy)
    assert np.flatnonzero(bad).tolist() == [40, 150, 151, 152, 200]
    assert np.isnan(out[bad]).all() and np.isfinite(out[~bad]).all()
    reach = window + (window - overlap)
    far = np.ones(300, bool)
    for f in np.flatnonzero(bad):
        far[max(0, f - reach) : f + reach + 1] = False
    assert far.sum() > 50
    np.testing.assert_allclose(out[far], clean[far], atol=1e-6)
    # each run of valid frames is refined on its own
    assert runs_of(~bad)[0] == (0, 40)
    head = refine_sequence(m, gappy[:40], x_gappy[:40], window, overlap)
    np.testing.assert_allclose(out[:40], head, atol=1e-6)


def test_bad_windows_and_shapes_are_user_errors():
    m = _refiner()
    pose, x = _sequence(10)
    for window, overlap in [(0, 0), (8, 5), (8, -1)]:
        with pytest.raises(WsgcnError):
            refine_sequence(m, pose, x, window, overlap)
        with pytest.raises(WsgcnError):
            StreamingRefiner(m, window, overlap)
    with pytest.raises(WsgcnError):
        refine_sequence(m, pose[:, :16], x[:, :16], 8, 2)
    with pytest.raises(WsgcnError):
        refine_sequence(m, pose, x[:9], 8, 2)
    with pytest.raises(WsgcnError):
        StreamingRefiner(m, 8, 2).push(pose[0], x[0, :3])


def test_weights_round_trip_and_codec_check(tmp_path):
    m = _refiner(3)
    meta = {"model": "lstm_refiner", "model_options": {"hidden": 32}, "layout": "h36m17", "codec": "root_scale",
            "lifter_sha256": "abc", "window": 12, "overlap": 3, "frame_stride": 2}
    path = tmp_path / "r.safetensors"
    weights.save(path, m.state_dict(), meta)
    lifter = types.SimpleNamespace(codec_mode="root_scale", sha256="def")
    r = TemporalRefiner.from_weights(path, lifter=lifter)
    assert (r.window, r.overlap, r.lifter_matches) == (12, 3, False)
    pose, x = _sequence(40)
    np.testing.assert_allclose(r.refine(pose, x), refine_sequence(m, pose, x, 12, 3), atol=1e-6)
    with pytest.raises(WsgcnError, match="codec"):
        TemporalRefiner.from_weights(path, lifter=types.SimpleNamespace(codec_mode="screen", sha256="abc"))
    weights.save(path, m.state_dict(), {**meta, "model": "semgcn_nonlocal"})
    with pytest.raises(WsgcnError, match="not a refiner"):
        TemporalRefiner.from_weights(path)


def test_flip_test_refiner_is_mirror_equivariant_and_streams_like_whole_sequence(tmp_path):
    from wsgcn_cli import codec
    from wsgcn_cli.skeletons import H36M17

    m = _refiner(5)
    f = FlipTestRefiner(m).eval()
    perm = torch.as_tensor(H36M17.flip_permutation())
    pose, x = (torch.from_numpy(a)[None] for a in _sequence(20, seed=4))
    with torch.no_grad():
        y = f(pose, x)
        y_mirror = f(codec.flip_3d(pose, perm), codec.flip_2d(x, perm))
        plain = m(pose, x)
    torch.testing.assert_close(codec.flip_3d(y_mirror, perm), y, atol=1e-6, rtol=0)  # a mirrored clip, mirrored 3D
    assert not torch.allclose(y, plain, atol=1e-4)  # the plain refiner is not equivariant: the average differs
    assert torch.equal(y[..., 0, :], torch.zeros_like(y[..., 0, :]))
    path = tmp_path / "r.safetensors"
    weights.save(path, m.state_dict(), {"model": "lstm_refiner", "model_options": {"hidden": 32}, "layout": "h36m17",
                                        "codec": "root_scale", "window": 9, "overlap": 2})
    r = TemporalRefiner.from_weights(path, flip_test=True)
    p, xx = _sequence(31, seed=6)
    whole = r.refine(p, xx)
    streamed, _ = _stream(r.model, p, xx, r.window, r.overlap)
    np.testing.assert_allclose(streamed, whole, atol=1e-5)
    np.testing.assert_allclose(whole, refine_sequence(f, p, xx, 9, 2), atol=1e-6)


def test_the_pipelines_refine_stage_keeps_frames_in_order_and_equals_whole_sequence_refinement():
    from wsgcn_cli import codec
    from wsgcn_cli.pipeline.stages import FrameResult, Refine

    m = _refiner(4)
    pose, xy = _sequence(40, seed=9)
    xy = (xy * 50 + 300).astype(np.float32)  # pixels of a 640 x 480 frame
    pose[17] = np.nan
    xy[17] = np.nan
    stage = Refine(TemporalRefiner(m, {}, window=8, overlap=2), "root_scale", 640, 480)
    out = []
    for t in range(40):
        out += stage.push(FrameResult(t, t / 25, None, xy[t], np.ones(17, np.float32), keypoints_2d=xy[t],
                                      keypoints_3d=pose[t].copy()))
    out += stage.finish()
    assert [r.index for r in out] == list(range(40))
    x = codec.encode_2d(np.nan_to_num(xy), "root_scale", 640, 480).astype(np.float32)
    x[17] = np.nan
    np.testing.assert_allclose(np.array([r.keypoints_3d for r in out]), refine_sequence(m, pose, x, 8, 2), atol=1e-5)
