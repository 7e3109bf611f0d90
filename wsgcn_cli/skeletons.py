"""Keypoint layouts: joint names, skeleton edges and left/right sides.

The layouts are the ones in ``shared/CONVENTIONS.md``:

* ``h36m17``: Human3.6M 17 joints in SemGCN / VideoPose3D order, the lifter's layout.
* ``sh16``: H36M-17 without joint 9 (Neck/Nose), the layout of the Stacked-Hourglass
  detections shipped with the Human3.6M data.
* ``blazepose33``: MediaPipe Pose (BlazePose) landmarks.
* ``coco17``: COCO body keypoints.
* ``coco_wholebody133``: COCO-WholeBody (H3WB) keypoints; its part ranges, pelvis, a
  kinematic tree (:data:`WHOLEBODY133_TREE`) and the joint triplets of the normal loss
  are here too, for the whole-body lifter and its losses.

"Left" is always the person's left. Mappings between layouts that need geometry (for
example BlazePose to H36M-17) live in :mod:`wsgcn_cli.pose2d.mapping`; this module only
describes layouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

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

#: COCO-WholeBody-133 parts as [start, stop) index ranges. H3WB's "body" is the 23
#: keypoints of COCO-17 and the feet; the SemGAN decoder treats both hands as one part.
WHOLEBODY133_PARTS = {"body": (0, 23), "face": (23, 91), "left_hand": (91, 112), "right_hand": (112, 133)}

#: The hips whose mean is H3WB's pelvis (the root of root-relative whole-body 3D).
WHOLEBODY133_PELVIS = (11, 12)


def _wholebody133_parents() -> tuple[int, ...]:
    """A kinematic tree over the 133 keypoints, rooted at the nose (0), left/right symmetric.

    Body: eyes and shoulders hang from the nose, ears from the eyes, hips from the
    shoulders (COCO has no spine), then the limbs; the three foot points from the ankle.
    Face (iBUG order f, keypoint 23 + f): the nose tip (30) from the body's nose, the
    bridge up from the tip, nostrils from 33, brows and eyes from the bridge top (27)
    running outward, the upper lip centre (51) from 33, the lips around from there, the
    lower lip centre (57) through the inner lip (62 -> 66 -> 57), the chin (8) from 57 and
    the jaw outward to the ears. Hands: the hand's wrist from the body's wrist (9, 10),
    each finger a chain from the hand's wrist.
    """
    par = [-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14, 15, 15, 15, 16, 16, 16]
    face = {30: None, 29: 30, 28: 29, 27: 28, 33: 30, 32: 33, 31: 32, 34: 33, 35: 34,
            21: 27, 22: 27, 39: 27, 42: 27, 38: 39, 37: 38, 36: 37, 40: 39, 41: 40,
            43: 42, 44: 43, 45: 44, 47: 42, 46: 47, 51: 33, 62: 51, 66: 62, 57: 66, 8: 57,
            61: 62, 60: 61, 63: 62, 64: 63, 67: 66, 65: 66}
    face.update({f: f + 1 for f in range(17, 21)})                    # right brow, outward
    face.update({f: f - 1 for f in range(23, 27)})                    # left brow, outward
    face.update({f: f + 1 for f in range(0, 8)})                      # jaw, chin -> right ear
    face.update({f: f - 1 for f in range(9, 17)})                     # jaw, chin -> left ear
    face.update({50: 51, 49: 50, 48: 49, 59: 48, 58: 59, 52: 51, 53: 52, 54: 53, 55: 54, 56: 55})
    assert sorted(face) == list(range(68))
    par += [0 if face[f] is None else 23 + face[f] for f in range(68)]
    for base, wrist in ((91, 9), (112, 10)):
        par.append(wrist)
        for finger in range(5):
            first = base + 1 + 4 * finger
            par += [base, first, first + 1, first + 2]
    assert len(par) == 133
    return tuple(par)


#: Parent of each COCO-WholeBody-133 keypoint in a tree rooted at the nose (-1); see
#: :func:`_wholebody133_parents`. Its bones (``bone_pairs(WHOLEBODY133_TREE)``) are what
#: the whole-body bone-length loss and the lifter's distance input use.
WHOLEBODY133_PARENTS = _wholebody133_parents()

#: COCO-WholeBody-133 with the tree above as ``parents`` (same name, keypoints, drawn
#: edges and sides as :data:`COCO_WHOLEBODY133`; not a separate layout, not in LAYOUTS).
WHOLEBODY133_TREE = replace(COCO_WHOLEBODY133, parents=WHOLEBODY133_PARENTS, _index={})


def _wholebody133_triplets() -> tuple[tuple[int, int, int], ...]:
    """Joint triplets (a, b, c) spanning local planes, normal (p_b - p_a) x (p_c - p_a)."""
    tri = [(11, 12, 5), (12, 11, 6), (5, 6, 11), (6, 5, 12),         # torso
           (0, 5, 6), (0, 1, 2), (0, 3, 4),                           # head on shoulders, face
           (5, 6, 7), (6, 5, 8), (7, 5, 9), (8, 6, 10),               # shoulders, elbows
           (11, 12, 13), (12, 11, 14), (13, 11, 15), (14, 12, 16),    # hips, knees
           (15, 13, 17), (16, 14, 20), (15, 17, 19), (16, 20, 22),    # ankles
           (19, 17, 18), (22, 20, 21)]                                # soles
    f = 23                                                            # face, iBUG + 23
    tri += [(f + a, f + b, f + c) for a, b, c in (
        (30, 36, 45), (27, 39, 42), (30, 48, 54), (33, 31, 35), (27, 17, 26), (8, 0, 16),
        (8, 4, 12), (51, 48, 54), (57, 54, 48), (62, 60, 64), (66, 64, 60))]
    for base, wrist, elbow in ((91, 9, 7), (112, 10, 8)):
        tri += [(wrist, elbow, base + 5), (wrist, elbow, base + 17)]  # hand on the forearm
        tri += [(base, base + 5, base + 9), (base, base + 9, base + 13), (base, base + 13, base + 17),
                (base, base + 1, base + 5)]                           # palm, thumb base
        for finger in range(5):
            k = base + 1 + 4 * finger
            tri += [(k, base, k + 1), (k + 1, k, k + 2), (k + 2, k + 1, k + 3)]  # finger joints
    return tuple(tri)


#: Joint triplets of COCO-WholeBody-133 whose planes the normal loss compares
#: (:func:`wsgcn_cli.train.losses.normal_loss`): torso, head, shoulders, elbows, hips,
#: knees, ankles and soles, face planes (eyes, nose, mouth, brows, jaw), each hand's
#: orientation on its forearm, palm and every finger joint. The normal of (a, b, c) is
#: (p_b - p_a) x (p_c - p_a); nearly straight joints (a straight finger or elbow) have
#: no defined plane and are skipped by the loss where the target is nearly straight.
WHOLEBODY133_TRIPLETS = _wholebody133_triplets()

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
    """(B, 2) int array of (parent, child) pairs of a tree layout, for bone lengths; for a
    layout without ``parents``, its drawn ``edges`` (e.g. ``COCO_WHOLEBODY133``; use
    :data:`WHOLEBODY133_TREE` for its tree)."""
    edges = _tree_edges(skeleton.parents) if skeleton.parents is not None else skeleton.edges
    return np.array(edges, dtype=np.int64).reshape(-1, 2)


def bone_lengths(pose: np.ndarray, skeleton: Skeleton = H36M17) -> np.ndarray:
    """Bone lengths of poses (..., J, 3) (any unit) -> (..., B) in the same unit."""
    pairs = bone_pairs(skeleton)
    return np.linalg.norm(pose[..., pairs[:, 1], :] - pose[..., pairs[:, 0], :], axis=-1)
