import numpy as np
import pytest
import torch

from wsgcn_cli import codec
from wsgcn_cli.skeletons import H36M17


def _kp(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(100, 900, size=(n, 17, 2))).astype(np.float32)


def test_screen_round_trip():
    kp = _kp()
    uv = codec.screen_normalize(kp.copy(), 1000, 1002)
    assert np.allclose(codec.screen_denormalize(uv, 1000, 1002), kp, atol=1e-3)
    # the image centre maps to (0, 0); x spans [-1, 1]
    centre = codec.screen_normalize(np.array([[500.0, 501.0]]), 1000, 1002)
    assert np.allclose(centre, 0.0)
    assert np.allclose(codec.screen_normalize(np.array([[0.0, 0.0]]), 1000, 1000), [[-1.0, -1.0]])


def test_root_scale_round_trip_and_invariance():
    kp = _kp()
    x, centre, scale = codec.root_scale_normalize(kp)
    assert np.allclose(x[:, 0], 0.0)
    assert np.allclose(np.sqrt((x**2).sum(-1).mean(-1)), 1.0, atol=1e-5)
    assert np.allclose(x * scale[:, None, None] + centre[:, None, :], kp, atol=1e-3)
    # invariant to image position and size of the person
    moved = kp * 0.37 + np.float32([300.0, -40.0])
    assert np.allclose(codec.encode_2d(moved, "root_scale"), x, atol=1e-5)


def test_encode_rejects_unknown_mode_and_missing_size():
    with pytest.raises(ValueError):
        codec.encode_2d(_kp(), "nope")
    with pytest.raises(ValueError):
        codec.encode_2d(_kp(), "screen")


def test_3d_root_relative_metres():
    pose_mm = np.random.default_rng(0).normal(size=(3, 17, 3)) * 500 + 4000
    rel = codec.to_metres_root_relative(pose_mm)
    assert np.allclose(rel[:, 0], 0.0)
    assert np.allclose(rel * 1000 + pose_mm[:, :1], pose_mm)


def test_flip_is_an_involution_and_swaps_sides():
    perm = H36M17.flip_permutation()
    x = codec.root_scale_normalize(_kp())[0]
    f = codec.flip_2d(x, perm)
    assert np.allclose(codec.flip_2d(f, perm), x)
    assert np.allclose(f[:, 4, 0], -x[:, 1, 0])  # LHip <- mirrored RHip
    y = torch.randn(2, 17, 3)
    assert torch.allclose(codec.flip_3d(codec.flip_3d(y, perm), perm), y)


def test_root_scale_torch_matches_numpy_and_is_differentiable():
    kp = _kp(5, seed=3)
    x = torch.tensor(kp, requires_grad=True)
    out = codec.root_scale_normalize_torch(x)
    assert np.allclose(out.detach().numpy(), codec.root_scale_normalize(kp)[0], atol=1e-5)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
