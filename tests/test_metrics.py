import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from wsgcn_cli import metrics


def _poses(n=5, j=17, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, j, 3)) * 300.0


def test_mpjpe_hand_made():
    gt = np.zeros((1, 2, 3))
    pred = np.array([[[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]]])
    assert metrics.mpjpe(pred, gt)[0] == pytest.approx(2.5)  # (0 + 5) / 2


def test_mpjpe_aligns_roots():
    gt = _poses()
    assert np.allclose(metrics.mpjpe(gt + np.array([100.0, -50.0, 2000.0]), gt), 0.0)
    assert metrics.mpjpe(gt + 10.0, gt, root=None)[0] == pytest.approx(np.sqrt(300.0))


def test_p_mpjpe_recovers_known_similarity():
    gt = _poses()
    rot = Rotation.from_euler("xyz", [30, -70, 120], degrees=True).as_matrix()
    pred = 1.7 * gt @ rot.T + np.array([10.0, 20.0, 30.0])
    assert np.allclose(metrics.p_mpjpe(pred, gt), 0.0, atol=1e-8)
    aligned = metrics.procrustes_align(pred, gt)
    assert np.allclose(aligned, gt, atol=1e-8)


def test_p_mpjpe_does_not_use_reflections():
    gt = _poses(n=3)
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    assert (metrics.p_mpjpe(mirrored, gt) > 1.0).all()


def test_p_mpjpe_is_at_most_mpjpe():
    gt, pred = _poses(seed=1), _poses(seed=2)
    assert (metrics.p_mpjpe(pred, gt) <= metrics.mpjpe(pred, gt) + 1e-9).all()


def test_n_mpjpe_removes_scale_only():
    gt = _poses()
    assert np.allclose(metrics.n_mpjpe(0.5 * gt, gt), 0.0, atol=1e-9)
    rot = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    assert (metrics.n_mpjpe(gt @ rot.T, gt) > 1.0).all()


def test_velocity_and_acceleration_errors():
    t = np.arange(10, dtype=float)[:, None, None]
    gt = np.zeros((10, 17, 3)) + t * np.array([1.0, 0, 0])
    # constant extra velocity of 2 per frame on every joint but the root
    pred = gt.copy()
    pred[:, 1:, 1] += 2.0 * t[:, :, 0]
    assert metrics.mpjve(pred, gt).shape == (9,)
    assert np.allclose(metrics.mpjve(pred, gt), 2.0 * 16 / 17)
    assert np.allclose(metrics.acceleration_error(pred, gt), 0.0)
    assert metrics.acceleration_error(pred, gt).shape == (8,)
