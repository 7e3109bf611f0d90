"""Read 2D keypoints from a file instead of running a detector.

Two formats, chosen by the file name's extension:

* ``.npz`` — wsgcn's own 2D output: ``keypoints_2d`` (T, J, 2) pixels, ``scores``
  (T, J), ``times`` (T,) seconds, ``fps`` (scalar), ``image_size`` (2,) = (width,
  height) and ``layout`` (a layout name, e.g. ``"h36m17"``).
* ``.json`` — an MMPose prediction file as written by ``demo/inferencer_demo.py
  --pred-out-dir`` (``MMPoseInferencer``): for a video, a list with one entry per frame,
  ``{"frame_id": i, "instances": [{"keypoints": [[x, y], ...], "keypoint_scores":
  [...], "bbox": [[x1, y1, x2, y2]], "bbox_score": s}, ...]}``; for an image, the list
  of instances itself. The ``{"meta_info": ..., "instance_info": [...]}`` file of
  ``demo/topdown_demo_with_mmdet.py --save-predictions`` is read too. In each frame
  the instance with the highest mean keypoint score is kept (frames without an
  instance, or missing from the list, become NaN). The layout follows from the number
  of keypoints: 17 = ``coco17``, 133 = ``coco_wholebody133``, 33 = ``blazepose33``.
  Scores are clipped to [0, 1] (some MMPose heads output larger values). The file
  holds neither the image size nor the frame rate: pass them.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from wsgcn_cli.detect.base import Keypoints2D
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.skeletons import get_layout

#: Layout of an MMPose prediction by its number of keypoints.
LAYOUT_BY_COUNT = {17: "coco17", 133: "coco_wholebody133", 33: "blazepose33"}

NPZ_KEYS = ("keypoints_2d", "scores", "times", "fps", "image_size", "layout")


def load_keypoints(path: str | os.PathLike, *, image_size: tuple[int, int] | None = None,
                   fps: float | None = None) -> Keypoints2D:
    """Read 2D keypoints of one person from a wsgcn ``.npz`` or an MMPose ``.json``.

    Args:
        path: the file.
        image_size: (width, height) in pixels of the frames the keypoints belong to.
            Required for MMPose JSON; for ``.npz`` it overrides the stored size.
        fps: frame rate of the video; required for MMPose JSON with more than one frame
            (frame ``i`` gets time ``i / fps``; ``fps`` is 0.0 for a single image). For
            ``.npz`` it overrides the stored rate (times are kept).

    Returns:
        :class:`~wsgcn_cli.detect.base.Keypoints2D` in the file's layout (pixels, NaN
        and score 0 where no person was detected).

    Raises:
        WsgcnError: missing file, unknown extension, unreadable or malformed file
            (missing keys, wrong shapes, unsupported number of keypoints, 3D keypoints),
            or a required ``image_size``/``fps`` not given.
    """
    path = Path(path)
    if not path.is_file():
        raise WsgcnError(f"keypoint file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path, image_size, fps)
    if suffix == ".json":
        return _load_mmpose_json(path, image_size, fps)
    raise WsgcnError(f"{path}: unknown keypoint file type {suffix!r} (expected .npz or .json)")


def _load_npz(path: Path, image_size, fps) -> Keypoints2D:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in NPZ_KEYS if k not in data.files]
            if missing:
                raise WsgcnError(f"{path} is not a wsgcn 2D keypoint file: missing "
                                 f"{', '.join(missing)}")
            arrays = {k: data[k] for k in NPZ_KEYS}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise WsgcnError(f"cannot read {path} as .npz ({e})") from None
    layout = str(arrays["layout"])
    get_layout(layout)  # raises WsgcnError if unknown
    size = np.asarray(arrays["image_size"]).reshape(-1)
    if size.shape != (2,):
        raise WsgcnError(f"{path}: image_size must hold (width, height), got {size.shape}")
    width, height = image_size if image_size is not None else (int(size[0]), int(size[1]))
    try:
        return Keypoints2D(
            layout=layout, xy=arrays["keypoints_2d"], score=arrays["scores"],
            times=arrays["times"], width=width, height=height,
            fps=float(arrays["fps"]) if fps is None else fps)
    except ValueError as e:
        raise WsgcnError(f"{path}: {e}") from None


def _frames_of(data, path: Path) -> list[tuple[int, list]]:
    """[(frame_id, instances)] from any of the accepted MMPose layouts."""
    if isinstance(data, dict) and "instance_info" in data:
        data = data["instance_info"]
    if not isinstance(data, list):
        raise WsgcnError(f"{path} is not an MMPose prediction file (expected a JSON list)")
    if not data:
        return []
    if all(isinstance(d, dict) and "instances" in d for d in data):
        frames = []
        for i, d in enumerate(data):
            fid = d.get("frame_id", i)
            if not isinstance(fid, int) or fid < 0 or not isinstance(d["instances"], list):
                raise WsgcnError(f"{path}: bad frame entry {i} (frame_id {fid!r})")
            frames.append((fid, d["instances"]))
        return frames
    if all(isinstance(d, dict) and "keypoints" in d for d in data):
        return [(0, data)]  # single image: a list of instances
    raise WsgcnError(f"{path} is not an MMPose prediction file (entries need 'instances' "
                     "or 'keypoints')")


def _best_instance(instances: list, path: Path, frame_id: int):
    """(keypoints (J, 2), scores (J,)) of the instance with the highest mean score."""
    best, best_score = None, -np.inf
    for inst in instances:
        try:
            kps = np.asarray(inst["keypoints"], dtype=np.float64)
            scores = np.asarray(inst.get("keypoint_scores", np.ones(len(kps))), dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            raise WsgcnError(f"{path}: frame {frame_id} has an instance without numeric "
                             "'keypoints'") from None
        if kps.ndim != 2 or kps.shape[1] != 2:
            what = "3D keypoints" if kps.ndim == 2 and kps.shape[1] == 3 else f"shape {kps.shape}"
            raise WsgcnError(f"{path}: frame {frame_id}: expected 2D keypoints [[x, y], ...], "
                             f"got {what}")
        if scores.shape != (len(kps),):
            raise WsgcnError(f"{path}: frame {frame_id}: {len(kps)} keypoints but "
                             f"{scores.size} keypoint_scores")
        mean = float(np.nanmean(scores)) if scores.size else -np.inf
        if mean > best_score:
            best, best_score = (kps, scores), mean
    return best


def _load_mmpose_json(path: Path, image_size, fps) -> Keypoints2D:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WsgcnError(f"cannot read {path} as JSON ({e})") from None
    frames = _frames_of(data, path)
    picked = {fid: _best_instance(inst, path, fid) for fid, inst in frames}
    found = [p for p in picked.values() if p is not None]
    if not found:
        raise WsgcnError(f"{path} holds no person keypoints")
    counts = {len(p[0]) for p in found}
    if len(counts) != 1:
        raise WsgcnError(f"{path}: instances have different numbers of keypoints {sorted(counts)}")
    count = counts.pop()
    if count not in LAYOUT_BY_COUNT:
        raise WsgcnError(f"{path}: {count} keypoints per person is not a supported layout "
                         f"(17 COCO, 133 COCO-WholeBody, 33 BlazePose)")
    if image_size is None:
        raise WsgcnError(f"{path}: MMPose files do not store the image size; give "
                         "image_size=(width, height) (e.g. from the video)")
    num_frames = max(picked) + 1
    if fps is None:
        if num_frames > 1:
            raise WsgcnError(f"{path}: MMPose files do not store the frame rate; give fps "
                             "(e.g. from the video)")
        fps = 0.0
    xy = np.full((num_frames, count, 2), np.nan, np.float32)
    score = np.zeros((num_frames, count), np.float32)
    for fid, p in picked.items():
        if p is not None:
            xy[fid], score[fid] = p[0], np.nan_to_num(np.clip(p[1], 0.0, 1.0))
    times = np.arange(num_frames) / fps if fps > 0 else np.zeros(num_frames)
    return Keypoints2D(LAYOUT_BY_COUNT[count], xy, score, times, image_size[0], image_size[1],
                       fps)
