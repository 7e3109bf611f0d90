"""3D pose metrics (Human3.6M protocols), numpy, vectorised over frames.

All functions take predictions and ground truth of shape (N, J, 3) in the same unit
(millimetres when reporting) and return per-frame errors (N,) unless said otherwise;
average them yourself (per action, then over actions, as the papers do).

* MPJPE (Protocol 1): mean Euclidean joint error after aligning the roots (joint 0).
* P-MPJPE (Protocol 2): after a per-frame similarity Procrustes alignment (rotation,
  translation, scale) of the prediction to the ground truth (Umeyama 1991, as in
  VideoPose3D's ``p_mpjpe``).
* N-MPJPE: after the per-frame optimal scale of the root-relative prediction
  (Rhodin et al. 2018).
* MPJVE: error of joint velocities (first differences along time), (N-1,).
* Acceleration error: of second differences, (N-2,) (unit per frame squared).
"""

from __future__ import annotations

import numpy as np


def _root_align(x, root=0):
    return x - x[..., root : root + 1, :]


def mpjpe(pred, gt, root: int | None = 0):
    """Per-frame MPJPE (N,). ``root=None`` skips the root alignment."""
    if root is not None:
        pred, gt = _root_align(pred, root), _root_align(gt, root)
    return np.linalg.norm(pred - gt, axis=-1).mean(-1)


def procrustes_align(pred, gt):
    """Similarity-align each pred (N, J, 3) to gt; returns the aligned pred (N, J, 3)."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    mu_p, mu_g = pred.mean(1, keepdims=True), gt.mean(1, keepdims=True)
    p0, g0 = pred - mu_p, gt - mu_g
    norm_p = np.sqrt((p0**2).sum((1, 2), keepdims=True))
    norm_g = np.sqrt((g0**2).sum((1, 2), keepdims=True))
    norm_p = np.where(norm_p > 0, norm_p, 1.0)
    norm_g = np.where(norm_g > 0, norm_g, 1.0)
    p0, g0 = p0 / norm_p, g0 / norm_g
    h = np.einsum("nji,njk->nik", p0, g0)  # (N, 3, 3) = p0^T g0
    u, s, vt = np.linalg.svd(h)
    v = vt.transpose(0, 2, 1)
    r = v @ u.transpose(0, 2, 1)
    # Reflection fix: flip the last singular direction where det(R) < 0.
    sign = np.sign(np.linalg.det(r))[:, None]
    v[:, :, -1] *= sign
    s[:, -1] *= sign[:, 0]
    r = v @ u.transpose(0, 2, 1)
    scale = s.sum(1)[:, None, None] * norm_g / norm_p
    return scale * np.einsum("nij,nkj->nki", r, p0 * norm_p) + mu_g


def p_mpjpe(pred, gt):
    """Per-frame P-MPJPE (N,) after similarity Procrustes alignment."""
    return np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1).mean(-1)


def n_mpjpe(pred, gt, root: int = 0):
    """Per-frame N-MPJPE (N,): root-relative prediction scaled by the optimal factor."""
    p, g = _root_align(pred, root), _root_align(gt, root)
    num = (p * g).sum((1, 2), keepdims=True)
    den = (p * p).sum((1, 2), keepdims=True)
    scale = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    return np.linalg.norm(scale * p - g, axis=-1).mean(-1)


def mpjve(pred, gt, root: int | None = 0):
    """Per-step velocity error (N-1,) of a sequence (N, J, 3), roots aligned first."""
    if root is not None:
        pred, gt = _root_align(pred, root), _root_align(gt, root)
    return np.linalg.norm(np.diff(pred, axis=0) - np.diff(gt, axis=0), axis=-1).mean(-1)


def acceleration_error(pred, gt, root: int | None = 0):
    """Per-step acceleration error (N-2,) of a sequence (N, J, 3), roots aligned first."""
    if root is not None:
        pred, gt = _root_align(pred, root), _root_align(gt, root)
    return np.linalg.norm(
        np.diff(pred, n=2, axis=0) - np.diff(gt, n=2, axis=0), axis=-1
    ).mean(-1)


# ---------------------------------------------------------------------------------------
# Whole body (COCO-WholeBody-133), H3WB's definitions
# ---------------------------------------------------------------------------------------

def _h3wb_parts():
    from wsgcn_cli.skeletons import WHOLEBODY133_PARTS as parts, WHOLEBODY133_PELVIS as pelvis

    sl = {k: slice(*v) for k, v in parts.items()}
    return {
        "all": (slice(0, 133), pelvis), "body": (sl["body"], pelvis), "face": (sl["face"], (0,)),
        "left_hand": (sl["left_hand"], (parts["left_hand"][0],)),
        "right_hand": (sl["right_hand"], (parts["right_hand"][0],)),
        "face_pelvis": (sl["face"], pelvis), "left_hand_pelvis": (sl["left_hand"], pelvis),
        "right_hand_pelvis": (sl["right_hand"], pelvis),
    }


#: H3WB's parts of COCO-WholeBody-133 (:data:`wsgcn_cli.skeletons.WHOLEBODY133_PARTS`):
#: name -> (keypoints, alignment root(s)). The whole body and the body (COCO-17 + feet,
#: 0-22) are aligned at the pelvis (the mean of the hips 11 and 12); the face (23-90) at
#: the nose (0); each hand at its own wrist (91, 112); ``*_pelvis``: pelvis-aligned only.
WHOLEBODY_PARTS = _h3wb_parts()


def wholebody_mpjpe(pred, gt) -> dict:
    """Per-frame MPJPE (N,) of whole-body poses (N, 133, 3) per H3WB part
    (:data:`WHOLEBODY_PARTS`), in the input unit: ``all`` and ``body`` after pelvis
    alignment, ``face`` aligned at the nose, ``left_hand`` / ``right_hand`` at their
    wrists, ``hands`` the mean of both hands' keypoints; the ``*_pelvis`` entries are the
    face and hands after the pelvis alignment only. Raises WsgcnError on other shapes."""
    from wsgcn_cli.errors import WsgcnError

    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[1:] != (133, 3):
        raise WsgcnError(f"whole-body MPJPE needs pred and gt of shape (N, 133, 3); got {pred.shape} and {gt.shape}")
    out = {}
    for name, (part, root) in WHOLEBODY_PARTS.items():
        p = pred[:, part] - pred[:, list(root)].mean(1, keepdims=True)
        g = gt[:, part] - gt[:, list(root)].mean(1, keepdims=True)
        out[name] = np.linalg.norm(p - g, axis=-1).mean(-1)
    out["hands"] = (out["left_hand"] + out["right_hand"]) / 2
    out["hands_pelvis"] = (out["left_hand_pelvis"] + out["right_hand_pelvis"]) / 2
    return out


def h3wb_summary(pred_m, gt_m) -> dict:
    """H3WB scores of whole-body predictions against ground truth, both (N, 133, 3)
    metres (any common frame; each part is aligned at its root, :func:`wholebody_mpjpe`).

    Returns ``{"mpjpe_mm": all-133 MPJPE, "per_part": {part: mm}, "frames": N}``,
    averages over frames in millimetres.
    """
    per = wholebody_mpjpe(pred_m, gt_m)
    per_part = {k: float(v.mean() * 1000.0) for k, v in per.items() if k != "all"}
    return {"mpjpe_mm": float(per["all"].mean() * 1000.0), "per_part": per_part, "frames": int(len(per["all"]))}
