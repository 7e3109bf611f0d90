"""The 2D pose representation network: a clean, complete H36M-17 pose from detector keypoints.

Between the detector and the lifter, as the 2D pose sub-network of 3D Human Pose
Machines (Wang et al., TPAMI 2019) feeds its 2D->3D transformer. Detector keypoints in
any supported layout (BlazePose-33, COCO-17, Stacked-Hourglass-16, ...) are first mapped
geometrically to H36M-17 (:func:`wsgcn_cli.represent.to_h36m17`); this network then
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

from pathlib import Path

import numpy as np
import torch
from torch import nn

from wsgcn_cli.errors import WsgcnError
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


class RepresentationModel:
    """Inference wrapper: pixels in, pixels and confidences out.

    Attributes: ``model`` (:class:`PoseRepresentationNet`), ``meta`` (the weights'
    metadata), ``sha256`` (of the weights file), ``device``.
    """

    def __init__(self, model: PoseRepresentationNet, device="cpu", meta: dict | None = None, sha256: str = ""):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.meta = meta or {}
        self.sha256 = sha256

    @classmethod
    def from_weights(cls, path: str | Path, device: str = "cpu") -> "RepresentationModel":
        """Load weights written by ``wsgcn train train-representation``.

        Raises WsgcnError if the file is unreadable or is not a representation network.
        """
        from wsgcn_cli import weights
        from wsgcn_cli.models.registry import build_model

        state, meta = weights.load(path)
        if meta.get("task") != "representation":
            raise WsgcnError(f"weights {path} are not a 2D representation network (task {meta.get('task')!r})")
        model = build_model(meta["model"], **meta.get("model_options", {}))
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise WsgcnError(f"weights {path} do not fit model {meta['model']!r}: {str(e).strip().splitlines()[0]}")
        return cls(model, device, meta, weights.sha256(path))

    @torch.inference_mode()
    def __call__(self, xy: np.ndarray, score: np.ndarray, min_score: float = 0.0,
                 batch_size: int = 4096, detected_weight: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Clean and complete H36M-17 keypoints.

        Args:
            xy: (T, 17, 2) pixels (image frame), NaN where missing.
            score: (T, 17) detector confidences; below ``min_score`` counts as missing.
            detected_weight: present joints come out as ``detected_weight * xy + (1 -
                detected_weight) * network`` (0: the network's output; missing joints
                always take the network's).
        Returns:
            (xy (T, 17, 2) float32 pixels, confidence (T, 17) float32 in [0, 1]); frames
            with fewer than :data:`MIN_PRESENT` present joints are returned unchanged.
        """
        xy = np.asarray(xy, np.float32)
        score = np.asarray(score, np.float32)
        present = np.isfinite(xy).all(axis=-1) & (score >= min_score)
        out_xy, out_conf = xy.copy(), score.copy()
        rows = np.flatnonzero(present.sum(axis=1) >= MIN_PRESENT)
        for i in range(0, len(rows), batch_size):
            r = rows[i : i + batch_size]
            x = torch.from_numpy(np.nan_to_num(xy[r])).to(self.device)
            m = torch.from_numpy(present[r]).to(self.device)
            u, c, s = normalize(x, m)
            v, logit = self.model(u, m)
            net = (c + s * v).cpu().numpy()
            if detected_weight:
                keep = present[r][..., None]
                net = np.where(keep, detected_weight * np.nan_to_num(xy[r]) + (1 - detected_weight) * net, net)
            out_xy[r] = net
            out_conf[r] = torch.sigmoid(logit).cpu().numpy()
        return out_xy, out_conf
