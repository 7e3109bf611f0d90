"""The temporal refiner (:mod:`wsgcn_cli.temporal`): its training task on the one
:class:`~wsgcn_cli.train.trainer.Trainer`, and its Human3.6M evaluation.

The refiner learns to correct the lifter's own mistakes, so it trains on the lifter's
outputs: every frame x camera of the Human3.6M training subjects (S1 S5 S6 S7 S8) is
lifted once with ground-truth 2D and once with the Stacked-Hourglass detections, in
large batches, by :class:`wsgcn_cli.lifter.Lifter` (the same code as ``lift``). The
lifted arrays are cached in an npz keyed by the lifter's sha256, its test-time flip,
the subjects, the frame stride and the cameras, so a second run does not lift again.

Samples are windows of ``window`` samples of one sequence (one subject / take /
camera) at the chosen frame stride (Human3.6M is 50 fps; stride 2 gives 25 fps), taking
every k-th frame with k drawn from ``frame_steps``, from the ground-truth-2D or (with
probability ``sh_probability``) the detected-2D lifts; windows with a frame without 2D
are never drawn. Inputs: the lifted 3D (root-relative camera coordinates, metres) and the
lifter's normalised 2D; target: ground-truth root-relative 3D in metres. Mirroring
(left/right swap, x negated) augments whole windows. Loss: MPJPE + ``velocity_weight``
x MPJVE + ``accel_weight`` x acceleration error (metres, per frame at the training rate).
Batches are gathered with one index operation; there is no per-sample Python.

The Trainer owns the schedule, resume, checkpoint, history and learning curve; the
weights' metadata ties the refiner to its lifter (``lifter_sha256``, ``codec``) and
records its ``window``, ``overlap`` and ``frame_stride`` for inference. Validation after
every epoch: S9/S11 on ``val_cameras``, lifter alone and lifter + refiner (mm).

Source of the architecture: 3D Human Pose Machines (Wang et al., TPAMI 2019 /
CVPR 2018). Command line: ``wsgcn train train-refiner [--set key=value ...]``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wsgcn_cli import codec, metrics, weights
from wsgcn_cli.data import h36m
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.evaluate import lift_h36m
from wsgcn_cli.lifter import Lifter
from wsgcn_cli.skeletons import H36M17
from wsgcn_cli.temporal import TemporalRefiner, build_refiner, check_window, refine_sequence, window_starts
from wsgcn_cli.train.common import changed_settings, fill_config, load_init
from wsgcn_cli.train.lifter import encode_h36m
from wsgcn_cli.train.trainer import Task

SOURCE_PAPER = "3D Human Pose Machines (Wang et al., TPAMI 2019 / CVPR 2018): bidirectional LSTM over 3D poses"


@dataclass
class RefineConfig:
    """The ``[lifter]``, ``[model]``, ``[codec]`` and ``[data]`` tables of
    ``pipelines/train-refiner.toml`` and the task's ``[train]`` keys (the Schedule's go
    to :class:`~wsgcn_cli.train.trainer.Schedule`).

    ``codec`` is ``"lifter"`` (use the lifter's) or a codec mode, which must then equal
    the lifter's. ``stride``: frame stride of the training sequences (2: 25 fps).
    ``frame_steps``: each training window takes every k-th sample, k drawn from these
    (with stride 1, ``[1, 2]`` trains on 50 and 25 fps motion, so that the refiner fits
    videos at either rate). ``window``/``overlap``: training window length (frames) and
    the overlap recorded for inference. ``cache``: folder of the lifted arrays ("": none);
    ``val``: validate after every epoch on ``val_cameras``; ``lift_batch``: lifter batch.
    """

    lifter: str = "weights/semgcn_nl_h36m_det2d.safetensors"
    lifter_flip_test: bool = True
    model: str = "lstm_refiner"
    model_options: dict = field(default_factory=lambda: {"hidden": 128, "num_layers": 2})
    codec: str = "lifter"
    subjects: tuple = h36m.TRAIN_SUBJECTS
    cameras: tuple = h36m.CAMERAS
    source: str = "gt+sh"  # "gt", "sh" or "gt+sh"
    sh_probability: float = 0.5
    stride: int = 2
    frame_steps: tuple = (1,)
    window: int = 64
    overlap: int = 16
    velocity_weight: float = 1.0
    accel_weight: float = 0.0
    flip: bool = True
    cache: str = "cache/refiner"
    val: bool = True
    val_cameras: tuple = ("55011271",)
    lift_batch: int = 1024  # faster than larger batches on CPU

    @classmethod
    def from_spec(cls, spec: dict, train_rest: dict) -> "RefineConfig":
        """From a loaded pipeline dict and its ``[train]`` keys the Schedule does not own;
        the lifter and cache paths resolved (see :func:`wsgcn_cli.pipeline.resolve_path`).
        Raises WsgcnError for a missing table, unknown options or inconsistent settings."""
        from wsgcn_cli import pipeline as pipelines

        for table in ("lifter", "model", "data"):
            if table not in spec:
                raise WsgcnError(f"refiner pipeline {spec.get('path')} lacks the table [{table}]")
        model = dict(spec["model"])
        cfg = cls(model=model.pop("name", "lstm_refiner"), model_options=model,
                  lifter=str(pipelines.resolve_path(spec["lifter"]["weights"], spec)),
                  lifter_flip_test=spec["lifter"].get("flip_test", True),
                  codec=spec.get("codec", {}).get("mode", "lifter"))
        items = {k: v for k, v in {**spec["data"], **train_rest}.items() if k != "dataset"}
        fill_config(cfg, items, spec.get("path", ""), fixed=("lifter", "lifter_flip_test", "model", "model_options",
                                                             "codec"))
        cfg.cache = str(pipelines.resolve_path(cfg.cache)) if cfg.cache else ""
        cfg.check()
        return cfg

    def check(self):
        """Raise WsgcnError for inconsistent settings."""
        if self.source not in ("gt", "sh", "gt+sh"):
            raise WsgcnError(f"unknown 2D source {self.source!r}; use gt, sh or gt+sh")
        if self.stride < 1:
            raise WsgcnError(f"stride must be >= 1, got {self.stride}")
        if not self.frame_steps or any(int(k) != k or k < 1 for k in self.frame_steps):
            raise WsgcnError(f"frame_steps must be integers >= 1, got {self.frame_steps}")
        if self.window < 2:
            raise WsgcnError(f"training window must be >= 2 frames (velocity loss), got {self.window}")
        check_window(self.window, self.overlap)
        build_refiner(self.model, **self.model_options)  # raises for unknown names / options


# ----------------------------------------------------------------------------- data


def lift_cached(lifter: Lifter, data: h36m.H36MSamples, source: str, cache: str | Path | None,
                batch: int = 8192, log=print, data_root=None) -> np.ndarray:
    """The lifter's 3D of every sample (N, 17, 3) float32, root-relative metres, NaN where no 2D.

    Cached as ``<cache>/lifted_<source>_<key>.npz``, the key a digest of the lifter's
    sha256, its flip-test setting, the 2D source and the samples' identity (subjects,
    sequences, frames); written atomically. ``cache=None`` disables the cache.
    ``data_root``: the Human3.6M folder, for the cameras a ``virtual_camera`` lifter reads.
    """
    from wsgcn_cli.io.atomic import atomic_write

    ident = hashlib.sha256()
    ident.update(json.dumps([lifter.sha256, lifter.flip_test, source, list(data.subjects),
                             list(data.sequences), len(data)]).encode())
    ident.update(np.ascontiguousarray(data.frame).tobytes())
    key = ident.hexdigest()[:16]
    path = Path(cache) / f"lifted_{source}_{'-'.join(data.subjects)}_{key}.npz" if cache else None
    if path is not None and path.is_file():
        with np.load(path) as f:
            if f["pose3d"].shape == (len(data), 17, 3):
                return f["pose3d"]
    t0 = time.time()
    out = lift_h36m(lifter, data, data.kp2d(source), data_root, batch_size=batch)
    ok = np.isfinite(out).all(axis=(1, 2))
    log(f"lifted {int(ok.sum())} {source}-2D samples ({'/'.join(data.subjects)}) in {time.time() - t0:.0f} s")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as tmp:
            np.savez(tmp, pose3d=out)
    return out


def sequence_bounds(sequence: np.ndarray) -> list[tuple[int, int]]:
    """[(start, stop)] of each sequence's contiguous samples."""
    cut = np.flatnonzero(np.diff(sequence)) + 1
    edges = np.concatenate([[0], cut, [len(sequence)]])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


# ----------------------------------------------------------------------------- evaluation


def _per_action(values: dict[str, list], actions: list[int]) -> tuple[dict, dict]:
    """values: metric -> list (one array per sequence); actions: action index per sequence."""
    per_action = {}
    for i, name in enumerate(h36m.ACTIONS):
        seqs = [k for k, a in enumerate(actions) if a == i]
        if not seqs:
            continue
        row = {}
        for metric, arrays in values.items():
            v = np.concatenate([arrays[k] for k in seqs])
            v = v[np.isfinite(v)]
            row[metric] = float(v.mean()) if len(v) else float("nan")
        per_action[name] = row
    avg = {m: float(np.nanmean([r[m] for r in per_action.values()])) for m in values} if per_action else {}
    return avg, per_action


def evaluate_refined(lifter: Lifter, refiner, source: str = "gt", data_root=None,
                     subjects=h36m.TEST_SUBJECTS, stride: int | None = None, cameras=h36m.CAMERAS,
                     window: int | None = None, overlap: int | None = None, cache=None,
                     data: h36m.H36MSamples | None = None, lifted: np.ndarray | None = None) -> dict:
    """Human3.6M test errors of the lifter alone and of lifter + refiner.

    Args:
        lifter: a :class:`wsgcn_cli.lifter.Lifter`.
        refiner: a :class:`wsgcn_cli.temporal.TemporalRefiner` (its window,
            overlap and training frame stride are the defaults) or an
            :class:`LSTMRefiner` module (then give ``window``/``overlap``).
        source: 2D input, ``"gt"`` (projected ground truth) or ``"sh"`` (Stacked Hourglass).
        stride: frame stride of the evaluated sequences (default: the refiner's
            training stride, else 1); velocities are per frame at 50 / stride fps.
        cameras: cameras evaluated; cache: folder for the lifted arrays (None: no cache).
        data, lifted: already loaded samples / their lifted 3D (then ``data_root``,
            ``subjects``, ``stride``, ``cameras`` only label the result).
    Returns:
        dict with ``lifter`` and ``refined`` results, each ``mpjpe_mm``, ``p_mpjpe_mm``
        (per frame), ``mpjve_mm`` (mm/frame), ``accel_mm`` (mm/frame²) (per sequence:
        subject/take/camera, frames in order), averaged per action then over actions,
        and ``per_action``; plus ``source``, ``stride``, ``fps``, ``frames``,
        ``sequences``, ``window``, ``overlap``, ``missing_3d``, ``skipped_no_2d``,
        ``refine_ms_per_frame`` (wall time of :func:`refine_sequence` per valid frame).
        Frames without 2D are skipped; velocity/acceleration steps touching them too.
    Raises:
        WsgcnError: unknown source, missing data files, bad window.
    """
    if source not in ("gt", "sh"):
        raise WsgcnError(f"unknown 2D source {source!r}; use gt or sh")
    if isinstance(refiner, TemporalRefiner):
        model = refiner.model
        window = window or refiner.window
        overlap = refiner.overlap if overlap is None else overlap
        stride = stride or int(refiner.meta.get("frame_stride", 1))
    else:
        model = refiner
        if window is None or overlap is None:
            raise WsgcnError("evaluate_refined: give window and overlap with a bare refiner module")
    stride = stride or 1
    check_window(window, overlap)
    if data is None:
        data = h36m.load(tuple(subjects), data_root, stride, cameras=tuple(cameras), with_sh=(source == "sh"))
    if lifted is None:
        lifted = lift_cached(lifter, data, source, cache, log=lambda *a: None, data_root=data_root)
    x2d = encode_h36m(data.kp2d(source), data, lifter.codec_mode, data_root)
    gt_all = codec.to_metres_root_relative(data.pose3d) * 1000.0
    names = ("mpjpe_mm", "p_mpjpe_mm", "mpjve_mm", "accel_mm")
    values = {"lifter": {m: [] for m in names}, "refined": {m: [] for m in names}}
    actions, frames, skipped, seqs, refine_s = [], 0, 0, 0, 0.0
    for a, b in sequence_bounds(data.sequence):
        pose, x = lifted[a:b], x2d[a:b]
        ok = np.isfinite(pose).all(axis=(1, 2)) & np.isfinite(x).all(axis=(1, 2))
        skipped += int((~ok).sum())
        if not ok.any():
            continue
        seqs += 1
        frames += int(ok.sum())
        gt = gt_all[a:b]
        t0 = time.perf_counter()
        refined = refine_sequence(model, pose, x, window, overlap)
        refine_s += time.perf_counter() - t0
        for key, pred in (("lifter", pose * 1000.0), ("refined", refined * 1000.0)):
            v = values[key]
            v["mpjpe_mm"].append(metrics.mpjpe(pred[ok], gt[ok]))
            v["p_mpjpe_mm"].append(metrics.p_mpjpe(pred[ok], gt[ok]))
            v["mpjve_mm"].append(metrics.mpjve(pred, gt) if len(pred) > 1 else np.zeros(0))
            v["accel_mm"].append(metrics.acceleration_error(pred, gt) if len(pred) > 2 else np.zeros(0))
        actions.append(int(data.action[a]))
    result = {}
    for key in ("lifter", "refined"):
        avg, per_action = _per_action(values[key], actions)
        result[key] = {**avg, "per_action": per_action}
    try:
        missing = [s for s in h36m.missing_3d(data_root) if s.split("/")[0] in data.subjects]
    except WsgcnError:
        missing = []
    result.update(source=source, subjects=list(data.subjects), stride=stride, fps=h36m.FPS / stride,
                  cameras=list(cameras), frames=frames, sequences=seqs, window=window, overlap=overlap,
                  missing_3d=missing, skipped_no_2d=skipped,
                  refine_ms_per_frame=1000 * refine_s / max(frames, 1),
                  units="mm; MPJVE mm/frame and acceleration mm/frame^2 at `fps`")
    return result


# ----------------------------------------------------------------------------- training


class RefinerTask(Task):
    """The refiner task of the Trainer (see the module docstring).

    A sample index ``i`` in ``[0, n)`` (``n``: the most windows of any 2D source and frame
    step) becomes, after the batch draws its source and frame step, the window start at
    the same relative position ``i * len / n`` of that pair's starts, so each epoch's
    permutation spreads over every pair's windows.
    """

    name = "refiner"
    curve_unit = "S9/S11 MPJPE (mm)"

    def __init__(self, cfg: RefineConfig, data_root=None, log=print):
        self.cfg, self.data_root, self.log = cfg, data_root, log
        self.lifter: Lifter | None = None

    @classmethod
    def from_spec(cls, spec: dict, train_rest: dict, data_root=None, log=print) -> "RefinerTask":
        return cls(RefineConfig.from_spec(spec, train_rest), data_root, log)

    def setup(self, trainer) -> None:
        cfg, dev = self.cfg, trainer.device
        cfg.check()
        self.lifter = Lifter.from_weights(cfg.lifter, flip_test=cfg.lifter_flip_test, device=str(dev))
        if cfg.codec not in ("lifter", self.lifter.codec_mode):
            raise WsgcnError(f"pipeline codec {cfg.codec!r} differs from the lifter's {self.lifter.codec_mode!r}")
        t_load = time.time()
        data = h36m.load(tuple(cfg.subjects), self.data_root, cfg.stride, cameras=tuple(cfg.cameras),
                         with_sh=cfg.source != "gt")
        sources = ("gt", "sh") if cfg.source == "gt+sh" else (cfg.source,)
        poses, xs, starts = [], [], []  # starts: one tensor per (source, frame step), source-major
        for s, src in enumerate(sources):
            pose = lift_cached(self.lifter, data, src, cfg.cache, cfg.lift_batch, self.log, self.data_root)
            x = encode_h36m(data.kp2d(src), data, self.lifter.codec_mode, self.data_root)
            valid = np.isfinite(pose).all(axis=(1, 2)) & np.isfinite(x).all(axis=(1, 2))
            for k in cfg.frame_steps:
                first = window_starts(valid, data.sequence, (cfg.window - 1) * int(k) + 1)
                if len(first) == 0:
                    raise WsgcnError(f"no {cfg.window}-frame windows (step {k}) with {src} 2D in "
                                     f"{'/'.join(cfg.subjects)} at stride {cfg.stride}")
                starts.append(torch.from_numpy(first + s * len(data)))
            poses.append(np.nan_to_num(pose))
            xs.append(np.nan_to_num(x))
        target = codec.to_metres_root_relative(data.pose3d).astype(np.float32)
        self.pose_in = torch.from_numpy(np.concatenate(poses)).to(dev)
        self.x_in = torch.from_numpy(np.concatenate(xs)).to(dev)
        self.target = torch.from_numpy(np.tile(target, (len(sources), 1, 1))).to(dev)
        self.n = max(len(v) for v in starts)
        self.starts = torch.stack([v[torch.arange(self.n) * len(v) // self.n] for v in starts]).to(dev)
        self.log(f"data: {len(data)} samples x {len(sources)} 2D source(s) ({'/'.join(cfg.subjects)}, "
                 f"{h36m.FPS / cfg.stride:g} fps), windows of {cfg.window}: "
                 + ", ".join(f"{src} step {k}: {len(v)}" for (src, k), v in
                             zip([(a, b) for a in sources for b in cfg.frame_steps], starts))
                 + f", ready in {time.time() - t_load:.0f} s")
        self.val_data, self.val_lifted = {}, {}
        if cfg.val:
            for src in ("gt", "sh"):
                self.val_data[src] = h36m.load(h36m.TEST_SUBJECTS, self.data_root, cfg.stride,
                                               cameras=tuple(cfg.val_cameras), with_sh=src == "sh")
                self.val_lifted[src] = lift_cached(self.lifter, self.val_data[src], src, cfg.cache,
                                                   cfg.lift_batch, self.log, self.data_root)
        self.perm = torch.as_tensor(H36M17.flip_permutation(), device=dev)
        self.frame_steps = torch.as_tensor([int(k) for k in cfg.frame_steps], device=dev)
        self.ar = torch.arange(cfg.window, device=dev)
        self.model = build_refiner(cfg.model, **cfg.model_options).to(dev)
        self.modules = {"model": self.model}

    def init_from(self, path: str) -> dict:
        """Start from refiner weights of the same model, trained on this lifter's outputs."""
        meta, _ = load_init(self.model, path, "refiner", self.cfg.model, self.cfg.model_options, self.ar.device)
        if meta.get("lifter_sha256", self.lifter.sha256) != self.lifter.sha256:
            raise WsgcnError(f"init weights {path} were trained on another lifter's outputs "
                             f"({meta.get('lifter_weights')}), not {Path(self.cfg.lifter).name}")
        if "steps_per_epoch" in meta:  # written before the Trainer: count its samples too
            meta = {**meta, "samples_per_epoch": meta["steps_per_epoch"] * meta.get("batch_size", 0)}
        return meta

    def num_samples(self) -> int:
        return self.n

    def fingerprint(self) -> dict:
        ignored = ("lifter", "cache", "val", "val_cameras", "lift_batch")  # paths and validation: any
        return {**changed_settings(self.cfg, ignored), "lifter_sha256": self.lifter.sha256}

    def loss(self, idx, gen):
        cfg, dev, b = self.cfg, idx.device, len(idx)
        src = (torch.rand(b, generator=gen, device=dev) < cfg.sh_probability).long() \
            if cfg.source == "gt+sh" else torch.zeros(b, dtype=torch.long, device=dev)
        k = torch.randint(len(self.frame_steps), (b,), generator=gen, device=dev)
        first = self.starts[src * len(self.frame_steps) + k, idx]
        frames = first[:, None] + self.ar * self.frame_steps[k][:, None]  # (B, W)
        pb, xb, yb = self.pose_in[frames], self.x_in[frames], self.target[frames]
        if cfg.flip:
            fb = (torch.rand(b, generator=gen, device=dev) < 0.5)[:, None, None, None]
            pb = torch.where(fb, codec.flip_3d(pb, self.perm), pb)
            xb = torch.where(fb, codec.flip_2d(xb, self.perm), xb)
            yb = torch.where(fb, codec.flip_3d(yb, self.perm), yb)
        pred = self.model(pb, xb).float()
        pos = torch.linalg.vector_norm(pred - yb, dim=-1).mean()
        vel = torch.linalg.vector_norm(torch.diff(pred, dim=1) - torch.diff(yb, dim=1), dim=-1).mean()
        loss = pos + cfg.velocity_weight * vel
        if cfg.accel_weight:
            acc = torch.linalg.vector_norm(torch.diff(pred, 2, dim=1) - torch.diff(yb, 2, dim=1), dim=-1)
            loss = loss + cfg.accel_weight * acc.mean()
        with torch.no_grad():
            base = torch.linalg.vector_norm(pb - yb, dim=-1).mean()
        return loss, {"lifter_mpjpe_mm": 1000 * base, "mpjpe_mm": 1000 * pos.detach(),
                      "mpjve_mm": 1000 * vel.detach()}

    def validate(self) -> dict[str, float]:
        """S9/S11 MPJPE (mm) of the lifter and of lifter + refiner, GT and SH 2D, and the
        SH MPJVE (mm/frame); {} with ``val = false``."""
        cfg, out = self.cfg, {}
        for src, data in self.val_data.items():
            r = evaluate_refined(self.lifter, self.model, src, self.data_root, stride=cfg.stride,
                                 cameras=cfg.val_cameras, window=cfg.window, overlap=cfg.overlap, data=data,
                                 lifted=self.val_lifted[src])
            out[f"val_{src}_mm"], out[f"val_{src}_lifter_mm"] = r["refined"]["mpjpe_mm"], r["lifter"]["mpjpe_mm"]
            if src == "sh":
                out["val_sh_mpjve_mm"] = r["refined"]["mpjve_mm"]
                out["val_sh_lifter_mpjve_mm"] = r["lifter"]["mpjve_mm"]
        return out

    def save(self, out: Path, meta: dict) -> str:
        """The refiner with the metadata :class:`~wsgcn_cli.temporal.TemporalRefiner`
        reads (codec, lifter_sha256, window, overlap, frame_stride) and its training's."""
        cfg, lifter = self.cfg, self.lifter
        own = {
            "task": self.name, "model": cfg.model, "model_options": cfg.model_options, "layout": "h36m17",
            "codec": lifter.codec_mode, "lifter_sha256": lifter.sha256, "lifter_weights": Path(cfg.lifter).name,
            "lifter_flip_test": cfg.lifter_flip_test, "window": cfg.window, "overlap": cfg.overlap,
            "frame_stride": cfg.stride, "fps": h36m.FPS / cfg.stride, "frame_steps": [int(k) for k in cfg.frame_steps],
            "trained_fps": [h36m.FPS / (cfg.stride * int(k)) for k in cfg.frame_steps],
            "input": "lifter 3D (T,17,3) root-relative camera coordinates, metres + lifter-normalised 2D (T,17,2)",
            "output": "root-relative camera coordinates, metres", "architecture": SOURCE_PAPER,
            "trained_on": {"dataset": "Human3.6M", "subjects": list(cfg.subjects), "cameras": list(cfg.cameras),
                           "source_2d": cfg.source, "sh_probability": cfg.sh_probability, "stride": cfg.stride},
            "loss": f"MPJPE + {cfg.velocity_weight} x MPJVE + {cfg.accel_weight} x acceleration error (metres)",
            "velocity_weight": cfg.velocity_weight, "accel_weight": cfg.accel_weight, "flip_augmentation": cfg.flip,
        }
        return weights.save(out, self.model.state_dict(), {**own, **meta})
