"""Human3.6M effect of the temporal LSTM refiner: lifter alone vs lifter + refiner.

For each 2D source (projected ground truth ``gt``, Stacked Hourglass ``sh``), lifts
S9 and S11 (all four cameras by default) with the lifter, refines every sequence
(subject / take / camera, frames in order) with the refiner, and reports MPJPE
(Protocol 1), P-MPJPE (Protocol 2), MPJVE (mm/frame) and acceleration error
(mm/frame²), per action then averaged over actions, at the refiner's training frame
rate (50 fps / its ``frame_stride``) unless ``--stride`` says otherwise. Our copy lacks
the 3D of S9 "Discussion 1" (noted in the JSON). Refiner architecture: 3D Human Pose
Machines (Wang et al., TPAMI 2019 / CVPR 2018).

    python benchmarks/refiner_h36m.py [--lifter weights/semgcn_nl_h36m_det2d.safetensors]
        [--refiner weights/lstm_refiner_h36m.safetensors] [--data DIR] [--stride N]

Writes ``benchmarks/results/refiner_h36m.json`` (atomically).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifter", default=str(REPO / "weights" / "semgcn_nl_h36m_det2d.safetensors"))
    parser.add_argument("--refiner", default=str(REPO / "weights" / "lstm_refiner_h36m.safetensors"))
    parser.add_argument("--data", default=None)
    parser.add_argument("--stride", type=int, default=None, help="frame stride (default: the refiner's)")
    parser.add_argument("--cameras", nargs="+", default=None)
    parser.add_argument("--sources", nargs="+", default=["gt", "sh"])
    parser.add_argument("--window", type=int, default=None)
    parser.add_argument("--overlap", type=int, default=None)
    parser.add_argument("--cache", default=str(REPO / "cache" / "refiner"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "refiner_h36m.json"))
    args = parser.parse_args(argv)

    from wsgcn_cli.data import h36m
    from wsgcn_cli.errors import WsgcnError
    from wsgcn_cli.io.atomic import atomic_write
    from wsgcn_cli.lifter import Lifter
    from wsgcn_cli.models.refiner import TemporalRefiner
    from wsgcn_cli.train.refine import evaluate_refined

    try:
        lifter = Lifter.from_weights(args.lifter, device=args.device)
        refiner = TemporalRefiner.from_weights(args.refiner, device=str(lifter.device), lifter=lifter,
                                               window=args.window, overlap=args.overlap)
        if not refiner.lifter_matches:
            print(f"warning: {args.refiner} was trained on another lifter than {args.lifter}", file=sys.stderr)
        results = {}
        for source in args.sources:
            r = evaluate_refined(lifter, refiner, source, args.data, stride=args.stride,
                                 cameras=tuple(args.cameras or h36m.CAMERAS), cache=args.cache)
            results[source] = r
            for key in ("lifter", "refined"):
                m = r[key]
                print(f"2D {source} {key:8s}: MPJPE {m['mpjpe_mm']:6.2f} mm, P-MPJPE {m['p_mpjpe_mm']:6.2f} mm, "
                      f"MPJVE {m['mpjve_mm']:5.2f} mm/frame, accel {m['accel_mm']:5.2f} mm/frame² "
                      f"({r['frames']} frames, {r['fps']:g} fps)", flush=True)
            print(f"2D {source} refiner cost: {r['refine_ms_per_frame']:.3f} ms/frame", flush=True)
        report = {
            "lifter": Path(args.lifter).name, "lifter_sha256": lifter.sha256,
            "refiner": Path(args.refiner).name, "refiner_sha256": refiner.sha256,
            "refiner_trained_on_this_lifter": refiner.lifter_matches,
            "window": refiner.window, "overlap": refiner.overlap, "results": results,
        }
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(out) as tmp:
            Path(tmp).write_text(json.dumps(report, indent=2))
    except WsgcnError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
