"""Training and evaluation of the temporal refiner (:mod:`wsgcn_cli.models.refiner`).

The refiner learns to correct the lifter's own mistakes, so it trains on the lifter's
outputs: every frame x camera of the Human3.6M training subjects (S1 S5 S6 S7 S8) is
lifted once with ground-truth 2D and once with the Stacked-Hourglass detections, in
large batches, by :class:`wsgcn_cli.lifter.Lifter` (the same code as ``lift``). The
lifted arrays are cached in an npz keyed by the lifter's sha256, its test-time flip,
the subjects, the frame stride and the cameras, so a second run does not lift again.

Samples are random windows of ``window`` consecutive frames of one sequence (one
subject / take / camera) at the chosen frame stride (Human3.6M is 50 fps; stride 2
gives 25 fps), drawn from the ground-truth-2D or the detected-2D lifts with
probability ``sh_probability`` for the latter; windows with a frame without 2D are never
drawn. Inputs: the lifted 3D (root-relative camera coordinates, metres) and the
lifter's normalised 2D; target: ground-truth root-relative 3D in metres. Mirroring
(left/right swap, x negated) augments whole windows. Loss: MPJPE + ``velocity_weight``
x MPJVE (both metres, velocities per frame at the training rate). Batches are gathered
with one index operation; there is no per-sample Python.

Resumable like :mod:`wsgcn_cli.train.loop`: a checkpoint (model, optimiser, epoch,
history, a fingerprint of the settings) is written atomically after every epoch beside
the output weights as ``<weights>.ckpt`` and read with ``torch.load(weights_only=True)``;
running the same command again resumes. The learning rate decays exponentially from
``lr`` to ``lr_final`` as a function of the step only, so resuming is exact.

Source of the architecture: 3D Human Pose Machines (Wang et al., TPAMI 2019 /
CVPR 2018). Command line (also ``wsgcn train train-refiner`` once wired)::

    python -m wsgcn_cli.train.refine train-refiner [--data DIR] [--device auto]
        [--subjects S1 ...] [--stride N] [--epochs N] [--steps-per-epoch N] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from wsgcn_cli import codec, metrics
from wsgcn_cli.data import h36m
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.lifter import Lifter, resolve_device
from wsgcn_cli.models.refiner import (
    TemporalRefiner,
    build_refiner,
    check_window,
    refine_sequence,
)
from wsgcn_cli.skeletons import H36M17
from wsgcn_cli.train.common import machine_description, resume, save_checkpoint, save_trained

SOURCE_PAPER = "3D Human Pose Machines (Wang et al., TPAMI 2019 / CVPR 2018): bidirectional LSTM over 3D poses"


@dataclass
class RefineConfig:
    """The ``[lifter]``, ``[model]``, ``[codec]``, ``[data]`` and ``[train]`` tables of
    ``pipelines/train-refiner.toml``.

    ``codec`` is ``"lifter"`` (use the lifter's) or a codec mode, which must then equal
    the lifter's. ``stride``: frame stride of the training sequences (2: 25 fps).
    ``frame_steps``: each training window takes every k-th sample, k drawn from these
    (with stride 1, ``[1, 2]`` trains on 50 and 25 fps motion, so that the refiner fits
    videos at either rate). ``window``/``overlap``: training window length (frames) and
    the overlap recorded for inference. ``steps_per_epoch`` x ``batch_size`` windows per epoch.
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
    frame_steps: tuple = (1,)  # frames between a window's samples, drawn per window: several rates
    window: int = 64
    overlap: int = 16
    epochs: int = 20
    steps_per_epoch: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    lr_final: float = 1e-5
    weight_decay: float = 0.0
    velocity_weight: float = 1.0
    accel_weight: float = 0.0
    flip: bool = True
    seed: int = 0
    cache: str = "cache/refiner"
    out: str = "weights/lstm_refiner_h36m.safetensors"
    val: bool = True
    val_cameras: tuple = ("55011271",)
    lift_batch: int = 1024  # faster than larger batches on CPU

    @classmethod
    def from_pipeline(cls, spec: dict) -> "RefineConfig":
        """From a loaded pipeline dict (see :func:`wsgcn_cli.pipeline.load`). Raises WsgcnError."""
        for table in ("lifter", "model", "data", "train"):
            if table not in spec:
                raise WsgcnError(f"refiner pipeline {spec.get('path')} lacks the table [{table}]")
        model = dict(spec["model"])
        cfg = cls(model=model.pop("name", "lstm_refiner"), model_options=model,
                  lifter=spec["lifter"]["weights"], lifter_flip_test=spec["lifter"].get("flip_test", True),
                  codec=spec.get("codec", {}).get("mode", "lifter"))
        for key, value in {**spec["data"], **spec["train"]}.items():
            if key == "dataset":
                continue
            if not hasattr(cfg, key) or key in ("lifter", "model", "model_options", "codec"):
                raise WsgcnError(f"unknown option {key!r} in pipeline {spec.get('path')}")
            setattr(cfg, key, tuple(value) if isinstance(value, list) else value)
        cfg.check()
        return cfg

    def check(self):
        """Raise WsgcnError for inconsistent settings."""
        if self.source not in ("gt", "sh", "gt+sh"):
            raise WsgcnError(f"unknown 2D source {self.source!r}; use gt, sh or gt+sh")
        if self.stride < 1 or self.batch_size < 1 or self.steps_per_epoch < 1 or self.epochs < 0:
            raise WsgcnError("stride, batch_size and steps_per_epoch must be >= 1, epochs >= 0")
        if not self.frame_steps or any(int(k) < 1 for k in self.frame_steps):
            raise WsgcnError(f"frame_steps must be integers >= 1, got {self.frame_steps}")
        if self.window < 2:
            raise WsgcnError(f"training window must be >= 2 frames (velocity loss), got {self.window}")
        check_window(self.window, self.overlap)
        build_refiner(self.model, **self.model_options)  # raises for unknown names / options


# ----------------------------------------------------------------------------- data


def _sizes(data: h36m.H36MSamples):
    return (data.image_size[:, 0, None, None].astype(np.float32),
            data.image_size[:, 1, None, None].astype(np.float32))


def encode_inputs(lifter: Lifter, data: h36m.H36MSamples, source: str) -> np.ndarray:
    """The lifter's normalised 2D (N, 17, 2) of every sample (NaN where no 2D)."""
    w, h = _sizes(data)
    return codec.encode_2d(data.kp2d(source), lifter.codec_mode, w, h).astype(np.float32)


def lift_cached(lifter: Lifter, data: h36m.H36MSamples, source: str, cache: str | Path | None,
                batch: int = 8192, log=print) -> np.ndarray:
    """The lifter's 3D of every sample (N, 17, 3) float32, root-relative metres, NaN where no 2D.

    Cached as ``<cache>/lifted_<source>_<key>.npz``, the key a digest of the lifter's
    sha256, its flip-test setting, the 2D source and the samples' identity (subjects,
    sequences, frames); written atomically. ``cache=None`` disables the cache.
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
    kp = data.kp2d(source)
    ok = np.isfinite(kp).all(axis=(1, 2))
    out = np.full((len(data), 17, 3), np.nan, np.float32)
    w, h = _sizes(data)
    x = codec.encode_2d(kp[ok], lifter.codec_mode, w[ok], h[ok])
    if len(x):
        out[ok] = lifter.predict_normalized(x, batch_size=batch)
    log(f"lifted {int(ok.sum())} {source}-2D samples ({'/'.join(data.subjects)}) in {time.time() - t0:.0f} s")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as tmp:
            np.savez(tmp, pose3d=out)
    return out


def window_starts(sequence: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    """Indices i such that samples i .. i+window-1 are one sequence and all valid (int64).

    Relies on :func:`wsgcn_cli.data.h36m.load`'s order: each sequence's frames are
    contiguous and ascending.
    """
    n = len(sequence)
    if n < window:
        return np.zeros(0, np.int64)
    bad = np.concatenate([[0], np.cumsum(~valid)])
    i = np.arange(n - window + 1)
    ok = (sequence[i] == sequence[i + window - 1]) & (bad[i + window] - bad[i] == 0)
    return i[ok].astype(np.int64)


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
        refiner: a :class:`wsgcn_cli.models.refiner.TemporalRefiner` (its window,
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
        lifted = lift_cached(lifter, data, source, cache, log=lambda *a: None)
    x2d = encode_inputs(lifter, data, source)
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


def _fingerprint(cfg: RefineConfig, lifter_sha: str) -> str:
    ignored = ("epochs", "out", "cache", "val", "val_cameras", "lift_batch")  # do not change the training
    keep = {k: v for k, v in asdict(cfg).items() if k not in ignored}
    keep["lifter_sha256"] = lifter_sha
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=list).encode()).hexdigest()[:16]


def _training_arrays(cfg: RefineConfig, lifter: Lifter, data_root, log):
    """Flat tensors (pose3d in, x2d in, target) over all sources + window start indices
    per (source, frame step)."""
    data = h36m.load(tuple(cfg.subjects), data_root, cfg.stride, cameras=tuple(cfg.cameras),
                     with_sh=cfg.source != "gt")
    target = codec.to_metres_root_relative(data.pose3d).astype(np.float32)
    sources = ("gt", "sh") if cfg.source == "gt+sh" else (cfg.source,)
    poses, xs, starts, offset = [], [], {}, 0
    for src in sources:
        pose = lift_cached(lifter, data, src, cfg.cache, cfg.lift_batch, log)
        x = encode_inputs(lifter, data, src)
        valid = np.isfinite(pose).all(axis=(1, 2)) & np.isfinite(x).all(axis=(1, 2))
        for k in cfg.frame_steps:
            span = (cfg.window - 1) * int(k) + 1
            starts[src, int(k)] = torch.from_numpy(window_starts(data.sequence, valid, span) + offset)
            if len(starts[src, int(k)]) == 0:
                raise WsgcnError(f"no {cfg.window}-frame windows (step {k}) with {src} 2D in "
                                 f"{'/'.join(cfg.subjects)} at stride {cfg.stride}")
        poses.append(np.nan_to_num(pose))
        xs.append(np.nan_to_num(x))
        offset += len(data)
    tensors = (torch.from_numpy(np.concatenate(poses)), torch.from_numpy(np.concatenate(xs)),
               torch.from_numpy(np.tile(target, (len(sources), 1, 1))))
    log(f"data: {len(data)} samples x {len(sources)} 2D source(s) ({'/'.join(cfg.subjects)}, "
        f"{h36m.FPS / cfg.stride:g} fps), windows of {cfg.window}: "
        + ", ".join(f"{s} step {k}: {len(v)}" for (s, k), v in starts.items()))
    return tensors, starts


def train_refiner(cfg: RefineConfig, data_root=None, device: str = "auto", log=print,
                  progress=None, command: str = "") -> dict:
    """Train the refiner; returns a summary dict (weights path, sha256, meta).

    Writes the weights (safetensors, metadata as described in the module docstring)
    to ``cfg.out`` and a resumable checkpoint ``<out>.ckpt`` after every epoch.
    ``log`` receives one line per epoch; ``progress(done_steps, total_steps)`` is optional.
    Raises WsgcnError for missing data or lifter weights, inconsistent settings, a
    lifter whose codec differs from ``cfg.codec``, or a checkpoint made with other settings.
    """
    cfg.check()
    dev = resolve_device(device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ckpt_path = out.with_name(out.name + ".ckpt")
    lifter = Lifter.from_weights(cfg.lifter, flip_test=cfg.lifter_flip_test, device=str(dev))
    if cfg.codec not in ("lifter", lifter.codec_mode):
        raise WsgcnError(f"pipeline codec {cfg.codec!r} differs from the lifter's {lifter.codec_mode!r}")
    fingerprint = _fingerprint(cfg, lifter.sha256)
    ck = torch.load(ckpt_path, map_location=dev, weights_only=True) if ckpt_path.is_file() else None
    if ck is not None and ck.get("fingerprint") != fingerprint:  # before the (long) lifting
        raise WsgcnError(f"checkpoint {ckpt_path} was made with other settings or another lifter; "
                         f"delete it or choose another output")

    t_load = time.time()
    (pose_in, x_in, target), starts = _training_arrays(cfg, lifter, data_root, log)
    pose_in, x_in, target = pose_in.to(dev), x_in.to(dev), target.to(dev)
    starts = {k: v.to(dev) for k, v in starts.items()}
    log(f"training data ready in {time.time() - t_load:.0f} s")
    val_data, val_lifted = {}, {}
    if cfg.val:
        for src in ("gt", "sh"):
            val_data[src] = h36m.load(h36m.TEST_SUBJECTS, data_root, cfg.stride, cameras=tuple(cfg.val_cameras),
                                      with_sh=src == "sh")
            val_lifted[src] = lift_cached(lifter, val_data[src], src, cfg.cache, cfg.lift_batch, log)

    model = build_refiner(cfg.model, **cfg.model_options).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps = cfg.steps_per_epoch * cfg.epochs
    gamma = (cfg.lr_final / cfg.lr) ** (1.0 / max(total_steps, 1))
    perm = torch.as_tensor(H36M17.flip_permutation(), device=dev)
    ar = torch.arange(cfg.window, device=dev)

    keys = ("epoch", "loss_mm", "lifter_mpjpe_mm", "mpjpe_mm", "mpjve_mm", "val_gt_mm", "val_gt_lifter_mm",
            "val_sh_mm", "val_sh_lifter_mm", "val_sh_mpjve_mm", "val_sh_lifter_mpjve_mm")
    start_epoch, wall_before, history = resume(ckpt_path, model, opt, keys, log, ck=ck)

    t0 = time.time()
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
        n_all = cfg.steps_per_epoch * cfg.batch_size
        # each window: a 2D source, a frame step, then a start among that pair's windows;
        # `starts` is ordered source by source, frame step by frame step
        picks = torch.stack([v[torch.randint(len(v), (n_all,), generator=g).to(dev)] for v in starts.values()])
        n_steps = len(cfg.frame_steps)
        if cfg.source == "gt+sh":
            src_i = (torch.rand(n_all, generator=g) < cfg.sh_probability).long()
        else:
            src_i = torch.zeros(n_all, dtype=torch.long)
        step_i = torch.randint(n_steps, (n_all,), generator=g)
        first = picks[(src_i * n_steps + step_i).to(dev), torch.arange(n_all, device=dev)]
        steps = torch.as_tensor([int(k) for k in cfg.frame_steps])[step_i].to(dev)
        flips = (torch.rand(n_all, generator=g) < 0.5).to(dev) if cfg.flip else None
        sums = torch.zeros(4, device=dev)
        try:
            for s in range(cfg.steps_per_epoch):
                step = epoch * cfg.steps_per_epoch + s
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * gamma**step
                sl = slice(s * cfg.batch_size, (s + 1) * cfg.batch_size)
                idx = first[sl, None] + ar * steps[sl, None]  # (B, W)
                pb, xb, yb = pose_in[idx], x_in[idx], target[idx]
                if flips is not None:
                    fb = flips[sl, None, None, None]
                    pb = torch.where(fb, codec.flip_3d(pb, perm), pb)
                    xb = torch.where(fb, codec.flip_2d(xb, perm), xb)
                    yb = torch.where(fb, codec.flip_3d(yb, perm), yb)
                pred = model(pb, xb)
                pos = torch.linalg.vector_norm(pred - yb, dim=-1).mean()
                vel = torch.linalg.vector_norm(torch.diff(pred, dim=1) - torch.diff(yb, dim=1), dim=-1).mean()
                loss = pos + cfg.velocity_weight * vel
                if cfg.accel_weight:
                    acc = torch.linalg.vector_norm(torch.diff(pred, 2, dim=1) - torch.diff(yb, 2, dim=1), dim=-1)
                    loss = loss + cfg.accel_weight * acc.mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    base = torch.linalg.vector_norm(pb - yb, dim=-1).mean()
                sums += torch.stack([loss.detach(), base, pos.detach(), vel.detach()])
                if progress is not None:
                    progress(step + 1, total_steps)
        except KeyboardInterrupt:
            log(f"interrupted in epoch {epoch + 1}; the checkpoint holds epoch {epoch}: run again to resume")
            raise
        mean = (1000 * sums / cfg.steps_per_epoch).tolist()
        row = {"epoch": epoch + 1, "loss_mm": mean[0], "lifter_mpjpe_mm": mean[1], "mpjpe_mm": mean[2],
               "mpjve_mm": mean[3]}
        line = (f"epoch {epoch + 1}/{cfg.epochs}: loss {mean[0]:.2f} mm, train windows MPJPE lifter "
                f"{mean[1]:.2f} -> refined {mean[2]:.2f} mm, MPJVE {mean[3]:.2f} mm/frame")
        if cfg.val:
            model.eval()
            r = {src: evaluate_refined(lifter, model, src, data_root, stride=cfg.stride, cameras=cfg.val_cameras,
                                       window=cfg.window, overlap=cfg.overlap, data=val_data[src],
                                       lifted=val_lifted[src]) for src in ("gt", "sh")}
            row.update(val_gt_mm=r["gt"]["refined"]["mpjpe_mm"], val_gt_lifter_mm=r["gt"]["lifter"]["mpjpe_mm"],
                       val_sh_mm=r["sh"]["refined"]["mpjpe_mm"], val_sh_lifter_mm=r["sh"]["lifter"]["mpjpe_mm"],
                       val_sh_mpjve_mm=r["sh"]["refined"]["mpjve_mm"],
                       val_sh_lifter_mpjve_mm=r["sh"]["lifter"]["mpjve_mm"])
            line += (f"; S9/S11 cam {'/'.join(cfg.val_cameras)} MPJPE gt-2D {row['val_gt_lifter_mm']:.2f} -> "
                     f"{row['val_gt_mm']:.2f} mm, sh-2D {row['val_sh_lifter_mm']:.2f} -> {row['val_sh_mm']:.2f} mm, "
                     f"sh MPJVE {row['val_sh_lifter_mpjve_mm']:.2f} -> {row['val_sh_mpjve_mm']:.2f} mm/frame")
        history.append(row)
        wall = wall_before + time.time() - t0
        log(f"{line}, lr {opt.param_groups[0]['lr']:.2e}, {wall / 60:.1f} min")
        save_checkpoint({
            "model": model.state_dict(), "optim": opt.state_dict(), "epoch": epoch + 1, "wall_s": wall,
            "fingerprint": fingerprint,
            "history": torch.tensor([[h.get(k, float("nan")) for k in keys] for h in history], dtype=torch.float64),
        }, ckpt_path)

    wall = wall_before + time.time() - t0
    meta = {
        "model": cfg.model, "model_options": cfg.model_options, "layout": "h36m17", "codec": lifter.codec_mode,
        "lifter_sha256": lifter.sha256, "lifter_weights": Path(cfg.lifter).name,
        "lifter_flip_test": cfg.lifter_flip_test, "window": cfg.window, "overlap": cfg.overlap,
        "frame_stride": cfg.stride, "fps": h36m.FPS / cfg.stride,
        "frame_steps": [int(k) for k in cfg.frame_steps],
        "trained_fps": [h36m.FPS / (cfg.stride * int(k)) for k in cfg.frame_steps],
        "input": "lifter 3D (T,17,3) root-relative camera coordinates, metres + lifter-normalised 2D (T,17,2)",
        "output": "root-relative camera coordinates, metres", "architecture": SOURCE_PAPER,
        "trained_on": {"dataset": "Human3.6M", "subjects": list(cfg.subjects), "cameras": list(cfg.cameras),
                       "source_2d": cfg.source, "sh_probability": cfg.sh_probability, "stride": cfg.stride},
        "loss": f"MPJPE + {cfg.velocity_weight} x MPJVE + {cfg.accel_weight} x acceleration error (metres)",
        "epochs": cfg.epochs, "steps_per_epoch": cfg.steps_per_epoch, "batch_size": cfg.batch_size,
        "lr": cfg.lr, "lr_final": cfg.lr_final, "weight_decay": cfg.weight_decay,
        "velocity_weight": cfg.velocity_weight, "accel_weight": cfg.accel_weight, "flip_augmentation": cfg.flip, "seed": cfg.seed,
        "wall_time_s": round(wall, 1),
        "machine": machine_description(dev),
        "torch": torch.__version__, "command": command, "history": history,
    }
    return save_trained(out, model, meta, log)


def train_from_spec(spec: dict, data=None, device: str = "auto", log=print, progress=None,
                    command: str = "", **overrides) -> dict:
    """Train from a loaded ``train-refiner`` pipeline; relative paths resolve against the
    repository root; ``overrides`` replace config fields (e.g. ``subjects``, ``stride``)."""
    from wsgcn_cli import pipeline as pipelines

    cfg = RefineConfig.from_pipeline(spec)
    for key, value in overrides.items():
        if value is not None:
            if not hasattr(cfg, key):
                raise WsgcnError(f"unknown refiner option {key!r}")
            setattr(cfg, key, tuple(value) if isinstance(value, list) else value)
    cfg.check()
    cfg.lifter = str(pipelines.resolve_path(cfg.lifter))
    cfg.out = str(pipelines.resolve_path(cfg.out))
    cfg.cache = str(pipelines.resolve_path(cfg.cache)) if cfg.cache else ""
    return train_refiner(cfg, data_root=data, device=device, log=log, progress=progress, command=command)


def main(argv=None) -> int:
    """``python -m wsgcn_cli.train.refine PIPELINE [options]``; user errors print one line."""
    p = argparse.ArgumentParser(description="Train the temporal refiner (LSTM) on the lifter's Human3.6M outputs.")
    p.add_argument("pipeline", nargs="?", default="train-refiner")
    p.add_argument("--data", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--subjects", nargs="+", default=None)
    p.add_argument("--stride", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--steps-per-epoch", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--cache", default=None)
    p.add_argument("--no-val", action="store_true")
    args = p.parse_args(argv)
    from wsgcn_cli import pipeline as pipelines

    # paths given on the command line are relative to the working directory
    out = str(Path(args.out).resolve()) if args.out else None
    cache = str(Path(args.cache).resolve()) if args.cache else None
    command = "python -m wsgcn_cli.train.refine " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        spec = pipelines.load(args.pipeline, kind="train")
        train_from_spec(spec, data=args.data, device=args.device, command=command,
                        subjects=args.subjects, stride=args.stride, epochs=args.epochs,
                        steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size, out=out,
                        cache=cache, val=False if args.no_val else None)
    except WsgcnError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
