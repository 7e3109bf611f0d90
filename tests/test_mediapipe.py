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


def test_quiet_native_stderr_drops_only_mediapipe_noise(capfd):
    import os
    import sys

    from wsgcn_cli.detect.mediapipe_pose import quiet_native_stderr

    noise = (b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
             b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
             b"W0000 00:00:1796007429.645721   16164 inference_feedback_manager.cc:114] Feedback manager\n"
             b"I0000 00:00:1796007429.645721   16164 gl_context.cc:357] GL version\n")
    with pytest.raises(RuntimeError, match="boom"):
        with quiet_native_stderr():
            os.write(2, noise + b"E0000 00:00:1796007429.7 16164 graph.cc:1] a real error\n")
            with quiet_native_stderr():  # nested: one redirection
                print("ours, from Python", file=sys.stderr)
            os.write(2, b"Traceback (most recent call last): ...\n")
            raise RuntimeError("boom")
    err = capfd.readouterr().err
    # (capfd's sys.stderr is not fd 2, so Python's line may come first)
    assert sorted(err.splitlines()) == sorted(["E0000 00:00:1796007429.7 16164 graph.cc:1] a real error",
                                               "ours, from Python", "Traceback (most recent call last): ..."])
    with quiet_native_stderr(enabled=False):
        os.write(2, noise)
    assert capfd.readouterr().err == noise.decode()
    os.write(2, b"after\n")  # fd 2 is back
    assert capfd.readouterr().err == "after\n"


_DETECT_SCRIPT = """
import itertools, sys
from wsgcn_cli.detect.base import detect_frames, make_detector
from wsgcn_cli.io.video import open_frames
with open_frames(sys.argv[1]) as src, make_detector("mediapipe", verbose=sys.argv[2] == "1") as det:
    kp = detect_frames(det, itertools.islice(src, 3), width=src.width, height=src.height, fps=src.fps)
print("frames", kp.num_frames, file=sys.stderr)
"""


@needs_mediapipe
@pytest.mark.parametrize("verbose", [False, True])
def test_mediapipe_log_lines_only_when_verbose(verbose):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", _DETECT_SCRIPT, str(SAMPLE), str(int(verbose))],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    assert lines[-1] == "frames 3"  # our own output still comes through
    native = [l for l in lines if "inference_feedback_manager" in l or "XNNPACK" in l]
    assert bool(native) == verbose, run.stderr
    if not verbose:
        assert lines == ["frames 3"]


@needs_mediapipe
def test_lift_quiet_prints_nothing(tmp_path):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "wsgcn_cli", "lift", str(SAMPLE), "--quiet", "--no-video",
                          "-o", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (run.stdout, run.stderr) == ("", "")
    assert (tmp_path / "sports2d_clip.wsgcn.npz").is_file()
