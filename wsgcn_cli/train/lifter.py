"""Supervised training of a lifter on Human3.6M: the ``lifter`` task of the Trainer.

The whole training set lives in memory (on the training device) as tensors: normalised
2D inputs and root-relative 3D targets in metres (camera coordinates). A batch is one
index operation; augmentation is vectorised over the batch:

* left/right mirroring (``flip``);
* the 2D source per sample (``source = "gt+sh"``: the Stacked-Hourglass detection of
  the frame with probability ``sh_probability``, else the projected ground truth);
* virtual cameras (``virtual_probability``), bone-length scaling and detector-like noise:
  see :mod:`wsgcn_cli.data.augment`.

Loss: MPJPE (mean per-joint Euclidean distance) in metres, as VideoPose3D trains.
Validation after each epoch: MPJPE / P-MPJPE (mm) on S9/S11, every ``val_stride``-th
frame, ground-truth and Stacked-Hourglass 2D, flip test as ``wsgcn eval`` (per-action
averages; our copy lacks S9 "Discussion 1").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from wsgcn_cli import codec, weights
from wsgcn_cli.data import h36m
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.models.registry import build_model
from wsgcn_cli.skeletons import H36M17
from wsgcn_cli.train.trainer import Task


@dataclass
class LifterConfig:
    """The ``[model]``, ``[codec]``, ``[data]`` tables and the task's ``[train]`` keys.

    Attributes:
        source: training 2D, ``"gt"``, ``"sh"`` or ``"gt+sh"``; sh_probability: share of
            SH samples with ``"gt+sh"``. stride: every n-th frame of the training takes.
        virtual_probability: share of samples seen through a random virtual camera
            instead of their real one (0: off); bone_scale: std of the per-bone length
            factors (0: off); joint_noise: std of per-joint 2D noise in units of the
            pose's RMS size; gross_error_probability: per-joint probability of a gross
            error (see :mod:`wsgcn_cli.data.augment`).
        val_stride: validation every n-th frame of S9/S11.
    """

    model: str = "semgcn_nonlocal"
    model_options: dict = field(default_factory=dict)
    codec: str = "root_scale"
    subjects: tuple = h36m.TRAIN_SUBJECTS
    source: str = "gt"
    sh_probability: float = 0.5
    stride: int = 1
    flip: bool = True
    virtual_probability: float = 0.0
    bone_scale: float = 0.0
    joint_noise: float = 0.0
    gross_error_probability: float = 0.0
    val_stride: int = 10

    @classmethod
    def from_spec(cls, spec: dict, train_rest: dict) -> "LifterConfig":
        model = dict(spec["model"])
        cfg = cls(model=model.pop("name"), model_options=model, codec=spec["codec"]["mode"])
        names = {f.name for f in fields(cls)}
        for key, value in {**spec["data"], **train_rest}.items():
            if key in ("dataset",):
                continue
            if key not in names:
                raise WsgcnError(f"unknown option {key!r} in pipeline {spec.get('path', '')}")
            setattr(cfg, key, tuple(value) if isinstance(value, list) else value)
        if cfg.codec not in codec.MODES:
            raise WsgcnError(f"unknown codec mode {cfg.codec!r}; known: {codec.MODES}")
        if cfg.source not in ("gt", "sh", "gt+sh"):
            raise WsgcnError(f"unknown 2D source {cfg.source!r}; use gt, sh or gt+sh")
        if cfg.virtual_probability and cfg.codec != "root_scale":
            raise WsgcnError("virtual cameras need the root_scale codec (their images have no fixed size)")
        return cfg

    def changed(self) -> dict:
        """Settings that differ from the defaults (a checkpoint's fingerprint)."""
        base = type(self)()
        return {k: v for k, v in asdict(self).items() if v != getattr(base, k)}


def encode_h36m(kp: np.ndarray, data: h36m.H36MSamples, mode: str) -> np.ndarray:
    """Lifter inputs (N, 17, 2) from Human3.6M pixel keypoints, per-sample image sizes."""
    return codec.encode_2d(kp, mode, data.image_size[:, 0, None, None].astype(np.float32),
                           data.image_size[:, 1, None, None].astype(np.float32))


class LifterTask(Task):
    """2D -> 3D lifter, supervised on Human3.6M (see the module docstring)."""

    name = "lifter"

    def __init__(self, cfg: LifterConfig, data_root=None, log=print):
        self.cfg, self.data_root, self.log = cfg, data_root, log

    def setup(self, trainer) -> None:
        cfg, dev = self.cfg, trainer.device
        self.trainer = trainer
        data = h36m.load(tuple(cfg.subjects), self.data_root, cfg.stride, with_sh=cfg.source != "gt")
        y = torch.from_numpy(codec.to_metres_root_relative(data.pose3d).astype(np.float32))
        x_gt = torch.from_numpy(encode_h36m(data.kp2d_gt, data, cfg.codec))
        x_sh = torch.from_numpy(encode_h36m(data.kp2d_sh, data, cfg.codec)) if cfg.source != "gt" else None
        keep = torch.ones(len(y), dtype=torch.bool)
        if x_sh is not None:
            keep = torch.isfinite(x_sh).all(dim=(1, 2))
        self.y, self.x_gt = y[keep].to(dev), x_gt[keep].to(dev)
        self.x_sh = x_sh[keep].to(dev) if x_sh is not None else None
        self.augment = None
        if cfg.virtual_probability or cfg.bone_scale or cfg.joint_noise or cfg.gross_error_probability:
            from wsgcn_cli.data.augment import LifterAugment

            self.augment = LifterAugment.from_h36m(data, keep.numpy(), cfg, dev)
        self.val = h36m.load(h36m.TEST_SUBJECTS, self.data_root, cfg.val_stride, with_sh=True)
        self.perm = torch.as_tensor(H36M17.flip_permutation(), device=dev)
        self.model = build_model(cfg.model, **cfg.model_options).to(dev)
        self.modules = {"model": self.model}
        self.log(f"data: {len(self.y)} training samples ({'/'.join(cfg.subjects)}, stride {cfg.stride}, "
                 f"2D {cfg.source}), {len(self.val)} validation samples (every {cfg.val_stride}th frame)")

    def init_from(self, path: str) -> dict:
        state, meta = weights.load(path)
        if meta.get("codec") != self.cfg.codec or meta.get("model") != self.cfg.model:
            raise WsgcnError(f"init weights {path} are {meta.get('model')}/{meta.get('codec')}, "
                             f"not {self.cfg.model}/{self.cfg.codec}")
        self.model.load_state_dict(state)
        return meta

    def num_samples(self) -> int:
        return len(self.y)

    def fingerprint(self) -> dict:
        return self.cfg.changed()

    def loss(self, idx, gen):
        cfg = self.cfg
        n = len(idx)
        dev = idx.device
        if cfg.source == "sh":
            xb = self.x_sh[idx]
        elif cfg.source == "gt+sh":
            sel = torch.rand(n, 1, 1, generator=gen, device=dev) < cfg.sh_probability
            xb = torch.where(sel, self.x_sh[idx], self.x_gt[idx])
        else:
            xb = self.x_gt[idx]
        yb = self.y[idx]
        if self.augment is not None:
            xb, yb = self.augment(idx, xb, yb, gen)
        if cfg.flip:
            fb = torch.rand(n, 1, 1, generator=gen, device=dev) < 0.5
            xb = torch.where(fb, codec.flip_2d(xb, self.perm), xb)
            yb = torch.where(fb, codec.flip_3d(yb, self.perm), yb)
        pred = self.model(xb).float()
        loss = torch.linalg.vector_norm(pred - yb, dim=-1).mean()
        return loss, {}

    def validate(self) -> dict[str, float]:
        from wsgcn_cli.evaluate import evaluate
        from wsgcn_cli.lifter import Lifter

        lifter = Lifter(self.model, self.cfg.codec, flip_test=True, device=self.trainer.device)
        out = {}
        for source in ("gt", "sh"):
            r = evaluate(lifter, root=self.data_root, source=source, data=self.val)
            out[f"val_{source}_mpjpe"], out[f"val_{source}_p_mpjpe"] = r["mpjpe_mm"], r["p_mpjpe_mm"]
        self.model.train()
        return out

    def save(self, out: Path, meta: dict) -> str:
        cfg = self.cfg
        meta = {
            "model": cfg.model, "model_options": cfg.model_options, "layout": "h36m17", "codec": cfg.codec,
            "output": "root-relative camera coordinates, metres", "task": self.name,
            "trained_on": {"dataset": "Human3.6M", "subjects": list(cfg.subjects), "source_2d": cfg.source,
                           "stride": cfg.stride},
            "augmentation": {k: v for k, v in asdict(cfg).items()
                             if k in ("flip", "sh_probability", "virtual_probability", "bone_scale", "joint_noise",
                                      "gross_error_probability")},
            "flip_augmentation": cfg.flip, "val_stride": cfg.val_stride, **meta,
        }
        return weights.save(out, self.model.state_dict(), meta)
