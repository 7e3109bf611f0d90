"""People tracked over a video with persistent IDs, from a per-frame list of people.

A multi-person detector (:class:`wsgcn_cli.detect.multi_person.BlazePoseMultiDetector`)
returns, per frame, everyone it found, in no stable order. :class:`PeopleTracker` turns
that into tracks, one per person, each under one ID:

* **Prediction**: each live track is predicted into the current frame with a constant
  velocity of its box centre (the mean velocity over its last ``velocity_frames`` seen
  frames); the keypoints move with the box.
* **Cost** between a track's prediction ``t`` and a detected person ``d`` (all in
  pixels, normalised so that they do not depend on the image size):

  ``cost = kp + iou_weight * (1 - IoU(box_t, box_d)) + size_weight * |log(diag_d / diag_t)|
  + missed_weight * missed / max_missed``

  where ``kp`` is the median distance between the keypoints both see with a score >=
  ``min_score`` (all keypoints if fewer than 4 are seen by both) divided by the mean
  of the two box diagonals, and ``missed`` the frames the track has gone unseen (a track
  seen in the previous frame wins a tie against one lost for a while).
* **Gating**: a pair with ``kp > max_distance`` is never matched.
* **Assignment**: :func:`scipy.optimize.linear_sum_assignment` on the costs of every
  live track (seen within the last ``max_missed`` frames) against every person of the
  frame; a person left unmatched starts a new track with a new ID (IDs count up from 0
  and are never reused).
* **Re-identification**: a track unseen for up to ``max_missed`` frames (default: one
  second of frames, :data:`DEFAULT_MAX_MISSED_S`) is still matched, at its predicted
  place, so that a person hidden for a moment keeps their ID; after that it has ended
  and a person seen there again gets a new ID.
* **Short tracks** (fewer than ``min_frames`` frames seen, default
  :data:`DEFAULT_MIN_FRAMES`) are dropped by :meth:`PeopleTracker.finish`: they are
  mostly the detector's false people (e.g. a "person" in the sky for two frames on
  ``samples/sports2d_clip.mp4``).

Measured on the first 150 frames of the Sports2D demo (``tests/test_tracking.py``): the
man on the box (frames 1-149) and the woman walking in front (from frame 48) each kept
one ID while visible; 2 tracks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from wsgcn_cli.errors import WsgcnError

#: A track unseen for this many seconds (``max_missed = round(fps * this)`` frames) ends.
DEFAULT_MAX_MISSED_S = 1.0
#: ``max_missed`` when the frame rate is unknown (0: single images, a folder without fps).
DEFAULT_MAX_MISSED_FRAMES = 25
#: Tracks seen in fewer frames than this are dropped at the end.
DEFAULT_MIN_FRAMES = 5


@dataclass
class TrackedPerson:
    """One person's track: every frame from their first to their last sighting.

    Attributes:
        track_id: the persistent ID (>= 0; IDs are given in order of first sighting).
        frames: (T_track,) int64 frame indices, ``first ... last`` consecutive.
        xy: (T_track, J, 2) float32 keypoints in pixels (image frame: origin top-left,
            x right, y down), in the detector's layout; NaN in frames where the person
            was not seen (a gap: hidden, or missed by the detector).
        score: (T_track, J) float32 keypoint confidence in [0, 1]; 0 where not seen.
        seen: (T_track,) bool, whether the person was detected in the frame.
        box: (T_track, 4) float32 ``x0, y0, x1, y1`` pixels of the detection; NaN where
            not seen.
    """

    track_id: int
    frames: np.ndarray
    xy: np.ndarray
    score: np.ndarray
    seen: np.ndarray
    box: np.ndarray

    @property
    def first(self) -> int:
        return int(self.frames[0])

    @property
    def last(self) -> int:
        return int(self.frames[-1])

    @property
    def num_seen(self) -> int:
        """Frames in which the person was detected."""
        return int(self.seen.sum())

    def keypoints(self, layout: str, times: np.ndarray, width: int, height: int, fps: float):
        """This track as :class:`wsgcn_cli.detect.base.Keypoints2D` of ``layout`` over its
        frames: ``times`` is the whole clip's (T,) seconds, indexed by :attr:`frames`."""
        from wsgcn_cli.detect.base import Keypoints2D

        return Keypoints2D(layout, self.xy, self.score, np.asarray(times, np.float64)[self.frames],
                           width, height, fps)


class _Live:
    """A track being built."""

    def __init__(self, track_id: int, frame: int, person):
        self.id = track_id
        self.rows: dict[int, tuple] = {}
        self.last_frame = frame
        self.add(frame, person)

    def add(self, frame: int, person) -> None:
        self.rows[frame] = (np.asarray(person.xy, np.float32), np.asarray(person.score, np.float32),
                            np.asarray(person.box, np.float32))
        self.last_frame = frame

    def predict(self, frame: int, velocity_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (J, 2) and box (4,) moved to ``frame`` with the box centre's velocity."""
        xy, _, box = self.rows[self.last_frame]
        seen = sorted(self.rows)[-(velocity_frames + 1):]
        if len(seen) < 2:
            return xy, box
        b0, b1 = self.rows[seen[0]][2], self.rows[seen[-1]][2]
        velocity = ((b1[:2] + b1[2:]) - (b0[:2] + b0[2:])) / 2.0 / (seen[-1] - seen[0])
        shift = velocity * (frame - self.last_frame)
        return xy + shift, box + np.concatenate([shift, shift])

    def result(self) -> TrackedPerson:
        first, last = min(self.rows), max(self.rows)
        frames = np.arange(first, last + 1, dtype=np.int64)
        xy0, score0, _ = self.rows[first]
        n = len(frames)
        xy = np.full((n,) + xy0.shape, np.nan, np.float32)
        score = np.zeros((n,) + score0.shape, np.float32)
        box = np.full((n, 4), np.nan, np.float32)
        seen = np.zeros(n, bool)
        for f, (p, s, b) in self.rows.items():
            i = f - first
            xy[i], score[i], box[i], seen[i] = p, s, b, True
        return TrackedPerson(self.id, frames, xy, score, seen, box)


def _diag(box: np.ndarray) -> float:
    return float(np.hypot(box[2] - box[0], box[3] - box[1]))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


class PeopleTracker:
    """Frame-by-frame tracking with persistent IDs (see the module docstring).

    Args:
        fps: the video's frame rate (frames/s); sets the default ``max_missed``.
            0 (unknown): :data:`DEFAULT_MAX_MISSED_FRAMES`.
        max_missed: a track unseen for more than this many frames has ended (default:
            ``round(fps * DEFAULT_MAX_MISSED_S)``, one second).
        max_distance: gate: median keypoint distance, in box diagonals, above which a
            track and a person are never matched.
        min_score: keypoints with at least this score count in the distance.
        iou_weight, size_weight, missed_weight: weights of the cost's terms.
        velocity_frames: the box velocity is the mean over this many last seen frames.

    Raises:
        WsgcnError: a negative frame rate, ``max_missed`` < 0, ``max_distance`` <= 0,
            ``velocity_frames`` < 1.

    Feed it every frame in order with :meth:`update`; then :meth:`finish`.
    """

    def __init__(self, fps: float = 0.0, max_missed: int | None = None, max_distance: float = 0.5,
                 min_score: float = 0.5, iou_weight: float = 0.5, size_weight: float = 0.5,
                 missed_weight: float = 0.2, velocity_frames: int = 5):
        if not fps >= 0:
            raise WsgcnError(f"fps must be >= 0, not {fps}")
        if max_missed is None:
            max_missed = int(round(fps * DEFAULT_MAX_MISSED_S)) if fps > 0 else DEFAULT_MAX_MISSED_FRAMES
        if max_missed < 0:
            raise WsgcnError(f"max_missed must be >= 0 frames, not {max_missed}")
        if not max_distance > 0:
            raise WsgcnError(f"max_distance must be > 0, not {max_distance}")
        if velocity_frames < 1:
            raise WsgcnError(f"velocity_frames must be >= 1, not {velocity_frames}")
        self.max_missed = int(max_missed)
        self.max_distance = float(max_distance)
        self.min_score = float(min_score)
        self.iou_weight, self.size_weight, self.missed_weight = float(iou_weight), float(size_weight), \
            float(missed_weight)
        self.velocity_frames = int(velocity_frames)
        self._live: list[_Live] = []
        self._ended: list[_Live] = []
        self._next_id = 0
        self._frame = -1

    def _cost(self, track: _Live, person, frame: int) -> float:
        pred_xy, pred_box = track.predict(frame, self.velocity_frames)
        _, last_score, _ = track.rows[track.last_frame]
        xy, score, box = (np.asarray(person.xy, np.float32), np.asarray(person.score, np.float32),
                          np.asarray(person.box, np.float32))
        both = (last_score >= self.min_score) & (score >= self.min_score)
        ok = np.isfinite(pred_xy).all(-1) & np.isfinite(xy).all(-1)
        use = both & ok if (both & ok).sum() >= 4 else ok
        if not use.any():
            return np.inf
        scale = max(0.5 * (_diag(pred_box) + _diag(box)), 1e-6)
        kp = float(np.median(np.linalg.norm(pred_xy[use] - xy[use], axis=-1))) / scale
        if kp > self.max_distance:
            return np.inf
        size = abs(np.log(max(_diag(box), 1e-6) / max(_diag(pred_box), 1e-6)))
        missed = frame - track.last_frame - 1
        return kp + self.iou_weight * (1.0 - _iou(pred_box, box)) + self.size_weight * size \
            + self.missed_weight * missed / max(self.max_missed, 1)

    def update(self, people: Sequence, frame: int | None = None) -> list[int]:
        """Take the people of the next frame.

        Args:
            people: objects with ``xy`` (J, 2) px, ``score`` (J,) and ``box`` (4,) ``x0,
                y0, x1, y1`` px (:class:`wsgcn_cli.detect.multi_person.Person`).
            frame: the frame's index (default: one after the last); must increase.

        Returns:
            the track ID of each person, in the order given.
        """
        from scipy.optimize import linear_sum_assignment

        frame = self._frame + 1 if frame is None else int(frame)
        if frame <= self._frame:
            raise WsgcnError(f"frames must come in order: {frame} after {self._frame}")
        self._frame = frame
        still = []
        for t in self._live:  # a track unseen for more than max_missed frames has ended
            (still if frame - t.last_frame - 1 <= self.max_missed else self._ended).append(t)
        self._live = still
        ids = [-1] * len(people)
        if self._live and people:
            cost = np.array([[self._cost(t, q, frame) for q in people] for t in self._live])
            finite = np.isfinite(cost)
            big = (cost[finite].max() + 1.0) * 10 if finite.any() else 1.0
            rows, cols = linear_sum_assignment(np.where(finite, cost, big))
            for r, c in zip(rows, cols):
                if finite[r, c]:
                    self._live[r].add(frame, people[c])
                    ids[c] = self._live[r].id
        for c, q in enumerate(people):
            if ids[c] < 0:
                self._live.append(_Live(self._next_id, frame, q))
                ids[c] = self._next_id
                self._next_id += 1
        return ids

    def finish(self, min_frames: int = DEFAULT_MIN_FRAMES) -> list[TrackedPerson]:
        """Every track, by ID, without those seen in fewer than ``min_frames`` frames
        (0 or 1: keep all). The tracker can not be fed afterwards."""
        tracks = sorted(self._ended + self._live, key=lambda t: t.id)
        self._live, self._ended = [], []
        out = [t.result() for t in tracks]
        return [t for t in out if t.num_seen >= min_frames]


def track_people(frames: Iterable[Sequence], fps: float = 0.0, min_frames: int = DEFAULT_MIN_FRAMES,
                 **options) -> list[TrackedPerson]:
    """Track the people of every frame (a :class:`PeopleTracker` fed in order).

    Args:
        frames: per frame (in order, frame index = position), the list of people
            (``detect_people``'s output: objects with ``xy``, ``score``, ``box``).
        fps: frame rate (frames/s), for the default ``max_missed``.
        min_frames: drop tracks seen in fewer frames.
        options: :class:`PeopleTracker`'s other arguments.

    Returns:
        the :class:`TrackedPerson` tracks, by ID (IDs may skip the dropped ones).
    """
    tracker = PeopleTracker(fps, **options)
    for people in frames:
        tracker.update(people)
    return tracker.finish(min_frames)
