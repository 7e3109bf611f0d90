"""One constant skeleton per clip (wsgcn_cli/bones.py) and its place in the lift pipeline."""

from pathlib import Path

import numpy as np
import pytest

from wsgcn_cli import bones
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.skeletons import H36M17

SHARED_H36M = Path(__file__).resolve().parents[2] / "shared" / "data" / "h36m"


def _walk(t=40, seed=0):
    """A skeleton with the reference lengths whose bone directions wobble over time, (T, 17, 3) m."""
    rng = np.random.default_rng(seed)
    parents = H36M17.parents
    dirs = rng.normal(size=(17, 3))
    pose = np.zeros((t, 17, 3))
    for i in range(t):
        d = dirs + 0.2 * np.sin(0.3 * i + np.arange(17))[:, None]
        for j in range(1, 17):
            pose[i, j] = pose[i, parents[j]] + d[j] / np.linalg.norm(d[j]) * bones.REFERENCE_BONE_LENGTHS_M[j]
    return pose


def test_constant_bones_fixes_lengths_and_keeps_directions():
    truth = _walk()
    rng = np.random.default_rng(1)
    # per-frame length noise of 10 %, overall 5 % too small, as a lifter's output
    noisy = np.zeros_like(truth)
    factors = 0.95 * (1 + 0.1 * rng.standard_normal((len(truth), 17)))
    for j in range(1, 17):
        p = H36M17.parents[j]
        noisy[:, j] = noisy[:, p] + (truth[:, j] - truth[:, p]) * factors[:, j, None]
    noisy[5] = np.nan  # a frame without a pose stays so
    out = bones.constant_bones(noisy, bones.BoneOptions(mode="clip", scale="reference"))
    lengths = bones.bone_lengths(out)
    ok = np.isfinite(out).all(axis=(1, 2))
    assert not ok[5] and ok.sum() == len(out) - 1
    assert np.allclose(lengths[ok], lengths[ok][0], atol=1e-9)  # constant over the clip
    assert np.allclose(lengths[ok][0], lengths[ok][0][H36M17.flip_permutation()])  # symmetric
    assert lengths[ok][0].sum() == pytest.approx(bones.REFERENCE_BONE_LENGTHS_M.sum())
    parents = np.asarray(H36M17.parents)
    d_in = noisy[ok][:, 1:] - noisy[ok][:, parents[1:]]
    d_out = out[ok][:, 1:] - out[ok][:, parents[1:]]
    cos = (d_in * d_out).sum(-1) / np.linalg.norm(d_in, axis=-1) / np.linalg.norm(d_out, axis=-1)
    assert cos.min() > 1 - 1e-9  # every bone keeps its direction
    # closer to the truth than the per-frame bones
    err = lambda p: np.linalg.norm(p[ok] - truth[ok], axis=-1).mean()  # noqa: E731
    assert err(out) < 0.5 * err(noisy)


def test_lifted_scale_keeps_the_clip_size_and_none_is_identity():
    pose = _walk() * 0.9
    out = bones.constant_bones(pose, bones.BoneOptions(mode="clip", scale="lifted"))
    assert bones.bone_lengths(out)[0].sum() == pytest.approx(0.9 * bones.REFERENCE_BONE_LENGTHS_M.sum(), rel=1e-6)
    assert bones.constant_bones(pose, bones.BoneOptions(mode="none")) is pose
    empty = np.full((3, 17, 3), np.nan)
    assert bones.constant_bones(empty) is empty
    with pytest.raises(WsgcnError, match="no frame"):
        bones.clip_bone_lengths(empty)


@pytest.mark.parametrize("table, match", [({"mode": "rigid"}, "mode"), ({"scale": "huge"}, "scale"),
                                          ({"lengths": 1}, "unknown")])
def test_bad_bones_table(table, match):
    with pytest.raises(WsgcnError, match=match):
        bones.BoneOptions.from_spec(table)


def test_reference_matches_the_training_subjects():
    if not (SHARED_H36M / "h36m_3d_17j_world_mm.npz").is_file():
        pytest.skip("Human3.6M 3D not in ../shared/data/h36m")
    from wsgcn_cli.train.losses import bone_pairs, reference_bone_lengths

    ref = reference_bone_lengths(SHARED_H36M, stride=1)
    parents = H36M17.parents
    by_child = np.zeros(17)
    for (a, b), length in zip(bone_pairs(), ref):
        by_child[b if parents[b] == a else a] = length
    assert np.allclose(by_child, bones.REFERENCE_BONE_LENGTHS_M, atol=1e-4)


def test_lift_pipelines_give_one_skeleton_per_clip():
    """The default pipeline's whole-clip steps end with constant bones (what BVH needs)."""
    from wsgcn_cli.pipeline import Pipeline

    pipe = Pipeline.from_file("body17", device="cpu")
    assert pipe.bones.mode == "clip" and pipe.bones.scale == "reference"
