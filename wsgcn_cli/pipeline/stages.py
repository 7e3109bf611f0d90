"""The lift stages, each speaking one small streaming protocol.

Every stage has ``push(item) -> list`` (the items it has finished, in order, possibly
none) and ``finish() -> list`` (the rest, at the end of the stream), and holds a
bounded number of items in between. Items are :class:`FrameResult` objects, filled in
as they pass:

=================  ============================================  ==========================
stage              fills in                                      holds at most
=================  ============================================  ==========================
:class:`Detect`    ``detector_keypoints``, ``detector_scores``   nothing (one in, one out)
:class:`Pose2D`    ``keypoints_2d``, ``scores``, ``missing``     ``max_gap_frames + batch``
``OneEuroStage``   ``keypoints_2d`` (smoothed, optional)         nothing (one in, one out)
:class:`Lift`      ``keypoints_3d``                              ``batch - 1``
:class:`Refine`    ``keypoints_3d`` (refined)                    ``window + step - 2``
=================  ============================================  ==========================

``OneEuroStage`` (:class:`wsgcn_cli.smoothing.OneEuroStage`, ``[smoothing] kind =
"one-euro"``) is the causal One-Euro filter of the 2D before the lifter. What needs the
whole clip (the zero-phase Butterworth smoothing of the 3D, the world stage) is not a
stage: :meth:`wsgcn_cli.pipeline.Pipeline.whole_clip` runs it on the whole track after
the stream.

Streaming gives exactly the whole-sequence result: gap filling sees every frame that
can change a frame's 2D before that frame leaves :class:`Pose2D` (see
:func:`wsgcn_cli.pose2d.gaps.fill_gaps`), and :class:`Refine` reproduces
:func:`wsgcn_cli.temporal.refine_sequence` (see
:class:`~wsgcn_cli.temporal.StreamingRefiner`).

Layouts: the 2D stage makes the lifter's layout (``Pipeline.layout``): H36M-17 (J = 17,
any detector layout mapped by :func:`wsgcn_cli.pose2d.mapping.to_h36m17`) or
COCO-WholeBody-133 (J = 133, from a ``coco_wholebody133`` detector or keypoint file as it
is, gaps filled per keypoint by :func:`wsgcn_cli.pose2d.wholebody.fill_wholebody_gaps`);
every later array has J joints.

Units and frames: 2D in pixels of the upright input image (origin top-left, x right,
y down); 3D root-relative camera coordinates (x right, y down, z away), metres.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from wsgcn_cli.detect.base import Keypoints2D
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.pipeline.spec import Representation
from wsgcn_cli.pose2d.gaps import fill_gaps
from wsgcn_cli.pose2d.mapping import to_h36m17
from wsgcn_cli.skeletons import WHOLEBODY133_PARTS


@dataclass
class FrameResult:
    """One frame on its way through the pipeline, and what :meth:`Pipeline.stream` yields.

    Attributes:
        index: 0-based frame number in the input.
        time: seconds since the first frame (the video's real timestamps).
        image: (H, W, 3) uint8 RGB, upright; None when the stream keeps no images.
        detector_keypoints: (J, 2) float32 pixels in the detector's layout, NaN where not
            detected; detector_scores: (J,) float32 in [0, 1].
        keypoints_2d: (J, 2) float32 pixels in the lifter's layout (H36M-17, J = 17, or
            COCO-WholeBody-133, J = 133) after the 2D stage (mapping, gap filling,
            optional network), NaN where missing; scores: (J,) float32 in [0, 1].
        missing: True when a joint the lifter needs is still missing after the 2D stage
            (no 3D then): any of the 17 (H36M-17), any of the body and feet 0-22
            (COCO-WholeBody-133: face and hands are optional).
        keypoints_3d: (J, 3) float32 root-relative camera coordinates, metres; NaN rows
            where ``missing``, and (COCO-WholeBody-133) NaN for each keypoint not seen in 2D.
    """

    index: int
    time: float
    image: np.ndarray | None
    detector_keypoints: np.ndarray
    detector_scores: np.ndarray
    keypoints_2d: np.ndarray | None = None
    scores: np.ndarray | None = None
    missing: bool = True
    keypoints_3d: np.ndarray | None = None


class KeypointFile:
    """The ``--keypoints`` reader as a detector: the rows of a keypoint file, in order.

    Follows :class:`wsgcn_cli.detect.base.Detector`: :meth:`detect` returns the next
    frame's (J, 2) pixels and (J,) scores (the image is not looked at).

    Raises WsgcnError (from :meth:`detect`) when asked for more frames than the file holds.
    """

    def __init__(self, kp: Keypoints2D, name: str = "keypoint file"):
        self.kp, self.name, self.layout = kp, name, kp.layout
        self._next = 0

    def detect(self, image=None) -> tuple[np.ndarray, np.ndarray]:
        if self._next >= self.kp.num_frames:
            raise WsgcnError(f"{self.name} has fewer frames ({self.kp.num_frames}) than the input")
        i, self._next = self._next, self._next + 1
        return self.kp.xy[i], self.kp.score[i]

    def close(self) -> None:
        pass


class Detect:
    """Frames (:class:`wsgcn_cli.io.video.Frame`) -> :class:`FrameResult` with the
    detector's keypoints, one out per frame in. ``keep_images``: keep each frame's image
    in its result (for the overlay)."""

    def __init__(self, detector, keep_images: bool = True):
        self.detector, self.layout, self.keep_images = detector, detector.layout, keep_images

    def push(self, frame) -> list[FrameResult]:
        xy, score = self.detector.detect(frame.image)
        return [FrameResult(frame.index, float(frame.time_s), frame.image if self.keep_images else None,
                            np.asarray(xy, np.float32), np.asarray(score, np.float32))]

    def finish(self) -> list[FrameResult]:
        return []

    def close(self) -> None:
        """Release the detector (idempotent)."""
        if self.detector is not None:
            detector, self.detector = self.detector, None
            detector.close()


class Pose2D:
    """The 2D stage: the detector's layout -> the lifter's (``target``), short gaps
    filled, optionally the 2D pose representation network.

    Args:
        rep: the ``[representation]`` options.
        layout: the detector's keypoint layout; width, height (pixels), fps: of the input.
        net: the network (a :class:`wsgcn_cli.pose2d.network.RepresentationModel`,
            ``rep.kind == "network"``) or None (always None for COCO-WholeBody-133).
        batch: frames are released (and run through the network) in batches of at least
            this many, except at the end.
        target: ``"h36m17"`` (default: :func:`~wsgcn_cli.pose2d.mapping.to_h36m17` of any
            mappable layout) or ``"coco_wholebody133"`` (the detector's 133 keypoints as
            they are; a frame is ``missing`` when a body or foot keypoint, 0-22, is).

    A frame is final as soon as gap filling can no longer change it: at once when every
    keypoint is detected, else when each of its missing keypoints is seen again or has
    been missing for more than ``rep.max_gap_frames`` frames. So at most
    ``max_gap_frames + batch`` frames wait (``batch`` when the person is found in every
    frame), and ``max_gap_frames + 1`` earlier frames are kept as interpolation context.

    Raises WsgcnError (on construction) for a layout that cannot be mapped to ``target``.
    """

    def __init__(self, rep: Representation, layout: str, width: int, height: int, fps: float,
                 net=None, batch: int = 8, target: str = "h36m17"):
        from wsgcn_cli.pose2d.mapping import mapping_matrix

        if target == "h36m17":
            mapping_matrix(layout)  # raises WsgcnError for a layout without a mapping
            self._required = slice(None)
        elif target == "coco_wholebody133":
            if layout != target:
                raise WsgcnError(f"the whole-body lifter needs coco_wholebody133 keypoints (e.g. detector "
                                 f"mediapipe_holistic or a 133-keypoint file); got {layout}")
            self._required = slice(*WHOLEBODY133_PARTS["body"])
        else:
            raise WsgcnError(f"no 2D stage makes layout {target!r}; known: h36m17, coco_wholebody133")
        self.target = target
        self.rep, self.layout, self.net, self.batch = rep, layout, net, batch
        self.width, self.height, self.fps = width, height, fps
        self._context = rep.max_gap_frames + 1  # frames before a gap, for interpolation
        self._xy: deque = deque()     # H36M-17 before gap filling, frames self._first...
        self._score: deque = deque()
        self._times: deque = deque()
        self._first = 0               # index of the oldest frame kept
        self._pending: deque = deque()  # results not finished yet
        self._done = 0                # frames finished
        self._run_start = None        # (17,) first frame of each joint's open run of misses, -1: none

    def push(self, item: FrameResult) -> list[FrameResult]:
        """Add one frame (its detector keypoints); returns the frames now final."""
        one = Keypoints2D(self.layout, item.detector_keypoints[None], item.detector_scores[None],
                          np.array([item.time]), self.width, self.height, self.fps)
        if self.target == "h36m17":
            one = to_h36m17(one, adjust=self.rep.adjust)
        self._xy.append(one.xy[0])
        self._score.append(one.score[0])
        self._times.append(float(item.time))
        self._pending.append(item)
        t = self._first + len(self._times) - 1
        valid = np.isfinite(one.xy[0]).all(axis=-1) & (one.score[0] >= self.rep.min_score)
        if self._run_start is None:
            self._run_start = np.full(len(valid), -1)
        self._run_start = np.where(valid, -1, np.where(self._run_start < 0, t, self._run_start))
        # Runs that may still be filled: they follow a detection and are not too long yet.
        open_runs = (self._run_start > 0) & (t - self._run_start + 1 <= self.rep.max_gap_frames)
        final = int(self._run_start[open_runs].min()) if open_runs.any() else t + 1
        ready = final - self._done
        return self._release(ready) if ready >= self.batch else []

    def finish(self) -> list[FrameResult]:
        """End of the stream: every frame still waiting."""
        return self._release(len(self._pending))

    def _release(self, count: int) -> list[FrameResult]:
        if count <= 0:
            return []
        start, stop = self._done, self._done + count
        lo = max(self._first, start - self._context)
        for _ in range(lo - self._first):  # older frames can no longer change anything
            self._xy.popleft(), self._score.popleft(), self._times.popleft()
        self._first = lo
        window = Keypoints2D(self.target, np.stack(self._xy), np.stack(self._score), np.array(self._times),
                             self.width, self.height, self.fps)
        if self.target == "h36m17":
            filled, missing = fill_gaps(window, self.rep.max_gap_frames, min_score=self.rep.min_score)
        else:
            from wsgcn_cli.pose2d.wholebody import fill_wholebody_gaps

            filled, _ = fill_wholebody_gaps(window, self.rep.max_gap_frames, min_score=self.rep.min_score)
            missing = ~np.isfinite(filled.xy[:, self._required]).all(axis=(1, 2))
        xy, score = filled.xy[start - lo : stop - lo], filled.score[start - lo : stop - lo]
        missing = missing[start - lo : stop - lo]
        if self.net is not None:
            xy, score = self.net(xy, score, min_score=self.rep.min_score, detected_weight=self.rep.detected_weight)
            missing = ~np.isfinite(xy).all(axis=(1, 2))
        self._done = stop
        out = [self._pending.popleft() for _ in range(count)]
        for i, item in enumerate(out):
            item.keypoints_2d = np.asarray(xy[i], np.float32)
            item.scores = np.asarray(score[i], np.float32)
            item.missing = bool(missing[i])
        return out


class Lift:
    """The lifter stage: pixels (J = 17 or 133) -> root-relative 3D, metres, ``batch``
    frames at a time.

    ``lifter``: a :class:`wsgcn_cli.lifter.Lifter` or
    :class:`~wsgcn_cli.lifter.WholeBodyLifter` (or any callable (N, J, 2) px -> (N, J, 3) m
    taking ``width``/``height``); one whose ``reads_scores`` is true also gets ``score=``
    (N, J), the 2D stage's confidences, and one whose ``codec_mode`` is ``"virtual_camera"``
    the camera's ``focal`` and ``center`` ((2,) pixels; None: the lifter's default). Frames
    with a missing joint get NaN.
    """

    def __init__(self, lifter, width: int, height: int, batch: int = 8, focal=None, center=None):
        self.lifter, self.width, self.height, self.batch = lifter, width, height, batch
        self._confidence = bool(getattr(lifter, "reads_scores", getattr(lifter, "confidence_input", False)))
        self._camera = ({"focal": focal, "center": center}
                        if getattr(lifter, "codec_mode", None) == "virtual_camera" else {})
        self._pending: list[FrameResult] = []

    def push(self, item: FrameResult) -> list[FrameResult]:
        self._pending.append(item)
        return self.finish() if len(self._pending) >= self.batch else []

    def finish(self) -> list[FrameResult]:
        items, self._pending = self._pending, []
        if not items:
            return []
        xy = np.stack([r.keypoints_2d for r in items])
        extra = {"score": np.stack([r.scores for r in items])} if self._confidence else {}
        extra.update(self._camera)
        pose3d = self.lifter(xy, self.width, self.height, **extra)
        for r, pose in zip(items, pose3d):
            r.keypoints_3d = np.asarray(pose, np.float32)
        return items


class Refine:
    """The temporal refiner stage (:class:`wsgcn_cli.temporal.StreamingRefiner`).

    ``refiner``: a :class:`wsgcn_cli.temporal.TemporalRefiner`; ``codec_mode``: the
    lifter's 2D normalisation (the refiner reads the lifter's normalised 2D, (17, 2));
    width, height: of the input (pixels); focal, center: the camera's intrinsics ((2,)
    pixels), needed by the ``"virtual_camera"`` codec only (the Lift stage's). Replaces ``keypoints_3d`` with
    the refined pose, delayed by at most ``window + step - 2`` frames.
    """

    def __init__(self, refiner, codec_mode: str, width: int, height: int, focal=None, center=None):
        self.stream = refiner.stream()
        self.codec_mode, self.width, self.height, self.focal, self.center = codec_mode, width, height, focal, center
        self._pending: deque = deque()

    def _encode(self, xy: np.ndarray) -> np.ndarray:
        from wsgcn_cli import codec

        if not np.isfinite(xy).all():
            return np.full(xy.shape, np.nan, np.float32)
        return codec.encode_2d(xy[None], self.codec_mode, self.width, self.height,
                               self.focal, self.center).astype(np.float32)[0]

    def _pair(self, rows) -> list[FrameResult]:
        out = []
        for row in rows:
            item = self._pending.popleft()
            item.keypoints_3d = np.asarray(row, np.float32)
            out.append(item)
        return out

    def push(self, item: FrameResult) -> list[FrameResult]:
        self._pending.append(item)
        return self._pair(self.stream.push(item.keypoints_3d, self._encode(item.keypoints_2d)))

    def finish(self) -> list[FrameResult]:
        return self._pair(self.stream.finish())


def push_through(stages, items) -> list:
    """Push ``items`` through ``stages`` in order; returns what leaves the last stage."""
    for stage in stages:
        items = [out for item in items for out in stage.push(item)]
    return items


def finish_through(stages) -> list:
    """End of the stream for a chain of stages: finish each, pushing what it releases
    through the stages after it; returns what leaves the last stage."""
    out: list = []
    for stage in stages:  # what the earlier stages released, then this stage's rest
        out = push_through([stage], out) + stage.finish()
    return out
