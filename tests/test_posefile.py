import csv
import json

import numpy as np
import pytest

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.io import posefile


def _poses(t=6):
    rng = np.random.default_rng(0)
    kp3d = rng.normal(size=(t, 17, 3)).astype(np.float32) * 0.3
    kp3d[:, 0] = 0.0
    kp3d[2] = np.nan
    kp2d = rng.uniform(0, 640, size=(t, 17, 2)).astype(np.float32)
    kp2d[2] = np.nan
    return posefile.PoseFile(
        keypoints_2d=kp2d, scores=rng.uniform(size=(t, 17)), keypoints_3d=kp3d,
        times=np.arange(t) / 30.0, fps=30.0, image_size=(640, 480),
        detector_keypoints=rng.uniform(size=(t, 33, 2)), detector_scores=rng.uniform(size=(t, 33)),
        detector_layout="blazepose33", pipeline="body17", weights_sha256="ab" * 32, source="clip.mp4",
    )


def test_npz_round_trip_and_schema(tmp_path):
    p = _poses()
    path = posefile.write(p, tmp_path / "clip.wsgcn.npz")
    z = np.load(path)
    assert z["keypoints_2d"].shape == (6, 17, 2) and z["keypoints_2d"].dtype == np.float32
    assert z["keypoints_3d"].shape == (6, 17, 3) and z["scores"].shape == (6, 17)
    assert z["times"].dtype == np.float64 and float(z["fps"]) == 30.0
    assert list(z["joint_names"])[:3] == ["Hip", "RHip", "RKnee"] and z["parents"][0] == -1
    assert str(z["layout"]) == "h36m17" and str(z["pipeline"]) == "body17"
    assert len(str(z["weights_sha256"])) == 64
    assert z["missing"].tolist() == [False, False, True, False, False, False]
    back = posefile.read(path)
    assert np.array_equal(back.keypoints_3d, p.keypoints_3d, equal_nan=True)
    assert back.image_size == (640, 480) and back.detector_layout == "blazepose33"
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_json_and_csv(tmp_path):
    p = _poses()
    j = json.loads(posefile.write(p, tmp_path / "clip.wsgcn.json").read_text())
    assert j["meta"]["joint_names"][10] == "Head" and j["meta"]["fps"] == 30.0
    assert len(j["frames"]) == 6 and j["frames"][2]["keypoints_3d"][0] == [None, None, None]
    assert j["frames"][1]["keypoints_3d"][0] == [0.0, 0.0, 0.0]
    rows = list(csv.DictReader(open(posefile.write(p, tmp_path / "clip.wsgcn.csv"))))
    assert len(rows) == 6 * 17
    assert rows[17]["frame"] == "1" and rows[17]["name"] == "Hip"
    assert rows[2 * 17]["x_m"] == ""  # missing frame


def test_read_errors(tmp_path):
    with pytest.raises(WsgcnError, match="not found"):
        posefile.read(tmp_path / "nope.wsgcn.npz")
    bad = tmp_path / "bad.wsgcn.npz"
    bad.write_text("hello")
    with pytest.raises(WsgcnError, match="not a pose file"):
        posefile.read(bad)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(WsgcnError, match="lacks"):
        posefile.read(other)
    with pytest.raises(WsgcnError, match="format"):
        posefile.write(_poses(), tmp_path / "x.txt")
