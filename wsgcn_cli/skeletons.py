"""Keypoint layouts: joint names, skeleton edges and left/right sides.

The layouts are the ones in ``shared/CONVENTIONS.md``:

* ``h36m17``: Human3.6M 17 joints in SemGCN / VideoPose3D order, the lifter's layout.
* ``sh16``: H36M-17 without joint 9 (Neck/Nose), the layout of the Stacked-Hourglass
  detections shipped with the Human3.6M data.
* ``blazepose33``: MediaPipe Pose (BlazePose) landmarks.
* ``coco17``: COCO body keypoints.
* ``coco_wholebody133``: COCO-WholeBody (H3WB) keypoints.

"Left" is always the person's left. Mappings between layouts that need geometry (for
example BlazePose to H36M-17) live in :mod:`wsgcn_cli.pose2d.mapping`; this module only
describes layouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    """A keypoint layout.

    Attributes:
        name: layout name used in files and pipelines (e.g. ``"h36m17"``).
        joint_names: one name per keypoint, in index order.
        edges: pairs of keypoint indices drawn as bones, child last.
        left, right: indices of the person's left and right keypoints, paired in order
            (``left[i]`` mirrors ``right[i]``).
        parents: parent index per joint for tree layouts (-1 for the root), else None.
    """

    name: str
    joint_names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    left: tuple[int, ...] = ()
    right: tuple[int, ...] = ()
    parents: tuple[int, ...] | None = None
    _index: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        self._index.update({n: i for i, n in enumerate(self.joint_names)})
        assert len(self.left) == len(self.right)
        if self.parents is not None:
            assert len(self.parents) == len(self.joint_names)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def index(self, name: str) -> int:
        """Index of the keypoint called ``name`` (KeyError if absent)."""
        return self._index[name]

    def flip_permutation(self) -> np.ndarray:
        """Permutation that swaps left and right keypoints, shape (J,)."""
        perm = np.arange(self.num_joints)
        perm[list(self.left)] = self.right
        perm[list(self.right)] = self.left
        return perm

    def side_of_edge(self, edge: tuple[int, int]) -> str:
        """``"left"``, ``"right"`` or ``"centre"`` for a bone, by its child keypoint."""
        child = edge[1]
        if child in self.left:
            return "left"
        if child in self.right:
            return "right"
        return "centre"


def _tree_edges(parents):
    return tuple((p, j) for j, p in enumerate(parents) if p >= 0)


H36M17_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

H36M17 = Skeleton(
    name="h36m17",
    joint_names=(
        "Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax",
        "Neck/Nose", "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow",
        "RWrist",
    ),
    edges=_tree_edges(H36M17_PARENTS),
    left=(4, 5, 6, 11, 12, 13),
    right=(1, 2, 3, 14, 15, 16),
    parents=H36M17_PARENTS,
)

#: Index of each SH-16 joint in H36M-17 (H36M-17 without joint 9, Neck/Nose).
SH16_IN_H36M17 = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16)

SH16 = Skeleton(
    name="sh16",
    joint_names=tuple(H36M17.joint_names[i] for i in SH16_IN_H36M17),
    edges=(
        (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9),
        (8, 10), (10, 11), (11, 12), (8, 13), (13, 14), (14, 15),
    ),
    left=(4, 5, 6, 10, 11, 12),
    right=(1, 2, 3, 13, 14, 15),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 8, 10, 11, 8, 13, 14),
)

BLAZEPOSE33 = Skeleton(
    name="blazepose33",
    joint_names=(
        "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner",
        "right_eye", "right_eye_outer", "left_ear", "right_ear", "mouth_left",
        "mouth_right", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index",
        "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee",
        "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
        "left_foot_index", "right_foot_index",
    ),
    edges=(
        (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
        (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
        (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20), (11, 23),
        (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28), (27, 29),
        (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
    ),
    left=(1, 2, 3, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31),
    right=(4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32),
)

COCO17 = Skeleton(
    name="coco17",
    joint_names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    edges=(
        (0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10),
        (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
    ),
    left=(1, 3, 5, 7, 9, 11, 13, 15),
    right=(2, 4, 6, 8, 10, 12, 14, 16),
)


#: iBUG 300-W mirror partner of each of the 68 face points (the subject's left <-> right),
#: 0-based in the face's own order (COCO-WholeBody keypoint 23 + i).
FACE68_FLIP = tuple(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30]
    + list(range(35, 30, -1)) + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + list(range(54, 47, -1)) + list(range(59, 54, -1)) + [64, 63, 62, 61, 60, 67, 66, 65]
)

#: The subject's right-side face points of the 68 (their mirror partners are the left).
FACE68_RIGHT = (0, 1, 2, 3, 4, 5, 6, 7, 17, 18, 19, 20, 21, 31, 32, 36, 37, 38, 39, 40, 41,
                48, 49, 50, 59, 58, 60, 61, 67)

#: Face contour chains of the 68 points (jaw, brows, nose bridge, nostrils), and closed
#: loops (eyes, outer and inner lips), for drawing.
FACE68_CHAINS = ((0, 17), (17, 22), (22, 27), (27, 31), (31, 36))
FACE68_LOOPS = ((36, 42), (42, 48), (48, 60), (60, 68))


def _wholebody133() -> Skeleton:
    names = list(COCO17.joint_names)
    names += ["left_big_toe", "left_small_toe", "left_heel",
              "right_big_toe", "right_small_toe", "right_heel"]
    names += [f"face_{i}" for i in range(68)]
    hand = ["wrist"] + [f"{f}_{k}" for f in ("thumb", "index", "middle", "ring", "pinky")
                        for k in (1, 2, 3, 4)]
    names += [f"left_hand_{n}" for n in hand] + [f"right_hand_{n}" for n in hand]
    edges = list(COCO17.edges)
    edges += [(15, 17), (15, 18), (15, 19), (16, 20), (16, 21), (16, 22)]
    for base in (91, 112):
        for finger in range(5):
            chain = [base] + [base + 1 + 4 * finger + k for k in range(4)]
            edges += list(zip(chain[:-1], chain[1:]))
    edges += [(9, 91), (10, 112)]
    for lo, hi in FACE68_CHAINS:
        edges += [(23 + i, 24 + i) for i in range(lo, hi - 1)]
    for lo, hi in FACE68_LOOPS:
        edges += [(23 + i, 24 + i) for i in range(lo, hi - 1)] + [(23 + hi - 1, 23 + lo)]
    left = list(COCO17.left) + [17, 18, 19] + list(range(91, 112)) \
        + [23 + FACE68_FLIP[i] for i in FACE68_RIGHT]
    right = list(COCO17.right) + [20, 21, 22] + list(range(112, 133)) \
        + [23 + i for i in FACE68_RIGHT]
    return Skeleton("coco_wholebody133", tuple(names), tuple(edges), tuple(left), tuple(right))


COCO_WHOLEBODY133 = _wholebody133()

LAYOUTS: dict[str, Skeleton] = {
    s.name: s for s in (H36M17, SH16, BLAZEPOSE33, COCO17, COCO_WHOLEBODY133)
}


def get_layout(name: str) -> Skeleton:
    """The layout called ``name``; raises :class:`~wsgcn_cli.errors.WsgcnError` if unknown."""
    from wsgcn_cli.errors import WsgcnError

    try:
        return LAYOUTS[name]
    except KeyError:
        raise WsgcnError(f"unknown keypoint layout {name!r}; known: {', '.join(LAYOUTS)}")


def bone_pairs(skeleton: Skeleton = H36M17) -> np.ndarray:
    """(B, 2) int array of (parent, child) pairs of a tree layout, for bone lengths."""
    return np.array(_tree_edges(skeleton.parents), dtype=np.int64)


def bone_lengths(pose: np.ndarray, skeleton: Skeleton = H36M17) -> np.ndarray:
    """Bone lengths of poses (..., J, 3) (any unit) -> (..., B) in the same unit."""
    pairs = bone_pairs(skeleton)
    return np.linalg.norm(pose[..., pairs[:, 1], :] - pose[..., pairs[:, 0], :], axis=-1)
