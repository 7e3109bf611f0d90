"""The 2D pose representation network (layers only): a clean, complete H36M-17 pose from detector keypoints.

Between the detector and the lifter, as the 2D pose sub-network of 3D Human Pose
Machines (Wang et al., TPAMI 2019) feeds its 2D->3D transformer. Detector keypoints in
any supported layout (BlazePose-33, COCO-17, Stacked-Hourglass-16, ...) are first mapped
geometrically to H36M-17 (:func:`wsgcn_cli.pose2d.mapping.to_h36m17`); this network then
moves every joint to where a Human3.6M joint would be and completes the missing ones,
with a per-joint confidence. It is a SemGCN with non-local blocks
(:class:`wsgcn_cli.models.semgcn.SemGCN`, graph convolution along the skeleton plus
attention between all joints) with 3 input channels per joint (u, v, present) and 3
outputs (du, dv, confidence logit).

Normalisation is the network's own and uses the present joints only, so it exists
whatever is missing: centre ``c`` = mean of the present joints, scale ``s`` = their RMS
distance from ``c``; a joint's input is ``(xy - c) / s`` (0 where missing) and its
presence flag. Outputs live in the same frame: ``xy' = c + s * (u + du, v + dv)`` for
a present joint and ``c + s * (du, dv)`` for a missing one. A frame with fewer than
:data:`MIN_PRESENT` present joints is passed through unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from wsgcn_cli.models.semgcn import SemGCN

#: Fewest present joints for which the network fills in the rest.
MIN_PRESENT = 6


def normalize(xy: torch.Tensor, present: torch.Tensor):
    """Pixels (B, J, 2) and presence (B, J) bool -> (u (B, J, 2), centre (B, 1, 2), scale (B, 1, 1)).

    ``u`` is 0 at missing joints; rows with no present joint get centre 0 and scale 1.
    """
    m = present[..., None].to(xy.dtype)
    xy0 = torch.where(present[..., None], xy, torch.zeros_like(xy))
    n = m.sum(dim=1, keepdim=True).clamp(min=1.0)
    centre = (xy0 * m).sum(dim=1, keepdim=True) / n
    d2 = (((xy0 - centre) ** 2).sum(-1, keepdim=True) * m).sum(dim=1, keepdim=True) / n
    scale = torch.sqrt(d2).clamp(min=1e-6)
    scale = torch.where(n > 1, scale, torch.ones_like(scale))
    u = torch.where(present[..., None], (xy0 - centre) / scale, torch.zeros_like(xy))
    return u, centre, scale


class PoseRepresentationNet(nn.Module):
    """(B, 17, 2) normalised 2D + (B, 17) presence -> (B, 17, 2) normalised 2D + (B, 17) logits.

    Args: ``hidden``, ``num_blocks``, ``non_local``, ``dropout`` as in
    :class:`wsgcn_cli.models.semgcn.SemGCN` (64 channels, 2 blocks by default).
    """

    def __init__(self, hidden: int = 64, num_blocks: int = 2, non_local: bool = True, dropout: float = 0.0):
        super().__init__()
        self.gcn = SemGCN(hidden, num_blocks, non_local, dropout, in_features=3, out_features=3,
                          root_relative=False)

    def forward(self, u: torch.Tensor, present: torch.Tensor):
        p = present[..., None].to(u.dtype)
        y = self.gcn(torch.cat([u * p, p], dim=-1))
        return u * p + y[..., :2], y[..., 2]
