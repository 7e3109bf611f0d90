"""How close is ``wsgcn lift``'s trajectory and world frame to body3d_demo.mp4's ground truth?

The clip is Human3.6M S11 "WalkDog 1", camera 60457274 (see ``body3d_demo.py``): its
calibrated focal length is 1145 px, its principal point (515, 502) px is 15 px right of
the image centre that ``lift`` assumes. The 2D is detected once (BlazePose) or read
from a cache; the stages after the detector run as ``lift`` runs them
(:meth:`wsgcn_cli.pipeline.Pipeline.run`, which ends with the world stage), with
``--focal 1145`` and with the default field of view, and the results are scored against
the ground truth moved into the camera frame:

* ``pelvis_mm``: mean distance of ``root_camera_m`` to the true pelvis (camera frame);
* ``shape_mm``: the same after removing each trajectory's mean (the trajectory's shape);
* ``pelvis_bias_mm``: the mean error per camera axis (x right, y down, z forward);
* ``up_error_deg``: angle between the estimated up direction and the true one (the
  Human3.6M world's z axis in the camera frame);
* ``pelvis_height_mm`` / ``true_pelvis_height_mm``: the mean height of the pelvis above
  the estimated floor, and above Human3.6M's floor (z = 0);
* ``contact_agreement``: fraction of frames where ``foot_contact`` (left, right) agrees
  with contact in the ground truth (ankle below 120 mm and slower than 0.6 m/s);
* ``*_calibrated_principal_point``: the same with the true principal point, as
  ``lift --principal-point 515 502`` runs (what the image-centre assumption costs);
* ``ground_truth_3d_2d_*``: the world stage (:func:`wsgcn_cli.world.estimate_world`, the
  same options) fed the ground-truth root-relative 3D and the ground-truth 2D (projected
  through the calibrated camera, lens distortion included) instead of lift's: the floor
  that the pinhole model with this focal length and principal point leaves to any
  lifter and detector.

    python benchmarks/world_body3d_demo.py [--keypoints CACHE.npz] [--pipeline body17]

Writes ``benchmarks/results/world_body3d_demo.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from body3d_demo import FRAMES, REPO, SHARED, SUBJECT, TAKE, VIDEO, ground_truth  # beside this script

#: Detections of the clip cached by earlier runs (runs/ is not committed).
DEFAULT_CACHE = REPO / "runs" / "body3d_cache" / f"{VIDEO.name}.wsgcn2d.npz"


def clip_2d(pipe, keypoints: str | None = None, work: str | None = None):
    """The raw 2D of body3d_demo.mp4 (the pipeline's detector layout): ``keypoints`` (a
    wsgcn 2D ``.npz``), else :data:`DEFAULT_CACHE` if it was made with the same detector
    settings on a file of the same size, else detected once into ``work`` (cached)."""
    import numpy as np

    from wsgcn_cli.data.clips import _signature, cache_path, load_clip, read_cache
    from wsgcn_cli.detect.precomputed import load_keypoints

    if keypoints is not None:
        return load_keypoints(keypoints)
    if DEFAULT_CACHE.is_file():
        with np.load(DEFAULT_CACHE, allow_pickle=False) as z:
            same = str(z["detector"]) == _signature(pipe.detector_table) \
                and int(z["source_bytes"]) == VIDEO.stat().st_size
        if same:
            return load_keypoints(DEFAULT_CACHE)
    work = Path(work or tempfile.mkdtemp(prefix="wsgcn_body3d_"))
    load_clip(VIDEO, pipe, cache_dir=work)
    return read_cache(cache_path(VIDEO, work), VIDEO, pipe.detector_table)


def truth(data_root: Path):
    """(pelvis (T, 3) camera frame m, up (3,) camera frame, true pelvis height m (T,),
    ankles (T, 2, 3) H36M world m (left, right), the camera, the root-relative 3D (T, 17, 3)
    camera frame mm, the 2D (T, 17, 2) px projected through the camera)."""
    import numpy as np

    rel_mm, kp2d, cam = ground_truth(data_root)
    world = np.load(data_root / "h36m_3d_17j_world_mm.npz")[f"{SUBJECT}/{TAKE}"][:FRAMES].astype(np.float64) / 1000
    pelvis = cam.world_to_camera(world * 1000)[:, 0] / 1000
    return pelvis, cam.R @ np.array([0.0, 0.0, 1.0]), world[:, 0, 2], world[:, [6, 3]], cam, rel_mm, kp2d


def score(world, pelvis, up, pelvis_height, ankles, fps: float) -> dict:
    import numpy as np

    r = world.root_camera_m.astype(np.float64)
    ok = np.isfinite(r).all(-1)
    err = r[ok] - pelvis[ok]
    shape = (r[ok] - r[ok].mean(0)) - (pelvis[ok] - pelvis[ok].mean(0))
    speed = np.linalg.norm(np.gradient(ankles, 1.0 / fps, axis=0), axis=-1)
    contact = (ankles[..., 2] < 0.12) & (speed < 0.6)
    return {"frames": int(ok.sum()), "focal_px": world.focal_px,
            "pelvis_mm": float(np.linalg.norm(err, axis=-1).mean() * 1000),
            "shape_mm": float(np.linalg.norm(shape, axis=-1).mean() * 1000),
            "pelvis_bias_mm": [round(float(v), 1) for v in err.mean(0) * 1000],
            "up_error_deg": float(np.degrees(np.arccos(np.clip(world.up_camera @ up, -1, 1)))),
            "pelvis_height_mm": float(np.nanmean(world.keypoints_3d_world[:, 0, 1]) * 1000),
            "true_pelvis_height_mm": float(pelvis_height.mean() * 1000),
            "contact_agreement": [round(float(v), 3) for v in (world.foot_contact == contact)[ok].mean(0)],
            "contact_fraction": [round(float(v), 3) for v in world.foot_contact[ok].mean(0)],
            "true_contact_fraction": [round(float(v), 3) for v in contact[ok].mean(0)]}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline", default="body17")
    p.add_argument("--refine", action=argparse.BooleanOptionalAction, default=None,
                   help="the refiner on / off (default: the pipeline's choice, as lift)")
    p.add_argument("--keypoints", default=None, help="the clip's raw 2D (.npz) instead of the cache or detecting")
    p.add_argument("--data", default=str(SHARED / "h36m"))
    p.add_argument("--work", default=None, help="folder for the detected 2D (default: a temporary folder)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "world_body3d_demo.json"))
    args = p.parse_args()

    from wsgcn_cli.io.atomic import write_json
    from wsgcn_cli.pipeline import Pipeline

    pelvis, up, height, ankles, cam, rel_mm, kp2_true = truth(Path(args.data))
    base = Pipeline.from_file(args.pipeline, device=args.device, refine=args.refine)
    raw = clip_2d(base, args.keypoints, args.work)
    results = {}
    for name, focal in (("focal_1145", 1145.0), (f"fov_{base.world.fov_deg:g}_default", None)):
        pipe = Pipeline.from_file(args.pipeline, device=args.device, refine=args.refine, focal_px=focal)
        track = pipe.run(raw, whole_clip=True)
        results[name] = score(track.world, pelvis, up, height, ankles, raw.fps)
        calibrated = Pipeline.from_file(args.pipeline, device=args.device, refine=args.refine, focal_px=focal,
                                        principal_px=[float(v) for v in cam.c])
        w = calibrated.run(raw, whole_clip=True).world
        results[f"{name}_calibrated_principal_point"] = score(w, pelvis, up, height, ankles, raw.fps)
        for key in (name, f"{name}_calibrated_principal_point"):
            r = results[key]
            print(f"{key:45s} pelvis {r['pelvis_mm']:6.1f} mm  shape {r['shape_mm']:5.1f} mm  bias {r['pelvis_bias_mm']}"
                  f"  up {r['up_error_deg']:.2f} deg  contact {r['contact_agreement']}", flush=True)
    from wsgcn_cli.world import estimate_world

    for name, principal in (("ground_truth_3d_2d_focal_1145", None),
                            ("ground_truth_3d_2d_focal_1145_calibrated_principal_point", cam.c)):
        w = estimate_world(kp2_true, rel_mm / 1000.0, raw.width, raw.height, raw.fps, focal_px=1145.0,
                           options=base.world, principal_px=None if principal is None else list(principal))
        r = results[name] = score(w, pelvis, up, height, ankles, raw.fps)
        print(f"{name:45s} pelvis {r['pelvis_mm']:6.1f} mm  shape {r['shape_mm']:5.1f} mm  bias {r['pelvis_bias_mm']}",
              flush=True)
    write_json(args.out, {
        "clip": "body3d_demo.mp4 (H36M S11 WalkDog 1, camera 60457274, frames 0-398; f = 1145 px, "
                "principal point (515, 502) px on a 1000x1002 image)",
        "pipeline": args.pipeline, "refine": base.refiner is not None, "smoothing": base.smoothing.kind,
        "world_options": vars(base.world), "targets": {"focal_1145": {"pelvis_mm": 70.0, "shape_mm": 45.0}},
        "results": results})


if __name__ == "__main__":
    main()
