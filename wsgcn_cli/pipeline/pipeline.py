"""The lift pipeline as one object: built once from a pipeline file, then streamed.

:meth:`Pipeline.from_file` reads a lift pipeline (``pipelines/*.toml``), resolves its
paths, loads the weights of every stage and does the cross-stage checks once:

* a lifter that reads confidences (``confidence_input``) needs the 2D representation
  network (``[representation] kind = "network"``);
* the refiner (``[refiner]``, built by default when the table is there; ``refine=True``
  requires it, ``refine=False`` leaves it out) needs weights that exist, use the lifter's
  2D codec and, ideally, were trained on the lifter's weights (else a warning in
  :attr:`Pipeline.warnings`);
* the detector is known, or the ``--keypoints`` file exists; its layout maps to the
  lifter's (checked when a stream starts, when the layout is known);
* the lifter's layout (:attr:`Pipeline.layout`, from its weights' metadata, or
  ``[lifter] layout`` when the file names one, which the weights must then match):
  ``h36m17`` (the body lifters) or ``coco_wholebody133`` (the SemGAN whole-body lifter,
  :class:`wsgcn_cli.lifter.WholeBodyLifter`). The refiner, the 2D representation network,
  ``[bones]`` and ``[world]`` are made for H36M-17: a whole-body pipeline that enables any
  of them is a one-line WsgcnError (without a ``[world]`` table the world stage is off
  for it, where an H36M-17 pipeline has it on);
* the ``[smoothing]`` and ``[world]`` tables (and ``smooth``, ``focal_px``, ``fov_deg``,
  ``principal_px``, which replace their entries) are valid.

Then :meth:`Pipeline.stream` runs every stage over a video's frames and yields one
:class:`~wsgcn_cli.pipeline.stages.FrameResult` per frame, in order, and
:meth:`Pipeline.run` runs the stages after the detector over 2D keypoints already
detected (``finetune``, the benchmarks), so that all of them see exactly what ``lift``
feeds the lifter. What needs the whole clip runs after the stream, on the whole
:class:`Track`: :meth:`Pipeline.whole_clip` (the zero-phase Butterworth smoothing of the
3D, ``[smoothing] kind = "butterworth"``, and the world stage, ``[world]``: root
trajectory, floor, world frame, foot contact, :mod:`wsgcn_cli.world`); :meth:`run` does
it too when asked (``whole_clip=True``), and :meth:`pose_file` writes the world outputs.

Threads (in :meth:`Pipeline.stream`): the detector runs on the calling thread; the 2D
stage, the lifter and the refiner on a :class:`~wsgcn_cli.background.BackgroundWorker`
at a lower priority, so that on two cores they overlap with detection instead of
adding to it; whatever the caller does with a result (e.g. handing it to a threaded
:class:`~wsgcn_cli.io.video.VideoWriter`) happens on the calling thread.
"""

from __future__ import annotations

import collections
from dataclasses import replace
from pathlib import Path

import numpy as np

from wsgcn_cli.detect.base import Keypoints2D
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.pipeline import spec as specs
from wsgcn_cli.pipeline.stages import (Detect, FrameResult, KeypointFile, Lift, Pose2D, Refine, finish_through,
                                       push_through)
from wsgcn_cli.bones import BoneOptions, constant_bones
from wsgcn_cli.smoothing import OneEuroStage, Smoothing, butterworth
from wsgcn_cli.world import WorldOptions

#: Frames the 2D stage and the lifter handle at a time.
BATCH = 8


class Pipeline:
    """A lift pipeline's stages, built and checked once; use :meth:`from_file`.

    Attributes:
        spec: the pipeline file's tables (``name``, ``path``, ``[detector]``, ...).
        name: the pipeline's name.
        layout: the lifter's keypoint layout (``"h36m17"`` or ``"coco_wholebody133"``): what
            the 2D stage makes and every output holds.
        representation: the 2D stage's options (:class:`~wsgcn_cli.pipeline.spec.Representation`).
        net: the 2D pose representation network, or None (``kind = "geometric"``).
        lifter: the :class:`wsgcn_cli.lifter.Lifter` (or
            :class:`~wsgcn_cli.lifter.WholeBodyLifter`); lifter_path: its weights file.
        refiner: the :class:`wsgcn_cli.temporal.TemporalRefiner`, or None.
        keypoints: the ``--keypoints`` file read instead of detecting, or None.
        detector_table: the ``[detector]`` table (name and options).
        max_height: the overlay's height limit in pixels (``[render] max_height``).
        smoothing: the ``[smoothing]`` options (:class:`wsgcn_cli.smoothing.Smoothing`).
        world: the ``[world]`` options (:class:`wsgcn_cli.world.WorldOptions`).
        bones: the ``[bones]`` options (:class:`wsgcn_cli.bones.BoneOptions`).
        verbose: let the detector print its native log lines (when it has such an option).
        warnings: things worth telling the user (e.g. a refiner trained on other weights).
    """

    def __init__(self, spec: dict, representation, net, lifter, lifter_path: Path, refiner=None, keypoints=None,
                 warnings=(), smoothing: Smoothing | None = None, world: WorldOptions | None = None,
                 verbose: bool = False):
        self.spec, self.name, self.lifter_path = spec, spec["name"], Path(lifter_path)
        self.representation, self.net, self.lifter, self.refiner = representation, net, lifter, refiner
        self.layout = getattr(lifter, "layout", "h36m17")
        self.keypoints = None if keypoints is None else Path(keypoints)
        self.detector_table = dict(spec.get("detector", {}))
        self.max_height = spec.get("render", {}).get("max_height", 720)
        if not isinstance(self.max_height, int) or self.max_height < 16:
            raise WsgcnError(f"pipeline {spec['path']}: [render] max_height must be a whole number of pixels "
                             f">= 16, got {self.max_height!r}")
        self.warnings = list(warnings)
        self.smoothing = smoothing if smoothing is not None else Smoothing.from_spec(spec.get("smoothing", {}))
        self.world = world if world is not None else WorldOptions.from_spec(spec.get("world", {}))
        self.bones = BoneOptions.from_spec(spec.get("bones", {}))
        self.verbose = bool(verbose)
        if self.layout != "h36m17":
            self._check_h36m_only()

    def _check_h36m_only(self) -> None:
        """A pipeline whose lifter is not H36M-17 enables no H36M-17-only stage: WsgcnError
        (one line) for a refiner, the 2D network, ``[bones] mode`` other than ``"none"`` or
        ``[world] enabled = true`` (given in the file); without a ``[world]`` table the
        world stage is off."""
        where = f"pipeline {self.name} lifts {self.layout}"
        if self.refiner is not None:
            raise WsgcnError(f"{where}: the temporal refiner is made for H36M-17: remove [refiner] or set "
                             f"enabled = false")
        if self.net is not None:
            raise WsgcnError(f'{where}: the 2D representation network is made for H36M-17: use [representation] '
                             f'kind = "geometric"')
        if self.bones.mode != "none":
            raise WsgcnError(f'{where}: [bones] works on H36M-17 skeletons only: set mode = "none"')
        if self.world.enabled and "world" in self.spec:
            raise WsgcnError(f"{where}: [world] (root, floor, BVH/TRC/MOT) works on H36M-17 only: set enabled = false")
        if self.world.enabled:
            self.world = replace(self.world, enabled=False)

    @classmethod
    def from_file(cls, name_or_path: str | Path, device: str = "auto", refine: bool | None = None,
                  keypoints: str | Path | None = None, lifter_weights: str | Path | None = None,
                  smooth: str | None = None, focal_px: float | None = None, fov_deg: float | None = None,
                  verbose: bool = False, principal_px=None) -> "Pipeline":
        """Build the pipeline named ``name_or_path`` (``"body17"`` or a ``.toml`` path).

        Args:
            device: ``"auto"``, ``"cpu"`` or ``"cuda"``, for every network.
            refine: the ``[refiner]`` stage: None (default) = the pipeline's choice (built
                when it has a ``[refiner]`` table, unless the table says ``enabled =
                false``; ``body17`` has one), True = required, False = none. It refines
                sequences only: a single image (``fps`` 0) goes without it.
            keypoints: read 2D keypoints from this file (wsgcn ``.npz`` or MMPose
                ``.json``, see :mod:`wsgcn_cli.detect.precomputed`) instead of detecting.
            lifter_weights: use these lifter weights instead of the pipeline's
                (``finetune`` adapting other weights, ``lift --weights``); the checks apply to them.
            smooth: ``"none"``, ``"one-euro"`` or ``"butterworth"``, replacing
                ``[smoothing] kind`` (:mod:`wsgcn_cli.smoothing`).
            focal_px, fov_deg: the camera's focal length (pixels) or assumed field of view
                (degrees), replacing ``[world]``'s (:mod:`wsgcn_cli.world`).
            principal_px: the camera's principal point ``(cx, cy)`` in pixels, replacing
                ``[world]``'s (default: the image centre).
            verbose: let the detector print its native log lines.

        Raises:
            WsgcnError: a missing or invalid pipeline file, unknown detector or
                ``[representation]`` options, missing, unreadable or mismatched weights
                (layout, kind, codec), a confidence-reading lifter without the network,
                ``refine`` without a ``[refiner]`` table, a missing keypoint file, an
                unknown smoothing, a focal length <= 0 or a field of view outside (10, 170),
                a principal point that is not two numbers, bad ``[smoothing]`` / ``[world]`` entries.
        """
        from wsgcn_cli.smoothing import check_kind
        from wsgcn_cli.world import check_camera, check_principal_point

        if smooth is not None:  # the user's options first, before any file is read
            check_kind(smooth)
        check_camera(focal_px, fov_deg)
        if principal_px is not None:
            check_principal_point(principal_px)
        return cls.from_spec(specs.load(name_or_path, kind="lift"), device, refine, keypoints, lifter_weights,
                             smooth, focal_px, fov_deg, verbose, principal_px)

    @classmethod
    def from_spec(cls, spec: dict, device: str = "auto", refine: bool | None = None,
                  keypoints: str | Path | None = None, lifter_weights: str | Path | None = None,
                  smooth: str | None = None, focal_px: float | None = None, fov_deg: float | None = None,
                  verbose: bool = False, principal_px=None) -> "Pipeline":
        """:meth:`from_file` for tables already read (``wsgcn_cli.pipeline.load(..., kind="lift")``)."""
        from wsgcn_cli.lifter import load_lifter

        smoothing = Smoothing.from_spec(spec.get("smoothing", {}), kind=smooth)
        world = WorldOptions.from_spec(spec.get("world", {}), focal_px=focal_px, fov_deg=fov_deg,
                                       principal_px=principal_px)

        if refine and "refiner" not in spec:
            raise WsgcnError(f"--refine needs a pipeline with a [refiner] table (e.g. body17); "
                             f"{spec['name']} has none")
        if refine is None:
            enabled = spec.get("refiner", {}).get("enabled", True)
            if not isinstance(enabled, bool):
                raise WsgcnError(f"[refiner] enabled must be true or false, got {enabled!r}")
            refine = "refiner" in spec and enabled
        rep = specs.Representation.from_spec(spec.get("representation", {}))
        if keypoints is None:
            from wsgcn_cli.detect.base import available_detectors

            name = spec.get("detector", {}).get("name", "mediapipe")
            if name not in available_detectors():
                raise WsgcnError(f"unknown detector {name!r}; available: {', '.join(available_detectors())}")
        table = spec["lifter"]
        if lifter_weights is None and "weights" not in table:
            raise WsgcnError(f"pipeline {spec['path']}: [lifter] names no weights (weights = \"...\")")
        path = Path(lifter_weights) if lifter_weights is not None else specs.resolve_path(table["weights"], spec)
        layout = table.get("layout")
        if layout is not None and layout not in ("h36m17", "coco_wholebody133"):
            raise WsgcnError(f"pipeline {spec['path']}: [lifter] layout must be h36m17 or coco_wholebody133, "
                             f"got {layout!r}")
        lifter = load_lifter(path, flip_test=bool(table.get("flip_test", True)), device=device, layout=layout)
        if lifter.confidence_input and rep.kind != "network":
            raise WsgcnError(f"lifter {path.name} reads the 2D representation network's confidences: "
                             f"use it with [representation] kind = \"network\" (pipeline {spec['name']})")
        net = None
        if rep.kind == "network":
            from wsgcn_cli.pose2d.network import RepresentationModel

            net = RepresentationModel.from_weights(specs.resolve_path(rep.weights, spec), device=str(lifter.device))
        refiner, warnings = None, []
        if refine and lifter.layout != "h36m17":
            raise WsgcnError(f"pipeline {spec['name']} lifts {lifter.layout}: the temporal refiner is made for "
                             f"H36M-17: remove [refiner] (or set enabled = false), or lift without --refine")
        if refine:
            refiner, warnings = _load_refiner(spec, lifter, path)
        if keypoints is not None and not Path(keypoints).is_file():
            raise WsgcnError(f"keypoint file {keypoints} does not exist")
        return cls(spec, rep, net, lifter, path, refiner, keypoints, warnings, smoothing, world, verbose)

    # -- stages ----------------------------------------------------------------------------

    def detector(self, source):
        """A fresh detector for ``source`` (a :class:`wsgcn_cli.io.video.FrameSource`; its
        tracking state is the source's own): the ``--keypoints`` file's rows, or the
        ``[detector]`` model (static-image mode unless the source is a video).

        Raises WsgcnError for an unreadable keypoint file, or one whose frame count
        differs from the source's, or a detector that cannot be created.
        """
        if self.keypoints is not None:
            from wsgcn_cli.detect.precomputed import load_keypoints

            kp = load_keypoints(self.keypoints, image_size=(source.width, source.height), fps=source.fps)
            if source.num_frames is not None and kp.num_frames != source.num_frames:
                raise WsgcnError(f"{self.keypoints} has {kp.num_frames} frames of keypoints, "
                                 f"{getattr(source, 'path', 'the input')} has {source.num_frames} frames")
            return KeypointFile(kp, str(self.keypoints))
        from wsgcn_cli.detect.base import make_detector

        name = self.detector_table.get("name", "mediapipe")
        options = {k: v for k, v in self.detector_table.items() if k != "name"}
        options.setdefault("static_image_mode", source.kind != "video")
        if _accepts(name, "verbose"):  # --verbose wins over the table; without it the table decides
            options["verbose"] = self.verbose or bool(options.get("verbose", False))
        return make_detector(name, **options)

    def stages(self, layout: str, width: int, height: int, fps: float, lift: bool = True) -> list:
        """Fresh stages after the detector for one stream of ``layout`` keypoints on
        ``width`` x ``height`` pixel images at ``fps``: the 2D stage, the One-Euro filter of
        the 2D (``[smoothing] kind = "one-euro"``), and with ``lift`` the lifter and the
        refiner (if built, and ``fps`` > 0: a single image has no time to refine over).
        Raises WsgcnError for a layout that cannot be mapped to :attr:`layout`."""
        out = [Pose2D(self.representation, layout, width, height, fps, self.net, BATCH, target=self.layout)]
        if self.smoothing.kind == "one-euro":
            out.append(OneEuroStage(self.smoothing, width, height, fps))
        if lift:
            focal, center = self.world.camera(width, height)  # read by a virtual_camera lifter only
            out.append(Lift(self.lifter, width, height, BATCH, focal=focal, center=center))
            if self.refiner is not None and fps > 0:  # temporal: not for a single image
                out.append(Refine(self.refiner, self.lifter.codec_mode, width, height, focal=focal, center=center))
        return out

    def stream(self, source, keep_images: bool = True) -> "Stream":
        """Run the pipeline over ``source``'s frames: iterate over the returned
        :class:`Stream` for one :class:`~wsgcn_cli.pipeline.stages.FrameResult` per frame,
        in order; use it as a context manager so that an error or an early exit stops
        its thread and closes the detector.

        ``source``: a :class:`wsgcn_cli.io.video.FrameSource` (or anything with
        ``width``, ``height``, ``fps``, ``kind``, ``num_frames`` that iterates over
        :class:`wsgcn_cli.io.video.Frame`). ``keep_images``: results carry their frame's
        image (for the overlay); without it, no image is held.

        The detector and the stages are created here, so their errors (an unreadable
        keypoint file, an unmappable layout) come before any frame is read.
        """
        return Stream(self, source, keep_images)

    def run(self, kp: Keypoints2D, lift: bool = True, whole_clip: bool = False) -> "Track":
        """The stages after the detector over keypoints already detected (one person, in
        order, e.g. a ``finetune`` clip's cached detections), on the calling thread.

        ``kp``: any layout that maps to :attr:`layout`, pixels. ``lift``: also run the lifter
        (and the refiner, if built); else ``keypoints_3d`` stays empty. Returns the
        :class:`Track`. The 2D and 3D are exactly what :meth:`stream` gives for the same
        keypoints and frame times; with ``whole_clip`` (and ``lift``) the track then goes
        through :meth:`whole_clip`, as ``lift`` does before writing the pose file.
        """
        stages = self.stages(kp.layout, kp.width, kp.height, kp.fps, lift=lift)
        track = Track(kp.layout, self.layout)
        for i in range(kp.num_frames):
            track.extend(push_through(stages, [FrameResult(i, float(kp.times[i]), None, kp.xy[i], kp.score[i])]))
        track.extend(finish_through(stages))
        if lift and whole_clip:
            self.whole_clip(track, kp.width, kp.height, kp.fps)
        return track

    def whole_clip(self, track: "Track", width: int, height: int, fps: float) -> "Track":
        """The stages that need the whole clip, after the stream, in place on ``track``
        (of ``width`` x ``height`` pixel images at ``fps``; 0 for single images):

        * ``[smoothing] kind = "butterworth"``: the 3D is replaced by its zero-phase
          Butterworth low-pass (:func:`wsgcn_cli.smoothing.butterworth`, per run of frames
          with a pose; for COCO-WholeBody-133, per group of keypoints seen in the same
          frames -- body, face, each hand -- so a hand is filtered over the frames it
          was seen in and stays NaN elsewhere);
        * ``[bones] mode = "clip"``: then one constant, symmetric skeleton for the clip
          (:func:`wsgcn_cli.bones.constant_bones`);
        * ``[world]`` (unless ``enabled = false``): :attr:`Track.world` is set to
          :func:`wsgcn_cli.world.estimate_world` of the 2D and 3D (root trajectory,
          floor, world frame, foot contact), the root solved on the joints the detector
          observes directly. Without any frame with a pose it stays None.

        Returns ``track``. Raises WsgcnError for a bad focal length or field of view.
        """
        from wsgcn_cli.pose2d.mapping import observed_joints
        from wsgcn_cli.world import estimate_world

        if self.smoothing.kind == "butterworth":
            if self.layout == "h36m17":
                pose = butterworth(track.keypoints_3d, fps, self.smoothing.cutoff_hz, self.smoothing.order)
            else:
                pose = _butterworth_by_seen_pattern(track.keypoints_3d, fps, self.smoothing)
            track.set_keypoints_3d(pose)
        if self.bones.mode != "none" and track.frames_with_pose > 0:
            track.set_keypoints_3d(constant_bones(track.keypoints_3d, self.bones))
        track.world = None
        if self.world.enabled and track.frames_with_pose > 0:
            try:
                weights = observed_joints(track.layout).astype(np.float64)
            except WsgcnError:
                weights = None
            track.world = estimate_world(track.keypoints_2d, track.keypoints_3d, width, height, fps,
                                         options=self.world, joint_weights=weights)
        return track

    # -- provenance --------------------------------------------------------------------------

    def pose_file(self, track: "Track", fps: float, image_size: tuple[int, int], source: str):
        """A :class:`wsgcn_cli.io.posefile.PoseFile` of ``track`` with this pipeline's
        provenance (name, weights digests, smoothing) and, when :meth:`whole_clip` found
        them (:attr:`Track.world`), the world outputs (``root_camera_m``,
        ``keypoints_3d_world``, ``camera_to_world``, ``foot_contact``, ``focal_px``);
        ``fps``, ``image_size`` (width, height px) and ``source`` (file name) describe the input."""
        from wsgcn_cli.io import posefile

        extra = {}
        if self.refiner is not None:
            extra["refiner_sha256"] = self.refiner.sha256
        if self.net is not None:
            extra["representation_sha256"] = self.net.sha256
        extra["smoothing"] = self.smoothing.kind
        world = getattr(track, "world", None)
        fields = {} if world is None else dict(
            root_camera_m=world.root_camera_m, keypoints_3d_world=world.keypoints_3d_world,
            camera_to_world=world.camera_to_world, foot_contact=world.foot_contact, focal_px=world.focal_px)
        return posefile.PoseFile(
            keypoints_2d=track.keypoints_2d, scores=track.scores, keypoints_3d=track.keypoints_3d,
            times=track.times, missing=track.missing, fps=fps, image_size=tuple(image_size),
            detector_keypoints=track.detector_keypoints, detector_scores=track.detector_scores,
            detector_layout=track.layout, pipeline=self.name, weights_sha256=self.lifter.sha256, source=source,
            extra=extra, layout=track.output_layout, **fields)


def _butterworth_by_seen_pattern(pose: np.ndarray, fps: float, options: Smoothing) -> np.ndarray:
    """:func:`wsgcn_cli.smoothing.butterworth` of (T, J, 3) poses (NaN where a keypoint is
    not known) over groups of keypoints with the same frames known (one call per group:
    typically body, face, each hand), each over its own runs of frames; NaN stays NaN."""
    known = np.isfinite(pose).all(axis=-1)                      # (T, J)
    out = np.array(pose, np.float64)
    patterns, group = np.unique(known.T, axis=0, return_inverse=True)
    for g in range(len(patterns)):
        cols = np.flatnonzero(group.ravel() == g)
        out[:, cols] = butterworth(pose[:, cols], fps, options.cutoff_hz, options.order)
    return out


def _accepts(detector: str, option: str) -> bool:
    """Whether the detector called ``detector`` takes the keyword ``option`` (e.g. an
    older detector without ``verbose``)."""
    import importlib
    import inspect

    from wsgcn_cli.detect.base import _DETECTORS

    target = _DETECTORS.get(detector)
    if target is None:
        return False
    module_name, class_name = target.split(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError:
        return False
    return option in inspect.signature(cls).parameters


def _load_refiner(spec: dict, lifter, lifter_path: Path):
    """(the pipeline's refiner, warnings) for ``lifter``; no refiner (and a warning) when it
    reads another 2D codec than the lifter. Raises WsgcnError for missing weights."""
    from wsgcn_cli import weights as wio
    from wsgcn_cli.temporal import TemporalRefiner

    table = spec["refiner"]
    if "weights" not in table:
        raise WsgcnError(f"pipeline {spec['path']}: [refiner] names no weights (weights = \"...\")")
    path = specs.resolve_path(table["weights"], spec)
    if not path.is_file():
        raise WsgcnError(f"refiner weights {path} not found: train them with "
                         f"`wsgcn train train-refiner` (pipelines/train-refiner.toml)")
    codec = wio.load(path)[1].get("codec")
    if codec != lifter.codec_mode:  # e.g. lifter weights of another 2D codec given with --weights
        return None, [f"{table['weights']} reads the {codec!r} 2D codec, {lifter_path.name} uses "
                      f"{lifter.codec_mode!r}: lifting without the refiner (--no-refine silences this)"]
    refiner = TemporalRefiner.from_weights(path, device=str(lifter.device), lifter=lifter, window=table.get("window"),
                                           overlap=table.get("overlap"), flip_test=bool(table.get("flip_test", False)))
    warnings = [] if refiner.lifter_matches else \
        [f"{table['weights']} was trained on other lifter weights than {lifter_path.name}"]
    return refiner, warnings


class Stream:
    """One pass of a :class:`Pipeline` over a source's frames (see :meth:`Pipeline.stream`).

    Iterate once for the :class:`~wsgcn_cli.pipeline.stages.FrameResult` of every frame,
    in order. Memory stays bounded whatever the video's length: a frame (and its image)
    is held only until every stage has finished it (see :mod:`wsgcn_cli.pipeline.stages`
    for each stage's delay) plus a queue of 4 frames before the background thread.

    Attributes: ``layout``, the detector's keypoint layout.

    Raises (while iterating) the errors of the source (an undecodable video), the
    detector and the stages.
    """

    def __init__(self, pipeline: Pipeline, source, keep_images: bool = True):
        self.source = source
        detector = pipeline.detector(source)
        self.layout = detector.layout  # the detector's keypoint layout
        try:
            self.detect = Detect(detector, keep_images)
            self.stages = pipeline.stages(detector.layout, source.width, source.height, source.fps)
        except BaseException:
            detector.close()
            raise
        self._run = self._results()

    def __iter__(self):
        return self._run

    def _results(self):
        import torch

        from wsgcn_cli.background import BackgroundWorker

        done: collections.deque = collections.deque()  # finished on the worker, taken here
        # The lifter sees a few frames at a time: one thread is fastest, and leaves the
        # other core to the detector.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        worker = BackgroundWorker(lambda item: done.extend(push_through(self.stages, [item])),
                                  queue_size=4, name="lift", nice=10)
        try:
            for frame in self.source:
                for item in self.detect.push(frame):
                    worker.submit(item)
                while done:
                    yield done.popleft()
            worker.close()
            done.extend(finish_through(self.stages))
            while done:
                yield done.popleft()
        except BaseException:
            worker.abort()
            raise
        finally:
            torch.set_num_threads(threads)
            self.detect.close()

    def close(self) -> None:
        """Stop early: the background thread stops, the detector is closed (idempotent)."""
        self._run.close()  # runs the generator's clean-up if it started
        self.detect.close()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Track:
    """Whole-sequence arrays of a stream's results, in order (images are not kept).

    Attributes (T frames, K joints of ``output_layout``): ``layout`` (the detector's),
    ``output_layout`` (the lifter's, :attr:`Pipeline.layout`: ``"h36m17"``, K = 17, or
    ``"coco_wholebody133"``, K = 133), and the properties ``times`` (T,) s,
    ``keypoints_2d`` (T, K, 2) px, ``scores`` (T, K), ``missing`` (T,) bool,
    ``keypoints_3d`` (T, K, 3) m (NaN where missing or not lifted, and for whole-body
    keypoints not seen in 2D), ``detector_keypoints`` (T, J, 2) px, ``detector_scores``
    (T, J), ``frames_with_pose``; ``world``, the :class:`wsgcn_cli.world.World` that
    :meth:`Pipeline.whole_clip` found (None before, or without a ``[world]`` stage).
    """

    def __init__(self, layout: str = "", output_layout: str = "h36m17"):
        from wsgcn_cli.skeletons import get_layout

        self.layout, self.output_layout = layout, output_layout
        self.num_joints = get_layout(output_layout).num_joints
        self.world = None
        self._rows: dict[str, list] = {k: [] for k in ("time", "keypoints_2d", "scores", "missing", "keypoints_3d",
                                                        "detector_keypoints", "detector_scores")}

    def add(self, result: FrameResult) -> None:
        """Append one result (frames must come in order)."""
        for key, rows in self._rows.items():
            value = getattr(result, key)
            rows.append(np.full((self.num_joints, 3), np.nan, np.float32) if value is None and key == "keypoints_3d"
                        else value)

    def extend(self, results) -> None:
        for r in results:
            self.add(r)

    def set_keypoints_3d(self, pose) -> None:
        """Replace every frame's 3D with ``pose`` (T, K, 3) metres (e.g. smoothed)."""
        pose = np.asarray(pose, np.float32)
        if pose.shape != (len(self), self.num_joints, 3):
            raise WsgcnError(f"the track has {len(self)} frames of ({self.num_joints}, 3); got {pose.shape}")
        self._rows["keypoints_3d"] = list(pose)

    def __len__(self) -> int:
        return len(self._rows["time"])

    def _stack(self, key: str, shape: tuple, dtype) -> np.ndarray:
        rows = self._rows[key]
        return np.array(rows, dtype).reshape((len(rows),) + shape)

    @property
    def times(self) -> np.ndarray:
        return np.array(self._rows["time"], np.float64)

    @property
    def keypoints_2d(self) -> np.ndarray:
        return self._stack("keypoints_2d", (self.num_joints, 2), np.float32)

    @property
    def scores(self) -> np.ndarray:
        return self._stack("scores", (self.num_joints,), np.float32)

    @property
    def missing(self) -> np.ndarray:
        return np.array(self._rows["missing"], bool)

    @property
    def keypoints_3d(self) -> np.ndarray:
        return self._stack("keypoints_3d", (self.num_joints, 3), np.float32)

    @property
    def detector_keypoints(self) -> np.ndarray:
        rows = self._rows["detector_keypoints"]
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0, 2), np.float32)

    @property
    def detector_scores(self) -> np.ndarray:
        rows = self._rows["detector_scores"]
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)

    @property
    def frames_with_pose(self) -> int:
        """Frames with a 3D pose: complete (H36M-17), or with the body and feet
        (COCO-WholeBody-133 keypoints 0-22; face and hands are optional)."""
        from wsgcn_cli.skeletons import WHOLEBODY133_PARTS

        pose = self.keypoints_3d
        if self.output_layout == "coco_wholebody133":
            pose = pose[:, slice(*WHOLEBODY133_PARTS["body"])]
        return int(np.isfinite(pose).all(axis=(1, 2)).sum())

    def keypoints(self, width: int, height: int, fps: float) -> Keypoints2D:
        """The 2D stage's output as :class:`Keypoints2D` (``output_layout``, pixels) of an
        input of ``width`` x ``height`` pixels at ``fps``."""
        return Keypoints2D(self.output_layout, self.keypoints_2d, self.scores, self.times, width, height, fps)
