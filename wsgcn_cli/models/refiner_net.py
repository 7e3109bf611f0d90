"""Temporal refiner networks (layers only): a bidirectional LSTM over lifted 3D poses.

The temporal part of 3D Human Pose Machines (K. Wang, L. Lin, C. Jiang, C. Qian, P. Wei,
"3D Human Pose Machines with Self-supervised Learning", TPAMI 2019; CVPR 2018 as
"Recurrent 3D Pose Sequence Machines"): two stacked bidirectional LSTM layers over the
per-frame features. Per frame the input is the lifter's output, root-relative camera
coordinates in metres (17, 3), concatenated with the lifter's normalised 2D input
(17, 2); the network predicts a residual added to the lifted pose (see
:mod:`wsgcn_cli.temporal` for windows, streaming and loading).
"""

from __future__ import annotations

import torch
from torch import nn

from wsgcn_cli import codec
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.skeletons import H36M17

#: Keypoints per frame (H36M-17).
JOINTS = 17


class LSTMRefiner(nn.Module):
    """Two-layer bidirectional LSTM predicting a residual correction of lifted 3D poses.

    Source: the temporal LSTM of 3D Human Pose Machines (Wang et al., TPAMI 2019 /
    CVPR 2018), here over the lifter's outputs rather than image features.

    Args:
        hidden: LSTM units per direction (default 128: about 0.6 M parameters).
        num_layers: stacked bidirectional LSTM layers (2, as in the paper).
        joints: keypoints per frame (17, H36M-17 layout).
        dropout: between the LSTM layers (training only).

    Forward: ``pose3d`` (B, T, J, 3) root-relative camera coordinates in metres and
    ``x2d`` (B, T, J, 2) normalised 2D (the lifter's codec) -> (B, T, J, 3) refined
    root-relative camera coordinates in metres (joint 0 exactly 0). Inputs must be
    finite. Raises WsgcnError for mismatched shapes.
    """

    def __init__(self, hidden: int = 128, num_layers: int = 2, joints: int = JOINTS, dropout: float = 0.0):
        super().__init__()
        self.joints = joints
        self.lstm = nn.LSTM(joints * 5, hidden, num_layers=num_layers, batch_first=True,
                            bidirectional=True, dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(2 * hidden, joints * 3)
        nn.init.zeros_(self.head.weight)  # the residual starts at zero: identity at init
        nn.init.zeros_(self.head.bias)

    def forward(self, pose3d: torch.Tensor, x2d: torch.Tensor) -> torch.Tensor:
        j = self.joints
        if pose3d.dim() != 4 or pose3d.shape[-2:] != (j, 3) or x2d.shape != pose3d.shape[:-1] + (2,):
            raise WsgcnError(f"refiner inputs must be (B, T, {j}, 3) and (B, T, {j}, 2), got "
                             f"{tuple(pose3d.shape)} and {tuple(x2d.shape)}")
        b, t = pose3d.shape[:2]
        feats = torch.cat([pose3d.reshape(b, t, j * 3), x2d.reshape(b, t, j * 2)], dim=-1)
        h, _ = self.lstm(feats)
        out = pose3d + self.head(h).reshape(b, t, j, 3)
        return out - out[..., :1, :]


class FlipTestRefiner(nn.Module):
    """Test-time flip augmentation of a refiner: the mean of its output for a window and
    the mirrored output for the mirrored window (left/right joints swapped, x negated),
    as the lifter's ``flip_test``; one network call on a batch twice as large.

    Same forward as the wrapped refiner: (B, T, 17, 3) metres and (B, T, 17, 2)
    normalised 2D -> (B, T, 17, 3) root-relative metres. H36M-17 layout only. Both codec
    modes are mirror-symmetric about x = 0 (see :func:`wsgcn_cli.codec.flip_2d`).
    """

    def __init__(self, refiner: nn.Module):
        super().__init__()
        self.refiner = refiner
        self.register_buffer("perm", torch.as_tensor(H36M17.flip_permutation()), persistent=False)

    def forward(self, pose3d: torch.Tensor, x2d: torch.Tensor) -> torch.Tensor:
        b = pose3d.shape[0]
        perm = self.perm.to(pose3d.device)
        y = self.refiner(torch.cat([pose3d, codec.flip_3d(pose3d, perm)]),
                         torch.cat([x2d, codec.flip_2d(x2d, perm)]))
        return 0.5 * (y[:b] + codec.flip_3d(y[b:], perm))
