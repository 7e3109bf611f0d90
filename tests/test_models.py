import numpy as np
import pytest
import torch

from wsgcn_cli import weights
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.lifter import Lifter
from wsgcn_cli.models.registry import build_model
from wsgcn_cli.models.semgcn import SemGraphConv, adjacency
from wsgcn_cli.skeletons import H36M17


@pytest.mark.parametrize("name", ["semgcn_nonlocal", "semgcn", "martinez_mlp"])
def test_shapes_and_root(name):
    model = build_model(name).eval()
    y = model(torch.randn(5, 17, 2))
    assert y.shape == (5, 17, 3)
    assert torch.allclose(y[:, 0], torch.zeros(5, 3))


def test_semgcn_size_matches_paper_scale():
    # SemGCN + non-local with hidden 128 has about 0.43M parameters
    n = sum(p.numel() for p in build_model("semgcn_nonlocal").parameters())
    assert 0.3e6 < n < 0.6e6


def test_semantic_graph_conv_only_mixes_neighbours():
    adj = adjacency(H36M17.parents)
    conv = SemGraphConv(4, 4, adj)
    x = torch.zeros(17, 1, 4)
    x[13] = 1.0  # LWrist: neighbours are itself and LElbow (12)
    out = conv(x) - conv(torch.zeros(17, 1, 4))
    moved = out.abs().sum(dim=(1, 2)) > 1e-6
    assert set(torch.nonzero(moved).flatten().tolist()) == {12, 13}
    # learnable edge weights are softmax-normalised per row
    w = conv.weights()
    assert torch.allclose(w.sum(1), torch.ones(17))
    assert (w[~adj.bool()] == 0).all()


def test_unknown_model_is_a_user_error():
    with pytest.raises(WsgcnError):
        build_model("nope")
    with pytest.raises(WsgcnError):
        build_model("semgcn_nonlocal", width=3)


def test_weights_round_trip_and_lifter(tmp_path):
    model = build_model("semgcn_nonlocal").eval()
    meta = {"model": "semgcn_nonlocal", "model_options": {}, "layout": "h36m17", "codec": "root_scale",
            "output": "root-relative camera coordinates, metres"}
    path = tmp_path / "w.safetensors"
    digest = weights.save(path, model.state_dict(), meta)
    assert len(digest) == 64 and not list(tmp_path.glob(".*partial"))
    lifter = Lifter.from_weights(path, device="cpu")
    assert lifter.sha256 == digest
    kp = np.random.default_rng(0).uniform(0, 500, size=(6, 17, 2)).astype(np.float32)
    kp[2, 5] = np.nan
    out = lifter(kp)
    assert out.shape == (6, 17, 3)
    assert np.isnan(out[2]).all() and np.isfinite(np.delete(out, 2, axis=0)).all()
    # flip test-time augmentation of a mirrored input gives the mirrored output
    mirrored = kp.copy()
    mirrored[..., 0] = -mirrored[..., 0]
    mirrored = mirrored[:, H36M17.flip_permutation()]
    out_m = lifter(mirrored)
    expect = out[:, H36M17.flip_permutation()] * np.float32([-1, 1, 1])
    ok = np.isfinite(out).all(axis=(1, 2))
    assert np.allclose(out_m[ok], expect[ok], atol=1e-4)


def test_weights_errors(tmp_path):
    with pytest.raises(WsgcnError, match="not found"):
        weights.load(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(WsgcnError):
        weights.load(bad)
    model = build_model("martinez_mlp")
    path = tmp_path / "mlp.safetensors"
    weights.save(path, model.state_dict(), {"model": "semgcn_nonlocal", "model_options": {}, "layout": "h36m17",
                                            "codec": "root_scale"})
    with pytest.raises(WsgcnError, match="do not fit"):
        Lifter.from_weights(path, device="cpu")
