"""SemGAN whole-body lifter: the 133-keypoint tree and graph, the input encoding, the
network's shapes, gradients and masked input, the registry and the weights loader."""

import numpy as np
import pytest
import torch

from wsgcn_cli import weights
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.models import registry
from wsgcn_cli.models.semgan import CODEC, IN_FEATURES, SemGAN, encode_input, graph_adjacency
from wsgcn_cli.skeletons import (COCO_WHOLEBODY133, WHOLEBODY133_PARENTS, WHOLEBODY133_PARTS,
                                 WHOLEBODY133_TREE, WHOLEBODY133_TRIPLETS, bone_pairs)
from wsgcn_cli.train import losses

SMALL = {"hidden": 32, "depth": 2, "heads": 2, "decoder_depth": 1}


def wholebody_2d(n=4, seed=0):
    """(n, 133, 2) pixel keypoints grown along the tree from a random nose position, (n, 133) scores."""
    rng = np.random.default_rng(seed)
    xy = np.zeros((n, 133, 2), np.float32)
    xy[:, 0] = rng.uniform(200, 400, (n, 2))
    depth = lambda j: 0 if WHOLEBODY133_PARENTS[j] < 0 else 1 + depth(WHOLEBODY133_PARENTS[j])  # noqa: E731
    for j in sorted(range(133), key=depth):                      # parents before children
        p = WHOLEBODY133_PARENTS[j]
        if p >= 0:
            length = 60.0 if j < 23 else 6.0
            a = rng.uniform(0, 2 * np.pi, n)
            xy[:, j] = xy[:, p] + length * np.stack([np.cos(a), np.sin(a)], -1)
    return xy, rng.uniform(0.3, 1.0, (n, 133)).astype(np.float32)


# -- the tree, the triplets and the graph -----------------------------------------------------

def test_wholebody_tree_is_one_symmetric_tree_and_leaves_the_layout_alone():
    par = np.array(WHOLEBODY133_PARENTS)
    assert par.shape == (133,) and (par == -1).sum() == 1 and par[0] == -1
    for j in range(133):                       # every keypoint reaches the root: no cycle
        k, steps = j, 0
        while k >= 0:
            k, steps = par[k], steps + 1
            assert steps < 133
    perm = COCO_WHOLEBODY133.flip_permutation()
    assert all(par[perm[j]] == (perm[par[j]] if par[j] >= 0 else -1) for j in range(133))
    assert par[91] == 9 and par[112] == 10 and par[23 + 30] == 0          # hands and face hang on the body
    assert COCO_WHOLEBODY133.parents is None and WHOLEBODY133_TREE.name == COCO_WHOLEBODY133.name
    assert WHOLEBODY133_TREE.edges == COCO_WHOLEBODY133.edges and len(bone_pairs(WHOLEBODY133_TREE)) == 132
    assert WHOLEBODY133_TREE.index("right_hand_wrist") == 112
    assert len(bone_pairs(COCO_WHOLEBODY133)) == len(COCO_WHOLEBODY133.edges)   # no tree: the edges
    assert [WHOLEBODY133_PARTS[k] for k in ("body", "face", "left_hand", "right_hand")] == \
        [(0, 23), (23, 91), (91, 112), (112, 133)]


def test_triplets_are_distinct_joints_of_the_layout_covering_every_part():
    tri = np.array(WHOLEBODY133_TRIPLETS)
    assert tri.shape[1] == 3 and tri.min() >= 0 and tri.max() < 133
    assert all(len(set(t)) == 3 for t in tri.tolist())
    for lo, hi in WHOLEBODY133_PARTS.values():
        assert ((tri >= lo) & (tri < hi)).all(1).any()


def test_graph_is_connected_symmetric_and_splits_into_parts():
    adj = graph_adjacency()
    assert torch.equal(adj, adj.T) and (torch.diagonal(adj) == 1).all()
    reach = adj.clone()
    for _ in range(8):                                  # paths of length 2^8 > 133
        reach = ((reach @ reach) > 0).float()
    assert (reach > 0).all()
    a, b = COCO_WHOLEBODY133.edges[0]
    assert adj[a, b] == 1
    hands = graph_adjacency(91, 133)
    assert hands.shape == (42, 42) and hands[:21, 21:].sum() == 0       # the two hands are not joined


# -- the input encoding -----------------------------------------------------------------------------

def test_encoding_is_pelvis_centred_scale_free_and_carries_distance_and_visibility():
    xy, score = wholebody_2d()
    x = encode_input(xy, score)
    assert x.shape == (4, 133, IN_FEATURES) and x.dtype == np.float32 and np.isfinite(x).all()
    assert np.allclose(x[:, 11, :2] + x[:, 12, :2], 0, atol=1e-5)          # pelvis at 0
    assert np.allclose(np.sqrt((x[:, :17, :2] ** 2).sum(-1).mean(-1)), 1, atol=1e-5)
    moved = encode_input(xy * 2.5 + np.float32([40, -70]), score)            # zoom and shift
    assert np.allclose(moved, x, atol=1e-4)
    par = np.array(WHOLEBODY133_PARENTS)
    assert np.allclose(x[:, 1:, 2], np.linalg.norm(x[:, 1:, :2] - x[:, par[1:], :2], axis=-1), atol=1e-5)
    assert (x[:, 0, 2] == 0).all() and np.allclose(x[..., 3], score)
    assert (encode_input(xy)[..., 3] == 1).all()
    t = encode_input(torch.from_numpy(xy), torch.from_numpy(score))
    assert isinstance(t, torch.Tensor) and np.allclose(t.numpy(), x)


def test_unseen_parts_are_zeros_with_visibility_zero_and_a_missing_pelvis_falls_back():
    xy, score = wholebody_2d()
    xy[0, 23:91] = np.nan                                         # no face
    score[0, 91:112] = 0.0                                        # left hand not seen
    xy[1, 11:13] = np.nan                                         # no hips
    xy[2] = np.nan                                                # nothing at all
    x = encode_input(xy, score)
    assert np.isfinite(x).all()
    assert (x[0, 23:91] == 0).all() and (x[0, 91:112] == 0).all()
    assert (x[0, 112:, 3] > 0).all() and (x[0, 113:, 2] > 0).all()
    assert (x[1, 11:13] == 0).all() and abs(x[1, :23, :2].mean(0)).max() < 0.2   # centred on the body
    assert (x[2] == 0).all()
    with pytest.raises(WsgcnError, match="133"):
        encode_input(np.zeros((4, 17, 2)))
    with pytest.raises(WsgcnError, match="scores"):
        encode_input(xy, score[:, :100])


# -- the network ------------------------------------------------------------------------------------

def test_default_network_shapes_root_and_size():
    model = registry.build_model("semgan").eval()
    assert model.num_joints == 133 and model.in_features == IN_FEATURES and model.layout == "coco_wholebody133"
    n = sum(p.numel() for p in model.parameters())
    assert 0.2e6 < n < 0.6e6
    xy, score = wholebody_2d(3)
    with torch.no_grad():
        y = model(torch.from_numpy(encode_input(xy, score)))
    assert y.shape == (3, 133, 3) and torch.isfinite(y).all()
    assert torch.allclose(y[:, 11] + y[:, 12], torch.zeros(3, 3), atol=1e-5)     # pelvis at 0
    with torch.no_grad():
        one = model(torch.from_numpy(encode_input(xy[:1], score[:1])))
    assert torch.allclose(one, y[:1], atol=1e-4)                                  # no batch coupling


def test_gradients_reach_every_parameter_and_masked_input_stays_finite():
    torch.manual_seed(0)
    model = SemGAN(**SMALL).train()
    xy, score = wholebody_2d(4)
    xy[0, 23:] = np.nan                                           # face and hands unseen
    x = torch.from_numpy(encode_input(xy, score))
    y = model(x)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert sum(float(p.grad.abs().sum()) for p in model.parameters()) > 0
    raw = torch.full((2, 133, IN_FEATURES), float("nan"))         # NaN read as 0
    with torch.no_grad():
        assert torch.isfinite(model.eval()(raw)).all()


def test_a_few_steps_fit_a_fixed_batch_with_the_geometry_losses():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    model = SemGAN(**SMALL)
    xy, score = wholebody_2d(8)
    x = torch.from_numpy(encode_input(xy, score))
    target = torch.from_numpy(rng.normal(0, 0.2, (8, 133, 3)).astype(np.float32))
    target = target - 0.5 * (target[:, 11:12] + target[:, 12:13])
    opt = torch.optim.Adam(model.parameters(), 3e-3)

    def loss_fn():
        pred = model(x)
        return (losses.mpjpe_loss(pred, target)
                + losses.bone_length_loss(pred, losses.bone_lengths(target, WHOLEBODY133_TREE),
                                          symmetry_weight=0.0, skeleton=WHOLEBODY133_TREE)
                + 0.1 * losses.normal_loss(pred, target, WHOLEBODY133_TRIPLETS))

    with torch.no_grad():
        first = float(loss_fn())
    for _ in range(25):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert loss.item() < 0.8 * first


def test_bad_sizes_are_user_errors():
    with pytest.raises(WsgcnError, match="divisible"):
        SemGAN(hidden=30, heads=4)
    with pytest.raises(WsgcnError):
        SemGAN(depth=1, gcn_layers=2)


# -- the registry and the loader ----------------------------------------------------------------

def test_registry_builds_semgan_as_a_lifter_and_the_loader_round_trips(tmp_path):
    assert registry.kind_of("semgan") == "lifter" and "semgan" in registry.names("lifter")
    model = registry.build("semgan", dict(SMALL), kind="lifter").eval()
    assert isinstance(model, SemGAN) and len(model.encoder) == 2
    with pytest.raises(WsgcnError, match="bad options"):
        registry.build_model("semgan", width=3)
    meta = {"model": "semgan", "model_options": SMALL, "layout": "coco_wholebody133", "codec": CODEC,
            "output": "root-relative camera coordinates, metres (pelvis = mean of hips 11, 12)"}
    path = tmp_path / "semgan.safetensors"
    weights.save(path, model.state_dict(), meta)
    loaded, got, _ = weights.load_model(path, "lifter", layout="coco_wholebody133")
    assert got["kind"] == "lifter" and got["codec"] == CODEC
    x = torch.from_numpy(encode_input(*wholebody_2d(2)))
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x))
    with pytest.raises(WsgcnError, match="layout"):
        weights.load_model(path, "lifter", layout="h36m17")
