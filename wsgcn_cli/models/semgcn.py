"""SemGCN with non-local blocks: the WS-GCN lifter.

Semantic graph convolution (Zhao et al., "Semantic Graph Convolutional Networks for 3D
Human Pose Regression", CVPR 2019, eq. 3-4): for node features X (B, J, C_in),

    Y = (M ⊙ A') ... written per node as
    y_i = softmax_j(ρ_i(M ⊙ A))_ii · W0 x_i + Σ_{j≠i} softmax_j(ρ_i(M ⊙ A))_ij · W1 x_j

with A the skeleton adjacency with self-loops, M a learnable weight per edge, the
softmax over each row's edges (non-edges get -inf), W0 applied to a node itself and W1
to its neighbours. Non-local blocks (Wang et al., "Non-local Neural Networks", CVPR
2018; the embedded-Gaussian form) let every joint attend to every other joint. WS-GCN
(SemGCN + non-local layers) stacks: input graph conv (2 -> 128) + non-local, 4 residual
blocks of two graph convs (hidden 128) each followed by a non-local block, and an
output semantic graph conv (128 -> 3).

Input: (B, J, 2) normalised 2D keypoints (see :mod:`wsgcn_cli.codec`).
Output: (B, J, 3) root-relative camera coordinates in metres.
Everything is batched matrix algebra: no per-sample or per-joint Python loops.
"""

from __future__ import annotations

import torch
from torch import nn

from wsgcn_cli.skeletons import H36M17


def adjacency(parents) -> torch.Tensor:
    """Symmetric (J, J) 0/1 adjacency of a tree given by parents, with self-loops."""
    j = len(parents)
    adj = torch.eye(j)
    for child, parent in enumerate(parents):
        if parent >= 0:
            adj[child, parent] = adj[parent, child] = 1.0
    return adj


class SemGraphConv(nn.Module):
    """Semantic graph convolution (SemGCN eq. 4), node-major (J, B, C_in) -> (J, B, C_out).

    Node-major layout lets the neighbour sum be one (J, J) @ (J, B*C) matrix product
    and the two weight matrices one (C_in, 2*C_out) product: about 2.5x the training
    throughput of the batch-major form on a 2-core CPU.
    """

    def __init__(self, in_features: int, out_features: int, adj: torch.Tensor, bias: bool = True):
        super().__init__()
        self.out_features = out_features
        self.W = nn.Parameter(torch.empty(2, in_features, out_features))
        nn.init.xavier_uniform_(self.W.data, gain=1.414)
        self.register_buffer("mask", adj > 0, persistent=False)
        self.register_buffer("eye", torch.eye(adj.shape[0]), persistent=False)
        self.e = nn.Parameter(torch.ones(int((adj > 0).sum())))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        if self.bias is not None:
            bound = 1.0 / in_features**0.5
            nn.init.uniform_(self.bias, -bound, bound)

    def weights(self) -> torch.Tensor:
        """Row-softmax-normalised learnable adjacency (J, J)."""
        logits = torch.full(self.mask.shape, -9e15, dtype=self.e.dtype, device=self.e.device)
        logits = logits.masked_scatter(self.mask, self.e)
        return torch.softmax(logits, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        j, b, c = x.shape
        w = torch.cat([self.W[0], self.W[1]], dim=1)
        h = (x.reshape(-1, c) @ w).view(j, b, 2, self.out_features)
        a = self.weights()
        self_w = torch.diagonal(a)[:, None, None]
        neigh = (a * (1 - self.eye)) @ h[:, :, 1].reshape(j, -1)
        out = self_w * h[:, :, 0] + neigh.view(j, b, self.out_features)
        return out + self.bias if self.bias is not None else out


def _bn(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """Batch norm over the channels of node-major (J, B, C) features."""
    j, b, c = x.shape
    return bn(x.reshape(-1, c)).view(j, b, c)


class GraphConvBlock(nn.Module):
    """SemGraphConv -> BatchNorm over channels -> ReLU (-> dropout), node-major."""

    def __init__(self, cin, cout, adj, dropout: float = 0.0):
        super().__init__()
        self.gconv = SemGraphConv(cin, cout, adj)
        self.bn = nn.BatchNorm1d(cout)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x):
        return self.drop(torch.relu(_bn(self.bn, self.gconv(x))))


class ResGraphConv(nn.Module):
    """Two graph-conv blocks with a residual connection (SemGCN's _ResGraphConv)."""

    def __init__(self, channels, adj, dropout: float = 0.0):
        super().__init__()
        self.a = GraphConvBlock(channels, channels, adj, dropout)
        self.b = GraphConvBlock(channels, channels, adj, dropout)

    def forward(self, x):
        return x + self.b(self.a(x))


class NonLocal(nn.Module):
    """Embedded-Gaussian non-local block over joints, node-major (J, B, C) -> (J, B, C).

    ``z = x + BN(W · softmax(θ(x) φ(x)^T) g(x))`` with θ, φ, g linear maps to C/2
    channels; the output BN starts at zero so the block starts as the identity.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.inter = max(channels // 2, 1)
        self.qkv = nn.Linear(channels, 3 * self.inter)
        self.out = nn.Linear(self.inter, channels)
        self.bn = nn.BatchNorm1d(channels)
        nn.init.zeros_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, x):
        theta, phi, g = (t.transpose(0, 1) for t in self.qkv(x).split(self.inter, dim=-1))
        attn = torch.softmax(theta @ phi.transpose(1, 2), dim=-1)  # (B, J, J)
        y = self.out(attn @ g).transpose(0, 1)
        return x + _bn(self.bn, y)


class SemGCN(nn.Module):
    """SemGCN lifter, optionally with non-local blocks (WS-GCN's architecture).

    Args:
        hidden: channels of the hidden layers (128 in SemGCN / WS-GCN).
        num_blocks: residual blocks (4).
        non_local: add a non-local block after the input layer and each residual block.
        dropout: dropout inside the graph-conv blocks (0 in SemGCN with GT 2D).
        parents: the tree of the joints (H36M-17 by default).
        in_features, out_features: per-joint input and output channels (2 -> 3 for
            lifting; the 2D representation network uses other sizes).
        root_relative: subtract the root joint's output from every joint (lifting).
    """

    def __init__(self, hidden: int = 128, num_blocks: int = 4, non_local: bool = True,
                 dropout: float = 0.0, parents=H36M17.parents, in_features: int = 2,
                 out_features: int = 3, root_relative: bool = True):
        super().__init__()
        adj = adjacency(parents)
        self.num_joints = len(parents)
        self.root_relative = root_relative
        layers = [GraphConvBlock(in_features, hidden, adj, dropout)]
        if non_local:
            layers.append(NonLocal(hidden))
        for _ in range(num_blocks):
            layers.append(ResGraphConv(hidden, adj, dropout))
            if non_local:
                layers.append(NonLocal(hidden))
        self.body = nn.Sequential(*layers)
        self.head = SemGraphConv(hidden, out_features, adj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, J, in_features) -> (B, J, out_features); for lifting (B, J, 2) normalised
        2D -> (B, J, 3) root-relative metres (root set to 0)."""
        y = self.head(self.body(x.transpose(0, 1))).transpose(0, 1)
        return y - y[:, :1] if self.root_relative else y
