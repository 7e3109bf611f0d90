"""BlazePose (MediaPipe Pose, "full" model) as a :class:`~wsgcn_cli.detect.base.Detector`.

Output: the 33 BlazePose landmarks (layout ``blazepose33``) of one person, in pixels of
the input image (origin top-left, x right, y down), with MediaPipe's per-landmark
``visibility`` (in [0, 1]) as the score. Landmarks that BlazePose places outside the
image are kept (they may be outside [0, W) x [0, H)).

Which person: MediaPipe Pose returns one person. In video (tracking) mode it runs its
person detector only until it finds someone, then tracks that person's region from
frame to frame and detects again only when tracking is lost. So it follows whoever it
found first, not the largest or nearest person. Observed on ``samples/sports2d_clip.mp4``
(two people, seconds 1.5-5.0 of the Sports2D demo): in all 105 frames it follows the man
jumping on the box (upper left, smaller), never the woman walking in front of him
(larger, lower in the frame). On the whole Sports2D demo video it follows the man until
he jumps off the box (frame 169), then the woman until she leaves on the left (frames
170-200), then the man again (from frame 202). In image mode (``static_image_mode=True``)
each frame is detected afresh: on the same clip it picked the man in frame 0, the woman
in most other frames, and nobody in 33 of 105 frames (strong backlight). To lift a chosen
person in a multi-person video, crop the video to that person or use precomputed
keypoints (:mod:`wsgcn_cli.detect.precomputed`).

mediapipe is imported when a detector is created, never at module import, so that
code which does not detect (training, evaluation) does not need it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from wsgcn_cli.errors import WsgcnError

_MODEL_FILES = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite",
                2: "pose_landmark_heavy.tflite"}


def _import_mediapipe():
    os.environ.setdefault("GLOG_minloglevel", "2")  # hide MediaPipe's C++ INFO logs
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import mediapipe as mp
    except ImportError as e:
        raise WsgcnError(f"the mediapipe detector needs the mediapipe package ({e})") from None
    return mp


class MediaPipePoseDetector:
    """BlazePose landmarks of one person per frame.

    Args:
        model_complexity: 1 (BlazePose full, shipped inside the mediapipe wheel). 0
            (lite) and 2 (heavy) are accepted only if their ``.tflite`` file is already
            in the mediapipe package: they are never downloaded.
        static_image_mode: True for unrelated images (each frame detected afresh), False
            for video (the person is tracked; faster and steadier). Use
            ``source.kind != "video"``.
        min_detection_confidence: person-detector threshold in [0, 1].
        min_tracking_confidence: below this the tracker re-detects (video mode).
        smooth_landmarks: MediaPipe's temporal landmark filter (video mode only).

    Attributes:
        layout: ``"blazepose33"``.

    Raises:
        WsgcnError: mediapipe missing, a model file missing, or an option out of range.
    """

    layout = "blazepose33"

    def __init__(self, model_complexity: int = 1, static_image_mode: bool = False,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 smooth_landmarks: bool = True):
        if model_complexity not in _MODEL_FILES:
            raise WsgcnError(f"model_complexity must be 0, 1 or 2, not {model_complexity!r}")
        for name, value in (("min_detection_confidence", min_detection_confidence),
                            ("min_tracking_confidence", min_tracking_confidence)):
            if not 0.0 <= value <= 1.0:
                raise WsgcnError(f"{name} must be in [0, 1], not {value}")
        mp = _import_mediapipe()
        model = Path(mp.__file__).parent / "modules" / "pose_landmark" / _MODEL_FILES[
            model_complexity]
        if not model.is_file():
            raise WsgcnError(
                f"BlazePose model_complexity={model_complexity} needs {model.name}, which "
                f"this mediapipe installation does not include (it would be downloaded at "
                f"run time, which wsgcn never does); use model_complexity=1")
        self.model_complexity = model_complexity
        self.static_image_mode = bool(static_image_mode)
        self._pose = mp.solutions.pose.Pose(
            static_image_mode=self.static_image_mode,
            model_complexity=model_complexity,
            smooth_landmarks=smooth_landmarks,
            enable_segmentation=False,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """BlazePose landmarks of one person.

        Args:
            image: (H, W, 3) uint8 RGB, upright. In video mode, frames must come in
                order and keep one size.

        Returns:
            xy: (33, 2) float32 pixels (image frame), NaN if no person was found.
            score: (33,) float32 landmark visibility in [0, 1], 0 if no person.
        """
        if self._pose is None:
            raise RuntimeError("MediaPipePoseDetector is closed")
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} "
                             f"{image.dtype}")
        result = self._pose.process(np.ascontiguousarray(image))
        if result.pose_landmarks is None:
            return np.full((33, 2), np.nan, np.float32), np.zeros(33, np.float32)
        lm = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark],
                      dtype=np.float32)
        h, w = image.shape[:2]
        xy = lm[:, :2] * np.array([w, h], dtype=np.float32)
        return xy, np.clip(lm[:, 2], 0.0, 1.0)

    def close(self) -> None:
        """Release the MediaPipe graph (idempotent)."""
        if self._pose is not None:
            self._pose.close()
            self._pose = None

    def __enter__(self) -> "MediaPipePoseDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
