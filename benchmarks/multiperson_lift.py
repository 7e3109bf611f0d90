"""Speed of ``wsgcn lift --people all`` against the default ``--people 1``.

One run each of :func:`wsgcn_cli.api.lift` (what the ``wsgcn lift`` command calls) on
``samples/sports2d_clip.mp4`` (105 frames, 960 x 540, 30 fps: a man on a box and a
woman walking in front), with the default outputs (``.wsgcn.npz`` + overlay video), into
a temporary folder: frames per second of the whole command (pipeline built, every
frame detected, lifted, written, overlay drawn). For ``--people all`` also the
multi-person detector alone (``detect_seconds``: decoding + ``detect_people`` over every
frame), the tracks found and each one's frames with a 3D pose. Run single-threaded
(``OMP_NUM_THREADS=1``) on a shared machine: the load average is recorded.

    OMP_NUM_THREADS=1 python benchmarks/multiperson_lift.py

Writes ``benchmarks/results/multiperson_lift.json``.
"""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "samples" / "sports2d_clip.mp4"
OUT = ROOT / "benchmarks" / "results" / "multiperson_lift.json"


def main() -> dict:
    from wsgcn_cli import api
    from wsgcn_cli.io.atomic import write_json

    results = {"clip": str(CLIP.relative_to(ROOT)), "command": "wsgcn lift CLIP --people {1,all} (npz + overlay)",
               "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                           "load_average_start": [round(v, 2) for v in os.getloadavg()]}}
    runs = {}
    for people in ("1", "all"):
        with tempfile.TemporaryDirectory() as tmp:
            r = api.lift(CLIP, out_dir=tmp, people=people, quiet=True)
        run = {"frames": r["frames"], "seconds": round(r["seconds"], 2),
               "frames_per_second": round(r["frames"] / r["seconds"], 2)}
        if "people" in r:
            run["frames_with_pose_per_track_id"] = {str(k): v for k, v in r["people"].items()}
            run["detect_seconds"] = round(r["detect_seconds"], 2)
            run["detect_frames_per_second"] = round(r["frames"] / r["detect_seconds"], 2)
        else:
            run["frames_with_pose"] = r["frames_with_pose"]
        runs[people] = run
        print(people, run, flush=True)
    results["runs"] = runs
    results["slowdown_all_vs_1"] = round(runs["1"]["frames_per_second"] / runs["all"]["frames_per_second"], 2)
    results["machine"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    write_json(OUT, results)
    return results


if __name__ == "__main__":
    main()
