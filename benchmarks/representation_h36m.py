"""Does the 2D pose representation network give the lifter better 2D? (issue 4's targets)

1. Human3.6M S9/S11 with Stacked-Hourglass detections: mean 2D error (px, 17 joints,
   against the projected ground truth) of the raw detections (``adjust=False`` mapping:
   SH joints as they are, Neck/Nose on the thorax-head segment), of the geometric
   mapping that ``lift`` applies without the network, and of the network's output.
2. The lifter's MPJPE / P-MPJPE (shipped detected-2D weights, flip test, per-action
   averages) with the geometric 2D and with the network's 2D.
3. 30 % of the input joints dropped at random. Through the 2D stage as ``lift`` runs it
   with the network: the dropped joints are interpolated in time per sequence (gap
   filling, at most 10 frames of the evaluated rate), then the network cleans every
   joint and completes those still missing. Also the network alone on each frame (no
   gap filling), and the lifter alone with gap filling only (frames still incomplete
   are left out and counted).
4. ``../shared/data/videos/body3d_demo.mp4`` (Human3.6M S11 "WalkDog 1", camera
   60457274): BlazePose -> geometric mapping vs -> network, 2D error on the 12 limb
   joints and all 17 against the projected ground truth, and the 3D error of ``lift``.

    python benchmarks/representation_h36m.py [--stride 5] [--weights ...] [--lifter ...]
        [--detected-weight W]

``--detected-weight`` (default: the ``body17-network`` pipeline's) mixes the detected
joints into the network's output (see :class:`wsgcn_cli.stages.Representation`); the
network's own output (weight 0) is measured beside it.

Writes ``benchmarks/results/representation_h36m.json``. Every ``--stride``-th frame of
every camera is used (1: all frames).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.body3d_demo import LIMB_JOINTS, SHARED, VIDEO, ground_truth  # noqa: E402


def raw_sh(kp17):
    """The adjust=False mapping of the SH-16 detections behind the adjusted H36M-17 ones."""
    import numpy as np

    from wsgcn_cli.represent import mapping_matrix

    w_adj, w_raw = mapping_matrix("sh16", True), mapping_matrix("sh16", False)
    raw16 = np.einsum("jk,nkc->njc", np.linalg.pinv(w_adj), kp17)
    assert np.allclose(np.einsum("kj,njc->nkc", w_adj, raw16[:50]), kp17[:50], atol=1e-2)
    return np.einsum("kj,njc->nkc", w_raw, raw16).astype(np.float32)


def gap_filled(data, kp, max_gap=10):
    """Per-sequence temporal interpolation of missing joints (the geometric stage's gap filling)."""
    import numpy as np

    from wsgcn_cli.detect.base import Keypoints2D
    from wsgcn_cli.represent import fill_gaps

    out = np.array(kp, copy=True)
    cut = np.flatnonzero(np.diff(data.sequence)) + 1
    for a, b in zip(np.r_[0, cut], np.r_[cut, len(kp)]):
        seg = Keypoints2D("h36m17", kp[a:b], np.isfinite(kp[a:b]).all(-1).astype(np.float32),
                          np.arange(b - a) / 50.0, 1000, 1000, 50.0)
        out[a:b] = fill_gaps(seg, max_gap)[0].xy
    return out


def lifted(lifter, data, kp, evaluate, with_sh):
    r = evaluate(lifter, source="sh", data=with_sh(data, kp))
    return {k: r[k] for k in ("mpjpe_mm", "p_mpjpe_mm", "frames", "skipped_no_2d")}


def body3d_demo(weights: Path, data_root: Path, work: Path, rep_lifter: Path | None = None,
                detected_weight: float = 0.0):
    import numpy as np

    from wsgcn_cli import api, metrics, pipeline

    gt3d, gt2d, _ = ground_truth(data_root)
    assert pipeline.load("body17")["representation"]["kind"] == "geometric"
    outs = {}
    r = api.lift(VIDEO, pipeline="body17", out_dir=work / "geometric", video=False, overwrite=True, quiet=True)
    outs["geometric"] = np.load(r["outputs"]["npz"])
    # the shipped body17-network pipeline with these weights and this detected_weight
    lines, section = [], ""
    for line in (pipeline.PIPELINE_DIR / "body17-network.toml").read_text().splitlines():
        section = line.strip() if line.startswith("[") else section
        key = line.split("=")[0].strip()
        if section == "[representation]" and key == "weights":
            line = f'weights = "{weights}"'
        elif section == "[representation]" and key == "detected_weight":
            line = f"detected_weight = {detected_weight}"
        lines.append(line)
    pipe = work / "body17-network.toml"
    pipe.write_text("\n".join(lines) + "\n")
    spec = pipeline.load(str(pipe))["representation"]
    assert (spec["kind"], spec["weights"], spec["detected_weight"]) == ("network", str(weights), detected_weight)
    keypoints = r["outputs"]["npz"]
    r = api.lift(VIDEO, pipeline=str(pipe), out_dir=work / "network", keypoints=keypoints,
                 video=False, overwrite=True, quiet=True)
    outs["network"] = np.load(r["outputs"]["npz"])
    if rep_lifter is not None:
        pipe2 = work / "body17-network-rep-lifter.toml"
        lines = pipe.read_text().splitlines()
        at = lines.index("[lifter]") + 1
        lines[at] = f'weights = "{rep_lifter}"'
        pipe2.write_text("\n".join(lines) + "\n")
        r = api.lift(VIDEO, pipeline=str(pipe2), out_dir=work / "network_rep_lifter", keypoints=keypoints,
                     video=False, overwrite=True, quiet=True)
        outs["network_rep_lifter"] = np.load(r["outputs"]["npz"])
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
    from wsgcn_cli.represent import to_h36m17

    kp = to_h36m17(Keypoints2D("blazepose33", raw, outs["geometric"]["detector_scores"], np.arange(len(raw)) / 50.0,
                               1000, 1002, 50.0), adjust=False)
    result["raw_blazepose"] = {"px_12_limb_joints": float(np.nanmean(np.linalg.norm(kp.xy - gt2d, axis=-1)[:, LIMB_JOINTS]))}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(REPO / "weights" / "pose_representation_h36m.safetensors"))
    parser.add_argument("--lifter", default=str(REPO / "weights" / "semgcn_nl_h36m_det2d.safetensors"))
    parser.add_argument("--rep-lifter", default=str(REPO / "weights" / "semgcn_nl_h36m_rep2d.safetensors"),
                        help="a lifter trained for the network's output (pipelines/train-semgcn-rep.toml), "
                        "measured beside --lifter when the file exists")
    parser.add_argument("--data", default=str(SHARED / "h36m"))
    parser.add_argument("--stride", type=int, default=5)
    parser.add_argument("--drop", type=float, default=0.3)
    parser.add_argument("--detected-weight", type=float, default=None,
                        help="weight of the detected joints in the output (default: pipelines/body17-network.toml's)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "representation_h36m.json"))
    parser.add_argument("--card", action="store_true", help="also write the weights' model card from these results")
    args = parser.parse_args()

    import numpy as np

    from wsgcn_cli import pipeline
    from wsgcn_cli.data import h36m
    from wsgcn_cli.evaluate import evaluate
    from wsgcn_cli.io.atomic import write_json
    from wsgcn_cli.lifter import Lifter
    from wsgcn_cli.models.representation import RepresentationModel
    from wsgcn_cli.train.representation import drop_joints, with_sh

    t0 = time.time()
    w_det = args.detected_weight
    if w_det is None:
        w_det = float(pipeline.load("body17-network")["representation"].get("detected_weight", 0.0))
    rep = RepresentationModel.from_weights(args.weights)
    lifter = Lifter.from_weights(args.lifter, device="cpu")
    data = h36m.load(h36m.TEST_SUBJECTS, args.data, args.stride, with_sh=True)
    ok = np.isfinite(data.kp2d_sh).all(axis=(1, 2))
    geo = data.kp2d_sh
    ones = np.ones(geo.shape[:2], np.float32)
    net, _ = rep(geo, ones, detected_weight=w_det)
    net_only, _ = rep(geo, ones)

    def px(kp):
        e = np.linalg.norm(kp[ok] - data.kp2d_gt[ok], axis=-1)
        return {"px_17_joints": float(np.nanmean(e)), "px_12_limb_joints": float(np.nanmean(e[:, LIMB_JOINTS]))}

    result = {"subjects": list(h36m.TEST_SUBJECTS), "stride": args.stride, "samples": int(ok.sum()),
              "weights": Path(args.weights).name, "lifter": Path(args.lifter).name, "detected_weight": w_det}
    result["sh_2d"] = {"raw": px(raw_sh(np.where(ok[:, None, None], geo, 0.0))), "geometric": px(geo),
                       "network": px(net), "network_only": px(net_only)}
    print("2D error (px, 17 joints):", {k: round(v["px_17_joints"], 2) for k, v in result["sh_2d"].items()}, flush=True)
    result["lifter_sh"] = {"geometric": lifted(lifter, data, geo, evaluate, with_sh),
                           "network": lifted(lifter, data, net, evaluate, with_sh),
                           "network_only": lifted(lifter, data, net_only, evaluate, with_sh)}
    rep_lifter = Lifter.from_weights(args.rep_lifter, device="cpu") if Path(args.rep_lifter).is_file() else None
    if rep_lifter is not None:
        result["rep_lifter"] = Path(args.rep_lifter).name
        result["lifter_sh"]["network_rep_lifter"] = lifted(rep_lifter, data, net, evaluate, with_sh)
        result["lifter_sh"]["geometric_rep_lifter"] = lifted(rep_lifter, data, geo, evaluate, with_sh)
    print("lifter MPJPE with SH 2D:", {k: round(v["mpjpe_mm"], 2) for k, v in result["lifter_sh"].items()}, flush=True)

    dropped = drop_joints(geo, args.drop, seed=0)
    filled = gap_filled(data, dropped)
    net_d, _ = rep(filled, ones, detected_weight=w_det)        # the 2D stage as `lift` runs it
    net_frame, _ = rep(dropped, ones, detected_weight=w_det)   # the network alone, frame by frame
    result["dropout"] = {
        "fraction": args.drop,
        "network": {**lifted(lifter, data, net_d, evaluate, with_sh), **px(net_d)},
        "network_per_frame": {**lifted(lifter, data, net_frame, evaluate, with_sh), **px(net_frame)},
        "lifter_alone_gap_filled": {**lifted(lifter, data, filled, evaluate, with_sh), **px(filled)},
    }
    base = result["lifter_sh"]["network"]["mpjpe_mm"]
    for key in ("network", "network_per_frame"):
        result["dropout"][f"{key}_mpjpe_rise_percent"] = 100 * (result["dropout"][key]["mpjpe_mm"] / base - 1)
    if rep_lifter is not None:
        d = result["dropout"]
        d["network_rep_lifter"] = {**lifted(rep_lifter, data, net_d, evaluate, with_sh), **px(net_d)}
        d["network_rep_lifter_mpjpe_rise_percent"] = 100 * (
            d["network_rep_lifter"]["mpjpe_mm"] / result["lifter_sh"]["network_rep_lifter"]["mpjpe_mm"] - 1)
    base_alone = result["lifter_sh"]["geometric"]["mpjpe_mm"]
    result["dropout"]["lifter_alone_mpjpe_rise_percent"] = 100 * (
        result["dropout"]["lifter_alone_gap_filled"]["mpjpe_mm"] / base_alone - 1)
    print(f"{args.drop:.0%} joints dropped: network {result['dropout']['network']['mpjpe_mm']:.2f} mm "
          f"({result['dropout']['network_mpjpe_rise_percent']:+.1f} %; network alone per frame "
          f"{result['dropout']['network_per_frame_mpjpe_rise_percent']:+.1f} %), lifter alone (gap filled) "
          f"{result['dropout']['lifter_alone_gap_filled']['mpjpe_mm']:.2f} mm "
          f"({result['dropout']['lifter_alone_mpjpe_rise_percent']:+.1f} %)", flush=True)
    if rep_lifter is not None:
        print(f"with {result['rep_lifter']}: SH {result['lifter_sh']['network_rep_lifter']['mpjpe_mm']:.2f} mm, "
              f"{args.drop:.0%} dropped {result['dropout']['network_rep_lifter']['mpjpe_mm']:.2f} mm "
              f"({result['dropout']['network_rep_lifter_mpjpe_rise_percent']:+.1f} %)", flush=True)
    if VIDEO.is_file():
        with tempfile.TemporaryDirectory() as work:
            result["body3d_demo"] = body3d_demo(Path(args.weights).resolve(), Path(args.data), Path(work),
                                                Path(args.rep_lifter).resolve() if rep_lifter is not None else None,
                                                w_det)
        print("body3d_demo:", json.dumps(result["body3d_demo"]), flush=True)
    result.update(wall_s=round(time.time() - t0, 1), machine=f"{platform.machine()}", python=platform.python_version())
    write_json(args.out, result)
    print(f"wrote {args.out}")
    if args.card:
        print(f"wrote {write_card(Path(args.weights), result)}")


def card_markdown(r: dict) -> str:
    """The benchmark's results as the Markdown of a model card."""
    sh, ls, d = r["sh_2d"], r["lifter_sh"], r["dropout"]
    lines = [f"Human3.6M S9/S11, every {r['stride']}th frame of every camera ({r['samples']} samples), "
             "Stacked-Hourglass detections; 2D error against the projected ground truth; lifter "
             f"`{r['lifter']}` with flip test, per-action averages (`benchmarks/representation_h36m.py`).", "",
             "| 2D input to the lifter | 2D error, 17 joints (px) | 12 limb joints (px) | MPJPE (mm) | P-MPJPE (mm) |",
             "|---|---:|---:|---:|---:|",
             f"| raw SH detections (no adjustment) | {sh['raw']['px_17_joints']:.2f} | "
             f"{sh['raw']['px_12_limb_joints']:.2f} | | |"]
    w = r.get("detected_weight", 0.0)
    for key, label in (("geometric", "geometric mapping (`lift` without the network)"),
                       ("network_only", "geometric mapping -> this network's output"),
                       ("network", f"geometric mapping -> this network, detected joints weighted {w:g}")):
        if key not in ls:
            continue
        lines.append(f"| {label} | {sh[key]['px_17_joints']:.2f} | {sh[key]['px_12_limb_joints']:.2f} | "
                     f"{ls[key]['mpjpe_mm']:.2f} | {ls[key]['p_mpjpe_mm']:.2f} |")
    if "network_rep_lifter" in ls:
        lines.append(f"| this network, lifter `{r['rep_lifter']}` trained for it | {sh['network']['px_17_joints']:.2f} | "
                     f"{sh['network']['px_12_limb_joints']:.2f} | {ls['network_rep_lifter']['mpjpe_mm']:.2f} | "
                     f"{ls['network_rep_lifter']['p_mpjpe_mm']:.2f} |")
    lines += ["", f"MPJPE and P-MPJPE use lifter `{r['lifter']}` unless the row names another."]
    a, n = d["lifter_alone_gap_filled"], d["network"]
    lines += ["", f"With {d['fraction']:.0%} of the input joints dropped at random (rise over complete input "
              "through the same path; the network rows against the network row above):", "",
              "| | 2D error (px) | MPJPE (mm) | rise over complete input |", "|---|---:|---:|---:|",
              f"| gap filling, then this network (the 2D stage as `lift` runs it) | {n['px_17_joints']:.2f} | "
              f"{n['mpjpe_mm']:.2f} | {d['network_mpjpe_rise_percent']:+.1f} % |"]
    if "network_per_frame" in d:
        f = d["network_per_frame"]
        lines.append(f"| this network alone, frame by frame | {f['px_17_joints']:.2f} | {f['mpjpe_mm']:.2f} | "
                     f"{d['network_per_frame_mpjpe_rise_percent']:+.1f} % |")
    lines.append(f"| lifter alone, dropped joints interpolated in time (gap filling) | {a['px_17_joints']:.2f} | "
                 f"{a['mpjpe_mm']:.2f} | {d['lifter_alone_mpjpe_rise_percent']:+.1f} % |")
    if "network_rep_lifter" in d:
        nr = d["network_rep_lifter"]
        lines.append(f"| gap filling, this network, lifter `{r['rep_lifter']}` | {nr['px_17_joints']:.2f} | {nr['mpjpe_mm']:.2f} | "
                     f"{d['network_rep_lifter_mpjpe_rise_percent']:+.1f} % |")
    if "body3d_demo" in r:
        b = r["body3d_demo"]
        lines += ["", "`body3d_demo.mp4` (Human3.6M S11 \"WalkDog 1\", camera 60457274; BlazePose full):", "",
                  "| 2D stage | 12 limb joints (px) | 17 joints (px) | lift MPJPE (mm) | P-MPJPE (mm) |",
                  "|---|---:|---:|---:|---:|",
                  f"| raw BlazePose (no adjustment) | {b['raw_blazepose']['px_12_limb_joints']:.2f} | | | |"]
        for key in [k for k in ("geometric", "network", "network_rep_lifter") if k in b]:
            lines.append(f"| {key} | {b[key]['px_12_limb_joints']:.2f} | {b[key]['px_17_joints']:.2f} | "
                         f"{b[key]['mpjpe_mm']:.2f} | {b[key]['p_mpjpe_mm']:.2f} |")
    return "\n".join(lines)


def write_card(weights: Path, result: dict) -> Path:
    from wsgcn_cli.model_card import write_stage_card

    return write_stage_card(
        weights, "2D pose representation network: SemGCN + non-local over the H36M-17 joints, between the "
        "detector (after the geometric layout mapping) and the lifter; cleans every joint and completes missing "
        "ones, with a per-joint confidence.", card_markdown(result),
        {"epoch": "epoch", "loss": "training loss", "val_in_px": "val SH input (px)", "val_out_px": "val output (px)"})


if __name__ == "__main__":
    main()
