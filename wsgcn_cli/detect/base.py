"""2D keypoints of one person over time, and the interface of a 2D keypoint detector.

Coordinates are pixels in the image frame: origin at the top-left corner of the
(upright) frame, x to the right, y down. A keypoint that was not detected is NaN in
``xy`` and 0 in ``score``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol, runtime_checkable

import numpy as np

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.skeletons import Skeleton, get_layout


@dataclass
class Keypoints2D:
    """2D keypoints of one person in T frames.

    Attributes:
        layout: keypoint layout, a name in :data:`wsgcn_cli.skeletons.LAYOUTS`
            (``"blazepose33"``, ``"coco17"``, ``"h36m17"``, ...).
        xy: (T, J, 2) float32 pixel coordinates (image frame: origin top-left, x right,
            y down); NaN where not detected.
        score: (T, J) float32 confidence in [0, 1]; 0 where not detected.
        times: (T,) float64 seconds since the first frame.
        width, height: image size in pixels (for normalising coordinates).
        fps: frame rate of the source (0.0 for a single image; nominal for a folder).

    Raises:
        ValueError: on construction, if the shapes do not agree with each other or with
            the layout (a programming error; file readers raise WsgcnError first).
    """

    layout: str
    xy: np.ndarray
    score: np.ndarray
    times: np.ndarray
    width: int
    height: int
    fps: float

    def __post_init__(self):
        self.xy = np.asarray(self.xy, dtype=np.float32)
        self.score = np.asarray(self.score, dtype=np.float32)
        self.times = np.asarray(self.times, dtype=np.float64)
        self.width, self.height, self.fps = int(self.width), int(self.height), float(self.fps)
        num_joints = self.skeleton.num_joints
        t = self.xy.shape[0] if self.xy.ndim == 3 else -1
        if self.xy.shape != (t, num_joints, 2) or self.score.shape != (t, num_joints) \
                or self.times.shape != (t,):
            raise ValueError(
                f"Keypoints2D({self.layout}) expects xy (T,{num_joints},2), score "
                f"(T,{num_joints}), times (T,); got {self.xy.shape}, {self.score.shape}, "
                f"{self.times.shape}")

    @property
    def skeleton(self) -> Skeleton:
        """The :class:`~wsgcn_cli.skeletons.Skeleton` of ``layout``."""
        return get_layout(self.layout)

    @property
    def num_frames(self) -> int:
        return self.xy.shape[0]

    def detected(self, min_score: float = 0.0) -> np.ndarray:
        """(T, J) bool: the keypoint has finite coordinates and ``score >= min_score``."""
        return np.isfinite(self.xy).all(axis=-1) & (self.score >= min_score)


@runtime_checkable
class Detector(Protocol):
    """A single-person 2D keypoint detector, run frame by frame.

    Attributes:
        layout: layout name of the keypoints it returns.
    """

    layout: str

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints of one person in an image.

        Args:
            image: (H, W, 3) uint8 RGB, upright.

        Returns:
            xy: (J, 2) float32 pixels (image frame), all NaN if no person was found.
            score: (J,) float32 in [0, 1], all 0 if no person was found.
        """
        ...

    def close(self) -> None:
        """Release the model."""
        ...


#: Detector name -> "module:class", imported only when asked for.
_DETECTORS = {
    "mediapipe": "wsgcn_cli.detect.mediapipe_pose:MediaPipePoseDetector",
    "mediapipe_holistic": "wsgcn_cli.detect.holistic:HolisticDetector",  # coco_wholebody133
}


def available_detectors() -> list[str]:
    """Names accepted by :func:`make_detector`."""
    return sorted(_DETECTORS)


def make_detector(name: str, **options) -> Detector:
    """Create the detector called ``name`` (``"mediapipe"``) with its keyword options.

    The detector's module (and its library, e.g. mediapipe) is imported here, not before.

    Raises:
        WsgcnError: unknown name, or the detector refuses the options.
    """
    try:
        target = _DETECTORS[name]
    except KeyError:
        raise WsgcnError(
            f"unknown detector {name!r}; available: {', '.join(available_detectors())}"
        ) from None
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**options)


def detect_frames(detector: Detector, frames: Iterable, *, width: int, height: int,
                  fps: float, on_frame: Callable | None = None) -> Keypoints2D:
    """Run ``detector`` on every frame and stack the results.

    Args:
        detector: a :class:`Detector`.
        frames: iterable of :class:`wsgcn_cli.io.video.Frame` (e.g. a ``FrameSource``).
        width, height, fps: of the source (stored in the result).
        on_frame: optional ``on_frame(frame, xy, score)`` called after each detection
            (progress display, or rendering in the same pass).

    Returns:
        :class:`Keypoints2D` in the detector's layout, one row per frame.
    """
    xys, scores, times = [], [], []
    for frame in frames:
        xy, score = detector.detect(frame.image)
        xys.append(xy)
        scores.append(score)
        times.append(frame.time_s)
        if on_frame is not None:
            on_frame(frame, xy, score)
    num_joints = get_layout(detector.layout).num_joints
    return Keypoints2D(
        layout=detector.layout,
        xy=np.stack(xys) if xys else np.zeros((0, num_joints, 2), np.float32),
        score=np.stack(scores) if scores else np.zeros((0, num_joints), np.float32),
        times=np.asarray(times, dtype=np.float64),
        width=width, height=height, fps=fps,
    )
