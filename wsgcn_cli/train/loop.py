"""Supervised training of a lifter on Human3.6M (``wsgcn train PIPELINE``).

Written for throughput on a 2-core CPU as well as CUDA: the whole training set lives
in memory as two tensors (normalised 2D inputs, root-relative 3D targets in metres),
batches are gathered with one index operation, augmentation (left/right mirroring,
the 2D source per sample) is vectorised, and there is no per-sample Python.

Resumable: a checkpoint (model, optimiser, epoch, RNG) is written atomically after
every epoch beside the output weights as ``<weights>.ckpt``; running the same command
again resumes from it. Ctrl-C stops after writing a checkpoint of the last full epoch.
The schedule is Adam with an exponential learning-rate decay from ``lr`` to
``lr_final`` over the whole run, a function of the step only, so resuming is exact.

Loss: MPJPE (mean per-joint Euclidean distance) in metres, as VideoPose3D trains.
"""

from __future__ import annotations

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
from wsgcn_cli.skeletons import H36M17
from wsgcn_cli.train.common import (
    encode_h36m,
    machine_description,
    resume,
    save_checkpoint,
    save_trained,
    validate,
)


@dataclass
class TrainConfig:
    """The ``[model]``, ``[codec]``, ``[data]`` and ``[train]`` tables of a train pipeline."""

    model: str = "semgcn_nonlocal"
    model_options: dict = field(default_factory=dict)
    codec: str = "root_scale"
    subjects: tuple = h36m.TRAIN_SUBJECTS
    source: str = "gt"  # "gt", "sh" or "gt+sh" (each sample draws one of the two)
    sh_probability: float = 0.5
    stride: int = 1
    epochs: int = 10
    samples_per_epoch: int = 0  # 0: all training samples
    batch_size: int = 512
    lr: float = 1e-3
    lr_final: float = 1e-5
    weight_decay: float = 0.0
    flip: bool = True
    seed: int = 0
    init_weights: str = ""  # start from these weights (fine-tuning)
    out: str = "weights/lifter.safetensors"
    val_stride: int = 25

    @classmethod
    def from_pipeline(cls, spec: dict) -> "TrainConfig":
        model = dict(spec["model"])
        data, train = spec["data"], spec["train"]
        cfg = cls(model=model.pop("name"), model_options=model, codec=spec["codec"]["mode"])
        for key, value in {**data, **train}.items():
            if key in ("dataset",):
                continue
            if not hasattr(cfg, key):
                raise WsgcnError(f"unknown option {key!r} in pipeline {spec['path']}")
            setattr(cfg, key, tuple(value) if isinstance(value, list) else value)
        if cfg.codec not in codec.MODES:
            raise WsgcnError(f"unknown codec mode {cfg.codec!r}; known: {codec.MODES}")
        if cfg.source not in ("gt", "sh", "gt+sh"):
            raise WsgcnError(f"unknown 2D source {cfg.source!r}; use gt, sh or gt+sh")
        return cfg


def train(cfg: TrainConfig, data_root=None, device: str = "auto", log=print,
          progress=None, command: str = "") -> dict:
    """Train a lifter; returns a summary dict (weights path, sha256, epochs, wall time).

    ``log`` receives one line per epoch; ``progress`` (optional) is a callable
    ``progress(done_steps, total_steps)``.
    """
    dev = resolve_device(device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ckpt_path = out.with_name(out.name + ".ckpt")

    t_load = time.time()
    data = h36m.load(tuple(cfg.subjects), data_root, cfg.stride, with_sh=cfg.source != "gt")
    y = torch.from_numpy(codec.to_metres_root_relative(data.pose3d).astype(np.float32))
    x_gt = torch.from_numpy(encode_h36m(data.kp2d_gt, data, cfg.codec))
    x_sh = torch.from_numpy(encode_h36m(data.kp2d_sh, data, cfg.codec)) if cfg.source != "gt" else None
    if x_sh is not None and not torch.isfinite(x_sh).all():
        keep = torch.isfinite(x_sh).all(dim=(1, 2))
        y, x_gt, x_sh = y[keep], x_gt[keep], x_sh[keep]
    val = h36m.load(h36m.TEST_SUBJECTS, data_root, cfg.val_stride, with_sh=True)
    log(f"data: {len(y)} training samples ({'/'.join(cfg.subjects)}, stride {cfg.stride}, "
        f"2D {cfg.source}), {len(val)} validation samples, loaded in {time.time() - t_load:.0f} s")
    y, x_gt = y.to(dev), x_gt.to(dev)
    x_sh = x_sh.to(dev) if x_sh is not None else None

    model = build_model(cfg.model, **cfg.model_options).to(dev)
    if cfg.init_weights:
        state, meta = weights.load(cfg.init_weights)
        if meta.get("codec") != cfg.codec or meta.get("model") != cfg.model:
            raise WsgcnError(f"init weights {cfg.init_weights} are {meta.get('model')}/{meta.get('codec')}, "
                             f"not {cfg.model}/{cfg.codec}")
        model.load_state_dict(state)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(y)
    per_epoch = min(cfg.samples_per_epoch or n, n)
    steps_per_epoch = per_epoch // cfg.batch_size
    total_steps = steps_per_epoch * cfg.epochs
    gamma = (cfg.lr_final / cfg.lr) ** (1.0 / max(total_steps, 1))
    perm_flip = torch.as_tensor(H36M17.flip_permutation(), device=dev)

    start_epoch, wall_before, history = resume(ckpt_path, model, opt, ("epoch", "loss_mm", "val_gt_mm", "val_sh_mm"),
                                               log)

    t0 = time.time()
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
        order = torch.randperm(n, generator=g)[: steps_per_epoch * cfg.batch_size].to(dev)
        flips = torch.rand(len(order), generator=g).to(dev) < 0.5 if cfg.flip else None
        use_sh = (torch.rand(len(order), generator=g).to(dev) < cfg.sh_probability
                  if cfg.source == "gt+sh" else None)
        loss_sum = torch.zeros((), device=dev)
        try:
            for s in range(steps_per_epoch):
                step = epoch * steps_per_epoch + s
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * gamma**step
                idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
                if cfg.source == "sh":
                    xb = x_sh[idx]
                elif cfg.source == "gt+sh":
                    sel = use_sh[s * cfg.batch_size : (s + 1) * cfg.batch_size, None, None]
                    xb = torch.where(sel, x_sh[idx], x_gt[idx])
                else:
                    xb = x_gt[idx]
                yb = y[idx]
                if flips is not None:
                    fb = flips[s * cfg.batch_size : (s + 1) * cfg.batch_size, None, None]
                    xb = torch.where(fb, codec.flip_2d(xb, perm_flip), xb)
                    yb = torch.where(fb, codec.flip_3d(yb, perm_flip), yb)
                pred = model(xb)
                loss = torch.linalg.vector_norm(pred - yb, dim=-1).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += loss.detach()
                if progress is not None:
                    progress(step + 1, total_steps)
        except KeyboardInterrupt:
            log(f"interrupted in epoch {epoch + 1}; the checkpoint holds epoch {epoch}: run again to resume")
            raise
        val_gt, val_sh = validate(model, cfg.codec, dev, data_root, val)
        loss_mm = 1000 * float(loss_sum) / max(steps_per_epoch, 1)
        history.append({"epoch": epoch + 1, "loss_mm": loss_mm, "val_gt_mm": val_gt, "val_sh_mm": val_sh})
        wall = wall_before + time.time() - t0
        log(f"epoch {epoch + 1}/{cfg.epochs}: train MPJPE {loss_mm:.2f} mm, "
            f"S9/S11 every {cfg.val_stride}th frame MPJPE gt-2D {val_gt:.2f} mm, sh-2D {val_sh:.2f} mm, "
            f"lr {opt.param_groups[0]['lr']:.2e}, {wall / 60:.1f} min")
        save_checkpoint({
            "model": model.state_dict(), "optim": opt.state_dict(), "epoch": epoch + 1,
            "wall_s": wall,
            "history": torch.tensor([[h["epoch"], h["loss_mm"], h["val_gt_mm"], h["val_sh_mm"]] for h in history]),
        }, ckpt_path)

    wall = wall_before + time.time() - t0
    meta = {
        "model": cfg.model, "model_options": cfg.model_options, "layout": "h36m17",
        "codec": cfg.codec, "output": "root-relative camera coordinates, metres",
        "trained_on": {"dataset": "Human3.6M", "subjects": list(cfg.subjects), "source_2d": cfg.source,
                       "stride": cfg.stride},
        "epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "lr_final": cfg.lr_final,
        "samples_per_epoch": per_epoch, "flip_augmentation": cfg.flip, "seed": cfg.seed,
        "init_weights": cfg.init_weights, "wall_time_s": round(wall, 1),
        "machine": machine_description(dev),
        "torch": torch.__version__, "command": command, "history": history,
    }
    return save_trained(out, model, meta, log)
