"""Frames per second of the whole-body ``wsgcn lift`` against the body-only one, on one clip.

Each pipeline is run once through ``wsgcn_cli.api.lift`` with its defaults (decoding,
detection, the 2D stage, the lifter, smoothing, the overlay video, H.264 encoding, the
npz pose file): ``body17`` (BlazePose -> H36M-17 -> SemGCN lifter -> LSTM refiner, world
stage) and ``wholebody`` (BlazePose + face / hand landmark models on ROIs ->
COCO-WholeBody-133 -> SemGAN). The detectors alone are timed once each too (decoding +
``Pipeline.detector``), to show where the time goes. Both cores of the machine this ran
on may have been busy with other work: the load average (1 min) is recorded before and
after, next to the numbers.

Without the trained whole-body weights (``weights/semgan_wholebody_composite.safetensors``)
a randomly initialised SemGAN of the default sizes is timed instead (same cost per frame);
the JSON says which.

    python benchmarks/wholebody_speed.py [--clip samples/sports2d_clip.mp4] [--weights W]

Writes ``benchmarks/results/wholebody_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def detection_alone(clip: Path, pipe) -> float:
    """Frames per second of decoding ``clip`` and running ``pipe``'s detector on every frame."""
    from wsgcn_cli.io.video import open_frames

    t0, n = time.perf_counter(), 0
    with open_frames(clip) as src:
        det = pipe.detector(src)
        for frame in src:
            det.detect(frame.image)
            n += 1
        det.close()
    return n / (time.perf_counter() - t0)


def whole_lift(clip: Path, pipeline: str, weights: str | None) -> dict:
    from wsgcn_cli import api

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        summary = api.lift(clip, pipeline=pipeline, out_dir=out, device="cpu", quiet=True, weights=weights)
        seconds = time.perf_counter() - t0
    return {"frames": summary["frames"], "frames_with_pose": summary["frames_with_pose"], "seconds": seconds,
            "fps": summary["frames"] / seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=str(REPO / "samples" / "sports2d_clip.mp4"))
    parser.add_argument("--weights", default=None, help="whole-body lifter weights (default: the pipeline's)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "wholebody_speed.json"))
    args = parser.parse_args()

    from wsgcn_cli import weights as weights_io
    from wsgcn_cli.pipeline import Pipeline, load, resolve_path

    clip = Path(args.clip)
    spec = load("wholebody")
    shipped = resolve_path(spec["lifter"]["weights"], spec)
    tmp = tempfile.TemporaryDirectory()
    if args.weights:
        wb_weights, note = args.weights, f"{Path(args.weights).name}"
    elif shipped.is_file():
        wb_weights, note = None, shipped.name
    else:
        import torch

        from wsgcn_cli.models.semgan import CODEC, SemGAN

        torch.manual_seed(0)
        wb_weights = str(Path(tmp.name) / "semgan_random.safetensors")
        weights_io.save(wb_weights, SemGAN().state_dict(),
                        {"model": "semgan", "model_options": {}, "layout": "coco_wholebody133", "codec": CODEC})
        note = f"random-init SemGAN, default sizes ({shipped.name} not shipped yet)"
    load_start = os.getloadavg()[0]
    result = {"clip": clip.name, "device": "cpu", "load_average_1min_start": round(load_start, 2),
              "wholebody_weights": note, "runs": {}}
    for name, w in (("body17", None), ("wholebody", wb_weights)):
        pipe = Pipeline.from_file(name, device="cpu", lifter_weights=w)
        det_fps = detection_alone(clip, pipe)
        run = whole_lift(clip, name, w)
        run["detection_alone_fps"] = det_fps
        run["load_average_1min_after"] = round(os.getloadavg()[0], 2)
        result["runs"][name] = run
        print(f"{name}: lift {run['fps']:.1f} frames/s, detection alone {det_fps:.1f} frames/s, "
              f"load {run['load_average_1min_after']}", flush=True)
    tmp.cleanup()
    result["wholebody_over_body17"] = result["runs"]["wholebody"]["fps"] / result["runs"]["body17"]["fps"]
    result["target"] = "wholebody lift at least half the body17 lift rate (ratio >= 0.5)"
    result["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    result["machine"] = f"{platform.machine()} {os.cpu_count()} cores"
    result["note"] = ("one run each, on a machine shared with training runs (see the load averages); "
                      "default outputs: npz + overlay video")
    from wsgcn_cli.io.atomic import write_json

    write_json(args.out, result)
    print(f"wholebody / body17 = {result['wholebody_over_body17']:.2f}; wrote {args.out}")


if __name__ == "__main__":
    main()
