"""Human3.6M evaluation of a lifter: MPJPE (Protocol 1) and P-MPJPE (Protocol 2).

Errors are computed per frame (17 joints, millimetres, root-relative camera
coordinates), averaged per action (the 15 protocol actions; sub-takes such as
"Walking 1" belong to "Walking"), then over actions, as the papers do. N-MPJPE is
reported beside them, and the velocity (MPJVE) and acceleration errors of consecutive
frames of each sequence (per frame step of the evaluated data: mm/frame, mm/frame²). Our copy of Human3.6M lacks the 3D of S9 "Discussion 1", so it is
missing from every table; for Stacked-Hourglass input, S11 "Directions" camera
54138969 has no detections and is skipped too.

Whole-body lifters (COCO-WholeBody-133, :mod:`wsgcn_cli.models.semgan`) are scored with
H3WB's definitions (:func:`wsgcn_cli.metrics.wholebody_mpjpe`: all 133 and body after
pelvis alignment, face aligned at the nose, hands at the wrists) on an H3WB file
(:func:`evaluate_h3wb`; here only mmpose's fixture, one pose, which decides nothing) and
on the composite test split with its held-out FPHA hands (:func:`evaluate_composite`).
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
    pred = lift_h36m(lifter, data, kp, root, score)[ok] * 1000.0
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


def lift_h36m(lifter, data: h36m.H36MSamples, kp2d: np.ndarray, root=None, score=None,
              batch_size: int = 1024) -> np.ndarray:
    """``lifter`` (a :class:`wsgcn_cli.lifter.Lifter`) on Human3.6M samples: pixel keypoints
    ``kp2d`` (N, 17, 2) of ``data``'s samples -> (N, 17, 3) root-relative camera coordinates,
    metres, NaN where the 2D is incomplete. Each sample's image size and, for a
    ``"virtual_camera"`` lifter, its camera's focal length and principal point (the
    cameras file under ``root``) go with it; ``score`` (N, 17) to a confidence-reading lifter."""
    extra = {} if score is None else {"score": np.asarray(score)}
    if getattr(lifter, "codec_mode", None) == "virtual_camera":
        cam = h36m.intrinsics(data, root)
        extra.update(focal=cam["f"], center=cam["c"])
    size = data.image_size.astype(np.float32)
    return lifter(kp2d, size[:, 0, None, None], size[:, 1, None, None], batch_size=batch_size, **extra)


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


# ---------------------------------------------------------------------------------------
# Whole body (COCO-WholeBody-133): H3WB fixture, composite test split, held-out FPHA hands
# ---------------------------------------------------------------------------------------

#: ``wsgcn eval --source`` values for a whole-body lifter: the H3WB fixture (``gt`` is the
#: same: its 2D is the projected ground truth), the composite test split with
#: detector-like 2D, or with exact 2D.
WHOLEBODY_SOURCES = ("h3wb", "composite", "composite-clean")


def fixture_note(entries: int, poses: int) -> str:
    """What an H3WB fixture score is worth, said beside the number."""
    return f"{entries} fixture samples ({'one pose' if poses == 1 else f'{poses} poses'}) decide nothing"


def predict_wholebody(lifter, kp2d, score=None) -> np.ndarray:
    """A whole-body lifter's 3D of every keypoint, the guess for unseen ones included.

    Args:
        lifter: a :class:`wsgcn_cli.lifter.WholeBodyLifter` (its flip test as ``lift`` uses it).
        kp2d: (N, 133, 2) pixels (NaN where unseen); score: optional (N, 133).
    Returns:
        (N, 133, 3) float64, root-relative camera frame (pelvis = mean of 11 and 12), metres.
    Raises:
        WsgcnError: inputs of another shape (:func:`wsgcn_cli.models.semgan.encode_input`).
    """
    x = lifter.encode(np.asarray(kp2d, np.float32), None if score is None else np.asarray(score, np.float32))
    return np.asarray(lifter.predict_normalized(x, batch_size=1024), np.float64)


def _wholebody_scores(pred_m: np.ndarray, gt_m: np.ndarray) -> dict:
    """H3WB summary (``mpjpe_mm``, ``per_part``, ``frames``) plus the all-133 P-MPJPE (mm)."""
    r = metrics.h3wb_summary(pred_m, gt_m)
    r["p_mpjpe_mm"] = float(metrics.p_mpjpe(pred_m * 1000.0, gt_m * 1000.0).mean())
    return r


def evaluate_h3wb(lifter, path=None) -> dict:
    """H3WB scores of a whole-body lifter (:class:`wsgcn_cli.lifter.WholeBodyLifter`) on an H3WB file (default: the mmpose fixture,
    :func:`wsgcn_cli.data.h3wb.default_path`), its stored 2D as input (score 1).

    H3WB's definitions (:func:`wsgcn_cli.metrics.wholebody_mpjpe`): all 133 and the body
    (0-22) after pelvis alignment (mean of 11, 12), the face aligned at the nose, each
    hand at its wrist. Returns ``mpjpe_mm`` (all 133), ``p_mpjpe_mm``, ``per_part`` (mm),
    ``frames`` (entries), ``poses`` (distinct samples), ``note`` (what the number is
    worth), ``file``. Raises WsgcnError for a missing or unreadable file.
    """
    from wsgcn_cli.data import h3wb
    from wsgcn_cli.skeletons import WHOLEBODY133_PELVIS

    s = h3wb.load(path)
    gt = s.pose3d - s.pose3d[:, list(WHOLEBODY133_PELVIS)].mean(1, keepdims=True)
    r = _wholebody_scores(predict_wholebody(lifter, s.kp2d), gt)
    poses = len(set(s.sample_id.tolist()))
    r.update(source="h3wb", flip_test=lifter.flip_test, poses=poses, note=fixture_note(len(s), poses), file=str(path or h3wb.default_path()),
             input_2d="the file's 2D (pinhole projection of the 3D), every keypoint seen, score 1")
    return r


def evaluate_composite(lifter, root=None, samples: int = 16384, seed: int = 0, clean: bool = False,
                       virtual_probability: float = 0.5, stride: int = 1, noise=None) -> dict:
    """Whole-body lifter (:class:`wsgcn_cli.lifter.WholeBodyLifter`) on the composite *test* split (:class:`wsgcn_cli.data.wholebody.WholeBodyComposite`:
    Human3.6M S9 S11 bodies, FPHA subject 6 hands, AFLW2000-3D faces 1600-1999), and its
    hands alone: the held-out FPHA subject's.

    ``samples`` bodies (every ``stride``-th S9/S11 frame, a fixed ``seed``'s random subset),
    each with a random held-out hand per side and a random held-out face, seen by a
    Human3.6M camera or (``virtual_probability``) a random virtual one; 2D detector-like
    (``noise``, default :class:`~wsgcn_cli.data.wholebody.DetectorNoise`, with dropped
    faces, hands and feet) or exact (``clean``).

    Returns ``mpjpe_mm`` (all 133 pelvis-aligned), ``p_mpjpe_mm``, ``per_part`` (H3WB's
    definitions, mm, every sample, seen or not), ``frames``; ``labelled_mpjpe_mm`` (the
    measured keypoints only, without the rule-made eyes, ears and feet); ``fpha_hands``:
    wrist-aligned ``mpjpe_mm`` and Procrustes-aligned ``p_mpjpe_mm`` of the 21 keypoints
    of each hand seen in 2D (left hands are mirrored FPHA right hands), ``hands`` (count),
    ``fpha_frames`` (held-out frames they are drawn from), ``unseen_mpjpe_mm`` and
    ``unseen_hands`` for hands missing in 2D (the lifter's guess). Raises WsgcnError if a
    source file is missing.
    """
    import torch

    from wsgcn_cli.data import wholebody as wb

    test = wb.WholeBodyComposite("test", "cpu", root, stride)
    g = torch.Generator().manual_seed(seed)
    n = min(samples, len(test))
    idx = torch.randperm(len(test), generator=g)[:n]
    preds, gts, scores = [], [], []
    for i in range(0, n, 4096):  # chunks of a fixed size: the draws (hands, faces, cameras, noise) depend on it
        b = test.batch(idx[i:i + 4096], g, virtual_probability, wb.NO_NOISE if clean else (noise or wb.DetectorNoise()))
        preds.append(predict_wholebody(lifter, b.kp2d.numpy(), b.score.numpy()))
        gts.append(b.pose3d.double().numpy())
        scores.append(b.score.numpy())
    pred, gt, score = np.concatenate(preds), np.concatenate(gts), np.concatenate(scores)
    r = _wholebody_scores(pred, gt)
    lab = wb.LABELLED
    r["labelled_mpjpe_mm"] = float(np.linalg.norm(pred[:, lab] - gt[:, lab], axis=-1).mean() * 1000.0)
    seen_err, seen_p, unseen = [], [], []
    for lo, hi in ((91, 112), (112, 133)):
        p, t = pred[:, lo:hi] * 1000.0, gt[:, lo:hi] * 1000.0
        err = metrics.mpjpe(p, t, root=0)
        seen = (score[:, lo:hi] > 0).all(1)
        seen_err.append(err[seen])
        seen_p.append(metrics.p_mpjpe(p[seen], t[seen]) if seen.any() else np.zeros(0))
        unseen.append(err[~seen])
    seen_err, seen_p, unseen = (np.concatenate(v) for v in (seen_err, seen_p, unseen))
    r["fpha_hands"] = {
        "mpjpe_mm": float(seen_err.mean()) if len(seen_err) else float("nan"),
        "p_mpjpe_mm": float(seen_p.mean()) if len(seen_p) else float("nan"),
        "hands": int(len(seen_err)), "fpha_subjects": list(wb.FPHA_TEST_SUBJECTS), "fpha_frames": len(test.hands),
        "unseen_mpjpe_mm": float(unseen.mean()) if len(unseen) else None, "unseen_hands": int(len(unseen)),
        "alignment": "wrist (MPJPE), similarity Procrustes of the 21 keypoints (P-MPJPE)",
    }
    r.update(source="composite-clean" if clean else "composite", flip_test=lifter.flip_test, split="test", subjects=list(test.subjects),
             bodies=len(test), faces=len(test.faces), seed=seed, stride=stride,
             virtual_probability=virtual_probability,
             input_2d="exact projection, every keypoint seen" if clean else
             "detector-like (DetectorNoise: noise, shifted parts, gross errors, dropped faces/hands/feet)")
    return r


def wholebody_table(result: dict, title: str = ""):
    """A rich Table of a whole-body result (:func:`evaluate_h3wb`, :func:`evaluate_composite`)."""
    from rich.table import Table

    default = f"whole body, {result['source']}: {result['frames']} samples"
    if result.get("note"):  # the number and what it is worth, side by side
        default = f"whole body, {result['source']}: all 133 {result['mpjpe_mm']:.1f} mm ({result['note']})"
    t = Table(title=title or default)
    t.add_column("part (alignment)")
    t.add_column("MPJPE (mm)", justify="right")
    names = {"body": "body 0-22 (pelvis)", "face": "face (nose)", "left_hand": "left hand (wrist)",
             "right_hand": "right hand (wrist)", "hands": "hands (wrists)"}
    t.add_row("[b]all 133 (pelvis)[/b]", f"{result['mpjpe_mm']:.1f}")
    for key, label in names.items():
        t.add_row(label, f"{result['per_part'][key]:.1f}")
    t.add_row("all 133, P-MPJPE", f"{result['p_mpjpe_mm']:.1f}")
    hands = result.get("fpha_hands")
    if hands:
        t.add_row(f"FPHA subject 6 hands seen ({hands['hands']}), wrist", f"{hands['mpjpe_mm']:.1f}")
        t.add_row("  the same, P-MPJPE", f"{hands['p_mpjpe_mm']:.1f}")
    return t
