import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.io import posefile
from wsgcn_cli.io.bvh import BVH_NAMES, HELPERS, read_bvh, rest_offsets, write_bvh
from wsgcn_cli.skeletons import H36M17, bone_lengths

#: Bone lengths (m) in skeletons.bone_pairs order (bone b ends at joint b + 1), left = right.
LENGTHS = np.array([0.13, 0.45, 0.44, 0.13, 0.45, 0.44, 0.24, 0.25, 0.11, 0.12,
                    0.16, 0.28, 0.25, 0.16, 0.28, 0.25])


def random_bone_poses(t, seed=0):
    """(t, 17, 3) poses with the constant LENGTHS, every bone in an independent random
    direction (so no body part moves rigidly), the pelvis wandering around."""
    rng = np.random.default_rng(seed)
    p = np.zeros((t, 17, 3))
    p[:, 0] = rng.normal(size=(t, 3)) + [0, 1, 0]
    for j in range(1, 17):
        d = rng.normal(size=(t, 3))
        p[:, j] = p[:, H36M17.parents[j]] + LENGTHS[j - 1] * d / np.linalg.norm(d, axis=1, keepdims=True)
    return p


def fk_poses(t, seed=0):
    """(t, 17, 3) poses by forward kinematics of random joint rotations on the T-pose."""
    off = rest_offsets(LENGTHS)
    rots = [Rotation.random(t, random_state=seed + j) for j in range(17)]
    p = np.zeros((t, 17, 3))
    glob = [None] * 17
    p[:, 0] = np.random.default_rng(seed).normal(size=(t, 3))
    glob[0] = rots[0]
    for j in range(1, 17):
        par = H36M17.parents[j]
        p[:, j] = p[:, par] + glob[par].apply(off[j])
        glob[j] = glob[par] * rots[j]
    return p


def round_trip(tmp_path, poses, fps=30.0):
    path = write_bvh(tmp_path / "clip.bvh", poses, fps)
    return read_bvh(path).h36m_positions()


@pytest.mark.parametrize("make", [random_bone_poses, fk_poses])
def test_round_trip_within_1mm(tmp_path, make):
    poses = make(200)
    back = round_trip(tmp_path, poses)
    err = np.linalg.norm(back - poses, axis=-1)
    assert err.max() < 1e-3, err.max()  # metres
    assert not list(tmp_path.glob(".*"))  # written atomically, no temporary left


def test_straight_limbs_and_turning(tmp_path):
    """Degenerate bend planes (straight arms and legs, the T-pose itself) and a person
    turning 720 degrees: exact positions, finite and continuous channels."""
    t = 240
    rest = np.zeros((17, 3))
    off = rest_offsets(LENGTHS)
    for j in range(1, 17):
        rest[j] = rest[H36M17.parents[j]] + off[j]
    turn = Rotation.from_euler("y", np.linspace(0, 720, t)[:, None], degrees=True)
    lower = np.clip(np.linspace(-30, 120, t), 0, 90)  # straight arms from T-pose down to hanging
    poses = np.zeros((t, 17, 3))
    for i in range(t):
        pose = rest.copy()
        for sho, sign in ((11, -1), (14, 1)):
            arm = [sho + 1, sho + 2]
            pose[arm] = Rotation.from_euler("z", sign * lower[i], degrees=True).apply(rest[arm] - rest[sho]) + rest[sho]
        poses[i] = turn[i].apply(pose) + [0.0, 0.9, 0.0]
    back = round_trip(tmp_path, poses)
    assert np.abs(back - poses).max() < 1e-5
    motion = read_bvh(tmp_path / "clip.bvh").motion
    assert np.isfinite(motion).all()
    assert np.abs(np.diff(motion[:, 3:], axis=0)).max() < 10.0  # degrees per frame: unwrapped


def test_header_rest_pose_and_units(tmp_path):
    rng = np.random.default_rng(1)
    poses = random_bone_poses(101)
    # vary the bone lengths: the rest pose takes the median, left and right averaged
    scale = 1.0 + 0.05 * rng.standard_normal((101, 17, 1))
    scaled = poses.copy()
    for j in range(1, 17):
        par = H36M17.parents[j]
        scaled[:, j] = scaled[:, par] + (poses[:, j] - poses[:, par]) * scale[:, j]
    path = write_bvh(tmp_path / "c.bvh", scaled, 50.0)
    clip = read_bvh(path)
    assert clip.frame_time == pytest.approx(0.02) and clip.motion.shape[0] == 101
    assert clip.names[0] == "Hips" and clip.channels[0][:3] == ["Xposition", "Yposition", "Zposition"]
    ends = [n for n in clip.names if n.endswith("_End")]
    assert sorted(ends) == sorted(f"{BVH_NAMES[H36M17.parents[j]]}_End" for j in (3, 6, 10, 13, 16))
    assert set(HELPERS) <= set(clip.names)
    for name in HELPERS:
        assert np.all(clip.offsets[clip.names.index(name)] == 0)
    med = np.median(bone_lengths(scaled), axis=0)
    off = {n: clip.offsets[i] for i, n in enumerate(clip.names)}
    # T-pose: arms along +-X, legs down, spine up; left/right symmetric median lengths
    for left, right in zip(H36M17.left, H36M17.right):
        want = 0.5 * (med[left - 1] + med[right - 1])
        name_l = BVH_NAMES[left] if left not in (6, 13) else f"{BVH_NAMES[left - 1]}_End"
        name_r = BVH_NAMES[right] if right not in (3, 16) else f"{BVH_NAMES[right - 1]}_End"
        assert np.linalg.norm(off[name_l]) == pytest.approx(want, abs=2e-6)
        assert np.allclose(off[name_l] * [-1, 1, 1], off[name_r], atol=2e-6)
    assert off["LShoulder"][0] > 0 and off["RElbow"][0] < 0 and off["LKnee"][1] < 0 and off["Thorax"][1] > 0
    # the root's translation is the pelvis, metres, Y up
    assert np.allclose(clip.motion[:, :3], scaled[:, 0], atol=2e-6)
    # positions differ from the input by bone-length variation only (directions exact)
    back = clip.h36m_positions()
    for j in range(1, 17):
        par = H36M17.parents[j]
        d_in = scaled[:, j] - scaled[:, par]
        d_out = back[:, j] - back[:, par]
        cos = np.sum(d_in * d_out, -1) / np.linalg.norm(d_in, axis=-1) / np.linalg.norm(d_out, axis=-1)
        assert cos.min() > 1 - 1e-9


def test_missing_frames_hold_the_last_valid_pose(tmp_path):
    poses = fk_poses(10)
    given = poses.copy()
    given[[0, 1]] = np.nan      # before the first valid frame: the first valid pose
    given[5, 7] = np.nan        # one joint missing: the whole frame is held
    given[8:] = np.nan
    back = round_trip(tmp_path, given)
    for i, src in ((0, 2), (1, 2), (5, 4), (8, 7), (9, 7), (3, 3)):
        assert np.abs(back[i] - poses[src]).max() < 1e-5, i


def test_errors(tmp_path):
    with pytest.raises(WsgcnError, match="no frame"):
        write_bvh(tmp_path / "a.bvh", np.full((3, 17, 3), np.nan), 30)
    with pytest.raises(WsgcnError, match="17, 3"):
        write_bvh(tmp_path / "a.bvh", np.zeros((3, 16, 3)), 30)
    with pytest.raises(WsgcnError, match="frame rate"):
        write_bvh(tmp_path / "a.bvh", fk_poses(2), 0)
    with pytest.raises(WsgcnError, match="does not exist"):
        write_bvh(tmp_path / "nope" / "a.bvh", fk_poses(2), 30)
    bad = tmp_path / "bad.bvh"
    bad.write_text("hello")
    with pytest.raises(WsgcnError, match="not a BVH"):
        read_bvh(bad)
    with pytest.raises(WsgcnError, match="not found"):
        read_bvh(tmp_path / "missing.bvh")
    assert not list(tmp_path.glob("*.bvh.*")) and not (tmp_path / "a.bvh").exists()


def _posefile(world):
    t = len(world)
    return posefile.PoseFile(
        keypoints_2d=np.zeros((t, 17, 2)), scores=np.ones((t, 17)), keypoints_3d=world - world[:, :1],
        times=np.arange(t) / 30.0, fps=30.0, image_size=(640, 480),
        root_camera_m=np.zeros((t, 3)), keypoints_3d_world=world, camera_to_world=np.eye(4),
        foot_contact=np.zeros((t, 2), bool))


def test_posefile_write_bvh(tmp_path):
    poses = fk_poses(20).astype(np.float32)
    path = posefile.write(_posefile(poses), tmp_path / "clip.wsgcn.bvh")
    assert np.abs(read_bvh(path).h36m_positions() - poses).max() < 1e-5
    no_world = _posefile(poses)
    no_world.root_camera_m = no_world.keypoints_3d_world = no_world.camera_to_world = no_world.foot_contact = None
    with pytest.raises(WsgcnError, match="world") as e:
        posefile.write(no_world, tmp_path / "x.bvh")
    assert "\n" not in str(e.value)
    assert "bvh" in posefile.FORMATS


def test_twist_follows_a_turning_bend_plane(tmp_path):
    """The forearm circles the upper arm at 90 degrees of elbow flexion: the upper arm's
    twist turns with the bend plane, 3 degrees a frame, without 180-degree flips."""
    t = 120
    off = rest_offsets(LENGTHS)
    rest = np.zeros((17, 3))
    for j in range(1, 17):
        rest[j] = rest[H36M17.parents[j]] + off[j]
    poses = np.repeat(rest[None], t, axis=0)
    phi = np.radians(np.arange(t) * 3.0)
    poses[:, 13] = poses[:, 12] + LENGTHS[12] * np.stack([0 * phi, np.cos(phi), np.sin(phi)], axis=1)
    assert np.abs(round_trip(tmp_path, poses) - poses).max() < 1e-5
    clip = read_bvh(tmp_path / "clip.bvh")
    col = 0
    for name, chans in zip(clip.names, clip.channels):
        if name == "LShoulder":
            break
        col += len(chans)
    rot = Rotation.from_euler("".join(c[0] for c in chans), clip.motion[:, col:col + 3], degrees=True)
    steps = np.degrees((rot[1:] * rot[:-1].inv()).magnitude())
    assert steps.max() < 3.5 and steps.min() > 2.5
