"""How close is ``wsgcn lift body3d_demo.mp4`` to the clip's ground truth, per lifter?

The clip is Human3.6M S11 "WalkDog 1", camera 60457274 (see ``body3d_demo.py``). The
pipeline (default ``body17``) detects the 2D once (BlazePose, cached in ``--work``);
then for each lifter weights file the stages after the detector run exactly as ``lift``
runs them (:meth:`wsgcn_cli.pipeline.Pipeline.run` with ``whole_clip=True``: 2D stage,
lifter with flip test, the refiner where the pipeline has one (as ``lift``; ``--no-refine``
leaves it out), then the whole-clip steps: smoothing, constant bones), and the 3D is
scored against the ground truth (mm, camera coordinates); ``lifter_only`` scores the
lifter's own 3D (no refiner, no whole-clip steps):

* ``all17``: MPJPE / P-MPJPE over the 17 joints, root-relative (as ``wsgcn eval``);
* ``limbs12``: the 12 limb joints (hips, knees, ankles, shoulders, elbows, wrists: the
  joints BlazePose observes directly) after centroid alignment (each pose minus the mean
  of its 12 joints), MPJPE, and P-MPJPE (similarity Procrustes on the 12 joints): the
  measure of issue 12's body3d_demo target (P-MPJPE <= 55, MPJPE <= 70 mm).

    python benchmarks/lift_body3d_demo.py [--weights W.safetensors ...] [--pipeline body17] [--no-refine]
        [--focal PX [--principal-point CX CY]]

``--focal`` / ``--principal-point`` give the camera's intrinsics as ``lift`` takes them
(this camera: 1145 px, (515, 502)); they change only a ``virtual_camera`` lifter's input
(default: lift's assumed field of view, principal point at the image centre).

Writes ``benchmarks/results/lift_body3d_demo.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from body3d_demo import LIMB_JOINTS, REPO, SHARED, VIDEO, ground_truth  # beside this script


def scores(pred_mm, gt_mm) -> dict:
    """MPJPE / P-MPJPE (mm) of (T, 17, 3) poses: all 17 root-relative, 12 limb joints centred."""
    import numpy as np

    from wsgcn_cli import metrics

    ok = np.isfinite(pred_mm).all(axis=(1, 2))
    p, g = pred_mm[ok], gt_mm[ok]
    pl, gl = p[:, LIMB_JOINTS], g[:, LIMB_JOINTS]
    pl, gl = pl - pl.mean(1, keepdims=True), gl - gl.mean(1, keepdims=True)
    return {"frames": int(ok.sum()),
            "all17": {"mpjpe_mm": float(metrics.mpjpe(p, g).mean()), "p_mpjpe_mm": float(metrics.p_mpjpe(p, g).mean())},
            "limbs12": {"mpjpe_mm": float(metrics.mpjpe(pl, gl).mean()),
                        "p_mpjpe_mm": float(metrics.p_mpjpe(pl, gl).mean())}}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", nargs="*", default=[], help="lifter weights to compare (default: the pipeline's)")
    p.add_argument("--pipeline", default="body17")
    p.add_argument("--refine", action=argparse.BooleanOptionalAction, default=None,
                   help="the refiner on / off (default: the pipeline's choice, as lift)")
    p.add_argument("--focal", type=float, default=None, help="focal length in pixels (as lift --focal)")
    p.add_argument("--principal-point", type=float, nargs=2, default=None, metavar=("CX", "CY"))
    p.add_argument("--data", default=str(SHARED / "h36m"))
    p.add_argument("--work", default=None, help="folder for the cached 2D (default: a temporary folder)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "lift_body3d_demo.json"))
    args = p.parse_args()

    from wsgcn_cli import weights as wio
    from wsgcn_cli.data.clips import cache_path, load_clip, read_cache
    from wsgcn_cli.io.atomic import write_json
    from wsgcn_cli.pipeline import Pipeline

    gt_mm, _, _ = ground_truth(Path(args.data))
    work = Path(args.work or tempfile.mkdtemp(prefix="wsgcn_body3d_"))
    base = Pipeline.from_file(args.pipeline, device=args.device, refine=args.refine)
    load_clip(VIDEO, base, cache_dir=work)  # detects once (or reads the cache)
    raw = read_cache(cache_path(VIDEO, work), VIDEO, base.detector_table)
    results = {}
    for w in args.weights or [str(base.lifter_path)]:
        camera = {"focal_px": args.focal, "principal_px": args.principal_point}
        pipe = Pipeline.from_file(args.pipeline, device=args.device, refine=args.refine, lifter_weights=w, **camera)
        pred = pipe.run(raw, whole_clip=True).keypoints_3d * 1000.0
        r = scores(pred.astype("float64"), gt_mm)
        plain = Pipeline.from_file(args.pipeline, device=args.device, refine=False, lifter_weights=w, **camera)
        r["lifter_only"] = scores((plain.run(raw).keypoints_3d * 1000.0).astype("float64"), gt_mm)
        meta = wio.load(w)[1]
        r.update(weights=Path(w).name, sha256=wio.sha256(w), samples_seen=meta.get("samples_seen_total"),
                 codec=meta.get("codec"), focal_px=args.focal, principal_px=args.principal_point,
                 refine=pipe.refiner is not None,
                 refiner_sha256=pipe.refiner.sha256 if pipe.refiner is not None else None)
        results[Path(w).name] = r
        print(f"{Path(w).name:45s} limbs12 MPJPE {r['limbs12']['mpjpe_mm']:6.2f} P-MPJPE {r['limbs12']['p_mpjpe_mm']:6.2f}"
              f" | all17 MPJPE {r['all17']['mpjpe_mm']:6.2f} P-MPJPE {r['all17']['p_mpjpe_mm']:6.2f} mm "
              f"({r['frames']} frames)", flush=True)
    write_json(args.out, {"clip": "body3d_demo.mp4 (H36M S11 WalkDog 1, camera 60457274, frames 0-398)",
                          "pipeline": args.pipeline, "targets": {"limbs12": {"mpjpe_mm": 70.0, "p_mpjpe_mm": 55.0}},
                          "results": results})


if __name__ == "__main__":
    main()
