"""Losses for weak / self-supervision and root estimation: exact at the truth, gradients flow."""

from pathlib import Path

import numpy as np
import pytest
import torch

from wsgcn_cli import codec
from wsgcn_cli.camera import estimate_root_translation, project, undistort_normalized
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.skeletons import H36M17, bone_pairs
from wsgcn_cli.train import losses

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "h36m"
# Human3.6M camera 54138969 of S1 (h36m_cameras.json): intrinsics with distortion.
F = np.array([1145.04940459, 1143.78109572])
C = np.array([512.54150496, 515.45148698])
K = np.array([-0.20709891, 0.24777518, -0.00307515])
P = np.array([-0.00142447, -0.00097505])


def poses(n=8, seed=0):
    """(n, 17, 3) root-relative poses (metres) with symmetric bones, and roots (n, 3) in front."""
    rng = np.random.default_rng(seed)
    rest = np.zeros((17, 3))
    offsets = {1: (-0.13, 0, 0), 2: (0, 0.45, 0), 3: (0, 0.44, 0), 4: (0.13, 0, 0), 5: (0, 0.45, 0),
               6: (0, 0.44, 0), 7: (0, -0.24, 0), 8: (0, -0.25, 0), 9: (0, -0.11, -0.05), 10: (0, -0.12, 0.05),
               11: (0.15, 0, 0), 12: (0, 0.28, 0), 13: (0, 0.25, 0), 14: (-0.15, 0, 0), 15: (0, 0.28, 0),
               16: (0, 0.25, 0)}
    for j, par in enumerate(H36M17.parents):
        if par >= 0:
            rest[j] = rest[par] + offsets[j]
    # random rotation about the vertical axis + a small tilt, per sample
    a, b = rng.uniform(-np.pi, np.pi, n), rng.uniform(-0.3, 0.3, n)
    ry = np.stack([np.cos(a), 0 * a, np.sin(a), 0 * a, 1 + 0 * a, 0 * a, -np.sin(a), 0 * a, np.cos(a)], -1).reshape(n, 3, 3)
    rx = np.stack([1 + 0 * b, 0 * b, 0 * b, 0 * b, np.cos(b), -np.sin(b), 0 * b, np.sin(b), np.cos(b)], -1).reshape(n, 3, 3)
    pose = np.einsum("nij,kj->nki", rx @ ry, rest)
    root = np.stack([rng.uniform(-1, 1, n), rng.uniform(-0.5, 0.5, n), rng.uniform(3, 7, n)], -1)
    return pose, root


# -- reprojection ------------------------------------------------------------------------------

@pytest.mark.parametrize("distortion", [False, True])
def test_reprojection_is_zero_at_the_truth_and_grows_off_it(distortion):
    pose, root = poses()
    k, p = (K, P) if distortion else (None, None)
    kp = project(pose + root[:, None], F, C, k, p)
    pose_t = torch.tensor(pose, requires_grad=True)
    loss = losses.reprojection_loss(pose_t, torch.tensor(root), torch.tensor(kp), F, C, k=k, p=p)
    assert loss.item() < 1e-9
    moved = pose_t + torch.tensor([0.05, 0.0, 0.0])        # every joint 5 cm sideways
    off = losses.reprojection_loss(moved, torch.tensor(root), torch.tensor(kp), F, C, k=k, p=p)
    assert off.item() > 5.0  # ~ 1145 px/m * 5 cm / 5 m
    off.backward()
    assert torch.isfinite(pose_t.grad).all() and pose_t.grad.abs().sum() > 0


def test_reprojection_per_sample_intrinsics_weights_scale_and_nan():
    pose, root = poses(6, seed=1)
    f = np.tile(F, (6, 1)) * np.linspace(0.8, 1.2, 6)[:, None]
    c = np.tile(C, (6, 1)) + np.arange(6)[:, None]
    kp = project(pose + root[:, None], f[:, None], c[:, None])
    t = lambda a: torch.tensor(a)  # noqa: E731
    assert losses.reprojection_loss(t(pose), t(root), t(kp), t(f), t(c)).item() < 1e-9
    noisy = kp.copy()
    noisy[:, 3] += 10.0                                   # joint 3 off by 10*sqrt(2) px
    w = np.ones((6, 17))
    assert losses.reprojection_loss(t(pose), t(root), t(noisy), t(f), t(c)).item() == pytest.approx(10 * 2**0.5 / 17)
    w[:, 3] = 0.0
    assert losses.reprojection_loss(t(pose), t(root), t(noisy), t(f), t(c), weights=t(w)).item() < 1e-9
    noisy[:, 3] = np.nan                                  # missing 2D is ignored
    assert losses.reprojection_loss(t(pose), t(root), t(noisy), t(f), t(c)).item() < 1e-9
    scale = losses.keypoint_scale(t(kp))
    rel = losses.reprojection_loss(t(pose), t(root), t(kp + [3.0, 4.0]), t(f), t(c), scale=scale)
    assert rel.item() == pytest.approx((5.0 / scale).mean().item(), rel=1e-6)
    # sequences (B, T, J, *) work as well
    assert losses.reprojection_loss(t(pose)[None], t(root)[None], t(kp)[None], t(f)[None], t(c)[None]).item() < 1e-9


def test_reprojection_behind_the_camera_is_finite():
    pose, root = poses(2)
    kp = project(pose + root[:, None], F, C)
    bad_root = torch.tensor(root * [1, 1, -1])            # person behind the camera
    pose_t = torch.tensor(pose, requires_grad=True)
    loss = losses.reprojection_loss(pose_t, bad_root, torch.tensor(kp), F, C)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pose_t.grad).all()


def test_keypoint_scale_matches_the_codec():
    pose, root = poses(4)
    kp = project(pose + root[:, None], F, C)
    _, _, scale = codec.root_scale_normalize(kp)
    assert np.allclose(losses.keypoint_scale(torch.tensor(kp)).numpy(), scale, rtol=1e-5)


def test_bad_shapes_are_one_line_errors():
    with pytest.raises(WsgcnError):
        losses.reprojection_loss(torch.zeros(2, 17, 3), torch.zeros(3, 3), torch.zeros(2, 17, 2), F, C)
    with pytest.raises(WsgcnError):
        losses.reprojection_loss(torch.zeros(2, 17, 3), torch.zeros(2, 3), torch.zeros(2, 17, 2), [1.0, 2.0, 3.0], C)
    with pytest.raises(WsgcnError):
        losses.temporal_smoothness_loss(torch.zeros(4, 2, 17, 3))
    with pytest.raises(WsgcnError):
        estimate_root_translation(np.zeros((2, 17, 3)), np.zeros((2, 16, 2)), F, C)


# -- root estimation ----------------------------------------------------------------------------

@pytest.mark.parametrize("distortion", [False, True])
def test_root_estimation_recovers_a_known_translation(distortion):
    pose, root = poses(16, seed=2)
    k, p = (K, P) if distortion else (None, None)
    kp = project(pose + root[:, None], F, C, k, p)
    est = estimate_root_translation(pose, kp, F, C, k=k, p=p)
    assert est.shape == (16, 3)
    assert np.abs(est - root).max() < 1e-3                     # < 1 mm (it is exact up to rounding)
    est_t = estimate_root_translation(torch.tensor(pose), torch.tensor(kp), F, C, k=k, p=p)
    assert np.abs(est_t.numpy() - root).max() < 1e-3
    # per-sample intrinsics and leading (B, T) dimensions
    f = np.tile(F, (16, 1)) * np.linspace(0.7, 1.3, 16)[:, None]
    kp2 = project(pose + root[:, None], f[:, None], C)
    est2 = estimate_root_translation(pose.reshape(4, 4, 17, 3), kp2.reshape(4, 4, 17, 2), f.reshape(4, 4, 2), C)
    assert np.abs(est2.reshape(16, 3) - root).max() < 1e-3


def test_root_estimation_ignores_missing_and_zero_weight_joints():
    pose, root = poses(4, seed=3)
    kp = project(pose + root[:, None], F, C)
    kp[0, 5] = np.nan
    kp[1, 7] += 300.0
    w = np.ones((4, 17))
    w[1, 7] = 0.0
    est = estimate_root_translation(pose, kp, F, C, weights=w)
    assert np.abs(est - root).max() < 1e-3
    kp[2] = np.nan                                             # no 2D at all: undetermined
    assert np.isnan(estimate_root_translation(pose, kp, F, C, weights=w)[2]).all()


def test_root_estimation_with_noise_is_close_and_refinement_reduces_pixel_error():
    pose, root = poses(64, seed=4)
    rng = np.random.default_rng(0)
    kp = project(pose + root[:, None], F, C) + rng.normal(0, 3.0, (64, 17, 2))
    errs = []
    for refine in (0, 2):
        est = estimate_root_translation(pose, kp, F, C, refine=refine)
        errs.append((np.linalg.norm(project(pose + est[:, None], F, C) - kp, axis=-1) ** 2).mean())
        assert np.median(np.linalg.norm(est - root, axis=-1)) < 0.05      # 3 px noise: cm-level depth
    assert errs[1] <= errs[0] + 1e-9


def test_root_estimation_is_differentiable_in_torch():
    pose, root = poses(3)
    kp = project(pose + root[:, None], F, C)
    pose_t = torch.tensor(pose, requires_grad=True)
    est = estimate_root_translation(pose_t, torch.tensor(kp), torch.tensor(F), torch.tensor(C))
    est[:, 2].sum().backward()
    assert torch.isfinite(pose_t.grad).all() and pose_t.grad.abs().sum() > 0


def test_undistort_inverts_the_distortion():
    pose, root = poses(8)
    cam = pose + root[:, None]
    kp = project(cam, F, C, K, P)
    xy = undistort_normalized(kp, F, C, K, P)
    assert np.abs(xy - cam[..., :2] / cam[..., 2:]).max() < 1e-7


# -- bones, time, anchor ------------------------------------------------------------------------

def test_symmetric_bones_pair_left_with_right():
    pairs = bone_pairs()
    sym = losses.symmetric_bones()
    assert len(sym) == 6
    perm = H36M17.flip_permutation()
    for left, right in sym:
        assert pairs[left][1] in H36M17.left and perm[pairs[left][1]] == pairs[right][1]
        assert perm[pairs[left][0]] == pairs[right][0]


def test_bone_loss_zero_at_the_truth_and_gradients_flow():
    pose, _ = poses(5)
    pose_t = torch.tensor(pose, requires_grad=True)
    ref = losses.bone_lengths(torch.tensor(pose[0]))
    assert losses.bone_length_loss(pose_t, ref).item() < 1e-9
    assert losses.bone_length_loss(pose_t, ref, batch_mean=True).item() < 1e-9
    stretched = pose_t * torch.tensor([1.0, 1.1, 1.0])
    loss = losses.bone_length_loss(stretched, ref)
    assert loss.item() > 0.01
    loss.backward()
    assert torch.isfinite(pose_t.grad).all() and pose_t.grad.abs().sum() > 0
    # asymmetry alone is penalised without a reference
    lopsided = pose.copy()
    lopsided[:, 13] += (lopsided[:, 13] - lopsided[:, 12]) * 0.2      # longer left forearm
    assert losses.bone_length_loss(torch.tensor(lopsided)).item() > 0.001
    with pytest.raises(WsgcnError):
        losses.bone_length_loss(pose_t, ref[:5])


def test_temporal_and_anchor_and_mpjpe_losses():
    pose, _ = poses(1)
    t = torch.arange(10, dtype=torch.float64)[:, None, None]
    steady = torch.tensor(pose) + 0.01 * t * torch.tensor([1.0, 0.0, 0.5])   # constant velocity
    seq = steady[None].clone().requires_grad_(True)
    assert losses.temporal_smoothness_loss(seq).item() < 1e-12
    assert losses.temporal_smoothness_loss(seq, order=1).item() == pytest.approx(0.01 * 1.25**0.5)
    jitter = seq + 0.01 * torch.randn_like(seq)
    loss = losses.temporal_smoothness_loss(jitter)
    loss.backward()
    assert loss.item() > 0.005 and seq.grad.abs().sum() > 0
    a = torch.tensor(pose, requires_grad=True)
    assert losses.mpjpe_loss(a, torch.tensor(pose)).item() == 0.0
    assert losses.anchor_loss(a, torch.tensor(pose)).item() == 0.0
    moved = losses.anchor_loss(a + 0.02, torch.tensor(pose))
    assert moved.item() == pytest.approx(0.02 * 3**0.5)
    moved.backward()
    assert a.grad.abs().sum() > 0


@pytest.mark.skipif(not (DATA / "h36m_3d_17j_world_mm.npz").is_file(), reason="needs ../shared/data/h36m")
def test_reference_bone_lengths_from_human36m():
    ref = losses.reference_bone_lengths(DATA)
    assert ref.shape == (16,)
    sym = losses.symmetric_bones()
    assert np.allclose(ref[sym[:, 0]], ref[sym[:, 1]])
    thigh = ref[list(map(tuple, bone_pairs())).index((1, 2))]
    assert 0.40 < thigh < 0.50                                        # metres
    s1 = losses.reference_bone_lengths(DATA, subjects=("S1",))
    assert not np.allclose(ref, s1) and np.abs(ref - s1).max() < 0.05


def test_temporal_term_scaled_to_a_reference_rate_measures_the_same_motion():
    t50 = torch.arange(0, 2, 1 / 50.0, dtype=torch.float64)
    motion = lambda t: (0.7 * t**2)[:, None, None].expand(-1, 17, 3)  # noqa: E731  constant acceleration
    at50 = losses.temporal_smoothness_loss(motion(t50)[None])
    at10 = losses.temporal_smoothness_loss(motion(t50[::5])[None])
    assert at10 == pytest.approx(25 * at50.item(), rel=1e-9)
    scaled = losses.temporal_smoothness_loss(motion(t50[::5])[None], frame_scale=torch.tensor([(10 / 50.0) ** 2], dtype=torch.float64))
    assert scaled.item() == pytest.approx(at50.item(), rel=1e-9)


# -- whole body: masked MPJPE, bones over the 133-keypoint tree, normals ----------------------------

def wholebody_pose(n=4, seed=0):
    """(n, 133, 3) metres grown along WHOLEBODY133_TREE with random bone directions, pelvis at 0."""
    from wsgcn_cli.skeletons import WHOLEBODY133_PARENTS

    rng = np.random.default_rng(seed)
    pose = np.zeros((n, 133, 3))
    depth = lambda j: 0 if WHOLEBODY133_PARENTS[j] < 0 else 1 + depth(WHOLEBODY133_PARENTS[j])  # noqa: E731
    for j in sorted(range(133), key=depth):                      # parents before children
        par = WHOLEBODY133_PARENTS[j]
        if par >= 0:
            d = rng.normal(size=(n, 3))
            pose[:, j] = pose[:, par] + (0.3 if j < 23 else 0.025) * d / np.linalg.norm(d, axis=-1, keepdims=True)
    return pose - 0.5 * (pose[:, 11:12] + pose[:, 12:13])


def test_mpjpe_masks_joints_by_weight_and_leaves_out_missing_targets():
    target = torch.tensor(wholebody_pose(3))
    pred = (target + 0.01).requires_grad_(True)
    full = losses.mpjpe_loss(pred, target)
    assert full.item() == pytest.approx(0.01 * 3**0.5)
    w = torch.ones(3, 133)
    w[:, 91:] = 0.0
    off = pred.detach().clone()
    off[:, 91:] += 1.0                                           # hands far off, but masked
    assert losses.mpjpe_loss(off, target, w).item() == pytest.approx(full.item())
    missing = target.clone()
    missing[0, 23:91] = float("nan")                             # face not labelled
    loss = losses.mpjpe_loss(pred, missing)
    loss.backward()
    assert loss.item() == pytest.approx(full.item()) and torch.isfinite(pred.grad).all()
    assert (pred.grad[0, 23:91] == 0).all() and pred.grad[1, 23:91].abs().sum() > 0


def test_bone_loss_over_the_wholebody_tree_per_sample_masked_and_symmetric():
    from wsgcn_cli.skeletons import WHOLEBODY133_TREE as TREE

    pairs = bone_pairs(TREE)
    sym = losses.symmetric_bones(TREE)
    perm = TREE.flip_permutation()
    assert len(pairs) == 132 and len(sym) == 61
    for left, right in sym:
        assert {perm[pairs[left][0]], perm[pairs[left][1]]} == set(pairs[right].tolist())
    target = torch.tensor(wholebody_pose(4))
    ref = losses.bone_lengths(target, TREE)                      # per sample (4, 132)
    pose = target.clone().requires_grad_(True)
    assert losses.bone_length_loss(pose, ref, symmetry_weight=0.0, skeleton=TREE).item() < 1e-12
    bent = pose.clone()
    bent[:, 112:] = bent[:, 112:] * 1.3                          # a bigger right hand
    loss = losses.bone_length_loss(bent, ref, symmetry_weight=0.0, skeleton=TREE)
    loss.backward()
    assert loss.item() > 1e-4 and torch.isfinite(pose.grad).all() and pose.grad[:, 112:].abs().sum() > 0
    w = torch.ones(4, 133)
    w[:, 112:] = 0.0                                             # right hand masked: nothing left to see
    assert losses.bone_length_loss(bent, ref, symmetry_weight=0.0, skeleton=TREE, weights=w).item() < 1e-12
    missing = target.clone()
    missing[:, 112:] = float("nan")                              # right hand not labelled
    ref_missing = losses.bone_lengths(missing, TREE)
    assert losses.bone_length_loss(bent, ref_missing, symmetry_weight=0.0, skeleton=TREE).item() < 1e-12
    assert losses.bone_length_loss(bent, ref_missing, symmetry_weight=0.0, skeleton=TREE,
                                   batch_mean=True).item() < 1e-12
    # the symmetry term sees the bigger hand; the masked symmetry term does not
    assert losses.bone_length_loss(bent.detach(), skeleton=TREE).item() > 1e-4
    sym_only = losses.bone_length_loss(bent.detach(), skeleton=TREE, weights=w)
    assert sym_only.item() == pytest.approx(losses.bone_length_loss(target, skeleton=TREE, weights=w).item())
    with pytest.raises(WsgcnError):
        losses.bone_length_loss(pose, ref[:, :100], skeleton=TREE)


def test_normal_loss_is_zero_for_identical_poses_and_positive_for_a_bent_one():
    from wsgcn_cli.skeletons import WHOLEBODY133_TRIPLETS as TRI

    target = torch.tensor(wholebody_pose(4, seed=3))
    pose = target.clone().requires_grad_(True)
    assert losses.normal_loss(pose, target, TRI).item() < 1e-9
    assert losses.normal_loss(pose * 2.0, target, TRI).item() < 1e-9        # scale does not matter
    bent = pose.clone()
    elbow = bent[:, 7:8]
    bent[:, 9] = 2 * elbow[:, 0] - bent[:, 9]                    # left forearm turned through the elbow
    loss = losses.normal_loss(bent, target, TRI)
    loss.backward()
    assert loss.item() > 0.01 and torch.isfinite(pose.grad).all() and pose.grad[:, 9].abs().sum() > 0
    mirrored = target * torch.tensor([-1.0, 1.0, 1.0], dtype=target.dtype)  # same bones, other planes
    assert losses.normal_loss(mirrored, target, TRI).item() > 0.5
    # hand-made: one triplet, a right angle turned about its first edge by 90 degrees
    tri = [(0, 1, 2)]
    t = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]])
    p = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 0, 1]]])
    assert losses.normal_loss(p, t, tri).item() == pytest.approx(1.0)
    straight = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [2, 0.01, 0]]])       # no plane: left out
    assert losses.normal_loss(p, straight, tri).item() == 0.0
    w = torch.ones(1, 3)
    w[0, 2] = 0.0
    assert losses.normal_loss(p, t, tri, weights=w).item() == 0.0
    nan = t.clone()
    nan[0, 2] = float("nan")
    q = p.clone().requires_grad_(True)
    out = losses.normal_loss(q, nan, tri)
    out.backward()
    assert out.item() == 0.0 and torch.isfinite(q.grad).all()
    degenerate = torch.zeros(1, 3, 3, requires_grad=True)       # a collapsed prediction: finite gradient
    losses.normal_loss(degenerate, t, tri).backward()
    assert torch.isfinite(degenerate.grad).all()
    with pytest.raises(WsgcnError):
        losses.normal_loss(p, t, [(0, 1, 3)])
    with pytest.raises(WsgcnError):
        losses.normal_loss(p, t[..., :2], tri)


# -- multi-view consistency ----------------------------------------------------------------------

def test_multiview_consistency_is_zero_for_a_rotated_pose_and_sees_a_depth_error():
    from scipy.spatial.transform import Rotation

    pose, _ = poses(6, seed=3)
    rot = Rotation.random(6, random_state=1).as_matrix()
    a = torch.tensor(pose, dtype=torch.float32)
    b = torch.tensor(np.einsum("nij,nkj->nki", rot, pose), dtype=torch.float32)
    assert np.allclose(losses.rotation_onto(a, b).numpy(), rot, atol=1e-5)
    assert losses.multiview_consistency_loss(a, b).item() < 1e-5
    # one wrist 20 cm deeper in view a: no rotation explains it, the loss says so
    bad = a.clone()
    bad[:, 16, 2] += 0.2
    bad.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # fp32 inside a bf16 training step
        loss = losses.multiview_consistency_loss(bad * 1.0, b)
    assert loss.dtype == torch.float32 and 0.005 < loss.item() < 0.2 / 17 * 2
    loss.backward()
    assert bad.grad[:, 16].abs().sum() > 0
