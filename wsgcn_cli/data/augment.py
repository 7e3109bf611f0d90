"""Training-time augmentation of lifter samples: virtual cameras, bone lengths, detector noise.

Human3.6M is filmed by four fixed cameras about 1.5-2 m high, 4-6 m from the subject;
a lifter trained on them alone has learned those viewpoints. Here each sample may be
seen through a random *virtual* camera instead, its 2D synthesised from the 3D:

* the person (root-relative world pose, Human3.6M's world frame: z up, metres) turns
  by a random angle about the vertical axis (``yaw``, uniform over 360°);
* the camera looks at the scene from a random elevation (``elevation_deg``, positive
  looking down) with a small roll (``roll_deg``, Gaussian std);
* the pelvis is placed at a random depth (``depth_m``) on the ray through a random
  image point (uniform over the central ``centre_box`` of the image), so the person is
  often off the optical axis, as in real footage;
* the pinhole camera has a random horizontal field of view (``fov_deg``, image width
  1000 px) and a principal point jittered about the image centre (``principal_jitter``,
  share of the width); no lens distortion.

The camera model is CONVENTIONS.md's without distortion: ``Xc = R @ X + t``,
``u = f * Xc[:2] / Xc[2] + c``; camera frame x right, y down, z forward. The target is
the root-relative pose in the virtual camera's frame (metres). With the
``virtual_camera`` codec the synthesised 2D is encoded as at use, with the drawn
camera's intrinsics, and the target is rotated into the perspective-crop camera that
looks at the root (:func:`wsgcn_cli.codec.virtual_camera_normalize`).

Bone lengths (``bone_scale``): the pose is rebuilt from its bones in parent order, each
bone scaled by ``g * b`` with one body factor ``g ~ N(1, bone_scale)`` and one factor
``b ~ N(1, bone_scale)`` per bone, equal for a left bone and its right mirror
(virtual-camera samples only: a real camera's 2D would no longer match its image).

Detector-like noise on the normalised 2D (root-centred, unit RMS size; see
:mod:`wsgcn_cli.codec`): virtual samples of a ``gt+sh`` task also get, with
probability ``sh_probability``, the real Stacked-Hourglass residual (detection minus
ground truth, normalised) of a random training sample; then every sample gets
per-joint Gaussian noise (``joint_noise``) and, per joint with probability
``gross_error_probability``, a gross error: the joint moved by N(0, 0.5) (half the
pose's size) as when a detector latches onto the wrong limb.

Everything is vectorised over the batch in torch and drawn from the caller's generator
(reproducible per epoch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from wsgcn_cli.codec import root_scale_normalize_torch, to_virtual_camera, virtual_camera_normalize
from wsgcn_cli.skeletons import H36M17


@dataclass
class VirtualCameraRanges:
    """Ranges of the random virtual cameras (see the module docstring)."""

    elevation_deg: tuple = (-10.0, 45.0)
    roll_deg: float = 5.0
    depth_m: tuple = (2.5, 10.0)
    fov_deg: tuple = (35.0, 80.0)
    centre_box: float = 0.5
    principal_jitter: float = 0.02
    width: float = 1000.0


def _uniform(n, lo, hi, gen, dev):
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=dev)


def _normal(n, gen, dev):
    return torch.randn(n, generator=gen, device=dev)


def scale_bones(pose: torch.Tensor, std: float, gen: torch.Generator, parents=H36M17.parents,
                left=H36M17.left, right=H36M17.right) -> torch.Tensor:
    """Poses (B, J, 3) with every bone scaled (see the module docstring); the root stays.

    ``parents`` must list each parent before its children (true of H36M-17).
    """
    b, j, _ = pose.shape
    dev = pose.device
    body = 1.0 + std * _normal(b, gen, dev)
    per_bone = 1.0 + std * torch.randn(b, j, generator=gen, device=dev)
    per_bone[:, list(left)] = per_bone[:, list(right)]
    factor = (body[:, None] * per_bone).clamp(0.5, 1.5)
    out = pose.clone()
    for child, parent in enumerate(parents):
        if parent >= 0:
            out[:, child] = out[:, parent] + factor[:, child, None] * (pose[:, child] - pose[:, parent])
    return out


def view_through_camera(pose_world: torch.Tensor, yaw, elevation, roll, depth, focal, principal, target):
    """Root-relative world poses (B, J, 3) metres (z up), any joint count, seen by given
    pinhole cameras.

    Per sample (tensors of shape (B,) or (B, 2)): the pose turns by ``yaw`` (radians)
    about the vertical; the camera, looking horizontally along world +y before it is
    pitched down by ``elevation`` and rolled by ``roll`` (radians), has focal length
    ``focal`` (px) and principal point ``principal`` (B, 2) px; the pelvis lies at depth
    ``depth`` (m) on the ray through the pixel ``target`` (B, 2).
    Returns (2D pixels (B, J, 2), root-relative camera-frame 3D (B, J, 3) metres).
    """
    b = len(pose_world)
    cy, sy, ce, se, cr, sr = yaw.cos(), yaw.sin(), elevation.cos(), elevation.sin(), roll.cos(), roll.sin()
    zero, one = torch.zeros_like(yaw), torch.ones_like(yaw)
    rz = torch.stack([cy, -sy, zero, sy, cy, zero, zero, zero, one], -1).view(b, 3, 3)  # turn about world z
    # world (x, y, z up) -> camera (x right, y down, z forward) looking along world +y, pitched down
    re = torch.stack([one, zero, zero, zero, -se, -ce, zero, ce, -se], -1).view(b, 3, 3)
    rr = torch.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).view(b, 3, 3)  # roll about the optical axis
    pose_cam = pose_world @ (rr @ re @ rz).transpose(1, 2)
    root = torch.cat([(target - principal) / focal[:, None] * depth[:, None], depth[:, None]], -1)
    xc = pose_cam + root[:, None]
    uv = focal[:, None, None] * xc[..., :2] / xc[..., 2:].clamp(min=0.1) + principal[:, None]
    return uv, pose_cam


def draw_virtual_cameras(b: int, gen: torch.Generator, device,
                         ranges: VirtualCameraRanges = VirtualCameraRanges()) -> dict:
    """``b`` random virtual cameras drawn from ``ranges`` (module docstring), as the
    keyword arguments of :func:`view_through_camera`: ``yaw``, ``elevation``, ``roll``
    (radians, (B,)), ``depth`` (m, (B,)), ``focal`` (px, (B,)), ``principal`` and
    ``target`` (px, (B, 2)). The image is ``ranges.width`` pixels wide and as high."""
    r = ranges
    yaw = _uniform(b, 0.0, 2 * math.pi, gen, device)
    elev = torch.deg2rad(_uniform(b, *r.elevation_deg, gen, device))
    roll = torch.deg2rad((r.roll_deg * _normal(b, gen, device)).clamp(-3 * r.roll_deg, 3 * r.roll_deg))
    focal = (r.width / 2) / torch.tan(torch.deg2rad(_uniform(b, *r.fov_deg, gen, device)) / 2)
    principal = r.width / 2 * (1 + 2 * r.principal_jitter * torch.randn(b, 2, generator=gen, device=device))
    depth = _uniform(b, *r.depth_m, gen, device)
    target = principal + r.width * r.centre_box * (torch.rand(b, 2, generator=gen, device=device) - 0.5)
    return dict(yaw=yaw, elevation=elev, roll=roll, depth=depth, focal=focal, principal=principal, target=target)


def virtual_view(pose_world: torch.Tensor, gen: torch.Generator, ranges: VirtualCameraRanges = VirtualCameraRanges(),
                 return_camera: bool = False):
    """Root-relative world poses (B, J, 3) metres (z up), any joint count J and any root
    (the origin is the point placed at ``depth``) -> (2D pixels (B, J, 2), root-relative
    camera-frame 3D (B, J, 3) metres) through random virtual cameras
    (:func:`view_through_camera` with parameters drawn by :func:`draw_virtual_cameras`).
    With ``return_camera`` a third item is the drawn cameras' dict."""
    cams = draw_virtual_cameras(len(pose_world), gen, pose_world.device, ranges)
    uv, pose_cam = view_through_camera(pose_world, **cams)
    return (uv, pose_cam, cams) if return_camera else (uv, pose_cam)


class LifterAugment:
    """Batch augmentation for :class:`wsgcn_cli.train.lifter.LifterTask` (module docstring).

    Args:
        pose_world: (N, J, 3) root-relative poses in Human3.6M's world frame (z up),
            metres, aligned with the task's samples.
        cfg: the task's :class:`~wsgcn_cli.train.lifter.LifterConfig`.
        residuals: (N, J, 2) normalised SH-minus-GT residuals, or None.
    """

    def __init__(self, pose_world: torch.Tensor, cfg, residuals: torch.Tensor | None = None,
                 ranges: VirtualCameraRanges = VirtualCameraRanges()):
        self.pose_world, self.cfg, self.residuals, self.ranges = pose_world, cfg, residuals, ranges

    @classmethod
    def from_h36m(cls, data, keep: np.ndarray, cfg, device, x_gt=None, x_sh=None, data_root=None) -> "LifterAugment":
        """From loaded Human3.6M samples (``keep``: the task's kept samples); the world
        pose is the camera-frame pose rotated back with each sample's camera."""
        from wsgcn_cli.data import h36m

        cams = h36m.load_cameras(data_root)
        rel = data.pose3d[keep] - data.pose3d[keep][:, :1]
        world = np.empty_like(rel)
        subj, cam = data.subject[keep], data.camera[keep]
        for si, s in enumerate(data.subjects):
            for ci, c in enumerate(h36m.CAMERAS):
                sel = (subj == si) & (cam == ci)
                if sel.any():
                    world[sel] = rel[sel] @ cams[(s, c)].R.astype(np.float32)  # R^T x, row vectors
        residuals = None
        if x_gt is not None and x_sh is not None:
            residuals = (x_sh - x_gt).to(device)
        return cls(torch.from_numpy(world / 1000.0).to(device), cfg, residuals)

    def __call__(self, idx: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor, gen: torch.Generator):
        """(normalised 2D (B, J, 2), target (B, J, 3) m) of the samples ``idx`` -> augmented pair."""
        cfg, dev, b = self.cfg, xb.device, len(idx)
        if cfg.virtual_probability > 0:
            v = torch.rand(b, generator=gen, device=dev) < cfg.virtual_probability
            pose = self.pose_world[idx]
            if cfg.bone_scale > 0:
                pose = scale_bones(pose, cfg.bone_scale, gen)
            uv, pose_cam, cams = virtual_view(pose, gen, self.ranges, return_camera=True)
            if cfg.codec == "virtual_camera":
                f = cams["focal"][:, None].expand(-1, 2)
                xv, rot = virtual_camera_normalize(uv, f, cams["principal"])
                pose_cam = to_virtual_camera(pose_cam, rot)
            else:
                xv = root_scale_normalize_torch(uv)
            if self.residuals is not None:
                add = torch.rand(b, 1, 1, generator=gen, device=dev) < cfg.sh_probability
                other = torch.randint(len(self.residuals), (b,), generator=gen, device=dev)
                xv = xv + add * self.residuals[other]
            xb = torch.where(v[:, None, None], xv, xb)
            yb = torch.where(v[:, None, None], pose_cam, yb)
        if cfg.joint_noise > 0:
            xb = xb + cfg.joint_noise * torch.randn(xb.shape, generator=gen, device=dev)
        if cfg.gross_error_probability > 0:
            gross = torch.rand(xb.shape[:2], generator=gen, device=dev) < cfg.gross_error_probability
            xb = xb + gross[..., None] * 0.5 * torch.randn(xb.shape, generator=gen, device=dev)
        return xb, yb
