"""Human3.6M evaluation of a lifter: MPJPE (Protocol 1) and P-MPJPE (Protocol 2).

Errors are computed per frame (17 joints, millimetres, root-relative camera
coordinates), averaged per action (the 15 protocol actions; sub-takes such as
"Walking 1" belong to "Walking"), then over actions, as the papers do. N-MPJPE is
reported beside them. Our copy of Human3.6M lacks the 3D of S9 "Discussion 1", so it is
missing from every table; for Stacked-Hourglass input, S11 "Directions" camera
54138969 has no detections and is skipped too.
"""

from __future__ import annotations

import numpy as np

from wsgcn_cli import metrics
from wsgcn_cli.codec import to_metres_root_relative
from wsgcn_cli.data import h36m


def evaluate(lifter, root=None, source: str = "gt", subjects=h36m.TEST_SUBJECTS,
             stride: int = 1, data: h36m.H36MSamples | None = None) -> dict:
    """Evaluate ``lifter`` (a :class:`wsgcn_cli.lifter.Lifter`) on Human3.6M.

    Args:
        root: folder of the Human3.6M files (default ``../shared/data/h36m``).
        source: 2D input, ``"gt"`` (projected ground truth) or ``"sh"`` (Stacked
            Hourglass detections).
        stride: evaluate every ``stride``-th frame (1 = all frames, the protocol).
        data: already loaded samples (then ``root``/``subjects``/``stride`` are unused).
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
    pred = lifter(kp[ok], width, height) * 1000.0
    gt = to_metres_root_relative(data.pose3d[ok]) * 1000.0
    per_frame = {
        "mpjpe_mm": metrics.mpjpe(pred, gt),
        "p_mpjpe_mm": metrics.p_mpjpe(pred, gt),
        "n_mpjpe_mm": metrics.n_mpjpe(pred, gt),
    }
    actions = data.action[ok]
    per_action = {}
    for i, name in enumerate(h36m.ACTIONS):
        sel = actions == i
        if sel.any():
            per_action[name] = {k: float(v[sel].mean()) for k, v in per_frame.items()}
            per_action[name]["frames"] = int(sel.sum())
    result = {k: float(np.mean([a[k] for a in per_action.values()])) for k in per_frame}
    result.update(
        per_action=per_action,
        frames=int(ok.sum()),
        source=source,
        subjects=list(data.subjects),
        stride=stride,
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
    t.add_column("frames", justify="right")
    for name, r in result["per_action"].items():
        t.add_row(name, f"{r['mpjpe_mm']:.2f}", f"{r['p_mpjpe_mm']:.2f}", str(r["frames"]))
    t.add_row("[b]average[/b]", f"[b]{result['mpjpe_mm']:.2f}[/b]", f"[b]{result['p_mpjpe_mm']:.2f}[/b]",
              str(result["frames"]))
    missing = ", ".join(result["missing_3d"]) or "none"
    t.caption = f"No 3D in our copy (not evaluated): {missing}"
    if result.get("skipped_no_2d"):
        t.caption += f"; {result['skipped_no_2d']} samples without 2D skipped"
    return t
