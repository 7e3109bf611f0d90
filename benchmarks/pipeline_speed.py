"""Frames per second of detection alone and of the whole ``wsgcn lift``, on the same clip.

"Detection alone" is what every video-to-3D tool must pay: decoding the frames and
running the pipeline's detector (BlazePose full, :meth:`wsgcn_cli.pipeline.Pipeline.detector`)
on each. "Whole lift" is ``wsgcn_cli.api.lift``
with the given pipeline: decoding, detection, the 2D stage, the lifter, rendering the
overlay, H.264 encoding and writing the pose file. The two are run alternately
``--rounds`` times in one process and the fastest run of each is kept (the least
disturbed by other work on the machine); the overhead of the whole pipeline over
detection alone is reported in percent.

    python benchmarks/pipeline_speed.py [--clip samples/sports2d_clip.mp4] [--rounds 3]

Writes ``benchmarks/results/pipeline_speed.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def detection_alone(clip: Path, pipe) -> tuple[float, int]:
    """Seconds and frames of decoding ``clip`` and running ``pipe``'s detector on each frame."""
    from wsgcn_cli.io.video import open_frames

    t0 = time.perf_counter()
    with open_frames(clip) as src:
        det = pipe.detector(src)
        n = 0
        for frame in src:
            det.detect(frame.image)
            n += 1
        det.close()
    return time.perf_counter() - t0, n


def whole_lift(clip: Path, pipeline: str, device: str) -> tuple[float, int]:
    from wsgcn_cli import api

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        summary = api.lift(clip, pipeline=pipeline, out_dir=out, device=device, quiet=True)
        return time.perf_counter() - t0, summary["frames"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=str(REPO / "samples" / "sports2d_clip.mp4"))
    parser.add_argument("--pipeline", default="body17")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "pipeline_speed.json"))
    args = parser.parse_args()

    from wsgcn_cli.io.atomic import write_json
    from wsgcn_cli.pipeline import Pipeline

    pipe = Pipeline.from_file(args.pipeline, device=args.device)
    clip = Path(args.clip)
    whole_lift(clip, args.pipeline, args.device)  # warm-up: imports, model load, file cache
    det_runs, lift_runs = [], []
    for r in range(args.rounds):
        det_runs.append(detection_alone(clip, pipe))
        lift_runs.append(whole_lift(clip, args.pipeline, args.device))
        print(f"round {r + 1}: detection {det_runs[-1][1] / det_runs[-1][0]:.1f} fps, "
              f"whole lift {lift_runs[-1][1] / lift_runs[-1][0]:.1f} fps", flush=True)
    t_det, n = min(det_runs)
    t_lift, n_lift = min(lift_runs)
    result = {
        "clip": clip.name, "frames": n, "pipeline": args.pipeline, "device": args.device, "rounds": args.rounds,
        "detection_fps": n / t_det, "lift_fps": n_lift / t_lift,
        "detection_seconds": t_det, "lift_seconds": t_lift,
        "lift_overhead_percent": 100.0 * (t_lift / t_det - 1.0),
        "all_detection_seconds": [t for t, _ in det_runs], "all_lift_seconds": [t for t, _ in lift_runs],
        "machine": f"{platform.machine()} {os.cpu_count()} cores", "python": platform.python_version(),
    }
    write_json(args.out, result)
    print(f"detection alone: {result['detection_fps']:.1f} frames/s; whole lift: {result['lift_fps']:.1f} "
          f"frames/s; whole pipeline costs {result['lift_overhead_percent']:+.1f} % over detection alone")


if __name__ == "__main__":
    main()
