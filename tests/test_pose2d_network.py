"""The 2D pose representation network (wsgcn_cli.pose2d.network): normalisation, masking,
the shipped weights on a clean pose, and its place in the lift stages."""

from pathlib import Path

import numpy as np
import pytest
import torch

from test_pipeline_stages import StreamingLift
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.models.pose2d_net import MIN_PRESENT, normalize
from wsgcn_cli.models.registry import build_model
from wsgcn_cli.pipeline import Representation
from wsgcn_cli.pose2d.network import RepresentationModel

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
