"""Reading precomputed 2D keypoints: MMPose prediction JSON and wsgcn's own npz."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wsgcn_cli.detect.precomputed import load_keypoints
from wsgcn_cli.errors import WsgcnError


def _instance(offset, score, n=17):
    return {
        "keypoints": [[offset + i, 2.0 * i] for i in range(n)],
        "keypoint_scores": [score] * n,
        "bbox": [[0.0, 0.0, 100.0, 200.0]],
        "bbox_score": 0.9,
    }


def _write(tmp_path, data, name="pred.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_mmpose_video_json(tmp_path):
    data = [
        {"frame_id": 0, "instances": [_instance(0, 0.4), _instance(100, 0.8)]},
        {"frame_id": 1, "instances": []},
        {"frame_id": 3, "instances": [_instance(5, 1.7)]},  # frame 2 absent, score > 1
    ]
    kp = load_keypoints(_write(tmp_path, data), image_size=(640, 480), fps=25)
    assert kp.layout == "coco17" and kp.xy.shape == (4, 17, 2)
    assert (kp.width, kp.height, kp.fps) == (640, 480, 25.0)
    np.testing.assert_allclose(kp.times, [0, 0.04, 0.08, 0.12])
    assert kp.xy[0, 3].tolist() == [103, 6]  # the higher-scoring instance
    assert np.isnan(kp.xy[1]).all() and np.isnan(kp.xy[2]).all() and (kp.score[1:3] == 0).all()
    assert kp.xy[3, 0].tolist() == [5, 0] and (kp.score[3] == 1.0).all()


def test_mmpose_single_image_and_topdown_forms(tmp_path):
    kp = load_keypoints(_write(tmp_path, [_instance(0, 0.5, 133)]), image_size=(100, 100))
    assert kp.layout == "coco_wholebody133" and kp.xy.shape == (1, 133, 2) and kp.fps == 0.0
    topdown = {"meta_info": {"dataset_name": "coco"},
               "instance_info": [{"frame_id": 0, "instances": [_instance(0, 0.5, 33)]}]}
    kp = load_keypoints(_write(tmp_path, topdown, "td.json"), image_size=(100, 100), fps=30)
    assert kp.layout == "blazepose33"


@pytest.mark.parametrize("data, kwargs, match", [
    ([{"frame_id": 0, "instances": [_instance(0, 0.5)]}], {}, "image size"),
    ([{"frame_id": 0, "instances": [_instance(0, 0.5)]},
      {"frame_id": 1, "instances": [_instance(0, 0.5)]}], {"image_size": (9, 9)}, "frame rate"),
    ([{"frame_id": 0, "instances": [_instance(0, 0.5, 21)]}], {"image_size": (9, 9)}, "21 keypoints"),
    ([{"frame_id": 0, "instances": [{"keypoints": [[1, 2, 3]] * 17}]}], {"image_size": (9, 9)}, "3D"),
    ([{"frame_id": 0, "instances": []}], {"image_size": (9, 9)}, "no person"),
    ({"something": 1}, {"image_size": (9, 9)}, "not an MMPose"),
    ([1, 2, 3], {"image_size": (9, 9)}, "not an MMPose"),
])
def test_bad_mmpose_files(tmp_path, data, kwargs, match):
    with pytest.raises(WsgcnError, match=match):
        load_keypoints(_write(tmp_path, data), **kwargs)


def test_bad_paths(tmp_path):
    with pytest.raises(WsgcnError, match="does not exist"):
        load_keypoints(tmp_path / "none.json")
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(WsgcnError, match="unknown keypoint file type"):
        load_keypoints(tmp_path / "x.txt")
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(WsgcnError, match="JSON"):
        load_keypoints(tmp_path / "broken.json", image_size=(9, 9))
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(WsgcnError, match="npz"):
        load_keypoints(tmp_path / "broken.npz")


def test_own_npz(tmp_path):
    T = 5
    path = tmp_path / "kp.npz"
    np.savez(path, keypoints_2d=np.random.rand(T, 17, 2).astype(np.float32),
             scores=np.ones((T, 17), np.float32), times=np.arange(T) / 50.0, fps=50.0,
             image_size=np.array([1000, 1002]), layout="h36m17")
    kp = load_keypoints(path)
    assert (kp.layout, kp.width, kp.height, kp.fps, kp.num_frames) == ("h36m17", 1000, 1002, 50.0, T)
    np.savez(tmp_path / "bad.npz", keypoints_2d=np.zeros((T, 17, 2)))
    with pytest.raises(WsgcnError, match="missing scores"):
        load_keypoints(tmp_path / "bad.npz")
    np.savez(tmp_path / "shape.npz", keypoints_2d=np.zeros((T, 16, 2)), scores=np.ones((T, 17)),
             times=np.arange(T), fps=50.0, image_size=[10, 10], layout="h36m17")
    with pytest.raises(WsgcnError, match="expects"):
        load_keypoints(tmp_path / "shape.npz")
