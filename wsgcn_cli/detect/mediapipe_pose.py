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

Logging: MediaPipe's C++ side prints its own lines to stderr when the graph starts
(``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.``, ``W0000 ...
inference_feedback_manager.cc:114] ...``, ``landmark_projection_calculator.cc:186] ...``).
Unless ``verbose=True`` they are filtered out (see :func:`quiet_native_stderr`) around graph
creation and each ``process`` call until the first person has been found -- measured on
``samples/sports2d_clip.mp4``, the last one-off line comes with the first landmarks, in
video and in image mode; after that fd 2 is left alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from wsgcn_cli.errors import WsgcnError

_MODEL_FILES = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite",
                2: "pose_landmark_heavy.tflite"}


#: Lines MediaPipe's C++ side writes to file descriptor 2 on its own: glog/absl
#: ``I``/``W`` records (``W0000 00:00:1796007429.645721   16164 inference_feedback_manager
#: .cc:114] ...``), absl's note before ``InitializeLog`` and TFLite's ``INFO:`` lines.
#: ``E``/``F`` records and anything else are passed through.
_NATIVE_NOISE = re.compile(
    rb"^(?:[IW]\d{4} [\d:.]+ +\d+ [^ \]]+:\d+\] "
    rb"|INFO: |WARNING: All log messages before absl::InitializeLog\(\))")


class _NativeStderrFilter:
    """Process-wide, reference-counted redirection of fd 2 that drops MediaPipe's noise.

    MediaPipe's log lines are written by C++ (glog/absl, TFLite) straight to file descriptor 2, so neither
    Python's ``logging`` nor ``GLOG_minloglevel`` / ``TF_CPP_MIN_LOG_LEVEL`` (measured with
    mediapipe 0.10.21: no effect) hides them. While held, fd 2 points at an anonymous
    temporary file; when the last holder releases it, fd 2 is restored and every captured
    line that is not MediaPipe noise (``_NATIVE_NOISE``) -- a Python traceback, a warning,
    another thread's output -- is written to the real fd 2: nothing is lost, only delayed.
    (Except on a hard crash -- a segfault or a C++ ``abort`` -- inside the window, whose
    last words stay in the capture: rerun with ``verbose=True`` / ``--verbose`` to see
    them.) ``acquire`` / ``release`` may come from different threads.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._holders = 0
        self._saved: int | None = None
        self._capture = None

    def acquire(self) -> None:
        with self._lock:
            self._holders += 1
            if self._holders > 1:
                return
            with contextlib.suppress(Exception):
                sys.stderr.flush()  # what Python wrote before goes out first
            try:
                self._saved = os.dup(2)
            except OSError:  # no fd 2 (a detached process): nothing to keep clean
                return
            self._capture = tempfile.TemporaryFile()
            os.dup2(self._capture.fileno(), 2)

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders > 0 or self._saved is None:
                return
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(self._saved, 2)
            os.close(self._saved)
            capture, self._capture, self._saved = self._capture, None, None
            with capture:
                capture.seek(0)
                kept = b"".join(line for line in capture.read().splitlines(keepends=True)
                                if not _NATIVE_NOISE.match(line))
        if kept:
            os.write(2, kept)


_STDERR_FILTER = _NativeStderrFilter()


@contextlib.contextmanager
def quiet_native_stderr(enabled: bool = True):
    """Within the block, MediaPipe's native log lines (``_NATIVE_NOISE``) are dropped from
    file descriptor 2 and everything else written there is passed on when the block ends
    (also on an exception); see :class:`_NativeStderrFilter`. Keep blocks short. Nested and
    concurrent blocks share one redirection. ``enabled=False`` does nothing (``verbose``).
    """
    if not enabled:
        yield
        return
    _STDERR_FILTER.acquire()
    try:
        yield
    finally:
        _STDERR_FILTER.release()


def _import_mediapipe():
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
        verbose: let MediaPipe's native log lines through (by default they are
            filtered out; see :func:`quiet_native_stderr`).

    Attributes:
        layout: ``"blazepose33"``.

    Raises:
        WsgcnError: mediapipe missing, a model file missing, or an option out of range.
    """

    layout = "blazepose33"

    def __init__(self, model_complexity: int = 1, static_image_mode: bool = False,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 smooth_landmarks: bool = True, verbose: bool = False):
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
        self.verbose = bool(verbose)
        # MediaPipe's one-off lines come from the graph's worker threads while its
        # calculators open (asynchronously, after Pose() returns but before the first
        # process() finishes) and with the first landmarks: fd 2 is filtered from here to
        # the end of the first process() call, then during process() until a person is found.
        self._warm = self.verbose
        self._holding = not self.verbose
        if self._holding:
            _STDERR_FILTER.acquire()
        try:
            self._pose = mp.solutions.pose.Pose(
                static_image_mode=self.static_image_mode,
                model_complexity=model_complexity,
                smooth_landmarks=smooth_landmarks,
                enable_segmentation=False,
                min_detection_confidence=min_detection_confidence,
                min_tracking_confidence=min_tracking_confidence,
            )
        except BaseException:
            self._stop_holding()
            raise

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
        try:
            with quiet_native_stderr(not self._warm):
                result = self._pose.process(np.ascontiguousarray(image))
        finally:
            self._stop_holding()
        self._warm = self._warm or result.pose_landmarks is not None
        if result.pose_landmarks is None:
            return np.full((33, 2), np.nan, np.float32), np.zeros(33, np.float32)
        lm = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark],
                      dtype=np.float32)
        h, w = image.shape[:2]
        xy = lm[:, :2] * np.array([w, h], dtype=np.float32)
        return xy, np.clip(lm[:, 2], 0.0, 1.0)

    def close(self) -> None:
        """Release the MediaPipe graph (idempotent)."""
        self._stop_holding()
        if self._pose is not None:
            with quiet_native_stderr(not self.verbose):
                self._pose.close()
            self._pose = None

    def _stop_holding(self) -> None:
        if getattr(self, "_holding", False):
            self._holding = False
            _STDERR_FILTER.release()

    def __del__(self):
        with contextlib.suppress(Exception):
            self._stop_holding()

    def __enter__(self) -> "MediaPipePoseDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
