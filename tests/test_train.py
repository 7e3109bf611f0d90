"""The Trainer and the lifter task on small slices of the real Human3.6M files (skipped
without them): weights, checkpoint, resume, refusal of other settings, warm restart,
keep-best, the weak term, and two processes under torchrun (DDP, gloo)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from wsgcn_cli import api
from wsgcn_cli.data import h36m
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.lifter import Lifter

pytestmark = pytest.mark.skipif(not (h36m.default_root() / h36m.FILE_3D).is_file(),
                                reason="Human3.6M files not found in ../shared/data/h36m")

TINY = ['subjects=["S1"]', "stride=100", "samples_per_epoch=1024", "batch_size=256", "val_stride=500",
        "model.hidden=32", "model.num_blocks=1", 'init_weights=""', 'keep_best=""']


def _paths(tmp_path, name="tiny"):
    return [f'out="{tmp_path / (name + ".safetensors")}"', f'checkpoint="{tmp_path / (name + ".ckpt")}"',
            f'curve="{tmp_path / ("curve_" + name + ".json")}"']


def _train(tmp_path, *extra, name="tiny", pipeline="train-semgcn-gt"):
    return api.train(pipeline, device="cpu", quiet=True, evaluate_after=False,
                     overrides=TINY + _paths(tmp_path, name) + list(extra))


def test_trainer_writes_weights_curve_and_resumes(tmp_path):
    first = _train(tmp_path, "epochs=1", 'source="gt+sh"')
    out = tmp_path / "tiny.safetensors"
    assert out.is_file() and (tmp_path / "tiny.ckpt").is_file()
    assert first["meta"]["samples_seen_total"] == 1024 and first["meta"]["bf16_autocast"] in (True, False)
    second = _train(tmp_path, "epochs=3", 'source="gt+sh"')  # continues: epochs 2 and 3 only
    hist = second["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3] and hist[0] == first["history"][0]
    assert hist[-1]["loss"] < hist[0]["loss"] and hist[-1]["samples_seen"] == 3 * 1024
    curve = json.loads((tmp_path / "curve_tiny.json").read_text())
    assert [p["samples_seen"] for p in curve["points"]] == [1024, 2048, 3072]
    assert {"val_gt_mpjpe", "val_gt_p_mpjpe", "val_sh_mpjpe", "val_sh_p_mpjpe"} <= set(curve["points"][0])
    assert (tmp_path / "curve_tiny.png").stat().st_size > 1000
    lifter = Lifter.from_weights(out, device="cpu")
    assert lifter.meta["trained_on"]["subjects"] == ["S1"] and len(lifter.meta["history"]) == 3
    with pytest.raises(WsgcnError, match="other settings"):
        _train(tmp_path, "epochs=4", 'source="gt+sh"', "lr=5e-3")
    assert not list(tmp_path.glob(".*partial*"))


def test_warm_restart_counts_samples_and_keeps_the_best(tmp_path):
    base = _train(tmp_path, "epochs=1", name="base")
    r = api.train("train-semgcn-gt", device="cpu", quiet=True, evaluate_after=False,
                  overrides=TINY[:-2] + _paths(tmp_path, "warm") + [
                      "epochs=2", f'init_weights="{base["weights"]}"', 'keep_best="val_gt_mpjpe"'])
    hist = r["history"]
    assert hist[0]["epoch"] == 0 and hist[0]["samples_seen"] == 1024  # the starting point, validated
    assert hist[-1]["samples_seen"] == 1024 + 2 * 1024
    best = min(hist, key=lambda h: h["val_gt_mpjpe"])
    if best["epoch"] == 0:
        assert not (tmp_path / "warm.safetensors").exists()
    else:
        meta = Lifter.from_weights(tmp_path / "warm.safetensors", device="cpu").meta
        assert meta["best_epoch"] == best["epoch"] and meta["samples_seen_before"] == 1024


@pytest.mark.parametrize("root,mode", [("estimated", "root_scale"), ("gt", "root_scale"),
                                       ("estimated", "virtual_camera")])
def test_weak_term_runs_after_the_warmup_and_records_its_setting(tmp_path, root, mode):
    r = api.train("train-weak-s1", device="cpu", quiet=True, evaluate_after=False,
                  overrides=["stride=400", "epochs=2", "warmup_epochs=1", "samples_per_epoch=256", "batch_size=64",
                             "val_stride=2000", 'keep_best=""', f'root="{root}"', f'codec.mode="{mode}"', "model.hidden=16",
                             "model.num_blocks=1"] + _paths(tmp_path, "weak"))
    meta = Lifter.from_weights(r["weights"], device="cpu").meta
    assert meta["trained_on"]["subjects"] == ["S1"] and meta["weak"]["root"] == root and meta["codec"] == mode
    assert meta["weak"]["unlabelled_subjects"] == ["S5", "S6", "S7", "S8"]
    h = r["history"]
    assert "reproj" not in h[0] and h[1]["reproj"] > 0 and np.isfinite(h[1]["bone"])
    from wsgcn_cli import model_card
    from wsgcn_cli.pipeline import load

    card = model_card.write_card(r["weights"], load("train-weak-s1", kind="train"), {}).read_text()
    assert "**weak supervision**" in card and "S5, S6, S7, S8 contribute their gt 2D only" in card
    assert ("ground-truth roots" in card) == (root == "gt")
    # weights kept from the warm-up say that the weak term has not acted on them yet
    assert "not yet trained with the weak term" in model_card._weak_line({**meta, "best_epoch": 1})[0]
    assert "not yet" not in model_card._weak_line({**meta, "best_epoch": 2})[0] and "not yet" not in card
    # the curve's train column is the supervised MPJPE, not the loss with the weak terms
    assert f"| {1000 * h[1]['mpjpe']:.2f} |" in card and f"| {1000 * h[1]['loss']:.2f} |" not in card
    with pytest.raises(WsgcnError, match="both labelled and unlabelled"):
        api.train("train-weak-s1", device="cpu", quiet=True, evaluate_after=False,
                  overrides=['unlabelled_subjects=["S1", "S5"]'] + _paths(tmp_path, "bad"))
    with pytest.raises(WsgcnError, match="test subjects"):
        api.train("train-weak-s1", device="cpu", quiet=True, evaluate_after=False,
                  overrides=['unlabelled_subjects=["S9"]'] + _paths(tmp_path, "bad"))


def test_synchronised_views_pair_the_cameras_of_one_frame_and_train(tmp_path):
    import torch

    from wsgcn_cli import codec
    from wsgcn_cli.train import losses
    from wsgcn_cli.train.lifter import synchronised_views

    data = h36m.load(("S5",), stride=200, with_sh=False)
    keep = np.ones(len(data), dtype=bool)
    keep[0] = False  # a view without 2D leaves its frame out
    views = synchronised_views(data, keep)
    assert views.shape[1] == len(h36m.CAMERAS) and len(views) == len(data) // len(h36m.CAMERAS) - 1
    idx = np.flatnonzero(keep)[views]  # back to indices into data
    assert (data.camera[idx] == np.arange(len(h36m.CAMERAS))).all() and (data.frame[idx] == data.frame[idx[:, :1]]).all()
    # the ground truth of one frame in two views agrees up to a rotation; other frames do not
    y = torch.from_numpy(codec.to_metres_root_relative(data.pose3d[idx]).astype(np.float32))
    assert losses.multiview_consistency_loss(y[:, 0], y[:, 2]).item() < 1e-4
    assert losses.multiview_consistency_loss(y[:-1, 0], y[1:, 2]).item() > 0.02
    r = api.train("train-weak-s1", device="cpu", quiet=True, evaluate_after=False,
                  overrides=["stride=400", "epochs=2", "warmup_epochs=1", "samples_per_epoch=256", "batch_size=64",
                             "val_stride=2000", 'keep_best=""', "w_multiview=1.0", "model.hidden=16", "model.num_blocks=1"]
                  + _paths(tmp_path, "weak_mv"))
    assert r["history"][1]["multiview"] > 0 and "multiview" not in r["history"][0]
    assert Lifter.from_weights(r["weights"], device="cpu").meta["weak"]["w_multiview"] == 1.0
    from wsgcn_cli import model_card
    from wsgcn_cli.pipeline import load

    card = model_card.write_card(r["weights"], load("train-weak-s1", kind="train"), {}).read_text()
    assert "multi-view consistency x 1.0" in card


def test_augmented_training_runs(tmp_path):
    r = _train(tmp_path, "epochs=1", 'source="gt+sh"', "virtual_probability=0.5", "bone_scale=0.05",
               "joint_noise=0.01", "gross_error_probability=0.01", name="aug")
    meta = Lifter.from_weights(r["weights"], device="cpu").meta
    assert meta["augmentation"]["virtual_probability"] == 0.5 and np.isfinite(r["history"][0]["loss"])


def test_virtual_camera_codec_trains_and_evaluates(tmp_path):
    """The perspective-corrected codec: targets in each sample's virtual camera, and
    evaluation rotates the predictions back (a lifter that learned nothing of the
    geometry would score far worse than the same lifter read with root_scale)."""
    r = _train(tmp_path, "epochs=1", 'source="gt+sh"', 'codec.mode="virtual_camera"', name="vcam")
    lifter = Lifter.from_weights(r["weights"], device="cpu")
    assert lifter.codec_mode == "virtual_camera"
    res = api.evaluate(r["weights"], source="gt", stride=500, device="cpu", quiet=True)
    assert np.isfinite(res["mpjpe_mm"]) and res["frames"] > 0
    aug = _train(tmp_path, "epochs=1", 'source="gt+sh"', 'codec.mode="virtual_camera"', "virtual_probability=0.5",
                 "bone_scale=0.05", name="vaug")
    assert np.isfinite(aug["history"][0]["loss"])
    with pytest.raises(WsgcnError, match="screen"):
        _train(tmp_path, "epochs=1", 'codec.mode="screen"', "virtual_probability=0.5", name="vbad")


def test_ddp_two_cpu_processes_train_to_identical_weights(tmp_path):
    """torchrun --nproc_per_node 2 -m wsgcn_cli train ... on CPU (gloo)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
           "-m", "wsgcn_cli", "train", "train-semgcn-gt", "--device", "cpu", "--no-eval"]
    for o in TINY + _paths(tmp_path, "ddp") + ["epochs=2", "samples_per_epoch=2048"]:
        cmd += ["--set", o]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "2 processes end with the same weights: max |difference| 0" in r.stderr
    assert r.stderr.count("epoch 2/2") == 1  # one voice: rank 0 logs
    meta = Lifter.from_weights(tmp_path / "ddp.safetensors", device="cpu").meta
    hist = meta["history"]
    assert meta["processes"] == 2 and hist[-1]["loss"] < hist[0]["loss"]
    assert not (tmp_path / "ddp.safetensors").with_suffix(".md").exists()
