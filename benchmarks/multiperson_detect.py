"""Multi-person 2D detection: two routes to several BlazePose people per frame, measured.

Route (a), ``wsgcn_cli.detect.multi_person.BlazePoseMultiDetector``: the wheel's person
detector (``pose_detection.tflite``) and landmark model (``pose_landmark_full.tflite``)
run with the LiteRT interpreter (``ai-edge-litert``), SSD decoding / ROIs / landmark
projection in numpy, re-detection on the frame with the people found blacked out.

Route (b), MediaPipe Tasks ``PoseLandmarker(num_poses=N)`` on a ``.task`` bundle built
here from the same two files, after giving them the NormalizationOptions metadata the
Tasks API asks for (the wheel's own ``metadata_writers``: detector input mean 127.5, std
127.5 -> [-1, 1]; landmark input mean 0, std 255 -> [0, 1], as in the wheel's graphs).

Reference: the single-person ``mediapipe.solutions.pose.Pose`` (what ``wsgcn lift`` uses).

Data (never committed): ``../shared/data/videos/sports2d_demo.mp4`` (a man on a box, all
frames; a woman walking in front, visible from about frame 40 -- partly behind a tree
until about frame 44 -- to the end), the first ``--frames`` frames, in video (tracking)
mode and in image mode (each frame on its own); ``../shared/data/images/coco/*.jpg``
(1, 2, 4 and 5 people) in image mode. Recall: the fraction of frames 40.. (and 60..) in
which at least 2 people are found; ghosts: frames with more than 2 people, and frames
before 36 (only the man in view) with more than 1. ms/frame is wall time of the detector call only (decoding
excluded), single thread (run with ``OMP_NUM_THREADS=1``), on a shared machine: the load
average is recorded.

    OMP_NUM_THREADS=1 python benchmarks/multiperson_detect.py [--frames 150]

Writes ``benchmarks/results/multiperson_detect.json``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CLIP = DATA / "videos" / "sports2d_demo.mp4"
COCO = DATA / "images" / "coco"
BOTH_FROM = 40  # first frame of the clip with both people in view
BOTH_CLEAR_FROM = 60
ONE_UNTIL = 36  # the woman is out of view (behind a tree at the right) before this frame


def clip_frames(n: int) -> list[np.ndarray]:
    from wsgcn_cli.io.video import open_frames

    frames = []
    with open_frames(CLIP) as src:
        for frame in src:
            frames.append(np.ascontiguousarray(frame.image))
            if len(frames) >= n:
                break
    return frames


def coco_images() -> dict[str, np.ndarray]:
    import cv2

    return {Path(f).name: np.ascontiguousarray(cv2.cvtColor(cv2.imread(f), cv2.COLOR_BGR2RGB))
            for f in sorted(glob.glob(str(COCO / "*.jpg")))}


def summarise(counts: list[int], seconds: list[float], cpu_seconds: float) -> dict:
    counts_a, secs = np.asarray(counts), np.asarray(seconds)
    out = {
        "frames": len(counts),
        "ms_per_frame": round(float(secs.mean() * 1000), 1),
        # process CPU time / wall time: > 1 when the library runs several threads
        "cpu_per_wall": round(float(cpu_seconds / max(secs.sum(), 1e-9)), 2),
        "ms_per_frame_median": round(float(np.median(secs) * 1000), 1),
        "people_per_frame": [int(c) for c in counts],
        "frames_with": {str(k): int((counts_a == k).sum()) for k in range(int(counts_a.max()) + 1)},
        "recall_both_from_40": round(float((counts_a[BOTH_FROM:] >= 2).mean()), 3),
        "recall_both_from_60": round(float((counts_a[BOTH_CLEAR_FROM:] >= 2).mean()), 3),
        "frames_with_more_than_2": int((counts_a > 2).sum()),
        # only the man is in view before frame ONE_UNTIL: a second person there is a ghost
        "frames_with_more_than_1_before_woman": int((counts_a[:ONE_UNTIL] > 1).sum()),
        "frames_with_none": int((counts_a == 0).sum()),
    }
    for k in (1, 2):
        sel = counts_a == k
        if sel.any():
            out[f"ms_per_frame_when_{k}_found"] = round(float(secs[sel].mean() * 1000), 1)
    return out


def timed(fn, items):
    counts, secs = [], []
    cpu0 = time.process_time()
    for item in items:
        t0 = time.perf_counter()
        n = fn(item)
        secs.append(time.perf_counter() - t0)
        counts.append(n)
    return counts, secs, time.process_time() - cpu0


# -- route (a) ----------------------------------------------------------------------------

def route_a(frames, images, **options) -> dict:
    from wsgcn_cli.detect.multi_person import BlazePoseMultiDetector

    result = {"options": options}
    with BlazePoseMultiDetector(static_image_mode=False, max_people=4, **options) as det:
        det.detect_people(frames[0])  # warm-up, then a fresh start
        det.reset()
        result["video"] = summarise(*timed(lambda im: len(det.detect_people(im)), frames))
    with BlazePoseMultiDetector(static_image_mode=True, max_people=6, **options) as det:
        result["image_mode_clip"] = summarise(
            *timed(lambda im: len(det.detect_people(im)), frames))
        result["coco"] = {}
        for name, image in images.items():
            t0 = time.perf_counter()
            people = det.detect_people(image)
            result["coco"][name] = {
                "people": len(people), "ms": round((time.perf_counter() - t0) * 1000, 1),
                "boxes": [[round(float(v)) for v in q.box] for q in people],
                "presence": [round(q.presence, 2) for q in people]}
    return result


# -- route (b) ----------------------------------------------------------------------------

def build_task_bundle(path: Path) -> None:
    """The wheel's detector and landmark model, with input NormalizationOptions, as a
    PoseLandmarker ``.task`` bundle."""
    import mediapipe as mp
    from mediapipe.tasks.python.metadata.metadata_writers import (
        metadata_writer, model_asset_bundle_utils, writer_utils)

    root = Path(mp.__file__).parent / "modules"

    def with_metadata(model: Path, mean: float, std: float, name: str) -> bytes:
        buffer = bytearray(model.read_bytes())
        writer = metadata_writer.MetadataWriter.create(buffer).add_general_info(name)
        writer.add_image_input([mean], [std])
        for _ in writer_utils.get_output_tensor_types(buffer):
            writer.add_feature_output()
        return bytes(writer.populate()[0])

    model_asset_bundle_utils.create_model_asset_bundle({
        "pose_detector.tflite": with_metadata(
            root / "pose_detection" / "pose_detection.tflite", 127.5, 127.5, "pose_detector"),
        "pose_landmarks_detector.tflite": with_metadata(
            root / "pose_landmark" / "pose_landmark_full.tflite", 0.0, 255.0,
            "pose_landmarks_detector"),
    }, str(path))


def route_b(frames, images, bundle: Path, num_poses: int) -> dict:
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    def landmarker(mode):
        return vision.PoseLandmarker.create_from_options(vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(bundle)), running_mode=mode,
            num_poses=num_poses))

    def image(a):
        return mp.Image(image_format=mp.ImageFormat.SRGB, data=a)

    result = {"options": {"num_poses": num_poses}}
    with landmarker(vision.RunningMode.VIDEO) as lm:
        index = iter(range(10 ** 9))
        result["video"] = summarise(*timed(
            lambda a: len(lm.detect_for_video(image(a), next(index) * 33).pose_landmarks),
            frames))
    with landmarker(vision.RunningMode.IMAGE) as lm:
        result["image_mode_clip"] = summarise(
            *timed(lambda a: len(lm.detect(image(a)).pose_landmarks), frames))
        result["coco"] = {}
        for name, a in images.items():
            t0 = time.perf_counter()
            poses = lm.detect(image(a)).pose_landmarks
            h, w = a.shape[:2]
            result["coco"][name] = {
                "people": len(poses), "ms": round((time.perf_counter() - t0) * 1000, 1),
                "boxes": [[round(min(p.x for p in q) * w), round(min(p.y for p in q) * h),
                           round(max(p.x for p in q) * w), round(max(p.y for p in q) * h)]
                          for q in poses]}
    return result


# -- reference ----------------------------------------------------------------------------

def single_person(frames) -> dict:
    from wsgcn_cli.detect.mediapipe_pose import MediaPipePoseDetector

    with MediaPipePoseDetector(static_image_mode=False) as det:
        out = summarise(*timed(lambda a: int(np.isfinite(det.detect(a)[0]).all()), frames))
    return {k: out[k] for k in ("frames", "ms_per_frame", "ms_per_frame_median",
                                "cpu_per_wall", "frames_with")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" /
                                             "multiperson_detect.json"))
    args = parser.parse_args()
    if not CLIP.is_file():
        raise SystemExit(f"{CLIP} is absent")
    frames, images = clip_frames(args.frames), coco_images()
    h, w = frames[0].shape[:2]
    results = {
        "clip": "shared/data/videos/sports2d_demo.mp4",
        "clip_frames": len(frames), "clip_size": [w, h],
        "both_people_in_view_from_frame": BOTH_FROM,
        "only_the_man_in_view_before_frame": ONE_UNTIL,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                    "load_average_start": [round(v, 2) for v in os.getloadavg()]},
        "routes": {},
    }
    runs = {
        "a_default": lambda: route_a(frames, images),  # detect_every=3
        "a_detect_every_1": lambda: route_a(frames, images, detect_every=1),
        "a_detect_every_5": lambda: route_a(frames, images, detect_every=5),
        "a_mediapipe_thresholds": lambda: route_a(
            frames, images, min_detection_confidence=0.5, min_new_presence=0.5),
    }
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "pose_landmarker_wheel.task"
        try:
            build_task_bundle(bundle)
            runs["b_num_poses_2"] = lambda: route_b(frames, images, bundle, 2)
            runs["b_num_poses_4"] = lambda: route_b(frames, images, bundle, 4)
        except Exception as e:  # noqa: BLE001 - recorded, not fatal
            results["routes"]["b"] = {"error": f"{type(e).__name__}: {e}"}
        runs["reference_single_person_pose"] = lambda: single_person(frames)
        for name, run in runs.items():
            t0 = time.perf_counter()
            try:
                results["routes"][name] = run()
            except Exception as e:  # noqa: BLE001
                results["routes"][name] = {"error": f"{type(e).__name__}: {e}"}
            print(f"{name}: {time.perf_counter() - t0:.1f} s", flush=True)
    results["machine"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    for name, r in results["routes"].items():
        if "video" in r:
            v, i = r["video"], r["image_mode_clip"]
            print(f"{name:28s} video {v['ms_per_frame']:6.1f} ms/frame  recall>=40 "
                  f"{v['recall_both_from_40']:.2f} >=60 {v['recall_both_from_60']:.2f} "
                  f"extra {v['frames_with_more_than_2']:3d} "
                  f"ghost<36 {v['frames_with_more_than_1_before_woman']:3d} "
                  f"none {v['frames_with_none']:3d} | "
                  f"image {i['ms_per_frame']:6.1f} ms recall>=60 {i['recall_both_from_60']:.2f} "
                  f"none {i['frames_with_none']:3d} | coco "
                  f"{[c['people'] for c in r['coco'].values()]}")
        else:
            print(name, {k: v for k, v in r.items() if k != "people_per_frame"})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
