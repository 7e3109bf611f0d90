"""Old home of the lift stages, kept for older imports: they now live in
:mod:`wsgcn_cli.pipeline` (options in :mod:`wsgcn_cli.pipeline.spec`, stages in
:mod:`wsgcn_cli.pipeline.stages`). :class:`StreamingLift` chains the 2D stage and the
lifter with the earlier call signature; new code uses :class:`wsgcn_cli.pipeline.Pipeline`.
"""

from __future__ import annotations

import numpy as np

from wsgcn_cli.pipeline.pipeline import Track
from wsgcn_cli.pipeline.spec import Representation
from wsgcn_cli.pipeline.stages import FrameResult, Lift, Pose2D, finish_through, push_through

__all__ = ["Representation", "StreamingLift"]


class StreamingLift:
    """:class:`~wsgcn_cli.pipeline.stages.Pose2D` then
    :class:`~wsgcn_cli.pipeline.stages.Lift` over detections pushed one frame at a time.

    :meth:`push` ``(time_s, xy (J, 2) px, score (J,), payload=None)`` and :meth:`finish`
    return finished items ``(payload, xy (17, 2) px, score (17,), pose3d (17, 3) m)``;
    :attr:`raw`, :attr:`h36m`, :attr:`poses3d` and :attr:`missing` hold every finished frame.
    """

    def __init__(self, lifter, layout: str, width: int, height: int, fps: float,
                 rep: Representation, batch: int = 8, net=None):
        self.layout, self.width, self.height, self.fps = layout, width, height, fps
        self._stages = [Pose2D(rep, layout, width, height, fps, net, batch), Lift(lifter, width, height, batch)]
        self._track = Track(layout)
        self._payloads: dict[int, object] = {}
        self._count = 0

    def _items(self, results) -> list:
        self._track.extend(results)
        return [(self._payloads.pop(r.index), r.keypoints_2d, r.scores, r.keypoints_3d) for r in results]

    def push(self, time_s: float, xy, score, payload=None) -> list:
        """Add one frame's detector keypoints; returns the finished items."""
        self._payloads[self._count] = payload
        item = FrameResult(self._count, float(time_s), None, np.asarray(xy, np.float32), np.asarray(score, np.float32))
        self._count += 1
        return self._items(push_through(self._stages, [item]))

    def finish(self) -> list:
        """Finish every frame still pending (end of the stream)."""
        return self._items(finish_through(self._stages))

    @property
    def raw(self):
        """The detector's keypoints of every finished frame (:class:`Keypoints2D`)."""
        from wsgcn_cli.detect.base import Keypoints2D

        t = self._track
        return Keypoints2D(self.layout, t.detector_keypoints, t.detector_scores, t.times, self.width, self.height,
                           self.fps)

    @property
    def h36m(self):
        """H36M-17 keypoints after the 2D stage of every finished frame."""
        return self._track.keypoints(self.width, self.height, self.fps)

    @property
    def poses3d(self) -> np.ndarray:
        """(T, 17, 3) lifted poses, metres; NaN where missing."""
        return self._track.keypoints_3d

    @property
    def missing(self) -> np.ndarray:
        """(T,) bool: frames of which a joint is still missing after the 2D stage."""
        return self._track.missing
