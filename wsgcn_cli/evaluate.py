"""Human3.6M evaluation of a lifter: MPJPE (Protocol 1) and P-MPJPE (Protocol 2).

Errors are computed per frame (17 joints, millimetres, root-relative camera
coordinates), averaged per action (the 15 protocol actions; sub-takes such as
"Walking 1" belong to "Walking"), then over actions, as the papers do. N-MPJPE is
reported beside them, and the velocity (MPJVE) and acceleration errors of consecutive
frames of each sequence (per frame step of the evaluated data: mm/frame, mm/frame²). Our copy of Human3.6M lacks the 3D of S9 "Discussion 1", so it is
missing from every table; for Stacked-Hourglass input, S11 "Directions" camera
54138969 has no detections and is skipped too.
"""

from __future__ import annotations

import warnings

import numpy as np

from wsgcn_cli import metrics
from wsgcn_cli.codec import to_metres_root_relative
from wsgcn_cli.data import h36m


def evaluate(lifter, root=None, source: str = "gt", subjects=h36m.TEST_SUBJECTS,
             stride: int = 1, data: h36m.H36MSamples | None = None, score: np.ndarray | None = None) -> dict:
    """Evaluate ``lifter`` (a :class:`wsgcn_cli.lifter.Lifter`) on Human3.6M.

    Args:
        root: folder of the Human3.6M files (default ``../shared/data/h36m``).
        source: 2D input, ``"gt"`` (projected ground truth) or ``"sh"`` (Stacked
            Hourglass detections).
        stride: evaluate every ``stride``-th frame (1 = all frames, the protocol).
        data: already loaded samples (then ``root``/``subjects``/``stride`` are unused).
        score: (N, 17) keypoint confidences for ``data``'s samples, given to the lifter
            (read by a ``confidence_input`` lifter, see :class:`wsgcn_cli.lifter.Lifter`).
    Returns:
        dict with ``mpjpe_mm``, ``p_mpjpe_mm``, ``n_mpjpe_mm`` (per-action averages),
        ``per_action`` {action: {mpjpe_mm, p_mpjpe_mm, n_mpjpe_mm, frames}}, ``frames``,
        ``source``, ``subjects``, ``stride``, ``missing_3d``, ``skipped_no_2d``.
    """
    if data is None:
        data = h36m.load(subjects, root, stride, with_sh=(source == "sh"))
    kp = data.kp2d(source)
    ok = np.isfinite(kp).all(axis=(1, 2))
    width = data.image_size[ok, 0, None, None].astype(np.float32)
    height = data.image_size[ok, 1, None, None].astype(np.float32)
    if score is None:
        pred = lifter(kp[ok], width, height) * 1000.0
    else:
        pred = lifter(kp[ok], width, height, score=np.asarray(score)[ok]) * 1000.0
    gt = to_metres_root_relative(data.pose3d[ok]) * 1000.0
    per_frame = {
        "mpjpe_mm": metrics.mpjpe(pred, gt),
        "p_mpjpe_mm": metrics.p_mpjpe(pred, gt),
        "n_mpjpe_mm": metrics.n_mpjpe(pred, gt),
    }
    # velocity / acceleration errors need consecutive frames of one sequence, at the
    # data's own frame spacing; values are per step (mm/frame, mm/frame^2)
    seq, frame = data.sequence[ok], data.frame[ok]
    same = np.diff(seq) == 0
    step = int(np.diff(frame)[same].min()) if same.any() else 1
    cut = np.flatnonzero(~same | (np.diff(frame) != step)) + 1
    vel, acc = np.full(len(pred), np.nan), np.full(len(pred), np.nan)
    for a, b in zip(np.r_[0, cut], np.r_[cut, len(seq)]):
        if b - a > 1:
            vel[a + 1 : b] = metrics.mpjve(pred[a:b], gt[a:b])
        if b - a > 2:
            acc[a + 2 : b] = metrics.acceleration_error(pred[a:b], gt[a:b])
    per_frame["mpjve_mm"], per_frame["accel_mm"] = vel, acc
    actions = data.action[ok]
    per_action = {}
    for i, name in enumerate(h36m.ACTIONS):
        sel = actions == i
        if sel.any():
            with warnings.catch_warnings():  # velocity/acceleration of a 1-2 frame action: NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                per_action[name] = {k: float(np.nanmean(v[sel])) for k, v in per_frame.items()}
            per_action[name]["frames"] = int(sel.sum())
    result = {k: float(np.mean([a[k] for a in per_action.values()])) for k in per_frame}
    result.update(
        per_action=per_action,
        frames=int(ok.sum()),
        source=source,
        subjects=list(data.subjects),
        stride=stride,
        frame_step=step,
        fps=h36m.FPS / step,
        joints=17,
        missing_3d=[s for s in h36m.missing_3d(root) if s.split("/")[0] in data.subjects],
        skipped_no_2d=int((~ok).sum()),
    )
    return result


def table(result: dict, title: str = ""):
    """A rich Table of a result from :func:`evaluate` (per action, then the average)."""
    from rich.table import Table

    t = Table(title=title or f"Human3.6M {'/'.join(result['subjects'])}, 2D: {result['source']}")
    t.add_column("action")
    t.add_column("MPJPE (mm)", justify="right")
    t.add_column("P-MPJPE (mm)", justify="right")
    t.add_column("MPJVE (mm/frame)", justify="right")
    t.add_column("accel (mm/frame²)", justify="right")
    t.add_column("frames", justify="right")
    for name, r in list(result["per_action"].items()) + [("[b]average[/b]", result)]:
        t.add_row(name, f"{r['mpjpe_mm']:.2f}", f"{r['p_mpjpe_mm']:.2f}", f"{r['mpjve_mm']:.2f}",
                  f"{r['accel_mm']:.2f}", str(r["frames"]))
    missing = ", ".join(result["missing_3d"]) or "none"
    t.caption = (f"Averaged per action, then over actions; velocity and acceleration per frame at "
                 f"{result['fps']:g} fps. No 3D in our copy (not evaluated): {missing}")
    if result.get("skipped_no_2d"):
        t.caption += f"; {result['skipped_no_2d']} samples without 2D skipped"
    return t
