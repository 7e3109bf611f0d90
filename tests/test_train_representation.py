"""Training the 2D pose representation network (wsgcn_cli.train.representation): corruption,
the joint training with a lifter that reads the network's confidences, the tasks on the Trainer."""

from pathlib import Path

import numpy as np
import pytest
import torch

from test_pose2d_network import CLEAN
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.models.pose2d_net import MIN_PRESENT
from wsgcn_cli.models.registry import build_model
from wsgcn_cli.pose2d.network import RepresentationModel
from wsgcn_cli.train.representation import LIMBS, RepresentationConfig, corrupt, drop_joints

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "h36m"


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
