"""Does Blender read our BVH as we mean it? Import it headless, compare every bone.

For each input (a ``.wsgcn.npz`` pose file with the world outputs, or a Human3.6M
ground-truth clip turned into wsgcn's world frame, or both) this:

1. writes the BVH through ``posefile.write(p, path, "bvh")``;
2. runs Blender headless (``blender -b --factory-startup --python <script>``) which
   imports it with ``bpy.ops.import_anim.bvh`` and its default settings (axis_up 'Y',
   axis_forward '-Z', scale 1, frame_start 1) and, for every frame (``scene.frame_set``),
   writes each pose bone's head and tail in world space (``matrix_world @ bone.head``);
   Blender 3.4's importer opens the file with mode 'rU', which its Python (3.11) refuses,
   so the script maps 'rU' -> 'r' in ``builtins.open`` first;
3. maps Blender's axes back (Blender (x, y, z) = BVH (x, -z, y)) and measures:
   * upright: the head top above the pelvis (Blender +Z) in what share of frames;
   * floor: the lowest ankle over the clip in Blender z against the input's lowest
     ankle height (the world stage puts the floor at y = 0 with a resting ankle
     ``ankle_height_m`` above it; H36M-17 has no toes, its "Foot" is the ankle);
   * distance of every H36M-17 joint (bone heads; End Sites = tails of their parents)
     from ``keypoints_3d_world`` (frames without a pose held, as the BVH holds them),
     and from our own forward kinematics (``read_bvh``): the first includes the
     difference between each frame's bone lengths and the rest pose's median lengths,
     the second only how Blender reads the file.

Usage (the pose files from ``wsgcn lift samples/sports2d_clip.mp4 --no-video --out /tmp/bvhbench``
and the same for ``../shared/data/videos/body3d_demo.mp4``, body17 pipeline, world stage on)::

    python benchmarks/bvh_blender.py --h36m "S11/WalkDog 1" --h36m "S1/SittingDown" \\
        --pose /tmp/bvhbench/sports2d_clip.wsgcn.npz --pose /tmp/bvhbench/body3d_demo.wsgcn.npz \\
        --max-frames 300 --json benchmarks/results/bvh_blender.json

Without Blender on the PATH it says so and exits 0 (CI does not install it; Debian:
``apt-get install blender``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wsgcn_cli.io import posefile  # noqa: E402
from wsgcn_cli.io.atomic import write_json  # noqa: E402
from wsgcn_cli.io.bvh import BVH_NAMES, hold_last_valid, read_bvh  # noqa: E402
from wsgcn_cli.skeletons import H36M17, bone_lengths  # noqa: E402

H36M_3D = Path(__file__).resolve().parents[2] / "shared" / "data" / "h36m" / "h36m_3d_17j_world_mm.npz"

BLENDER_SCRIPT = r'''
import builtins, json, sys
import bpy

_open = builtins.open
def _open_ru(file, mode="r", *args, **kwargs):  # Blender 3.4's BVH importer uses mode 'rU'
    return _open(file, mode.replace("U", "") if isinstance(mode, str) else mode, *args, **kwargs)
builtins.open = _open_ru

bvh_path, out_path = sys.argv[sys.argv.index("--") + 1:][:2]
bpy.ops.import_anim.bvh(filepath=bvh_path)  # default axes: axis_forward='-Z', axis_up='Y'
arm = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
action = arm.animation_data.action
first, last = (int(round(v)) for v in action.frame_range)
scene = bpy.context.scene
out = {"first_frame": first, "last_frame": last, "fps": scene.render.fps, "bones": [b.name for b in arm.pose.bones],
       "head": [], "tail": [], "version": bpy.app.version_string}
for f in range(first, last + 1):
    scene.frame_set(f)
    mw = arm.matrix_world
    out["head"].append([list(mw @ b.head) for b in arm.pose.bones])
    out["tail"].append([list(mw @ b.tail) for b in arm.pose.bones])
with _open(out_path, "w") as fh:
    json.dump(out, fh)
'''


def h36m_world(key: str, max_frames: int) -> tuple[np.ndarray, float]:
    """A Human3.6M ground-truth clip in wsgcn's world frame: metres, y up (H36M z),
    z = -(H36M y), floor at the lowest ankle minus 0.06 m, origin under the first pelvis."""
    g = np.load(H36M_3D)[key][:max_frames].astype(np.float64) / 1000.0
    w = np.stack([g[..., 0], g[..., 2], -g[..., 1]], axis=-1)
    w[..., 1] -= w[:, [3, 6], 1].min() - 0.06
    w[..., [0, 2]] -= w[0, 0, [0, 2]]
    return w, 50.0


def pose_file_world(path: Path, max_frames: int) -> tuple[np.ndarray, float, np.ndarray]:
    p = posefile.read(path)
    if not p.has_world:
        raise SystemExit(f"{path} has no world outputs (keypoints_3d_world): lift it with the world stage")
    return p.keypoints_3d_world[:max_frames].astype(np.float64), p.fps, p.missing[:max_frames]


def blender_positions(blender: str, bvh: Path, work: Path) -> tuple[np.ndarray, dict, float]:
    script, out = work / "read_bvh_in_blender.py", work / "blender_bones.json"
    script.write_text(BLENDER_SCRIPT)
    t0 = time.time()
    run = subprocess.run([blender, "-b", "--factory-startup", "--python", str(script), "--", str(bvh), str(out)],
                         capture_output=True, text=True, timeout=1800)
    seconds = time.time() - t0
    if run.returncode != 0 or not out.is_file():
        raise SystemExit(f"blender failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    d = json.loads(out.read_text())
    names = d["bones"]
    head, tail = np.array(d["head"]), np.array(d["tail"])
    # H36M-17 joints: a JOINT's bone head, an End Site = its parent bone's tail
    cols = []
    for j in range(17):
        if j in (3, 6, 10, 13, 16):
            cols.append(tail[:, names.index(BVH_NAMES[H36M17.parents[j]])])
        else:
            cols.append(head[:, names.index(BVH_NAMES[j])])
    b = np.stack(cols, axis=1)  # Blender world (x, y, z), z up
    return b, d, seconds


def check(name: str, w: np.ndarray, fps: float, blender: str, work: Path, missing=None) -> dict:
    t = len(w)
    p = posefile.PoseFile(
        keypoints_2d=np.zeros((t, 17, 2)), scores=np.ones((t, 17)), keypoints_3d=w - w[:, :1],
        times=np.arange(t) / fps, fps=fps, image_size=(1, 1), missing=missing,
        root_camera_m=np.zeros((t, 3)), keypoints_3d_world=w, camera_to_world=np.eye(4),
        foot_contact=np.zeros((t, 2), bool))
    bvh = posefile.write(p, work / f"{name}.bvh", "bvh")
    b, meta, seconds = blender_positions(blender, bvh, work)
    bvh_axes = np.stack([b[..., 0], b[..., 2], -b[..., 1]], axis=-1)  # Blender (x, y, z) = BVH (x, -z, y)
    target = hold_last_valid(w)
    ours = read_bvh(bvh).h36m_positions()
    d_world = np.linalg.norm(bvh_axes - target, axis=-1)
    d_fk = np.linalg.norm(bvh_axes - ours, axis=-1)
    head_above = b[:, 10, 2] - b[:, 0, 2]
    lengths = bone_lengths(target)
    rel = np.abs(lengths / np.median(lengths, axis=0) - 1)
    lowest_ankle_blender = b[:, [3, 6], 2].min(axis=1)
    lowest_ankle_input = target[:, [3, 6], 1].min(axis=1)
    return {
        "input": name, "frames": int(t), "fps": fps, "blender_frames": meta["last_frame"] - meta["first_frame"] + 1,
        "blender_version": meta["version"], "blender_seconds": round(seconds, 1),
        "frames_without_pose_held": int((~np.isfinite(w).all(axis=(1, 2))).sum()),
        "upright_share": float((head_above > 0).mean()),
        "head_above_pelvis_m": {"min": round(float(head_above.min()), 4), "median": round(float(np.median(head_above)), 4)},
        "lowest_ankle_m": {"blender_z_min": round(float(lowest_ankle_blender.min()), 4),
                           "input_y_min": round(float(lowest_ankle_input.min()), 4),
                           "blender_z_median": round(float(np.median(lowest_ankle_blender)), 4)},
        "blender_vs_world_m": {"max": round(float(d_world.max()), 5), "mean": round(float(d_world.mean()), 5),
                               "p95": round(float(np.percentile(d_world, 95)), 5),
                               "share_within_1cm": round(float((d_world < 0.01).mean()), 4),
                               "max_per_joint": {H36M17.joint_names[j]: round(float(d_world[:, j].max()), 4)
                                                 for j in range(17)}},
        "blender_vs_read_bvh_fk_m": {"max": float(f"{d_fk.max():.3g}"), "mean": float(f"{d_fk.mean():.3g}")},
        "input_bone_length_deviation_from_median": {"median": round(float(np.median(rel)), 4),
                                                    "p95": round(float(np.percentile(rel, 95)), 4),
                                                    "max": round(float(rel.max()), 4)},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pose", action="append", default=[], help=".wsgcn.npz with world outputs (repeatable)")
    ap.add_argument("--h36m", action="append", default=[], help='Human3.6M GT clip key, e.g. "S11/WalkDog 1"')
    ap.add_argument("--max-frames", type=int, default=300)
    ap.add_argument("--blender", default=shutil.which("blender") or "")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    if not a.blender:
        print("blender not found on the PATH: nothing measured (apt-get install blender)")
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for key in a.h36m:
            w, fps = h36m_world(key, a.max_frames)
            results.append(check(f"h36m_gt:{key}".replace("/", "_").replace(" ", "_"), w, fps, a.blender, work))
            results[-1]["source"] = f"{H36M_3D.name}[{key!r}][:{a.max_frames}], H36M world -> y up, metres"
            print(json.dumps(results[-1], indent=1))
        for pose in a.pose:
            w, fps, missing = pose_file_world(Path(pose), a.max_frames)
            results.append(check(Path(pose).name.split(".")[0], w, fps, a.blender, work, missing))
            results[-1]["source"] = f"{pose}: keypoints_3d_world of `wsgcn lift` (frames [:{a.max_frames}])"
            print(json.dumps(results[-1], indent=1))
    if a.json:
        write_json(a.json, {
            "benchmark": "benchmarks/bvh_blender.py",
            "what": "BVH written by posefile.write(..., 'bvh'), imported by Blender headless with default axes; "
                    "bone heads (End Sites: parent tails) per frame, Blender (x, y, z) mapped to BVH (x, -z, y)",
            "results": results})


if __name__ == "__main__":
    main()
