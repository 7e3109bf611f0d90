"""The lifter stage: H36M-17 2D keypoints in pixels -> root-relative 3D in metres.

:class:`Lifter` pairs a model with its weights and its codec (both read from the
weights' metadata) and applies it to whole sequences in batches. It is used the same
way by ``lift``, ``eval`` and ``finetune``, so the normalisation can never differ
between training and use.

A lifter trained together with the 2D pose representation network
(``wsgcn train train-representation-lifter``) also reads each keypoint's confidence
as a third input channel (weights metadata ``confidence_input``), so it can rely less
on joints the network completed than on joints the detector saw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wsgcn_cli import codec
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.skeletons import H36M17
from wsgcn_cli.weights import load_model, resolve_device

__all__ = ["Lifter", "resolve_device"]  # resolve_device lives in wsgcn_cli.weights


class Lifter:
    """A trained 2D -> 3D lifter.

    Args:
        model: the network, (B, 17, 2) normalised 2D -> (B, 17, 3) metres.
        codec_mode: the 2D normalisation the model was trained with (see :mod:`codec`).
        flip_test: also lift the mirrored pose and average (test-time augmentation,
            as in VideoPose3D); costs one more forward pass.
        meta: the weights' metadata; ``sha256``: the weights file's digest.

    Attributes: ``confidence_input`` (bool, from ``meta``): the model takes (B, 17, 3)
    input, the normalised 2D and the keypoint confidence in [0, 1].
    """

    def __init__(self, model: torch.nn.Module, codec_mode: str, flip_test: bool = True,
                 device: str | torch.device = "cpu", meta: dict | None = None, sha256: str = ""):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.codec_mode = codec_mode
        self.flip_test = flip_test
        self.meta = meta or {}
        self.sha256 = sha256
        self.perm = torch.as_tensor(H36M17.flip_permutation())
        self.confidence_input = bool(self.meta.get("confidence_input", False))

    @classmethod
    def from_weights(cls, path: str | Path, flip_test: bool = True, device: str = "auto",
                     expect_layout: str = "h36m17") -> "Lifter":
        """Build the lifter a weights file names and load it (kind ``"lifter"``, through
        :func:`wsgcn_cli.weights.load_model`) on ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``).

        Raises WsgcnError if the file is unreadable, holds weights of another kind (e.g.
        the 2D representation network), its layout is not ``expect_layout``, its tensors
        do not fit the model it names, or its metadata name no known ``codec``.
        """
        dev = resolve_device(device)
        model, meta, digest = load_model(path, "lifter", device=dev, layout=expect_layout)
        if meta.get("codec") not in codec.MODES:
            raise WsgcnError(f"weights {path} name no known 2D codec (metadata 'codec' {meta.get('codec')!r}; "
                             f"known: {', '.join(codec.MODES)})")
        return cls(model, meta["codec"], flip_test, dev, meta, digest)

    def encode(self, kp2d_px: np.ndarray, width: float | None = None, height: float | None = None,
               score: np.ndarray | None = None):
        """Pixels (N, 17, 2) -> the model's normalised input, float32: (N, 17, 2), or
        (N, 17, 3) with the confidences ``score`` (N, 17) in [0, 1] appended for a
        ``confidence_input`` model (``score`` None: every keypoint counts as detected, 1)."""
        x = codec.encode_2d(kp2d_px, self.codec_mode, width, height).astype(np.float32)
        if not self.confidence_input:
            return x
        c = np.ones(x.shape[:-1], np.float32) if score is None else np.asarray(score, np.float32)
        c = np.clip(np.nan_to_num(c, nan=0.0), 0.0, 1.0)
        return np.concatenate([x, c[..., None]], axis=-1)

    @torch.inference_mode()
    def predict_normalized(self, x: torch.Tensor | np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Normalised input (N, 17, C) (see :meth:`encode`) -> root-relative 3D (N, 17, 3)
        metres (no NaN allowed)."""
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        perm = self.perm.to(self.device)
        out = []
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(self.device)
            if self.flip_test:  # the pose and its mirror image in one forward pass
                y = self.model(torch.cat([xb, codec.flip_2d(xb, perm)]))
                y = 0.5 * (y[: len(xb)] + codec.flip_3d(y[len(xb):], perm))
            else:
                y = self.model(xb)
            out.append(y.float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 17, 3), np.float32)

    def __call__(self, kp2d_px: np.ndarray, width: float | None = None,
                 height: float | None = None, score: np.ndarray | None = None) -> np.ndarray:
        """Lift pixel keypoints (T, 17, 2) -> (T, 17, 3) root-relative camera coordinates, metres.

        Frames with any NaN keypoint give NaN 3D (complete them first, see
        :mod:`wsgcn_cli.pose2d.mapping`). ``width``/``height`` (pixels) are needed by the
        ``"screen"`` codec only. ``score`` (T, 17): keypoint confidences in [0, 1], read
        by a ``confidence_input`` lifter and ignored by others.
        """
        kp2d_px = np.asarray(kp2d_px, dtype=np.float32)
        ok = np.isfinite(kp2d_px).all(axis=(-1, -2))
        out = np.full(kp2d_px.shape[:-1] + (3,), np.nan, dtype=np.float32)
        if ok.any():
            sc = None if score is None else np.asarray(score, np.float32)[ok]
            out[ok] = self.predict_normalized(self.encode(kp2d_px[ok], width, height, sc))
        return out
