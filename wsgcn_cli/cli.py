"""The ``wsgcn`` command line (Typer): parses options and calls :mod:`wsgcn_cli.api`.

Errors the user can fix (:class:`~wsgcn_cli.errors.WsgcnError`) print one line,
``error: ...``, and exit with status 1, without a traceback; Ctrl-C exits with 130.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import typer

from wsgcn_cli import __version__
from wsgcn_cli.errors import WsgcnError

app = typer.Typer(
    name="wsgcn",
    help="Video of people to 3D human pose, offline: detector -> 2D -> GCN lifter -> 3D.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Device = typer.Option("auto", "--device", help="auto, cpu or cuda.")
Quiet = typer.Option(False, "--quiet", "-q", help="No progress bars or tables.")
Data = typer.Option(None, "--data", help="Folder of the Human3.6M files (default ../shared/data/h36m).")


def _version(value: bool):
    if value:
        typer.echo(f"wsgcn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    """wsgcn: 3D human pose from video."""


@app.command()
def lift(
    inputs: List[Path] = typer.Argument(..., help="Video file(s), image file(s) or folder(s) of images."),
    pipeline: str = typer.Option("body17", "--pipeline", "-p", help="Pipeline name or .toml file."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: beside the input)."),
    formats: List[str] = typer.Option(["npz"], "--format", "-f", help="Pose file format(s): npz, json, csv, bvh (Blender), trc / mot (OpenSim markers / joint angles); repeatable."),
    keypoints: Optional[Path] = typer.Option(None, "--keypoints", help="Read 2D keypoints from this file (our npz or an mmpose prediction JSON) instead of detecting."),
    video: bool = typer.Option(True, "--video/--no-video", help="Write the overlay video."),
    refine: Optional[bool] = typer.Option(None, "--refine/--no-refine", help="Temporal LSTM refinement of videos and image folders (default: on where the pipeline has a refiner, as body17 does)."),
    focal: Optional[float] = typer.Option(None, "--focal", help="The camera's focal length in pixels, for the lifter's perspective correction, the trajectory and world frame (default: from --fov)."),
    fov: Optional[float] = typer.Option(None, "--fov", help="Assumed horizontal field of view (of the longer image side), degrees, when --focal is not given (default 55)."),
    principal_point: Optional[Tuple[float, float]] = typer.Option(None, "--principal-point", metavar="CX CY", help="The camera's principal point in pixels, for the trajectory (default: the image centre)."),
    smooth: Optional[str] = typer.Option(None, "--smooth", help="Temporal smoothing: none, one-euro (2D, causal) or butterworth (3D, zero phase; the default of the body17 pipelines)."),
    weights: Optional[str] = typer.Option(None, "--weights", "-w", help="Lifter weights to use instead of the pipeline's (.safetensors, or a shipped name)."),
    verbose: bool = typer.Option(False, "--verbose", help="Let the detector print its native log lines."),
    people: str = typer.Option("1", "--people", help="1: the most prominent person (default); all or N > 1: everyone in view (at most N), tracked with IDs; the pose file gets a person axis, BVH/TRC/MOT one file per person (<stem>.wsgcn.p<ID>.bvh)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    device: str = Device,
    quiet: bool = Quiet,
):
    """Lift people in a video / image / folder to 3D: writes <stem>.wsgcn.npz and <stem>.overlay.mp4."""
    from wsgcn_cli import api
    from wsgcn_cli.smoothing import check_kind
    from wsgcn_cli.world import check_camera, check_principal_point

    check_camera(focal, fov)  # bad flags fail before the first input is opened
    if principal_point is not None:
        check_principal_point(principal_point)
    if smooth is not None:
        check_kind(smooth)
    n_people = api.parse_people(people)
    for path in inputs:
        api.lift(path, pipeline=pipeline, out_dir=out, formats=formats, keypoints=keypoints,
                 video=video, refine=refine, overwrite=overwrite, device=device, quiet=quiet,
                 focal=focal, fov=fov, principal_point=principal_point, smooth=smooth, weights=weights, verbose=verbose,
                 people="all" if people.strip().lower() == "all" else n_people)


@app.command()
def render(
    poses: Path = typer.Argument(..., help="A <stem>.wsgcn.npz pose file written by lift."),
    video: Optional[Path] = typer.Option(None, "--video", help="The input video: overlay 2D on it; without it a 3D-only animation."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output mp4 (default: beside the pose file)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    quiet: bool = Quiet,
):
    """Re-render the overlay video (or a 3D-only animation) from a pose file, without detection; with world outputs in the pose file the 3D panel adds a side view of the world frame (floor grid, trajectory, camera)."""
    from wsgcn_cli import api

    api.render(poses, video=video, out=out, overwrite=overwrite, quiet=quiet)


@app.command()
def train(
    pipeline: str = typer.Argument(..., help="Train pipeline name (pipelines/train-*.toml) or path."),
    data: Optional[str] = Data,
    evaluate_after: bool = typer.Option(True, "--eval/--no-eval", help="Evaluate on all of S9/S11 afterwards and write the model card."),
    overrides: List[str] = typer.Option([], "--set", help="Replace a pipeline setting: key=value (train or data key) or table.key=value; repeatable."),
    device: str = Device,
    quiet: bool = Quiet,
):
    """Train from a train pipeline (resumes from its checkpoint in runs/), evaluate and write the model card and learning curve."""
    from wsgcn_cli import api

    api.train(pipeline, data=data, device=device, quiet=quiet, overrides=overrides, evaluate_after=evaluate_after)


@app.command(name="eval")
def eval_(
    weights: str = typer.Argument(..., help="Weights file (.safetensors) or the name of a shipped one."),
    data: Optional[str] = Data,
    source: str = typer.Option("gt", "--source", help="2D input: gt (projected ground truth) or sh (Stacked-Hourglass detections). Whole-body lifter: h3wb (= gt; --data: the H3WB npz or its folder), composite or composite-clean (the composite test split with detector-like or exact 2D, held-out FPHA hands; --data: the shared data folder)."),
    stride: int = typer.Option(1, "--stride", help="Evaluate every n-th frame (1 = the protocol)."),
    samples: int = typer.Option(16384, "--samples", help="Whole-body composite sources: test samples drawn (fixed seed)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON here."),
    flip_test: bool = typer.Option(True, "--flip-test/--no-flip-test", help="Average with the mirrored pose."),
    device: str = Device,
    quiet: bool = Quiet,
):
    """Human3.6M S9/S11 MPJPE (Protocol 1) and P-MPJPE (Protocol 2), per action and averaged; for a whole-body lifter, H3WB-defined MPJPE per part."""
    from wsgcn_cli import api

    api.evaluate(weights, data=data, source=source, stride=stride, device=device,
                 json_out=str(json_out) if json_out else None, flip_test=flip_test, quiet=quiet, samples=samples)


@app.command()
def finetune(
    clips: List[Path] = typer.Argument(..., help="Unlabelled video(s) of one person each (or 2D keypoint .npz files)."),
    out: Path = typer.Option(..., "--out", "-o", help="Adapted weights to write (.safetensors); its model card .md goes beside it."),
    weights: Optional[str] = typer.Option(None, "--weights", "-w", help="Base weights (default: the pipeline's lifter)."),
    focal: Optional[float] = typer.Option(None, "--focal", help="Focal length of the clips' camera, pixels (default: from --fov)."),
    fov: float = typer.Option(55.0, "--fov", help="Assumed field of view of the longer image side, degrees, when --focal is not given."),
    epochs: int = typer.Option(20, "--epochs", help="At most this many epochs (early stopping on held-out frames)."),
    holdout: float = typer.Option(0.2, "--holdout", help="Fraction of each clip held out, in contiguous chunks (0: no early stopping)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Adam learning rate (default 3e-4; about 1e-5 with --adapt all)."),
    adapt: str = typer.Option("norm_bias", "--adapt", help="Weights that change: norm_bias (normalisation affine parameters and biases) or all."),
    pipeline: str = typer.Option("body17", "--pipeline", "-p", help="Lift pipeline whose detector and 2D stage make the 2D."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Folder for the cached 2D (default: beside each clip)."),
    data: Optional[str] = Data,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    device: str = Device,
    quiet: bool = Quiet,
):
    """Adapt the lifter to unlabelled footage (self-supervised; resumable): writes NEW.safetensors and NEW.md."""
    from wsgcn_cli import api

    options = {"adapt": adapt} | ({"lr": lr} if lr is not None else {})
    api.finetune(clips, weights=weights, out=out, focal=focal, fov_deg=fov, epochs=epochs, holdout=holdout,
                 pipeline=pipeline, cache_dir=cache_dir, data=data, overwrite=overwrite, device=device,
                 quiet=quiet, **options)


def _is_usage_error(e: Exception) -> bool:
    """True for click's ClickException: typer >= 0.26 vendors click (its exceptions derive
    from ``typer.TyperException``), older typer uses the click package."""
    bases = [getattr(typer, "TyperException", None)]
    try:
        import click

        bases.append(click.exceptions.ClickException)
    except ImportError:
        pass
    return any(b is not None and isinstance(e, b) for b in bases) and hasattr(e, "show")


def main():
    """Console-script entry point: runs the app, turning user errors into one line."""
    # OpenMP threads that sleep instead of spinning at barriers: on a 2-core machine
    # shared with a detector or an encoder, spinning threads halve the throughput.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        code = app(standalone_mode=False)  # returns an exit code for Ctrl-C (130) and Exit
    except WsgcnError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: no partial output was kept", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # usage errors (unknown option, missing argument) carry their own text
        if _is_usage_error(e):
            e.show()
            sys.exit(e.exit_code)
        raise
    if code == 130:
        print("interrupted: no partial output was kept", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)
