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
* with probability ``complete_probability`` a sample keeps all its joints;
* left/right mirroring.

Target: the projected ground truth in the network's normalised frame. Loss: mean
per-joint Euclidean error (normalised units) over all joints, present or missing, plus
``confidence_weight`` x binary cross-entropy of the confidence against
``exp(-(error / 0.1)^2)``. Training is resumable (``<out>.ckpt`` after every epoch, read
with ``weights_only=True``), seeded, CPU or CUDA.

**Joint training with a lifter** (``lifter`` set, pipeline ``train-representation-lifter``):
the network's output goes on, differentiably, into a copy of that lifter (root-scale
codec) and both are trained together, adding ``lift_weight`` x the mean per-joint 3D
error (metres, root-relative camera coordinates) to the loss, so that the network
completes and corrects joints the way that helps the 3D most and the lifter learns which
joints to trust: with ``confidence_input`` the lifter also reads the network's
confidences (a third input channel, initialised to zero weight so training starts from
the original lifter). This is the end-to-end training of the 2D pose sub-network with the
2D->3D transformer in 3D Human Pose Machines (Wang et al., TPAMI 2019).

    wsgcn train train-representation [--data ../shared/data/h36m] [--device auto]
    wsgcn train train-representation-lifter
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wsgcn_cli import codec, weights
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
    complete_probability: float = 0.0  # probability that a sample keeps every joint (no dropout, no occlusion)
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
    init: str = ""                  # representation weights to start from ("": random initialisation)
    lifter: str = ""                # lifter weights: train a copy jointly with the network ("": 2D only)
    lifter_out: str = ""            # where the jointly trained lifter is written
    lift_weight: float = 1.0        # x mean per-joint 3D error (metres) in the joint loss
    confidence_input: bool = True   # the joint lifter reads the network's confidences too
    detected_weight: float = 0.0    # joint training: the lifter gets detected_weight x detection + rest x network
                                    # at present joints, as `lift` mixes them ([representation] detected_weight)
    val_drop: float = 0.3           # joint training: validate also with this fraction of joints dropped

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
    if cfg.complete_probability > 0:
        present |= rand(b, 1) < cfg.complete_probability
    return noisy, present


def loss_terms(model, noisy, present, gt, flip_mask=None, perm=None, lifter=None, pose3d=None,
               confidence_input: bool = False, detected_weight: float = 0.0):
    """Losses of one batch: (position loss, confidence loss, per-joint error) in
    normalised units, plus with ``lifter`` (a SemGCN, root-scale codec) and ``pose3d``
    ((B, 17, 3) root-relative metres) the lifter's mean per-joint 3D error in metres
    (else 0): (pos, conf, err, lift). The lifter's 2D input at present joints is
    ``detected_weight`` x the input + the rest x the network's output, as in
    :meth:`wsgcn_cli.models.representation.RepresentationModel.__call__`."""
    u, c, s = normalize(noisy, present)
    target = (gt - c) / s
    if flip_mask is not None:
        f = flip_mask[:, None, None]
        sign = torch.tensor([-1.0, 1.0], device=u.device)
        u = torch.where(f, u[:, perm] * sign, u)
        target = torch.where(f, target[:, perm] * sign, target)
        present = torch.where(flip_mask[:, None], present[:, perm], present)
        if pose3d is not None:
            pose3d = torch.where(f, codec.flip_3d(pose3d, perm), pose3d)
    pred, logit = model(u, present)
    err = torch.linalg.vector_norm(pred - target, dim=-1)
    conf_target = torch.exp(-(err.detach() / CONFIDENCE_SCALE) ** 2)
    conf = torch.nn.functional.binary_cross_entropy_with_logits(logit, conf_target)
    lift = torch.zeros((), device=u.device)
    if lifter is not None:
        xy = torch.where(present[..., None], detected_weight * u + (1 - detected_weight) * pred, pred)
        x = codec.root_scale_normalize_torch(xy)  # = the codec of the same 2D in pixels
        if confidence_input:
            x = torch.cat([x, torch.sigmoid(logit.detach())[..., None]], dim=-1)
        lift = torch.linalg.vector_norm(lifter(x) - pose3d, dim=-1).mean()
    return err.mean(), conf, err, lift


def joint_lifter(path: str | Path, confidence_input: bool, device) -> tuple[torch.nn.Module, dict]:
    """A trainable copy of the SemGCN lifter in ``path`` and its metadata. With
    ``confidence_input`` its input layer gets a third channel (the keypoint confidence)
    whose weights start at zero, so the copy starts out as the original lifter.

    Raises WsgcnError for weights that are not an H36M-17, root-scale SemGCN lifter.
    """
    state, meta = weights.load(path)
    if (meta.get("layout"), meta.get("codec")) != ("h36m17", "root_scale") or not str(meta.get("model")).startswith("semgcn"):
        raise WsgcnError(f"joint training needs an H36M-17 SemGCN lifter with the root_scale codec; {path} is "
                         f"{meta.get('model')!r}, layout {meta.get('layout')!r}, codec {meta.get('codec')!r}")
    options = dict(meta.get("model_options", {}))
    first = "body.0.gconv.W"  # (2, in_features, hidden): the input graph convolution
    if confidence_input and options.get("in_features", 2) == 2:
        options["in_features"] = 3
        w = state[first]
        state = {**state, first: torch.cat([w, torch.zeros_like(w[:, :1])], dim=1)}
    elif not confidence_input and options.get("in_features", 2) != 2:
        raise WsgcnError(f"lifter {path} reads confidences: set confidence_input = true")
    model = build_model(meta["model"], **options)
    model.load_state_dict(state)
    meta = {**meta, "model_options": options, "confidence_input": confidence_input}
    return model.to(device), meta


def train(cfg: RepresentationConfig, data_root=None, device: str = "auto", log=print, progress=None,
          command: str = "") -> dict:
    """Train the representation network (and, with ``cfg.lifter``, a lifter jointly with
    it); returns the summary (weights path, sha256, meta; ``lifter``: the lifter's summary).

    Raises WsgcnError for missing data or weights files.
    """
    dev = resolve_device(device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ckpt_path = out.with_name(out.name + ".ckpt")
    joint = bool(cfg.lifter)
    if joint and not cfg.lifter_out:
        raise WsgcnError("joint training with a lifter needs lifter_out (where the trained lifter is written)")
    t_load = time.time()
    data = h36m.load(tuple(cfg.subjects), data_root, cfg.stride, with_sh=True)
    ok = np.isfinite(data.kp2d_sh).all(axis=(1, 2))
    gt_all = torch.from_numpy(data.kp2d_gt[ok].astype(np.float32)).to(dev)
    sh_all = torch.from_numpy(data.kp2d_sh[ok].astype(np.float32)).to(dev)
    pose_all = torch.from_numpy(codec.to_metres_root_relative(data.pose3d[ok]).astype(np.float32)).to(dev) if joint else None
    val = h36m.load(h36m.TEST_SUBJECTS, data_root, cfg.val_stride, with_sh=True)
    log(f"data: {len(gt_all)} training samples ({'/'.join(cfg.subjects)}, stride {cfg.stride}), "
        f"{len(val)} validation samples, loaded in {time.time() - t_load:.0f} s")

    model = build_model(cfg.model, **cfg.model_options).to(dev)
    init_sha = ""
    if cfg.init:
        init = RepresentationModel.from_weights(cfg.init)
        model.load_state_dict(init.model.state_dict())
        init_sha = init.sha256
    lifter, lifter_meta = (None, {})
    trainable = model
    if joint:
        lifter, lifter_meta = joint_lifter(cfg.lifter, cfg.confidence_input, dev)
        lifter_meta["init_sha256"] = weights.sha256(cfg.lifter)
        trainable = torch.nn.ModuleDict({"net": model, "lifter": lifter})
    opt = torch.optim.Adam(trainable.parameters(), lr=cfg.lr)
    n = len(gt_all)
    per_epoch = min(cfg.samples_per_epoch or n, n)
    steps = per_epoch // cfg.batch_size
    total = steps * cfg.epochs
    gamma = (cfg.lr_final / cfg.lr) ** (1.0 / max(total, 1))
    perm = torch.as_tensor(H36M17.flip_permutation(), device=dev)
    keys = ("epoch", "loss", "val_in_px", "val_out_px") + (("lift_m", "val_mpjpe_mm", "val_drop_mpjpe_mm") if joint else ())
    start, wall_before, history = resume(ckpt_path, trainable, opt, keys, log)
    t0 = time.time()
    for epoch in range(start, cfg.epochs):
        trainable.train()
        g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
        order = torch.randperm(n, generator=g)[: steps * cfg.batch_size].to(dev)
        total_loss = torch.zeros((), device=dev)
        total_lift = torch.zeros((), device=dev)
        try:
            for s in range(steps):
                step = epoch * steps + s
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * gamma**step
                idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
                gt, sh = gt_all[idx], sh_all[idx]
                noisy, present = corrupt(gt, sh, cfg, g)
                flip = (torch.rand(len(idx), generator=g) < 0.5).to(dev) if cfg.flip else None
                pos, conf, _, lift = loss_terms(model, noisy, present, gt, flip, perm, lifter,
                                                pose_all[idx] if joint else None, cfg.confidence_input,
                                                cfg.detected_weight)
                loss = pos + cfg.confidence_weight * conf + cfg.lift_weight * lift
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total_loss += loss.detach()
                total_lift += lift.detach()
                if progress is not None:
                    progress(step + 1, total)
        except KeyboardInterrupt:
            log(f"interrupted in epoch {epoch + 1}; the checkpoint holds epoch {epoch}: run again to resume")
            raise
        rep = RepresentationModel(model, dev)
        v = evaluate_2d(rep, val)
        row = {"epoch": epoch + 1, "loss": float(total_loss) / max(steps, 1),
               "val_in_px": v["input_px"], "val_out_px": v["output_px"]}
        line = ""
        if joint:
            from wsgcn_cli.lifter import Lifter

            lf = Lifter(lifter, "root_scale", flip_test=True, device=dev, meta=lifter_meta)
            row["lift_m"] = float(total_lift) / max(steps, 1)
            row["val_mpjpe_mm"] = evaluate_3d(rep, lf, val, detected_weight=cfg.detected_weight)["mpjpe_mm"]
            row["val_drop_mpjpe_mm"] = evaluate_3d(rep, lf, val, drop=cfg.val_drop,
                                                   detected_weight=cfg.detected_weight)["mpjpe_mm"]
            line = (f", 3D error {1000 * row['lift_m']:.1f} mm, S9/S11 MPJPE {row['val_mpjpe_mm']:.2f} mm, "
                    f"{cfg.val_drop:.0%} dropped {row['val_drop_mpjpe_mm']:.2f} mm")
        trainable.train()
        history.append(row)
        wall = wall_before + time.time() - t0
        log(f"epoch {epoch + 1}/{cfg.epochs}: loss {row['loss']:.4f}, S9/S11 every {cfg.val_stride}th frame "
            f"SH 2D error {v['input_px']:.2f} -> {v['output_px']:.2f} px{line}, lr {opt.param_groups[0]['lr']:.2e}, "
            f"{wall / 60:.1f} min")
        save_checkpoint({"model": trainable.state_dict(), "optim": opt.state_dict(), "epoch": epoch + 1, "wall_s": wall,
                         "history": torch.tensor([[h[k] for k in keys] for h in history], dtype=torch.float64)},
                        ckpt_path)
    wall = wall_before + time.time() - t0
    trained_on = {"dataset": "Human3.6M", "subjects": list(cfg.subjects), "stride": cfg.stride,
                  "corruption": {k: getattr(cfg, k) for k in ("sh_probability", "jitter", "drop_max", "limb_occlusion",
                                                                     "complete_probability")}}
    common = {"epochs": cfg.epochs, "samples_per_epoch": per_epoch, "batch_size": cfg.batch_size, "lr": cfg.lr,
              "lr_final": cfg.lr_final, "flip_augmentation": cfg.flip, "seed": cfg.seed, "wall_time_s": round(wall, 1),
              "machine": machine_description(dev), "torch": torch.__version__, "command": command, "history": history}
    lifter_summary = None
    if joint:
        lifter_out = Path(cfg.lifter_out)
        lifter_meta = {**lifter_meta, **common,
                       "input": "H36M-17 2D keypoints of the representation network (root_scale codec) + its "
                                "per-joint confidence" if cfg.confidence_input else
                                "H36M-17 2D keypoints of the representation network (root_scale codec)",
                       "trained_on": {**trained_on, "source_2d": "representation network output from corrupted gt+sh"},
                       "init_weights": Path(cfg.lifter).name, "lift_weight": cfg.lift_weight,
                       "representation": {"weights": out.name, "detected_weight": cfg.detected_weight}}
        lifter_summary = save_trained(lifter_out, lifter, lifter_meta, log)
    meta = {
        "task": "representation", "model": cfg.model, "model_options": cfg.model_options, "layout": "h36m17",
        "input": "H36M-17 2D keypoints (pixels) + presence, after the geometric layout mapping",
        "output": "H36M-17 2D keypoints (pixels) + per-joint confidence",
        "trained_on": trained_on, "confidence_weight": cfg.confidence_weight, **common,
        **({"init_weights": Path(cfg.init).name, "init_sha256": init_sha} if cfg.init else {}),
        **({"lifter": {"weights": Path(cfg.lifter_out).name, "sha256": lifter_summary["sha256"],
                       "init_weights": Path(cfg.lifter).name, "lift_weight": cfg.lift_weight,
                       "confidence_input": cfg.confidence_input, "detected_weight": cfg.detected_weight}}
           if joint else {}),
    }
    summary = save_trained(out, model, meta, log)
    if lifter_summary is not None:
        summary["lifter"] = lifter_summary
    return summary


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


def evaluate_3d(rep: RepresentationModel, lifter, data: h36m.H36MSamples, drop: float = 0.0, seed: int = 0,
                detected_weight: float = 0.0) -> dict:
    """The lifter's results (:func:`wsgcn_cli.evaluate.evaluate`, per-action MPJPE etc.)
    on the network's output for the Stacked-Hourglass detections of ``data``, each frame on
    its own, with ``drop`` of the input joints removed at random first; the network's
    confidences go to the lifter (a :class:`wsgcn_cli.lifter.Lifter`, which reads them only
    if it is a ``confidence_input`` lifter)."""
    from wsgcn_cli.evaluate import evaluate

    kp = drop_joints(data.kp2d_sh, drop, seed) if drop > 0 else data.kp2d_sh
    xy, conf = rep(kp, np.ones(kp.shape[:2], np.float32), detected_weight=detected_weight)
    return evaluate(lifter, source="sh", data=with_sh(data, xy), score=conf)


def with_sh(data: h36m.H36MSamples, kp2d_sh: np.ndarray) -> h36m.H36MSamples:
    """``data`` with its Stacked-Hourglass 2D replaced (to evaluate a lifter on other 2D)."""
    return dataclasses.replace(data, kp2d_sh=kp2d_sh.astype(np.float32))


def train_from_spec(spec: dict, data=None, device: str = "auto", log=print, progress=None,
                    command: str = "") -> dict:
    """Train from a loaded ``train-representation`` pipeline (paths relative to the repository)."""
    from wsgcn_cli import pipeline as pipelines

    cfg = RepresentationConfig.from_pipeline(spec)
    cfg.out = str(pipelines.resolve_path(cfg.out))
    for key in ("init", "lifter", "lifter_out"):
        if getattr(cfg, key):
            setattr(cfg, key, str(pipelines.resolve_path(getattr(cfg, key))))
    for key in ("init", "lifter"):
        if getattr(cfg, key) and not Path(getattr(cfg, key)).is_file():
            raise WsgcnError(f"{key} weights {getattr(cfg, key)} not found (pipeline {spec.get('path')})")
    return train(cfg, data_root=data, device=device, log=log, progress=progress, command=command)

