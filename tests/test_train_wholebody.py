"""The whole-body lifter's training task (wsgcn_cli/train/wholebody.py) on the one Trainer,
and its evaluation (``wsgcn eval`` of a COCO-WholeBody-133 lifter: H3WB fixture, composite
test split, held-out FPHA hands) and model card. A tiny SemGAN on a slice of the composite
data (CPU, a few seconds); skipped without ``../shared/data``."""

import json

import numpy as np
import pytest

from wsgcn_cli import api
from wsgcn_cli.data import h3wb, wholebody as wb
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.weights import load_model

_ROOT = wb.default_root()
_NEEDED = [_ROOT / "h36m", _ROOT / "hands_fpha" / "fpha_hands_21j_mm.npz",
           _ROOT / "face_aflw2000_3d" / "aflw2000_3d_68.npz", h3wb.default_path()]
pytestmark = pytest.mark.skipif(not all(p.exists() for p in _NEEDED),
                                reason="../shared/data (h36m, hands_fpha, face_aflw2000_3d, h3wb) not found")

TINY = ["stride=400", "val_stride=400", "val_samples=128", "samples_per_epoch=384", "batch_size=64",
        "model.hidden=32", "model.depth=1", "model.decoder_depth=1", 'keep_best=""', "lr=2e-3"]


def _paths(tmp_path, name="wb"):
    return [f'out="{tmp_path / (name + ".safetensors")}"', f'checkpoint="{tmp_path / (name + ".ckpt")}"',
            f'curve="{tmp_path / ("curve_" + name + ".json")}"']


def _train(tmp_path, *extra, name="wb"):
    return api.train("train-semgan-wholebody", device="cpu", quiet=True, evaluate_after=False,
                     overrides=TINY + _paths(tmp_path, name) + list(extra))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny whole-body lifter trained 2 epochs, then resumed for a third."""
    tmp = tmp_path_factory.mktemp("wholebody")
    first = _train(tmp, "epochs=2")
    second = _train(tmp, "epochs=3")
    return tmp, first, second


def test_tiny_training_lowers_the_loss_and_resumes(tiny):
    tmp, first, second = tiny
    hist = second["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3] and hist[:2] == first["history"]
    assert hist[-1]["loss"] < hist[0]["loss"] and hist[-1]["samples_seen"] == 3 * 384
    assert {"val_mpjpe", "val_body", "val_face", "val_hands", "val_h3wb_mpjpe", "mpjpe_mm", "bone_mm",
            "normal"} <= set(hist[-1])
    model, meta, _ = load_model(second["weights"], "lifter", layout="coco_wholebody133")
    assert meta["task"] == "wholebody" and meta["codec"] == "wholebody_pelvis_scale"
    assert meta["loss"]["synthesised_weight"] == 0.5 and "research-only" in meta["licence"]
    curve = json.loads((tmp / "curve_wb.json").read_text())
    assert len(curve["points"]) == 3 and (tmp / "curve_wb.png").is_file()
    with pytest.raises(WsgcnError, match="other settings"):
        _train(tmp, "epochs=4", "loss.normal=0.5")


def test_eval_h3wb_writes_the_body_eval_keys_and_says_what_the_fixture_is_worth(tiny, tmp_path):
    _, _, second = tiny
    out = tmp_path / "h3wb.json"
    r = api.evaluate(second["weights"], data=str(h3wb.default_path().parent), device="cpu", quiet=True,
                     json_out=str(out))
    doc = json.loads(out.read_text())
    assert {"mpjpe_mm", "p_mpjpe_mm", "per_part", "frames", "note"} <= set(doc)
    assert {"body", "face", "left_hand", "right_hand", "hands"} <= set(doc["per_part"])
    assert doc["frames"] == 4 and doc["poses"] == 1 and "decide nothing" in doc["note"]
    assert np.isfinite(r["mpjpe_mm"]) and r["mpjpe_mm"] > 0


def test_eval_composite_reports_held_out_fpha_hands(tiny):
    _, _, second = tiny
    r = api.evaluate(second["weights"], source="composite", stride=400, samples=200, device="cpu", quiet=True)
    hands = r["fpha_hands"]
    assert r["frames"] == 200 and r["subjects"] == ["S9", "S11"] and hands["fpha_subjects"] == [6]
    assert hands["hands"] + hands["unseen_hands"] == 400 and hands["hands"] > 0
    assert np.isfinite(hands["mpjpe_mm"]) and hands["p_mpjpe_mm"] <= hands["mpjpe_mm"] + 1e-6
    clean = api.evaluate(second["weights"], source="composite-clean", stride=400, samples=100, device="cpu",
                         quiet=True)
    assert clean["fpha_hands"]["unseen_hands"] == 0 and clean["fpha_hands"]["hands"] == 200
    with pytest.raises(WsgcnError, match="whole-body"):
        api.evaluate(second["weights"], source="sh", device="cpu", quiet=True)


def test_card_states_recipe_licence_and_limits(tiny):
    tmp, _, second = tiny
    results = {"h3wb": api.evaluate_wholebody(second["weights"], device="cpu", quiet=True),
               "composite": api.evaluate_wholebody(second["weights"], source="composite", stride=400, samples=64,
                                                   device="cpu", quiet=True)}
    api.write_wholebody_card(second["weights"], "train-semgan-wholebody", results=results)
    card = (tmp / "wb.md").read_text()
    for text in ("decide nothing", "research-only", "FPHA", "AFLW2000-3D", "Held-out FPHA hands", "## Limits",
                 "Not trained on H3WB"):
        assert text in card


def test_bad_options_are_one_line_errors(tmp_path):
    with pytest.raises(WsgcnError, match="detector-noise"):
        _train(tmp_path, "epochs=1", "data.noise={drop_everything=1}")
    with pytest.raises(WsgcnError, match="wholebody_pelvis_scale"):
        _train(tmp_path, "epochs=1", 'codec.mode="root_scale"')
    with pytest.raises(WsgcnError, match="unknown option"):
        _train(tmp_path, "epochs=1", "loss.nonsense=1")
