"""Does the 2D pose representation network give the lifter better 2D and 3D? (issue 4's targets)

Measures a lift pipeline with the network (default ``body17-network``: the network, its
``detected_weight`` and its lifter, read from the pipeline file) against ``body17`` (the
geometric mapping and the detected-2D lifter, what ``lift`` runs by default):

1. Human3.6M S9/S11 with Stacked-Hourglass detections: mean 2D error (px, 17 joints,
   against the projected ground truth) of the raw detections (``adjust=False`` mapping:
   SH joints as they are, Neck/Nose on the thorax-head segment), of the geometric
   mapping, and of the network's output (as the pipeline mixes it, and alone).
2. MPJPE / P-MPJPE (flip test, per-action averages): ``body17``'s lifter on the
   geometric 2D; the pipeline's lifter on the network's output (with the network's
   confidences when that lifter reads them); ``body17``'s lifter on the network's output.
3. 30 % of the input joints dropped at random. Through the pipeline's 2D stage, the
   one ``lift`` runs (:meth:`wsgcn_cli.pipeline.Pipeline.run`): the dropped joints are
   interpolated in time per sequence (gap filling, at most ``max_gap_frames`` frames of
   the evaluated rate), then the network cleans every joint and completes those still
   missing. Also the network alone on each frame (no
   gap filling: single images), and ``body17``'s lifter alone with gap filling only
   (frames still incomplete are left out and counted). Rises are over complete input
   through the same path.
4. ``../shared/data/videos/body3d_demo.mp4`` (Human3.6M S11 "WalkDog 1", camera
   60457274): ``lift`` with ``body17`` and with the pipeline, 2D error on the 12 limb
   joints and all 17 against the projected ground truth, and the 3D error.

    python benchmarks/representation_h36m.py [--pipeline body17-network] [--stride 5] [--card]

Writes ``benchmarks/results/representation_h36m.json`` (``--card``: also the model cards
of the pipeline's network and, if it was trained with it, its lifter). Every
``--stride``-th frame of every camera is used (1: all frames).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from body3d_demo import LIMB_JOINTS, REPO, SHARED, VIDEO, ground_truth  # beside this script


def raw_sh(kp17):
    """The adjust=False mapping of the SH-16 detections behind the adjusted H36M-17 ones."""
    import numpy as np

    from wsgcn_cli.pose2d.mapping import mapping_matrix

    w_adj, w_raw = mapping_matrix("sh16", True), mapping_matrix("sh16", False)
    raw16 = np.einsum("jk,nkc->njc", np.linalg.pinv(w_adj), kp17)
    assert np.allclose(np.einsum("kj,njc->nkc", w_adj, raw16[:50]), kp17[:50], atol=1e-2)
    return np.einsum("kj,njc->nkc", w_raw, raw16).astype(np.float32)


def through_2d_stage(pipe, data, kp):
    """``pipe``'s 2D stage (:meth:`wsgcn_cli.pipeline.Pipeline.run`: gap filling, then its network if it
    has one) over each sequence of ``data`` (50 fps frame times, scores 1 where ``kp`` is present)
    -> (xy (N, 17, 2) px, confidences (N, 17))."""
    import numpy as np

    from wsgcn_cli.detect.base import Keypoints2D

    xy, conf = np.array(kp, np.float32, copy=True), np.zeros(kp.shape[:2], np.float32)
    cut = np.flatnonzero(np.diff(data.sequence)) + 1
    for a, b in zip(np.r_[0, cut], np.r_[cut, len(kp)]):
        seg = Keypoints2D("h36m17", kp[a:b], np.isfinite(kp[a:b]).all(-1).astype(np.float32),
                          np.arange(b - a) / 50.0, 1000, 1000, 50.0)
        track = pipe.run(seg, lift=False)
        xy[a:b], conf[a:b] = track.keypoints_2d, track.scores
    return xy, conf


def lifted(lifter, data, kp, evaluate, with_sh, score=None):
    """MPJPE etc. of ``lifter`` on 2D ``kp`` for ``data``'s samples (``score``: confidences,
    read by a ``confidence_input`` lifter and ignored by others)."""
    r = evaluate(lifter, source="sh", data=with_sh(data, kp), score=score)
    return {k: r[k] for k in ("mpjpe_mm", "p_mpjpe_mm", "frames", "skipped_no_2d")}


def per_joint_split(lifter, data, ok, full_xy, full_conf, drop_xy, drop_conf, dropped):
    """Where single-frame dropout costs: mean 3D error (mm, per frame, no per-action
    averaging) of the dropped joints and of the joints that stayed, with complete input
    and with the dropout, over the frames the network completed."""
    import numpy as np

    from wsgcn_cli.codec import to_metres_root_relative

    miss = ~np.isfinite(dropped).all(-1)
    rows = ok & np.isfinite(drop_xy).all(axis=(1, 2))
    gt = to_metres_root_relative(data.pose3d[rows]) * 1000.0
    err = {}
    for name, xy, conf in (("complete", full_xy, full_conf), ("dropped", drop_xy, drop_conf)):
        err[name] = np.linalg.norm(lifter(xy[rows], score=conf[rows]) * 1000.0 - gt, axis=-1)
    m = miss[rows]
    return {"dropped_joints_mm": {"complete_input": float(err["complete"][m].mean()),
                                  "with_dropout": float(err["dropped"][m].mean())},
            "kept_joints_mm": {"complete_input": float(err["complete"][~m].mean()),
                               "with_dropout": float(err["dropped"][~m].mean())}}


def body3d_demo(pipe: str, baseline: str, data_root: Path, work: Path):
    """2D and 3D errors of ``lift`` on body3d_demo.mp4 with the ``baseline`` pipeline and
    with ``pipe`` (the baseline's 2D keypoints are reused, so both see the same detections)."""
    import numpy as np

    from wsgcn_cli import api, metrics

    gt3d, gt2d, _ = ground_truth(data_root)
    outs = {}
    r = api.lift(VIDEO, pipeline=baseline, out_dir=work / "geometric", video=False, overwrite=True, quiet=True)
    outs["geometric"] = np.load(r["outputs"]["npz"])
    r = api.lift(VIDEO, pipeline=pipe, out_dir=work / "network", keypoints=r["outputs"]["npz"],
                 video=False, overwrite=True, quiet=True)
    outs["network"] = np.load(r["outputs"]["npz"])
    result = {}
    for name, z in outs.items():
        err2d = np.linalg.norm(z["keypoints_2d"] - gt2d, axis=-1)
        pred = z["keypoints_3d"].astype(np.float64) * 1000.0
        ok = np.isfinite(pred).all(axis=(1, 2))
        result[name] = {"px_12_limb_joints": float(np.nanmean(err2d[:, LIMB_JOINTS])),
                        "px_17_joints": float(np.nanmean(err2d)),
                        "mpjpe_mm": float(metrics.mpjpe(pred[ok], gt3d[ok]).mean()),
                        "p_mpjpe_mm": float(metrics.p_mpjpe(pred[ok], gt3d[ok]).mean()), "frames": int(ok.sum())}
    raw = outs["geometric"]["detector_keypoints"]
    from wsgcn_cli.detect.base import Keypoints2D
    from wsgcn_cli.pose2d.mapping import to_h36m17

    kp = to_h36m17(Keypoints2D("blazepose33", raw, outs["geometric"]["detector_scores"], np.arange(len(raw)) / 50.0,
                               1000, 1002, 50.0), adjust=False)
    result["raw_blazepose"] = {"px_12_limb_joints": float(np.nanmean(np.linalg.norm(kp.xy - gt2d, axis=-1)[:, LIMB_JOINTS]))}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="body17-network",
                        help="lift pipeline with [representation] kind = \"network\" (name or .toml)")
    parser.add_argument("--baseline", default="body17", help="lift pipeline without the network to compare with")
    parser.add_argument("--data", default=str(SHARED / "h36m"))
    parser.add_argument("--stride", type=int, default=5)
    parser.add_argument("--drop", type=float, default=0.3)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "representation_h36m.json"))
    parser.add_argument("--card", action="store_true", help="also write the model cards of the pipeline's weights "
                        "(the network's and, if trained with it, the lifter's)")
    args = parser.parse_args()

    import numpy as np

    from wsgcn_cli.data import h36m
    from wsgcn_cli.evaluate import evaluate
    from wsgcn_cli.io.atomic import write_json
    from wsgcn_cli.pipeline import Pipeline, resolve_path
    from wsgcn_cli.train.representation import drop_joints, with_sh

    t0 = time.time()
    pipe = Pipeline.from_file(args.pipeline, device="cpu", refine=False)
    base_pipe = Pipeline.from_file(args.baseline, device="cpu", refine=False)
    spec, base_spec = pipe.spec, base_pipe.spec
    if pipe.net is None:
        parser.error(f"pipeline {spec['name']} has no representation network")
    weights = resolve_path(pipe.representation.weights, spec)
    w_det = pipe.representation.detected_weight
    rep, lifter, base = pipe.net, pipe.lifter, base_pipe.lifter
    data = h36m.load(h36m.TEST_SUBJECTS, args.data, args.stride, with_sh=True)
    ok = np.isfinite(data.kp2d_sh).all(axis=(1, 2))
    geo = data.kp2d_sh
    ones = np.ones(geo.shape[:2], np.float32)
    net, conf = rep(geo, ones, detected_weight=w_det)
    net_only, conf_only = rep(geo, ones)

    def px(kp):
        e = np.linalg.norm(kp[ok] - data.kp2d_gt[ok], axis=-1)
        return {"px_17_joints": float(np.nanmean(e)), "px_12_limb_joints": float(np.nanmean(e[:, LIMB_JOINTS]))}

    result = {"subjects": list(h36m.TEST_SUBJECTS), "stride": args.stride, "samples": int(ok.sum()),
              "pipeline": spec["name"], "baseline": base_spec["name"], "weights": weights.name,
              "lifter": pipe.lifter_path.name, "baseline_lifter": base_pipe.lifter_path.name,
              "lifter_reads_confidence": lifter.confidence_input, "detected_weight": w_det}
    result["sh_2d"] = {"raw": px(raw_sh(np.where(ok[:, None, None], geo, 0.0))), "geometric": px(geo),
                       "network": px(net), "network_only": px(net_only)}
    print("2D error (px, 17 joints):", {k: round(v["px_17_joints"], 2) for k, v in result["sh_2d"].items()}, flush=True)
    result["lifter_sh"] = {"geometric": lifted(base, data, geo, evaluate, with_sh),
                           "network": lifted(lifter, data, net, evaluate, with_sh, conf),
                           "network_baseline_lifter": lifted(base, data, net, evaluate, with_sh)}
    if w_det:
        result["lifter_sh"]["network_only"] = lifted(lifter, data, net_only, evaluate, with_sh, conf_only)
    print("MPJPE with SH 2D:", {k: round(v["mpjpe_mm"], 2) for k, v in result["lifter_sh"].items()}, flush=True)

    dropped = drop_joints(geo, args.drop, seed=0)
    filled, _ = through_2d_stage(base_pipe, data, dropped)          # gap filling alone (the baseline's 2D stage)
    net_d, conf_d = through_2d_stage(pipe, data, dropped)           # the 2D stage as `lift` runs it
    net_frame, conf_frame = rep(dropped, ones, detected_weight=w_det)   # the network alone, frame by frame
    d = result["dropout"] = {
        "fraction": args.drop,
        "network": {**lifted(lifter, data, net_d, evaluate, with_sh, conf_d), **px(net_d)},
        "network_per_frame": {**lifted(lifter, data, net_frame, evaluate, with_sh, conf_frame), **px(net_frame)},
        "lifter_alone_gap_filled": {**lifted(base, data, filled, evaluate, with_sh), **px(filled)},
    }
    d["network_per_frame"].update(per_joint_split(lifter, data, ok, net, conf, net_frame, conf_frame, dropped))
    full = result["lifter_sh"]["network"]["mpjpe_mm"]
    for key in ("network", "network_per_frame"):
        d[f"{key}_mpjpe_rise_percent"] = 100 * (d[key]["mpjpe_mm"] / full - 1)
    d["lifter_alone_mpjpe_rise_percent"] = 100 * (d["lifter_alone_gap_filled"]["mpjpe_mm"]
                                                  / result["lifter_sh"]["geometric"]["mpjpe_mm"] - 1)
    print(f"{args.drop:.0%} joints dropped: 2D stage {d['network']['mpjpe_mm']:.2f} mm "
          f"({d['network_mpjpe_rise_percent']:+.1f} %); network alone per frame {d['network_per_frame']['mpjpe_mm']:.2f} mm "
          f"({d['network_per_frame_mpjpe_rise_percent']:+.1f} %); lifter alone (gap filled) "
          f"{d['lifter_alone_gap_filled']['mpjpe_mm']:.2f} mm ({d['lifter_alone_mpjpe_rise_percent']:+.1f} %)", flush=True)
    if VIDEO.is_file():
        with tempfile.TemporaryDirectory() as work:
            result["body3d_demo"] = body3d_demo(spec["path"], base_spec["path"], Path(args.data), Path(work))
        print("body3d_demo:", json.dumps(result["body3d_demo"]), flush=True)
    result.update(wall_s=round(time.time() - t0, 1), machine=f"{platform.machine()}", python=platform.python_version())
    write_json(args.out, result)
    print(f"wrote {args.out}")
    if args.card:
        for card in write_cards(weights, pipe.lifter_path, result):
            print(f"wrote {card}")


def card_markdown(r: dict) -> str:
    """The benchmark's results as the Markdown of a model card."""
    sh, ls, d = r["sh_2d"], r["lifter_sh"], r["dropout"]
    conf = " with the network's confidences" if r.get("lifter_reads_confidence") else ""
    lines = [f"Human3.6M S9/S11, every {r['stride']}th frame of every camera ({r['samples']} samples), "
             "Stacked-Hourglass detections; 2D error against the projected ground truth; 3D with flip test, "
             f"per-action averages. `lift --pipeline {r['pipeline']}` (network `{r['weights']}`, lifter "
             f"`{r['lifter']}`{conf}) against `{r['baseline']}` (geometric mapping, lifter `{r['baseline_lifter']}`); "
             "`benchmarks/representation_h36m.py`.", "",
             "| 2D input | lifter | 2D error, 17 joints (px) | 12 limb joints (px) | MPJPE (mm) | P-MPJPE (mm) |",
             "|---|---|---:|---:|---:|---:|",
             f"| raw SH detections (no adjustment) | | {sh['raw']['px_17_joints']:.2f} | "
             f"{sh['raw']['px_12_limb_joints']:.2f} | | |"]
    w = r.get("detected_weight", 0.0)
    rows = [("geometric", "geometric", "geometric mapping (`lift` without the network)", r["baseline_lifter"]),
            ("network", "network", "geometric mapping -> network" + (f", detected joints weighted {w:g}" if w else ""),
             r["lifter"]),
            ("network_only", "network_only", "geometric mapping -> network alone", r["lifter"]),
            ("network", "network_baseline_lifter", "geometric mapping -> network" + (f" ({w:g})" if w else ""),
             r["baseline_lifter"])]
    for key2d, key3d, label, lifter in rows:
        if key3d in ls:
            lines.append(f"| {label} | `{lifter}` | {sh[key2d]['px_17_joints']:.2f} | {sh[key2d]['px_12_limb_joints']:.2f} | "
                         f"{ls[key3d]['mpjpe_mm']:.2f} | {ls[key3d]['p_mpjpe_mm']:.2f} |")
    a, n, f = d["lifter_alone_gap_filled"], d["network"], d["network_per_frame"]
    lines += ["", f"With {d['fraction']:.0%} of the input joints dropped at random (rise over complete input "
              "through the same path):", "",
              "| | 2D error (px) | MPJPE (mm) | rise over complete input |", "|---|---:|---:|---:|",
              f"| gap filling, then the network (the 2D stage as `lift` runs it on video) | {n['px_17_joints']:.2f} | "
              f"{n['mpjpe_mm']:.2f} | {d['network_mpjpe_rise_percent']:+.1f} % |",
              f"| the network alone, frame by frame (single images) | {f['px_17_joints']:.2f} | {f['mpjpe_mm']:.2f} | "
              f"{d['network_per_frame_mpjpe_rise_percent']:+.1f} % |",
              f"| lifter `{r['baseline_lifter']}` alone, dropped joints interpolated in time (gap filling) | "
              f"{a['px_17_joints']:.2f} | {a['mpjpe_mm']:.2f} | {d['lifter_alone_mpjpe_rise_percent']:+.1f} % |"]
    if "dropped_joints_mm" in f:
        dj, kj = f["dropped_joints_mm"], f["kept_joints_mm"]
        lines += ["", "Where single frames lose (3D error per joint, mm): the dropped joints "
                  f"{dj['complete_input']:.1f} with complete input -> {dj['with_dropout']:.1f} completed by the network; "
                  f"the joints that stay {kj['complete_input']:.1f} -> {kj['with_dropout']:.1f}."]
    if "body3d_demo" in r:
        b = r["body3d_demo"]
        lines += ["", "`body3d_demo.mp4` (Human3.6M S11 \"WalkDog 1\", camera 60457274; BlazePose full):", "",
                  "| pipeline | 12 limb joints (px) | 17 joints (px) | lift MPJPE (mm) | P-MPJPE (mm) |",
                  "|---|---:|---:|---:|---:|",
                  f"| raw BlazePose (no adjustment) | {b['raw_blazepose']['px_12_limb_joints']:.2f} | | | |"]
        for key, name in (("geometric", r["baseline"]), ("network", r["pipeline"])):
            lines.append(f"| `{name}` | {b[key]['px_12_limb_joints']:.2f} | {b[key]['px_17_joints']:.2f} | "
                         f"{b[key]['mpjpe_mm']:.2f} | {b[key]['p_mpjpe_mm']:.2f} |")
    return "\n".join(lines)


def write_cards(weights: Path, lifter: Path, result: dict) -> list[Path]:
    """Model cards of the network and, when it was trained jointly with the network, the lifter."""
    from wsgcn_cli import weights as wio
    from wsgcn_cli.model_card import write_stage_card

    _, meta = wio.load(weights)
    joint = meta.get("lifter", {}).get("weights") == lifter.name
    columns = {"epoch": "epoch", "loss": "training loss", "val_in_px": "val SH input (px)", "val_out_px": "val output (px)"}
    if joint:
        columns.update(lift_m="training 3D error (m)", val_mpjpe_mm="val MPJPE (mm)",
                       val_drop_mpjpe_mm="val MPJPE, 30 % dropped, per frame (mm)")
    md = card_markdown(result)
    cards = [write_stage_card(
        weights, "2D pose representation network: SemGCN + non-local over the H36M-17 joints, between the "
        "detector (after the geometric layout mapping) and the lifter; cleans every joint and completes missing "
        "ones, with a per-joint confidence."
        + (f" Trained end to end with the lifter `{lifter.name}`." if joint else ""), md, columns)]
    if joint:
        cards.append(write_stage_card(
            lifter, f"SemGCN + non-local lifter trained end to end with the 2D pose representation network "
            f"`{weights.name}` (pipeline `train-representation-lifter`); its input is the network's H36M-17 2D "
            "(root-scale codec) and per-joint confidence, its output root-relative camera coordinates in metres. "
            f"Use it with that network (`lift --pipeline {result['pipeline']}`).", md, columns))
    return cards


if __name__ == "__main__":
    main()
