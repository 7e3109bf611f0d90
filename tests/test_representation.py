"""The 2D pose representation network: normalisation, masking, corruption, the shipped
weights on a clean pose, and its place in the lift stages."""

from pathlib import Path

import numpy as np
import pytest
import torch

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.models.registry import build_model
from wsgcn_cli.models.representation import MIN_PRESENT, RepresentationModel, normalize
from wsgcn_cli.stages import Representation, StreamingLift
from wsgcn_cli.train.representation import LIMBS, RepresentationConfig, corrupt, drop_joints

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "weights" / "pose_representation_h36m.safetensors"
# A hand-made standing pose in the H36M-17 layout, pixels (about 340 px tall).
CLEAN = np.array([[473.7, 444.9], [500.0, 448.0], [477.6, 530.8], [518.0, 622.3], [447.4, 441.9],
                  [453.7, 531.8], [453.4, 627.1], [472.2, 395.1], [470.4, 342.0], [474.2, 320.2],
                  [475.0, 290.6], [443.0, 351.4], [418.6, 404.7], [409.7, 454.0], [499.9, 350.9],
                  [510.3, 406.6], [511.6, 456.4]], np.float32)


def test_normalize_uses_present_joints_only():
    xy = torch.tensor(CLEAN)[None].repeat(2, 1, 1)
    present = torch.ones(2, 17, dtype=torch.bool)
    present[1, 13] = False
    xy[1, 13] = 1e6  # garbage at a missing joint must not matter
    u, c, s = normalize(xy, present)
    assert torch.allclose(u[0].mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose((u[0] ** 2).sum(-1).mean(), torch.tensor(1.0), atol=1e-4)
    assert float(u[1, 13].abs().sum()) == 0.0
    assert torch.isfinite(u).all() and float(s[1]) < 1e3


def test_network_shapes_and_missing_input_ignored():
    torch.manual_seed(0)
    model = build_model("pose_representation", hidden=16, num_blocks=1).eval()
    u = torch.randn(4, 17, 2)
    present = torch.rand(4, 17) > 0.3
    xy, logit = model(u, present)
    assert xy.shape == (4, 17, 2) and logit.shape == (4, 17)
    u2 = u.clone()
    u2[~present] = 123.0  # values at missing joints are masked out
    xy2, logit2 = model(u2, present)
    assert torch.allclose(xy, xy2) and torch.allclose(logit, logit2)


def test_wrapper_fills_missing_and_skips_nearly_empty_frames():
    model = RepresentationModel(build_model("pose_representation", hidden=16, num_blocks=1))
    xy = np.repeat(CLEAN[None], 3, axis=0)
    xy[1, [3, 13]] = np.nan  # two missing joints: completed
    xy[2, MIN_PRESENT - 1 :] = np.nan  # too few joints: left alone
    score = np.ones((3, 17), np.float32)
    out, conf = model(xy, score)
    assert out.shape == (3, 17, 2) and conf.shape == (3, 17)
    assert np.isfinite(out[:2]).all() and ((conf[:2] >= 0) & (conf[:2] <= 1)).all()
    assert np.array_equal(out[2], xy[2], equal_nan=True)


def test_detected_weight_mixes_present_joints_and_completes_missing_ones():
    torch.manual_seed(0)
    model = RepresentationModel(build_model("pose_representation", hidden=16, num_blocks=1))
    xy = np.repeat(CLEAN[None], 2, axis=0)
    xy[1, [3, 13]] = np.nan
    score = np.ones((2, 17), np.float32)
    net, _ = model(xy, score)
    keep, _ = model(xy, score, detected_weight=1.0)
    half, _ = model(xy, score, detected_weight=0.5)
    present = np.isfinite(xy).all(-1)
    np.testing.assert_allclose(keep[present], xy[present], atol=1e-5)    # detections pass through
    np.testing.assert_allclose(keep[~present], net[~present], atol=1e-5)  # missing joints: the network's
    np.testing.assert_allclose(half[present], 0.5 * (xy[present] + net[present]), atol=1e-4)
    with pytest.raises(WsgcnError, match="detected_weight"):
        Representation.from_spec({"kind": "network", "weights": "w.safetensors", "detected_weight": 1.5})


def test_corruption_drops_limbs_and_keeps_enough_joints():
    g = torch.Generator().manual_seed(0)
    gt = torch.tensor(CLEAN)[None].repeat(4000, 1, 1)
    sh = gt + torch.randn(gt.shape, generator=g) * 5
    cfg = RepresentationConfig(drop_max=0.9, limb_occlusion=1.0)
    noisy, present = corrupt(gt, sh, cfg, g)
    assert noisy.shape == gt.shape and present.shape == (4000, 17)
    assert (present.sum(1) >= MIN_PRESENT).all()
    hidden_limb = torch.stack([~present[:, list(j)].any(1) for j in LIMBS], 1)
    assert hidden_limb.any(1).float().mean() > 0.5  # most samples lost a whole limb
    clean = corrupt(gt, gt, RepresentationConfig(jitter=0.0, drop_max=0.0, limb_occlusion=0.0), g)
    assert torch.equal(clean[0], gt) and clean[1].all()


def test_drop_joints_fraction():
    xy = np.zeros((2000, 17, 2), np.float32)
    dropped = np.isnan(drop_joints(xy, 0.3, seed=1)).all(-1)
    assert abs(dropped.mean() - 0.3) < 0.02


def test_representation_table_errors():
    with pytest.raises(WsgcnError, match="needs its weights"):
        Representation.from_spec({"kind": "network"})
    with pytest.raises(WsgcnError, match="unknown representation kind"):
        Representation.from_spec({"kind": "magic"})
    with pytest.raises(WsgcnError, match="unknown \\[representation\\] option"):
        Representation.from_spec({"max_gap": 3})


def test_streaming_lift_with_network_completes_frames():
    class Lift:
        def __call__(self, xy, width=None, height=None):
            out = np.concatenate([xy, xy[..., :1]], -1) / 1000.0
            out[~np.isfinite(xy).all(axis=(-1, -2))] = np.nan
            return out

    net = RepresentationModel(build_model("pose_representation", hidden=16, num_blocks=1))
    stream = StreamingLift(Lift(), "h36m17", 1000, 1000, 25.0, Representation(max_gap_frames=0), batch=2, net=net)
    for t in range(6):
        xy = CLEAN.copy()
        if t == 2:
            xy[[12, 13]] = np.nan
        stream.push(t / 25.0, xy, np.ones(17, np.float32))
    stream.finish()
    assert np.isfinite(stream.poses3d).all() and not stream.missing.any()


SHARED = REPO.parent / "shared" / "data" / "h36m"


@pytest.mark.skipif(not WEIGHTS.is_file(), reason="weights/pose_representation_h36m.safetensors not trained yet")
@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data/h36m (Human3.6M ground truth)")
def test_shipped_weights_keep_clean_poses_and_complete_a_hand():
    from wsgcn_cli.data import h36m

    data = h36m.load(("S9",), SHARED, stride=500)
    gt = data.kp2d_gt
    rep = RepresentationModel.from_weights(WEIGHTS)
    out, conf = rep(gt, np.ones(gt.shape[:2], np.float32))
    height = np.ptp(gt[..., 1], axis=1)[:, None]
    moved = np.linalg.norm(out - gt, axis=-1) / height
    assert np.median(moved) < 0.02  # clean poses pass nearly unchanged
    hand = gt.copy()
    hand[:, 13] = np.nan  # left wrist missing
    out, _ = rep(hand, np.ones(gt.shape[:2], np.float32))
    completed = np.linalg.norm(out[:, 13] - gt[:, 13], axis=-1)
    at_elbow = np.linalg.norm(gt[:, 12] - gt[:, 13], axis=-1)  # naive guess: the wrist at the elbow
    assert np.median(completed) < 0.8 * np.median(at_elbow)


def _tiny_lifter_weights(path, in_features=2):
    from wsgcn_cli import weights

    torch.manual_seed(0)
    model = build_model("semgcn_nonlocal", hidden=8, num_blocks=1, in_features=in_features)
    opts = {"hidden": 8, "num_blocks": 1, **({"in_features": 3} if in_features == 3 else {})}
    meta = {"model": "semgcn_nonlocal", "model_options": opts, "layout": "h36m17", "codec": "root_scale",
            "output": "root-relative camera coordinates, metres"}
    if in_features == 3:
        meta["confidence_input"] = True
    weights.save(path, model.eval().state_dict(), meta)
    return path


def test_joint_lifter_starts_as_the_original_and_reads_confidences(tmp_path):
    from wsgcn_cli.lifter import Lifter
    from wsgcn_cli.train.representation import joint_lifter

    base = Lifter.from_weights(_tiny_lifter_weights(tmp_path / "base.safetensors"), flip_test=False, device="cpu")
    model, meta = joint_lifter(tmp_path / "base.safetensors", True, "cpu")
    assert meta["confidence_input"] and meta["model_options"]["in_features"] == 3
    joint = Lifter(model, "root_scale", flip_test=False, meta=meta)
    xy = np.repeat(CLEAN[None], 2, axis=0)
    low = np.full((2, 17), 0.1, np.float32)
    # zero weights on the new channel: same 3D as the original, whatever the confidences
    assert np.allclose(joint(xy, score=low), base(xy), atol=1e-5)
    assert joint.encode(xy).shape == (2, 17, 3) and np.all(joint.encode(xy)[..., 2] == 1.0)
    assert base.encode(xy, score=low).shape == (2, 17, 2)  # an ordinary lifter ignores them
    with torch.no_grad():
        model.body[0].gconv.W[:, 2].fill_(0.5)
    assert not np.allclose(joint(xy, score=low), joint(xy), atol=1e-4)
    with pytest.raises(WsgcnError, match="SemGCN lifter"):
        bad = tmp_path / "screen.safetensors"
        from wsgcn_cli import weights

        state, m = weights.load(tmp_path / "base.safetensors")
        weights.save(bad, state, {**m, "codec": "screen"})
        joint_lifter(bad, True, "cpu")


def test_joint_loss_trains_network_and_lifter(tmp_path):
    from wsgcn_cli.train.representation import joint_lifter, loss_terms
    from wsgcn_cli.skeletons import H36M17

    torch.manual_seed(0)
    net = build_model("pose_representation", hidden=16, num_blocks=1)
    lifter, _ = joint_lifter(_tiny_lifter_weights(tmp_path / "base.safetensors"), True, "cpu")
    gt = torch.tensor(CLEAN)[None].repeat(4, 1, 1)
    noisy = gt + torch.randn(4, 17, 2)
    present = torch.rand(4, 17) > 0.2
    pose3d = torch.randn(4, 17, 3) * 0.2
    pose3d = pose3d - pose3d[:, :1]
    flip = torch.tensor([True, False, True, False])
    perm = torch.as_tensor(H36M17.flip_permutation())
    pos, conf, err, lift = loss_terms(net, noisy, present, gt, flip, perm, lifter, pose3d, True)
    assert err.shape == (4, 17) and float(lift.detach()) > 0
    (pos + conf + lift).backward()
    assert net.gcn.head.W.grad.abs().sum() > 0 and lifter.body[0].gconv.W.grad.abs().sum() > 0
    _, _, _, none = loss_terms(net, noisy, present, gt)
    assert float(none) == 0.0


def test_lift_refuses_a_confidence_lifter_without_the_network(tmp_path):
    from wsgcn_cli import api

    _tiny_lifter_weights(tmp_path / "conf.safetensors", in_features=3)
    pipe = tmp_path / "conf.toml"
    pipe.write_text('[detector]\nname = "mediapipe"\n\n[representation]\nkind = "geometric"\n\n'
                    f'[lifter]\nweights = "{tmp_path / "conf.safetensors"}"\n')
    with pytest.raises(WsgcnError, match="reads the 2D representation network's confidences"):
        api.lift(tmp_path / "missing.mp4", pipeline=str(pipe), quiet=True)


def test_joint_loss_with_detected_weight_one_lifts_the_detections(tmp_path):
    from wsgcn_cli import codec
    from wsgcn_cli.train.representation import joint_lifter, loss_terms

    torch.manual_seed(0)
    net = build_model("pose_representation", hidden=16, num_blocks=1).eval()
    lifter, _ = joint_lifter(_tiny_lifter_weights(tmp_path / "base.safetensors"), False, "cpu")
    lifter.eval()
    noisy = torch.tensor(CLEAN)[None].repeat(3, 1, 1) + torch.randn(3, 17, 2)
    present = torch.ones(3, 17, dtype=torch.bool)
    pose3d = torch.zeros(3, 17, 3)
    *_, lift = loss_terms(net, noisy, present, noisy, lifter=lifter, pose3d=pose3d, detected_weight=1.0)
    with torch.no_grad():
        direct = torch.linalg.vector_norm(lifter(codec.root_scale_normalize_torch(noisy)), dim=-1).mean()
    assert torch.allclose(lift.detach(), direct, atol=1e-5)


# ----------------------------------------------------------------------------- training on the Trainer

NO_H36M = not (SHARED / "h36m_3d_17j_world_mm.npz").is_file()


def _train_rep(pipeline, tmp_path, **changes):
    """``wsgcn train <pipeline>`` on S1 every 50th frame, a tiny network; every output
    under ``tmp_path``."""
    import json

    from wsgcn_cli import api

    sets = {"model.hidden": 16, "model.num_blocks": 1, "subjects": ["S1"], "stride": 50, "val_stride": 500,
            "epochs": 1, "samples_per_epoch": 1024, "batch_size": 128, "lr": 3e-3,
            "out": str(tmp_path / "net.safetensors"), "checkpoint": str(tmp_path / "net.ckpt"),
            "curve": str(tmp_path / "curve.json"), **changes}
    return api.train(pipeline, quiet=True, overrides=[f"{k}={json.dumps(v)}" for k, v in sets.items()])


@pytest.mark.skipif(NO_H36M, reason="needs ../shared/data/h36m (Human3.6M ground truth)")
def test_representation_task_trains_resumes_and_refuses_other_settings(tmp_path):
    first = _train_rep("train-representation", tmp_path)
    out = tmp_path / "net.safetensors"
    assert out.is_file() and (tmp_path / "net.ckpt").is_file() and (tmp_path / "curve.json").is_file()
    second = _train_rep("train-representation", tmp_path, epochs=2)  # continues from the checkpoint
    hist = second["history"]
    assert [h["epoch"] for h in hist] == [1, 2] and hist[0] == first["history"][0]
    assert hist[1]["loss"] < hist[0]["loss"] and hist[1]["val_out_px"] < hist[0]["val_out_px"]
    rep = RepresentationModel.from_weights(out)
    assert rep.meta["task"] == "representation" and rep.meta["model_options"] == {"hidden": 16, "num_blocks": 1}
    assert rep.meta["trained_on"]["corruption"]["drop_max"] == 0.4 and rep.meta["samples_seen_total"] == 2048
    with pytest.raises(WsgcnError, match="other settings"):
        _train_rep("train-representation", tmp_path, epochs=3, jitter=0.05)


@pytest.mark.skipif(NO_H36M, reason="needs ../shared/data/h36m (Human3.6M ground truth)")
def test_joint_task_writes_network_and_lifter_from_earlier_weights(tmp_path):
    from wsgcn_cli import weights
    from wsgcn_cli.lifter import Lifter

    torch.manual_seed(0)
    init = tmp_path / "init.safetensors"
    weights.save(init, build_model("pose_representation", hidden=16, num_blocks=1).state_dict(),
                 {"model": "pose_representation", "model_options": {"hidden": 16, "num_blocks": 1}, "layout": "h36m17",
                  "epochs": 2, "samples_per_epoch": 1000})
    joint = dict(init_weights=str(init), lifter=str(_tiny_lifter_weights(tmp_path / "base.safetensors")),
                 lifter_out=str(tmp_path / "lifter.safetensors"))
    first = _train_rep("train-representation-lifter", tmp_path, **joint)
    second = _train_rep("train-representation-lifter", tmp_path, epochs=2, **joint)
    hist = second["history"]
    assert [h["epoch"] for h in hist] == [1, 2] and hist[0] == first["history"][0]
    assert hist[1]["loss"] < hist[0]["loss"] and {"lift_m", "val_mpjpe_mm", "val_drop_mpjpe_mm"} <= set(hist[1])
    lifter = Lifter.from_weights(tmp_path / "lifter.safetensors", device="cpu")
    assert lifter.confidence_input and lifter.meta["init_weights"] == "base.safetensors"
    assert lifter.meta["samples_seen_total"] == 2048 and lifter.meta["representation"]["weights"] == "net.safetensors"
    rep = RepresentationModel.from_weights(tmp_path / "net.safetensors")
    assert rep.meta["lifter"]["sha256"] == lifter.sha256 and rep.meta["init_sha256"] == weights.sha256(init)
    assert rep.meta["samples_seen_before"] == 2000 and rep.meta["samples_seen_total"] == 2000 + 2048
    with pytest.raises(WsgcnError, match="init weights .* not pose_representation"):
        _train_rep("train-representation-lifter", tmp_path, **{**joint, "model.hidden": 32})
