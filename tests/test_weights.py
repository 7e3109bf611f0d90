"""wsgcn_cli.weights: the one loader (load_model) and every way a weights file can be wrong."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from wsgcn_cli import weights
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.lifter import Lifter
from wsgcn_cli.models.registry import build_model
from wsgcn_cli.pose2d.network import RepresentationModel
from wsgcn_cli.temporal import TemporalRefiner

LIFTER_META = {"model": "semgcn_nonlocal", "model_options": {"hidden": 8, "num_blocks": 1}, "layout": "h36m17",
               "codec": "root_scale"}
POSE2D_META = {"model": "pose_representation", "model_options": {"hidden": 8, "num_blocks": 1},
               "layout": "h36m17", "task": "representation"}
ROOT = Path(__file__).resolve().parents[1]
REFINER_META = {"model": "lstm_refiner", "model_options": {"hidden": 8}, "layout": "h36m17", "codec": "root_scale"}
METAS = {"lifter": LIFTER_META, "pose2d": POSE2D_META, "refiner": REFINER_META}
LOADERS = {"lifter": lambda p: Lifter.from_weights(p, device="cpu"),
           "pose2d": lambda p: RepresentationModel.from_weights(p),
           "refiner": lambda p: TemporalRefiner.from_weights(p)}


def _write(path, kind, with_kind=True):
    meta = dict(METAS[kind])
    model = build_model(meta["model"], **meta["model_options"])
    if with_kind:
        weights.save(path, model.state_dict(), meta)
    else:  # a file written before the "kind" key existed
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(path), metadata={"wsgcn": json.dumps(meta)})
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("w")
    return {kind: _write(d / f"{kind}.safetensors", kind) for kind in METAS}


def _one_line_error(call, *words):
    with pytest.raises(WsgcnError) as e:
        call()
    msg = str(e.value)
    assert "\n" not in msg and msg.strip() == msg
    for w in words:
        assert w in msg, msg
    return msg


@pytest.mark.parametrize("kind", list(METAS))
@pytest.mark.parametrize("with_kind", [True, False])
def test_load_model_by_kind(tmp_path, kind, with_kind):
    path = _write(tmp_path / "w.safetensors", kind, with_kind)
    model, meta, digest = weights.load_model(path, kind, device="cpu")
    assert isinstance(model, torch.nn.Module) and not model.training
    assert digest == weights.sha256(path)
    assert meta.get("kind") == (kind if with_kind else None)
    assert weights.kind_of(meta) == kind
    loaded = LOADERS[kind](path)
    assert loaded.sha256 == digest and loaded.meta == meta
    state = weights.load(path)[0]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


@pytest.mark.parametrize("kind", list(METAS))
@pytest.mark.parametrize("wanted", list(METAS))
def test_weights_of_another_kind_are_a_one_line_error(files, kind, wanted):
    if kind == wanted:
        return
    _one_line_error(lambda: weights.load_model(files[kind], wanted), str(files[kind]), f"not a {weights.KINDS[wanted]}")
    _one_line_error(lambda: LOADERS[wanted](files[kind]), str(files[kind]), f"not a {weights.KINDS[wanted]}")


def test_shipped_weights_know_their_kind():
    kinds = {p.name: weights.kind_of(weights.load(p)[1]) for p in sorted((ROOT / "weights").glob("*.safetensors"))}
    assert kinds and set(kinds.values()) <= set(weights.KINDS)
    assert kinds["pose_representation_h36m.safetensors"] == "pose2d"
    assert kinds["semgcn_nl_h36m_det2d.safetensors"] == "lifter"
    # the case of issue 13: a 2D network named as a pipeline's lifter (was KeyError: 'codec')
    _one_line_error(lambda: Lifter.from_weights(ROOT / "weights" / "pose_representation_h36m.safetensors"),
                    "pose_representation_h36m.safetensors", "not a lifter")


def _damaged(src: bytes):
    rng = np.random.default_rng(0)
    n = int.from_bytes(src[:8], "little")
    cuts = {"in the header": 100, "after the header": 8 + n, "in the first tensor": 8 + n + 1,
            "halfway": len(src) // 2, "one byte short": len(src) - 1, "after the length": 9}
    out = {f"truncated {where}": (src[:cut], "truncated") for where, cut in cuts.items()}
    out |= {"truncated at 4": (src[:4], "too short"), "truncated at 8": (src[:8], "truncated"),
            "empty": (b"", "empty"), "random bytes": (rng.bytes(4096), "not a safetensors"),
            "text": (b"model = semgcn\n" * 20, "not a safetensors")}
    b = bytearray(src)
    b[20:28] = b"\xff" * 8
    out["bytes flipped in the header"] = (bytes(b), "not a safetensors")
    b = bytearray(src)
    b[0:8] = (len(src) * 4).to_bytes(8, "little")
    out["header length too long"] = (bytes(b), "truncated")
    b = bytearray(src)
    b[8 + n : 8 + n + 64] = b"\xff" * 64  # float32 NaNs in the first tensor
    out["NaN in a tensor"] = (bytes(b), "NaN")
    return out


@pytest.mark.parametrize("case", list(_damaged(bytes(64))))
def test_damaged_files(files, tmp_path, case):
    src = files["lifter"].read_bytes()
    data, word = _damaged(src)[case]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    _one_line_error(lambda: weights.load_model(path, "lifter"), str(path), word)
    _one_line_error(lambda: Lifter.from_weights(path, device="cpu"), str(path))


def test_pickled_torch_files_are_refused_without_unpickling(tmp_path):
    model = build_model("semgcn_nonlocal", hidden=8, num_blocks=1)
    for i, kw in enumerate([{}, {"_use_new_zipfile_serialization": False}]):
        path = tmp_path / f"pickled{i}.safetensors"
        torch.save(model.state_dict(), path, **kw)
        _one_line_error(lambda: weights.load_model(path, "lifter"), str(path), "pickled")


def test_metadata_problems(tmp_path):
    model = build_model("semgcn_nonlocal", hidden=8, num_blocks=1)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    path = tmp_path / "m.safetensors"
    save_file(state, str(path))
    _one_line_error(lambda: weights.load_model(path, "lifter"), str(path), "no 'wsgcn' metadata")
    save_file(state, str(path), metadata={"wsgcn": "{not json"})
    _one_line_error(lambda: weights.load_model(path, "lifter"), "not valid JSON")
    save_file(state, str(path), metadata={"wsgcn": "[1, 2]"})
    _one_line_error(lambda: weights.load_model(path, "lifter"), "not a JSON object")
    for meta, word in [({}, "no model"), ({"model": "resnet"}, "unknown model"),
                       ({**LIFTER_META, "kind": "bogus"}, "unknown kind"),
                       ({**LIFTER_META, "kind": "refiner"}, "say kind"),
                       ({**LIFTER_META, "model_options": {"width": 3}}, "bad options"),
                       ({**LIFTER_META, "model_options": [1]}, "model_options"),
                       ({**LIFTER_META, "model_options": {"hidden": 16, "num_blocks": 1}}, "do not fit"),
                       ({**LIFTER_META, "layout": "coco17"}, "layout"),
                       ({**LIFTER_META, "codec": None}, "codec")]:
        save_file(state, str(path), metadata={"wsgcn": json.dumps(meta)})
        _one_line_error(lambda: Lifter.from_weights(path, device="cpu"), str(path), word)
    _one_line_error(lambda: weights.load_model(tmp_path / "missing.safetensors", "lifter"), "not found")


def test_save_stamps_the_kind_and_refuses_a_contradiction(tmp_path):
    model = build_model("lstm_refiner", hidden=8)
    weights.save(tmp_path / "r.safetensors", model.state_dict(), dict(REFINER_META))
    assert weights.load(tmp_path / "r.safetensors")[1]["kind"] == "refiner"
    with pytest.raises(ValueError):
        weights.save(tmp_path / "x.safetensors", model.state_dict(), {**REFINER_META, "kind": "lifter"})
    assert not (tmp_path / "x.safetensors").exists() and not list(tmp_path.glob(".*partial*"))


def test_resolve_device():
    assert weights.resolve_device("cpu") == torch.device("cpu")
    assert weights.resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert weights.resolve_device("auto").type in ("cpu", "cuda")
    _one_line_error(lambda: weights.resolve_device("tpu"), "unknown device")
    if not torch.cuda.is_available():
        _one_line_error(lambda: weights.resolve_device("cuda"), "no CUDA")
    with pytest.raises(ValueError):
        weights.load_model("x.safetensors", "detector")
