"""Virtual cameras and bone scaling (wsgcn_cli.data.augment): geometry checked on poses."""

import math

import numpy as np
import torch

from wsgcn_cli.camera import project
from wsgcn_cli.data.augment import VirtualCameraRanges, scale_bones, view_through_camera, virtual_view
from wsgcn_cli.skeletons import H36M17


def _pose(b=64, seed=0):
    """Random root-relative poses (B, 17, 3) m in a z-up world: a standing person, jittered."""
    g = torch.Generator().manual_seed(seed)
    base = torch.tensor([[0, 0, 0], [-.13, 0, 0], [-.13, 0, -.45], [-.13, 0, -.9], [.13, 0, 0], [.13, 0, -.45],
                         [.13, 0, -.9], [0, 0, .25], [0, 0, .5], [0, 0, .6], [0, 0, .72], [.17, 0, .48], [.2, 0, .2],
                         [.22, 0, -.05], [-.17, 0, .48], [-.2, 0, .2], [-.22, 0, -.05]])
    pose = base + 0.05 * torch.randn(b, 17, 3, generator=g)
    return pose - pose[:, :1]


def _bones(p):
    return torch.stack([torch.linalg.vector_norm(p[:, c] - p[:, q], dim=-1)
                        for c, q in enumerate(H36M17.parents) if q >= 0], -1)


def test_a_level_camera_sees_up_as_minus_y_and_projects_the_pelvis_at_its_target():
    pose = _pose(4)
    n = len(pose)
    target = torch.tensor([[300.0, 600.0]]).repeat(n, 1)
    uv, cam = view_through_camera(pose, torch.zeros(n), torch.zeros(n), torch.zeros(n), torch.full((n,), 5.0),
                                  torch.full((n,), 1000.0), torch.full((n, 2), 500.0), target)
    assert torch.allclose(cam[..., 0], pose[..., 0], atol=1e-6)      # x right = world x
    assert torch.allclose(cam[..., 1], -pose[..., 2], atol=1e-6)     # y down = -world z (up)
    assert torch.allclose(cam[..., 2], pose[..., 1], atol=1e-6)      # z forward = world y
    assert torch.allclose(uv[:, 0], target, atol=1e-3)               # the pelvis lands on its pixel
    assert (uv[:, 10, 1] < uv[:, 3, 1]).all()                        # head above the feet in the image


def test_virtual_views_keep_bone_lengths_and_stay_in_the_image():
    pose = _pose(512)
    uv, cam = virtual_view(pose, torch.Generator().manual_seed(1))
    assert torch.allclose(_bones(cam), _bones(pose), atol=1e-5)
    assert torch.isfinite(uv).all() and uv.min() > -600 and uv.max() < 1600  # off-centre, near, wide: limbs may leave the frame
    # looking down (positive elevation) puts the camera above: the head comes nearer than the feet
    n = 256
    _, cam = view_through_camera(_pose(n), torch.zeros(n), torch.full((n,), math.radians(40)), torch.zeros(n),
                                 torch.full((n,), 4.0), torch.full((n,), 800.0), torch.full((n, 2), 500.0),
                                 torch.full((n, 2), 500.0))
    assert (cam[:, 10, 2] < cam[:, 3, 2]).all()
    assert VirtualCameraRanges().elevation_deg[1] > 0


def test_bone_scaling_is_symmetric_and_zero_std_is_the_identity():
    pose = _pose(256)
    g = torch.Generator().manual_seed(2)
    assert torch.allclose(scale_bones(pose, 0.0, g), pose, atol=1e-6)
    scaled = scale_bones(pose, 0.1, g)
    ratio = (_bones(scaled) / _bones(pose)).numpy()
    child = [c for c, q in enumerate(H36M17.parents) if q >= 0]
    col = {c: i for i, c in enumerate(child)}
    for l, r in zip(H36M17.left, H36M17.right):
        np.testing.assert_allclose(ratio[:, col[l]], ratio[:, col[r]], rtol=1e-4)
    assert ratio.std() > 0.03 and (scaled[:, 0] == 0).all()


def test_virtual_views_take_any_joint_count_and_return_their_cameras():
    g = torch.Generator().manual_seed(3)
    pose = 0.3 * torch.randn(32, 133, 3, generator=g)               # a whole-body joint count
    uv, cam, c = virtual_view(pose, g, return_camera=True)
    assert uv.shape == (32, 133, 2) and cam.shape == (32, 133, 3)
    root = torch.cat([(c["target"] - c["principal"]) / c["focal"][:, None] * c["depth"][:, None], c["depth"][:, None]], -1)
    torch.testing.assert_close(project(cam + root[:, None], c["focal"][:, None, None], c["principal"][:, None]), uv,
                               atol=1e-3, rtol=0)                    # the returned camera is the one used
    uv2, cam2 = virtual_view(pose, torch.Generator().manual_seed(3))
    uv3, cam3, _ = virtual_view(pose, torch.Generator().manual_seed(3), return_camera=True)
    assert torch.equal(uv2, uv3) and torch.equal(cam2, cam3)        # same draws with or without the camera


def test_virtual_camera_codec_augments_in_the_perspective_crop_camera():
    """With the virtual_camera codec the synthesised sample is what lift would see: the
    2D encoded with the drawn camera's intrinsics (as lift encodes pixels), the target
    rotated into the camera that looks at the pelvis."""
    from types import SimpleNamespace

    from wsgcn_cli import codec
    from wsgcn_cli.data.augment import LifterAugment

    world = _pose(32)
    cfg = SimpleNamespace(codec="virtual_camera", virtual_probability=1.0, bone_scale=0.0, joint_noise=0.0,
                          gross_error_probability=0.0, sh_probability=0.0)
    x, y = LifterAugment(world, cfg)(torch.arange(32), torch.zeros(32, 17, 2), torch.zeros(32, 17, 3),
                                     torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)  # the same draws: which samples, then the cameras
    torch.rand(32, generator=g)
    uv, pose_cam, cams = virtual_view(world, g, return_camera=True)
    f, c = cams["focal"].numpy()[:, None].repeat(2, 1), cams["principal"].numpy()
    x_np, rot = codec.virtual_camera_normalize(uv.numpy(), f, c)
    assert np.allclose(x.numpy(), x_np, atol=1e-4)
    assert np.allclose(y.numpy(), codec.to_virtual_camera(pose_cam.numpy(), rot), atol=1e-5)
    assert torch.allclose(y[:, 0], torch.zeros(3), atol=1e-6)
    assert torch.allclose(_bones(y), _bones(world), atol=1e-4)  # a rotation of the pose
