"""The Python API; the ``wsgcn`` command line is a thin layer over these functions.

* :func:`train` — train a lifter from a train pipeline, evaluate it, write its model card.
* :func:`evaluate` — Human3.6M MPJPE / P-MPJPE of a weights file.
* :func:`lift` — video / image / folder -> 3D pose file + overlay video.
* :func:`render` — re-render the overlay or a 3D-only animation from a pose file.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
from pathlib import Path

from wsgcn_cli import pipeline as pipelines
from wsgcn_cli.errors import WsgcnError


@contextlib.contextmanager
def progress_bar(description: str, total: int | None, quiet: bool = False):
    """A rich progress bar; yields ``advance(done, total=None)`` (a no-op when quiet)."""
    if quiet:
        yield lambda done, total=None: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), transient=False) as bar:
        task = bar.add_task(description, total=total)

        def advance(done, new_total=None):
            bar.update(task, completed=done, total=new_total or bar.tasks[0].total)

        yield advance


def _console(quiet: bool):
    from rich.console import Console

    return Console(stderr=True, quiet=quiet)


def train(pipeline: str, data: str | None = None, device: str = "auto", quiet: bool = False,
          evaluate_after: bool = True) -> dict:
    """Train the lifter described by a train pipeline (name or path).

    Writes the weights (safetensors) named by the pipeline's ``train.out``, a resumable
    checkpoint beside them while training, and a model card (``.md``) with the
    training command, data, epochs, wall time, machine and the measured Human3.6M
    tables (ground-truth and Stacked-Hourglass 2D input). Returns the training summary
    with the evaluation results under ``"eval"``.
    """
    from wsgcn_cli.train.loop import TrainConfig, train as run_training

    spec = pipelines.load(pipeline, kind="train")
    cfg = TrainConfig.from_pipeline(spec)
    cfg.out = str(pipelines.resolve_path(cfg.out))
    if cfg.init_weights:
        cfg.init_weights = str(pipelines.resolve_path(cfg.init_weights))
    console = _console(quiet)
    command = "wsgcn train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if sys.argv[1:2] == ["train"] else f"wsgcn train {pipeline}"
    with progress_bar(f"training {spec['name']}", None, quiet) as advance:
        summary = run_training(cfg, data_root=data, device=device, log=console.print,
                               progress=advance, command=command)
    if evaluate_after:
        results = {src: evaluate(summary["weights"], data=data, source=src, device=device, quiet=quiet)
                   for src in ("gt", "sh")}
        summary["eval"] = results
        from wsgcn_cli.model_card import write_card

        write_card(summary["weights"], spec, results)
    return summary


def evaluate(weights: str, data: str | None = None, source: str = "gt", stride: int = 1,
             device: str = "auto", json_out: str | None = None, flip_test: bool = True,
             quiet: bool = False) -> dict:
    """Evaluate a weights file on Human3.6M S9/S11 (Protocols 1 and 2, per action).

    ``source``: 2D input, ``"gt"`` or ``"sh"``. Prints a rich table unless quiet;
    writes the result as JSON to ``json_out`` if given. Returns the result dict
    (see :func:`wsgcn_cli.evaluate.evaluate`).
    """
    from wsgcn_cli.evaluate import evaluate as run_eval, table
    from wsgcn_cli.io.atomic import atomic_write
    from wsgcn_cli.lifter import Lifter

    if source not in ("gt", "sh"):
        raise WsgcnError(f"unknown 2D source {source!r}; use gt or sh")
    lifter = Lifter.from_weights(_weights_path(weights), flip_test=flip_test, device=device)
    result = run_eval(lifter, root=data, source=source, stride=stride)
    result["weights"] = str(weights)
    result["weights_sha256"] = lifter.sha256
    result["flip_test"] = flip_test
    if not quiet:
        _console(False).print(table(result))
    if json_out:
        with atomic_write(json_out) as tmp:
            Path(tmp).write_text(json.dumps(result, indent=2))
    return result


def _weights_path(weights: str) -> Path:
    p = Path(weights)
    if p.is_file():
        return p
    shipped = pipelines.ROOT / "weights" / p.name
    if shipped.is_file():
        return shipped
    shipped = shipped.with_suffix(".safetensors")
    if shipped.is_file():
        return shipped
    raise WsgcnError(f"weights file not found: {weights}")
