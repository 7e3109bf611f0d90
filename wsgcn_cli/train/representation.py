"""Training and evaluation of the 2D pose representation network
(:mod:`wsgcn_cli.models.representation`) on Human3.6M.

Inputs are corrupted the way real detector output is, vectorised over the batch:

* **real detector residuals**: with probability ``sh_probability`` the input is the
  sample's own Stacked-Hourglass detection (mapped to H36M-17 by
  :func:`wsgcn_cli.data.h36m.sh16_to_h36m17`); otherwise it is the projected ground
  truth plus the Stacked-Hourglass residual (detection minus ground truth) of another,
  random training sample, rescaled by the ratio of the two bodies' sizes;
* **jitter**: Gaussian noise of a random standard deviation up to ``jitter`` (in units
  of the body's RMS radius);
* **missing joints**: each joint is dropped with a per-sample probability drawn up to
  ``drop_max``, and with probability ``limb_occlusion`` a whole limb (its two or three
  distal joints) is dropped as if occluded; at least
  :data:`~wsgcn_cli.models.representation.MIN_PRESENT` joints stay;
* left/right mirroring.

Target: the projected ground truth in the network's normalised frame. Loss: mean
per-joint Euclidean error (normalised units) over all joints, present or missing, plus
``confidence_weight`` x binary cross-entropy of the confidence against
``exp(-(error / 0.1)^2)``. Training is resumable (``<out>.ckpt`` after every epoch, read
with ``weights_only=True``), seeded, CPU or CUDA.

    wsgcn train train-representation [--data ../shared/data/h36m] [--device auto]
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wsgcn_cli.data import h36m
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.lifter import resolve_device
from wsgcn_cli.models.registry import build_model
from wsgcn_cli.models.representation import MIN_PRESENT, RepresentationModel, normalize
from wsgcn_cli.skeletons import H36M17
from wsgcn_cli.train.common import machine_description, resume, save_checkpoint, save_trained

#: Distal joints of each limb (H36M-17): right leg, left leg, left arm, right arm.
LIMBS = ((2, 3), (5, 6), (12, 13), (15, 16))
CONFIDENCE_SCALE = 0.1  # normalised units: a joint this far off gets confidence target e^-1


@dataclass
class RepresentationConfig:
    """The ``[model]``, ``[data]`` and ``[train]`` tables of ``pipelines/train-representation.toml``."""

    model: str = "pose_representation"
    model_options: dict = field(default_factory=dict)
    subjects: tuple = h36m.TRAIN_SUBJECTS
    stride: int = 2
    sh_probability: float = 0.5
    jitter: float = 0.03
    drop_max: float = 0.4
    limb_occlusion: float = 0.3
    epochs: int = 8
    samples_per_epoch: int = 400_000
    batch_size: int = 512
    lr: float = 1e-3
    lr_final: float = 1e-5
    confidence_weight: float = 0.1
    flip: bool = True
    seed: int = 0
    out: str = "weights/pose_representation_h36m.safetensors"
    val_stride: int = 25

    @classmethod
    def from_pipeline(cls, spec: dict) -> "RepresentationConfig":
        """From a loaded pipeline dict; raises WsgcnError for unknown options."""
        model = dict(spec.get("model", {}))
        cfg = cls(model=model.pop("name", "pose_representation"), model_options=model)
        for key, value in {**spec.get("data", {}), **spec.get("train", {})}.items():
            if key == "dataset":
                continue
            if not hasattr(cfg, key) or key in ("model", "model_options"):
                raise WsgcnError(f"unknown option {key!r} in pipeline {spec.get('path')}")
            setattr(cfg, key, tuple(value) if isinstance(value, list) else value)
        return cfg


def body_scale(xy: torch.Tensor) -> torch.Tensor:
    """(B, J, 2) complete poses -> (B, 1, 1) RMS distance of the joints from their mean."""
    c = xy.mean(dim=1, keepdim=True)
    return torch.sqrt(((xy - c) ** 2).sum(-1).mean(dim=1, keepdim=True))[..., None].clamp(min=1e-6)


def corrupt(gt: torch.Tensor, sh: torch.Tensor, cfg: RepresentationConfig, g: torch.Generator):
    """A batch of realistic detector inputs from ground truth (see the module docstring).

    Args:
        gt: (B, 17, 2) projected ground truth, pixels; sh: (B, 17, 2) the same samples'
            Stacked-Hourglass detections (H36M-17), pixels, finite.
    Returns:
        (noisy (B, 17, 2) pixels, present (B, 17) bool).
    """
    b, j = gt.shape[:2]
    dev = gt.device

    def rand(*shape):
        return torch.rand(*shape, generator=g).to(dev)

    resid = sh - gt
    other = torch.randint(b, (b,), generator=g).to(dev)
    scale = body_scale(gt)
    transplanted = gt + resid[other] * (scale / scale[other])
    noisy = torch.where(rand(b, 1, 1) < cfg.sh_probability, sh, transplanted)
    sigma = rand(b, 1, 1) * cfg.jitter * scale
    noisy = noisy + sigma * torch.randn(b, j, 2, generator=g).to(dev)
    present = rand(b, j) >= rand(b, 1) * cfg.drop_max
    occluded = rand(b) < cfg.limb_occlusion
    limb = torch.randint(len(LIMBS), (b,), generator=g).to(dev)
    for k, joints in enumerate(LIMBS):
        hide = occluded & (limb == k)
        for jj in joints:
            present[:, jj] &= ~hide
    present |= (present.sum(dim=1, keepdim=True) < MIN_PRESENT)
    return noisy, present


def loss_terms(model, noisy, present, gt, flip_mask=None, perm=None):
    """(position loss, confidence loss, per-joint error) in normalised units for one batch."""
    u, c, s = normalize(noisy, present)
    target = (gt - c) / s
    if flip_mask is not None:
        f = flip_mask[:, None, None]
        sign = torch.tensor([-1.0, 1.0], device=u.device)
        u = torch.where(f, u[:, perm] * sign, u)
        target = torch.where(f, target[:, perm] * sign, target)
        present = torch.where(flip_mask[:, None], present[:, perm], present)
    pred, logit = model(u, present)
    err = torch.linalg.vector_norm(pred - target, dim=-1)
    conf_target = torch.exp(-(err.detach() / CONFIDENCE_SCALE) ** 2)
    conf = torch.nn.functional.binary_cross_entropy_with_logits(logit, conf_target)
    return err.mean(), conf, err


def train(cfg: RepresentationConfig, data_root=None, device: str = "auto", log=print, progress=None,
          command: str = "") -> dict:
    """Train the representation network; returns the summary (weights path, sha256, meta).

    Raises WsgcnError for missing data files.
    """
    dev = resolve_device(device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ckpt_path = out.with_name(out.name + ".ckpt")
    t_load = time.time()
    data = h36m.load(tuple(cfg.subjects), data_root, cfg.stride, with_sh=True)
    ok = np.isfinite(data.kp2d_sh).all(axis=(1, 2))
    gt_all = torch.from_numpy(data.kp2d_gt[ok].astype(np.float32)).to(dev)
    sh_all = torch.from_numpy(data.kp2d_sh[ok].astype(np.float32)).to(dev)
    val = h36m.load(h36m.TEST_SUBJECTS, data_root, cfg.val_stride, with_sh=True)
    log(f"data: {len(gt_all)} training samples ({'/'.join(cfg.subjects)}, stride {cfg.stride}), "
        f"{len(val)} validation samples, loaded in {time.time() - t_load:.0f} s")

    model = build_model(cfg.model, **cfg.model_options).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    n = len(gt_all)
    per_epoch = min(cfg.samples_per_epoch or n, n)
    steps = per_epoch // cfg.batch_size
    total = steps * cfg.epochs
    gamma = (cfg.lr_final / cfg.lr) ** (1.0 / max(total, 1))
    perm = torch.as_tensor(H36M17.flip_permutation(), device=dev)
    start, wall_before, history = resume(ckpt_path, model, opt, ("epoch", "loss", "val_in_px", "val_out_px"), log)
    t0 = time.time()
    for epoch in range(start, cfg.epochs):
        model.train()
        g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
        order = torch.randperm(n, generator=g)[: steps * cfg.batch_size].to(dev)
        total_loss = torch.zeros((), device=dev)
        try:
            for s in range(steps):
                step = epoch * steps + s
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * gamma**step
                idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
                gt, sh = gt_all[idx], sh_all[idx]
                noisy, present = corrupt(gt, sh, cfg, g)
                flip = (torch.rand(len(idx), generator=g) < 0.5).to(dev) if cfg.flip else None
                pos, conf, _ = loss_terms(model, noisy, present, gt, flip, perm)
                loss = pos + cfg.confidence_weight * conf
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total_loss += loss.detach()
                if progress is not None:
                    progress(step + 1, total)
        except KeyboardInterrupt:
            log(f"interrupted in epoch {epoch + 1}; the checkpoint holds epoch {epoch}: run again to resume")
            raise
        rep = RepresentationModel(model, dev)
        v = evaluate_2d(rep, val)
        model.train()
        row = {"epoch": epoch + 1, "loss": float(total_loss) / max(steps, 1),
               "val_in_px": v["input_px"], "val_out_px": v["output_px"]}
        history.append(row)
        wall = wall_before + time.time() - t0
        log(f"epoch {epoch + 1}/{cfg.epochs}: loss {row['loss']:.4f}, S9/S11 every {cfg.val_stride}th frame "
            f"SH 2D error {v['input_px']:.2f} -> {v['output_px']:.2f} px, lr {opt.param_groups[0]['lr']:.2e}, "
            f"{wall / 60:.1f} min")
        save_checkpoint({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": epoch + 1, "wall_s": wall,
                         "history": torch.tensor([[h[k] for k in ("epoch", "loss", "val_in_px", "val_out_px")]
                                                  for h in history], dtype=torch.float64)}, ckpt_path)
    wall = wall_before + time.time() - t0
    meta = {
        "task": "representation", "model": cfg.model, "model_options": cfg.model_options, "layout": "h36m17",
        "input": "H36M-17 2D keypoints (pixels) + presence, after the geometric layout mapping",
        "output": "H36M-17 2D keypoints (pixels) + per-joint confidence",
        "trained_on": {"dataset": "Human3.6M", "subjects": list(cfg.subjects), "stride": cfg.stride,
                       "corruption": {k: getattr(cfg, k) for k in
                                      ("sh_probability", "jitter", "drop_max", "limb_occlusion")}},
        "epochs": cfg.epochs, "samples_per_epoch": per_epoch, "batch_size": cfg.batch_size, "lr": cfg.lr,
        "lr_final": cfg.lr_final, "confidence_weight": cfg.confidence_weight, "flip_augmentation": cfg.flip,
        "seed": cfg.seed, "wall_time_s": round(wall, 1), "machine": machine_description(dev),
        "torch": torch.__version__, "command": command, "history": history,
    }
    return save_trained(out, model, meta, log)


# ----------------------------------------------------------------------------- evaluation


def drop_joints(xy: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """A copy of (N, 17, 2) keypoints with each joint set to NaN with probability ``fraction``."""
    rng = np.random.default_rng(seed)
    out = np.array(xy, np.float32, copy=True)
    out[rng.random(out.shape[:2]) < fraction] = np.nan
    return out


def evaluate_2d(rep: RepresentationModel, data: h36m.H36MSamples, drop: float = 0.0, seed: int = 0) -> dict:
    """Mean 2D error (pixels, over joints and samples) against the projected ground truth
    of the Stacked-Hourglass input and of the network's output.

    ``drop``: fraction of input joints removed at random first; the input error is then
    over the joints that remain. Samples without detections are skipped.
    """
    ok = np.isfinite(data.kp2d_sh).all(axis=(1, 2))
    gt = data.kp2d_gt[ok]
    inp = drop_joints(data.kp2d_sh[ok], drop, seed) if drop > 0 else data.kp2d_sh[ok]
    out, conf = rep(inp, np.ones(inp.shape[:2], np.float32))
    err_in = np.linalg.norm(inp - gt, axis=-1)
    err_out = np.linalg.norm(out - gt, axis=-1)
    return {"input_px": float(np.nanmean(err_in)), "output_px": float(np.nanmean(err_out)),
            "output_px_dropped_joints": float(np.nanmean(err_out[~np.isfinite(err_in)])) if drop > 0 else None,
            "mean_confidence": float(np.nanmean(conf)), "samples": int(ok.sum())}


def with_sh(data: h36m.H36MSamples, kp2d_sh: np.ndarray) -> h36m.H36MSamples:
    """``data`` with its Stacked-Hourglass 2D replaced (to evaluate a lifter on other 2D)."""
    return dataclasses.replace(data, kp2d_sh=kp2d_sh.astype(np.float32))


def train_from_spec(spec: dict, data=None, device: str = "auto", log=print, progress=None,
                    command: str = "") -> dict:
    """Train from a loaded ``train-representation`` pipeline (paths relative to the repository)."""
    from wsgcn_cli import pipeline as pipelines

    cfg = RepresentationConfig.from_pipeline(spec)
    cfg.out = str(pipelines.resolve_path(cfg.out))
    return train(cfg, data_root=data, device=device, log=log, progress=progress, command=command)

