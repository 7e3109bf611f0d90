"""The whole-body lifter (SemGAN, COCO-WholeBody-133): its training task on the one
:class:`~wsgcn_cli.train.trainer.Trainer`.

Data. Every batch is drawn fresh from :class:`wsgcn_cli.data.wholebody.WholeBodyComposite`
(train split: Human3.6M S1 S5 S6 S7 S8 bodies, FPHA subjects 1-5 hands, AFLW2000-3D
faces 0-1599; all research-only): a sample index picks a Human3.6M frame (every
``stride``-th), a random right and left hand and a random face are attached to it, and the
pose is seen through one of the subject's Human3.6M cameras or (with probability
``virtual_probability``) a random virtual camera, with detector-like 2D
(:class:`~wsgcn_cli.data.wholebody.DetectorNoise`: noise, a shifted face or hand, gross
errors, whole faces, hands and feet dropped). With probability ``clean_probability`` a
sample keeps its exact projection instead (every keypoint seen, score 1), as H3WB's 2D
is. With ``flip`` half the samples are mirrored (x negated in 2D and 3D, left and right
swapped by :meth:`~wsgcn_cli.skeletons.Skeleton.flip_permutation`). The input is
:func:`wsgcn_cli.models.semgan.encode_input` of the 2D pixels and scores, the same code
that inference uses; the target is the root-relative camera-frame 3D in metres (pelvis =
mean of the hips 11 and 12, as H3WB).

Loss (``[loss]`` table of the pipeline; all in fp32 on the ``.float()`` prediction):

    mpjpe x MPJPE (m) + bone x bone-length error (m) + normal x (1 - cos of plane normals)

* MPJPE: :func:`~wsgcn_cli.train.losses.mpjpe_loss` with per-joint weights: 1 for
  measured keypoints, ``synthesised_weight`` for the ones the composite makes by a rule
  (eyes, ears, the six foot points: :data:`wsgcn_cli.data.wholebody.SYNTHESISED`;
  ``labelled`` False), 0 where the 3D target is missing (NaN). With 0 the rule-made
  keypoints are masked out entirely and the network's output for them is unconstrained,
  which H3WB's all-133 and body scores count; a small weight keeps them near the rule.
* Bone: :func:`~wsgcn_cli.train.losses.bone_length_loss` over the bones of
  :data:`~wsgcn_cli.skeletons.WHOLEBODY133_TREE` against the target's own bone lengths,
  with the same per-joint weights (symmetry term off: the composite's left and right
  hands are independent draws of different sizes).
* Normal: :func:`~wsgcn_cli.train.losses.normal_loss` over
  :data:`~wsgcn_cli.skeletons.WHOLEBODY133_TRIPLETS`, same weights.

Bone and normal losses are SemGAN's (Wen, Zhu & Tan, "3D WholeBody Pose Estimation based
on Semantic Graph Attention Network and Distance Information", arXiv 2406.01196), the
normal loss after the mesh-recovery losses that compare face normals (Pose2Mesh, Choi et
al. ECCV 2020; I2L-MeshNet, Moon & Lee ECCV 2020).

Validation after every epoch (fp32): a fixed-seed batch of ``val_samples`` composite
*test* samples (S9 S11 bodies, FPHA subject 6 hands, faces 1600-1999, detector-like 2D
drawn as in training), scored with H3WB's definitions
(:func:`wsgcn_cli.metrics.h3wb_summary`): ``val_mpjpe`` (all 133, pelvis-aligned),
``val_body``, ``val_face`` (nose-aligned), ``val_hands`` (wrist-aligned); and, when the
file is there, the H3WB fixture (``val_h3wb_mpjpe``: one pose, it decides nothing).
All in millimetres.

The Trainer owns the schedule, bf16 autocast, resume, checkpoint, history, keep-best and
the learning curve. Command line: ``wsgcn train train-semgan-wholebody [--data
../shared/data] [--set key=value ...]`` (``--data``: the folder that holds ``h36m``,
``hands_fpha``, ``face_aflw2000_3d`` and ``h3wb``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch

from wsgcn_cli import weights
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.skeletons import COCO_WHOLEBODY133, WHOLEBODY133_TREE, WHOLEBODY133_TRIPLETS
from wsgcn_cli.train import losses
from wsgcn_cli.train.common import changed_settings, fill_config, load_init
from wsgcn_cli.train.trainer import Task

#: The layout of the lifter's input and output.
LAYOUT = COCO_WHOLEBODY133.name

SOURCE_PAPER = ("SemGAN: Wen, Zhu & Tan, '3D WholeBody Pose Estimation based on Semantic Graph Attention "
                "Network and Distance Information', arXiv 2406.01196 (2024)")

#: What the composite training data is made of, and its terms (for weights metadata and the card).
DATA_LICENCE = ("research-only: Human3.6M (research licence), FPHA hands (academic research only, "
                "non-commercial, no redistribution), AFLW2000-3D faces (research-only, non-commercial); "
                "the weights are derived from them: do not use them commercially")


@dataclass
class WholeBodyConfig:
    """The ``[model]``, ``[codec]``, ``[data]`` and ``[loss]`` tables of
    ``pipelines/train-semgan-wholebody.toml`` and the task's ``[train]`` keys (the
    Schedule's go to :class:`~wsgcn_cli.train.trainer.Schedule`).

    Attributes:
        model, model_options: a registered lifter of layout ``coco_wholebody133`` (``semgan``).
        codec: must be :data:`wsgcn_cli.models.semgan.CODEC` (the input is encode_input's).
        stride: every n-th Human3.6M training frame is a body sample.
        virtual_probability: share of samples seen by a random virtual camera.
        bone_scale: std of the per-bone scale augmentation of the body (0: off).
        noise: overrides of :class:`~wsgcn_cli.data.wholebody.DetectorNoise` fields.
        clean_probability: share of samples with exact 2D (no noise, nothing dropped).
        flip: left/right mirroring of half the samples.
        val_samples, val_seed, val_stride: the fixed composite test batch of validation.
        h3wb: the H3WB fixture npz ("" : ``<data>/h3wb/h3wb_train_sub.npz`` or the default).
        mpjpe, bone, normal: loss weights (``[loss]``); synthesised_weight: per-joint
            weight of the rule-made keypoints (module docstring).
    """

    model: str = "semgan"
    model_options: dict = field(default_factory=dict)
    codec: str = "wholebody_pelvis_scale"
    stride: int = 1
    virtual_probability: float = 0.5
    bone_scale: float = 0.0
    noise: dict = field(default_factory=dict)
    clean_probability: float = 0.0
    flip: bool = True
    val_samples: int = 4096
    val_seed: int = 12345
    val_stride: int = 1
    h3wb: str = ""
    mpjpe: float = 1.0
    bone: float = 1.0
    normal: float = 0.1
    synthesised_weight: float = 0.5

    @classmethod
    def from_spec(cls, spec: dict, train_rest: dict) -> "WholeBodyConfig":
        """From a loaded train pipeline and the ``[train]`` keys the Schedule left over.
        Raises WsgcnError for unknown options or inconsistent settings."""
        from wsgcn_cli.data.wholebody import DetectorNoise
        from wsgcn_cli.models import registry
        from wsgcn_cli.models.semgan import CODEC

        model = dict(spec["model"])
        cfg = cls(model=model.pop("name", "semgan"), model_options=model,
                  codec=spec.get("codec", {}).get("mode", CODEC))
        items = {k: v for k, v in {**spec["data"], **spec.get("loss", {}), **train_rest}.items() if k != "dataset"}
        fill_config(cfg, items, spec.get("path", ""), fixed=("model", "model_options", "codec"))
        if isinstance(cfg.noise, tuple) or not isinstance(cfg.noise, dict):
            raise WsgcnError(f"[data] noise must be a table of DetectorNoise fields, got {cfg.noise!r}")
        known = {f.name for f in dataclasses.fields(DetectorNoise)}
        unknown = sorted(set(cfg.noise) - known)
        if unknown:
            raise WsgcnError(f"unknown detector-noise option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if cfg.codec != CODEC:
            raise WsgcnError(f"the whole-body lifter reads the {CODEC!r} input (models/semgan.encode_input), "
                             f"not {cfg.codec!r}")
        if registry.kind_of(cfg.model) != "lifter":
            raise WsgcnError(f"unknown lifter {cfg.model!r}; known: {', '.join(registry.names('lifter'))}")
        for name in ("virtual_probability", "clean_probability"):
            if not 0.0 <= getattr(cfg, name) <= 1.0:
                raise WsgcnError(f"{name} must be in [0, 1], got {getattr(cfg, name)}")
        if min(cfg.mpjpe, cfg.bone, cfg.normal, cfg.synthesised_weight) < 0:
            raise WsgcnError("loss weights must be >= 0")
        if cfg.stride < 1 or cfg.val_stride < 1 or cfg.val_samples < 1:
            raise WsgcnError("stride, val_stride and val_samples must be >= 1")
        return cfg

    def detector_noise(self):
        """The :class:`~wsgcn_cli.data.wholebody.DetectorNoise` of ``noise``."""
        from wsgcn_cli.data.wholebody import DetectorNoise

        return DetectorNoise(**self.noise)


def h3wb_path(cfg: WholeBodyConfig, data_root=None) -> Path:
    """The H3WB fixture the task validates on: ``cfg.h3wb``, else ``<data_root>/h3wb/``,
    else :func:`wsgcn_cli.data.h3wb.default_path` (the file may be absent)."""
    from wsgcn_cli.data import h3wb

    if cfg.h3wb:
        return Path(cfg.h3wb)
    if data_root and (Path(data_root) / "h3wb" / h3wb.FILE).is_file():
        return Path(data_root) / "h3wb" / h3wb.FILE
    return h3wb.default_path()


class WholeBodyLifterTask(Task):
    """SemGAN whole-body lifter on composite data (see the module docstring)."""

    name = "wholebody"
    curve_unit = "MPJPE (mm), H3WB definitions"

    def __init__(self, cfg: WholeBodyConfig, data_root=None, log=print):
        self.cfg, self.data_root, self.log = cfg, data_root, log

    @classmethod
    def from_spec(cls, spec: dict, train_rest: dict, data_root=None, log=print) -> "WholeBodyLifterTask":
        """From a loaded train pipeline and its ``[train]`` keys the Schedule left over."""
        return cls(WholeBodyConfig.from_spec(spec, train_rest), data_root=data_root, log=log)

    def setup(self, trainer) -> None:
        from wsgcn_cli.data.wholebody import LABELLED, WholeBodyComposite
        from wsgcn_cli.models.registry import build_model

        cfg, dev = self.cfg, trainer.device
        self.trainer = trainer
        self.noise = cfg.detector_noise()
        self.data = WholeBodyComposite("train", dev, self.data_root, cfg.stride)
        w = torch.ones(len(LABELLED))
        w[~torch.from_numpy(LABELLED)] = cfg.synthesised_weight
        self.joint_weight = w.to(dev)
        self.perm = torch.as_tensor(COCO_WHOLEBODY133.flip_permutation(), device=dev)
        self.model = build_model(cfg.model, **cfg.model_options).to(dev)
        if getattr(self.model, "layout", None) != LAYOUT:
            raise WsgcnError(f"model {cfg.model!r} is not a {LAYOUT} lifter")
        self.modules = {"model": self.model}
        self._setup_validation(dev)
        self.log(f"data: {len(self.data)} composite training bodies (H36M {'/'.join(self.data.subjects)}, stride "
                 f"{cfg.stride}; {len(self.data.hands)} FPHA hands, {len(self.data.faces)} AFLW2000-3D faces), "
                 f"validation: {len(self.val['gt'])} composite test samples"
                 + (f" + H3WB fixture ({len(self.h3wb['gt'])} entries, one pose)" if self.h3wb else ""))

    def _setup_validation(self, dev) -> None:
        """The fixed validation batch (composite test split) and the H3WB fixture, encoded once."""
        from wsgcn_cli.data import h3wb
        from wsgcn_cli.data.wholebody import WholeBodyComposite
        from wsgcn_cli.models.semgan import encode_input

        cfg = self.cfg
        test = WholeBodyComposite("test", dev, self.data_root, cfg.val_stride)
        g = torch.Generator(device=dev).manual_seed(cfg.val_seed)
        n = min(cfg.val_samples, len(test))
        idx = torch.randperm(len(test), generator=g, device=dev)[:n]
        b = test.batch(idx, g, cfg.virtual_probability, self.noise)
        self.val = {"x": encode_input(b.kp2d, b.score), "gt": b.pose3d}
        del test
        self.h3wb = None
        path = h3wb_path(cfg, self.data_root)
        if path.is_file():
            s = h3wb.load(path)
            self.h3wb = {"x": torch.from_numpy(encode_input(s.kp2d)).to(dev),
                         "gt": torch.from_numpy(s.pose3d).float().to(dev)}

    def init_from(self, path: str) -> dict:
        meta, _ = load_init(self.model, path, "lifter", self.cfg.model, self.cfg.model_options, self.trainer.device)
        if meta.get("layout") != LAYOUT or meta.get("codec") != self.cfg.codec:
            raise WsgcnError(f"init weights {path} are for {meta.get('layout')}/{meta.get('codec')}, "
                             f"not {LAYOUT}/{self.cfg.codec}")
        return meta

    def num_samples(self) -> int:
        return len(self.data)

    def fingerprint(self) -> dict:
        return changed_settings(self.cfg, ignored=("h3wb",))

    def batch(self, idx: torch.Tensor, gen: torch.Generator):
        """(input (B, 133, 4), target (B, 133, 3) m, joint weights (B, 133)) of the samples ``idx``."""
        from wsgcn_cli.models.semgan import encode_input

        cfg, b = self.cfg, len(idx)
        wb = self.data.batch(idx, gen, cfg.virtual_probability, self.noise, cfg.bone_scale)
        kp, score, target = wb.kp2d, wb.score, wb.pose3d
        if cfg.clean_probability:
            clean = torch.rand(b, generator=gen, device=idx.device) < cfg.clean_probability
            kp = torch.where(clean[:, None, None], wb.kp2d_clean, kp)
            score = torch.where(clean[:, None], torch.ones_like(score), score)
        if cfg.flip:
            fb = torch.rand(b, generator=gen, device=idx.device) < 0.5
            sign = torch.tensor([-1.0, 1.0], device=idx.device)
            kp = torch.where(fb[:, None, None], (kp * sign)[:, self.perm], kp)
            score = torch.where(fb[:, None], score[:, self.perm], score)
            target = torch.where(fb[:, None, None], (target * torch.tensor([-1.0, 1.0, 1.0], device=idx.device))
                                 [:, self.perm], target)
        weight = self.joint_weight * torch.isfinite(target).all(-1)
        return encode_input(kp, score), target, weight

    def loss(self, idx, gen):
        cfg = self.cfg
        x, target, w = self.batch(idx, gen)
        pred = self.model(x).float()
        l_mpjpe = losses.mpjpe_loss(pred, target, w)
        total, logs = cfg.mpjpe * l_mpjpe, {"mpjpe_mm": 1000 * l_mpjpe.detach()}
        if cfg.bone:
            ref = losses.bone_lengths(torch.nan_to_num(target), WHOLEBODY133_TREE)
            l_bone = losses.bone_length_loss(pred, ref, symmetry_weight=0.0, skeleton=WHOLEBODY133_TREE, weights=w)
            total, logs["bone_mm"] = total + cfg.bone * l_bone, 1000 * l_bone.detach()
        if cfg.normal:
            l_normal = losses.normal_loss(pred, target, WHOLEBODY133_TRIPLETS, weights=w)
            total, logs["normal"] = total + cfg.normal * l_normal, l_normal.detach()
        return total, logs

    def predict(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """The model's output (N, 133, 3) m for encoded inputs (N, 133, 4), fp32, no grad."""
        with torch.no_grad():
            return torch.cat([self.model(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)])

    def validate(self) -> dict[str, float]:
        """val_mpjpe (all 133), val_body, val_face, val_hands on the fixed composite test
        batch and val_h3wb_mpjpe on the H3WB fixture, mm (H3WB's alignments)."""
        from wsgcn_cli.metrics import h3wb_summary

        r = h3wb_summary(self.predict(self.val["x"]).cpu().numpy(), self.val["gt"].cpu().numpy())
        out = {"val_mpjpe": r["mpjpe_mm"], **{f"val_{k}": r["per_part"][k] for k in ("body", "face", "hands")}}
        if self.h3wb is not None:
            out["val_h3wb_mpjpe"] = h3wb_summary(self.predict(self.h3wb["x"]).cpu().numpy(),
                                                 self.h3wb["gt"].cpu().numpy())["mpjpe_mm"]
        self.model.train()
        return out

    def save(self, out: Path, meta: dict) -> str:
        """The lifter with what inference needs (model, options, layout, codec) and its training's record."""
        from wsgcn_cli.data import wholebody as wb

        cfg = self.cfg
        own = {
            "task": self.name, "model": cfg.model, "model_options": cfg.model_options, "layout": LAYOUT,
            "codec": cfg.codec, "architecture": SOURCE_PAPER,
            "input": "COCO-WholeBody-133 2D pixels + scores through models/semgan.encode_input (B, 133, 4)",
            "output": "root-relative camera coordinates, metres (pelvis = mean of keypoints 11 and 12, as H3WB)",
            "trained_on": {
                "dataset": "composite whole body (wsgcn_cli/data/wholebody.py)",
                "subjects": list(self.data.subjects), "stride": cfg.stride,
                "bodies": f"Human3.6M 3D {'/'.join(self.data.subjects)}, "
                          + ("all frames" if cfg.stride == 1 else f"every {cfg.stride}th frame"),
                "hands": f"FPHA subjects {', '.join(map(str, wb.FPHA_TRAIN_SUBJECTS))} ({len(self.data.hands)} frames)",
                "faces": f"AFLW2000-3D samples 0-{wb.FACE_TEST_FROM - 1} ({len(self.data.faces)} faces)",
                "source_2d": "detector-like (DetectorNoise)" + (f", clean with p {cfg.clean_probability}"
                                                                 if cfg.clean_probability else ""),
            },
            "licence": DATA_LICENCE,
            "augmentation": {"virtual_probability": cfg.virtual_probability, "bone_scale": cfg.bone_scale,
                             "clean_probability": cfg.clean_probability, "flip": cfg.flip,
                             "noise": dataclasses.asdict(self.noise)},
            "flip_augmentation": cfg.flip,
            "loss": {"mpjpe": cfg.mpjpe, "bone": cfg.bone, "normal": cfg.normal,
                     "synthesised_weight": cfg.synthesised_weight,
                     "formula": f"{cfg.mpjpe} x MPJPE (m) + {cfg.bone} x bone-length error vs the target's (m) + "
                                f"{cfg.normal} x (1 - cos of local-plane normals); rule-made keypoints (eyes, ears, "
                                f"feet) weigh {cfg.synthesised_weight}"},
            "validation": {"composite_test_samples": len(self.val["gt"]), "seed": cfg.val_seed,
                           "h3wb_fixture": self.h3wb is not None},
        }
        return weights.save(out, self.model.state_dict(), {**own, **meta})

