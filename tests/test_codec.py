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


def _posed_camera_points(n=6, seed=0):
    """Random root-relative poses placed off the optical axis, 4-6 m deep (metres)."""
    rng = np.random.default_rng(seed)
    rel = rng.normal(size=(n, 17, 3)) * 0.3
    rel[:, 0] = 0.0
    root = np.stack([rng.uniform(-1.5, 1.5, n), rng.uniform(-1.0, 1.0, n), rng.uniform(4, 6, n)], -1)
    return rel, rel + root[:, None]


def test_virtual_camera_looks_at_the_root_and_round_trips():
    f, c = np.array([1145.0, 1143.0]), np.array([512.0, 515.0])
    rel, pts = _posed_camera_points()
    px = pts[..., :2] / pts[..., 2:] * f + c
    x, rot = codec.virtual_camera_normalize(px, f, c)
    assert np.allclose(rot @ np.swapaxes(rot, -1, -2), np.eye(3), atol=1e-5)
    assert np.allclose(np.linalg.det(rot), 1.0, atol=1e-5)
    # the virtual optical axis is the ray to the root, and the root projects to 0
    ray = pts[:, 0] / np.linalg.norm(pts[:, 0], axis=-1, keepdims=True)
    assert np.allclose(rot[..., 2], ray, atol=1e-5)
    virt = codec.to_virtual_camera(pts, rot)
    assert np.allclose(virt[:, 0, :2], 0.0, atol=1e-5)
    # the input is the root_scale input of the virtual camera's perspective projection
    assert np.allclose(x, codec.root_scale_normalize(virt[..., :2] / virt[..., 2:])[0], atol=1e-4)
    assert np.allclose(codec.from_virtual_camera(codec.to_virtual_camera(rel, rot), rot), rel, atol=1e-6)
    # on the optical axis (square pixels) it is root_scale
    on_axis = np.float32([[[512.0, 515.0]] + [[512.0 + 30 * j, 515.0 - 17 * j] for j in range(1, 17)]])
    assert np.allclose(codec.encode_2d(on_axis, "virtual_camera", focal=[1145.0, 1145.0], center=c),
                       codec.encode_2d(on_axis, "root_scale"), atol=1e-5)
    with pytest.raises(ValueError):
        codec.encode_2d(px, "virtual_camera")


def test_virtual_camera_input_depends_on_the_viewing_direction_only():
    """The same body seen from the same direction gives the same input wherever it is in
    the image: rotating the whole scene about the camera centre changes nothing."""
    from scipy.spatial.transform import Rotation

    f, c = np.array([1000.0, 1000.0]), np.array([500.0, 500.0])
    _, pts = _posed_camera_points(3, seed=1)
    turned = Rotation.from_euler("yx", [12.0, -7.0], degrees=True).apply(pts.reshape(-1, 3)).reshape(pts.shape)
    def encode(p):
        return codec.encode_2d(p[..., :2] / p[..., 2:] * f + c, "virtual_camera", focal=f, center=c)
    x0, x1 = encode(pts), encode(turned)
    # equal up to a roll about the root ray (the minimal rotation keeps no fixed "up"):
    # compare the shape of the 2D, rotation-invariant distances between keypoints
    d0 = np.linalg.norm(x0[:, :, None] - x0[:, None], axis=-1)
    d1 = np.linalg.norm(x1[:, :, None] - x1[:, None], axis=-1)
    assert np.allclose(d0, d1, atol=1e-4)
    assert not np.allclose(codec.encode_2d(pts[..., :2] / pts[..., 2:] * f + c, "root_scale"),
                           codec.encode_2d(turned[..., :2] / turned[..., 2:] * f + c, "root_scale"), atol=1e-3)


def test_virtual_camera_lifter_rotates_its_output_back():
    """A virtual_camera lifter's network predicts in the virtual camera; ``Lifter`` hands
    back real-camera coordinates (``R p``), with the given or the default intrinsics."""
    from wsgcn_cli.camera import default_intrinsics
    from wsgcn_cli.lifter import Lifter

    fixed = torch.randn(17, 3)

    class Constant(torch.nn.Module):  # the same virtual-camera pose for every input
        def forward(self, x):
            return fixed.expand(len(x), 17, 3)

    lifter = Lifter(Constant(), "virtual_camera", flip_test=False)
    f, c = np.array([900.0, 900.0]), np.array([640.0, 360.0])
    _, pts = _posed_camera_points(4, seed=2)
    px = (pts[..., :2] / pts[..., 2:] * f + c).astype(np.float32)
    px[1, 5] = np.nan  # a frame with a missing keypoint stays NaN
    out = lifter(px, 1280, 720, focal=f, center=c)
    assert np.isnan(out[1]).all()
    for i in (0, 2, 3):
        rot = codec.virtual_camera_rotation(px[i, 0], f, c)
        assert np.allclose(out[i], fixed.numpy() @ rot.T, atol=1e-5)
    f0, c0 = default_intrinsics(1280, 720)
    rot = codec.virtual_camera_rotation(px[0, 0], f0, c0)
    assert np.allclose(lifter(px[:1], 1280, 720)[0], fixed.numpy() @ rot.T, atol=1e-5)
