"""Whole-body 2D (COCO-WholeBody-133): recall per part and speed of the detector's settings.

Detector: ``wsgcn_cli.detect.holistic.HolisticDetector`` (:data:`CONFIGS`): ``holistic``
(MediaPipe Holistic alone), ``holistic+crops`` (face / hand models also run on ROIs and
crops placed from the body for the parts Holistic missed) and ``pose+rois`` (BlazePose
alone for the body, faces and hands from the landmark models on ROIs: the ``wholebody``
lift pipeline's setting).

Data (never committed): ``samples/sports2d_clip.mp4`` (105 frames, 960 x 540, video
mode: tracking) and ``../shared/data/images/coco/*.jpg`` (4 images, image mode; the
single-person detector picks one person per image). Recall per part: frames where the
part (face, left hand, right hand) has keypoints / frames with a body. Accuracy on the
COCO images: the detected person is matched to the COCO-WholeBody annotation
(``../shared/data/wholebody/test_coco_wholebody.json``) with the smallest mean body
keypoint distance; for each labelled part found, the mean pixel error over the labelled
keypoints and that error / the diagonal of the annotated part box (face_box / hand box).
ms/frame: wall time of ``detect`` alone (decoding excluded), one thread
(``OMP_NUM_THREADS=1``), on a shared 2-core machine (the load average is recorded).

    OMP_NUM_THREADS=1 python benchmarks/wholebody_2d.py [CONFIG ...]

Writes ``benchmarks/results/wholebody_2d.json`` (naming some configs: only those are run
and replaced in the file).
"""

from __future__ import annotations

import glob
import json
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PARTS = ("face", "left_hand", "right_hand")
#: The detector settings compared: name -> HolisticDetector options.
CONFIGS = {"holistic": dict(crops=False, rois=False), "holistic+crops": dict(crops=True, rois=True),
           "pose+rois": dict(body="pose", rois=True, crops=False)}


def _run(detector, images):
    from wsgcn_cli.pose2d.wholebody import BODY, FACE, LEFT_HAND, RIGHT_HAND

    xys, scores, ms, sources = [], [], [], []
    for image in images:
        t = time.perf_counter()
        xy, score = detector.detect(image)
        ms.append((time.perf_counter() - t) * 1000)
        xys.append(xy)
        scores.append(score)
        sources.append(dict(detector.last_sources))
    score = np.stack(scores)
    body = (score[:, BODY] > 0).any(axis=1)
    found = {p: (score[:, s] > 0).any(axis=1) & body
             for p, s in zip(PARTS, (FACE, LEFT_HAND, RIGHT_HAND))}
    out = {
        "frames": len(images), "frames_with_body": int(body.sum()),
        "found": {p: int(found[p].sum()) for p in PARTS},
        "recall": {p: round(float(found[p].sum() / max(body.sum(), 1)), 3) for p in PARTS},
        "source_counts": {p: {k: int(sum(s[p] == k for s in sources))
                              for k in ("holistic", "roi", "crop")} for p in PARTS},
        # first frame excluded from the mean: graph start-up
        "ms_per_frame": round(float(np.mean(ms[1:] if len(ms) > 1 else ms)), 1),
    }
    return out, np.stack(xys), score


def _coco_accuracy(paths, xys, scores):
    from wsgcn_cli.pose2d.wholebody import FACE, LEFT_HAND, RIGHT_HAND

    ann = json.load(open(DATA / "wholebody" / "test_coco_wholebody.json"))
    rows = []
    for path, xy, score in zip(paths, xys, scores):
        image_id = int(Path(path).stem)
        cands = [a for a in ann["annotations"] if a["image_id"] == image_id]
        if not (score[:17] > 0).any() or not cands:
            continue

        def body_dist(a):
            k = np.array(a["keypoints"], float).reshape(17, 3)
            ok = (k[:, 2] > 0) & (score[:17] > 0)
            return np.linalg.norm(k[ok, :2] - xy[:17][ok], axis=1).mean() if ok.any() else 1e9

        a = min(cands, key=body_dist)
        row = {"image": Path(path).name, "body_match_px": round(float(body_dist(a)), 1)}
        for part, sl, key, box in (("face", FACE, "face_kpts", "face_box"),
                                   ("left_hand", LEFT_HAND, "lefthand_kpts", "lefthand_box"),
                                   ("right_hand", RIGHT_HAND, "righthand_kpts", "righthand_box")):
            gt = np.array(a[key], float).reshape(-1, 3)
            labelled = gt[:, 2] > 0
            if not labelled.any():
                row[part] = "not labelled"
                continue
            if not (score[sl] > 0).any():
                row[part] = "labelled, not found"
                continue
            err = np.linalg.norm(gt[labelled, :2] - xy[sl][labelled], axis=1).mean()
            diag = float(np.hypot(a[box][2], a[box][3]))
            row[part] = {"mean_px": round(float(err), 1), "per_box_diag": round(err / diag, 3),
                         "box_diag_px": round(diag, 1), "labelled": int(labelled.sum())}
        rows.append(row)
    return rows


def main() -> None:
    import sys

    import cv2

    from wsgcn_cli.detect.holistic import HolisticDetector
    from wsgcn_cli.io.video import open_frames

    with open_frames(ROOT / "samples" / "sports2d_clip.mp4") as src:
        clip = [f.image for f in src]
    paths = sorted(glob.glob(str(DATA / "images" / "coco" / "*.jpg")))
    coco = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in paths]
    out = ROOT / "benchmarks" / "results" / "wholebody_2d.json"
    names = sys.argv[1:] or list(CONFIGS)
    results = json.loads(out.read_text()) if sys.argv[1:] and out.is_file() else {"runs": {}}
    results["load_average_start" if not sys.argv[1:] else f"load_average_start_{'_'.join(names)}"] = \
        os.getloadavg()[0]
    for name in names:
        options = CONFIGS[name]
        with HolisticDetector(static_image_mode=False, **options) as det:
            clip_res, _, _ = _run(det, clip)
        with HolisticDetector(static_image_mode=True, **options) as det:
            det.detect(coco[0])  # start-up, not timed
            coco_res, xys, scores = _run(det, coco)
        coco_res["accuracy"] = _coco_accuracy(paths, xys, scores)
        results["runs"][name] = {"sports2d_clip_video": clip_res, "coco_images": coco_res}
        print(name, json.dumps(results["runs"][name], indent=1))
    results["load_average_end" if not sys.argv[1:] else f"load_average_end_{'_'.join(names)}"] = \
        os.getloadavg()[0]
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
