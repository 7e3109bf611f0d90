"""Unlabelled footage for self-supervised adaptation: clips -> cached 2D -> H36M-17.

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

The geometric 2D stage (:func:`wsgcn_cli.represent.to_h36m17`, then
:func:`wsgcn_cli.represent.fill_gaps` with the pipeline's ``[representation]``
options) is cheap and applied after loading, exactly as ``lift`` does.

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
        kp: :class:`Keypoints2D` in ``h36m17``: xy (T, 17, 2) pixels after mapping and gap
            filling (NaN where still missing), score (T, 17), times (T,) s, width,
            height (pixels), fps.
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


def detect_clip(clip: Path, detector_table: dict, progress: Callable | None = None) -> Keypoints2D:
    """Run the pipeline's detector on every frame of a video / image / folder.

    ``detector_table`` is the pipeline's ``[detector]`` table (``name`` + options);
    ``progress(done, total)`` is called after each frame. Raises WsgcnError for an
    unreadable clip or a detector that cannot be created (e.g. mediapipe missing).
    """
    from wsgcn_cli.detect.base import detect_frames, make_detector
    from wsgcn_cli.io.video import open_frames

    source = open_frames(clip)
    with source:
        options = {k: v for k, v in detector_table.items() if k != "name"}
        options.setdefault("static_image_mode", source.kind != "video")
        detector = make_detector(detector_table.get("name", "mediapipe"), **options)
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


def load_clip(clip: str | os.PathLike, lift_spec: dict, cache_dir: str | os.PathLike | None = None,
              fallback_dir: str | os.PathLike | None = None, progress: Callable | None = None) -> Clip2D:
    """2D of one clip in H36M-17, detecting (and caching) or reading the cache.

    Args:
        clip: a video / image / image folder, or a 2D keypoint ``.npz``.
        lift_spec: a lift pipeline (``wsgcn_cli.pipeline.load(name, kind="lift")``): its
            ``[detector]`` and ``[representation]`` tables are used.
        cache_dir: folder for the cache files (created if needed); default beside the clip.
        fallback_dir: where to cache when the clip's folder is not writable.
        progress: ``progress(done, total)`` during detection.

    Raises:
        WsgcnError: missing or unreadable clip, a keypoint file of a layout that cannot be
            mapped to H36M-17, a cache folder that cannot be created.
    """
    from wsgcn_cli.represent import fill_gaps, to_h36m17
    from wsgcn_cli.stages import Representation

    clip = Path(clip)
    if not clip.exists():
        raise WsgcnError(f"clip {clip} does not exist")
    rep = Representation.from_spec(lift_spec.get("representation", {}))
    detector_table = dict(lift_spec.get("detector", {}))
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
            raw = detect_clip(clip, detector_table, progress)
            if writable_folder(folder):
                write_cache(cache, raw, clip, detector_table)
            else:
                cache = None
    h36m = to_h36m17(raw, adjust=rep.adjust)
    filled, _ = fill_gaps(h36m, rep.max_gap_frames, min_score=rep.min_score)
    valid = np.isfinite(filled.xy).all(axis=(1, 2))
    return Clip2D(clip, filled, valid, raw.layout, cache, from_cache)
