"""The 2D pose representation network (:mod:`wsgcn_cli.pose2d.network`): its
training task on the one :class:`~wsgcn_cli.train.trainer.Trainer` (alone, or jointly
with a lifter) and its Human3.6M evaluation.

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
  :data:`~wsgcn_cli.models.pose2d_net.MIN_PRESENT` joints stay;
* with probability ``complete_probability`` a sample keeps all its joints;
* left/right mirroring.

Target: the projected ground truth in the network's normalised frame. Loss: mean
per-joint Euclidean error (normalised units) over all joints, present or missing, plus
``confidence_weight`` x binary cross-entropy of the confidence against
``exp(-(error / 0.1)^2)``. Validation after every epoch: mean 2D error (px) of the SH
input and of the network's output on S9/S11, every ``val_stride``-th frame. The Trainer
owns the schedule, resume, checkpoint, history and learning curve.

**Joint training with a lifter** (``lifter`` set, pipeline ``train-representation-lifter``):
the network's output goes on, differentiably, into a copy of that lifter (root-scale
codec) and both are trained together, adding ``lift_weight`` x the mean per-joint 3D
error (metres, root-relative camera coordinates) to the loss, so that the network
completes and corrects joints the way that helps the 3D most and the lifter learns which
joints to trust: with ``confidence_input`` the lifter also reads the network's
confidences (a third input channel, initialised to zero weight so training starts from
the original lifter). The lifter is written to ``lifter_out``; validation adds its S9/S11
MPJPE (mm) on the network's output, also with ``val_drop`` of the joints dropped. This
is the end-to-end training of the 2D pose sub-network with the 2D->3D transformer in 3D
Human Pose Machines (Wang et al., TPAMI 2019).

    wsgcn train train-representation [--data ../shared/data/h36m] [--device auto] [--set key=value ...]
    wsgcn train train-representation-lifter
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wsgcn_cli import codec, weights
from wsgcn_cli.data import h36m
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.models.pose2d_net import MIN_PRESENT, normalize
from wsgcn_cli.models.registry import build_model
from wsgcn_cli.pose2d.network import RepresentationModel
from wsgcn_cli.skeletons import H36M17
from wsgcn_cli.train.common import changed_settings, fill_config, load_init
from wsgcn_cli.train.trainer import Task

#: Distal joints of each limb (H36M-17): right leg, left leg, left arm, right arm.
LIMBS = ((2, 3), (5, 6), (12, 13), (15, 16))
CONFIDENCE_SCALE = 0.1  # normalised units: a joint this far off gets confidence target e^-1
CORRUPTION = ("sh_probability", "jitter", "drop_max", "limb_occlusion", "complete_probability")


@dataclass
class RepresentationConfig:
    """The ``[model]`` and ``[data]`` tables of ``pipelines/train-representation*.toml``
    and the task's ``[train]`` keys (the Schedule's go to
    :class:`~wsgcn_cli.train.trainer.Schedule`; ``init_weights`` there starts the network
    from earlier weights). Corruption: see the module docstring. ``val_stride``: S9/S11
    validation every n-th frame.

    Joint training: ``lifter`` (lifter weights, "": train the network alone) is copied,
    trained with the network and written to ``lifter_out``; ``lift_weight`` x its mean
    per-joint 3D error (metres) joins the loss; ``confidence_input``: it reads the
    network's confidences; ``detected_weight``: at present joints it gets
    ``detected_weight`` x detection + the rest x network, as ``lift`` mixes them
    (``[representation] detected_weight``); ``val_drop``: validate also with this
    fraction of joints dropped.
    """

    model: str = "pose_representation"
    model_options: dict = field(default_factory=dict)
    subjects: tuple = h36m.TRAIN_SUBJECTS
    stride: int = 2
    sh_probability: float = 0.5
    jitter: float = 0.03
    drop_max: float = 0.4
    limb_occlusion: float = 0.3
    complete_probability: float = 0.0
    confidence_weight: float = 0.1
    flip: bool = True
    val_stride: int = 25
    lifter: str = ""
    lifter_out: str = ""
    lift_weight: float = 1.0
    confidence_input: bool = True
    detected_weight: float = 0.0
    val_drop: float = 0.3

    @classmethod
    def from_spec(cls, spec: dict, train_rest: dict) -> "RepresentationConfig":
        """From a loaded pipeline dict and its ``[train]`` keys the Schedule does not own;
        ``lifter`` and ``lifter_out`` resolved (see :func:`wsgcn_cli.pipeline.resolve_path`).
        Raises WsgcnError for unknown options, or a lifter without ``lifter_out``."""
        from wsgcn_cli import pipeline as pipelines

        model = dict(spec.get("model", {}))
        cfg = cls(model=model.pop("name", "pose_representation"), model_options=model)
        items = {k: v for k, v in {**spec.get("data", {}), **train_rest}.items() if k != "dataset"}
        fill_config(cfg, items, spec.get("path", ""), fixed=("model", "model_options"))
        if cfg.lifter:
            if not cfg.lifter_out:
                raise WsgcnError("joint training with a lifter needs lifter_out (where the trained lifter is written)")
            cfg.lifter = str(pipelines.resolve_path(cfg.lifter, spec))
            cfg.lifter_out = str(pipelines.resolve_path(cfg.lifter_out))
        return cfg


def body_scale(xy: torch.Tensor) -> torch.Tensor:
    """(B, J, 2) complete poses -> (B, 1, 1) RMS distance of the joints from their mean."""
    c = xy.mean(dim=1, keepdim=True)
    return torch.sqrt(((xy - c) ** 2).sum(-1).mean(dim=1, keepdim=True))[..., None].clamp(min=1e-6)


def corrupt(gt: torch.Tensor, sh: torch.Tensor, cfg: RepresentationConfig, g: torch.Generator):
    """A batch of realistic detector inputs from ground truth (see the module docstring).

    Args:
        gt: (B, 17, 2) projected ground truth, pixels; sh: (B, 17, 2) the same samples'
            Stacked-Hourglass detections (H36M-17), pixels, finite; g: a generator on
            their device.
    Returns:
        (noisy (B, 17, 2) pixels, present (B, 17) bool).
    """
    b, j = gt.shape[:2]
    dev = gt.device

    def rand(*shape):
        return torch.rand(*shape, generator=g, device=dev)

    resid = sh - gt
    other = torch.randint(b, (b,), generator=g, device=dev)
    scale = body_scale(gt)
    transplanted = gt + resid[other] * (scale / scale[other])
    noisy = torch.where(rand(b, 1, 1) < cfg.sh_probability, sh, transplanted)
    sigma = rand(b, 1, 1) * cfg.jitter * scale
    noisy = noisy + sigma * torch.randn(b, j, 2, generator=g, device=dev)
    present = rand(b, j) >= rand(b, 1) * cfg.drop_max
    occluded = rand(b) < cfg.limb_occlusion
    limb = torch.randint(len(LIMBS), (b,), generator=g, device=dev)
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
    (else 0): (pos, conf, err, lift); fp32 under autocast. The lifter's 2D input at
    present joints is ``detected_weight`` x the input + the rest x the network's output,
    as in :meth:`wsgcn_cli.pose2d.network.RepresentationModel.__call__`."""
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
    pred, logit = (t.float() for t in model(u, present))
    err = torch.linalg.vector_norm(pred - target, dim=-1)
    conf_target = torch.exp(-(err.detach() / CONFIDENCE_SCALE) ** 2)
    conf = torch.nn.functional.binary_cross_entropy_with_logits(logit, conf_target)
    lift = torch.zeros((), device=u.device)
    if lifter is not None:
        xy = torch.where(present[..., None], detected_weight * u + (1 - detected_weight) * pred, pred)
        x = codec.root_scale_normalize_torch(xy)  # = the codec of the same 2D in pixels
        if confidence_input:
            x = torch.cat([x, torch.sigmoid(logit.detach())[..., None]], dim=-1)
        lift = torch.linalg.vector_norm(lifter(x).float() - pose3d, dim=-1).mean()
    return err.mean(), conf, err, lift


def joint_lifter(path: str | Path, confidence_input: bool, device) -> tuple[torch.nn.Module, dict]:
    """A trainable copy of the SemGCN lifter in ``path`` and its metadata (plus
    ``init_sha256``, the file's). With ``confidence_input`` its input layer gets a third
    channel (the keypoint confidence) whose weights start at zero, so the copy starts out
    as the original lifter.

    Raises WsgcnError for weights that are not an H36M-17, root-scale SemGCN lifter.
    """
    model, meta, digest = weights.load_model(path, "lifter", device=device, layout="h36m17")
    if meta.get("codec") != "root_scale" or not str(meta.get("model")).startswith("semgcn"):
        raise WsgcnError(f"joint training needs an H36M-17 SemGCN lifter with the root_scale codec; {path} is "
                         f"{meta.get('model')!r}, layout {meta.get('layout')!r}, codec {meta.get('codec')!r}")
    options = dict(meta.get("model_options", {}))
    if confidence_input and options.get("in_features", 2) == 2:
        first = "body.0.gconv.W"  # (2, in_features, hidden): the input graph convolution
        state = model.state_dict()
        state[first] = torch.cat([state[first], torch.zeros_like(state[first][:, :1])], dim=1)
        options["in_features"] = 3
        model = build_model(meta["model"], **options).to(state[first].device)
        model.load_state_dict(state)
    elif not confidence_input and options.get("in_features", 2) != 2:
        raise WsgcnError(f"lifter {path} reads confidences: set confidence_input = true")
    return model, {**meta, "model_options": options, "confidence_input": confidence_input, "init_sha256": digest}


# ----------------------------------------------------------------------------- training


class Pose2DTask(Task):
    """The 2D network task of the Trainer, alone or with a lifter (see the module docstring).

    Samples: the training frames x cameras with a complete Stacked-Hourglass detection.
    Modules: ``net`` (and ``lifter`` in joint training).
    """

    name = "representation"
    curve_unit = "2D error (px) / MPJPE (mm)"

    def __init__(self, cfg: RepresentationConfig, data_root=None, log=print):
        self.cfg, self.data_root, self.log = cfg, data_root, log
        self.lifter, self.lifter_meta, self.init_meta = None, {}, {}

    @classmethod
    def from_spec(cls, spec: dict, train_rest: dict, data_root=None, log=print) -> "Pose2DTask":
        return cls(RepresentationConfig.from_spec(spec, train_rest), data_root, log)

    def setup(self, trainer) -> None:
        cfg, dev = self.cfg, trainer.device
        self.device = dev
        data = h36m.load(tuple(cfg.subjects), self.data_root, cfg.stride, with_sh=True)
        ok = np.isfinite(data.kp2d_sh).all(axis=(1, 2))
        self.gt = torch.from_numpy(data.kp2d_gt[ok].astype(np.float32)).to(dev)
        self.sh = torch.from_numpy(data.kp2d_sh[ok].astype(np.float32)).to(dev)
        self.val = h36m.load(h36m.TEST_SUBJECTS, self.data_root, cfg.val_stride, with_sh=True)
        self.perm = torch.as_tensor(H36M17.flip_permutation(), device=dev)
        self.net = build_model(cfg.model, **cfg.model_options).to(dev)
        self.modules = {"net": self.net}
        if cfg.lifter:
            self.pose3d = torch.from_numpy(codec.to_metres_root_relative(data.pose3d[ok]).astype(np.float32)).to(dev)
            self.lifter, self.lifter_meta = joint_lifter(cfg.lifter, cfg.confidence_input, dev)
            self.modules["lifter"] = self.lifter
        self.log(f"data: {len(self.gt)} training samples ({'/'.join(cfg.subjects)}, stride {cfg.stride}), "
                 f"{len(self.val)} validation samples (every {cfg.val_stride}th frame of S9/S11)"
                 + (f"; trained with a copy of {Path(cfg.lifter).name}" if cfg.lifter else ""))

    def init_from(self, path: str) -> dict:
        """Start the network from earlier weights of the same model."""
        meta, digest = load_init(self.net, path, "pose2d", self.cfg.model, self.cfg.model_options, self.device)
        self.init_meta = {**meta, "sha256": digest}
        return meta

    def num_samples(self) -> int:
        return len(self.gt)

    def fingerprint(self) -> dict:
        ignored = ("lifter", "lifter_out", "val_stride", "val_drop")  # paths and validation: any
        return {**changed_settings(self.cfg, ignored), "lifter_sha256": self.lifter_meta.get("init_sha256", "")}

    def loss(self, idx, gen):
        cfg = self.cfg
        gt = self.gt[idx]
        noisy, present = corrupt(gt, self.sh[idx], cfg, gen)
        flip = torch.rand(len(idx), generator=gen, device=idx.device) < 0.5 if cfg.flip else None
        pos, conf, _, lift = loss_terms(self.net, noisy, present, gt, flip, self.perm, self.lifter,
                                        self.pose3d[idx] if self.lifter is not None else None,
                                        cfg.confidence_input, cfg.detected_weight)
        loss = pos + cfg.confidence_weight * conf + cfg.lift_weight * lift
        return loss, ({"lift_m": lift.detach()} if self.lifter is not None else {})

    def validate(self) -> dict[str, float]:
        """S9/S11 mean 2D error (px) of the SH input and the network's output; in joint
        training also the lifter's MPJPE (mm) on the output, complete and with
        ``val_drop`` of the joints dropped."""
        cfg, rep = self.cfg, RepresentationModel(self.net, self.device)
        v = evaluate_2d(rep, self.val)
        out = {"val_in_px": v["input_px"], "val_out_px": v["output_px"]}
        if self.lifter is not None:
            from wsgcn_cli.lifter import Lifter

            lf = Lifter(self.lifter, "root_scale", flip_test=True, device=self.device, meta=self.lifter_meta)
            out["val_mpjpe_mm"] = evaluate_3d(rep, lf, self.val, detected_weight=cfg.detected_weight)["mpjpe_mm"]
            out["val_drop_mpjpe_mm"] = evaluate_3d(rep, lf, self.val, drop=cfg.val_drop,
                                                   detected_weight=cfg.detected_weight)["mpjpe_mm"]
        return out

    def save(self, out: Path, meta: dict) -> str:
        """The network (metadata ``task``, ``model``, ``model_options``, ``layout`` as
        :class:`~wsgcn_cli.pose2d.network.RepresentationModel` and the 2D stage read
        them; ``lifter`` names the lifter trained with it) and, in joint training, first the
        lifter to ``lifter_out`` (``codec``, ``confidence_input``, ``representation``)."""
        cfg = self.cfg
        trained_on = {"dataset": "Human3.6M", "subjects": list(cfg.subjects), "stride": cfg.stride,
                      "corruption": {k: getattr(cfg, k) for k in CORRUPTION}}
        own = {"task": self.name, "model": cfg.model, "model_options": cfg.model_options, "layout": "h36m17",
               "input": "H36M-17 2D keypoints (pixels) + presence, after the geometric layout mapping",
               "output": "H36M-17 2D keypoints (pixels) + per-joint confidence", "trained_on": trained_on,
               "confidence_weight": cfg.confidence_weight, "flip_augmentation": cfg.flip}
        if self.init_meta:
            own["init_sha256"] = self.init_meta["sha256"]
        if self.lifter is not None:
            lm = self.lifter_meta
            this_run = meta.get("samples_seen_total", 0) - meta.get("samples_seen_before", 0)
            before = int(lm.get("samples_seen_total") or lm.get("epochs", 0) * lm.get("samples_per_epoch", 0))
            lifter_meta = {
                **{k: lm[k] for k in ("model", "model_options", "layout", "codec", "output") if k in lm},
                "input": "H36M-17 2D keypoints of the representation network (root_scale codec)"
                         + (" + its per-joint confidence" if cfg.confidence_input else ""),
                "trained_on": {**trained_on, "source_2d": "representation network output from corrupted gt+sh"},
                "lift_weight": cfg.lift_weight, "flip_augmentation": cfg.flip,
                "representation": {"weights": out.name, "detected_weight": cfg.detected_weight},
                **meta, "confidence_input": cfg.confidence_input, "init_weights": Path(cfg.lifter).name,
                "init_sha256": lm["init_sha256"], "samples_seen_before": before,
                "samples_seen_total": before + this_run,
            }
            Path(cfg.lifter_out).parent.mkdir(parents=True, exist_ok=True)
            lifter_sha = weights.save(Path(cfg.lifter_out), self.lifter.state_dict(), lifter_meta)
            own["lifter"] = {"weights": Path(cfg.lifter_out).name, "sha256": lifter_sha,
                             "init_weights": Path(cfg.lifter).name, "lift_weight": cfg.lift_weight,
                             "confidence_input": cfg.confidence_input, "detected_weight": cfg.detected_weight}
        return weights.save(out, self.net.state_dict(), {**own, **meta})


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
