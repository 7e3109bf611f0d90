"""BVH (Biovision hierarchy) export of H36M-17 poses in wsgcn's world frame, and a reader.

The file (format: Meredith & Maddock, "Motion capture file formats explained", 2001):

* **Hierarchy**: the H36M-17 tree (``skeletons.H36M17_PARENTS``) rooted at the pelvis,
  joint ``Hips``. Every non-leaf H36M-17 joint is a ``JOINT`` named as in H36M-17
  (``Hip`` -> ``Hips``, ``Neck/Nose`` -> ``Neck``; :data:`BVH_NAMES`); the leaves
  (``RFoot``, ``LFoot`` = ankles, ``Head`` = head top, ``LWrist``, ``RWrist``) are
  ``End Site`` s of their parents. Four helper joints with a zero ``OFFSET`` sit in
  front of the hips and shoulders (:data:`HELPERS`: ``RPelvis``, ``LPelvis`` at the
  pelvis, ``LCollar``, ``RCollar`` at the thorax, like the hip and collar joints of CMU
  BVHs): they turn the pelvis -> hip and thorax -> shoulder bones on their own, because
  the keypoints of one body part do not move rigidly (the hip line does not stay
  perpendicular to the spine), so one pelvis or thorax rotation could not place them all.
* **Frame and unit**: wsgcn's world frame, **metres**, **Y up**, floor at y = 0, the
  person's rest pose facing +Z (right-handed, so the person's left is +X). Blender's
  importer (defaults ``axis_up='Y'``, ``axis_forward='-Z'``, scale 1) shows it Z-up, in
  metres, Blender (x, y, z) = BVH (x, -z, y).
* **Rest pose** (the ``OFFSET`` s): a T-pose (arms along +-X, legs straight down, spine
  and head straight up, hips along +-X) with the clip's median bone lengths, left and
  right averaged so the skeleton is symmetric. The root's ``OFFSET`` is 0.
* **Motion**: root ``Xposition Yposition Zposition`` = the pelvis (joint 0) of
  ``keypoints_3d_world``, then Euler angles in degrees. Rotation channel order: the root,
  spine, neck, pelvis helpers and legs ``Yrotation Zrotation Xrotation`` (heading / twist
  outermost, sideways in the middle), the collars and arms ``Zrotation Xrotation
  Yrotation``; as in every BVH
  the channel order is the intrinsic order, local = R1 @ R2 @ R3.

Rotations come from the positions. Each rotating joint gets a per-frame orthonormal
frame built from two directions: the pelvis (``Hips``) from pelvis -> Spine and the hip
line (RHip -> LHip); ``Spine``, ``Thorax`` and ``Neck`` from their bone and the shoulder
line (RShoulder -> LShoulder): the chest's twist comes from the shoulders; the helpers
from their bone and the pelvis' / thorax' up axis; each leg and arm segment from its
direction and its limb's bend-plane normal (thigh x shank, upper arm x forearm),
blended towards a body axis when the limb is nearly straight (the pelvis' lateral axis
for legs; upper arm x thorax forward, then the thorax' up axis, for arms). A joint's
world rotation is ``frame_t @ frame_rest^T`` (the same construction on the T-pose),
its BVH rotation that relative to its parent's (``scipy.spatial.transform.Rotation``),
Euler angles unwrapped over time. Every bone's direction is reproduced exactly, so
forward kinematics gives back the input positions up to the difference between each
frame's bone lengths and the rest pose's (median, left/right averaged) lengths.

Frames without a pose (any NaN joint) hold the last valid pose (the first valid pose
before it). The BVH has one frame per input frame at a constant ``Frame Time`` of
1 / fps (BVH has no per-frame times).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.io.atomic import atomic_open
from wsgcn_cli.skeletons import H36M17, bone_lengths

#: BVH joint name of each H36M-17 joint; the leaves' names are not written (End Sites).
BVH_NAMES = tuple({"Hip": "Hips", "Neck/Nose": "Neck"}.get(n, n) for n in H36M17.joint_names)
_PARENTS = H36M17.parents
_LEAVES = tuple(j for j in range(17) if j not in _PARENTS)  # 3, 6, 10, 13, 16
#: Zero-offset helper joints: name -> the H36M-17 joint whose bone (from its parent) it turns.
HELPERS = {"RPelvis": 1, "LPelvis": 4, "LCollar": 11, "RCollar": 14}
_X, _Y = np.eye(3)[0], np.eye(3)[1]
#: Rest (T-pose) direction of each joint's offset from its parent; row 0 is unused.
_REST_DIR = np.array([[0, 0, 0], [-1, 0, 0], [0, -1, 0], [0, -1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0],
                      [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0],
                      [-1, 0, 0], [-1, 0, 0], [-1, 0, 0]], float)


@dataclass(frozen=True)
class _Node:
    name: str
    parent: int           # parent node index, -1 for the root
    bone_of: int          # H36M-17 joint whose offset from its parent this node carries (0: none)
    end: bool             # End Site
    order: str = "YZX"    # rotation channel order (intrinsic)


def _build_nodes() -> tuple[_Node, ...]:
    """The BVH nodes in file order: the H36M-17 tree, leaves as End Sites, and a
    zero-offset helper joint (:data:`HELPERS`) in front of each hip and shoulder."""
    helper_of = {j: name for name, j in HELPERS.items()}
    nodes: list[_Node] = []

    def add(j: int, parent: int):
        order = "ZXY" if j in (11, 12, 14, 15) else "YZX"
        if j in helper_of:  # helper at the parent joint, rotating the bone parent -> j
            nodes.append(_Node(helper_of[j], parent, 0, False, order))
            parent = len(nodes) - 1
        nodes.append(_Node(BVH_NAMES[j], parent, j, j in _LEAVES, order))
        me = len(nodes) - 1
        for c in range(17):
            if _PARENTS[c] == j:
                add(c, me)

    add(0, -1)
    return tuple(nodes)


_NODES = _build_nodes()
_ROT_NODES = tuple(i for i, n in enumerate(_NODES) if not n.end)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v), where=n > 1e-12)


def _ortho(v: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Unit part of ``v`` perpendicular to unit ``d`` (..., 3); any perpendicular if none."""
    p = v - np.sum(v * d, -1, keepdims=True) * d
    bad = np.linalg.norm(p, axis=-1) < 1e-9
    if bad.any():  # v parallel to d: any perpendicular vector
        alt = np.where(np.abs(d[bad] @ _X)[:, None] < 0.9, _X, _Y)
        p[bad] = alt - np.sum(alt * d[bad], -1, keepdims=True) * d[bad]
    return _unit(p)


def _blend(v: np.ndarray, fallback: np.ndarray, full_at_deg: float = 20.0) -> np.ndarray:
    """Direction of ``v`` (a cross product of unit vectors, norm = sin of their angle),
    blended towards unit ``fallback`` as that angle falls below ``full_at_deg``: a limb's
    bend-plane normal, which is noise when the limb is nearly straight. ``v``'s sign is
    kept (knees and elbows bend one way; turning it towards the fallback made the twist
    flip by 180 degrees whenever the two were near perpendicular)."""
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    w = np.clip(s / np.sin(np.radians(full_at_deg)), 0.0, 1.0)
    return w * _unit(v) + (1 - w) * fallback


def _frame(a: np.ndarray, b: np.ndarray, a_axis: int) -> np.ndarray:
    """Right-handed orthonormal frames (..., 3, 3): column ``a_axis`` (0 = x or 1 = y)
    along ``a``, the other of x / y towards ``b``, z = x cross y."""
    a = _unit(a)
    b = _ortho(b, a)
    x, y = (a, b) if a_axis == 0 else (b, a)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def _segment_frame(d: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Frames (..., 3, 3) with columns: segment direction ``d``, normal ``n`` made
    perpendicular to it, and their cross product."""
    d = _unit(d)
    n = _ortho(n, d)
    return np.stack([d, n, np.cross(d, n)], axis=-1)


def _frames(p: np.ndarray) -> list:
    """Orthonormal frame (T, 3, 3) of every non-End-Site node (None for End Sites) of
    poses ``p`` (T, 17, 3)."""
    seg = lambda j: p[:, j] - p[:, _PARENTS[j]]  # noqa: E731 - bone ending at joint j
    shoulders = p[:, 11] - p[:, 14]
    f = {"Hips": _frame(seg(7), p[:, 4] - p[:, 1], 1), "Spine": _frame(seg(8), shoulders, 1),
         "Thorax": _frame(seg(9), shoulders, 1), "Neck": _frame(seg(10), shoulders, 1)}
    pelvis_lat, pelvis_up = f["Hips"][..., 0], f["Hips"][..., 1]
    thorax_up, thorax_fwd = f["Thorax"][..., 1], f["Thorax"][..., 2]
    f["RPelvis"], f["LPelvis"] = _frame(seg(1), pelvis_up, 0), _frame(seg(4), pelvis_up, 0)
    f["LCollar"], f["RCollar"] = _frame(seg(11), thorax_up, 0), _frame(seg(14), thorax_up, 0)
    for hip, knee, ankle in ((1, 2, 3), (4, 5, 6)):
        thigh, shank = _unit(seg(knee)), _unit(seg(ankle))
        n = _blend(np.cross(thigh, shank), pelvis_lat)
        f[BVH_NAMES[hip]], f[BVH_NAMES[knee]] = _segment_frame(thigh, n), _segment_frame(shank, n)
    for sho, elb, wri, sign in ((11, 12, 13, -1.0), (14, 15, 16, 1.0)):
        upper, fore = _unit(seg(elb)), _unit(seg(wri))
        fallback = _unit(_blend(np.cross(upper, thorax_fwd), sign * thorax_up))
        n = _blend(np.cross(upper, fore), fallback)
        f[BVH_NAMES[sho]], f[BVH_NAMES[elb]] = _segment_frame(upper, n), _segment_frame(fore, n)
    return [None if n.end else f[n.name] for n in _NODES]


def rest_offsets(lengths: np.ndarray) -> np.ndarray:
    """T-pose offsets (17, 3), metres: each joint's offset from its parent (row 0 zero).

    ``lengths``: (16,) bone lengths in ``skeletons.bone_pairs`` order (bone b ends at
    joint b + 1); left and right are averaged so the rest pose is symmetric.
    """
    lengths = np.asarray(lengths, float).copy()
    for left, right in zip(H36M17.left, H36M17.right):
        lengths[left - 1] = lengths[right - 1] = 0.5 * (lengths[left - 1] + lengths[right - 1])
    return _REST_DIR * np.concatenate([[0.0], lengths])[:, None]


def _node_offsets(offsets: np.ndarray) -> np.ndarray:
    """(N, 3) OFFSET of every node from the H36M-17 joint offsets (17, 3)."""
    return np.array([offsets[n.bone_of] if n.bone_of else np.zeros(3) for n in _NODES])


def _fk_rest(offsets: np.ndarray) -> np.ndarray:
    pos = np.zeros((17, 3))
    for j in range(1, 17):
        pos[j] = pos[_PARENTS[j]] + offsets[j]
    return pos


def hold_last_valid(joints: np.ndarray) -> np.ndarray:
    """Poses (T, J, 3) with every frame holding a NaN replaced by the last frame without
    one (frames before the first valid one by the first valid one), as the BVH holds them.

    Raises:
        WsgcnError: no frame is free of NaN.
    """
    valid = np.isfinite(joints).all(axis=(1, 2))
    if not valid.any():
        raise WsgcnError("cannot write a BVH: no frame has a complete world pose")
    idx = np.where(valid, np.arange(len(valid)), -1)
    idx = np.maximum.accumulate(idx)
    idx[idx < 0] = np.argmax(valid)
    return joints[idx]


def bvh_motion(joints_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rest offsets and per-frame channel values of world poses, as :func:`write_bvh` writes them.

    Args:
        joints_world: (T, 17, 3) H36M-17 joints, metres, wsgcn's world frame (y up);
            frames with any NaN hold the last valid pose.

    Returns:
        ``(offsets, motion)``: offsets (17, 3), metres, each H36M-17 joint's T-pose
        offset from its parent (:func:`rest_offsets` of the median bone lengths);
        motion (T, C), the MOTION rows: the pelvis position (metres), then each joint's
        Euler angles (degrees) in file order.

    Raises:
        WsgcnError: wrong shape, or no frame without NaN.
    """
    from scipy.spatial.transform import Rotation

    j = np.asarray(joints_world, np.float64)
    if j.ndim != 3 or j.shape[1:] != (17, 3) or len(j) == 0:
        raise WsgcnError(f"BVH export needs (T, 17, 3) H36M-17 world joints, got shape {j.shape}")
    j = hold_last_valid(j)
    offsets = rest_offsets(np.median(bone_lengths(j), axis=0))
    rest = _frames(_fk_rest(offsets)[None])
    frames = _frames(j)
    world = [None if f is None else f @ np.swapaxes(r, -1, -2) for f, r in zip(frames, rest)]
    cols = [j[:, 0]]
    for i in _ROT_NODES:
        node = _NODES[i]
        local = world[i] if node.parent < 0 else np.swapaxes(world[node.parent], -1, -2) @ world[i]
        with warnings.catch_warnings():  # at gimbal lock the angles still give the rotation exactly
            warnings.filterwarnings("ignore", "Gimbal lock detected", UserWarning)
            angles = Rotation.from_matrix(local).as_euler(node.order, degrees=True)
        cols.append(np.unwrap(angles, period=360.0, axis=0))
    return offsets, np.concatenate(cols, axis=1)


def write_bvh(path: str | Path, joints_world: np.ndarray, fps: float) -> Path:
    """Write world poses as a BVH file (see the module docstring), atomically.

    Args:
        path: destination ``.bvh``.
        joints_world: (T, 17, 3) H36M-17 joints in metres, wsgcn's world frame
            (``PoseFile.keypoints_3d_world``): y up, floor at y = 0.
        fps: frames per second (> 0); ``Frame Time`` is 1 / fps.

    Returns:
        ``path`` as a Path.

    Raises:
        WsgcnError: bad shape, no valid frame, fps <= 0, or an unwritable destination.
    """
    if not fps > 0:
        raise WsgcnError(f"BVH export needs a frame rate > 0, got {fps}")
    offsets, motion = bvh_motion(joints_world)
    node_off = _node_offsets(offsets)
    lines = ["HIERARCHY"]
    for i, node in enumerate(_NODES):
        tab = "\t" * _depth(i)
        if node.end:
            lines += [f"{tab}End Site", f"{tab}{{", f"{tab}\tOFFSET {_fmt(node_off[i])}"]
        else:
            axes = " ".join(f"{a}rotation" for a in node.order)
            chans = f"CHANNELS 6 Xposition Yposition Zposition {axes}" if i == 0 else f"CHANNELS 3 {axes}"
            lines += [f"{tab}{'ROOT' if i == 0 else 'JOINT'} {node.name}", f"{tab}{{",
                      f"{tab}\tOFFSET {_fmt(node_off[i])}", f"{tab}\t{chans}"]
        # close this node and every ancestor whose last descendant this is
        nxt_parent = _NODES[i + 1].parent if i + 1 < len(_NODES) else -1
        k = i
        while k != nxt_parent and k >= 0:
            lines.append("\t" * _depth(k) + "}")
            k = _NODES[k].parent
    lines += ["MOTION", f"Frames: {len(motion)}", f"Frame Time: {1.0 / fps:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in motion]
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    return Path(path)


def _depth(i: int) -> int:
    d = 0
    while _NODES[i].parent >= 0:
        d, i = d + 1, _NODES[i].parent
    return d


def _fmt(v) -> str:
    return " ".join(f"{x:.6f}" for x in v)


@dataclass
class BvhClip:
    """A parsed BVH file.

    Attributes:
        names: node names in file order; End Sites are named ``"<parent>_End"``.
        parents: parent index per node (-1 for the root).
        offsets: (N, 3) offsets from the parent, in the file's unit.
        channels: per node, its channel names (``"Xposition"``, ``"Zrotation"``, ...).
        motion: (T, C) channel values per frame, in file order.
        frame_time: seconds per frame.
    """

    names: list
    parents: list
    offsets: np.ndarray
    channels: list
    motion: np.ndarray
    frame_time: float

    def positions(self) -> np.ndarray:
        """Forward kinematics: (T, N, 3) world positions of every node (file units).

        A node's world rotation is its parent's times its local rotation, the Euler
        angles applied in channel order (intrinsic: R = R1 @ R2 @ R3); position channels
        add to the node's OFFSET. Uses ``scipy.spatial.transform.Rotation``.
        """
        from scipy.spatial.transform import Rotation

        t, n = len(self.motion), len(self.names)
        pos = np.zeros((t, n, 3))
        rot: list = [None] * n
        col = 0
        for i in range(n):
            ch = self.channels[i]
            vals = self.motion[:, col:col + len(ch)]
            col += len(ch)
            trans = np.tile(self.offsets[i], (t, 1))
            for k, c in enumerate(ch):
                if c.endswith("position"):
                    trans[:, "XYZ".index(c[0])] += vals[:, k]
            rk = [k for k, c in enumerate(ch) if c.endswith("rotation")]
            local = (Rotation.from_euler("".join(ch[k][0] for k in rk), vals[:, rk], degrees=True) if rk
                     else Rotation.identity(t))
            p = self.parents[i]
            if p < 0:
                pos[:, i], rot[i] = trans, local
            else:
                pos[:, i] = pos[:, p] + rot[p].apply(trans)
                rot[i] = rot[p] * local
        return pos

    def h36m_positions(self) -> np.ndarray:
        """(T, 17, 3) H36M-17 joint positions of a BVH written by :func:`write_bvh`.

        Raises:
            WsgcnError: a joint or End Site of that hierarchy is missing.
        """
        want = [BVH_NAMES[j] if j not in _LEAVES else f"{BVH_NAMES[_PARENTS[j]]}_End" for j in range(17)]
        missing = [w for w in want if w not in self.names]
        if missing:
            raise WsgcnError(f"BVH lacks the H36M-17 nodes {', '.join(missing)}")
        return self.positions()[:, [self.names.index(w) for w in want]]


def read_bvh(path: str | Path) -> BvhClip:
    """Parse a BVH file (any hierarchy and channel orders) into a :class:`BvhClip`.

    Raises:
        WsgcnError: the file is missing or not a well-formed BVH.
    """
    path = Path(path)
    if not path.is_file():
        raise WsgcnError(f"BVH file not found: {path}")
    text = path.read_text(encoding="utf-8", errors="replace")
    head, sep, motion_text = text.partition("MOTION")
    tok = head.split()
    if not sep or not tok or tok[0] != "HIERARCHY":
        raise WsgcnError(f"{path} is not a BVH file (no HIERARCHY / MOTION sections)")
    names, parents, offsets, channels, stack = [], [], [], [], []
    i = 1
    try:
        while i < len(tok):
            w = tok[i]
            if w in ("ROOT", "JOINT") or (w == "End" and tok[i + 1] == "Site"):
                end = w == "End"
                names.append(f"{names[stack[-1]]}_End" if end else tok[i + 1])
                parents.append(stack[-1] if stack else -1)
                channels.append([])
                offsets.append(None)
                i += 2
            elif w == "{":
                stack.append(len(names) - 1)
                i += 1
            elif w == "}":
                stack.pop()
                i += 1
            elif w == "OFFSET":
                offsets[-1 if not stack else stack[-1]] = [float(v) for v in tok[i + 1:i + 4]]
                i += 4
            elif w == "CHANNELS":
                k = int(tok[i + 1])
                channels[stack[-1]] = tok[i + 2:i + 2 + k]
                i += 2 + k
            else:
                raise ValueError(f"unexpected {w!r}")
        lines = motion_text.strip().splitlines()
        frames = int(lines[0].split(":")[1])
        frame_time = float(lines[1].split(":")[1])
        motion = np.array([[float(v) for v in ln.split()] for ln in lines[2:2 + frames]], float).reshape(frames, -1)
    except (ValueError, IndexError) as e:
        raise WsgcnError(f"{path} is not a well-formed BVH file: {e}") from None
    if stack or any(o is None for o in offsets) or motion.shape[1] != sum(map(len, channels)):
        raise WsgcnError(f"{path} is not a well-formed BVH file: unbalanced braces, a node without "
                         f"OFFSET or MOTION rows that do not match the channels")
    return BvhClip(names, parents, np.array(offsets, float), channels, motion, frame_time)
