"""Weakly supervised training on Human3.6M (WS-GCN's protocol): 3D of S1 only, 2D of S5-S8.

WS-GCN (Jiang & Chen, "WS-GCN: Integrating GCN with Weak Supervision for Enhanced 3D
Human Pose Estimation", ICCAI 2024; 49.23 mm MPJPE / 39.88 mm P-MPJPE with GT 2D):

1. **Warm-up**: ``warmup_epochs`` epochs of full supervision (MPJPE, metres) on the
   labelled subjects only (S1: 3D ground truth and its projected 2D), or start from
   ``init_weights`` trained that way.
2. **Weak phase**: every step draws a labelled batch (MPJPE on S1) *and* an unlabelled
   batch from S5-S8, for which only 2D is used: the predicted root-relative 3D is placed
   at a root position and projected through the real camera model (Human3.6M
   intrinsics with distortion, :func:`wsgcn_cli.camera.project`); the loss is the
   reprojection error divided by the person's 2D size
   (:func:`wsgcn_cli.train.losses.keypoint_scale`), plus a bone-length penalty: the
   batch-mean bone lengths of the unlabelled predictions against S1's mean ground-truth
   bone lengths (WS-GCN compares them with the labelled batch's predicted means; the
   ground-truth means are that quantity's target and less noisy) and left/right symmetry.
   Gradients are clipped to norm ``max_grad_norm`` (1, as WS-GCN).

Root of the unlabelled samples, ``root``:

* ``"gt"``: the ground-truth pelvis position in the camera frame (what WS-GCN does; it
  uses 3D of S5-S8 for that one joint, so it is not purely 2D supervision);
* ``"estimated"``: estimated from the 2D, the intrinsics and the current prediction
  (:func:`wsgcn_cli.camera.estimate_root_translation`, detached), as for real
  unlabelled footage. No 3D of S5-S8 is read beyond what the loader needs to project
  the ground-truth 2D; it is dropped before training.

The 2D of the unlabelled subjects (network input and reprojection target) is
``source``: ``"gt"`` (projected ground truth, as WS-GCN) or ``"sh"`` (Stacked-Hourglass
detections). A pipeline selects this module with ``protocol = "weak"`` in ``[train]``
(see ``pipelines/train-weak-s1.toml``); ``python -m wsgcn_cli.train.weak PIPELINE
[--set key=value ...]`` runs it directly (e.g. ``--set epochs=2`` for a smoke run).

Resumable and Ctrl-C safe like :mod:`wsgcn_cli.train.loop`: ``<weights>.ckpt`` after
every epoch (``torch.load(weights_only=True)``), weights written atomically at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wsgcn_cli import codec, weights
from wsgcn_cli.camera import load_h36m_cameras
from wsgcn_cli.data import h36m
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.lifter import resolve_device
from wsgcn_cli.models.registry import build_model
from wsgcn_cli.skeletons import H36M17
from wsgcn_cli.train import losses
from wsgcn_cli.train.common import (
    encode_h36m,
    machine_description,
    resume,
    save_checkpoint,
    save_trained,
    validate,
)


@dataclass
class WeakConfig:
    """The ``[model]``, ``[codec]``, ``[data]`` and ``[train]`` tables of a weak train pipeline.

    Attributes beyond :class:`wsgcn_cli.train.loop.TrainConfig`'s:
        subjects: labelled subjects (3D used); unlabelled_subjects: 2D only.
        source: 2D of the unlabelled subjects, ``"gt"`` or ``"sh"``.
        root: ``"gt"`` or ``"estimated"`` (see the module docstring).
        warmup_epochs: supervised epochs on the labelled subjects first (counted in
            ``epochs``); samples_per_epoch: samples drawn per epoch (labelled ones in
            warm-up epochs, unlabelled ones after); 0: all of them.
        w_reproj, w_bone: weights of the reprojection (dimensionless) and bone (metres)
            terms; the supervised MPJPE (metres) has weight 1.
        max_grad_norm: gradient clipping (0: off).
    """

    model: str = "semgcn_nonlocal"
    model_options: dict = field(default_factory=dict)
    codec: str = "root_scale"
    subjects: tuple = ("S1",)
    unlabelled_subjects: tuple = ("S5", "S6", "S7", "S8")
    source: str = "gt"
    root: str = "estimated"
    stride: int = 1
    epochs: int = 30
    warmup_epochs: int = 10
    samples_per_epoch: int = 0
    batch_size: int = 256
    lr: float = 1e-3
    lr_final: float = 1e-5
    w_reproj: float = 0.1
    w_bone: float = 1.0
    max_grad_norm: float = 1.0
    flip: bool = True
    seed: int = 0
    init_weights: str = ""
    out: str = "weights/semgcn_nl_h36m_weak_s1.safetensors"
    val_stride: int = 25

    @classmethod
    def from_pipeline(cls, spec: dict, overrides: dict | None = None) -> "WeakConfig":
        model = dict(spec["model"])
        cfg = cls(model=model.pop("name"), model_options=model, codec=spec["codec"]["mode"])
        for key, value in {**spec["data"], **spec["train"], **(overrides or {})}.items():
            if key in ("dataset", "protocol"):
                continue
            if not hasattr(cfg, key):
                raise WsgcnError(f"unknown option {key!r} in weak pipeline {spec.get('path', '')}")
            setattr(cfg, key, tuple(value) if isinstance(value, list) else value)
        cfg.check()
        return cfg

    def check(self):
        if self.codec not in codec.MODES:
            raise WsgcnError(f"unknown codec mode {self.codec!r}; known: {codec.MODES}")
        if self.source not in ("gt", "sh"):
            raise WsgcnError(f"unknown 2D source {self.source!r} for the unlabelled subjects; use gt or sh")
        if self.root not in ("gt", "estimated"):
            raise WsgcnError(f"unknown root {self.root!r}; use gt or estimated")
        if set(self.subjects) & set(self.unlabelled_subjects):
            raise WsgcnError("a subject cannot be both labelled and unlabelled")
        if set(self.subjects + self.unlabelled_subjects) & set(h36m.TEST_SUBJECTS):
            raise WsgcnError(f"test subjects {h36m.TEST_SUBJECTS} cannot be trained on")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise WsgcnError(f"warmup_epochs must be within [0, epochs], got {self.warmup_epochs}")


def _camera_table(root, data: h36m.H36MSamples):
    """Per-sample intrinsics (N, 2) f, c, (N, 3) k, (N, 2) p from the subject/camera indices."""
    from wsgcn_cli.data.h36m import FILE_CAMERAS, default_root

    cams = load_h36m_cameras(Path(root or default_root()) / FILE_CAMERAS)
    table = {name: np.stack([[getattr(cams[(s, c)], name) for c in h36m.CAMERAS] for s in data.subjects])
             for name in ("f", "c", "k", "p")}                                   # (S, 4, d)
    s, c = data.subject.astype(np.int64), data.camera.astype(np.int64)
    return {name: torch.from_numpy(t[s, c].astype(np.float32)) for name, t in table.items()}


def train_weak(cfg: WeakConfig, data_root=None, device: str = "auto", log=print,
               progress=None, command: str = "") -> dict:
    """Train a lifter with WS-GCN's weak protocol; returns the summary of :func:`wsgcn_cli.train.loop.train`.

    ``log`` receives one line per epoch; ``progress(done_steps, total_steps)`` is optional.
    Raises WsgcnError for missing data or a bad configuration.
    """
    cfg.check()
    dev = resolve_device(device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ckpt_path = out.with_name(out.name + ".ckpt")

    t_load = time.time()
    lab = h36m.load(tuple(cfg.subjects), data_root, cfg.stride, with_sh=False)
    y_l = torch.from_numpy(codec.to_metres_root_relative(lab.pose3d).astype(np.float32))
    x_l = torch.from_numpy(encode_h36m(lab.kp2d_gt, lab, cfg.codec))
    reference = losses.reference_bone_lengths(data_root, subjects=tuple(cfg.subjects), stride=1)
    del lab
    unl = h36m.load(tuple(cfg.unlabelled_subjects), data_root, cfg.stride, with_sh=cfg.source == "sh")
    kp_u = unl.kp2d(cfg.source)
    keep = np.isfinite(kp_u).all(axis=(1, 2))
    cam = {k: v[torch.from_numpy(keep)] for k, v in _camera_table(data_root, unl).items()}
    root_u = torch.from_numpy((unl.pose3d[keep, 0] / 1000.0).astype(np.float32)) if cfg.root == "gt" else None
    x_u = torch.from_numpy(encode_h36m(kp_u[keep], _Subset(unl.image_size[keep]), cfg.codec))
    kp_u = torch.from_numpy(kp_u[keep].astype(np.float32))
    del unl  # the unlabelled 3D is not used beyond the ground-truth root (root = "gt")
    s_u = losses.keypoint_scale(kp_u)
    val = h36m.load(h36m.TEST_SUBJECTS, data_root, cfg.val_stride, with_sh=True)
    log(f"data: {len(y_l)} labelled samples ({'/'.join(cfg.subjects)}, 3D), {len(x_u)} unlabelled samples "
        f"({'/'.join(cfg.unlabelled_subjects)}, {cfg.source} 2D only, root {cfg.root}), stride {cfg.stride}, "
        f"{len(val)} validation samples, loaded in {time.time() - t_load:.0f} s")
    y_l, x_l, x_u, kp_u, s_u = (t.to(dev) for t in (y_l, x_l, x_u, kp_u, s_u))
    cam = {k: v.to(dev) for k, v in cam.items()}
    root_u = root_u.to(dev) if root_u is not None else None
    ref_t = torch.as_tensor(reference, dtype=torch.float32, device=dev)

    model = build_model(cfg.model, **cfg.model_options).to(dev)
    if cfg.init_weights:
        state, meta = weights.load(cfg.init_weights)
        if meta.get("codec") != cfg.codec or meta.get("model") != cfg.model:
            raise WsgcnError(f"init weights {cfg.init_weights} are {meta.get('model')}/{meta.get('codec')}, "
                             f"not {cfg.model}/{cfg.codec}")
        model.load_state_dict(state)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    n_l, n_u = len(y_l), len(x_u)
    steps_warm = min(cfg.samples_per_epoch or n_l, n_l) // cfg.batch_size
    steps_weak = min(cfg.samples_per_epoch or n_u, n_u) // cfg.batch_size
    if steps_warm < 1 or steps_weak < 1:
        raise WsgcnError(f"batch size {cfg.batch_size} exceeds the samples per epoch")
    epoch_steps = [steps_warm if e < cfg.warmup_epochs else steps_weak for e in range(cfg.epochs)]
    first_step = np.concatenate([[0], np.cumsum(epoch_steps)])
    total_steps = int(first_step[-1])
    gamma = (cfg.lr_final / cfg.lr) ** (1.0 / max(total_steps, 1))
    perm_flip = torch.as_tensor(H36M17.flip_permutation(), device=dev)

    keys = ("epoch", "loss_mm", "val_gt_mm", "val_sh_mm", "reproj", "bone_mm")
    start_epoch, wall_before, history = resume(ckpt_path, model, opt, keys, log)

    t0 = time.time()
    B = cfg.batch_size
    for epoch in range(start_epoch, cfg.epochs):
        weak = epoch >= cfg.warmup_epochs
        model.train()
        g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
        steps = epoch_steps[epoch]
        idx_l = torch.randint(n_l, (steps, B), generator=g).to(dev)
        idx_u = torch.randint(n_u, (steps, B), generator=g).to(dev) if weak else None
        flips = (torch.rand(steps, B, generator=g) < 0.5).to(dev) if cfg.flip else None
        sums = torch.zeros(3, device=dev)
        try:
            for s in range(steps):
                step = int(first_step[epoch]) + s
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * gamma**step
                xb, yb = x_l[idx_l[s]], y_l[idx_l[s]]
                if flips is not None:
                    fb = flips[s, :, None, None]
                    xb = torch.where(fb, codec.flip_2d(xb, perm_flip), xb)
                    yb = torch.where(fb, codec.flip_3d(yb, perm_flip), yb)
                if weak:
                    iu = idx_u[s]
                    pred = model(torch.cat([xb, x_u[iu]]))
                    pred_l, pred_u = pred[:B], pred[B:]
                    kp = kp_u[iu]
                    f, c, k, p = cam["f"][iu], cam["c"][iu], cam["k"][iu], cam["p"][iu]
                    if root_u is not None:
                        root = root_u[iu]
                    else:
                        root = losses.estimated_root(pred_u, kp, f, c, k=k, p=p)
                    l_rep = losses.reprojection_loss(pred_u, root, kp, f, c, k=k, p=p, scale=s_u[iu])
                    l_bone = losses.bone_length_loss(pred_u, ref_t, batch_mean=True)
                else:
                    pred_l = model(xb)
                    l_rep = l_bone = torch.zeros((), device=dev)
                l_sup = losses.mpjpe_loss(pred_l, yb)
                loss = l_sup + cfg.w_reproj * l_rep + cfg.w_bone * l_bone
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                opt.step()
                sums += torch.stack([l_sup, l_rep, l_bone]).detach()
                if progress is not None:
                    progress(step + 1, total_steps)
        except KeyboardInterrupt:
            log(f"interrupted in epoch {epoch + 1}; the checkpoint holds epoch {epoch}: run again to resume")
            raise
        val_gt, val_sh = validate(model, cfg.codec, dev, data_root, val)
        mean = (sums / max(steps, 1)).tolist()
        history.append({"epoch": epoch + 1, "loss_mm": 1000 * mean[0], "val_gt_mm": val_gt, "val_sh_mm": val_sh,
                        "reproj": mean[1], "bone_mm": 1000 * mean[2]})
        wall = wall_before + time.time() - t0
        log(f"epoch {epoch + 1}/{cfg.epochs} ({'weak' if weak else 'warm-up'}): S1 MPJPE {1000 * mean[0]:.2f} mm"
            + (f", reprojection {mean[1]:.4f} (rel.), bone {1000 * mean[2]:.1f} mm" if weak else "")
            + f"; S9/S11 every {cfg.val_stride}th frame MPJPE gt-2D {val_gt:.2f} mm, sh-2D {val_sh:.2f} mm, "
            f"lr {opt.param_groups[0]['lr']:.2e}, {wall / 60:.1f} min")
        save_checkpoint({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": epoch + 1, "wall_s": wall,
                    "history": torch.tensor([[h[k] for k in keys] for h in history])}, ckpt_path)

    wall = wall_before + time.time() - t0
    meta = {
        "model": cfg.model, "model_options": cfg.model_options, "layout": "h36m17",
        "codec": cfg.codec, "output": "root-relative camera coordinates, metres",
        "trained_on": {"dataset": "Human3.6M", "subjects": list(cfg.subjects), "source_2d": "gt",
                       "stride": cfg.stride},
        "epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "lr_final": cfg.lr_final,
        "samples_per_epoch": cfg.samples_per_epoch, "flip_augmentation": cfg.flip, "seed": cfg.seed,
        "init_weights": cfg.init_weights, "wall_time_s": round(wall, 1),
        "machine": machine_description(dev),
        "torch": torch.__version__, "command": command, "history": history,
        "weak": {"protocol": "WS-GCN weak supervision", "unlabelled_subjects": list(cfg.unlabelled_subjects),
                 "unlabelled_source_2d": cfg.source, "root": cfg.root, "warmup_epochs": cfg.warmup_epochs,
                 "w_reproj": cfg.w_reproj, "w_bone": cfg.w_bone, "max_grad_norm": cfg.max_grad_norm,
                 "bone_reference_m": [round(float(v), 5) for v in reference],
                 "bone_reference": f"mean ground-truth bone lengths of {'/'.join(cfg.subjects)}"},
    }
    summary = save_trained(out, model, meta, log)
    ckpt_path.unlink(missing_ok=True)
    return summary


class _Subset:
    """Just ``image_size`` for :func:`_encode` on a filtered set of samples."""

    def __init__(self, image_size):
        self.image_size = image_size


def _parse_value(text: str):
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def main(argv=None):
    """``python -m wsgcn_cli.train.weak PIPELINE [--data DIR] [--device D] [--set key=value ...]``."""
    import argparse
    import shlex
    import sys

    from wsgcn_cli import pipeline as pipelines

    parser = argparse.ArgumentParser(prog="python -m wsgcn_cli.train.weak", description=main.__doc__)
    parser.add_argument("pipeline")
    parser.add_argument("--data", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a [data]/[train] option (TOML value), e.g. --set epochs=2")
    args = parser.parse_args(argv)
    try:
        spec = pipelines.load(args.pipeline, kind="train")
        overrides = {}
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                raise WsgcnError(f"--set expects KEY=VALUE, got {item!r}")
            overrides[key.strip()] = _parse_value(value.strip())
        cfg = WeakConfig.from_pipeline(spec, overrides)
        cfg.out = str(pipelines.resolve_path(cfg.out))
        if cfg.init_weights:
            cfg.init_weights = str(pipelines.resolve_path(cfg.init_weights))
        command = "python -m wsgcn_cli.train.weak " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
        train_weak(cfg, data_root=args.data, device=args.device, command=command,
                   log=lambda m: print(m, flush=True))
    except WsgcnError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: no partial output was kept", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
