"""The lifter stage: 2D keypoints in pixels -> root-relative 3D in metres.

:class:`Lifter` (H36M-17, the body lifters) and :class:`WholeBodyLifter`
(COCO-WholeBody-133, the SemGAN lifter) pair a model with its weights and its codec
(both read from the weights' metadata) and apply it to whole sequences in batches.
:func:`load_lifter` builds the one a weights file's ``layout`` asks for. They are used
the same way by ``lift``, ``eval`` and ``finetune``, so the normalisation can never
differ between training and use.

Both share one interface for the lift stage (:class:`wsgcn_cli.pipeline.stages.Lift`):
``layout``, ``codec_mode``, ``reads_scores`` (the stage passes the 2D stage's scores),
``sha256``, ``device``, ``meta`` and ``__call__(xy_px, width, height, score=None)``.

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
from wsgcn_cli.camera import default_intrinsics
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.skeletons import COCO_WHOLEBODY133, H36M17, WHOLEBODY133_PARTS
from wsgcn_cli.weights import load_model, resolve_device

__all__ = ["Lifter", "WholeBodyLifter", "load_lifter", "resolve_device"]  # resolve_device: wsgcn_cli.weights


class Lifter:
    """A trained 2D -> 3D lifter.

    Args:
        model: the network, (B, 17, 2) normalised 2D -> (B, 17, 3) metres.
        codec_mode: the 2D normalisation the model was trained with (see :mod:`codec`).
        flip_test: also lift the mirrored pose and average (test-time augmentation,
            as in VideoPose3D); costs one more forward pass.
        meta: the weights' metadata; ``sha256``: the weights file's digest.

    Attributes: ``confidence_input`` (bool, from ``meta``): the model takes (B, 17, 3)
    input, the normalised 2D and the keypoint confidence in [0, 1]; ``reads_scores``:
    the same (the lift stage passes scores); ``layout``: ``"h36m17"``.
    """

    layout = H36M17.name

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

    @property
    def reads_scores(self) -> bool:
        return self.confidence_input

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
        return cls._from_loaded(path, model, meta, digest, flip_test, dev)

    @classmethod
    def _from_loaded(cls, path, model, meta: dict, digest: str, flip_test: bool, device) -> "Lifter":
        if meta.get("codec") not in codec.MODES:
            raise WsgcnError(f"weights {path} name no known 2D codec (metadata 'codec' {meta.get('codec')!r}; "
                             f"known: {', '.join(codec.MODES)})")
        return cls(model, meta["codec"], flip_test, device, meta, digest)

    def intrinsics(self, n: int, width=None, height=None, focal=None, center=None):
        """Per-frame (n, 2) focal lengths and principal points (pixels) for the
        ``"virtual_camera"`` codec: the given ones ((2,) or (n, 2)), else those of
        :func:`wsgcn_cli.camera.default_intrinsics` for the image size (its default field
        of view), else the principal point at the image centre. Raises WsgcnError without
        a focal length or an image size."""
        if focal is None:
            if width is None or height is None:
                raise WsgcnError("the virtual_camera codec needs the focal length or the image size")
            focal, c0 = default_intrinsics(float(np.max(width)), float(np.max(height)))
            center = c0 if center is None else center
        if center is None:
            if width is None or height is None:
                raise WsgcnError("the virtual_camera codec needs the principal point or the image size")
            center = np.stack(np.broadcast_arrays(np.asarray(width, np.float32).reshape(-1) / 2,
                                                  np.asarray(height, np.float32).reshape(-1) / 2), -1)
        focal = np.broadcast_to(np.asarray(focal, np.float32).reshape(-1, 2), (n, 2))
        center = np.broadcast_to(np.asarray(center, np.float32).reshape(-1, 2), (n, 2))
        return focal, center

    def encode(self, kp2d_px: np.ndarray, width: float | None = None, height: float | None = None,
               score: np.ndarray | None = None, focal=None, center=None):
        """Pixels (N, 17, 2) -> the model's normalised input, float32: (N, 17, 2), or
        (N, 17, 3) with the confidences ``score`` (N, 17) in [0, 1] appended for a
        ``confidence_input`` model (``score`` None: every keypoint counts as detected, 1).
        ``focal``/``center``: intrinsics for the ``"virtual_camera"`` codec (see
        :meth:`intrinsics`)."""
        if self.codec_mode == "virtual_camera":
            focal, center = self.intrinsics(len(kp2d_px), width, height, focal, center)
        x = codec.encode_2d(kp2d_px, self.codec_mode, width, height, focal, center).astype(np.float32)
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
                 height: float | None = None, score: np.ndarray | None = None,
                 focal=None, center=None, batch_size: int = 1024) -> np.ndarray:
        """Lift pixel keypoints (T, 17, 2) -> (T, 17, 3) root-relative camera coordinates, metres.

        Frames with any NaN keypoint give NaN 3D (complete them first, see
        :mod:`wsgcn_cli.pose2d.mapping`). ``width``/``height`` (pixels) are needed by the
        ``"screen"`` codec, and by ``"virtual_camera"`` without intrinsics. ``score``
        (T, 17): keypoint confidences in [0, 1], read by a ``confidence_input`` lifter and
        ignored by others. ``focal``/``center``: (2,) or (T, 2) pixels, read by a
        ``"virtual_camera"`` lifter only (default: :meth:`intrinsics`); its output is
        rotated from the virtual camera back into the real one. ``batch_size``: frames per
        forward pass.
        """
        kp2d_px = np.asarray(kp2d_px, dtype=np.float32)
        ok = np.isfinite(kp2d_px).all(axis=(-1, -2))
        out = np.full(kp2d_px.shape[:-1] + (3,), np.nan, dtype=np.float32)
        if ok.any():
            sc = None if score is None else np.asarray(score, np.float32)[ok]
            if self.codec_mode == "virtual_camera":
                n = len(kp2d_px)
                focal, center = (a[ok] for a in self.intrinsics(n, width, height, focal, center))
                rot = codec.virtual_camera_rotation(kp2d_px[ok][:, codec.ROOT], focal, center)
                out[ok] = codec.from_virtual_camera(self.predict_normalized(self.encode(
                    kp2d_px[ok], score=sc, focal=focal, center=center), batch_size), rot)
            else:
                out[ok] = self.predict_normalized(self.encode(kp2d_px[ok], width, height, sc), batch_size)
        return out


class WholeBodyLifter:
    """A trained COCO-WholeBody-133 lifter (SemGAN, :mod:`wsgcn_cli.models.semgan`).

    Input: 133 keypoints in pixels with their scores, encoded by
    :func:`wsgcn_cli.models.semgan.encode_input` (pelvis-centred, scaled by the body's 2D
    size, distance to the parent, visibility): keypoints that are NaN or score 0 enter as
    zeros with visibility 0. Output: (T, 133, 3) camera-frame metres (x right, y down,
    z forward), root-relative: the pelvis, the mean of the hips 11 and 12, at 0.

    Args:
        model: the network, (B, 133, 4) -> (B, 133, 3) metres.
        flip_test: also lift the mirrored pose and average (test-time augmentation): the
            2D is mirrored (x negated, left/right swapped with
            :meth:`~wsgcn_cli.skeletons.Skeleton.flip_permutation` of COCO-WholeBody-133:
            body, feet, hands and the 300-W face pairs) and the 3D mirrored back. The
            encoding commutes with the mirror (its pelvis, scale and parent tree are
            left/right symmetric), so mirroring the encoded input is exact.
        meta: the weights' metadata; ``sha256``: the weights file's digest.

    Attributes: ``layout`` ``"coco_wholebody133"``, ``codec_mode`` (the weights'
    ``codec``, :data:`wsgcn_cli.models.semgan.CODEC`), ``reads_scores`` True,
    ``confidence_input`` False (no 2D network needed).
    """

    layout = COCO_WHOLEBODY133.name
    reads_scores = True
    confidence_input = False
    #: Keypoints a frame needs in 2D to be lifted at all: the body and feet (0-22).
    REQUIRED = WHOLEBODY133_PARTS["body"]

    def __init__(self, model: torch.nn.Module, flip_test: bool = True, device: str | torch.device = "cpu",
                 meta: dict | None = None, sha256: str = ""):
        from wsgcn_cli.models.semgan import CODEC

        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.flip_test = flip_test
        self.meta = meta or {}
        self.sha256 = sha256
        self.codec_mode = self.meta.get("codec", CODEC)
        self.perm = torch.as_tensor(COCO_WHOLEBODY133.flip_permutation())

    @classmethod
    def from_weights(cls, path: str | Path, flip_test: bool = True, device: str = "auto") -> "WholeBodyLifter":
        """Load whole-body lifter weights (kind ``"lifter"``, layout ``coco_wholebody133``)
        on ``device``. Raises WsgcnError like :meth:`Lifter.from_weights` (another kind or
        layout, tensors that do not fit, an unknown ``codec``)."""
        dev = resolve_device(device)
        model, meta, digest = load_model(path, "lifter", device=dev, layout=cls.layout)
        return cls._from_loaded(path, model, meta, digest, flip_test, dev)

    @classmethod
    def _from_loaded(cls, path, model, meta: dict, digest: str, flip_test: bool, device) -> "WholeBodyLifter":
        from wsgcn_cli.models.semgan import CODEC

        if meta.get("codec") != CODEC:
            raise WsgcnError(f"weights {path}: a whole-body lifter needs codec {CODEC!r}, the metadata say "
                             f"{meta.get('codec')!r}")
        return cls(model, flip_test, device, meta, digest)

    @staticmethod
    def encode(kp2d_px: np.ndarray, score: np.ndarray | None = None) -> np.ndarray:
        """Pixels (N, 133, 2) (NaN: unseen) and scores (N, 133) -> the model's input
        (N, 133, 4) float32 (:func:`wsgcn_cli.models.semgan.encode_input`)."""
        from wsgcn_cli.models.semgan import encode_input

        return encode_input(kp2d_px, score)

    @torch.inference_mode()
    def predict_normalized(self, x: torch.Tensor | np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Encoded input (N, 133, 4) (see :meth:`encode`) -> root-relative 3D (N, 133, 3)
        metres for every keypoint, the network's guess for unseen ones included."""
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        perm = self.perm.to(self.device)
        sign = torch.tensor([-1.0, 1.0, 1.0, 1.0], device=self.device)  # mirror: u -> -u
        out = []
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(self.device)
            if self.flip_test:  # the pose and its mirror image in one forward pass
                y = self.model(torch.cat([xb, xb[:, perm] * sign]))
                mirrored = y[len(xb):, perm] * sign[:3]
                y = 0.5 * (y[: len(xb)] + mirrored)
            else:
                y = self.model(xb)
            out.append(y.float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 133, 3), np.float32)

    def __call__(self, kp2d_px: np.ndarray, width: float | None = None, height: float | None = None,
                 score: np.ndarray | None = None) -> np.ndarray:
        """Lift (T, 133, 2) pixels with scores (T, 133) -> (T, 133, 3) root-relative camera
        coordinates, metres.

        NaN: every keypoint of a frame whose body and feet (:attr:`REQUIRED`, 0-22) are not
        all finite in 2D (complete them first: gap filling); and, in the other frames,
        each keypoint that is NaN in 2D (a part not seen): the network's output there is
        a guess from the rest of the body, not a measurement (:meth:`predict_normalized`
        gives it), so 3D exists exactly where 2D does. ``score`` (T, 133) in [0, 1]: the
        visibility input (None: 1 for every finite keypoint; 0 counts as unseen for the
        network). ``width``/``height`` are not used (the encoding is independent of the image).
        """
        kp2d_px = np.asarray(kp2d_px, dtype=np.float32)
        if kp2d_px.ndim != 3 or kp2d_px.shape[1:] != (133, 2):
            raise WsgcnError(f"the whole-body lifter takes (T, 133, 2) pixels, got {kp2d_px.shape}")
        if score is not None:
            score = np.asarray(score, np.float32)
        seen = np.isfinite(kp2d_px).all(axis=-1)
        lo, hi = self.REQUIRED
        ok = np.isfinite(kp2d_px[:, lo:hi]).all(axis=(-1, -2))
        out = np.full(kp2d_px.shape[:-1] + (3,), np.nan, dtype=np.float32)
        if ok.any():
            pose = self.predict_normalized(self.encode(kp2d_px[ok], None if score is None else score[ok]))
            out[ok] = np.where(seen[ok][..., None], pose, np.nan)
        return out


#: The lifter class for each layout a lifter's weights can be for.
LIFTERS = {Lifter.layout: Lifter, WholeBodyLifter.layout: WholeBodyLifter}


def load_lifter(path: str | Path, flip_test: bool = True, device: str = "auto",
                layout: str | None = None) -> "Lifter | WholeBodyLifter":
    """The lifter a weights file describes: :class:`Lifter` for ``h36m17`` weights,
    :class:`WholeBodyLifter` for ``coco_wholebody133`` (the metadata's ``layout``), read
    once through :func:`wsgcn_cli.weights.load_model`.

    ``layout``: if given, the layout the weights must be for (a pipeline's ``[lifter]
    layout``). Raises WsgcnError for everything :meth:`Lifter.from_weights` raises, and
    weights of a layout no lifter class handles.
    """
    dev = resolve_device(device)
    model, meta, digest = load_model(path, "lifter", device=dev, layout=layout)
    cls = LIFTERS.get(meta.get("layout"))
    if cls is None:
        raise WsgcnError(f"weights {path} are for layout {meta.get('layout')!r}; lifters exist for "
                         f"{', '.join(LIFTERS)}")
    return cls._from_loaded(path, model, meta, digest, flip_test, dev)
