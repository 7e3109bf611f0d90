"""The Python API; the ``wsgcn`` command line is a thin layer over these functions.

* :func:`train` — train a lifter from a train pipeline, evaluate it, write its model card.
* :func:`evaluate` — Human3.6M MPJPE / P-MPJPE of a weights file.
* :func:`lift` — video / image / folder -> 3D pose file + overlay video.
* :func:`render` — re-render the overlay or a 3D-only animation from a pose file.
* :func:`finetune` — adapt a lifter to unlabelled footage (self-supervised).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from pathlib import Path

from wsgcn_cli import pipeline as pipelines
from wsgcn_cli.console import get_console as _console
from wsgcn_cli.console import progress_bar
from wsgcn_cli.errors import WsgcnError


def train(pipeline: str, data: str | None = None, device: str = "auto", quiet: bool = False,
          evaluate_after: bool = True, overrides: list[str] | tuple = ()) -> dict:
    """Train what a train pipeline (name or path) describes.

    ``overrides``: ``"key=value"`` strings (TOML values) replacing ``[train]`` or ``[data]``
    keys, or any table's with ``"table.key=value"`` (e.g. ``"epochs=2"``, ``"lr=5e-4"``).
    Writes the weights named by ``train.out``, a resumable checkpoint while training
    (``runs/<out stem>.ckpt`` unless ``train.checkpoint`` says otherwise), the learning
    curve (``benchmarks/results/train_curve_<out stem>.json`` and ``.png``) and, for a
    lifter, a model card (``.md``) with the measured Human3.6M tables (ground-truth and
    Stacked-Hourglass 2D input). Returns the training summary with the evaluation
    results under ``"eval"``.
    """
    spec = apply_overrides(pipelines.load(pipeline, kind="train"), overrides)
    quiet = quiet or os.environ.get("RANK", "0") != "0"  # under torchrun, rank 0 speaks for all
    console = _console(quiet)
    command = ("wsgcn train " + " ".join(shlex.quote(a) for a in sys.argv[2:])
               if sys.argv[1:2] == ["train"] else f"wsgcn train {pipeline}")
    from wsgcn_cli.lifter import resolve_device
    from wsgcn_cli.train.common import schedule_from_spec
    from wsgcn_cli.train.trainer import Trainer

    schedule, rest = schedule_from_spec(spec)
    task = _task_class(spec.get("task", "lifter")).from_spec(spec, rest, data_root=data, log=console.print)
    with progress_bar(f"training {spec['name']}", None, quiet) as advance:
        summary = Trainer(task, schedule, resolve_device(device), log=console.print, progress=advance,
                          command=command).fit()
    if task.name == "wholebody":
        if evaluate_after and Path(summary["weights"]).is_file():
            write_wholebody_card(summary["weights"], spec, data=data, device=device, quiet=quiet, summary=summary)
        return summary
    if task.name != "lifter":
        if evaluate_after and Path(summary["weights"]).is_file() and summary["history"]:
            _training_card(summary, spec)
        return summary
    if evaluate_after and Path(summary["weights"]).is_file():
        write_lifter_card(summary["weights"], spec, data=data, device=device, quiet=quiet, summary=summary)
    return summary


def _training_card(summary: dict, spec: dict) -> Path:
    """The model card of non-lifter weights from what training measured (the last epoch's
    validation and the curve); the benchmarks' ``--card`` replace it with fuller measurements."""
    from wsgcn_cli.model_card import write_stage_card

    last = summary["history"][-1]
    vals = {k: v for k, v in last.items() if k.startswith("val_")}
    md = (f"Validation after epoch {last['epoch']} ({last['samples_seen'] / 1e6:.2f} M samples seen), as training "
          "measured it:\n\n| metric | value |\n|---|---:|\n"
          + "\n".join(f"| {k} | {v:.3f} |" for k, v in vals.items()))
    columns = {"epoch": "epoch", "samples_seen": "samples seen", "loss": "training loss", **{k: k for k in vals}}
    return write_stage_card(summary["weights"], spec.get("description", ""), md, columns)


def _task_class(name: str):
    """The Trainer task a train pipeline's ``task`` key names (default ``lifter``)."""
    if name == "lifter":
        from wsgcn_cli.train.lifter import LifterTask as task
    elif name == "refiner":
        from wsgcn_cli.train.refine import RefinerTask as task
    elif name == "representation":
        from wsgcn_cli.train.representation import Pose2DTask as task
    elif name == "wholebody":
        from wsgcn_cli.train.wholebody import WholeBodyLifterTask as task
    else:
        raise WsgcnError(f"unknown training task {name!r}; known: lifter, refiner, representation, wholebody")
    return task


def write_lifter_card(weights: str, pipeline: str | dict, data: str | None = None, device: str = "auto",
                      quiet: bool = False, summary: dict | None = None) -> dict:
    """Evaluate lifter weights on Human3.6M S9/S11 (all frames, GT and SH 2D, flip test) and
    write their model card (``<weights>.md``); returns {source: result}."""
    from wsgcn_cli.model_card import write_card

    spec = pipelines.load(pipeline, kind="train") if isinstance(pipeline, str) else pipeline
    results = {src: evaluate(weights, data=data, source=src, device=device, quiet=quiet) for src in ("gt", "sh")}
    if summary is not None:
        summary["eval"] = results
    write_card(weights, spec, results)
    return results


def wholebody_results(weights: str, data: str | None = None, device: str = "auto", quiet: bool = True,
                      samples: int = 16384, flip_test: bool = True) -> dict:
    """A whole-body lifter on the H3WB fixture (skipped when absent) and on the composite
    test split with detector-like and exact 2D (``samples`` each, seed 0; held-out FPHA
    hands): {source: result} (see :func:`evaluate_wholebody`). ``data``: the shared data
    folder (``h36m``, ``hands_fpha``, ``face_aflw2000_3d``, ``h3wb``)."""
    from wsgcn_cli.data import h3wb

    fixture = Path(data) / "h3wb" / h3wb.FILE if data else h3wb.default_path()
    results = {}
    if fixture.is_file():
        results["h3wb"] = evaluate_wholebody(weights, data=str(fixture), source="h3wb", device=device, quiet=quiet,
                                             flip_test=flip_test)
    for source in ("composite", "composite-clean"):
        results[source] = evaluate_wholebody(weights, data=data, source=source, device=device, quiet=quiet,
                                             samples=samples, flip_test=flip_test)
    return results


def write_wholebody_card(weights: str, pipeline: str | dict, data: str | None = None, device: str = "auto",
                         quiet: bool = False, summary: dict | None = None, results: dict | None = None) -> dict:
    """Evaluate a whole-body lifter (:func:`wholebody_results`, unless ``results`` are given)
    and write its model card (``<weights>.md``); returns the results."""
    from wsgcn_cli.model_card import write_wholebody_card as write

    spec = pipelines.load(pipeline, kind="train") if isinstance(pipeline, str) else pipeline
    results = results or wholebody_results(weights, data=data, device=device, quiet=quiet)
    if summary is not None:
        summary["eval"] = results
    write(weights, spec, results)
    return results


def apply_overrides(spec: dict, overrides) -> dict:
    """``spec`` with ``key=value`` / ``table.key=value`` overrides applied (values parsed as
    TOML; a bare word is a string). A bare key goes to ``[train]`` unless only ``[data]``
    has it. Raises WsgcnError for a malformed override."""
    import tomllib

    for item in overrides or ():
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise WsgcnError(f"--set takes key=value, got {item!r}")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        table, _, name = key.rpartition(".")
        if not table:
            table = "data" if name in spec.get("data", {}) and name not in spec.get("train", {}) else "train"
        if not isinstance(spec.get(table, {}), dict):
            raise WsgcnError(f"--set {key}: {table!r} is not a table of the pipeline")
        spec.setdefault(table, {})[name] = value
    return spec


def evaluate(weights: str, data: str | None = None, source: str = "gt", stride: int = 1,
             device: str = "auto", json_out: str | None = None, flip_test: bool = True,
             quiet: bool = False, samples: int = 16384) -> dict:
    """Evaluate a weights file on Human3.6M S9/S11 (Protocols 1 and 2, per action), or a
    whole-body lifter (layout ``coco_wholebody133``) on H3WB / the composite test split.

    ``source``: 2D input, ``"gt"`` or ``"sh"``; for a whole-body lifter one of
    :data:`wsgcn_cli.evaluate.WHOLEBODY_SOURCES` (``"gt"`` means ``"h3wb"``), see
    :func:`evaluate_wholebody` (``samples``: composite test samples). Prints a rich table unless quiet; writes the result as
    JSON to ``json_out`` if given. Returns the result dict (see
    :func:`wsgcn_cli.evaluate.evaluate`).
    """
    from wsgcn_cli.evaluate import evaluate as run_eval, table
    from wsgcn_cli.io.atomic import write_json
    from wsgcn_cli.lifter import Lifter

    if _is_wholebody(weights):
        return evaluate_wholebody(weights, data=data, source=source, stride=stride, device=device,
                                  json_out=json_out, quiet=quiet, samples=samples, flip_test=flip_test)
    if source not in ("gt", "sh"):
        raise WsgcnError(f"unknown 2D source {source!r}; use gt or sh")
    lifter = Lifter.from_weights(_weights_path(weights), flip_test=flip_test, device=device)
    with _console(quiet).status(f"evaluating {Path(weights).name} on Human3.6M S9/S11, 2D {source}"):
        result = run_eval(lifter, root=data, source=source, stride=stride)
    result["weights"] = str(weights)
    result["weights_sha256"] = lifter.sha256
    result["flip_test"] = flip_test
    if not quiet:
        _console(False).print(table(result))
    if json_out:
        write_json(json_out, result, make_parents=False)
    return result


def _is_wholebody(weights: str) -> bool:
    """True for weights of a COCO-WholeBody-133 lifter (metadata ``layout``)."""
    from wsgcn_cli.weights import read

    _, meta, _ = read(_weights_path(weights))
    return meta.get("layout") == "coco_wholebody133"


def evaluate_wholebody(weights: str, data: str | None = None, source: str = "h3wb", stride: int = 1,
                       device: str = "auto", json_out: str | None = None, quiet: bool = False,
                       samples: int = 16384, seed: int = 0, flip_test: bool = True) -> dict:
    """Evaluate a whole-body (COCO-WholeBody-133) lifter.

    ``source``: ``"h3wb"`` (or ``"gt"``): the H3WB file ``data`` (an npz, or a folder
    holding ``h3wb_train_sub.npz``, or one holding ``h3wb/``; default the mmpose fixture
    in ``../shared/data/h3wb``): MPJPE of all 133 after pelvis alignment, body, face
    aligned at the nose, hands at the wrists (:func:`wsgcn_cli.evaluate.evaluate_h3wb`;
    the fixture holds one pose, which decides nothing: the result's ``note`` says so).
    ``"composite"`` / ``"composite-clean"``: ``samples`` of the composite test split with
    detector-like / exact 2D, with the held-out FPHA hands
    (:func:`wsgcn_cli.evaluate.evaluate_composite`; ``data``: the folder holding ``h36m``,
    ``hands_fpha``, ``face_aflw2000_3d``; ``stride``: of the S9/S11 frames). Writes
    ``json_out`` (keys ``mpjpe_mm``, ``p_mpjpe_mm``, ``per_part`` as the body eval, ...).
    Lifted by :class:`wsgcn_cli.lifter.WholeBodyLifter` as ``lift`` lifts (``flip_test``:
    average with the mirrored pose). Raises WsgcnError for an unknown source, missing files
    or weights of another layout.
    """
    from wsgcn_cli.data import h3wb
    from wsgcn_cli.evaluate import WHOLEBODY_SOURCES, evaluate_composite, evaluate_h3wb, wholebody_table
    from wsgcn_cli.io.atomic import write_json
    from wsgcn_cli.lifter import WholeBodyLifter

    source = "h3wb" if source == "gt" else source
    if source not in WHOLEBODY_SOURCES:
        raise WsgcnError(f"unknown source {source!r} for a whole-body lifter; use {', '.join(WHOLEBODY_SOURCES)}")
    path = _weights_path(weights)
    lifter = WholeBodyLifter.from_weights(path, flip_test=flip_test, device=device)
    with _console(quiet).status(f"evaluating {path.name} on {source}"):
        if source == "h3wb":
            file = Path(data) if data else h3wb.default_path()
            for candidate in (file / h3wb.FILE, file / "h3wb" / h3wb.FILE):
                if file.is_dir() and candidate.is_file():
                    file = candidate
            result = evaluate_h3wb(lifter, file)
        else:
            root = Path(data) if data else None
            if root is not None and not (root / "h36m").is_dir() and (root.parent / "h36m").is_dir():
                root = root.parent  # given a subfolder of the shared data (e.g. .../h3wb)
            result = evaluate_composite(lifter, root, samples=samples, seed=seed, clean=source == "composite-clean",
                                        stride=stride)
    result.update(weights=str(weights), weights_sha256=lifter.sha256)
    if not quiet:
        _console(False).print(wholebody_table(result))
    if json_out:
        write_json(json_out, result, make_parents=False)
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


def _outputs(input_path: Path, out_dir: Path | None, formats, video: bool, is_image: bool) -> dict:
    from wsgcn_cli.io.posefile import FORMATS, default_path

    for fmt in formats:
        if fmt not in FORMATS:
            raise WsgcnError(f"unknown pose file format {fmt!r}; use one of {', '.join(FORMATS)}")
    folder = out_dir if out_dir is not None else input_path.parent
    stem = folder / input_path.name
    outputs = {fmt: default_path(stem, fmt) for fmt in dict.fromkeys(formats)}
    if video:
        outputs["overlay"] = folder / f"{Path(input_path.name).stem}.overlay.{'png' if is_image else 'mp4'}"
    return outputs


def _prepare_folder(folder: Path) -> list[Path]:
    """Create ``folder`` (and missing parents) if needed; returns the folders created,
    deepest first. Raises WsgcnError for a file in the way or an unwritable folder."""
    import os

    if folder.exists() and not folder.is_dir():
        raise WsgcnError(f"output folder {folder} is a file")
    created = [p for p in [folder, *folder.parents] if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WsgcnError(f"cannot create output folder {folder}: {e.strerror}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise WsgcnError(f"output folder {folder} is not writable")
    return created


def _check_overwrite(outputs: dict, overwrite: bool):
    existing = [str(p) for p in outputs.values() if p.exists()]
    if existing and not overwrite:
        raise WsgcnError(f"{existing[0]} exists (use --overwrite to replace it)")


@contextlib.contextmanager
def _new_outputs(outputs: dict, overwrite: bool):
    """Prepare the folder of ``outputs`` and check they may be written; yields a list to
    which the caller appends each file it completes. On any error (Ctrl-C included) those
    files are deleted and the folders this created are removed again (when empty)."""
    written: list[Path] = []
    created = _prepare_folder(next(iter(outputs.values())).parent)
    try:
        _check_overwrite(outputs, overwrite)
        yield written
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


class _Overlay:
    """The overlay sink of :func:`lift`: an H.264 video, drawn and encoded on the
    writer's background thread (``path`` ``.mp4``), or one PNG for a single image, or
    nothing (``path`` None)."""

    def __init__(self, path: Path | None, source, pipe, compose=None):
        from wsgcn_cli.io.video import VideoWriter
        from wsgcn_cli.render.overlay import compose_overlay

        self.compose = compose or compose_overlay  # compose(image, *args, max_height=...) -> RGB
        self.path, self.max_height, self.image, self.writer = path, pipe.max_height, None, None
        if path is not None and source.kind != "image":
            self.writer = VideoWriter(path, source.fps or 25.0,
                                      *_overlay_dims(source.width, source.height, pipe.max_height), nice=10,
                                      queue_size=8)

    def add(self, image, *args, **world) -> None:
        """One frame: its image and the compose function's arguments -- by default 2D
        (17, 2) px and scores, camera-frame 3D (17, 3) m and the world-view arguments
        (:func:`wsgcn_cli.render.view3d.world_frame_args`, or none); for several people,
        :func:`wsgcn_cli.render.overlay.compose_overlay_people`'s scene and frame index."""
        if self.writer is not None:
            self.writer.write_rendered(self.compose, image, *args, max_height=self.max_height, **world)
        elif self.path is not None:
            self.image = self.compose(image, *args, max_height=self.max_height, **world)

    def close(self) -> list[Path]:
        """Finish the file; returns [its path] (or [] without one)."""
        if self.writer is not None:
            self.writer.close()
        elif self.image is not None:
            _write_png(self.path, self.image)
        return [] if self.path is None else [self.path]

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


def _write_overlay(path: Path, input_path: Path, track, pipe, quiet: bool) -> list[Path]:
    """The overlay of :func:`lift`, drawn from the finished ``track`` (after
    :meth:`~wsgcn_cli.pipeline.Pipeline.whole_clip`, so it shows what the pose file holds)
    on a second pass over the input's frames: the 2D on each frame beside the 3D panel,
    with the world view (:class:`wsgcn_cli.render.view3d.WorldView`, one framing for the
    clip) when the track has a world frame. Returns [path]. Raises WsgcnError if the input
    now has more frames than the track."""
    from wsgcn_cli.io.video import open_frames
    from wsgcn_cli.render.view3d import WorldView, world_frame_args
    from wsgcn_cli.skeletons import get_layout

    w = track.world
    view = None if w is None else WorldView.for_clip(w.keypoints_3d_world, w.camera_to_world)
    kp2, scores, kp3 = track.keypoints_2d, track.scores, track.keypoints_3d
    skeleton = get_layout(track.output_layout)  # H36M-17, or COCO-WholeBody-133 with face and hands
    layout = {} if track.output_layout == "h36m17" else {"skeleton_2d": skeleton, "skeleton_3d": skeleton}
    with open_frames(input_path) as source:
        overlay = _Overlay(path, source, pipe)
        try:
            with progress_bar(f"drawing {path.name}", source.num_frames, quiet) as advance:
                for frame in source:
                    i = frame.index
                    if i >= len(track):
                        raise WsgcnError(f"{input_path} has more frames than were lifted: did it change?")
                    world = {} if view is None else world_frame_args(view, w.keypoints_3d_world, i, w.foot_contact)
                    overlay.add(frame.image, kp2[i], scores[i], kp3[i], **world, **layout)
                    advance(i + 1)
            return overlay.close()
        except BaseException:
            overlay.abort()
            raise


def lift(input: str | Path, pipeline: str = pipelines.DEFAULT_LIFT, out_dir: str | Path | None = None,
         formats=("npz",), keypoints: str | Path | None = None, video: bool = True, refine: bool | None = None,
         overwrite: bool = False, device: str = "auto", quiet: bool = False, focal: float | None = None,
         fov: float | None = None, smooth: str | None = None, weights: str | Path | None = None,
         verbose: bool = False, people: int | str = 1, principal_point=None) -> dict:
    """Lift the person in a video, an image or a folder of images to 3D.

    ``people``: 1 (default): the single-person path below. ``"all"`` or N > 1: everyone
    in view (at most N), see :func:`_lift_people`: the multi-person detector
    (:class:`wsgcn_cli.detect.multi_person.BlazePoseMultiDetector`), tracking with
    persistent IDs (:mod:`wsgcn_cli.tracking`), then per person the same stages after the
    detector (:meth:`Pipeline.run` with ``whole_clip``); the pose file then has a person
    axis (:class:`wsgcn_cli.io.posefile.PeoplePoseFile`), BVH / TRC / MOT are written
    once per person (``<stem>.wsgcn.p<ID>.<fmt>``) and the overlay draws each person in
    their own colour with their ID.

    Builds the pipeline (:class:`wsgcn_cli.pipeline.Pipeline`: detector, or the
    ``keypoints`` file, -> H36M-17 2D -> lifter -> temporal refiner; or, with ``pipeline``
    ``"wholebody"``, BlazePose + face / hand landmarks -> COCO-WholeBody-133 2D -> the SemGAN whole-body
    lifter, whose pose file holds 133 keypoints, NaN in 3D for parts not seen in 2D, and
    whose overlay draws the face and hands), streams the input's
    frames through it and hands each result to the sinks: memory does not grow with the
    video's length. Writes, beside the input or in ``out_dir``:

    * ``<stem>.wsgcn.npz`` (and ``.json`` / ``.csv`` / ``.bvh`` / ``.trc`` / ``.mot`` if
      asked for): see :mod:`wsgcn_cli.io.posefile` for the schema (2D in pixels, 3D root-relative
      camera coordinates in metres, real frame times);
    * ``<stem>.overlay.mp4`` (H.264, same frame count and rate as the input; ``.png``
      for a single image): the 2D skeleton on each frame beside a 3D view and, with the
      world outputs, the world view from the side. It is drawn after the stream, on a
      second pass over the input, from the finished track (what the pose file holds).

    With the pipeline's ``[world]`` stage (on in ``body17*``), the pose file also holds
    the root trajectory in the camera frame, the pose in a world frame (y up, floor at
    y = 0) and foot contact (:mod:`wsgcn_cli.world`), from the intrinsics ``focal``
    (pixels) or an assumed horizontal field of view ``fov`` (degrees, of the longer image
    side; default the ``[world]`` table's, 55), principal point ``principal_point``
    ``(cx, cy)`` pixels (default the image centre).

    Options: ``refine``: None (default) = the pipeline's ``[refiner]`` table decides (on
    in ``body17``; videos and image folders, never a single image), True = required,
    False = off; ``smooth`` ``"none"`` / ``"one-euro"`` / ``"butterworth"`` replaces the
    pipeline's ``[smoothing] kind`` (:mod:`wsgcn_cli.smoothing`); ``weights``: lifter
    weights to use instead of the pipeline's; ``verbose``: let the detector print its
    native log lines.

    Every file is written under a temporary name and renamed when complete; an error or
    Ctrl-C leaves no partial output, deletes the outputs this run completed and removes
    the output folder if this run created it. Returns ``{"outputs": {kind: path},
    "frames": T, "frames_with_pose": n, "seconds": wall time}``.

    Raises WsgcnError for a missing or unreadable input or keypoint file, a video with
    no person in any frame, outputs that exist (without ``overwrite``), an unwritable
    output folder, a pipeline or weights that do not fit, a BVH / TRC / MOT format with a
    pipeline whose world stage is off, ``focal`` <= 0, ``fov``
    outside (10, 170), a ``principal_point`` that is not two numbers or an unknown
    ``smooth`` (these before anything is read), a
    ``people`` that is not ``"all"`` or a whole number >= 1, or ``people`` other than 1
    with a ``keypoints`` file or a whole-body pipeline (these also before anything is read).
    """
    import time

    from wsgcn_cli.io import posefile
    from wsgcn_cli.io.video import open_frames
    from wsgcn_cli.pipeline import Pipeline, Track
    from wsgcn_cli.smoothing import check_kind
    from wsgcn_cli.world import check_camera, check_principal_point

    t0 = time.time()
    max_people = parse_people(people)
    if max_people != 1 and keypoints is not None:
        raise WsgcnError("--people all|N needs the multi-person detector: it cannot read a --keypoints file")
    check_camera(focal, fov)
    if principal_point is not None:
        check_principal_point(principal_point)
    if smooth is not None:
        check_kind(smooth)
    if weights is not None:
        weights = _weights_path(str(weights))
    input_path = Path(input)
    pipe = Pipeline.from_file(pipeline, device=device, refine=refine, keypoints=keypoints, lifter_weights=weights,
                              smooth=smooth, focal_px=focal, fov_deg=fov, verbose=verbose,
                              principal_px=principal_point)
    needs_world = [f for f in formats if f in posefile.WORLD_FORMATS]
    if needs_world and not pipe.world.enabled:
        raise WsgcnError(f"--format {needs_world[0]} needs the world outputs: pipeline {pipe.name} has "
                         f"[world] enabled = false")
    for warning in pipe.warnings:
        _console(quiet).print(f"warning: {warning}")
    if not input_path.exists():
        raise WsgcnError(f"input {input_path} does not exist")
    if max_people != 1:
        if pipe.layout != "h36m17":
            raise WsgcnError(f"--people all|N lifts H36M-17 bodies only; pipeline {pipe.name} lifts {pipe.layout}")
        return _lift_people(input_path, pipe, max_people, out_dir, formats, video, overwrite, quiet, t0)
    with open_frames(input_path) as source, pipe.stream(source, keep_images=False) as results:
        outputs = _outputs(input_path, None if out_dir is None else Path(out_dir), formats, video,
                           source.kind == "image")
        with _new_outputs(outputs, overwrite) as written:
            track = Track(results.layout, pipe.layout)
            with progress_bar(f"lifting {input_path.name}", source.num_frames, quiet) as advance:
                for result in results:
                    track.add(result)
                    advance(result.index + 1)
            if track.frames_with_pose == 0:
                raise WsgcnError(f"no person found in any of the {len(track)} frame(s) of {input_path}")
            pipe.whole_clip(track, source.width, source.height, 0.0 if source.kind == "image" else source.fps)
            pose = pipe.pose_file(track, source.fps, (source.width, source.height), input_path.name)
            for fmt in formats:
                written.append(posefile.write(pose, outputs[fmt], fmt))
            if video:
                written += _write_overlay(outputs["overlay"], input_path, track, pipe, quiet)
    found = track.frames_with_pose
    if not quiet:
        _console(False).print(f"{input_path.name}: {found}/{len(track)} frames with a 3D pose -> "
                              + ", ".join(str(p) for p in outputs.values()))
    return {"outputs": {k: str(v) for k, v in outputs.items()}, "frames": len(track), "frames_with_pose": found,
            "seconds": time.time() - t0}


#: ``--people all``: the multi-person detector looks for at most this many people per frame.
ALL_PEOPLE = 10


def parse_people(people: int | str) -> int:
    """``lift``'s ``people``: ``"all"`` -> :data:`ALL_PEOPLE`, a whole number >= 1 -> itself.
    Raises WsgcnError (one line) for anything else."""
    given, value = people, people
    if isinstance(people, str):
        text = people.strip().lower()
        if text == "all":
            return ALL_PEOPLE
        value = int(text) if text.isdigit() else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise WsgcnError(f"--people takes all or a whole number >= 1, not {given!r}")
    return value


def detect_people_frames(source, max_people: int, quiet: bool = True, detector=None):
    """The multi-person detector over every frame of ``source`` (a
    :class:`wsgcn_cli.io.video.FrameSource`): ``(people, times)``, per frame the list of
    :class:`~wsgcn_cli.detect.multi_person.Person` (BlazePose-33, pixels) and (T,) frame
    times in seconds. Video mode (people followed between frames) for a video, image mode
    for an image or a folder. Raises WsgcnError if the detector cannot be created
    (mediapipe or a TFLite runtime missing) and the source's errors."""
    from wsgcn_cli.detect.multi_person import BlazePoseMultiDetector

    det = detector or BlazePoseMultiDetector(max_people=max_people, static_image_mode=source.kind != "video")
    people, times = [], []
    try:
        with progress_bar(f"finding people in {Path(str(source.path)).name}", source.num_frames, quiet) as advance:
            for frame in source:
                people.append(det.detect_people(frame.image))
                times.append(frame.time_s)
                advance(frame.index + 1)
    finally:
        det.close()
    import numpy as np

    return people, np.asarray(times, np.float64)


def _lift_people(input_path: Path, pipe, max_people: int, out_dir, formats, video: bool, overwrite: bool,
                 quiet: bool, t0: float) -> dict:
    """:func:`lift` of everyone in view (``people`` ``"all"`` or N > 1).

    Steps: :func:`detect_people_frames`; :func:`wsgcn_cli.tracking.track_people` (tracks
    seen in fewer than :data:`wsgcn_cli.tracking.DEFAULT_MIN_FRAMES` frames dropped, for a
    video; at most ``max_people`` tracks kept, those seen in the most frames); per track,
    its frames first ... last as :class:`~wsgcn_cli.detect.base.Keypoints2D` (NaN where
    unseen: the 2D stage fills short gaps) through :meth:`Pipeline.run` with
    ``whole_clip`` (lifter, refiner, smoothing, constant bones, world), spread over the
    whole clip (:func:`wsgcn_cli.io.posefile.pad_to_clip`). People are ordered by track
    ID. Returns :func:`lift`'s dict plus ``"people"``: ``{track_id: frames with a 3D pose}``.
    Raises WsgcnError if nobody is found (or nobody gets a 3D pose)."""
    import time

    from wsgcn_cli.detect.multi_person import LAYOUT
    from wsgcn_cli.io import posefile
    from wsgcn_cli.io.video import open_frames
    from wsgcn_cli.tracking import DEFAULT_MIN_FRAMES, track_people

    with open_frames(input_path) as source:
        outputs = _outputs(input_path, None if out_dir is None else Path(out_dir), formats, video,
                           source.kind == "image")
        per_person = [f for f in formats if f in posefile.WORLD_FORMATS]
        with _new_outputs(outputs, overwrite) as written:
            t_detect = time.time()
            frames, times = detect_people_frames(source, max_people, quiet)
            t_detect = time.time() - t_detect
            fps = 0.0 if source.kind == "image" else source.fps
            min_frames = min(DEFAULT_MIN_FRAMES, len(frames)) if source.kind == "video" else 1
            tracks = track_people(frames, fps, min_frames=min_frames)
            tracks = sorted(sorted(tracks, key=lambda t: -t.num_seen)[:max_people], key=lambda t: t.track_id)
            people, ids, lifted = [], [], {}
            for tr in tracks:
                kp = tr.keypoints(LAYOUT, times, source.width, source.height, fps)
                track = pipe.run(kp, whole_clip=True)
                if track.frames_with_pose == 0:
                    continue
                pose = pipe.pose_file(track, source.fps, (source.width, source.height), input_path.name)
                people.append(posefile.pad_to_clip(pose, tr.first, times))
                ids.append(tr.track_id)
                lifted[tr.track_id] = track.frames_with_pose
            if not people:
                raise WsgcnError(f"no person found in any of the {len(frames)} frame(s) of {input_path}")
            pose = posefile.PeoplePoseFile(people, ids)
            for fmt in per_person:  # one file per person: their names are known only now
                for i in ids:
                    if posefile.person_path(outputs[fmt], i).exists() and not overwrite:
                        raise WsgcnError(f"{posefile.person_path(outputs[fmt], i)} exists (use --overwrite to "
                                         f"replace it)")
            extra = {}
            for fmt in formats:
                paths = posefile.write_people(pose, outputs[fmt], fmt)
                written += paths
                if fmt in per_person:
                    extra.update({f"{fmt}_p{i}": p for i, p in zip(ids, paths)})
            if video:
                written += _write_people_overlay(outputs["overlay"], input_path, pose, pipe, quiet)
    for fmt in per_person:  # the per-person files replace the single one
        del outputs[fmt]
    outputs.update(extra)
    if not quiet:
        _console(False).print(f"{input_path.name}: {len(people)} people (IDs {', '.join(map(str, ids))}), frames with "
                              f"a 3D pose {', '.join(str(n) for n in lifted.values())} of {len(frames)} -> "
                              + ", ".join(str(p) for p in outputs.values()))
    return {"outputs": {k: str(v) for k, v in outputs.items()}, "frames": len(frames),
            "frames_with_pose": max(lifted.values()), "people": lifted, "detect_seconds": t_detect,
            "seconds": time.time() - t0}


def _write_people_overlay(path: Path, input_path: Path, pose, pipe, quiet: bool) -> list[Path]:
    """The overlay of :func:`_lift_people` from the finished pose data (a
    :class:`wsgcn_cli.io.posefile.PeoplePoseFile`), on a second pass over the input:
    each person's 2D in their colour with their ID, the 3D panel of everyone at their
    camera-frame positions with the shared world view below
    (:func:`wsgcn_cli.render.overlay.compose_overlay_people`). Returns [path]."""
    from wsgcn_cli.io.video import open_frames
    from wsgcn_cli.render.overlay import compose_overlay_people
    from wsgcn_cli.render.people import PeopleScene

    scene = PeopleScene.from_pose_file(pose)
    with open_frames(input_path) as source:
        overlay = _Overlay(path, source, pipe, compose=compose_overlay_people)
        try:
            with progress_bar(f"drawing {path.name}", source.num_frames, quiet) as advance:
                for frame in source:
                    i = frame.index
                    if i >= pose.num_frames:
                        raise WsgcnError(f"{input_path} has more frames than were lifted: did it change?")
                    overlay.add(frame.image, scene, i)
                    advance(i + 1)
            return overlay.close()
        except BaseException:
            overlay.abort()
            raise


def _overlay_dims(width: int, height: int, max_height: int = 720) -> tuple[int, int]:
    from wsgcn_cli.render.overlay import overlay_size

    frame_w, out_h, panel_w = overlay_size(width, height, max_height)
    return frame_w + panel_w, out_h


def _write_png(path: Path, rgb) -> None:
    import cv2

    from wsgcn_cli.io.atomic import atomic_write

    with atomic_write(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise WsgcnError(f"cannot write {path}")


def render(poses: str | Path, video: str | Path | None = None, out: str | Path | None = None,
           overwrite: bool = False, quiet: bool = False) -> Path:
    """Re-render the overlay from a pose file (no detection): with ``video``, the 2D
    skeleton on each of its frames beside the 3D view; without, a 3D-only animation.
    When the pose file has the world outputs (:attr:`PoseFile.has_world`), the 3D panel
    shows the camera view above and the world view (from the side, on the floor grid,
    with the pelvis trajectory so far and the camera; one framing for the whole clip)
    below: see :func:`wsgcn_cli.render.view3d.render_3d_panel`.

    A whole-body pose file (``lift --pipeline wholebody``, COCO-WholeBody-133) is drawn
    with its face and hands, as ``lift`` draws it. A multi-person pose file (``lift
    --people all|N``: a person axis and ``track_id``) is drawn as ``lift`` draws it: each person's 2D in their colour with their ID, and the
    3D panel of everyone at their camera-frame positions, with the shared world view
    below when the file has world outputs (:mod:`wsgcn_cli.render.people`).

    Output (H.264 mp4): ``out`` or ``<stem>.overlay.mp4`` (with a video) /
    ``<stem>.3d.mp4`` (3D only) beside the pose file. Raises WsgcnError for a missing
    or invalid pose file, a video whose frame count differs from the pose file's, or an
    existing output without ``overwrite``.
    """
    from wsgcn_cli.io import posefile

    poses = Path(poses)
    p = posefile.read_any(poses)
    stem = poses.name.split(".wsgcn")[0] if ".wsgcn" in poses.name else poses.stem
    if out is None:
        out = poses.with_name(f"{stem}.{'overlay' if video else '3d'}.mp4")
    out = Path(out)
    _prepare_folder(out.parent)
    _check_overwrite({"out": out}, overwrite)
    draw = _render_people if isinstance(p, posefile.PeoplePoseFile) else _render_one
    draw(p, poses, None if video is None else Path(video), out, quiet)
    if not quiet:
        _console(False).print(f"wrote {out}")
    return out


def _render_one(p, poses: Path, video: Path | None, out: Path, quiet: bool) -> None:
    """:func:`render` of a single-person :class:`wsgcn_cli.io.posefile.PoseFile`."""
    from wsgcn_cli.io.video import VideoWriter, open_frames
    from wsgcn_cli.render.overlay import compose_overlay
    from wsgcn_cli.render.view3d import WorldView, render_3d_animation, render_3d_panel, world_frame_args

    from wsgcn_cli.skeletons import get_layout

    fps = p.fps if p.fps > 0 else 25.0
    view = WorldView.for_clip(p.keypoints_3d_world, p.camera_to_world) if p.has_world else None
    skeleton = get_layout(p.layout)  # H36M-17, or COCO-WholeBody-133 with face and hands

    def world(i: int) -> dict:  # the world-view arguments of frame i ({} without world outputs)
        return {} if view is None else world_frame_args(view, p.keypoints_3d_world, i, p.foot_contact)

    with progress_bar(f"rendering {out.name}", p.num_frames, quiet) as advance:
        if video is not None:
            source = open_frames(video)
            with source:
                _check_render_video(source, video, poses, p.num_frames, p.image_size)
                with VideoWriter(out, source.fps or fps, *_overlay_dims(source.width, source.height)) as w:
                    for frame in source:
                        if frame.index >= p.num_frames:
                            raise WsgcnError(f"{video} has more frames than {poses}")
                        i = frame.index
                        w.write_rendered(compose_overlay, frame.image, p.keypoints_2d[i], p.scores[i],
                                         p.keypoints_3d[i], skeleton_2d=skeleton, skeleton_3d=skeleton, **world(i))
                        advance(i + 1)
        elif view is not None:
            size = 640  # camera view 640 x 320 above the world view 640 x 320
            with VideoWriter(out, fps, size, size) as w:
                for i in range(p.num_frames):
                    w.write_rendered(render_3d_panel, p.keypoints_3d[i], size=(size, size), **world(i))
                    advance(i + 1)
        else:
            size = 480
            with VideoWriter(out, fps, size, size) as w:
                for i, panel in enumerate(render_3d_animation(p.keypoints_3d, skeleton, size=(size, size))):
                    w.write(panel)
                    advance(i + 1)


def _check_render_video(source, video, poses, num_frames: int, image_size) -> None:
    """WsgcnError unless the ``video`` opened as ``source`` fits the pose file ``poses``
    (frame count, when known, and image size)."""
    if source.num_frames is not None and source.num_frames != num_frames:
        raise WsgcnError(f"{video} has {source.num_frames} frames, {poses} has {num_frames}")
    if (source.width, source.height) != tuple(image_size):
        raise WsgcnError(f"{video} is {source.width}x{source.height}, the poses were made on "
                         f"{image_size[0]}x{image_size[1]}")


def _render_people(p, poses: Path, video: Path | None, out: Path, quiet: bool) -> None:
    """:func:`render` of a :class:`wsgcn_cli.io.posefile.PeoplePoseFile`: with ``video``,
    :func:`wsgcn_cli.render.overlay.compose_overlay_people` on each of its frames; without,
    the 3D panel alone (640 x 640 with the world view, else 480 x 480)."""
    from wsgcn_cli.io.video import VideoWriter, open_frames
    from wsgcn_cli.render.overlay import compose_overlay_people
    from wsgcn_cli.render.people import PeopleScene

    scene = PeopleScene.from_pose_file(p)
    fps = p.people[0].fps if p.people[0].fps > 0 else 25.0
    with progress_bar(f"rendering {out.name}", p.num_frames, quiet) as advance:
        if video is not None:
            with open_frames(video) as source:
                _check_render_video(source, video, poses, p.num_frames, p.people[0].image_size)
                with VideoWriter(out, source.fps or fps, *_overlay_dims(source.width, source.height)) as w:
                    for frame in source:
                        if frame.index >= p.num_frames:
                            raise WsgcnError(f"{video} has more frames than {poses}")
                        w.write_rendered(compose_overlay_people, frame.image, scene, frame.index)
                        advance(frame.index + 1)
        else:
            size = 640 if scene.world_view is not None else 480
            with VideoWriter(out, fps, size, size) as w:
                for i in range(p.num_frames):
                    w.write_rendered(scene.panel, i, (size, size))
                    advance(i + 1)


def finetune(clips, weights: str | None = None, out: str | Path | None = None, focal: float | None = None,
             fov_deg: float = 55.0, epochs: int = 20, holdout: float = 0.2,
             pipeline: str = pipelines.DEFAULT_LIFT, cache_dir: str | Path | None = None, data: str | None = None,
             overwrite: bool = False, device: str = "auto", quiet: bool = False, **options) -> dict:
    """Adapt a lifter to unlabelled clips (no 3D): see :mod:`wsgcn_cli.train.finetune`.

    Detects the 2D of each clip with the lift ``pipeline``'s detector (cached as
    ``<clip>.wsgcn2d.npz``), adapts ``weights`` (default: the pipeline's lifter) with
    reprojection (estimated root; intrinsics from ``focal`` pixels or an assumed
    ``fov_deg``), bone-length, temporal-smoothness and anchor terms on the one Trainer
    (the ``finetune`` task), early-stops on the held-out reprojection error (pixels) and
    writes ``out`` (.safetensors) + its model card ``<out stem>.md`` and learning curve
    ``<out stem>.curve.json``; an interrupted run resumes from ``<out>.ckpt``.
    ``options``: any field of :class:`wsgcn_cli.train.finetune.FinetuneConfig` (lr, ...).
    Returns the summary dict of :func:`wsgcn_cli.train.finetune.finetune`.

    Raises:
        WsgcnError: no ``out``, and every error of :func:`wsgcn_cli.train.finetune.finetune`
            (bad options, missing inputs, an existing output, a checkpoint of other settings).
    """
    from wsgcn_cli.train.finetune import finetune as run_finetune

    if out is None:
        raise WsgcnError("give the adapted weights file to write (--out NEW.safetensors)")
    command = ("wsgcn finetune " + " ".join(shlex.quote(a) for a in sys.argv[2:])
               if sys.argv[1:2] == ["finetune"] else "wsgcn_cli.api.finetune(...)")
    return run_finetune([Path(c) for c in clips], weights, out, focal=focal, fov_deg=fov_deg, epochs=epochs,
                        holdout=holdout, pipeline=pipeline, cache_dir=cache_dir, data=data, overwrite=overwrite,
                        device=device, quiet=quiet, command=command, **options)
