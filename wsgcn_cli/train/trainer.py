"""The one training loop: what every training run shares, whatever it trains.

A :class:`Trainer` owns the device, the seed, Adam and its learning-rate schedule, bf16
autocast, epochs of index samples drawn from a seeded generator, gradient clipping,
progress, Ctrl-C, resuming from a checkpoint with a fingerprint of the settings,
history, keep-best, saving weights with metadata, the model card and the learning
curve. A *task* (:class:`Task`) supplies only what differs: its models, the loss of a
batch of sample indices, its validation and what it saves (``train/lifter.py`` is one).

Schedule. Adam with an exponential learning-rate decay from ``lr`` to ``lr_final`` over
the run: a function of the step only, so a resumed run follows the same curve. A run
that starts from earlier weights (``init_weights``, e.g. the shipped ones when a long
run's checkpoint is gone) restarts that schedule (a warm restart, as SGDR) and counts
the samples those weights had already seen, so the card and the learning curve give the
total.

Precision. With ``bf16`` the forward pass of the task's loss runs under
``torch.autocast(dtype=torch.bfloat16)`` (the matrix products in bf16); tasks compute
their losses in fp32 (``pred.float()``), the optimiser state stays fp32. ``"auto"``
turns it on on CUDA and on CPUs with AMX-BF16 or AVX512-BF16, where it pays.
Validation always runs in fp32.

Resume. After every epoch, rank 0 writes ``<checkpoint>`` atomically (model(s),
optimiser, epoch, samples seen, wall time, history, fingerprint; read back with
``torch.load(weights_only=True)``). Running the same command again continues from it;
a checkpoint written with other settings is refused (one-line error). Ctrl-C stops at
once and keeps the checkpoint of the last full epoch.

Distributed. Under ``torchrun`` (``torch.distributed`` initialised from the
environment: gloo on CPU, NCCL on CUDA) the task's step runs inside
``DistributedDataParallel``: every rank takes its share of each global batch of
``batch_size`` indices (the same indices a single process would draw), gradients and
BatchNorm buffers are synchronised by DDP, and rank 0 alone writes checkpoints,
weights, cards and curves.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.io.atomic import atomic_write


@dataclass
class Schedule:
    """The ``[train]`` keys the Trainer owns (a task's own keys go to the task).

    Attributes:
        epochs: epochs in this run; samples_per_epoch: indices drawn per epoch (0: all
            the task's samples, a permutation).
        batch_size: global batch (all ranks together); lr, lr_final: Adam's learning
            rate at the first and the last step (exponential decay in between).
        weight_decay: Adam's L2 term; max_grad_norm: gradient-norm clipping (0: off).
        seed: seeds the model's initialisation, the sample order and augmentation.
        bf16: ``"auto"``, ``true`` or ``false`` (see the module docstring).
        out: weights file written at the end (and at every kept best).
        init_weights: start from these weights (fine-tuning, or a warm restart).
        checkpoint: resumable state (default ``runs/<out stem>.ckpt``, outside git).
        keep_best: a validation metric (lower is better) for which the best epoch's
            weights are kept: written to ``out`` as soon as it improves, and the end of
            the run keeps them rather than the last epoch's. Empty: keep the last.
        patience: stop after this many epochs without a better ``keep_best`` (0: never).
        curve: learning-curve JSON (and a PNG beside it) written with the weights;
            default ``benchmarks/results/train_curve_<out stem>.json``.
        warmup_steps: the learning rate rises linearly over the first steps (large
            batches on a GPU); 0: none.
    """

    epochs: int = 10
    samples_per_epoch: int = 0
    batch_size: int = 256
    lr: float = 1e-3
    lr_final: float = 1e-5
    weight_decay: float = 0.0
    max_grad_norm: float = 0.0
    seed: int = 0
    bf16: str | bool = "auto"
    out: str = "weights/model.safetensors"
    init_weights: str = ""
    checkpoint: str = ""
    keep_best: str = ""
    patience: int = 0
    curve: str = ""
    warmup_steps: int = 0

    @classmethod
    def split(cls, table: dict) -> tuple["Schedule", dict]:
        """(Schedule of the keys it knows, the rest) from a ``[train]`` table."""
        names = {f.name for f in fields(cls)}
        own = {k: v for k, v in table.items() if k in names}
        return cls(**own), {k: v for k, v in table.items() if k not in names}


class Task:
    """What a training run needs from its task; subclass and fill in.

    Attributes set by :meth:`setup`: ``modules`` (name -> nn.Module: what is trained,
    saved in checkpoints and, by :meth:`save`, in the weights).
    """

    name = "task"
    modules: dict[str, nn.Module]

    def setup(self, trainer: "Trainer") -> None:
        """Load data, build ``self.modules`` on ``trainer.device``."""
        raise NotImplementedError

    def parameters(self):
        """Parameters the optimiser changes (default: every parameter of ``modules``)."""
        return [p for m in self.modules.values() for p in m.parameters() if p.requires_grad]

    def init_from(self, path: str) -> dict:
        """Load ``init_weights`` into the modules; returns their metadata."""
        raise NotImplementedError

    def num_samples(self) -> int:
        raise NotImplementedError

    def start_epoch(self, epoch: int) -> None:
        """Called before each epoch (0-based), e.g. for phases such as a warm-up."""

    def loss(self, idx: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, dict]:
        """(scalar loss, {name: float tensor to log}) of the samples ``idx`` (on the device);
        ``gen`` draws the batch's augmentation (seeded per epoch and rank)."""
        raise NotImplementedError

    def validate(self) -> dict[str, float]:
        """Validation metrics after an epoch (fp32, eval mode); lower is better."""
        return {}

    def save(self, out: Path, meta: dict) -> str:
        """Write the weights with ``meta`` (plus the task's own keys); returns sha256."""
        raise NotImplementedError

    def fingerprint(self) -> dict:
        """Settings that must match for a checkpoint to be resumed."""
        return {}


class _Step(nn.Module):
    """The task's loss as one module, so DistributedDataParallel can wrap it."""

    def __init__(self, task: Task):
        super().__init__()
        self.task = task
        self.mods = nn.ModuleDict(task.modules)

    def forward(self, idx, gen):
        return self.task.loss(idx, gen)


def bf16_supported(device: torch.device) -> bool:
    """True on CUDA with bf16, and on CPUs with AMX-BF16 or AVX512-BF16 (Linux cpuinfo)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def machine_description(device: torch.device) -> str:
    """``"x86_64 2 cores, CPU"`` or ``"x86_64 16 cores, NVIDIA H200"``: for model cards."""
    accel = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    threads = torch.get_num_threads()
    return f"{platform.machine()} {os.cpu_count()} cores ({threads} training thread{'s' if threads != 1 else ''}), {accel}"


def _dist():
    """(rank, world size) of an initialised torch.distributed group, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def init_distributed(device: torch.device) -> torch.device:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1 in the
    environment): gloo on CPU, NCCL on CUDA (one GPU per process, ``LOCAL_RANK``).
    Returns the device this process trains on; without torchrun, ``device`` unchanged."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not torch.distributed.is_available():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


class Trainer:
    """Runs a :class:`Task` under a :class:`Schedule` (see the module docstring).

    Args:
        task: the task; schedule: its ``[train]`` settings; device: a torch device.
        log: receives one line per event (epoch results, resume, saves).
        progress: optional ``progress(done_steps, total_steps)``.
        command: the command line, recorded in the weights and the card.
    """

    def __init__(self, task: Task, schedule: Schedule, device: torch.device, log=print,
                 progress=None, command: str = ""):
        self.task, self.s, self.device = task, schedule, init_distributed(torch.device(device))
        self.log, self.progress, self.command = log, progress, command
        self.rank, self.world = _dist()
        if self.rank != 0:  # one voice: the other ranks only train
            self.log, self.progress = (lambda *a, **k: None), None
        bf16 = schedule.bf16
        self.bf16 = bf16_supported(self.device) if bf16 == "auto" else bool(bf16)
        self.out = Path(schedule.out)
        self.ckpt_path = Path(schedule.checkpoint or Path("runs") / (self.out.stem + ".ckpt"))
        self.curve_path = Path(schedule.curve or Path("benchmarks/results") / f"train_curve_{self.out.stem}.json")

    # -- small pieces -------------------------------------------------------------------
    def autocast(self):
        """bf16 autocast context when on, else a no-op."""
        if not self.bf16:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _fingerprint(self) -> str:
        base = asdict(Schedule())  # only settings that differ from the defaults: new options keep old runs resumable
        keys = {k: v for k, v in asdict(self.s).items()
                if v != base[k] and k not in ("out", "checkpoint", "curve", "epochs", "patience")}
        blob = json.dumps({"schedule": keys, "task": self.task.fingerprint()},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def _save_checkpoint(self, state: dict) -> None:
        if self.rank != 0:
            return
        self.ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.ckpt_path) as tmp:
            torch.save(state, tmp)

    def _load_checkpoint(self, opt) -> dict | None:
        if not self.ckpt_path.is_file():
            return None
        try:
            ck = torch.load(self.ckpt_path, map_location=self.device, weights_only=True)
        except Exception as e:  # truncated or foreign file: say which, never unpickle it
            raise WsgcnError(f"cannot read checkpoint {self.ckpt_path}: {type(e).__name__}; delete it to start over")
        if ck.get("fingerprint") != self._fingerprint():
            raise WsgcnError(f"checkpoint {self.ckpt_path} was written with other settings; "
                             "delete it (or set train.checkpoint) to start a new run")
        for name, m in self.task.modules.items():
            m.load_state_dict(ck["modules"][name])
        opt.load_state_dict(ck["optim"])
        return ck

    def write_curve(self, history: list[dict], meta: dict) -> Path | None:
        """Learning curve: JSON (samples seen, wall s, metrics per epoch) and a PNG beside it."""
        if self.rank != 0 or not history:
            return None
        from wsgcn_cli.io.atomic import write_json

        doc = {"weights": self.out.name, "command": self.command, "machine": meta.get("machine"),
               "init_weights": meta.get("init_weights", ""), "samples_seen_before": meta.get("samples_seen_before", 0),
               "points": history}
        write_json(self.curve_path, doc)
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return self.curve_path
        keys = [k for k in history[-1] if k.startswith("val_")] or ["loss"]
        fig, ax = plt.subplots(figsize=(7, 4))
        x = [h["samples_seen"] / 1e6 for h in history]
        for k in keys:
            ax.plot(x, [h.get(k, float("nan")) for h in history], marker=".", label=k)
        ax.set_xlabel("samples seen (millions)")
        ax.set_ylabel(getattr(self.task, "curve_unit", "validation error"))
        ax.set_title(self.out.stem)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        with atomic_write(self.curve_path.with_suffix(".png")) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
        return self.curve_path

    def _save(self, meta: dict, history: list[dict]) -> str:
        for m in self.task.modules.values():
            m.eval()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        digest = self.task.save(self.out, {**meta, "history": history})
        self.write_curve(history, meta)
        return digest

    def _check_ranks_agree(self) -> float:
        """Largest difference of any parameter or buffer between this rank and rank 0
        (logged by rank 0; DDP keeps them equal, so anything above 0 is a bug)."""
        worst = torch.zeros((), device=self.device)
        for m in self.task.modules.values():
            for t in list(m.state_dict().values()):
                if not t.is_floating_point():
                    continue
                ref = t.detach().clone()
                torch.distributed.broadcast(ref, 0)
                worst = torch.maximum(worst, (ref - t).abs().max())
        torch.distributed.all_reduce(worst, op=torch.distributed.ReduceOp.MAX)
        self.log(f"{self.world} processes end with the same weights: max |difference| {float(worst):.3g}")
        return float(worst)

    # -- the loop ------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train (or resume), validate each epoch, save; returns a summary dict
        (``weights``, ``sha256``, ``meta``, ``history``, ``best``)."""
        s, dev, task = self.s, self.device, self.task
        torch.manual_seed(s.seed)
        t_setup = time.time()
        task.setup(self)
        seen_before, init_meta = 0, {}
        if s.init_weights:
            init_meta = task.init_from(s.init_weights) or {}
            seen_before = int(init_meta.get("samples_seen_total") or
                              init_meta.get("epochs", 0) * init_meta.get("samples_per_epoch", 0))
        params = task.parameters()
        opt = torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay)
        n = task.num_samples()
        per_epoch = s.samples_per_epoch or n  # more than n: drawn with replacement
        steps = per_epoch // s.batch_size
        if steps < 1:
            raise WsgcnError(f"batch_size {s.batch_size} is larger than the {per_epoch} samples of an epoch")
        total = steps * s.epochs
        gamma = (s.lr_final / s.lr) ** (1.0 / max(total, 1))
        step_mod = _Step(task)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            step_mod = DistributedDataParallel(step_mod, device_ids=[dev.index] if dev.type == "cuda" else None)

        ck = self._load_checkpoint(opt)
        start, wall_before, history, best = 0, 0.0, [], None
        stale = 0  # epochs since the best one (patience)
        if ck is not None:
            start, wall_before = int(ck["epoch"]), float(ck["wall_s"])
            history, best = json.loads(ck["history"]), ck.get("best")
            stale = start - best["epoch"] if best else 0
            self.log(f"resumed from {self.ckpt_path} at epoch {start} of {s.epochs}")
        meta = {
            "epochs": s.epochs, "samples_per_epoch": per_epoch, "batch_size": s.batch_size, "lr": s.lr,
            "lr_final": s.lr_final, "weight_decay": s.weight_decay, "max_grad_norm": s.max_grad_norm,
            "seed": s.seed, "bf16_autocast": self.bf16, "init_weights": s.init_weights,
            "samples_seen_before": seen_before, "machine": machine_description(dev), "processes": self.world,
            "torch": torch.__version__, "command": self.command,
        }
        if seen_before:
            self.log(f"warm restart from {s.init_weights} ({seen_before / 1e6:.2f} M samples seen before)")
        self.log(f"{task.name}: {n} samples, {s.epochs} epochs x {steps} steps of {s.batch_size}, "
                 f"bf16 autocast {'on' if self.bf16 else 'off'}, set up in {time.time() - t_setup:.0f} s")

        if ck is None and s.keep_best and s.init_weights and self.rank == 0:
            for m in task.modules.values():  # the starting point is the best to beat
                m.eval()
            with torch.no_grad():
                metrics = task.validate()
            if s.keep_best in metrics:
                best = {"epoch": 0, "value": metrics[s.keep_best]}
                history.append({"epoch": 0, "samples_seen": seen_before, "wall_s": 0.0, **metrics})
                self.log(f"start ({s.init_weights}): " + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()))
        t0 = time.time()
        for epoch in range(start, s.epochs):
            for m in task.modules.values():
                m.train()
            task.start_epoch(epoch)
            g = torch.Generator().manual_seed(s.seed * 100003 + epoch)
            order = (torch.randperm(n, generator=g) if per_epoch <= n
                     else torch.randint(n, (per_epoch,), generator=g))[: steps * s.batch_size].to(dev)
            gen = torch.Generator(device=dev).manual_seed(s.seed * 100003 + epoch * 131 + self.rank + 7)
            sums: dict[str, torch.Tensor] = {}
            t_epoch = time.time()
            try:
                for i in range(steps):
                    step = epoch * steps + i
                    for group in opt.param_groups:
                        group["lr"] = s.lr * gamma**step * min(1.0, (step + 1) / (s.warmup_steps + 1))
                    idx = order[i * s.batch_size : (i + 1) * s.batch_size][self.rank :: self.world]
                    with self.autocast():
                        loss, logs = step_mod(idx, gen)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if s.max_grad_norm:
                        torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm)
                    opt.step()
                    for k, v in {"loss": loss, **logs}.items():
                        sums[k] = sums.get(k, 0.0) + v.detach().float()
                    if self.progress is not None:
                        self.progress(step + 1, total)
            except KeyboardInterrupt:
                self.log(f"interrupted in epoch {epoch + 1}; {self.ckpt_path} holds epoch {epoch}: run again to resume")
                raise
            rate = steps * s.batch_size / max(time.time() - t_epoch, 1e-9)
            for m in task.modules.values():
                m.eval()
            with torch.no_grad():
                metrics = task.validate() if self.rank == 0 else {}
            wall = wall_before + time.time() - t0
            row = {"epoch": epoch + 1, "samples_seen": seen_before + (epoch + 1) * per_epoch,
                   "wall_s": round(wall, 1), "samples_per_s": round(rate, 1), "lr": opt.param_groups[0]["lr"]}
            row.update({k: float(v) / steps for k, v in sums.items()})
            row.update(metrics)
            history.append(row)
            shown = ", ".join(f"{k} {v:.2f}" for k, v in metrics.items())
            self.log(f"epoch {epoch + 1}/{s.epochs}: loss {row['loss']:.4f}, {shown}, lr {row['lr']:.2e}, "
                     f"{rate:.0f} samples/s, {row['samples_seen'] / 1e6:.2f} M samples seen, {wall / 60:.1f} min")
            improved = False
            if s.keep_best and self.rank == 0:
                if s.keep_best not in metrics:
                    raise WsgcnError(f"keep_best {s.keep_best!r} is not a validation metric of "
                                     f"{task.name}: {', '.join(metrics)}")
                value = metrics[s.keep_best]
                improved = best is None or value < best["value"]
                if improved:
                    best = {"epoch": epoch + 1, "value": value}
                    self._save({**meta, "wall_time_s": round(wall, 1), "samples_seen_total": row["samples_seen"],
                                "best_epoch": epoch + 1}, history)
                    self.log(f"best {s.keep_best} so far ({value:.2f}): wrote {self.out}")
            if not improved:  # the curve grows every epoch, whether or not the weights change
                self.write_curve(history, {**meta, "wall_time_s": round(wall, 1)})
            stale = 0 if improved else stale + 1
            stop = bool(s.patience and s.keep_best and stale >= s.patience)
            if self.world > 1:  # rank 0 decides; every rank follows
                flag = torch.tensor([float(stop)], device=dev)
                torch.distributed.broadcast(flag, 0)
                stop = bool(flag.item())
            self._save_checkpoint({
                "modules": {k: m.state_dict() for k, m in task.modules.items()}, "optim": opt.state_dict(),
                "epoch": epoch + 1, "wall_s": wall, "history": json.dumps(history), "best": best,
                "fingerprint": self._fingerprint(),
            })
            if stop:
                self.log(f"no better {s.keep_best} for {s.patience} epochs: stopping early")
                break

        wall = wall_before + time.time() - t0
        final = {**meta, "wall_time_s": round(wall, 1),
                 "samples_seen_total": history[-1]["samples_seen"] if history else seen_before}
        if self.rank == 0:
            if s.keep_best and best is not None:
                self.write_curve(history, final)  # weights already hold the best epoch
                if best["epoch"] == 0:
                    self.log(f"no epoch beat the starting weights ({s.keep_best} {best['value']:.2f})")
                else:
                    self.log(f"kept epoch {best['epoch']} ({s.keep_best} {best['value']:.2f})")
            else:
                self._save(final, history)
        if self.world > 1:
            self._check_ranks_agree()
            torch.distributed.barrier()
        from wsgcn_cli.weights import sha256

        digest = sha256(self.out) if self.out.is_file() else ""
        self.log(f"{self.out} (sha256 {digest[:12]}…), {len(history)} epochs, {wall / 60:.1f} min")
        return {"weights": str(self.out), "sha256": digest, "meta": final, "history": history, "best": best}
