"""One skeleton per clip: constant, left/right-symmetric bone lengths at a known scale.

A single-frame lifter gives every frame its own bone lengths: on ``body3d_demo.mp4`` they
vary by 2 % (median) and up to 30 % from frame to frame, and they are too short overall
(the sum of the 16 bones is 0.95 of the true one): trained with MPJPE, a lifter that
cannot see a person's size from root- and scale-normalised 2D shrinks uncertain limbs
towards the mean. A person's bones do not change, and BVH / OpenSim need one rigid
skeleton. :func:`constant_bones` (the ``[bones]`` table of a lift pipeline, run on the
whole clip after the stream) therefore:

1. takes each bone's median length over the clip's frames with a pose, averages each
   left/right pair (:meth:`wsgcn_cli.skeletons.Skeleton.flip_permutation`);
2. with ``scale = "reference"``, scales all of them by one factor so that their sum is
   the sum of :data:`REFERENCE_BONE_LENGTHS_M` (the Human3.6M training subjects' mean
   skeleton: the lifter cannot know a person's size, so the size is the prior's while the
   proportions are the clip's); with ``scale = "lifted"`` keeps the clip's own size;
3. rebuilds every frame from the root outwards, each bone along its lifted direction
   with its constant length (directions, hence P-MPJPE up to scale, are the lifter's).

Measured (benchmarks/results/lift_body3d_demo.json, accuracy of the default pipeline):
on ``body3d_demo.mp4`` all-17 MPJPE 69.95 -> 66.2 mm, P-MPJPE 55.09 -> 54.25 mm; on
Human3.6M S9/S11 (every 5th frame, one skeleton per take, ``semgcn_nl_h36m_det2d``)
Stacked-Hourglass 2D 78.95 -> 76.57 mm, ground-truth 2D 57.66 -> 55.96 mm.

Frames: root-relative camera coordinates or the world frame alike (lengths and
directions do not depend on the frame), metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.options import from_table
from wsgcn_cli.skeletons import H36M17

#: Human3.6M training subjects' (S1, S5, S6, S7, S8) mean bone lengths, metres, left and
#: right averaged, indexed by the bone's child joint in H36M-17 order (0 for the root):
#: :func:`wsgcn_cli.train.losses.reference_bone_lengths` over every frame
#: (``tests/test_bones.py`` checks the two agree where the data is present).
REFERENCE_BONE_LENGTHS_M = np.array([
    0.0, 0.1345, 0.4499, 0.4459, 0.1345, 0.4499, 0.4459, 0.2393, 0.2554, 0.1163, 0.1150,
    0.1493, 0.2804, 0.2496, 0.1493, 0.2804, 0.2496])

MODES = ("clip", "none")
SCALES = ("reference", "lifted")


@dataclass
class BoneOptions:
    """A lift pipeline's ``[bones]`` table.

    Attributes:
        mode: ``"clip"``: one constant, symmetric skeleton per clip (:func:`constant_bones`);
            ``"none"``: the lifter's per-frame bones.
        scale: ``"reference"``: the skeleton's size is the Human3.6M mean's
            (:data:`REFERENCE_BONE_LENGTHS_M`), its proportions the clip's; ``"lifted"``:
            the clip's own size.
    """

    mode: str = "none"
    scale: str = "reference"

    @classmethod
    def from_spec(cls, table: dict) -> "BoneOptions":
        """From a pipeline's ``[bones]`` table; raises WsgcnError for unknown keys or values."""
        opts = from_table(cls, table, "bones")
        if opts.mode not in MODES:
            raise WsgcnError(f"[bones] mode must be one of {', '.join(MODES)}, got {opts.mode!r}")
        if opts.scale not in SCALES:
            raise WsgcnError(f"[bones] scale must be one of {', '.join(SCALES)}, got {opts.scale!r}")
        return opts


def bone_lengths(pose: np.ndarray) -> np.ndarray:
    """Per-frame bone lengths (T, 17) of H36M-17 poses (T, 17, 3), indexed by the child joint
    (column 0, the root, is 0); NaN where a frame has no pose."""
    parents = np.asarray(H36M17.parents)
    out = np.zeros(pose.shape[:2])
    out[:, 1:] = np.linalg.norm(pose[:, 1:] - pose[:, parents[1:]], axis=-1)
    return out


def clip_bone_lengths(pose: np.ndarray, scale: str = "reference") -> np.ndarray:
    """The clip's skeleton (17,) metres: per-bone median over the frames with a pose,
    left/right averaged, scaled as ``scale`` says (module docstring). Raises WsgcnError
    if no frame has a pose."""
    pose = np.asarray(pose, np.float64)
    ok = np.isfinite(pose).all(axis=(1, 2))
    if not ok.any():
        raise WsgcnError("no frame with a 3D pose to take bone lengths from")
    median = np.median(bone_lengths(pose[ok]), axis=0)
    lengths = 0.5 * (median + median[H36M17.flip_permutation()])
    if scale == "reference":
        lengths *= REFERENCE_BONE_LENGTHS_M.sum() / lengths.sum()
    return lengths


def with_bone_lengths(pose: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Poses (T, 17, 3) rebuilt from the root outwards with each bone along its direction
    in ``pose`` and of length ``lengths`` (17,) (by child joint); the root stays where it
    is. Frames with NaN stay NaN; a zero-length bone keeps its child on its parent."""
    pose = np.asarray(pose, np.float64)
    parents = H36M17.parents
    out = pose.copy()
    for j in range(1, len(parents)):  # parents come before their children
        d = pose[:, j] - pose[:, parents[j]]
        norm = np.linalg.norm(d, axis=-1, keepdims=True)
        unit = np.divide(d, norm, out=np.zeros_like(d), where=norm > 0)
        out[:, j] = out[:, parents[j]] + unit * lengths[j]
    return out


def constant_bones(pose: np.ndarray, options: BoneOptions | None = None) -> np.ndarray:
    """``pose`` (T, 17, 3) metres with the clip's constant skeleton (module docstring);
    unchanged for ``mode = "none"`` or a clip without any pose. Same dtype as ``pose``."""
    options = options or BoneOptions(mode="clip")
    if options.mode == "none" or not np.isfinite(pose).all(axis=(1, 2)).any():
        return pose
    return with_bone_lengths(pose, clip_bone_lengths(pose, options.scale)).astype(pose.dtype)
