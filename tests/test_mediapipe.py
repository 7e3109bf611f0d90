"""BlazePose through the detector registry (skipped without mediapipe or the data)."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest

from wsgcn_cli.detect.base import Detector, detect_frames, make_detector
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.io.video import open_frames
from wsgcn_cli.pose2d.mapping import to_h36m17
from wsgcn_cli.skeletons import BLAZEPOSE33

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "sports2d_clip.mp4"

needs_mediapipe = pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None,
                                     reason="mediapipe is not installed")


def test_unknown_detector():
    with pytest.raises(WsgcnError, match="unknown detector"):
        make_detector("openpose")


@needs_mediapipe
def test_blazepose_on_image():
    image_path = DATA / "images" / "tfjs_pose.jpg"
    if not image_path.is_file():
        pytest.skip(f"{image_path} is absent")
    with open_frames(image_path) as src, make_detector("mediapipe", static_image_mode=True) as det:
        assert isinstance(det, Detector) and det.layout == "blazepose33"
        kp = detect_frames(det, src, width=src.width, height=src.height, fps=src.fps)
    assert kp.xy.shape == (1, 33, 2) and kp.xy.dtype == np.float32
    xy, score = kp.xy[0], kp.score[0]
    assert np.isfinite(xy).all() and (0 <= score).all() and (score <= 1).all()
    body = [BLAZEPOSE33.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip",
                                            "right_hip", "nose")]
    assert (score[body] > 0.5).all()
    assert ((xy[body] >= 0) & (xy[body] < [src.width, src.height])).all()
    nose_y, hip_y = xy[0, 1], xy[[23, 24], 1].mean()
    assert nose_y < hip_y  # upright person, y down
    h36m = to_h36m17(kp)
    assert np.isfinite(h36m.xy).all()


@needs_mediapipe
def test_blazepose_tracks_man_on_box_in_sample_clip():
    with open_frames(SAMPLE) as src, make_detector("mediapipe") as det:
        kp = detect_frames(det, itertools.islice(src, 5), width=src.width,
                           height=src.height, fps=src.fps)
    assert kp.num_frames == 5 and np.isfinite(kp.xy).all()
    hip_y = kp.xy[:, [23, 24], 1].mean(axis=1) / kp.height
    assert (hip_y < 0.5).all()  # the man on the box (upper half), not the woman in front


@needs_mediapipe
@pytest.mark.parametrize("complexity", [0, 2])
def test_models_that_would_download_are_refused(complexity):
    import mediapipe

    model = {0: "pose_landmark_lite.tflite", 2: "pose_landmark_heavy.tflite"}[complexity]
    if (Path(mediapipe.__file__).parent / "modules" / "pose_landmark" / model).is_file():
        pytest.skip(f"{model} is installed")
    with pytest.raises(WsgcnError, match="never does"):
        make_detector("mediapipe", model_complexity=complexity)
