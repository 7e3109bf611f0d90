"""SemGAN: the whole-body lifter, COCO-WholeBody-133 2D -> root-relative 3D.

After Wen, Zhu & Tan, "3D WholeBody Pose Estimation based on Semantic Graph Attention
Network and Distance Information" (arXiv 2406.01196, 2024; first on the H3WB 2D -> 3D
benchmark). Its parts, as built here:

* **Input with distance information.** Per keypoint: the 2D position centred at the
  pelvis (mean of the hips 11, 12, as H3WB) and divided by the body's 2D size, its 2D
  distance to its parent in the tree :data:`~wsgcn_cli.skeletons.WHOLEBODY133_PARENTS`
  (same unit), and its visibility (the detector's score in [0, 1]; 0 for keypoints that
  were not seen, whose other channels are 0 too): :func:`encode_input`, shared by the
  training data and inference, so the two cannot differ.
* **Semantic graph attention encoder.** A linear embedding of each keypoint's channels
  plus a learned embedding per keypoint, then ``depth`` pre-norm transformer blocks
  (multi-head self-attention over all 133 keypoints, MLP); the last ``gcn_layers`` of
  them add, after the attention, a residual semantic graph convolution
  (:class:`~wsgcn_cli.models.semgcn.SemGraphConv`, SemGCN, Zhao et al. CVPR 2019) over
  the keypoint graph: the drawn skeleton, face contours and finger chains of
  :data:`~wsgcn_cli.skeletons.COCO_WHOLEBODY133` plus the tree's bones (which tie the
  face and hands to the body): attention for global context, the graph for local
  structure.
* **Body-part decoder.** The encoded keypoints are split into body (23: COCO-17 and the
  feet), face (68) and hands (42, both together); each part gets ``decoder_depth`` (2)
  attention blocks over its own keypoints and a residual semantic graph convolution over
  its part of the graph, then a linear head to 3D.

Output: (B, 133, 3) camera-frame coordinates (x right, y down, z forward) in metres,
root-relative: the pelvis, the mean of keypoints 11 and 12, is at 0 (so neither hip is).

Where this departs from the paper, and why:

* Size: defaults (hidden 64, 3 encoder blocks, 4 heads) are sized to train on a CPU
  core; the paper's are larger. All are constructor options.
* Unseen parts: the paper lifts H3WB's complete 2D; here whole parts are often unseen
  (faces and hands in ordinary footage), so a visibility channel is added and unseen
  keypoints enter as zeros with visibility 0. The network still outputs all 133; what
  is output for unseen parts is a guess from the rest of the body, to be flagged by the
  caller. Attention is not masked (a row of all-masked keys would have no softmax);
  the visibility channel lets the network learn to ignore them.
* The distance is the scalar 2D distance to the parent in the normalised frame; the
  tree (rooted at the nose) is ours, as COCO-WholeBody defines no tree.
* No flip-equivariance by construction (flip test-time augmentation, if wanted, is the
  caller's: :meth:`wsgcn_cli.skeletons.Skeleton.flip_permutation` of the layout).

Everything is batched matrix algebra: no per-sample or per-joint Python loops.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.models.semgcn import SemGraphConv, adjacency
from wsgcn_cli.skeletons import COCO_WHOLEBODY133, WHOLEBODY133_PARENTS, WHOLEBODY133_PARTS, WHOLEBODY133_PELVIS

#: Number of keypoints (COCO-WholeBody-133).
NUM_JOINTS = 133

#: Name of the 2D normalisation of :func:`encode_input`, for weights metadata (``codec``).
CODEC = "wholebody_pelvis_scale"

#: Input channels per keypoint from :func:`encode_input`: x, y, parent distance, visibility.
IN_FEATURES = 4

#: The decoder's parts: (name, first keypoint, stop); contiguous and in keypoint order.
DECODER_PARTS = (("body",) + WHOLEBODY133_PARTS["body"], ("face",) + WHOLEBODY133_PARTS["face"],
                 ("hands", WHOLEBODY133_PARTS["left_hand"][0], WHOLEBODY133_PARTS["right_hand"][1]))

_BODY17 = 17


def encode_input(xy, score=None):
    """COCO-WholeBody-133 pixels (+ scores) -> SemGAN input (..., 133, 4), float32.

    Channels: 0-1 the keypoint's position relative to the pelvis divided by the body's
    size, ``(xy - pelvis) / s``; 2 its distance to its parent in
    :data:`~wsgcn_cli.skeletons.WHOLEBODY133_PARENTS` in the same unit (0 for the root,
    or where the keypoint or its parent is unseen); 3 its visibility, the score clipped
    to [0, 1] (1 where ``score`` is None). A keypoint is *unseen* where its 2D is not
    finite or its score is not above 0: all four channels are 0.

    ``pelvis``: the mean of the hips (11, 12) when both are seen, else the mean of the
    seen body keypoints (0-22), else of all seen keypoints. ``s``: the RMS distance from
    the pelvis of the seen COCO-17 body keypoints (0-16) when at least two are seen, else
    of all seen keypoints; 1 if that is degenerate. Independent of image size, position
    and the person's size in the image, like the body lifter's ``root_scale`` codec.

    Args:
        xy: (..., 133, 2) pixels (image frame, origin top-left, x right, y down), NaN
            where unseen; numpy or torch.
        score: optional (..., 133) detector confidences (NaN or 0: unseen).
    Returns:
        (..., 133, 4) float32, numpy for numpy input, else a torch tensor on ``xy``'s
        device (differentiable in ``xy``).
    Raises:
        WsgcnError: ``xy`` is not (..., 133, 2) or ``score`` not (..., 133).
    """
    is_numpy = not isinstance(xy, torch.Tensor)
    x = torch.as_tensor(np.asarray(xy, np.float32) if is_numpy else xy).float()
    if x.ndim < 2 or x.shape[-2:] != (NUM_JOINTS, 2):
        raise WsgcnError(f"whole-body 2D must be (..., {NUM_JOINTS}, 2) pixels, got {tuple(x.shape)}")
    seen = torch.isfinite(x).all(-1)
    if score is None:
        vis = seen.float()
    else:
        s = torch.as_tensor(np.asarray(score, np.float32) if not isinstance(score, torch.Tensor) else score,
                            device=x.device).float()
        if s.shape != x.shape[:-1]:
            raise WsgcnError(f"whole-body scores must be {tuple(x.shape[:-1])}, got {tuple(s.shape)}")
        s = torch.nan_to_num(s, nan=0.0).clamp(0.0, 1.0)
        seen = seen & (s > 0)
        vis = torch.where(seen, s, 0.0)
    m = seen.float().unsqueeze(-1)
    x = torch.where(seen.unsqueeze(-1), x, 0.0)

    def mean_of(lo, hi):
        n = m[..., lo:hi, :].sum(-2)
        return (x[..., lo:hi, :] * m[..., lo:hi, :]).sum(-2) / n.clamp_min(1.0), n

    left, right = WHOLEBODY133_PELVIS
    hips = (seen[..., left] & seen[..., right]).unsqueeze(-1)
    body_mean, n_body = mean_of(0, WHOLEBODY133_PARTS["body"][1])
    all_mean, _ = mean_of(0, NUM_JOINTS)
    centre = torch.where(hips, 0.5 * (x[..., left, :] + x[..., right, :]),
                         torch.where(n_body > 0, body_mean, all_mean))
    rel = (x - centre.unsqueeze(-2)) * m
    d2 = (rel**2).sum(-1, keepdim=True)
    n17 = m[..., :_BODY17, :].sum(-2)
    rms17 = ((d2[..., :_BODY17, :]).sum(-2) / n17.clamp_min(1.0)).sqrt()
    rms_all = (d2.sum(-2) / m.sum(-2).clamp_min(1.0)).sqrt()
    scale = torch.where(n17 >= 2, rms17, rms_all)
    scale = torch.where(torch.isfinite(scale) & (scale > 1e-6), scale, torch.ones_like(scale))
    uv = rel / scale.unsqueeze(-2)
    parents = torch.as_tensor(WHOLEBODY133_PARENTS, device=x.device)
    has_parent = (parents >= 0) & seen & seen[..., parents.clamp_min(0)]
    dist = torch.linalg.vector_norm(uv - uv[..., parents.clamp_min(0), :], dim=-1) * has_parent
    out = torch.cat([uv, dist.unsqueeze(-1), vis.unsqueeze(-1)], dim=-1)
    return out.detach().cpu().numpy() if is_numpy else out


def graph_adjacency(lo: int = 0, hi: int = NUM_JOINTS) -> torch.Tensor:
    """(n, n) 0/1 adjacency with self-loops of keypoints ``lo..hi-1`` of the whole-body
    graph: the tree's bones (:func:`~wsgcn_cli.models.semgcn.adjacency` of
    :data:`~wsgcn_cli.skeletons.WHOLEBODY133_PARENTS`) and the drawn edges of
    :data:`~wsgcn_cli.skeletons.COCO_WHOLEBODY133` (face loops, the hip and shoulder
    lines); edges leaving the range are dropped."""
    adj = adjacency(WHOLEBODY133_PARENTS)
    edges = torch.as_tensor(COCO_WHOLEBODY133.edges)
    adj[edges[:, 0], edges[:, 1]] = adj[edges[:, 1], edges[:, 0]] = 1.0
    return adj[lo:hi, lo:hi].clone()


class AttentionBlock(nn.Module):
    """Pre-norm transformer block over keypoints, batch-major (B, J, D) -> (B, J, D):
    ``x += Attn(LN x)``; with ``adj`` also ``x += SemGraphConv(LN x)`` (the semantic graph
    attention layer); then ``x += MLP(LN x)``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float, adj: torch.Tensor | None = None):
        super().__init__()
        if dim % heads:
            raise WsgcnError(f"SemGAN hidden size {dim} is not divisible by its {heads} heads")
        self.heads, self.dropout = heads, dropout
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm_g = nn.LayerNorm(dim) if adj is not None else None
        self.gcn = SemGraphConv(dim, dim, adj) if adj is not None else None
        hidden = max(1, int(round(dim * mlp_ratio)))
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, j, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, j, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(a.transpose(1, 2).reshape(b, j, d))
        if self.gcn is not None:
            x = x + self.gcn(self.norm_g(x).transpose(0, 1)).transpose(0, 1)
        return x + self.mlp(self.norm2(x))


class PartDecoder(nn.Module):
    """One body part's decoder: attention blocks over the part's keypoints, a residual
    semantic graph convolution over its graph, a linear head: (B, n, D) -> (B, n, 3)."""

    def __init__(self, lo: int, hi: int, dim: int, heads: int, depth: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.blocks = nn.Sequential(*[AttentionBlock(dim, heads, mlp_ratio, dropout) for _ in range(depth)])
        self.norm_g = nn.LayerNorm(dim)
        self.gcn = SemGraphConv(dim, dim, graph_adjacency(lo, hi))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(x)
        x = x + F.gelu(self.gcn(self.norm_g(x).transpose(0, 1)).transpose(0, 1))
        return self.head(self.norm(x))


class SemGAN(nn.Module):
    """SemGAN whole-body lifter (module docstring): (B, 133, C) -> (B, 133, 3) metres.

    Args:
        hidden: channels per keypoint (64; divisible by ``heads``).
        depth: encoder blocks (3), of which the last ``gcn_layers`` (1) add a semantic
            graph convolution.
        heads: attention heads (4).
        decoder_depth: attention blocks per body part in the decoder (2).
        mlp_ratio: width of the blocks' MLPs relative to ``hidden`` (2).
        dropout: dropout in attention and MLPs (0).
        in_features: input channels per keypoint, :data:`IN_FEATURES` (4) from
            :func:`encode_input`.

    Attributes: ``num_joints`` (133), ``in_features``, ``layout``
    (``"coco_wholebody133"``), ``codec`` (:data:`CODEC`).
    Raises WsgcnError for sizes that do not fit (hidden not divisible by heads, ...).
    """

    layout = COCO_WHOLEBODY133.name
    codec = CODEC

    def __init__(self, hidden: int = 64, depth: int = 3, heads: int = 4, decoder_depth: int = 2,
                 gcn_layers: int = 1, mlp_ratio: float = 2.0, dropout: float = 0.0,
                 in_features: int = IN_FEATURES):
        super().__init__()
        if min(hidden, heads, in_features) < 1 or depth < 1 or decoder_depth < 0 or not 0 <= gcn_layers <= depth:
            raise WsgcnError(f"bad SemGAN sizes: hidden {hidden}, depth {depth}, heads {heads}, "
                             f"decoder_depth {decoder_depth}, gcn_layers {gcn_layers}, in_features {in_features}")
        self.num_joints = NUM_JOINTS
        self.in_features = in_features
        self.embed = nn.Linear(in_features, hidden)
        self.joint_embed = nn.Parameter(torch.zeros(NUM_JOINTS, hidden))
        nn.init.trunc_normal_(self.joint_embed, std=0.02)
        adj = graph_adjacency()
        self.encoder = nn.Sequential(*[
            AttentionBlock(hidden, heads, mlp_ratio, dropout, adj if i >= depth - gcn_layers else None)
            for i in range(depth)])
        self.norm = nn.LayerNorm(hidden)
        self.parts = nn.ModuleList(PartDecoder(lo, hi, hidden, heads, decoder_depth, mlp_ratio, dropout)
                                   for _, lo, hi in DECODER_PARTS)
        self._bounds = [(lo, hi) for _, lo, hi in DECODER_PARTS]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 133, in_features) from :func:`encode_input` -> (B, 133, 3) root-relative
        camera-frame metres (pelvis, the mean of keypoints 11 and 12, at 0). Non-finite
        inputs are read as 0 (give unseen keypoints visibility 0, as encode_input does)."""
        h = self.embed(torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)) + self.joint_embed
        h = self.norm(self.encoder(h))
        y = torch.cat([dec(h[:, lo:hi]) for dec, (lo, hi) in zip(self.parts, self._bounds)], dim=1)
        left, right = WHOLEBODY133_PELVIS
        return y - 0.5 * (y[:, left : left + 1] + y[:, right : right + 1])
