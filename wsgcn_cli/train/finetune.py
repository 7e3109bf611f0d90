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

Held-out frames and early stopping: each clip is cut into contiguous chunks (of
``chunk_frames``); a ``holdout`` fraction of them, spread evenly over the clip, is never
trained on. After every epoch the held-out reprojection error (pixels, all 17 joints,
root estimated, flip test as in the lift pipeline) is measured; training stops after
``patience`` epochs without improvement and the best epoch's weights are written. If no
epoch beats the base model, the base weights are written unchanged (and the card says
so). This is a 2D self-consistency measure, not 3D accuracy.

BatchNorm layers keep the base model's statistics (the model stays in eval mode; their
affine parameters still adapt), so a short clip cannot overwrite them.

Outputs: ``out`` (safetensors: the base weights' metadata with ``command``,
``init_weights``, ``machine``, ``torch`` updated and a ``finetune`` record added) and a
model card ``<out stem>.md``. While training, ``<out>.ckpt`` (model, optimiser, best
weights, history; read with ``torch.load(weights_only=True)``) is written atomically after
every epoch; running the same command again resumes from it, and it is deleted when the
weights are written. Ctrl-C leaves no partial output (only that checkpoint and the 2D
caches of clips detected so far).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from wsgcn_cli import weights as wio
from wsgcn_cli.camera import default_intrinsics, estimate_root_translation, project
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.train import losses
from wsgcn_cli.train.common import machine_description, save_checkpoint


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
        lr: Adam learning rate (constant); max_grad_norm: gradient clipping (WS-GCN: 1).
        holdout: fraction of each clip's chunks held out (0 disables early stopping);
            chunk_frames: chunk length in frames (0: 50, at least 2 windows);
            patience: epochs without held-out improvement before stopping.
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
        if self.epochs < 1 or self.batch_size < 1 or self.steps_per_epoch < 0:
            raise WsgcnError("epochs and batch size must be >= 1, steps per epoch >= 0")
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


def window_starts(usable: np.ndarray, clip_id: np.ndarray, window: int) -> np.ndarray:
    """Start indices s such that frames s..s+window-1 are all usable and of one clip."""
    n = len(usable)
    if n < window:
        return np.zeros(0, np.int64)
    ok = usable.astype(np.int64)
    csum = np.concatenate([[0], np.cumsum(ok)])
    s = np.arange(n - window + 1)
    full = (csum[s + window] - csum[s]) == window
    same = clip_id[s] == clip_id[s + window - 1]
    return s[full & same]


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
    from wsgcn_cli.represent import observed_joints

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

def _encode(lifter, kp: np.ndarray, size: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The lifter's input (:meth:`wsgcn_cli.lifter.Lifter.encode`) for pixel keypoints (N, 17, 2)
    of images of ``size`` (N, 2) px with the 2D stage's confidences ``score`` (N, 17): (N, 17, 2),
    or (N, 17, 3) for a lifter that reads confidences. NaN frames give zeros (never used)."""
    safe = np.where(np.isfinite(kp), kp, 0.0).astype(np.float32)
    return lifter.encode(safe, size[:, 0, None, None].astype(np.float32), size[:, 1, None, None].astype(np.float32),
                         score=score)


def heldout_reprojection_px(lifter, x: np.ndarray, kp: np.ndarray, f: np.ndarray, c: np.ndarray,
                            joints: np.ndarray | None = None) -> float:
    """Mean reprojection error (pixels) of a lifter's output with the root estimated.

    ``x``: (N, 17, 2) normalised input; ``kp``: (N, 17, 2) pixels; ``f``, ``c``: (N, 2);
    ``joints``: optional (N, 17) bool, the joints that estimate the root and are scored
    (default all).
    """
    if len(x) == 0:
        return float("nan")
    pose = lifter.predict_normalized(x).astype(np.float64)
    w = None if joints is None else joints.astype(np.float64)
    root = estimate_root_translation(pose, kp, f, c, weights=w)
    err = np.linalg.norm(project(pose + root[:, None], f[:, None], c[:, None]) - kp, axis=-1)
    return float(np.nanmean(err if joints is None else err[joints]))


def _fingerprint(base_sha: str, info: list[dict], cfg: FinetuneConfig, focal, fov_deg) -> str:
    options = {k: v for k, v in asdict(cfg).items() if k not in ("epochs", "patience")}  # may change on resume
    blob = json.dumps({"base": base_sha, "clips": [(i["clip"], i["frames"], i["usable_frames"]) for i in info],
                       "cfg": options, "focal": focal, "fov": fov_deg}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _quiet_progress(done, total=None):
    return None


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
            ``<out stem>.md`` and the resumable checkpoint to ``<out>.ckpt``.
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
        dict: ``weights``, ``sha256``, ``card``, ``clips`` (per clip: frames, usable,
        held-out, intrinsics, cache), ``skipped`` (clip, reason), ``heldout_px``
        (``base``, ``best``, ``best_epoch``), ``history`` (per epoch: loss terms,
        held-out px), ``epochs_run``, ``stopped_early``, ``wall_s``.

    Raises:
        WsgcnError: bad options, missing clips or weights, an existing output without
            ``overwrite``, no clip with a usable person, too few frames for one window.
    """
    from wsgcn_cli.lifter import Lifter
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

    console = None if log is not None else _stderr_console()
    say = log or (lambda msg: console.print(msg, highlight=False, markup=False))
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
    pipe = Pipeline.from_file(pipeline, device=device,
                              lifter_weights=None if weights is None else _weights_path(weights))
    base = pipe.lifter
    base_path = pipe.lifter_path
    dev, flip_test, base_meta = base.device, base.flip_test, base.meta

    # 1. 2D of every clip (cached), skipping clips without a usable person.
    from wsgcn_cli.data.clips import load_clip

    progress_bar = _progress_factory(quiet)
    loaded, skipped = [], []
    for clip_path in clips:
        clip_path = Path(clip_path)
        if not clip_path.exists():
            raise WsgcnError(f"clip {clip_path} does not exist")
        with _lazy_bar(progress_bar, f"detecting {clip_path.name}") as advance:
            clip = load_clip(clip_path, pipe, cache_dir=cache_dir, fallback_dir=out.parent, progress=advance)
        usable = int(clip.valid.sum())
        if usable == 0:
            reason = f"no person found in any of its {clip.kp.num_frames} frame(s)"
            warn(f"{clip_path}: {reason}; skipped")
            skipped.append({"clip": clip_path.name, "reason": reason})
            continue
        if usable < cfg.window:
            reason = f"only {usable} frame(s) with a complete person, fewer than one window ({cfg.window})"
            warn(f"{clip_path}: {reason}; skipped")
            skipped.append({"clip": clip_path.name, "reason": reason})
            continue
        info_log(f"{clip_path.name}: {usable}/{clip.kp.num_frames} frames with a person"
                 + (" (2D from cache)" if clip.from_cache and clip.cache else ""))
        loaded.append(clip)
    if not loaded:
        raise WsgcnError("no clip has a usable person: nothing to adapt to")

    frames, clip_info = _gather_frames(loaded, focal, fov_deg, cfg.holdout, cfg.chunk_frames)
    train_starts = window_starts(frames.valid & ~frames.held, frames.clip, cfg.window)
    held_idx = np.flatnonzero(frames.valid & frames.held)
    if len(train_starts) == 0:
        raise WsgcnError(f"no {cfg.window} consecutive usable training frames in the clips")
    if cfg.holdout > 0 and len(held_idx) == 0:
        raise WsgcnError("no usable held-out frames (lower --holdout or add footage)")

    # 2. Tensors on the device; the base model's output for the anchor term.
    x_all = _encode(base, frames.kp, frames.size, frames.score)
    model = base.model
    base_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    base_raw = Lifter(model, base.codec_mode, flip_test=False, device=dev).predict_normalized(x_all)
    X = torch.from_numpy(x_all).to(dev)
    KP = torch.from_numpy(np.nan_to_num(frames.kp).astype(np.float32)).to(dev)
    joints = frames.observed if cfg.reproject == "observed" else np.ones_like(frames.observed)
    W = torch.from_numpy(((np.clip(frames.score, 0.05, 1.0) if cfg.use_scores else 1.0) * joints)
                         .astype(np.float32)).to(dev)
    F = torch.from_numpy(frames.f.astype(np.float32)).to(dev)
    C = torch.from_numpy(frames.c.astype(np.float32)).to(dev)
    S = losses.keypoint_scale(KP)
    FRAME_SCALE = torch.from_numpy(((frames.fps / TEMPORAL_FPS) ** 2).astype(np.float32)).to(dev)
    BASE = torch.from_numpy(base_raw).to(dev)

    ref_source = cfg.bone_reference
    if not isinstance(ref_source, str):
        reference, ref_source = np.asarray(ref_source), "given lengths"
    elif ref_source == "h36m":
        try:
            reference = losses.reference_bone_lengths(data)
            ref_source = "Human3.6M S1 S5 S6 S7 S8 mean"
        except WsgcnError as e:
            warn(f"{e}; using the base model's own bone lengths as the reference")
            ref_source = "base"
    if ref_source == "base":
        lengths = losses.bone_lengths(torch.from_numpy(base_raw[frames.valid])).median(0).values.numpy()
        sym = losses.symmetric_bones()
        lengths[sym[:, 0]] = lengths[sym[:, 1]] = 0.5 * (lengths[sym[:, 0]] + lengths[sym[:, 1]])
        reference = lengths
        ref_source = "median of the base model's output on the clips"
    reference_t = torch.as_tensor(reference, dtype=torch.float32, device=dev)

    def evaluate_heldout() -> float:
        idx = held_idx if len(held_idx) else np.flatnonzero(frames.valid)
        lifter = Lifter(model, base.codec_mode, flip_test=flip_test, device=dev)
        return heldout_reprojection_px(lifter, x_all[idx], frames.kp[idx].astype(np.float64),
                                       frames.f[idx], frames.c[idx], joints[idx])

    # 3. Optimiser, checkpoint.
    n_windows = len(train_starts)
    steps = cfg.steps_per_epoch or min(200, max(20, math.ceil(n_windows / cfg.batch_size)))
    total_steps = steps * cfg.epochs
    adapted = adapted_parameters(model, cfg.adapt)
    opt = torch.optim.Adam(adapted, lr=cfg.lr)
    ckpt_path = out.with_name(out.name + ".ckpt")
    fingerprint = _fingerprint(base.sha256, clip_info, cfg, focal, fov_deg)
    history: list[dict] = []
    start_epoch, wall_before, bad_epochs = 0, 0.0, 0
    base_px = best_px = None
    best_epoch, best_state = 0, base_state
    if ckpt_path.is_file():
        try:
            ck = torch.load(ckpt_path, map_location=dev, weights_only=True)
        except Exception as e:  # a damaged or foreign file: start afresh
            ck = None
            warn(f"cannot read checkpoint {ckpt_path} ({type(e).__name__}); starting afresh")
        if ck is not None and ck.get("fingerprint") != fingerprint:
            warn(f"checkpoint {ckpt_path} belongs to other clips, weights or options; starting afresh")
            ck = None
        if ck is not None:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optim"])
            best_state = ck["best_model"]
            start_epoch, wall_before = int(ck["epoch"]), float(ck["wall_s"])
            base_px, best_px, best_epoch = float(ck["base_px"]), float(ck["best_px"]), int(ck["best_epoch"])
            bad_epochs, history = int(ck["bad_epochs"]), list(ck["history"])
            info_log(f"resumed from {ckpt_path} after epoch {start_epoch}")

    model.eval()  # BatchNorm keeps the base statistics; gradients still flow
    for prm in model.parameters():
        prm.requires_grad_(False)
    for prm in adapted:
        prm.requires_grad_(True)
    if base_px is None:
        base_px = best_px = evaluate_heldout()
    held_label = "held-out" if len(held_idx) else "training-frame"
    info_log(f"{len(loaded)} clip(s), {int(frames.valid.sum())} usable frames ({len(held_idx)} held out), "
             f"{n_windows} training windows of {cfg.window}; base model {held_label} reprojection "
             f"{base_px:.2f} px; {steps} steps/epoch")

    offs = torch.arange(cfg.window, device=dev)
    starts_t = torch.from_numpy(train_starts).to(dev)
    t1 = time.time()
    with progress_bar("finetuning", total_steps) as advance:
        advance(start_epoch * steps, total_steps)
        for epoch in range(start_epoch, cfg.epochs):
            if cfg.holdout > 0 and bad_epochs >= cfg.patience:
                break  # early stop (also when resuming a run that had already stopped)
            g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
            pick = torch.randint(n_windows, (steps, cfg.batch_size), generator=g).to(dev)
            sums = torch.zeros(5, device=dev)
            try:
                for s in range(steps):
                    idx = starts_t[pick[s]][:, None] + offs                       # (B, T)
                    pred = model(X[idx].reshape(-1, 17, X.shape[-1])).reshape(*idx.shape, 17, 3)
                    kp, w, f, c = KP[idx], W[idx], F[idx], C[idx]
                    root = losses.estimated_root(pred, kp, f, c, weights=w)
                    l_rep = losses.reprojection_loss(pred, root, kp, f, c, weights=w, scale=S[idx])
                    l_bone = losses.bone_length_loss(pred, reference_t)
                    l_temp = losses.temporal_smoothness_loss(pred, frame_scale=FRAME_SCALE[idx[:, 0]])
                    l_anchor = losses.anchor_loss(pred, BASE[idx])
                    loss = (cfg.w_reproj * l_rep + cfg.w_bone * l_bone + cfg.w_temporal * l_temp
                            + cfg.w_anchor * l_anchor)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.max_grad_norm > 0:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                    opt.step()
                    sums += torch.stack([loss, l_rep, l_bone, l_temp, l_anchor]).detach()
                    advance(epoch * steps + s + 1, total_steps)
            except KeyboardInterrupt:
                say(f"interrupted in epoch {epoch + 1}; {ckpt_path} holds epoch {epoch}: run again to resume")
                raise
            px = evaluate_heldout()
            mean = (sums / steps).tolist()
            improved = px < best_px * (1 - 1e-3)
            if improved:
                best_px, best_epoch, bad_epochs = px, epoch + 1, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad_epochs += 1
            history.append({"epoch": epoch + 1, "loss": mean[0], "reprojection": mean[1], "bone_m": mean[2],
                            "temporal_m": mean[3], "anchor_m": mean[4], "heldout_px": px})
            wall = wall_before + time.time() - t1
            info_log(f"epoch {epoch + 1}/{cfg.epochs}: loss {mean[0]:.4f} (reproj {mean[1]:.4f}, bone "
                     f"{1000 * mean[2]:.1f} mm, accel {1000 * mean[3]:.2f} mm/frame², anchor {1000 * mean[4]:.1f} mm), "
                     f"{held_label} reprojection {px:.2f} px (base {base_px:.2f}, best {best_px:.2f})")
            save_checkpoint({
                "model": model.state_dict(), "optim": opt.state_dict(), "best_model": best_state,
                "epoch": epoch + 1, "wall_s": wall, "base_px": base_px, "best_px": best_px,
                "best_epoch": best_epoch, "bad_epochs": bad_epochs, "history": history,
                "fingerprint": fingerprint}, ckpt_path)

    wall = wall_before + time.time() - t1
    epochs_run = len(history)
    stopped_early = epochs_run < cfg.epochs
    model.load_state_dict(best_state)
    record = {
        "base_weights": base_path.name, "base_sha256": base.sha256, "base_command": base_meta.get("command", ""),
        "clips": clip_info, "skipped": skipped,
        "camera": ({"focal_px": focal} if focal is not None else {"fov_deg": fov_deg})
        | {"principal_point": "image centre", "distortion": "none", "root": "estimated per frame (closed form)"},
        "config": asdict(cfg), "bone_reference": ref_source,
        "adapted_parameters": int(sum(p.numel() for p in adapted)),
        "total_parameters": int(sum(p.numel() for p in model.parameters())),
        "heldout_reprojection_px": {"base": base_px, "best": best_px, "best_epoch": best_epoch},
        "heldout": held_label, "epochs_run": epochs_run, "stopped_early": stopped_early,
        "steps_per_epoch": steps, "wall_time_s": round(wall, 1), "history": history,
        "unchanged_from_base": best_epoch == 0,
    }
    meta = dict(base_meta)
    meta.update({
        "command": command or "wsgcn finetune", "init_weights": str(base_path),
        "machine": machine_description(dev),
        "torch": torch.__version__, "finetune": record,
    })
    digest = wio.save(out, model.state_dict(), meta)
    card_path = write_finetune_card(out, meta, digest)
    ckpt_path.unlink(missing_ok=True)
    if best_epoch == 0:
        warn(f"no epoch improved the {held_label} reprojection error of the base model ({base_px:.2f} px): "
             f"{out} holds the base weights unchanged")
    info_log(f"wrote {out} (sha256 {digest[:12]}…) and {card_path.name}: {held_label} reprojection "
             f"{base_px:.2f} -> {best_px:.2f} px (epoch {best_epoch} of {epochs_run}), {(time.time() - t0) / 60:.1f} min")
    return {"weights": str(out), "sha256": digest, "card": str(card_path), "clips": clip_info,
            "skipped": skipped, "heldout_px": record["heldout_reprojection_px"], "history": history,
            "epochs_run": epochs_run, "stopped_early": stopped_early, "wall_s": time.time() - t0}


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


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def _progress_factory(quiet: bool):
    if quiet:
        @contextlib.contextmanager
        def none(description, total):
            yield _quiet_progress
        return none
    from wsgcn_cli.console import progress_bar

    return lambda description, total: progress_bar(description, total, False)


@contextlib.contextmanager
def _lazy_bar(factory, description: str):
    """A progress callable that opens its bar only when first called (no bar for cached 2D)."""
    with contextlib.ExitStack() as stack:
        bar = []

        def advance(done, total=None):
            if not bar:
                bar.append(stack.enter_context(factory(description, total)))
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
        f"Adam lr {cfg['lr']}, gradient norm ≤ {cfg['max_grad_norm']}, BatchNorm statistics frozen",
        f"- **adapted**: {'normalisation affine parameters and biases' if cfg.get('adapt') == 'norm_bias' else 'all weights'}"
        + (f" ({r['adapted_parameters']} of {r['total_parameters']})" if "adapted_parameters" in r else "")
        + f"; reprojection on {'the joints the detector observes directly' if cfg.get('reproject') == 'observed' else 'all 17 joints'}",
        f"- **schedule**: {r['epochs_run']} of at most {cfg['epochs']} epochs × {r['steps_per_epoch']} steps"
        + (", stopped early" if r["stopped_early"] else "") + f"; best epoch {px['best_epoch']}",
        f"- **wall time**: {r['wall_time_s'] / 60:.1f} min on {meta['machine']} (torch {meta['torch']})",
        f"- **sha256**: `{digest}`",
        "",
        f"## {r['heldout'].capitalize()} reprojection error (pixels, root estimated, all 17 joints)",
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
        lines += ["", "## Training curve", "",
                  "| epoch | loss | reprojection (rel.) | bone (mm) | accel (mm/frame²) | anchor (mm) | held-out (px) |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {h['epoch']} | {h['loss']:.4f} | {h['reprojection']:.4f} | {1000 * h['bone_m']:.1f} | "
                  f"{1000 * h['temporal_m']:.2f} | {1000 * h['anchor_m']:.1f} | {h['heldout_px']:.2f} |"
                  for h in r["history"]]
    lines.append("")
    card = weights_path.with_suffix(".md")
    with atomic_write(card) as tmp:
        Path(tmp).write_text("\n".join(lines))
    return card
