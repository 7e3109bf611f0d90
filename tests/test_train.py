"""Supervised training loop on a small slice of the real Human3.6M files (skipped without them)."""

import pytest

from wsgcn_cli.data import h36m
from wsgcn_cli.lifter import Lifter
from wsgcn_cli.train.loop import TrainConfig, train

pytestmark = pytest.mark.skipif(not (h36m.default_root() / h36m.FILE_3D).is_file(),
                                reason="Human3.6M files not found in ../shared/data/h36m")


def test_train_writes_weights_and_resumes(tmp_path):
    out = tmp_path / "tiny.safetensors"
    cfg = TrainConfig(subjects=("S1",), stride=100, epochs=1, samples_per_epoch=1024, batch_size=256,
                      val_stride=500, source="gt+sh", out=str(out), model_options={"hidden": 32, "num_blocks": 1})
    lines = []
    first = train(cfg, device="cpu", log=lines.append)
    assert out.is_file() and (tmp_path / "tiny.safetensors.ckpt").is_file()
    assert first["meta"]["codec"] == "root_scale" and len(first["meta"]["history"]) == 1
    cfg.epochs = 2
    second = train(cfg, device="cpu", log=lines.append)
    assert any("resumed" in line for line in lines)
    hist = second["meta"]["history"]
    assert [h["epoch"] for h in hist] == [1, 2]
    assert hist[1]["loss_mm"] < hist[0]["loss_mm"]
    lifter = Lifter.from_weights(out, device="cpu")
    assert lifter.meta["trained_on"]["subjects"] == ["S1"]
    assert not list(tmp_path.glob(".*partial*"))
