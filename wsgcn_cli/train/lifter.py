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

Weak term (WS-GCN: Jiang & Chen, "WS-GCN: Integrating GCN with Weak Supervision for
Enhanced 3D Human Pose Estimation", ICCAI 2024; 49.23 mm MPJPE with GT 2D), on when
``unlabelled_subjects`` is set: after ``warmup_epochs`` supervised epochs on the labelled
``subjects``, every step also lifts a batch of the unlabelled subjects, of which only the
2D is used (``unlabelled_source``): the predicted root-relative 3D (with the
``virtual_camera`` codec turned from the camera that looks at the root into the real one)
is placed at a root position and projected through the real camera model (Human3.6M intrinsics with
distortion, :func:`wsgcn_cli.camera.project`); the loss adds ``w_reproj`` x the
reprojection error divided by the person's 2D size
(:func:`wsgcn_cli.train.losses.keypoint_scale`) and ``w_bone`` x a bone-length penalty (the
batch-mean bone lengths of the unlabelled predictions against the labelled subjects'
mean ground-truth bone lengths, and left/right symmetry; metres). Root of the unlabelled
samples, ``root``: ``"gt"``, the ground-truth pelvis position (what WS-GCN does: one joint
of 3D per unlabelled frame), or ``"estimated"`` from the 2D, the intrinsics and the
current prediction (:func:`wsgcn_cli.camera.estimate_root_translation`, detached), as for
real unlabelled footage: then no 3D of the unlabelled subjects is kept. With
``w_multiview`` > 0 the unlabelled batch is drawn as pairs of cameras that filmed the
same frame (Human3.6M's four synchronised views; frames where all four have 2D), and
the loss adds ``w_multiview`` x :func:`wsgcn_cli.train.losses.multiview_consistency_loss`
(metres): the two predictions must agree up to a rotation. It uses only that the views
are synchronised, no extrinsics and no 3D.
Validation after each epoch: MPJPE / P-MPJPE (mm) on S9/S11, every ``val_stride``-th
frame, ground-truth and Stacked-Hourglass 2D, flip test as ``wsgcn eval`` (per-action
averages; our copy lacks S9 "Discussion 1").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from wsgcn_cli import codec, weights
from wsgcn_cli.data import h36m
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.models.registry import build_model
from wsgcn_cli.skeletons import H36M17
from wsgcn_cli.train import losses
from wsgcn_cli.train.common import changed_settings, fill_config, load_init
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
        unlabelled_subjects, unlabelled_source, root, warmup_epochs, w_reproj, w_bone,
            w_multiview: the weak term (module docstring); no unlabelled subjects: off.
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
    unlabelled_subjects: tuple = ()
    unlabelled_source: str = "gt"
    root: str = "estimated"
    warmup_epochs: int = 0
    w_reproj: float = 0.1
    w_bone: float = 1.0
    w_multiview: float = 0.0

    @classmethod
    def from_spec(cls, spec: dict, train_rest: dict) -> "LifterConfig":
        """From a loaded train pipeline and the ``[train]`` keys the Schedule left over.
        Raises WsgcnError for unknown or inconsistent options."""
        model = dict(spec["model"])
        cfg = cls(model=model.pop("name"), model_options=model, codec=spec["codec"]["mode"])
        items = {k: v for k, v in {**spec["data"], **train_rest}.items() if k != "dataset"}
        fill_config(cfg, items, spec.get("path", ""), fixed=("model", "model_options", "codec"))
        if cfg.codec not in codec.MODES:
            raise WsgcnError(f"unknown codec mode {cfg.codec!r}; known: {codec.MODES}")
        if cfg.source not in ("gt", "sh", "gt+sh"):
            raise WsgcnError(f"unknown 2D source {cfg.source!r}; use gt, sh or gt+sh")
        if cfg.virtual_probability and cfg.codec == "screen":
            raise WsgcnError("virtual_probability (synthetic cameras) needs the root_scale or virtual_camera codec, "
                             "not 'screen' (their images have no fixed size)")
        if cfg.unlabelled_subjects:
            if cfg.unlabelled_source not in ("gt", "sh"):
                raise WsgcnError(f"unknown unlabelled_source {cfg.unlabelled_source!r}; use gt or sh")
            if cfg.root not in ("gt", "estimated"):
                raise WsgcnError(f"unknown root {cfg.root!r}; use gt or estimated")
            if set(cfg.subjects) & set(cfg.unlabelled_subjects):
                raise WsgcnError("a subject cannot be both labelled and unlabelled")
        if (set(cfg.subjects) | set(cfg.unlabelled_subjects)) & set(h36m.TEST_SUBJECTS):
            raise WsgcnError(f"test subjects {h36m.TEST_SUBJECTS} cannot be trained on")
        return cfg


def encode_h36m(kp: np.ndarray, data: h36m.H36MSamples, mode: str, root=None) -> np.ndarray:
    """Lifter inputs (N, 17, 2) from Human3.6M pixel keypoints, per-sample image sizes and
    (``"virtual_camera"``) per-sample intrinsics from the cameras file under ``root``.
    NaN keypoints give NaN inputs."""
    cam = h36m.intrinsics(data, root) if mode == "virtual_camera" else {"f": None, "c": None}
    return codec.encode_2d(kp, mode, data.image_size[:, 0, None, None].astype(np.float32),
                           data.image_size[:, 1, None, None].astype(np.float32), cam["f"], cam["c"])


def camera_table(root, data: h36m.H36MSamples) -> dict[str, torch.Tensor]:
    """Per-sample intrinsics of Human3.6M samples as tensors (see :func:`h36m.intrinsics`)."""
    return {name: torch.from_numpy(t) for name, t in h36m.intrinsics(data, root).items()}


def synchronised_views(data: h36m.H36MSamples, keep: np.ndarray) -> np.ndarray:
    """Frames seen by all of Human3.6M's cameras: (G, C) indices into ``data[keep]``, one
    row per (subject, take, frame), one column per camera in ``h36m.CAMERAS`` order.
    Frames where some camera's sample is not kept (e.g. no detection) are left out.

    Raises:
        WsgcnError: no frame has all its views.
    """
    takes = np.array([s.rsplit("/", 1)[0] for s in data.sequences])
    _, take_of_sequence = np.unique(takes, return_inverse=True)
    key = take_of_sequence[data.sequence].astype(np.int64) * (1 << 32) + data.frame.astype(np.int64)
    index = np.full(len(data), -1, dtype=np.int64)
    index[keep] = np.arange(int(keep.sum()))
    groups, group_of = np.unique(key, return_inverse=True)
    views = np.full((len(groups), len(h36m.CAMERAS)), -1, dtype=np.int64)
    views[group_of, data.camera] = index
    views = views[(views >= 0).all(1)]
    if not len(views):
        raise WsgcnError("w_multiview: no frame of the unlabelled subjects has 2D in every camera")
    return views


class LifterTask(Task):
    """2D -> 3D lifter, supervised on Human3.6M (see the module docstring)."""

    name = "lifter"
    curve_unit = "MPJPE / P-MPJPE (mm)"

    def __init__(self, cfg: LifterConfig, data_root=None, log=print):
        self.cfg, self.data_root, self.log = cfg, data_root, log

    @classmethod
    def from_spec(cls, spec: dict, train_rest: dict, data_root=None, log=print) -> "LifterTask":
        """From a loaded train pipeline and its ``[train]`` keys the Schedule left over."""
        return cls(LifterConfig.from_spec(spec, train_rest), data_root=data_root, log=log)

    def setup(self, trainer) -> None:
        cfg, dev = self.cfg, trainer.device
        self.trainer = trainer
        data = h36m.load(tuple(cfg.subjects), self.data_root, cfg.stride, with_sh=cfg.source != "gt")
        y = codec.to_metres_root_relative(data.pose3d).astype(np.float32)
        x_gt = torch.from_numpy(encode_h36m(data.kp2d_gt, data, cfg.codec, self.data_root))
        x_sh = torch.from_numpy(encode_h36m(data.kp2d_sh, data, cfg.codec, self.data_root)) if cfg.source != "gt" else None
        if cfg.codec == "virtual_camera":  # targets in the virtual camera of the ground-truth root
            cam = h36m.intrinsics(data, self.data_root)
            y = codec.to_virtual_camera(y, codec.virtual_camera_rotation(data.kp2d_gt[:, codec.ROOT], cam["f"], cam["c"]))
        y = torch.from_numpy(y)
        keep = torch.ones(len(y), dtype=torch.bool)
        if x_sh is not None:
            keep = torch.isfinite(x_sh).all(dim=(1, 2))
        self.y, self.x_gt = y[keep].to(dev), x_gt[keep].to(dev)
        self.x_sh = x_sh[keep].to(dev) if x_sh is not None else None
        self.augment = None
        if cfg.virtual_probability or cfg.bone_scale or cfg.joint_noise or cfg.gross_error_probability:
            from wsgcn_cli.data.augment import LifterAugment

            self.augment = LifterAugment.from_h36m(data, keep.numpy(), cfg, dev, self.x_gt, self.x_sh,
                                                   self.data_root)
        self.weak = self._load_unlabelled(dev) if cfg.unlabelled_subjects else None
        self.val = h36m.load(h36m.TEST_SUBJECTS, self.data_root, cfg.val_stride, with_sh=True)
        self.perm = torch.as_tensor(H36M17.flip_permutation(), device=dev)
        self.model = build_model(cfg.model, **cfg.model_options).to(dev)
        self.modules = {"model": self.model}
        self.log(f"data: {len(self.y)} training samples ({'/'.join(cfg.subjects)}, stride {cfg.stride}, "
                 f"2D {cfg.source}), {len(self.val)} validation samples (every {cfg.val_stride}th frame)")

    def _load_unlabelled(self, dev) -> dict:
        """The weak term's tensors: 2D (px and normalised), per-sample intrinsics, 2D size,
        the labelled subjects' mean bone lengths, the ground-truth root if ``root = "gt"``."""
        cfg = self.cfg
        unl = h36m.load(tuple(cfg.unlabelled_subjects), self.data_root, cfg.stride,
                        with_sh=cfg.unlabelled_source == "sh")
        kp = unl.kp2d(cfg.unlabelled_source)
        keep = np.isfinite(kp).all(axis=(1, 2))
        weak = {k: v[keep] for k, v in camera_table(self.data_root, unl).items()}
        weak["x"] = torch.from_numpy(codec.encode_2d(
            kp[keep], cfg.codec, unl.image_size[keep, 0, None, None].astype(np.float32),
            unl.image_size[keep, 1, None, None].astype(np.float32), weak["f"].numpy(), weak["c"].numpy()))
        if cfg.codec == "virtual_camera":  # predictions come in the camera that looks at the root
            weak["rot"] = torch.from_numpy(codec.virtual_camera_rotation(kp[keep, codec.ROOT], weak["f"].numpy(),
                                                                         weak["c"].numpy()))
        weak["kp"] = torch.from_numpy(kp[keep].astype(np.float32))
        weak["scale"] = losses.keypoint_scale(weak["kp"])
        if cfg.w_multiview:
            weak["views"] = torch.from_numpy(synchronised_views(unl, keep))
        if cfg.root == "gt":
            weak["root"] = torch.from_numpy((unl.pose3d[keep, 0] / 1000.0).astype(np.float32))
        del unl  # no other 3D of the unlabelled subjects is kept
        reference = losses.reference_bone_lengths(self.data_root, subjects=tuple(cfg.subjects), stride=1)
        weak["bone_reference"] = torch.as_tensor(reference, dtype=torch.float32)
        views = f", {len(weak['views'])} frames in {weak['views'].shape[1]} views" if "views" in weak else ""
        self.log(f"weak term: {len(weak['x'])} unlabelled samples ({'/'.join(cfg.unlabelled_subjects)}, "
                 f"{cfg.unlabelled_source} 2D only, root {cfg.root}{views}), from epoch {cfg.warmup_epochs + 1}")
        return {k: v.to(dev) for k, v in weak.items()}

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def init_from(self, path: str) -> dict:
        meta, _ = load_init(self.model, path, "lifter", self.cfg.model, self.cfg.model_options, self.trainer.device)
        if (meta.get("codec"), self.cfg.codec) == ("root_scale", "virtual_camera"):
            self.log(f"init weights {path} use the root_scale codec: fine-tuned for virtual_camera "
                     "(the same normalisation after a perspective correction)")
        elif meta.get("codec") != self.cfg.codec:
            raise WsgcnError(f"init weights {path} use the 2D codec {meta.get('codec')!r}, not {self.cfg.codec!r}")
        return meta

    def num_samples(self) -> int:
        return len(self.y)

    def fingerprint(self) -> dict:
        return changed_settings(self.cfg)

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
        if self.weak is None or getattr(self, "epoch", 0) < cfg.warmup_epochs:
            return losses.mpjpe_loss(self.model(xb).float(), yb), {}
        w = self.weak
        if "views" in w:  # n // 2 frames, two different cameras each: [first views, second views]
            m = n // 2
            views = w["views"]
            g = torch.randint(len(views), (m,), generator=gen, device=dev)
            a = torch.randint(views.shape[1], (m,), generator=gen, device=dev)
            b = (a + torch.randint(1, views.shape[1], (m,), generator=gen, device=dev)) % views.shape[1]
            iu = torch.cat([views[g, a], views[g, b]])
        else:
            iu = torch.randint(len(w["x"]), (n,), generator=gen, device=dev)
        pred = self.model(torch.cat([xb, w["x"][iu]])).float()
        pred_l, pred_u = pred[:n], pred[n:]
        if "rot" in w:
            pred_u = codec.from_virtual_camera(pred_u, w["rot"][iu])
        kp, f, c, k, p = w["kp"][iu], w["f"][iu], w["c"][iu], w["k"][iu], w["p"][iu]
        root = w["root"][iu] if "root" in w else losses.estimated_root(pred_u, kp, f, c, k=k, p=p)
        l_rep = losses.reprojection_loss(pred_u, root, kp, f, c, k=k, p=p, scale=w["scale"][iu])
        l_bone = losses.bone_length_loss(pred_u, w["bone_reference"], batch_mean=True)
        l_sup = losses.mpjpe_loss(pred_l, yb)
        total, parts = l_sup + cfg.w_reproj * l_rep + cfg.w_bone * l_bone, {"mpjpe": l_sup, "reproj": l_rep, "bone": l_bone}
        if "views" in w:
            m = len(pred_u) // 2
            parts["multiview"] = losses.multiview_consistency_loss(pred_u[:m], pred_u[m:])
            total = total + cfg.w_multiview * parts["multiview"]
        return total, parts

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
        if self.weak is not None:
            meta["weak"] = {
                "protocol": "WS-GCN weak supervision", "unlabelled_subjects": list(cfg.unlabelled_subjects),
                "unlabelled_source_2d": cfg.unlabelled_source, "root": cfg.root, "warmup_epochs": cfg.warmup_epochs,
                "w_reproj": cfg.w_reproj, "w_bone": cfg.w_bone, "w_multiview": cfg.w_multiview,
                "bone_reference_m": [round(float(v), 5) for v in self.weak["bone_reference"].cpu()],
                "bone_reference": f"mean ground-truth bone lengths of {'/'.join(cfg.subjects)}"}
        return weights.save(out, self.model.state_dict(), meta)
