"""``wsgcn finetune``: self-supervised adaptation of a lifter to unlabelled footage.

Given clips without any 3D, the lifter is adapted so that its 3D poses, placed in the
camera frame and projected, land on the detected 2D (the 2D-3D projection consistency
of "3D Human Pose Machines with Self-supervised Learning", Wang et al. TPAMI 2019, and
the 2D term of WS-GCN's weak supervision, Jiang & Chen ICCAI 2024), while priors keep
the 3D plausible. Per training window of ``window`` consecutive frames::

    loss = w_reproj    * reprojection error / 2D size of the person (dimensionless)
         + w_bone      * bone-length prior (left/right symmetry + reference lengths), m
         + w_temporal  * acceleration of the joints, m/frame^2 at 50 fps (a clip at another
                         frame rate is scaled by (fps / 50)^2, so the term measures the same motion)
         + w_anchor    * distance to the base model's output for the same input, m

Camera: the clips are uncalibrated. Intrinsics are a pinhole camera with the principal
point at the image centre and focal length ``focal`` pixels, or, without it, the focal
of an assumed horizontal field of view ``fov_deg`` of the image's longer side
(:func:`wsgcn_cli.camera.default_intrinsics`; 55 degrees, a typical phone or camcorder
main camera). The root (pelvis) position in the camera frame is unknown: it is
estimated per frame from the current 3D and the 2D in closed form
(:func:`wsgcn_cli.camera.estimate_root_translation`) and held fixed (detached) in the
gradient step. An error in the assumed focal length mostly changes the estimated depth,
not the root-relative pose.

Reference bone lengths: the mean of Human3.6M's five training subjects
(:func:`wsgcn_cli.train.losses.reference_bone_lengths`), or, when that data is absent or
``bone_reference="base"``, the median bone lengths of the base model's own output on
the clips (left/right averaged).

Training is :class:`FinetuneTask` on the one :class:`~wsgcn_cli.train.trainer.Trainer`
(``train/trainer.py``: Adam at a constant learning rate, the epochs of sample indices,
gradient clipping, progress, Ctrl-C, resume, checkpoint, history, keep-best and early
stopping, the learning curve). A sample is a training window: the Trainer's batch of
indices is a batch of windows, and an epoch is ``steps_per_epoch`` batches of them.

Held-out frames and early stopping: each clip is cut into contiguous chunks (of
``chunk_frames``); a ``holdout`` fraction of them, spread evenly over the clip, is never
trained on. After every epoch the held-out reprojection error (pixels, the joints of ``reproject``,
root estimated, flip test as in the lift pipeline) is measured (``val_heldout_px``); an
epoch that lowers the best so far by more than 0.1 % is kept (``val_best_px``, the
Trainer's ``keep_best``), training stops after ``patience`` epochs without one, and the
kept epoch's weights are written. If no epoch beats the base model, the base weights
are written unchanged (and the card says so). This is a 2D self-consistency measure,
not 3D accuracy.

BatchNorm layers keep the base model's statistics (the model stays in eval mode; their
affine parameters still adapt), so a short clip cannot overwrite them.

Outputs: ``out`` (safetensors: the base weights' metadata with ``command``,
``init_weights``, ``machine``, ``torch`` updated and a ``finetune`` record added), a
model card ``<out stem>.md`` and the learning curve ``<out stem>.curve.json`` (and
``.png``). While training, the Trainer writes ``<out>.ckpt`` (model, best weights so far,
optimiser, history; read with ``torch.load(weights_only=True)``) atomically after every
epoch; running the same command again resumes from it, one written with other clips,
weights or options is refused (one-line error), and it is deleted when the weights are
written. Ctrl-C leaves no weights or card (only that checkpoint, the learning curve so
far and the 2D caches of clips detected so far).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from wsgcn_cli import weights as wio
from wsgcn_cli import codec
from wsgcn_cli.camera import default_intrinsics, estimate_root_translation, project
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.temporal import window_starts
from wsgcn_cli.train import losses
from wsgcn_cli.train.common import changed_settings
from wsgcn_cli.train.trainer import Schedule, Task, Trainer


#: The temporal term measures accelerations per frame at this rate (Human3.6M's).
TEMPORAL_FPS = 50.0


@dataclass
class FinetuneConfig:
    """Options of :func:`finetune` (see the module docstring for what the terms do).

    Attributes:
        epochs: at most this many epochs; steps_per_epoch: gradient steps per epoch
            (0: one pass over the training windows, at least 20, at most 200).
        batch_size: windows per step; window: consecutive frames per window (>= 3 for
            the acceleration term).
        lr: Adam learning rate (constant); max_grad_norm: gradient clipping (WS-GCN: 1;
            0: off).
        holdout: fraction of each clip's chunks held out (0 disables early stopping);
            chunk_frames: chunk length in frames (0: 50, at least 2 windows);
            patience: epochs without held-out improvement before stopping (0: never).
        w_reproj, w_bone, w_temporal, w_anchor: loss weights. The defaults were chosen on
            ``body3d_demo.mp4`` (``benchmarks/finetune_body3d.py``): with a weaker anchor the
            3D drifts to fit the detector's 2D (its joint definitions and noise), which
            lowers the reprojection error and raises the 3D error.
        bone_reference: ``"h36m"`` (Human3.6M training subjects, falling back to
            ``"base"`` if the data is absent), ``"base"``, or 16 bone lengths in metres
            (order of :func:`wsgcn_cli.skeletons.bone_pairs`), e.g. the person's own.
        use_scores: weight the reprojection by the detector's keypoint scores.
        reproject: ``"observed"`` (default): the reprojection and root terms use only
            the joints that are one keypoint of the detector's layout (for BlazePose and
            COCO not the pelvis, spine, thorax and head, which the 2D stage builds from
            several keypoints: fitting them fits the construction); ``"all"``: all 17.
        adapt: ``"norm_bias"`` (default): only the normalisation layers' affine
            parameters and the biases change (under 2 % of the weights; a short clip
            cannot overwrite the model); ``"all"``: every weight (use a learning rate
            near 1e-5: Adam moves every weight by about ``lr`` per step, even where
            the gradient is noise).
        seed: random seed (window order per epoch).
    """

    epochs: int = 20
    steps_per_epoch: int = 0
    batch_size: int = 32
    window: int = 5
    lr: float = 3e-4
    max_grad_norm: float = 1.0
    holdout: float = 0.2
    chunk_frames: int = 0
    patience: int = 3
    w_reproj: float = 1.0
    w_bone: float = 1.0
    w_temporal: float = 1.0
    w_anchor: float = 2.0
    bone_reference: str | list = "h36m"
    use_scores: bool = True
    reproject: str = "observed"
    adapt: str = "norm_bias"
    seed: int = 0

    def check(self):
        if self.epochs < 1 or self.batch_size < 1 or self.steps_per_epoch < 0 or self.patience < 0:
            raise WsgcnError("epochs and batch size must be >= 1, steps per epoch and patience >= 0")
        if self.window < 3:
            raise WsgcnError(f"window must be >= 3 frames (acceleration), got {self.window}")
        if not 0.0 <= self.holdout < 1.0:
            raise WsgcnError(f"holdout must be in [0, 1), got {self.holdout}")
        if isinstance(self.bone_reference, str):
            if self.bone_reference not in ("h36m", "base"):
                raise WsgcnError(f"unknown bone reference {self.bone_reference!r}; use h36m, base or 16 lengths")
        else:
            ref = np.asarray(self.bone_reference, dtype=np.float64)
            if ref.shape != (16,) or not np.all(np.isfinite(ref) & (ref > 0)):
                raise WsgcnError("a bone reference given as numbers needs 16 positive lengths in metres")
            self.bone_reference = [float(v) for v in ref]
        if self.reproject not in ("observed", "all"):
            raise WsgcnError(f"unknown reprojection joints {self.reproject!r}; use observed or all")
        if self.adapt not in ("norm_bias", "all"):
            raise WsgcnError(f"unknown parameter set {self.adapt!r}; use norm_bias or all")
        if not self.lr > 0:
            raise WsgcnError(f"learning rate must be positive, got {self.lr}")
        if min(self.w_reproj, self.w_bone, self.w_temporal, self.w_anchor) < 0:
            raise WsgcnError("loss weights must be >= 0")


# -- data ----------------------------------------------------------------------------------

def split_holdout(num_frames: int, holdout: float, chunk_frames: int) -> np.ndarray:
    """(T,) bool, True for held-out frames: ``holdout`` of the clip's contiguous chunks.

    The clip is cut into ``round(T / chunk_frames)`` chunks of (nearly) equal length, and
    ``round(holdout * chunks)`` of them (at least 1 when ``holdout`` > 0), evenly spread,
    are held out. A clip shorter than two chunks holds out its last ``holdout`` fraction.
    """
    held = np.zeros(num_frames, bool)
    if holdout <= 0 or num_frames < 2:
        return held
    n_chunks = int(round(num_frames / chunk_frames))
    if n_chunks < 2:
        held[num_frames - max(1, int(math.ceil(holdout * num_frames))):] = True
        return held
    n_hold = min(n_chunks - 1, max(1, int(round(holdout * n_chunks))))
    bounds = np.linspace(0, num_frames, n_chunks + 1).round().astype(int)
    picks = np.floor((np.arange(n_hold) + 0.5) * n_chunks / n_hold).astype(int)
    for i in picks:
        held[bounds[i]:bounds[i + 1]] = True
    return held


@dataclass
class _Frames:
    """All frames of all clips, concatenated (numpy; pixels and metres)."""

    kp: np.ndarray        # (N, 17, 2) px
    score: np.ndarray     # (N, 17)
    f: np.ndarray         # (N, 2) px
    c: np.ndarray         # (N, 2) px
    size: np.ndarray      # (N, 2) width, height px
    fps: np.ndarray       # (N,) frame rate of the clip
    clip: np.ndarray      # (N,) clip index
    observed: np.ndarray  # (N, 17) joint is one keypoint of the clip's detector layout
    valid: np.ndarray     # (N,) all joints present
    held: np.ndarray      # (N,) held out


def _gather_frames(clips, focal, fov_deg, holdout, chunk_frames) -> tuple[_Frames, list[dict]]:
    from wsgcn_cli.pose2d.mapping import observed_joints

    parts, info = [], []
    for i, clip in enumerate(clips):
        kp = clip.kp
        if focal is not None:
            f = np.array([focal, focal], np.float64)
            c = np.array([kp.width / 2.0, kp.height / 2.0])
        else:
            f, c = default_intrinsics(kp.width, kp.height, fov_deg)
        t = kp.num_frames
        held = split_holdout(t, holdout, chunk_frames)
        parts.append(dict(kp=kp.xy, score=kp.score, f=np.tile(f, (t, 1)), c=np.tile(c, (t, 1)),
                          size=np.tile([kp.width, kp.height], (t, 1)), fps=np.full(t, float(kp.fps or TEMPORAL_FPS)),
                          clip=np.full(t, i),
                          observed=np.tile(observed_joints(clip.raw_layout), (t, 1)), valid=clip.valid, held=held))
        info.append({"clip": clip.name, "frames": int(t), "usable_frames": int(clip.valid.sum()),
                     "heldout_frames": int((held & clip.valid).sum()),
                     "image_size": [int(kp.width), int(kp.height)], "fps": float(kp.fps),
                     "focal_px": float(f[0]), "principal_point_px": [float(c[0]), float(c[1])],
                     "detector_layout": clip.raw_layout, "from_cache": bool(clip.from_cache),
                     "cache": str(clip.cache) if clip.cache else None})
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return _Frames(**cat), info


# -- helpers -------------------------------------------------------------------------------

def _encode(lifter, kp: np.ndarray, size: np.ndarray, score: np.ndarray, f: np.ndarray, c: np.ndarray):
    """The lifter's input (:meth:`wsgcn_cli.lifter.Lifter.encode`) for pixel keypoints (N, 17, 2)
    of images of ``size`` (N, 2) px with the 2D stage's confidences ``score`` (N, 17) and the
    intrinsics ``f``, ``c`` (N, 2) px: ((N, 17, 2), or (N, 17, 3) for a lifter that reads
    confidences; (N, 3, 3) rotations from the network's output frame to the camera: the
    virtual cameras of a ``virtual_camera`` lifter, else identities). NaN frames give zeros
    (never used)."""
    safe = np.where(np.isfinite(kp), kp, 0.0).astype(np.float32)
    x = lifter.encode(safe, size[:, 0, None, None].astype(np.float32), size[:, 1, None, None].astype(np.float32),
                      score=score, focal=f, center=c)
    if lifter.codec_mode == "virtual_camera":
        return x, codec.virtual_camera_rotation(safe[:, codec.ROOT], f, c)
    return x, np.broadcast_to(np.eye(3, dtype=np.float32), (len(kp), 3, 3)).copy()


def heldout_reprojection_px(lifter, x: np.ndarray, kp: np.ndarray, f: np.ndarray, c: np.ndarray,
                            joints: np.ndarray | None = None, rot: np.ndarray | None = None) -> float:
    """Mean reprojection error (pixels) of a lifter's output with the root estimated.

    ``x``: (N, 17, 2) normalised input; ``kp``: (N, 17, 2) pixels; ``f``, ``c``: (N, 2);
    ``joints``: optional (N, 17) bool, the joints that estimate the root and are scored
    (default all); ``rot``: optional (N, 3, 3) rotations from the network's output frame to
    the camera (see :func:`_encode`).
    """
    if len(x) == 0:
        return float("nan")
    pose = lifter.predict_normalized(x).astype(np.float64)
    if rot is not None:
        pose = codec.from_virtual_camera(pose, rot.astype(np.float64))
    w = None if joints is None else joints.astype(np.float64)
    root = estimate_root_translation(pose, kp, f, c, weights=w)
    err = np.linalg.norm(project(pose + root[:, None], f[:, None], c[:, None]) - kp, axis=-1)
    return float(np.nanmean(err if joints is None else err[joints]))


#: An epoch is kept only if it lowers the best held-out error by more than this fraction.
MIN_IMPROVEMENT = 1e-3


class _Best(nn.Module):
    """What a resumed run needs beyond the model and the optimiser, as a module so the
    Trainer checkpoints it: ``model``, a frozen copy holding the kept epoch's weights
    (the base weights until an epoch is kept), and the held-out error (px, float64) of the
    base model (``base_px``, NaN until measured) and of the kept weights (``best_px``)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = copy.deepcopy(model)
        for prm in self.model.parameters():
            prm.requires_grad_(False)
        self.register_buffer("base_px", torch.tensor(float("nan"), dtype=torch.float64))
        self.register_buffer("best_px", torch.tensor(float("nan"), dtype=torch.float64))


class FinetuneTask(Task):
    """The ``finetune`` task of the Trainer: adapt ``base`` to the clips' 2D (module docstring).

    Samples are the training windows (``starts``: first frame of each, into the
    concatenated frames); :meth:`loss` of a batch of window indices is the module
    docstring's sum of terms, logged per term (``reprojection``, dimensionless;
    ``bone_m``, ``temporal_m``, ``anchor_m``, metres). :meth:`validate` gives
    ``val_heldout_px`` (this epoch's held-out reprojection error, px) and ``val_best_px``
    (the best so far, lowered only by an improvement of more than :data:`MIN_IMPROVEMENT`:
    the Trainer's ``keep_best``, so it keeps exactly the epochs that rule keeps).
    :meth:`save` only copies the weights into ``modules["best"]`` (checkpointed with the
    run); :func:`finetune` writes the weights file once, after the run.

    Args:
        cfg: the checked options; base: the base :class:`~wsgcn_cli.lifter.Lifter` (its
            model is adapted in place); frames, clip_info: from :func:`_gather_frames`;
        base_sha256, focal, fov_deg: recorded in the checkpoint's fingerprint;
        data: Human3.6M folder for the reference bone lengths; log, warn: message sinks.

    Raises:
        WsgcnError: no ``window`` consecutive usable training frames, or no usable
            held-out frame with ``holdout`` > 0.
    """

    name = "finetune"
    curve_unit = "held-out reprojection error (px)"

    def __init__(self, cfg: FinetuneConfig, base, frames: _Frames, clip_info: list[dict], base_sha256: str = "",
                 focal: float | None = None, fov_deg: float = 55.0, data=None, log=print, warn=print):
        self.cfg, self.base, self.frames, self.clip_info, self.data = cfg, base, frames, clip_info, data
        self.log, self.warn = log, warn
        self._fingerprint = {"base": base_sha256, "clips": [(i["clip"], i["frames"], i["usable_frames"])
                                                            for i in clip_info],
                             "cfg": changed_settings(cfg, ignored=("epochs", "patience")),  # may change on resume
                             "focal": focal, "fov": fov_deg}
        self.starts = window_starts(frames.valid & ~frames.held, frames.clip, cfg.window)
        self.held_idx = np.flatnonzero(frames.valid & frames.held)
        if len(self.starts) == 0:
            raise WsgcnError(f"no {cfg.window} consecutive usable training frames in the clips")
        if cfg.holdout > 0 and len(self.held_idx) == 0:
            raise WsgcnError("no usable held-out frames (lower --holdout or add footage)")
        self.held_label = "held-out" if len(self.held_idx) else "training-frame"
        self.steps = cfg.steps_per_epoch or min(200, max(20, math.ceil(len(self.starts) / cfg.batch_size)))

    def schedule(self, out: Path, init_weights: str) -> Schedule:
        """The Trainer's settings: a constant learning rate (``lr_final = lr``), fp32,
        ``steps`` batches of windows per epoch, keep-best on ``val_best_px`` with early
        stopping only when frames are held out; checkpoint ``<out>.ckpt``, learning curve
        ``<out stem>.curve.json``."""
        cfg = self.cfg
        return Schedule(epochs=cfg.epochs, samples_per_epoch=self.steps * cfg.batch_size, batch_size=cfg.batch_size,
                        lr=cfg.lr, lr_final=cfg.lr, max_grad_norm=max(cfg.max_grad_norm, 0.0), seed=cfg.seed,
                        bf16=False, out=str(out), init_weights=init_weights,
                        checkpoint=str(out.with_name(out.name + ".ckpt")), keep_best="val_best_px",
                        patience=cfg.patience if cfg.holdout > 0 else 0,
                        curve=str(out.with_name(out.stem + ".curve.json")))

    def setup(self, trainer) -> None:
        from wsgcn_cli.lifter import Lifter

        cfg, base, fr = self.cfg, self.base, self.frames
        dev = self.device = trainer.device
        self.model = base.model
        self.x_all, self.rot_all = _encode(base, fr.kp, fr.size, fr.score, fr.f, fr.c)
        base_raw = codec.from_virtual_camera(  # camera coordinates (a no-op unless virtual_camera)
            Lifter(self.model, base.codec_mode, flip_test=False, device=dev).predict_normalized(self.x_all), self.rot_all)
        self.joints = fr.observed if cfg.reproject == "observed" else np.ones_like(fr.observed)
        scores = np.clip(fr.score, 0.05, 1.0) if cfg.use_scores else 1.0

        def t(a):
            return torch.from_numpy(np.asarray(a, np.float32)).to(dev)

        self.X, self.KP, self.BASE = torch.from_numpy(self.x_all).to(dev), t(np.nan_to_num(fr.kp)), t(base_raw)
        self.W, self.F, self.C, self.R = t(scores * self.joints), t(fr.f), t(fr.c), t(self.rot_all)
        self.S = losses.keypoint_scale(self.KP)
        self.frame_scale = t((fr.fps / TEMPORAL_FPS) ** 2)
        self.windows = torch.from_numpy(self.starts).to(dev)[:, None] + torch.arange(cfg.window, device=dev)
        self.reference, self.bone_reference = self._bone_reference(base_raw)
        self.adapted = adapted_parameters(self.model, cfg.adapt)
        for prm in self.model.parameters():
            prm.requires_grad_(False)
        for prm in self.adapted:
            prm.requires_grad_(True)
        self.best = _Best(self.model).to(dev)
        self.modules = {"model": self.model, "best": self.best}
        self.log(f"{len(self.clip_info)} clip(s), {int(fr.valid.sum())} usable frames ({len(self.held_idx)} held "
                 f"out), {len(self.starts)} training windows of {cfg.window}; {self.steps} steps/epoch")

    def _bone_reference(self, base_raw: np.ndarray) -> tuple[torch.Tensor, str]:
        """(16 reference bone lengths in metres on the device, where they come from)."""
        source = self.cfg.bone_reference
        if not isinstance(source, str):
            reference, source = np.asarray(source), "given lengths"
        elif source == "h36m":
            try:
                reference = losses.reference_bone_lengths(self.data)
                source = "Human3.6M S1 S5 S6 S7 S8 mean"
            except WsgcnError as e:
                self.warn(f"{e}; using the base model's own bone lengths as the reference")
                source = "base"
        if source == "base":
            lengths = losses.bone_lengths(torch.from_numpy(base_raw[self.frames.valid])).median(0).values.numpy()
            sym = losses.symmetric_bones()
            lengths[sym[:, 0]] = lengths[sym[:, 1]] = 0.5 * (lengths[sym[:, 0]] + lengths[sym[:, 1]])
            reference, source = lengths, "median of the base model's output on the clips"
        return torch.as_tensor(reference, dtype=torch.float32, device=self.device), source

    def parameters(self):
        return self.adapted

    def init_from(self, path: str) -> dict:
        """The base weights are already in the model (the Pipeline loaded them, checked
        against its 2D stage); no earlier samples are counted, so the learning curve's
        samples are the windows of this run."""
        return {}

    def num_samples(self) -> int:
        return len(self.starts)

    def fingerprint(self) -> dict:
        return self._fingerprint

    def start_epoch(self, epoch: int) -> None:
        self.model.eval()  # BatchNorm keeps the base statistics; gradients still flow

    def loss(self, idx, gen):
        cfg, w = self.cfg, self.windows[idx]                                        # (B, window) frames
        pred = self.model(self.X[w].reshape(-1, 17, self.X.shape[-1])).float().reshape(*w.shape, 17, 3)
        pred = pred @ self.R[w].transpose(-1, -2)  # the network's frame -> camera coordinates
        kp, wt, f, c = self.KP[w], self.W[w], self.F[w], self.C[w]
        root = losses.estimated_root(pred, kp, f, c, weights=wt)
        l_rep = losses.reprojection_loss(pred, root, kp, f, c, weights=wt, scale=self.S[w])
        l_bone = losses.bone_length_loss(pred, self.reference)
        l_temp = losses.temporal_smoothness_loss(pred, frame_scale=self.frame_scale[w[:, 0]])
        l_anchor = losses.anchor_loss(pred, self.BASE[w])
        loss = cfg.w_reproj * l_rep + cfg.w_bone * l_bone + cfg.w_temporal * l_temp + cfg.w_anchor * l_anchor
        return loss, {"reprojection": l_rep, "bone_m": l_bone, "temporal_m": l_temp, "anchor_m": l_anchor}

    def validate(self) -> dict[str, float]:
        from wsgcn_cli.lifter import Lifter

        fr = self.frames
        idx = self.held_idx if len(self.held_idx) else np.flatnonzero(fr.valid)
        lifter = Lifter(self.model, self.base.codec_mode, flip_test=self.base.flip_test, device=self.device)
        px = heldout_reprojection_px(lifter, self.x_all[idx], fr.kp[idx].astype(np.float64), fr.f[idx], fr.c[idx],
                                     self.joints[idx], self.rot_all[idx])
        b = self.best
        if math.isnan(float(b.base_px)):  # the first call: the base model, before any step
            b.base_px.fill_(px)
            b.best_px.fill_(px)
        elif px < float(b.best_px) * (1 - MIN_IMPROVEMENT):
            b.best_px.fill_(px)
        return {"val_heldout_px": px, "val_best_px": float(b.best_px)}

    def save(self, out: Path, meta: dict) -> str:
        """Keep the current weights as the best (the Trainer calls this when an epoch is
        kept); nothing is written: :func:`finetune` writes ``out`` after the run."""
        self.best.model.load_state_dict(self.model.state_dict())
        return ""


# -- the API -------------------------------------------------------------------------------

def finetune(clips: Sequence[str | os.PathLike], weights: str | os.PathLike | None, out: str | os.PathLike,
             focal: float | None = None, fov_deg: float = 55.0, epochs: int = 20, holdout: float = 0.2,
             pipeline: str = "body17", cache_dir: str | os.PathLike | None = None, data: str | None = None,
             overwrite: bool = False, device: str = "auto", quiet: bool = False,
             config: FinetuneConfig | None = None, log: Callable[[str], None] | None = None,
             command: str = "", **options) -> dict:
    """Adapt a lifter to unlabelled clips (self-supervised); write the adapted weights.

    Args:
        clips: videos / image folders / images, or 2D keypoint ``.npz`` files (see
            :mod:`wsgcn_cli.data.clips`); each needs one visible person.
        weights: the base weights (a ``.safetensors`` path or the name of a shipped one);
            None: the lift pipeline's lifter weights.
        out: the adapted weights to write (``.safetensors``); the model card goes to
            ``<out stem>.md``, the learning curve to ``<out stem>.curve.json`` (and
            ``.png``) and the resumable checkpoint to ``<out>.ckpt``.
        focal: focal length in pixels of the clips' camera; None: from ``fov_deg``.
        fov_deg: assumed field of view (degrees) of the image's longer side when no
            ``focal`` is given.
        epochs, holdout: see :class:`FinetuneConfig`; ``**options`` sets any other of its
            fields (``lr``, ``batch_size``, ``window``, ``w_anchor``, ...), or pass
            ``config``.
        pipeline: the lift pipeline whose detector and 2D stage make the 2D
            (:meth:`wsgcn_cli.pipeline.Pipeline.run`: the 2D ``lift`` feeds its lifter).
        cache_dir: folder for the 2D caches (default beside each clip, else beside ``out``).
        data: Human3.6M folder for the reference bone lengths (default ../shared/data/h36m).
        overwrite: replace existing ``out`` / card.
        device: ``auto``, ``cpu`` or ``cuda``; quiet: no progress bars or epoch lines
            (warnings are still printed); log: callable for messages (default: stderr).

    Returns:
        dict: ``weights``, ``sha256``, ``card``, ``curve``, ``clips`` (per clip: frames,
        usable, held-out, intrinsics, cache), ``skipped`` (clip, reason), ``heldout_px``
        (``base``, ``best``, ``best_epoch``), ``history`` (the Trainer's row per trained
        epoch: loss terms, ``val_heldout_px``, ``val_best_px``, samples seen, wall s),
        ``epochs_run``, ``stopped_early``, ``wall_s``.

    Raises:
        WsgcnError: bad options, missing clips or weights, an existing output without
            ``overwrite``, no clip with a usable person, too few frames for one window,
            an unreadable checkpoint or one written with other clips, weights or options.
    """
    from wsgcn_cli.pipeline import Pipeline

    t0 = time.time()
    cfg = copy.deepcopy(config) if config is not None else FinetuneConfig()
    cfg.epochs, cfg.holdout = int(epochs), float(holdout)
    for key, value in options.items():
        if not hasattr(cfg, key):
            raise WsgcnError(f"unknown finetune option {key!r}")
        setattr(cfg, key, value)
    cfg.check()
    if cfg.chunk_frames <= 0:
        cfg.chunk_frames = max(50, 2 * cfg.window)
    if focal is not None and not focal > 0:
        raise WsgcnError(f"focal length must be positive (pixels), got {focal}")
    if focal is None and not 1.0 <= fov_deg <= 170.0:
        raise WsgcnError(f"field of view must be within [1, 170] degrees, got {fov_deg}")
    if not clips:
        raise WsgcnError("no clips given")

    say = log
    if say is None:
        from wsgcn_cli.console import get_console

        console = get_console()

        def say(msg):
            console.print(msg, highlight=False, markup=False)
    info_log = (lambda msg: None) if quiet else say

    def warn(msg):
        say(f"warning: {msg}")

    out = Path(out)
    if out.suffix != ".safetensors":
        raise WsgcnError(f"output {out} must be a .safetensors file")
    card = out.with_suffix(".md")
    if not out.parent.is_dir():
        raise WsgcnError(f"output folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise WsgcnError(f"output folder {out.parent} is not writable")
    for path in (out, card):
        if path.exists() and not overwrite:
            raise WsgcnError(f"{path} exists (use --overwrite to replace it)")
    # The lift pipeline's stages make the 2D (exactly what `lift` feeds the lifter) and
    # hold the base lifter (the pipeline's, or `weights`, checked against the 2D stage).
    pipe = Pipeline.from_file(pipeline, device=device, refine=False,  # adapts the lifter: no refiner needed
                              lifter_weights=None if weights is None else _weights_path(weights))
    base, base_path = pipe.lifter, pipe.lifter_path

    # 1. 2D of every clip (cached), skipping clips without a usable person.
    from wsgcn_cli.data.clips import load_clip

    loaded, skipped = [], []
    for clip_path in clips:
        clip_path = Path(clip_path)
        if not clip_path.exists():
            raise WsgcnError(f"clip {clip_path} does not exist")
        with _lazy_bar(f"detecting {clip_path.name}", quiet) as advance:
            clip = load_clip(clip_path, pipe, cache_dir=cache_dir, fallback_dir=out.parent, progress=advance)
        usable = int(clip.valid.sum())
        reason = (f"no person found in any of its {clip.kp.num_frames} frame(s)" if usable == 0 else
                  f"only {usable} frame(s) with a complete person, fewer than one window ({cfg.window})"
                  if usable < cfg.window else "")
        if reason:
            warn(f"{clip_path}: {reason}; skipped")
            skipped.append({"clip": clip_path.name, "reason": reason})
            continue
        info_log(f"{clip_path.name}: {usable}/{clip.kp.num_frames} frames with a person"
                 + (" (2D from cache)" if clip.from_cache and clip.cache else ""))
        loaded.append(clip)
    if not loaded:
        raise WsgcnError("no clip has a usable person: nothing to adapt to")
    frames, clip_info = _gather_frames(loaded, focal, fov_deg, cfg.holdout, cfg.chunk_frames)

    # 2. The task on the Trainer (which owns the loop, resume, keep-best, early stopping).
    task = FinetuneTask(cfg, base, frames, clip_info, base_sha256=base.sha256, focal=focal, fov_deg=fov_deg,
                        data=data, log=info_log, warn=warn)
    schedule = task.schedule(out, str(Path(base_path).resolve()))

    def trainer_log(msg: str) -> None:
        if msg.startswith("interrupted"):  # shown even when quiet
            say(msg)
        elif not msg.startswith(("best ", f"{out} (sha256")):  # nothing is written before the end
            info_log(msg)

    with _lazy_bar("finetuning", quiet) as advance:
        summary = Trainer(task, schedule, base.device, log=trainer_log, progress=advance,
                          command=command or "wsgcn finetune").fit()

    # 3. The kept weights, with the base weights' metadata and the run's record.
    history = [h for h in summary["history"] if h["epoch"] > 0]
    base_px, best_px = float(task.best.base_px), float(task.best.best_px)
    best_epoch = int(summary["best"]["epoch"])
    model = task.model
    model.load_state_dict(task.best.model.state_dict())
    run = dict(summary["meta"])
    top = {k: run.pop(k) for k in ("command", "init_weights", "machine", "torch")}
    record = {
        "base_weights": Path(base_path).name, "base_sha256": base.sha256,
        "base_command": base.meta.get("command", ""), "clips": clip_info, "skipped": skipped,
        "camera": ({"focal_px": focal} if focal is not None else {"fov_deg": fov_deg})
        | {"principal_point": "image centre", "distortion": "none", "root": "estimated per frame (closed form)"},
        "config": asdict(cfg), "bone_reference": task.bone_reference,
        "adapted_parameters": int(sum(p.numel() for p in task.adapted)),
        "total_parameters": int(sum(p.numel() for p in model.parameters())),
        "heldout_reprojection_px": {"base": base_px, "best": best_px, "best_epoch": best_epoch},
        "heldout": task.held_label, "epochs_run": len(history), "stopped_early": len(history) < cfg.epochs,
        "steps_per_epoch": task.steps, "wall_time_s": run["wall_time_s"], "trainer": run, "history": history,
        "unchanged_from_base": best_epoch == 0, "curve": Path(schedule.curve).name,
    }
    meta = {**base.meta, **top, "finetune": record}
    digest = wio.save(out, model.state_dict(), meta)
    card_path = write_finetune_card(out, meta, digest)
    Path(schedule.checkpoint).unlink(missing_ok=True)
    if best_epoch == 0:
        warn(f"no epoch improved the {task.held_label} reprojection error of the base model ({base_px:.2f} px): "
             f"{out} holds the base weights unchanged")
    info_log(f"wrote {out} (sha256 {digest[:12]}…) and {card_path.name}: {task.held_label} reprojection "
             f"{base_px:.2f} -> {best_px:.2f} px (epoch {best_epoch} of {len(history)}), "
             f"{(time.time() - t0) / 60:.1f} min")
    return {"weights": str(out), "sha256": digest, "card": str(card_path), "curve": schedule.curve,
            "clips": clip_info, "skipped": skipped, "heldout_px": record["heldout_reprojection_px"],
            "history": history, "epochs_run": record["epochs_run"], "stopped_early": record["stopped_early"],
            "wall_s": time.time() - t0}


def adapted_parameters(model: torch.nn.Module, which: str = "norm_bias") -> list[torch.nn.Parameter]:
    """The parameters ``finetune`` changes: ``"all"``, or ``"norm_bias"``: the affine
    parameters of the normalisation layers (BatchNorm, LayerNorm, GroupNorm,
    InstanceNorm) and every bias, as in test-time adaptation by normalisation
    parameters (TENT, Wang et al. ICLR 2021) and bias-only tuning (BitFit, Ben Zaken
    et al. ACL 2022). Raises WsgcnError for another name."""
    if which == "all":
        return list(model.parameters())
    if which != "norm_bias":
        raise WsgcnError(f"unknown parameter set {which!r}; use norm_bias or all")
    norms = (torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm, torch.nn.GroupNorm)
    chosen, seen = [], set()
    for module in model.modules():
        for name, prm in module.named_parameters(recurse=False):
            if (isinstance(module, norms) or name == "bias") and id(prm) not in seen:
                seen.add(id(prm))
                chosen.append(prm)
    if not chosen:
        raise WsgcnError("the model has no normalisation or bias parameters to adapt; use adapt='all'")
    return chosen


def _weights_path(weights) -> Path:
    from wsgcn_cli import pipeline as pipelines

    p = Path(weights)
    if p.is_file():
        return p
    for cand in (pipelines.ROOT / "weights" / p.name, (pipelines.ROOT / "weights" / p.name).with_suffix(".safetensors")):
        if cand.is_file():
            return cand
    raise WsgcnError(f"weights file not found: {weights}")


@contextlib.contextmanager
def _lazy_bar(description: str, quiet: bool):
    """A progress callable ``advance(done, total)`` that opens its bar
    (:func:`wsgcn_cli.console.progress_bar`) only when first called (no bar for cached 2D)."""
    from wsgcn_cli.console import progress_bar

    with contextlib.ExitStack() as stack:
        bar = []

        def advance(done, total=None):
            if not bar:
                bar.append(stack.enter_context(progress_bar(description, total, quiet)))
            bar[0](done, total)

        yield advance


def write_finetune_card(weights_path: Path, meta: dict, digest: str) -> Path:
    """Write ``<weights stem>.md`` describing a finetuned weights file (atomically)."""
    from wsgcn_cli.io.atomic import atomic_write

    r = meta["finetune"]
    cfg = r["config"]
    px = r["heldout_reprojection_px"]
    cam = r["camera"]
    cam_text = (f"focal {cam['focal_px']:g} px (given)" if "focal_px" in cam
                else f"focal from an assumed {cam['fov_deg']:g}° field of view of the longer image side")
    lines = [
        f"# {weights_path.name}",
        "",
        f"Self-supervised adaptation (`wsgcn finetune`) of `{r['base_weights']}` (sha256 `{r['base_sha256'][:16]}…`) "
        f"to {len(r['clips'])} unlabelled clip(s). No 3D ground truth was used.",
        "",
        f"- **model**: `{meta['model']}` {meta.get('model_options', {})}; layout `{meta['layout']}`, codec "
        f"`{meta['codec']}`; output {meta['output']}",
        f"- **command**: `{meta.get('command', '')}`",
        f"- **camera**: pinhole, principal point at the image centre, no distortion, {cam_text}; "
        "root position estimated per frame in closed form",
        f"- **losses**: reprojection ×{cfg['w_reproj']} (error / 2D size of the person), bone-length prior "
        f"×{cfg['w_bone']} (symmetry + reference: {r['bone_reference']}), acceleration ×{cfg['w_temporal']}, "
        f"anchor to the base model ×{cfg['w_anchor']}; windows of {cfg['window']} frames, batch {cfg['batch_size']}, "
        f"Adam lr {cfg['lr']} (constant), gradient norm ≤ {cfg['max_grad_norm']}, BatchNorm statistics frozen",
        f"- **adapted**: {'normalisation affine parameters and biases' if cfg.get('adapt') == 'norm_bias' else 'all weights'}"
        + (f" ({r['adapted_parameters']} of {r['total_parameters']})" if "adapted_parameters" in r else "")
        + f"; reprojection on {'the joints the detector observes directly' if cfg.get('reproject') == 'observed' else 'all 17 joints'}",
        f"- **schedule**: {r['epochs_run']} of at most {cfg['epochs']} epochs × {r['steps_per_epoch']} steps"
        + (", stopped early" if r["stopped_early"] else "") + f"; best epoch {px['best_epoch']}",
        f"- **wall time**: {r['wall_time_s'] / 60:.1f} min on {meta['machine']} (torch {meta['torch']})",
        f"- **sha256**: `{digest}`",
        "",
        f"## {r['heldout'].capitalize()} reprojection error (pixels, root estimated, the reprojected joints)",
        "",
        f"Base model {px['base']:.2f} px → adapted {px['best']:.2f} px"
        + (" (no epoch improved on the base model: these are the base weights unchanged)."
           if r["unchanged_from_base"] else "."),
        "This measures 2D self-consistency on frames never trained on, not 3D accuracy.",
        "",
        "| clip | frames | usable | held out | size | focal (px) | detector |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for c in r["clips"]:
        lines.append(f"| {c['clip']} | {c['frames']} | {c['usable_frames']} | {c['heldout_frames']} | "
                     f"{c['image_size'][0]}×{c['image_size'][1]} | {c['focal_px']:.0f} | {c['detector_layout']} |")
    for s in r["skipped"]:
        lines.append(f"| {s['clip']} (skipped: {s['reason']}) | | | | | | |")
    if r["history"]:
        lines += ["", "## Training curve", "", f"Also in `{r.get('curve', '')}` (JSON and PNG).", "",
                  f"| epoch | loss | reprojection (rel.) | bone (mm) | accel (mm/frame²) | anchor (mm) | "
                  f"{r['heldout']} (px) |", "|---:|---:|---:|---:|---:|---:|---:|",
                  f"| 0 (base) | | | | | | {px['base']:.2f} |"]
        lines += [f"| {h['epoch']} | {h['loss']:.4f} | {h['reprojection']:.4f} | {1000 * h['bone_m']:.1f} | "
                  f"{1000 * h['temporal_m']:.2f} | {1000 * h['anchor_m']:.1f} | {h['val_heldout_px']:.2f} |"
                  for h in r["history"]]
    lines.append("")
    card = weights_path.with_suffix(".md")
    with atomic_write(card) as tmp:
        Path(tmp).write_text("\n".join(lines))
    return card
