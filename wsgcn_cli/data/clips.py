"""Unlabelled footage for self-supervised adaptation: clips -> cached 2D -> the pipeline's 2D stage.

A *clip* is a video (or a folder of images, or an image) without any 3D; or a 2D
keypoint file (``.npz`` in the format of :mod:`wsgcn_cli.detect.precomputed`, e.g. a
``lift`` pose file or a cache file below). For a video the lift pipeline's detector
(``[detector]`` of e.g. ``pipelines/body17.toml``) runs once and its raw keypoints are
cached on disk as ``<clip file name>.wsgcn2d.npz``:

* beside the clip, or in ``cache_dir`` when given; when the clip's folder is not
  writable and no ``cache_dir`` is given, in ``fallback_dir`` (the caller's choice,
  e.g. the folder of the output weights);
* in the precomputed keypoint format (``keypoints_2d`` (T, J, 2) pixels in the
  detector's layout, ``scores`` (T, J), ``times`` (T,) seconds, ``fps``, ``image_size``
  (width, height), ``layout``), so ``wsgcn lift --keypoints`` reads it too; plus
  provenance (``source_name``, ``source_bytes``, ``source_mtime_ns``, ``detector``: the
  detector table as JSON). A cache whose provenance does not match the clip and the
  detector settings is ignored and rewritten; it is written atomically, so a Ctrl-C
  during detection leaves no cache at all.

The 2D stage (mapping to H36M-17, gap filling and, in a pipeline that has it, the 2D
pose representation network) runs after loading, through the same
:class:`wsgcn_cli.pipeline.Pipeline` as ``lift`` (:meth:`~wsgcn_cli.pipeline.Pipeline.run`),
so the 2D is exactly what ``lift`` feeds the lifter for the same detections.

Detection imports its library (mediapipe) only when a clip has to be detected.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from wsgcn_cli.detect.base import Keypoints2D
from wsgcn_cli.errors import WsgcnError

CACHE_SUFFIX = ".wsgcn2d.npz"
CACHE_VERSION = 1
KEYPOINT_SUFFIXES = (".npz",)


@dataclass
class Clip2D:
    """H36M-17 2D of one clip, ready for the lifter.

    Attributes:
        path: the clip (video, image folder or keypoint file).
        kp: :class:`Keypoints2D` in ``h36m17``: xy (T, 17, 2) pixels after the pipeline's
            2D stage (NaN where still missing), score (T, 17) its confidences, times (T,)
            s, width, height (pixels), fps.
        valid: (T,) bool, frames whose 17 joints are all present (the usable frames).
        raw_layout: the detector's (or file's) layout.
        cache: the cache file read or written, or None (keypoint file input).
        from_cache: True if no detection ran.
    """

    path: Path
    kp: Keypoints2D
    valid: np.ndarray
    raw_layout: str
    cache: Path | None
    from_cache: bool

    @property
    def name(self) -> str:
        return self.path.name


def cache_path(clip: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache_dir or clip folder>/<clip file name>.wsgcn2d.npz``."""
    clip = Path(clip)
    return (Path(cache_dir) if cache_dir is not None else clip.parent) / f"{clip.name}{CACHE_SUFFIX}"


def _signature(detector_table: dict) -> str:
    return json.dumps({"version": CACHE_VERSION, **detector_table}, sort_keys=True)


def _provenance(clip: Path) -> tuple[int, int]:
    st = clip.stat()
    return int(st.st_size), int(st.st_mtime_ns)


def read_cache(path: Path, clip: Path, detector_table: dict) -> Keypoints2D | None:
    """The cached raw 2D of ``clip``, or None if absent, unreadable or stale."""
    from wsgcn_cli.detect.precomputed import load_keypoints

    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            size, mtime = _provenance(clip)
            if str(z["detector"]) != _signature(detector_table) or int(z["source_bytes"]) != size \
                    or int(z["source_mtime_ns"]) != mtime:
                return None
        return load_keypoints(path)
    except (KeyError, OSError, ValueError, WsgcnError):
        return None


def write_cache(path: Path, kp: Keypoints2D, clip: Path, detector_table: dict) -> Path:
    """Write the raw 2D of ``clip`` atomically (see the module docstring for the keys)."""
    from wsgcn_cli.io.atomic import atomic_open

    size, mtime = _provenance(clip)
    with atomic_open(path, "wb") as f:
        np.savez_compressed(
            f, keypoints_2d=kp.xy.astype(np.float32), scores=kp.score.astype(np.float32),
            times=kp.times, fps=np.float64(kp.fps), image_size=np.int32([kp.width, kp.height]),
            layout=np.array(kp.layout), source_name=np.array(clip.name),
            source_bytes=np.int64(size), source_mtime_ns=np.int64(mtime),
            detector=np.array(_signature(detector_table)))
    return path


def detect_clip(clip: Path, pipe, progress: Callable | None = None) -> Keypoints2D:
    """Run the pipeline's detector (:meth:`wsgcn_cli.pipeline.Pipeline.detector`, as
    ``lift`` creates it) on every frame of a video / image / folder.

    ``pipe``: a :class:`wsgcn_cli.pipeline.Pipeline`; ``progress(done, total)`` is called
    after each frame. Returns the detector's keypoints (its layout, pixels). Raises
    WsgcnError for an unreadable clip or a detector that cannot be created (e.g.
    mediapipe missing).
    """
    from wsgcn_cli.detect.base import detect_frames
    from wsgcn_cli.io.video import open_frames

    source = open_frames(clip)
    with source:
        detector = pipe.detector(source)
        try:
            on_frame = None if progress is None else \
                (lambda frame, xy, score: progress(frame.index + 1, source.num_frames))
            return detect_frames(detector, source, width=source.width, height=source.height,
                                 fps=source.fps, on_frame=on_frame)
        finally:
            detector.close()


def writable_folder(folder: Path) -> bool:
    """True if files can be created in ``folder``."""
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def load_clip(clip: str | os.PathLike, pipe, cache_dir: str | os.PathLike | None = None,
              fallback_dir: str | os.PathLike | None = None, progress: Callable | None = None) -> Clip2D:
    """2D of one clip after the pipeline's 2D stage, detecting (and caching) or reading the cache.

    Args:
        clip: a video / image / image folder, or a 2D keypoint ``.npz``.
        pipe: the lift pipeline (:class:`wsgcn_cli.pipeline.Pipeline`): its detector
            makes (and its ``[detector]`` table keys the cache of) the raw 2D, its 2D
            stage the H36M-17 2D.
        cache_dir: folder for the cache files (created if needed); default beside the clip.
        fallback_dir: where to cache when the clip's folder is not writable.
        progress: ``progress(done, total)`` during detection.

    Raises:
        WsgcnError: missing or unreadable clip, a keypoint file of a layout that cannot be
            mapped to H36M-17, a cache folder that cannot be created.
    """
    clip = Path(clip)
    if not clip.exists():
        raise WsgcnError(f"clip {clip} does not exist")
    detector_table = pipe.detector_table
    cache = None
    from_cache = True
    if clip.is_file() and clip.suffix.lower() in KEYPOINT_SUFFIXES:
        from wsgcn_cli.detect.precomputed import load_keypoints

        raw = load_keypoints(clip)
    else:
        folder = Path(cache_dir) if cache_dir is not None else clip.parent
        if cache_dir is None and not writable_folder(folder) and fallback_dir is not None:
            folder = Path(fallback_dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise WsgcnError(f"cannot create cache folder {folder}: {e.strerror}")
        cache = cache_path(clip, folder)
        raw = read_cache(cache, clip, detector_table)
        if raw is None:
            from_cache = False
            raw = detect_clip(clip, pipe, progress)
            if writable_folder(folder):
                write_cache(cache, raw, clip, detector_table)
            else:
                cache = None
    kp = pipe.run(raw, lift=False).keypoints(raw.width, raw.height, raw.fps)
    valid = np.isfinite(kp.xy).all(axis=(1, 2))
    return Clip2D(clip, kp, valid, raw.layout, cache, from_cache)
