"""Inference with the 2D pose representation network: pixels in, pixels and confidences out.

The network itself (layers only) is :class:`wsgcn_cli.models.pose2d_net.PoseRepresentationNet`,
with its normalisation :func:`~wsgcn_cli.models.pose2d_net.normalize` and
:data:`~wsgcn_cli.models.pose2d_net.MIN_PRESENT`: see that module for what it computes.
:class:`RepresentationModel` runs it on whole sequences of H36M-17 keypoints in pixels;
its weights are read by :func:`wsgcn_cli.weights.load_model` (kind ``"pose2d"``):
nothing here reads files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wsgcn_cli.models.pose2d_net import MIN_PRESENT, PoseRepresentationNet, normalize
from wsgcn_cli.weights import load_model, resolve_device

__all__ = ["RepresentationModel"]


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
        """Load weights written by ``wsgcn train train-representation`` (kind ``"pose2d"``)
        on ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``).

        Raises WsgcnError if the file is unreadable, is not a 2D representation network
        (e.g. lifter weights) or its tensors do not fit (see :func:`wsgcn_cli.weights.load_model`).
        """
        dev = resolve_device(device)
        model, meta, digest = load_model(path, "pose2d", device=dev)
        return cls(model, dev, meta, digest)

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
