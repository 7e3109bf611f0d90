"""Fully-connected baseline lifter (Martinez et al., "A simple yet effective baseline
for 3d human pose estimation", ICCV 2017): linear 1024 -> 2 residual blocks of
(linear, batch norm, ReLU, dropout) x 2 -> linear.

Input: (B, J, 2) normalised 2D. Output: (B, J, 3) root-relative metres (root set to 0).
"""

from __future__ import annotations

import torch
from torch import nn


def _unit(width, dropout):
    return [nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout)]


class ResidualMLP(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(*_unit(width, dropout), *_unit(width, dropout))

    def forward(self, x):
        return x + self.net(x)


class MartinezMLP(nn.Module):
    """Martinez et al. 2017 baseline: ``num_blocks`` residual blocks of width ``hidden``."""

    def __init__(self, num_joints: int = 17, hidden: int = 1024, num_blocks: int = 2,
                 dropout: float = 0.5):
        super().__init__()
        self.num_joints = num_joints
        self.inp = nn.Sequential(nn.Linear(num_joints * 2, hidden), nn.BatchNorm1d(hidden),
                                 nn.ReLU(), nn.Dropout(dropout))
        self.blocks = nn.Sequential(*[ResidualMLP(hidden, dropout) for _ in range(num_blocks)])
        self.out = nn.Linear(hidden, num_joints * 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.out(self.blocks(self.inp(x.flatten(1)))).view(-1, self.num_joints, 3)
        return y - y[:, :1]
