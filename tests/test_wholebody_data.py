"""Composite whole-body data (wsgcn_cli.data.wholebody), the H3WB reader and its metrics.

The recipe's geometry is checked on a synthetic body with synthetic parts (always runs);
the real sources (``../shared/data``) are checked where present, else skipped.
"""

import numpy as np
import pytest
import torch

from wsgcn_cli import metrics
from wsgcn_cli.camera import camera_to_world, project
from wsgcn_cli.data import h3wb, wholebody as wb
from wsgcn_cli.errors import WsgcnError

ROOT = wb.default_root()
HAVE_SOURCES = all((ROOT / p).is_file() for p in (
    "h36m/h36m_3d_17j_world_mm.npz", "h36m/h36m_cameras.json", "hands_fpha/fpha_hands_21j_mm.npz",
    "face_aflw2000_3d/aflw2000_3d_68.npz"))
needs_sources = pytest.mark.skipif(not HAVE_SOURCES, reason="../shared/data (Human3.6M, FPHA, AFLW2000-3D) absent")
needs_h3wb = pytest.mark.skipif(not h3wb.default_path().is_file(), reason="../shared/data/h3wb fixture absent")


def _body(b=32, seed=0):
    """Standing Human3.6M-17 bodies (B, 17, 3) m, z up, facing -y (left = +x), jittered;
    the elbows bent forward, joint 9 in front of the thorax-head line."""
    g = torch.Generator().manual_seed(seed)
    base = torch.tensor([[0, 0, .95], [-.13, 0, .95], [-.13, -.03, .5], [-.13, 0, .06], [.13, 0, .95],
                         [.13, -.03, .5], [.13, 0, .06], [0, 0, 1.2], [0, 0, 1.45], [0, -.08, 1.55],
                         [0, .02, 1.68], [.17, 0, 1.42], [.2, 0, 1.12], [.22, -.2, 1.0], [-.17, 0, 1.42],
                         [-.2, 0, 1.12], [-.22, -.2, 1.0]])
    return base + 0.01 * torch.randn(b, 17, 3, generator=g)


def _hand():
    """A canonical right hand (21, 3) m: distal +x, palmar +y, radial (thumb side) +z."""
    pts = [[0, 0, 0]]
    for finger, z in enumerate((0.03, 0.02, 0.0, -0.02, -0.035)):
        start = 0.02 if finger == 0 else 0.08
        pts += [[start + 0.025 * k, 0.005 * k + (0.01 if finger == 0 else 0), z + (0.01 * k if finger == 0 else 0)]
                for k in range(4)]                                   # the thumb on the palmar side
    return torch.tensor(pts)


def _face():
    """A canonical face (68, 3) (x left, y up, z forward), ex-ex units: a flattened oval
    with the 300-W eye corners at +-0.5, nose tip forward, chin below."""
    f = torch.zeros(68, 3)
    t = torch.linspace(-1, 1, 17)
    f[:17] = torch.stack([0.85 * t, -0.2 - 1.0 * (1 - t.abs()), -0.7 + 0.9 * (1 - t.abs())], -1)  # jaw, right to left
    f[36], f[45], f[39], f[42] = torch.tensor([-.5, 0, 0]), torch.tensor([.5, 0, 0]), torch.tensor([-.15, 0, .05]), \
        torch.tensor([.15, 0, .05])
    f[37:39], f[40:42] = f[36] * 0.7, f[39] * 1.5
    f[43:45], f[46:48] = f[45] * 0.7, f[42] * 1.5
    f[27:31] = torch.tensor([[0, 0.05, 0.25], [0, -0.1, 0.35], [0, -0.2, 0.45], [0, -0.3, 0.56]])
    f[48:68] = torch.tensor([0, -0.75, 0.25])
    f[8] = torch.tensor([0, -1.25, 0.27])
    return f


def _compose(b=32, seed=0):
    body = _body(b, seed)
    g = torch.Generator().manual_seed(seed)
    hand = _hand().expand(b, 21, 3)
    return body, wb.compose(body, hand, hand, _face().expand(b, 68, 3), g)


def _det(w, base):
    """det[index_mcp - wrist, pinky_mcp - wrist, thumb_cmc - wrist] per pose (> 0: right hand)."""
    return torch.det(torch.stack([w[:, base + 5] - w[:, base], w[:, base + 17] - w[:, base],
                                  w[:, base + 1] - w[:, base]], -1))


def test_composition_puts_hands_on_the_wrists_along_the_forearm_with_mirrored_chirality():
    body, w = _compose()
    assert w.shape == (32, 133, 3) and torch.isfinite(w).all()
    assert torch.equal(w[:, 91], body[:, 13]) and torch.equal(w[:, 112], body[:, 16])  # wrist-to-hand-root 0
    assert torch.equal(w[:, 9], body[:, 13]) and torch.equal(w[:, 11], body[:, 4])     # body joints direct
    for wrist, elbow, base in ((9, 7, 91), (10, 8, 112)):
        forearm = torch.nn.functional.normalize(w[:, wrist] - w[:, elbow], dim=-1)
        hand = torch.nn.functional.normalize(w[:, base + 9] - w[:, base], dim=-1)
        assert ((forearm * hand).sum(-1) > 0.7).all()                  # continues the forearm (wrist flex <= 35 deg)
        size = torch.linalg.vector_norm(w[:, base + 9] - w[:, base], dim=-1)
        assert ((size > 0.06) & (size < 0.11)).all()                   # the 8 cm palm, scaled by body size 0.85-1.15
    assert (_det(w, 112) > 0).all() and (_det(w, 91) < 0).all()        # right stays right, left is its mirror
    # Mirror symmetry: the left hand is the right hand reflected (same bone lengths).
    bones = lambda base: torch.linalg.vector_norm(w[:, base + 1:base + 21] - w[:, base:base + 20], dim=-1)  # noqa: E731
    torch.testing.assert_close(bones(91) / bones(91)[:, 8:9], bones(112) / bones(112)[:, 8:9], atol=1e-5, rtol=0)


def test_face_on_the_head_facing_forward_and_feet_on_the_floor():
    body, w = _compose()
    forward = torch.tensor([0.0, -1.0, 0.0])
    face = w[:, 23:91]
    assert (torch.linalg.vector_norm(face.mean(1) - body[:, 9], dim=-1) < 0.15).all()     # on the head
    assert ((w[:, 0] - body[:, 9]) @ forward > 0.03).all()                                  # nose in front of joint 9
    assert ((face[:, 45] - face[:, 36])[:, 0] > 0.07).all()                                # subject's left eye on +x (left)
    assert (face[:, 8, 2] < face[:, 27, 2]).all() and torch.equal(w[:, 0], face[:, 30])    # chin below nasion; nose tip
    ex = torch.linalg.vector_norm(face[:, 45] - face[:, 36], dim=-1)
    assert ((ex > 0.9 * 0.85 * wb.FACE_EYE_CORNER_M) & (ex < 1.15 * 1.15 * wb.FACE_EYE_CORNER_M)).all()
    assert ((w[:, 3] - w[:, 4])[:, 0] > 0.1).all()                                          # ears apart, left on +x
    for ankle, toe, heel in ((15, 17, 19), (16, 20, 22)):
        assert ((w[:, toe] - w[:, ankle]) @ forward > 0.15).all()                         # toes in front of the ankle
        assert ((w[:, heel] - w[:, ankle]) @ forward < 0.03).all()                        # heel at/behind it
        assert (w[:, [toe, heel], 2] < w[:, ankle:ankle + 1, 2] + 0.01).all()              # not above the ankle
    assert ((w[:, 18] - w[:, 17])[:, 0] > 0).all() and ((w[:, 21] - w[:, 20])[:, 0] < 0).all()  # small toes outside


def test_labelled_mask_flags_the_synthesised_keypoints_and_bad_shapes_raise():
    assert wb.LABELLED.shape == (133,) and not wb.LABELLED[[1, 2, 3, 4, 17, 18, 19, 20, 21, 22]].any()
    assert wb.LABELLED.sum() == 123
    with pytest.raises(WsgcnError, match="compose needs"):
        wb.compose(_body(2), _hand().expand(2, 21, 3), _hand().expand(3, 21, 3), _face().expand(2, 68, 3),
                   torch.Generator())


def test_detector_noise_drops_whole_parts_as_nan_with_score_zero():
    g = torch.Generator().manual_seed(0)
    uv = 500 + 100 * torch.randn(64, 133, 2, generator=g)
    kp, score = wb.DetectorNoise(drop_face=1.0, drop_hand=1.0, drop_foot=0.0, drop_joint=0.0).apply(uv, g)
    assert torch.isnan(kp[:, 23:]).all() and (score[:, 23:] == 0).all()
    assert torch.isfinite(kp[:, :23]).all() and (score[:, :23] > 0).all() and (score <= 1).all()
    kp, score = wb.NO_NOISE.apply(uv, g)
    assert torch.equal(kp, uv) and (score[:, 18] == 0.5).all() and score.sum() == 64 * (133 - 1)  # small toes flagged
    kp, score = wb.DetectorNoise().apply(uv, g)
    assert (torch.isnan(kp).any(-1) == (score == 0)).all()


@pytest.fixture(scope="module")
def test_split():
    return wb.WholeBodyComposite("test", stride=100)


@needs_sources
def test_sources_are_split_and_canonical():
    hands = wb.load_fpha_hands(wb.FPHA_TEST_SUBJECTS)
    assert hands.shape == (14131, 21, 3) and hands.dtype == np.float32                  # subject 6, glitches dropped
    np.testing.assert_allclose(hands[:, 0], 0, atol=1e-7)
    np.testing.assert_allclose(hands[:, 9, 1:], 0, atol=1e-6)                           # middle MCP on the distal axis
    assert np.median(hands[:, 9, 0]) == pytest.approx(0.069, abs=0.01)                  # metres
    faces = wb.load_aflw_faces("test")
    assert faces.shape == (399, 68, 3)                                                   # 1600-1999 without 1902
    assert (faces[:, 30, 2] > 0.2).mean() > 0.99                                         # nose tip forward
    assert np.median(np.linalg.norm(faces[:, 45] - faces[:, 36], axis=-1)) == pytest.approx(1.0, abs=0.05)
    with pytest.raises(WsgcnError, match="FPHA subject"):
        wb.load_fpha_hands((7,))


@needs_sources
def test_batches_project_through_the_subjects_h36m_cameras(test_split):
    from wsgcn_cli.data import h36m

    d = test_split
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(len(d), (64,), generator=g)
    bt = d.batch(idx, g, virtual_probability=0.0, noise=wb.NO_NOISE)
    assert bt.pose3d.shape == (64, 133, 3) and bt.kp2d.shape == (64, 133, 2) and bt.score.shape == (64, 133)
    torch.testing.assert_close(bt.pose3d[:, [11, 12]].mean(1), torch.zeros(64, 3), atol=1e-6, rtol=0)
    height = bt.pose3d[..., 1].amax(1) - bt.pose3d[..., 1].amin(1)
    assert ((height > 0.3) & (height < 2.3)).all()                                        # metres
    cams = h36m.load_cameras(ROOT / "h36m")
    for i in range(0, 64, 8):
        cam = cams[(d.subjects[bt.subject[i]], h36m.CAMERAS[bt.camera[i]])]
        xc = (bt.pose3d[i] + bt.root[i]).double().numpy() * 1000
        np.testing.assert_allclose(cam.project(xc), bt.kp2d_clean[i].numpy(), atol=0.05)   # camera.project
        pelvis = camera_to_world(bt.root[i].double().numpy() * 1000, cam.R, cam.T)
        np.testing.assert_allclose(pelvis, d.body[idx[i], 0].double().numpy() * 1000, atol=1.0)  # H36M rounds to 1 mm
        assert tuple(bt.image_size[i].tolist()) == (cam.width, cam.height)


@needs_sources
def test_virtual_views_and_noisy_batches(test_split):
    d = test_split
    g = torch.Generator().manual_seed(2)
    idx = torch.randint(len(d), (256,), generator=g)
    bt = d.batch(idx, g, virtual_probability=1.0, noise=wb.NO_NOISE)
    assert bt.virtual.all() and (bt.camera == -1).all() and (bt.k == 0).all()
    uv = project(bt.pose3d + bt.root[:, None], bt.focal[:, None], bt.principal[:, None])
    torch.testing.assert_close(uv, bt.kp2d_clean, atol=0.05, rtol=0)
    bt = d.batch(idx, g, virtual_probability=0.5, noise=wb.DetectorNoise(drop_face=0.5))
    missing = torch.isnan(bt.kp2d).any(-1)
    assert (missing == (bt.score == 0)).all()
    assert 0.3 < missing[:, 23:91].all(1).float().mean() < 0.7                            # whole faces dropped
    assert (missing[:, 23:91].all(1) | ~missing[:, 23:91].any(1)).all()
    err = torch.linalg.vector_norm(bt.kp2d - bt.kp2d_clean, dim=-1)[~missing]
    assert 0.5 < err.median() < 20                                                        # pixels of noise
    assert bt.labelled.dtype == torch.bool and int(bt.labelled.sum()) == 123


@needs_h3wb
def test_h3wb_fixture_frames_agree():
    s = h3wb.load()
    assert len(s) == 4 and s.pose3d.shape == (4, 133, 3) and s.kp2d.shape == (4, 133, 2)
    assert len(set(s.sample_id)) == 1 and len(h3wb.load(unique=True)) == 1               # one pose, four names
    np.testing.assert_allclose(project(s.pose3d, s.f[:, None], s.c[:, None]), s.kp2d, atol=0.05)  # pinhole through K
    np.testing.assert_allclose(s.world @ s.R.transpose(0, 2, 1) + s.T[:, None], s.pose3d, atol=1e-5)
    z = s.pose3d[..., 2]
    assert (z > 3.5).all() and (z < 5.5).all()                                            # metres in front of the camera


def test_h3wb_metric_is_zero_on_identity_and_known_on_offsets():
    g = np.random.default_rng(0)
    gt = g.normal(size=(5, 133, 3))
    r = metrics.h3wb_summary(gt, gt)
    assert r["mpjpe_mm"] == 0 and all(v == 0 for v in r["per_part"].values()) and r["frames"] == 5
    assert metrics.h3wb_summary(gt + 1.0, gt)["mpjpe_mm"] == pytest.approx(0, abs=1e-9)    # root-aligned
    pred = gt.copy()
    pred[:, 23:91] += [0.01, 0, 0]                       # the face 1 cm off; the nose (0) stays
    r = metrics.h3wb_summary(pred, gt)
    assert r["per_part"]["face"] == pytest.approx(10.0) and r["per_part"]["body"] == pytest.approx(0, abs=1e-9)
    assert r["mpjpe_mm"] == pytest.approx(10.0 * 68 / 133)
    pred = gt.copy()
    pred[:, 112:133] += [0, 0.02, 0]                     # the right hand 2 cm off, with its wrist
    r = metrics.h3wb_summary(pred, gt)["per_part"]
    assert r["right_hand"] == pytest.approx(0, abs=1e-9) and r["right_hand_pelvis"] == pytest.approx(20.0)
    assert r["hands_pelvis"] == pytest.approx(10.0)
    with pytest.raises(WsgcnError, match="133"):
        metrics.wholebody_mpjpe(gt[:, :17], gt[:, :17])
