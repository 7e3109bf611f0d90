"""Training losses for full, weak and self-supervision of a 2D -> 3D lifter (torch).

All losses are batched, differentiable and return a scalar tensor; none has a Python
loop over samples. Poses are root-relative camera coordinates in metres (x right,
y down, z forward; joint 0, the pelvis, at 0), H36M-17 order, shape (..., 17, 3) with
any leading dimensions, unless a loss takes a ``skeleton`` or ``triplets`` (the
whole-body terms: COCO-WholeBody-133, pelvis = mean of the hips); 2D keypoints are
pixels (origin top-left, x right, y down).

* :func:`mpjpe_loss` — mean per-joint Euclidean distance to 3D ground truth (metres),
  as VideoPose3D and our supervised loop train; per-joint weights mask joints out and
  missing (NaN) targets are left out.
* :func:`reprojection_loss` — pixel distance between the 2D keypoints and the 3D pose
  placed at a camera-frame root and projected through the camera model of
  :mod:`wsgcn_cli.camera` (distortion optional). The 2D-3D projection consistency of
  "3D Human Pose Machines with Self-supervised Learning" (Wang et al., TPAMI 2019) and
  the 2D term of WS-GCN's weak supervision (Jiang & Chen, "WS-GCN: Integrating GCN
  with Weak Supervision for Enhanced 3D Human Pose Estimation", ICCAI 2024), which
  projects with the ground-truth root; for unlabelled footage the root comes from
  :func:`wsgcn_cli.camera.estimate_root_translation` instead.
* :func:`bone_length_loss` — left/right symmetry of the limbs and agreement with
  reference bone lengths (per sample, or of the batch means as in WS-GCN's bone
  penalty and VideoPose3D's semi-supervised bone-length term, Pavllo et al. CVPR 2019);
  :func:`reference_bone_lengths` computes the reference from Human3.6M's 3D data.
  With ``skeleton=WHOLEBODY133_TREE``, per-joint ``weights`` and the targets' bone
  lengths as the reference it is SemGAN's bone loss over 133 keypoints.
* :func:`multiview_consistency_loss` — two synchronised views of one frame show one
  pose: the root-relative prediction of one view, rotated onto the other's by the
  best rotation about the root (Kabsch), must match it. Needs no extrinsics; a depth
  error in one view is a lateral error in the other, which the 2D of that view
  already pins down (multi-view self-consistency as in Rhodin et al., "Learning
  Monocular 3D Human Pose Estimation from Multi-view Images", CVPR 2018, and Wandt et
  al., "CanonPose", CVPR 2021).
* :func:`normal_loss` — orientation of local planes of joint triplets against the
  target's (1 - cosine of the normals): SemGAN's normal loss (Wen et al., "3D WholeBody
  Pose Estimation based on Semantic Graph Attention Network and Distance Information",
  2024), with :data:`wsgcn_cli.skeletons.WHOLEBODY133_TRIPLETS`.
* :func:`temporal_smoothness_loss` — velocity or acceleration of consecutive frames.
* :func:`anchor_loss` — distance to the outputs of a frozen base model, so that an
  adapted lifter stays near what it was before adaptation.

Why the reprojection term alone is not enough: with a root estimated from the pose
itself, scaling the pose scales the estimated root and leaves the projection unchanged,
and any 2D pose is also explained by a flat pose; the bone and anchor terms (or 3D
supervision on labelled data) remove these degenerate solutions.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from wsgcn_cli.camera import project
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.skeletons import H36M17, Skeleton, bone_pairs

#: Depth (metres) below which a projected joint is clamped, so that a pose placed
#: behind or at the camera gives a large but finite reprojection error and gradient.
MIN_DEPTH_M = 0.1


def _weighted_mean(err: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is None:
        return err.mean()
    weights = weights.to(err.dtype)
    return (err * weights).sum() / weights.sum().clamp_min(1e-12)


def mpjpe_loss(pred: torch.Tensor, target: torch.Tensor,
               weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean per-joint position error (MPJPE), metres; masked with ``weights``.

    Args:
        pred, target: (..., J, 3) poses in the same frame and unit (metres). Joints whose
            target is not finite (a missing label, NaN) get zero weight, with a zero (not
            NaN) gradient.
        weights: optional (..., J) non-negative weights (a weighted mean): 0 masks a
            joint out, e.g. a part that is not labelled or not seen.
    Returns:
        scalar tensor, the (weighted) mean Euclidean joint distance (0 if nothing is left).
    """
    known = torch.isfinite(target).all(-1)
    target = torch.where(known.unsqueeze(-1), target, pred.detach())
    weights = known if weights is None else weights * known
    return _weighted_mean(torch.linalg.vector_norm(pred - target, dim=-1), weights)


def _per_sample(a, like: torch.Tensor, name: str, width: int):
    """Intrinsics as a tensor broadcastable with (..., J, width): (width,) or (..., width)."""
    if a is None:
        return None
    a = torch.as_tensor(a, dtype=like.dtype, device=like.device)
    if a.shape[-1] != width:
        raise WsgcnError(f"{name} must have {width} values per camera, got shape {tuple(a.shape)}")
    return a if a.ndim == 1 else a.unsqueeze(-2)


def reprojection_errors(pose3d_rel_m: torch.Tensor, root_cam_m: torch.Tensor,
                        kp2d_px: torch.Tensor, f, c, k=None, p=None,
                        min_depth: float = MIN_DEPTH_M) -> torch.Tensor:
    """Per-joint reprojection errors (..., J) in pixels (NaN where the 2D is NaN).

    Same arguments as :func:`reprojection_loss`.
    """
    if pose3d_rel_m.shape[-1] != 3 or kp2d_px.shape[-1] != 2 or root_cam_m.shape[-1] != 3 \
            or pose3d_rel_m.shape[:-1] != kp2d_px.shape[:-1] \
            or root_cam_m.shape[:-1] != pose3d_rel_m.shape[:-2]:
        raise WsgcnError(
            f"reprojection needs pose (..., J, 3), root (..., 3) and 2D (..., J, 2) with one "
            f"leading shape; got {tuple(pose3d_rel_m.shape)}, {tuple(root_cam_m.shape)}, "
            f"{tuple(kp2d_px.shape)}")
    cam = pose3d_rel_m + root_cam_m.unsqueeze(-2)
    cam = torch.cat([cam[..., :2], cam[..., 2:].clamp_min(min_depth)], dim=-1)
    uv = project(cam, _per_sample(f, cam, "f", 2), _per_sample(c, cam, "c", 2),
                 _per_sample(k, cam, "k", 3), _per_sample(p, cam, "p", 2))
    return torch.linalg.vector_norm(uv - kp2d_px.to(uv.dtype), dim=-1)


def reprojection_loss(pose3d_rel_m: torch.Tensor, root_cam_m: torch.Tensor,
                      kp2d_px: torch.Tensor, f, c, weights: torch.Tensor | None = None,
                      k=None, p=None, scale: torch.Tensor | None = None,
                      min_depth: float = MIN_DEPTH_M) -> torch.Tensor:
    """Mean distance (pixels) between 2D keypoints and the projected 3D pose.

    The pose is placed at ``root_cam_m`` (camera frame) and projected with
    :func:`wsgcn_cli.camera.project` (Human3.6M's model; pinhole when ``k`` and ``p`` are
    None). Joints whose 2D is NaN get zero weight. Depths below ``min_depth`` are clamped
    (a pose behind the camera gives a large, finite error).

    Args:
        pose3d_rel_m: (..., J, 3) root-relative camera-frame pose, metres.
        root_cam_m: (..., 3) camera-frame root position, metres (ground truth, or
            :func:`wsgcn_cli.camera.estimate_root_translation`, detached or not).
        kp2d_px: (..., J, 2) target 2D keypoints, pixels.
        f, c: focal length and principal point in pixels, (2,) or per sample (..., 2).
        weights: optional (..., J) per-joint confidences.
        k, p: radial (3,)/(..., 3) and tangential (2,)/(..., 2) distortion, or None.
        scale: optional (...,) per-sample size in pixels (e.g. the RMS distance of the
            keypoints from the root, :func:`keypoint_scale`): errors are divided by it,
            making the loss dimensionless and independent of the person's size in the
            image.
    Returns:
        scalar tensor: weighted mean Euclidean error, pixels (or fractions of ``scale``).
    """
    err = reprojection_errors(pose3d_rel_m, root_cam_m, kp2d_px, f, c, k, p, min_depth)
    valid = torch.isfinite(err)
    w = valid.to(err.dtype) if weights is None else torch.where(valid, weights.to(err.dtype), 0.0)
    err = torch.where(valid, err, 0.0)
    if scale is not None:
        err = err / scale.to(err.dtype).clamp_min(1e-6).unsqueeze(-1)
    return _weighted_mean(err, w)


def estimated_root(pose3d_rel_m: torch.Tensor, kp2d_px: torch.Tensor, f, c, weights=None, k=None, p=None,
                   detach: bool = True) -> torch.Tensor:
    """Camera-frame root (..., 3), metres, for :func:`reprojection_loss` on unlabelled data.

    :func:`wsgcn_cli.camera.estimate_root_translation` on torch tensors (same arguments;
    intrinsics (2,) or per sample (..., 2)). ``detach=True`` (the default in ``finetune``
    and the weak protocol) treats the root as a constant in the gradient step — the
    estimate (nearly) minimises the reprojection error over the root, so by the envelope
    theorem the gradient through it is (nearly) zero anyway and skipping it is cheaper;
    ``detach=False`` keeps it differentiable.
    """
    from wsgcn_cli.camera import estimate_root_translation

    if detach:
        with torch.no_grad():
            return estimate_root_translation(pose3d_rel_m.detach(), kp2d_px, f, c, weights, k, p)
    return estimate_root_translation(pose3d_rel_m, kp2d_px, f, c, weights, k, p)


def keypoint_scale(kp2d_px: torch.Tensor, root: int = 0) -> torch.Tensor:
    """(..., J, 2) pixels -> (...,) RMS distance of the keypoints from the root, pixels.

    The same scale as the ``root_scale`` codec (:func:`wsgcn_cli.codec.root_scale_normalize`);
    NaN keypoints are ignored, and a degenerate pose gets 1.
    """
    d2 = ((kp2d_px - kp2d_px[..., root : root + 1, :]) ** 2).sum(-1)
    s = torch.sqrt(torch.nanmean(d2, dim=-1))
    return torch.where(torch.isfinite(s) & (s > 1e-6), s, torch.ones_like(s))


# -- bones --------------------------------------------------------------------------------

def bone_lengths(pose: torch.Tensor, skeleton: Skeleton = H36M17) -> torch.Tensor:
    """(..., J, 3) poses -> (..., B) bone lengths (same unit), bones of :func:`bone_pairs`."""
    pairs = torch.as_tensor(bone_pairs(skeleton), device=pose.device)
    return torch.linalg.vector_norm(pose[..., pairs[:, 1], :] - pose[..., pairs[:, 0], :], dim=-1)


def symmetric_bones(skeleton: Skeleton = H36M17) -> np.ndarray:
    """(P, 2) indices into :func:`bone_pairs` of (left bone, right bone) pairs.

    The mirror of bone (a, b) is the bone (a', b') or (b', a') of the left/right
    counterparts of its ends; a pair is listed once, the bone whose child (else parent)
    is on the left first. Bones that are their own mirror (the shoulder line) or have none
    are left out, so any tree or edge list works. For H36M-17: hip, thigh, shin,
    shoulder, upper arm and forearm (6 pairs).
    """
    pairs = bone_pairs(skeleton)
    perm = skeleton.flip_permutation()
    left, right = set(skeleton.left), set(skeleton.right)
    index: dict[tuple[int, int], int] = {}
    for i, (a, b) in enumerate(pairs.tolist()):
        index.setdefault((a, b), i)
        index.setdefault((b, a), i)
    out = []
    for i, (a, b) in enumerate(pairs.tolist()):
        j = index.get((int(perm[a]), int(perm[b])))
        if j is not None and j != i and (b in left or (b not in right and a in left)):
            out.append((i, j))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


@functools.lru_cache(maxsize=8)
def _reference_cached(path: str, subjects: tuple, stride: int, symmetrize: bool) -> tuple:
    try:
        data = np.load(path)
    except FileNotFoundError:
        raise WsgcnError(f"Human3.6M file not found: {path} (needed for reference bone lengths)")
    except (OSError, ValueError) as e:
        raise WsgcnError(f"cannot read {path}: {e}")
    keys = [k for k in data.files if k.split("/")[0] in subjects]
    if not keys:
        raise WsgcnError(f"no 3D sequences of subjects {list(subjects)} in {path}")
    pairs = bone_pairs(H36M17)
    sums, count = np.zeros(len(pairs)), 0
    for key in sorted(keys):
        pose = data[key][::stride].astype(np.float64)                    # (T, 17, 3) mm
        sums += np.linalg.norm(pose[:, pairs[:, 1]] - pose[:, pairs[:, 0]], axis=-1).sum(0)
        count += len(pose)
    mean = sums / count / 1000.0
    if symmetrize:
        sym = symmetric_bones(H36M17)
        avg = 0.5 * (mean[sym[:, 0]] + mean[sym[:, 1]])
        mean[sym[:, 0]] = mean[sym[:, 1]] = avg
    return tuple(mean.tolist())


def reference_bone_lengths(root: str | Path | None = None, subjects=("S1", "S5", "S6", "S7", "S8"),
                           stride: int = 10, symmetrize: bool = True) -> np.ndarray:
    """Mean bone lengths of Human3.6M subjects, metres, (16,) in :func:`bone_pairs` order.

    Computed from ``h36m_3d_17j_world_mm.npz`` (world-frame millimetres; lengths do not
    depend on the frame): the mean over every ``stride``-th frame of every take of
    ``subjects`` (frames pooled, so longer takes weigh more), left and right averaged
    when ``symmetrize``. Default: the five training subjects. For the weak protocol use
    ``subjects=("S1",)``: only S1's 3D may be seen. Cached per arguments.

    Raises WsgcnError if the file is missing or holds none of the subjects.
    """
    from wsgcn_cli.data.h36m import FILE_3D, default_root

    path = Path(root) if root else default_root()
    return np.array(_reference_cached(str(path / FILE_3D), tuple(subjects), int(stride), bool(symmetrize)))


def bone_length_loss(pose: torch.Tensor, reference=None, symmetry_weight: float = 1.0,
                     reference_weight: float = 1.0, batch_mean: bool = False,
                     skeleton: Skeleton = H36M17, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Bone-length prior, metres: symmetry of left/right bones + agreement with a reference.

    ``symmetry_weight * mean |L_left - L_right|`` over the mirrored bone pairs of
    :func:`symmetric_bones`, plus ``reference_weight * mean |L - L_ref|`` over all bones.
    With ``batch_mean`` the reference term compares the bone lengths averaged over the
    batch (all leading dimensions) with the reference — WS-GCN's bone penalty (it
    matches the batch-mean bone lengths of unlabelled predictions to those of labelled
    ones), which constrains the population, not each sample's proportions. With a
    per-sample reference, ``bone_lengths(target, skeleton)``, it is SemGAN's bone loss
    (Wen et al., "3D WholeBody Pose Estimation based on Semantic Graph Attention Network
    and Distance Information", 2024): each predicted bone as long as the target's.

    Args:
        pose: (..., J, 3) poses, metres.
        reference: (B,) or per sample (..., B) reference lengths in metres (e.g.
            :func:`reference_bone_lengths`, the batch-mean bone lengths of a labelled batch,
            or :func:`bone_lengths` of the targets), or None for symmetry only. Non-finite
            entries (bones of unlabelled joints) are left out.
        skeleton: the tree (``parents``) or, for a layout without one, the drawn edges
            whose bones are compared (:func:`wsgcn_cli.skeletons.bone_pairs`); e.g.
            :data:`wsgcn_cli.skeletons.WHOLEBODY133_TREE` for the 133 whole-body keypoints.
        weights: optional (..., J) per-joint weights; a bone weighs the product of its
            two joints' weights (0 leaves it out), a mirrored pair the product of its bones'.
    Returns:
        scalar tensor, metres.
    Raises:
        WsgcnError: the reference does not have one length per bone of ``skeleton``.
    """
    lengths = bone_lengths(pose, skeleton)                                   # (..., B)
    bw = None
    if weights is not None:
        pairs = torch.as_tensor(bone_pairs(skeleton), device=pose.device)
        w = weights.to(lengths.dtype)
        bw = w[..., pairs[:, 0]] * w[..., pairs[:, 1]]                       # (..., B)
    sym = torch.as_tensor(symmetric_bones(skeleton), device=pose.device)
    loss = lengths.new_zeros(())
    if symmetry_weight and len(sym):
        sym_w = None if bw is None else bw[..., sym[:, 0]] * bw[..., sym[:, 1]]
        loss = loss + symmetry_weight * _weighted_mean(
            (lengths[..., sym[:, 0]] - lengths[..., sym[:, 1]]).abs(), sym_w)
    if reference is not None and reference_weight:
        ref = torch.as_tensor(reference, dtype=lengths.dtype, device=lengths.device)
        if ref.shape[-1] != lengths.shape[-1]:
            raise WsgcnError(f"reference has {ref.shape[-1]} bone lengths, the skeleton {lengths.shape[-1]}")
        known = torch.isfinite(ref)
        ref = torch.where(known, ref, 0.0)
        if batch_mean:
            flat = lengths.reshape(-1, lengths.shape[-1])
            if bw is None:
                got, seen = flat.mean(0), torch.ones_like(flat[0])
            else:
                fw = bw.expand_as(lengths).reshape(-1, lengths.shape[-1])
                seen = fw.sum(0)
                got = (flat * fw).sum(0) / seen.clamp_min(1e-12)
            rw = (seen > 0).to(lengths.dtype) * known
            err = (got - ref).abs()
        else:
            err = (lengths - ref).abs()
            rw = known.to(lengths.dtype) if bw is None else bw * known
        loss = loss + reference_weight * _weighted_mean(err, rw.expand_as(err))
    return loss


def rotation_onto(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The rotations (..., 3, 3) that best map each ``source`` pose onto ``target`` about the
    origin (Kabsch: least squares, det = +1, no scale or translation), float32.

    Args:
        source, target: (..., J, 3) root-relative poses (any unit).
    """
    with torch.autocast(source.device.type, enabled=False):  # fp32 under a bf16 training step too
        a, b = source.float(), target.float()
        h = a.transpose(-1, -2) @ b                                          # (..., 3, 3)
        u, _, vt = torch.linalg.svd(h)
        d = torch.sign(torch.linalg.det(vt.transpose(-1, -2) @ u.transpose(-1, -2)))
        d = torch.where(d == 0, torch.ones_like(d), d)
        fix = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
        return vt.transpose(-1, -2) @ fix @ u.transpose(-1, -2)


def multiview_consistency_loss(pose_a: torch.Tensor, pose_b: torch.Tensor) -> torch.Tensor:
    """Disagreement of two views' predictions of one pose, metres.

    ``pose_a`` is rotated onto ``pose_b`` by :func:`rotation_onto` (computed without
    gradient: the rotation is the camera change, not something to learn) and the mean
    per-joint distance is returned; both predictions get the gradient. A rotation-only
    fit leaves each view's depth nowhere to hide: a joint too far in view a lands beside
    its place in view b. See Rhodin et al. CVPR 2018 and Wandt et al. CVPR 2021
    (multi-view consistency without calibration).

    Args:
        pose_a, pose_b: (..., J, 3) root-relative predictions in metres of the same
            frame seen by two cameras (any joint layout with its root at joint 0).
    Returns:
        scalar tensor, metres.
    """
    with torch.no_grad():
        r = rotation_onto(pose_a, pose_b)
    with torch.autocast(pose_a.device.type, enabled=False):
        rotated = pose_a.float() @ r.transpose(-1, -2)
        return torch.linalg.norm(rotated - pose_b.float(), dim=-1).mean()


def normal_loss(pred: torch.Tensor, target: torch.Tensor, triplets,
                weights: torch.Tensor | None = None, min_sine: float = 0.1) -> torch.Tensor:
    """Normal loss: orientation of local joint planes, 1 - cos(n_pred, n_target) (no unit).

    The normal of a triplet (a, b, c) is ``n = (p_b - p_a) x (p_c - p_a)``; the loss is the
    (weighted) mean over triplets of ``1 - n_pred . n_target / (|n_pred| |n_target|)``, 0
    for identical planes, 1 at right angles, 2 for a plane turned over. The geometry loss
    of SemGAN (Wen et al. 2024, with :func:`bone_length_loss` against the target's bone
    lengths), which compares normals of local planes of the skeleton as mesh-recovery
    losses compare face normals (Pose2Mesh, Choi et al. ECCV 2020; I2L-MeshNet, Moon &
    Lee ECCV 2020). Comparing unit normals leaves scale and bone lengths to the other
    terms and is invariant to the pose's size.

    Triplets whose target joints are nearly collinear (sine of the angle at ``a`` below
    ``min_sine``: a straight finger or elbow) have no defined plane and are left out, as
    are triplets with a non-finite target joint (a missing label) or a joint of weight 0.

    Args:
        pred, target: (..., J, 3) poses, same frame (any unit).
        triplets: (T, 3) joint indices, e.g. :data:`wsgcn_cli.skeletons.WHOLEBODY133_TRIPLETS`.
        weights: optional (..., J) per-joint weights; a triplet weighs the product of its three.
        min_sine: the smallest sine of the target's angle at ``a`` that counts as a plane.
    Returns:
        scalar tensor in [0, 2] (0 when no triplet counts).
    Raises:
        WsgcnError: shapes that do not match, or triplets that are not (T, 3) joint indices.
    """
    tri = np.asarray(triplets, dtype=np.int64)
    if pred.shape != target.shape or pred.shape[-1] != 3 or tri.ndim != 2 or tri.shape[-1] != 3 \
            or (tri.size and (tri.min() < 0 or tri.max() >= pred.shape[-2])):
        raise WsgcnError(f"normal loss needs pred and target (..., J, 3) of one shape and (T, 3) triplets of "
                         f"joints < J; got {tuple(pred.shape)}, {tuple(target.shape)}, {tri.shape}")
    tri = torch.as_tensor(tri, device=pred.device)
    known = torch.isfinite(target).all(-1)
    target = torch.where(known.unsqueeze(-1), target, 0.0)

    def edges(p):
        a = p[..., tri[:, 0], :]
        return p[..., tri[:, 1], :] - a, p[..., tri[:, 2], :] - a

    e1, e2 = edges(target)
    n_t = torch.linalg.cross(e1, e2)
    norm_t = torch.linalg.vector_norm(n_t, dim=-1)
    sine = norm_t / (torch.linalg.vector_norm(e1, dim=-1) * torch.linalg.vector_norm(e2, dim=-1)).clamp_min(1e-12)
    w = ((sine > min_sine) & known[..., tri].all(-1)).to(pred.dtype)
    if weights is not None:
        w = w * weights.to(pred.dtype)[..., tri].prod(-1)
    p1, p2 = edges(pred)
    n_p = torch.linalg.cross(p1, p2)
    # |n_p| floored at a sine of 1e-3: a nearly straight predicted triplet gets a bounded gradient
    floor = 1e-3 * torch.linalg.vector_norm(p1, dim=-1) * torch.linalg.vector_norm(p2, dim=-1)
    norm_p = torch.maximum(torch.linalg.vector_norm(n_p, dim=-1), floor).clamp_min(1e-12)
    cos = (n_p * n_t).sum(-1) / (norm_p * norm_t.clamp_min(1e-12))
    return _weighted_mean(1.0 - cos, w)


# -- time ---------------------------------------------------------------------------------

def temporal_smoothness_loss(seq: torch.Tensor, order: int = 2, frame_scale=None) -> torch.Tensor:
    """Mean norm of the ``order``-th time difference of pose sequences (B, T, J, 3).

    ``order=1``: velocity (metres/frame); ``order=2`` (default): acceleration
    (metres/frame²), zero for any motion at constant velocity. Consecutive entries along
    T must be consecutive frames of one person. Needs T > order.

    ``frame_scale``: optional (B,) factor per sequence applied to the differences; to
    express them per frame of a reference rate, pass ``(fps / fps_ref) ** order`` (the
    same motion filmed at 10 fps has 25 times the per-frame acceleration it has at 50 fps).
    """
    if seq.ndim < 3 or seq.shape[-3] <= order:
        raise WsgcnError(f"temporal smoothness of order {order} needs (B, T, J, 3) with T > {order}, "
                         f"got {tuple(seq.shape)}")
    d = seq
    for _ in range(order):
        d = d[..., 1:, :, :] - d[..., :-1, :, :]
    norm = torch.linalg.vector_norm(d, dim=-1)
    if frame_scale is not None:
        norm = norm * torch.as_tensor(frame_scale, dtype=norm.dtype, device=norm.device).reshape(
            (-1,) + (1,) * (norm.ndim - 1))
    return norm.mean()


def anchor_loss(pred: torch.Tensor, base_pred: torch.Tensor,
                weights: torch.Tensor | None = None) -> torch.Tensor:
    """MPJPE (metres) between an adapted lifter's outputs and the base model's (detached).

    Keeps self-supervised adaptation near the supervised solution (a proximal term);
    ``base_pred`` is the frozen base model's output for the same input, (..., J, 3).
    """
    return mpjpe_loss(pred, base_pred.detach(), weights)
