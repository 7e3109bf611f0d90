"""The ``lift`` stages wired together, streaming: detector 2D -> H36M-17 -> gap filling
-> lifter, one frame in, one finished frame out after a bounded delay.

:class:`StreamingLift` receives each frame's detector keypoints as they come and
returns frames once their 2D can no longer change: a frame whose keypoints are all
detected is final at once; one with a missing keypoint waits until that keypoint is
seen again or has been missing for more than ``max_gap_frames`` frames (see
:func:`wsgcn_cli.represent.fill_gaps`). The result is exactly that of filling the whole
sequence at once, while only those frames are held in memory. Finished frames are
lifted in small batches.

Pixels throughout: (J, 2) image coordinates (origin top-left, x right, y down); 3D:
(17, 3) root-relative camera coordinates, metres.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass

import numpy as np

from wsgcn_cli.detect.base import Keypoints2D
from wsgcn_cli.represent import fill_gaps, to_h36m17


@dataclass
class Representation:
    """The pipeline's ``[representation]`` table: the 2D stage's options.

    Attributes:
        kind: ``"geometric"`` (the layout mapping and gap filling alone) or ``"network"``
            (then the 2D pose representation network cleans and completes every frame
            after gap filling, see :mod:`wsgcn_cli.models.representation`).
        adjust: move detector landmarks towards Human3.6M's joint definitions.
        max_gap_frames: longest run of missing frames filled by interpolation.
        min_score: keypoints scoring below this count as missing (0: only undetected).
        weights: the network's weights (``kind = "network"``), relative to the
            repository or the pipeline file.
        detected_weight: in [0, 1]; for joints that were detected (or gap-filled), the
            output is ``detected_weight * input + (1 - detected_weight) * network``;
            missing joints always take the network's. 0: the network's output alone.
    """

    kind: str = "geometric"
    adjust: bool = True
    max_gap_frames: int = 10
    min_score: float = 0.0
    weights: str = ""
    detected_weight: float = 0.0

    @classmethod
    def from_spec(cls, table: dict) -> "Representation":
        """From a pipeline's ``[representation]`` table; WsgcnError for bad entries."""
        from wsgcn_cli.errors import WsgcnError

        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise WsgcnError(f"unknown [representation] option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        rep = cls(**table)
        if rep.kind not in ("geometric", "network"):
            raise WsgcnError(f"unknown representation kind {rep.kind!r}; known: geometric, network")
        if not 0.0 <= rep.detected_weight <= 1.0:
            raise WsgcnError(f"[representation] detected_weight must be within [0, 1], got {rep.detected_weight}")
        if rep.kind == "network" and not rep.weights:
            raise WsgcnError('representation kind "network" needs its weights (weights = "...")')
        return rep


class StreamingLift:
    """Bounded-delay 2D stage + lifter over a stream of detections.

    Args:
        lifter: a :class:`wsgcn_cli.lifter.Lifter` (or any callable (N,17,2) px ->
            (N,17,3) m taking ``width``/``height``); one with ``confidence_input`` also
            gets ``score=`` (N,17), the 2D stage's confidences.
        layout: the detector's keypoint layout; width, height, fps: of the input.
        rep: the 2D stage's options.
        batch: lift finished frames in batches of this many.
        net: the 2D representation network (a
            :class:`wsgcn_cli.models.representation.RepresentationModel`) or None.

    A frame is finished as soon as gap filling can no longer change it: at once when
    every keypoint is detected, else when each of its missing keypoints is seen again or
    has been missing for more than ``rep.max_gap_frames`` frames. So at most
    ``max_gap_frames + batch`` frames wait, and with a detector that finds the person in
    every frame only ``batch``.

    Use :meth:`push` for each frame (returns finished items) and :meth:`finish` at the
    end; an item is ``(payload, xy (17,2), score (17,), pose3d (17,3))`` where
    ``payload`` is whatever was pushed with the frame (e.g. the image).
    After :meth:`finish`, :attr:`raw`, :attr:`h36m` (filled) and :attr:`poses3d` hold
    the whole sequence.
    """

    def __init__(self, lifter, layout: str, width: int, height: int, fps: float,
                 rep: Representation, batch: int = 8, net=None):
        self.lifter, self.layout, self.rep, self.batch, self.net = lifter, layout, rep, batch, net
        self.width, self.height, self.fps = width, height, fps
        self._raw_xy, self._raw_score, self._times = [], [], []
        self._h_xy, self._h_score = [], []  # H36M-17 before gap filling
        self._out_xy, self._out_score, self._out_3d, self._out_missing = [], [], [], []
        self._pending: deque = deque()
        self._delay = rep.max_gap_frames + 1  # context before a gap, for interpolation
        self._run_start = None  # (J,) first frame of each keypoint's open run of misses, -1: none

    def _kp(self, xy, score, times, layout):
        return Keypoints2D(layout, xy, score, times, self.width, self.height, self.fps)

    def push(self, time_s: float, xy: np.ndarray, score: np.ndarray, payload=None) -> list:
        """Add one frame's detector keypoints (J,2) px and scores (J,)."""
        self._raw_xy.append(np.asarray(xy, np.float32))
        self._raw_score.append(np.asarray(score, np.float32))
        self._times.append(float(time_s))
        one = to_h36m17(self._kp(self._raw_xy[-1][None], self._raw_score[-1][None],
                                 np.array([time_s]), self.layout), adjust=self.rep.adjust)
        self._h_xy.append(one.xy[0])
        self._h_score.append(one.score[0])
        self._pending.append(payload)
        t = len(self._times) - 1
        valid = np.isfinite(one.xy[0]).all(axis=-1) & (one.score[0] >= self.rep.min_score)
        if self._run_start is None:
            self._run_start = np.full(len(valid), -1)
        self._run_start = np.where(valid, -1, np.where(self._run_start < 0, t, self._run_start))
        # Runs that may still be filled: they follow a detection and are not too long yet.
        open_runs = (self._run_start > 0) & (t - self._run_start + 1 <= self.rep.max_gap_frames)
        final = int(self._run_start[open_runs].min()) if open_runs.any() else t + 1
        ready = final - len(self._out_3d)
        return self._finalize(ready) if ready >= self.batch else []

    def finish(self) -> list:
        """Finish every frame still pending (end of the stream)."""
        return self._finalize(len(self._pending))

    def _finalize(self, count: int) -> list:
        if count <= 0:
            return []
        start = len(self._out_3d)
        stop = start + count
        lo = max(0, start - self._delay)
        hi = len(self._times)
        window = self._kp(np.stack(self._h_xy[lo:hi]), np.stack(self._h_score[lo:hi]),
                          np.array(self._times[lo:hi]), "h36m17")
        filled, missing = fill_gaps(window, self.rep.max_gap_frames, min_score=self.rep.min_score)
        xy = filled.xy[start - lo : stop - lo]
        score = filled.score[start - lo : stop - lo]
        missing = missing[start - lo : stop - lo]
        if self.net is not None:
            xy, score = self.net(xy, score, min_score=self.rep.min_score,
                                 detected_weight=self.rep.detected_weight)
            missing = ~np.isfinite(xy).all(axis=(1, 2))
        if getattr(self.lifter, "confidence_input", False):
            pose3d = self.lifter(xy, self.width, self.height, score=score)
        else:
            pose3d = self.lifter(xy, self.width, self.height)
        self._out_xy.extend(xy)
        self._out_score.extend(score)
        self._out_3d.extend(pose3d)
        self._out_missing.extend(missing)
        return [(self._pending.popleft(), xy[i], score[i], pose3d[i]) for i in range(count)]

    @property
    def raw(self) -> Keypoints2D:
        """The detector's keypoints of every frame pushed so far."""
        j = self._raw_xy[0].shape[0] if self._raw_xy else 0
        return self._kp(np.stack(self._raw_xy) if self._raw_xy else np.zeros((0, j, 2)),
                        np.stack(self._raw_score) if self._raw_score else np.zeros((0, j)),
                        np.array(self._times), self.layout)

    @property
    def h36m(self) -> Keypoints2D:
        """H36M-17 keypoints after gap filling of every finished frame."""
        return self._kp(np.array(self._out_xy).reshape(-1, 17, 2), np.array(self._out_score).reshape(-1, 17),
                        np.array(self._times[: len(self._out_xy)]), "h36m17")

    @property
    def poses3d(self) -> np.ndarray:
        """(T, 17, 3) lifted poses of every finished frame, metres; NaN where missing."""
        return np.array(self._out_3d, np.float32).reshape(-1, 17, 3)

    @property
    def missing(self) -> np.ndarray:
        """(T,) bool: frames of which a joint is still missing after gap filling."""
        return np.array(self._out_missing, bool)
