"""Train pipelines -> the Trainer's settings, and small pieces the tasks share.

:func:`schedule_from_spec` and :func:`fill_config` turn a loaded train pipeline into a
:class:`~wsgcn_cli.train.trainer.Schedule` and a task's own config; :func:`changed_settings`
and :func:`load_init` are the fingerprint and the ``init_weights`` of a task.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import torch

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.train.trainer import Schedule


def schedule_from_spec(spec: dict) -> tuple[Schedule, dict]:
    """(Schedule, the task's own ``[train]`` keys) of a loaded train pipeline.

    Paths: ``out`` relative to the repository root; ``init_weights``, ``checkpoint``
    and ``curve`` beside the pipeline file first (see
    :func:`wsgcn_cli.pipeline.resolve_path`). Defaults: checkpoint
    ``<repo>/runs/<out stem>.ckpt``, curve ``<repo>/benchmarks/results/train_curve_<out stem>.json``.
    """
    from wsgcn_cli import pipeline as pipelines

    schedule, rest = Schedule.split(spec.get("train", {}))
    schedule.out = str(pipelines.resolve_path(schedule.out))
    for key in ("init_weights", "checkpoint", "curve"):
        if getattr(schedule, key):
            setattr(schedule, key, str(pipelines.resolve_path(getattr(schedule, key), spec)))
    stem = Path(schedule.out).stem
    schedule.checkpoint = schedule.checkpoint or str(pipelines.ROOT / "runs" / f"{stem}.ckpt")
    schedule.curve = schedule.curve or str(pipelines.ROOT / "benchmarks" / "results" / f"train_curve_{stem}.json")
    return schedule, rest


def fill_config(cfg, items: dict, where: str = "", fixed: tuple = ()):
    """Set the dataclass fields of ``cfg`` from ``items`` (lists become tuples) and return it.

    Raises WsgcnError for a key that is not a field, or is one of ``fixed`` (fields set
    from their own tables); ``where`` names the pipeline in the message.
    """
    names = {f.name for f in fields(cfg)} - set(fixed)
    for key, value in items.items():
        if key not in names:
            raise WsgcnError(f"unknown option {key!r} in pipeline {where}")
        setattr(cfg, key, tuple(value) if isinstance(value, list) else value)
    return cfg


def changed_settings(cfg, ignored: tuple = ()) -> dict:
    """The fields of the dataclass ``cfg`` that differ from its defaults, less ``ignored``:
    a task's part of a checkpoint's fingerprint (an option added later, at its default,
    keeps older runs resumable)."""
    base = type(cfg)()
    return {f.name: getattr(cfg, f.name) for f in fields(cfg)
            if f.name not in ignored and getattr(cfg, f.name) != getattr(base, f.name)}


def load_init(module: torch.nn.Module, path: str | Path, kind: str, model: str, options: dict,
              device) -> tuple[dict, str]:
    """Load earlier weights (``init_weights``) of ``model`` with ``options`` into ``module``
    through :func:`wsgcn_cli.weights.load_model`; returns (their metadata, sha256).

    Raises WsgcnError for unreadable weights, weights of another kind (see
    :data:`wsgcn_cli.weights.KINDS`), or of another model or options.
    """
    from wsgcn_cli.weights import load_model

    loaded, meta, digest = load_model(path, kind, device=device)
    if (meta.get("model"), meta.get("model_options", {})) != (model, options):
        raise WsgcnError(f"init weights {path} are {meta.get('model')} {meta.get('model_options')}, "
                         f"not {model} {options}")
    module.load_state_dict(loaded.state_dict())
    return meta, digest

