"""Training the temporal refiner on the Trainer (wsgcn_cli.train.refine): training windows,
evaluation against the lifter, settings, resume."""

import json
import types

import numpy as np
import pytest
import torch

from wsgcn_cli import weights
from wsgcn_cli.data import h36m
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.models.refiner_net import LSTMRefiner
from wsgcn_cli.models.registry import build_model
from wsgcn_cli.temporal import TemporalRefiner, window_starts
from wsgcn_cli.train.refine import evaluate_refined, sequence_bounds


def test_window_starts_stay_inside_valid_sequences():
    seq = np.array([0] * 6 + [1] * 4 + [2] * 7)
    valid = np.ones(17, bool)
    valid[13] = False
    starts = window_starts(valid, seq, 3)
    assert starts.tolist() == [0, 1, 2, 3, 6, 7, 10, 14]
    assert sequence_bounds(seq) == [(0, 6), (6, 10), (10, 17)]


def test_evaluate_refined_identity_refiner_matches_lifter():
    rng = np.random.default_rng(0)
    n = 60
    pose3d = (rng.normal(size=(n, 17, 3)) * 200 + [0, 0, 4000]).astype(np.float32)
    kp = rng.uniform(100, 900, size=(n, 17, 2)).astype(np.float32)
    data = h36m.H36MSamples(
        pose3d=pose3d, kp2d_gt=kp, kp2d_sh=kp, image_size=np.tile(np.int32([1000, 1000]), (n, 1)),
        subject=np.zeros(n, np.int16), action=np.int16([0] * 30 + [13] * 30), camera=np.zeros(n, np.int16),
        sequence=np.int32([0] * 30 + [1] * 30), frame=np.int32(list(range(30)) * 2),
        subjects=("S9",), sequences=("S9/Directions/54138969", "S9/Walking/54138969"))
    lifted = (pose3d - pose3d[:, :1]) / 1000 + rng.normal(size=(n, 17, 3)).astype(np.float32) * 0.02
    lifted[:, 0] = 0
    lifter = types.SimpleNamespace(codec_mode="root_scale", sha256="x")
    r = evaluate_refined(lifter, LSTMRefiner(hidden=8), "gt", window=8, overlap=2, data=data, lifted=lifted)
    assert set(r["lifter"]["per_action"]) == {"Directions", "Walking"} and r["frames"] == n
    for k in ("mpjpe_mm", "p_mpjpe_mm", "mpjve_mm", "accel_mm"):
        assert r["lifter"][k] > 0
        assert r["refined"][k] == pytest.approx(r["lifter"][k], rel=1e-5)


def test_refiner_config_checks_frame_steps():
    from wsgcn_cli.errors import WsgcnError
    from wsgcn_cli.train.refine import RefineConfig

    RefineConfig(stride=1, frame_steps=(1, 2)).check()
    for bad in ((), (0,), (1, -2)):
        with pytest.raises(WsgcnError, match="frame_steps"):
            RefineConfig(frame_steps=bad).check()


# ----------------------------------------------------------------------------- training on the Trainer

NO_H36M = not (h36m.default_root() / h36m.FILE_3D).is_file()


def _tiny_lifter(path):
    """A random, small SemGCN lifter (root-scale codec): the refiner learns to fix it."""
    torch.manual_seed(0)
    model = build_model("semgcn_nonlocal", hidden=8, num_blocks=1)
    weights.save(path, model.state_dict(), {"model": "semgcn_nonlocal", "model_options": {"hidden": 8, "num_blocks": 1},
                                            "layout": "h36m17", "codec": "root_scale"})
    return path


def _train_refiner(tmp_path, **changes):
    """``wsgcn train train-refiner`` on S1, one camera, every 20th frame, a tiny model;
    every output under ``tmp_path``."""
    from wsgcn_cli import api

    sets = {"lifter.weights": str(tmp_path / "lifter.safetensors"), "lifter.flip_test": False, "model.hidden": 16,
            "model.num_layers": 1, "model.dropout": 0.0, "subjects": ["S1"], "cameras": ["54138969"], "stride": 20,
            "frame_steps": [1, 2], "window": 8, "overlap": 2, "epochs": 1, "samples_per_epoch": 512,
            "batch_size": 64, "lr": 3e-3, "cache": str(tmp_path / "cache"), "out": str(tmp_path / "ref.safetensors"),
            "checkpoint": str(tmp_path / "ref.ckpt"), "curve": str(tmp_path / "curve.json"), **changes}
    return api.train("train-refiner", quiet=True, overrides=[f"{k}={json.dumps(v)}" for k, v in sets.items()])


@pytest.mark.skipif(NO_H36M, reason="Human3.6M files not found in ../shared/data/h36m")
def test_refiner_task_trains_resumes_and_refuses_other_settings(tmp_path):
    from wsgcn_cli.lifter import Lifter

    lifter = Lifter.from_weights(_tiny_lifter(tmp_path / "lifter.safetensors"), flip_test=False, device="cpu")
    first = _train_refiner(tmp_path)
    out = tmp_path / "ref.safetensors"
    assert out.is_file() and (tmp_path / "ref.ckpt").is_file() and (tmp_path / "curve.json").is_file()
    assert len(list((tmp_path / "cache").glob("lifted_*.npz"))) == 4  # train and validation, gt and sh
    second = _train_refiner(tmp_path, epochs=2)  # continues from the checkpoint
    hist = second["history"]
    assert [h["epoch"] for h in hist] == [1, 2] and hist[0] == first["history"][0]
    assert hist[1]["loss"] < hist[0]["loss"]
    assert {"val_gt_mm", "val_sh_mm", "val_sh_lifter_mm", "mpjpe_mm"} <= set(hist[1])
    card = (tmp_path / "ref.md").read_text()  # written by training
    assert "Validation after epoch 2" in card and "val_sh_mm" in card and "samples seen" in card
    r = TemporalRefiner.from_weights(out, lifter=lifter)
    assert r.lifter_matches and (r.window, r.overlap, r.meta["frame_stride"]) == (8, 2, 20)
    assert r.meta["samples_seen_total"] == 1024 and r.meta["frame_steps"] == [1, 2] and r.meta["task"] == "refiner"
    with pytest.raises(WsgcnError, match="other settings"):
        _train_refiner(tmp_path, epochs=3, velocity_weight=2.0)
    assert not list(tmp_path.glob(".*partial*"))
