"""The pose files ``lift`` writes and ``render`` reads: ``.wsgcn.npz``, ``.json``, ``.csv``;
and the exports of the world outputs: ``.bvh``, ``.trc``, ``.mot``.

One schema, three encodings. Per frame t of T and joint j of the 17 H36M-17 joints:

============== =========== =====================================================
key            shape       meaning
============== =========== =====================================================
keypoints_2d   (T, 17, 2)  float32 pixels, image frame (origin top-left, x right,
                           y down), after the 2D stage; NaN where missing
scores         (T, 17)     float32 confidence in [0, 1]
keypoints_3d   (T, 17, 3)  float32 metres, camera coordinates (x right, y down,
                           z forward), root-relative (pelvis = joint 0 at 0);
                           NaN for frames without a pose
times          (T,)        float64 seconds since the first frame (real times)
missing        (T,)        bool, frames with no usable pose (no detection or a
                           gap longer than the pipeline's max_gap_frames)
fps            ()          float, frames per second of the input (0 for an image)
image_size     (2,)        int32 width, height of the (upright) input in pixels
joint_names    (17,)       str; parents (17,) int, -1 for the root
layout         ()          "h36m17"
detector_keypoints (T,J,2) / detector_scores (T,J) / detector_layout:
                           the detector's raw output (e.g. BlazePose-33), pixels
pipeline, weights_sha256, source, wsgcn_version: provenance strings
============== =========== =====================================================

World outputs (present when the pipeline's ``[world]`` stage ran; absent otherwise):

================== =========== =================================================
key                shape       meaning
================== =========== =================================================
root_camera_m      (T, 3)      float32 metres, the pelvis in camera coordinates
                               (x right, y down, z forward); NaN where missing
keypoints_3d_world (T, 17, 3)  float32 metres, world frame: y up, floor at y = 0,
                               origin on the floor under the first frame's pelvis,
                               x towards the camera's right, z towards the camera
camera_to_world    (4, 4)      float64 rigid transform, world = R @ camera + t
foot_contact       (T, 2)      bool, left / right foot on the floor
focal_px           ()          float, the focal length used, pixels
================== =========== =================================================

JSON: ``{"meta": {...scalars and names...}, "frames": [{"index", "time_s",
"missing", "keypoints_2d", "scores", "keypoints_3d"}, ...]}`` with NaN written as
``null``. CSV: one row per frame and joint (``frame, time_s, joint, name, x_px, y_px,
score, x_m, y_m, z_m``), empty cells for missing values; with the world outputs, then
``xw_m, yw_m, zw_m`` (the joint in the world frame) and one ``<angle>_deg`` column per
joint angle of :mod:`wsgcn_cli.angles` (a per-frame value, repeated on the frame's 17 rows).

Exports that need the world outputs (:mod:`wsgcn_cli.io.bvh`, :mod:`wsgcn_cli.io.opensim`):
``bvh`` (skeleton animation, metres, Y up), ``trc`` (OpenSim markers, millimetres, Y up)
and ``mot`` (OpenSim storage of the joint angles, degrees).

All writers go through :mod:`wsgcn_cli.io.atomic` (temporary name, then rename).

Whole body (``lift --pipeline wholebody``, ``layout`` ``"coco_wholebody133"``): the same
keys with 133 keypoints in COCO-WholeBody order (``shared/CONVENTIONS.md``) instead of 17
-- ``keypoints_2d`` (T, 133, 2), ``scores`` (T, 133), ``keypoints_3d`` (T, 133, 3)
root-relative with the pelvis, the mean of the hips 11 and 12, at 0 (H3WB's root), and
no keypoint at 0 -- plus ``edges`` (E, 2) int, the drawn bones; ``parents`` is
:data:`wsgcn_cli.skeletons.WHOLEBODY133_PARENTS`, a kinematic tree rooted at the nose
(not the 3D root). Parts not seen in 2D (NaN, score 0 after the 2D stage, typically a
face or hand the detector did not find) are **NaN in 3D** too: 3D exists exactly where
2D does (see :class:`wsgcn_cli.lifter.WholeBodyLifter`). ``missing`` marks frames
without the body and feet (0-22). No world outputs (the world stage is H36M-17 only), so
no BVH / TRC / MOT; JSON and CSV as above, 133 rows per frame in the CSV.

Several people (``lift --people all|N``, :class:`PeoplePoseFile`): the same keys with a
person axis first -- ``keypoints_2d`` (P, T, 17, 2), ``scores`` (P, T, 17),
``keypoints_3d`` (P, T, 17, 3), ``missing`` (P, T) (True outside a person's track too),
``detector_keypoints`` (P, T, J, 2), ``detector_scores`` (P, T, J), and ``track_id``
(P,) int32, the tracker's IDs (:mod:`wsgcn_cli.tracking`); ``times``, ``fps``,
``image_size`` and the names stay as above. With the world outputs: ``root_camera_m``
(P, T, 3), ``keypoints_3d_world`` (P, T, 17, 3), ``camera_to_world`` (P, 4, 4),
``foot_contact`` (P, T, 2): each person has their own world frame (floor and origin under
their first pelvis; the floor is solved per person). The person axis is there even when
one person was found; a file without ``track_id`` is a single-person file. JSON:
``meta`` gains ``people`` (P) and ``track_ids``; each frame holds ``people``: a list of
``{"track_id", "missing", "keypoints_2d", ...}`` for everyone whose track covers the frame.
CSV: a ``person`` column (the track ID) after ``time_s``, rows only for frames a person's
track covers. BVH / TRC / MOT hold one skeleton: one file per person,
``<stem>.wsgcn.p<ID>.<fmt>`` (:func:`person_path`). :func:`read` refuses a multi-person
file (one line); :func:`read_people` reads it, :func:`read_any` either kind.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.io.atomic import atomic_open
from wsgcn_cli.skeletons import H36M17, WHOLEBODY133_PARENTS, get_layout

FORMATS = ("npz", "json", "csv", "bvh", "trc", "mot")
#: Formats written from the world outputs only.
WORLD_FORMATS = ("bvh", "trc", "mot")
#: The optional world arrays: name, shape ("T" = frames), dtype.
WORLD_KEYS = (("root_camera_m", ("T", 3), np.float32), ("keypoints_3d_world", ("T", 17, 3), np.float32),
              ("camera_to_world", (4, 4), np.float64), ("foot_contact", ("T", 2), bool))


@dataclass
class PoseFile:
    """The content of a pose file (see the module docstring for units and frames)."""

    keypoints_2d: np.ndarray
    scores: np.ndarray
    keypoints_3d: np.ndarray
    times: np.ndarray
    fps: float
    image_size: tuple[int, int]
    missing: np.ndarray | None = None
    detector_keypoints: np.ndarray | None = None
    detector_scores: np.ndarray | None = None
    detector_layout: str = ""
    pipeline: str = ""
    weights_sha256: str = ""
    source: str = ""
    extra: dict = field(default_factory=dict)
    root_camera_m: np.ndarray | None = None
    keypoints_3d_world: np.ndarray | None = None
    camera_to_world: np.ndarray | None = None
    foot_contact: np.ndarray | None = None
    focal_px: float | None = None
    layout: str = "h36m17"

    def __post_init__(self):
        t = len(self.times)
        j = get_layout(self.layout).num_joints
        self.keypoints_2d = np.asarray(self.keypoints_2d, np.float32)
        self.scores = np.asarray(self.scores, np.float32)
        self.keypoints_3d = np.asarray(self.keypoints_3d, np.float32)
        self.times = np.asarray(self.times, np.float64)
        if self.missing is None:
            self.missing = ~np.isfinite(self.keypoints_3d).all(axis=(1, 2))
        self.missing = np.asarray(self.missing, bool)
        expect = {"keypoints_2d": (t, j, 2), "scores": (t, j), "keypoints_3d": (t, j, 3), "missing": (t,)}
        given = [name for name, _, _ in WORLD_KEYS if getattr(self, name) is not None]
        if given and self.layout != "h36m17":
            raise WsgcnError(f"pose data of layout {self.layout} cannot hold world outputs (H36M-17 only)")
        if given and len(given) < len(WORLD_KEYS):
            raise WsgcnError(f"pose data has {', '.join(given)} but not every world array "
                             f"({', '.join(n for n, _, _ in WORLD_KEYS)})")
        for name, shape, dtype in WORLD_KEYS:
            if getattr(self, name) is not None:
                setattr(self, name, np.asarray(getattr(self, name), dtype))
                expect[name] = tuple(t if d == "T" else d for d in shape)
        for name, shape in expect.items():
            if getattr(self, name).shape != shape:
                raise WsgcnError(f"pose data {name} has shape {getattr(self, name).shape}, expected {shape}")

    @property
    def num_frames(self) -> int:
        return len(self.times)

    @property
    def has_world(self) -> bool:
        """Whether the world outputs (``keypoints_3d_world`` and the rest) are present."""
        return self.keypoints_3d_world is not None


@dataclass
class PeoplePoseFile:
    """Several people's pose data over one clip (see the module docstring).

    Attributes:
        people: one :class:`PoseFile` per person, each over all T frames of the clip
            (NaN / ``missing`` outside their track), same ``times``, ``fps``, ``image_size``.
        track_ids: (P,) the tracker's IDs, one per person, distinct.

    Raises:
        WsgcnError: (on construction) no person, a different number of IDs, repeated IDs,
            people with different frame times or image sizes, some with the world
            outputs and some without, or people of a layout other than H36M-17.
    """

    people: list
    track_ids: np.ndarray

    def __post_init__(self):
        self.track_ids = np.asarray(self.track_ids, np.int32).reshape(-1)
        if not self.people:
            raise WsgcnError("pose data with a person axis needs at least one person")
        if len(self.track_ids) != len(self.people) or len(set(self.track_ids.tolist())) != len(self.people):
            raise WsgcnError(f"{len(self.people)} people need as many distinct track IDs, got "
                             f"{self.track_ids.tolist()}")
        first = self.people[0]
        for q in self.people[1:]:
            if q.times.shape != first.times.shape or not np.array_equal(q.times, first.times) \
                    or tuple(q.image_size) != tuple(first.image_size):
                raise WsgcnError("every person of a pose file must cover the same frames and image size")
        if len({q.has_world for q in self.people}) > 1:
            raise WsgcnError("either every person of a pose file has the world outputs or none has")
        if any(q.layout != "h36m17" for q in self.people):
            raise WsgcnError("pose data of several people holds H36M-17 keypoints only")

    @property
    def num_people(self) -> int:
        return len(self.people)

    @property
    def num_frames(self) -> int:
        return self.people[0].num_frames

    @property
    def has_world(self) -> bool:
        return self.people[0].has_world

    def stacked(self, name: str) -> np.ndarray | None:
        """Attribute ``name`` of every person stacked on a first, person axis (None if absent)."""
        values = [getattr(q, name) for q in self.people]
        return None if values[0] is None else np.stack([np.asarray(v) for v in values])


def pad_to_clip(p: PoseFile, first: int, times: np.ndarray) -> PoseFile:
    """``p`` (frames ``first ... first + p.num_frames - 1`` of a clip) spread over the whole
    clip of ``times`` ((T,) s): NaN coordinates, zero scores, ``missing`` and no foot
    contact in the frames outside. Raises WsgcnError if it does not fit in the clip."""
    times = np.asarray(times, np.float64)
    t, n = len(times), p.num_frames
    if first < 0 or first + n > t:
        raise WsgcnError(f"frames {first}..{first + n - 1} do not fit in a clip of {t} frames")
    span = slice(first, first + n)

    def spread(a, fill, dtype):
        if a is None:
            return None
        a = np.asarray(a)
        out = np.full((t,) + a.shape[1:], fill, dtype)
        out[span] = a
        return out

    nan = np.nan
    return PoseFile(
        keypoints_2d=spread(p.keypoints_2d, nan, np.float32), scores=spread(p.scores, 0, np.float32),
        keypoints_3d=spread(p.keypoints_3d, nan, np.float32), times=times, fps=p.fps, image_size=p.image_size,
        missing=spread(p.missing, True, bool),
        detector_keypoints=spread(p.detector_keypoints, nan, np.float32),
        detector_scores=spread(p.detector_scores, 0, np.float32), detector_layout=p.detector_layout,
        pipeline=p.pipeline, weights_sha256=p.weights_sha256, source=p.source, extra=dict(p.extra),
        root_camera_m=spread(p.root_camera_m, nan, np.float32),
        keypoints_3d_world=spread(p.keypoints_3d_world, nan, np.float32), camera_to_world=p.camera_to_world,
        foot_contact=spread(p.foot_contact, False, bool), focal_px=p.focal_px, layout=p.layout)


def person_path(path: Path, track_id: int) -> Path:
    """``video.wsgcn.bvh`` -> ``video.wsgcn.p<ID>.bvh``: a single-skeleton export of one
    person of a multi-person lift."""
    path = Path(path)
    return path.with_name(f"{path.stem}.p{int(track_id)}{path.suffix}")


def default_path(stem_path: Path, fmt: str) -> Path:
    """``video.mp4`` -> ``video.wsgcn.<fmt>`` in the same folder."""
    return stem_path.with_name(f"{stem_path.stem}.wsgcn.{fmt}")


def _names(p: PoseFile) -> dict:
    """``joint_names``, ``parents`` (and for a layout without a tree of its own,
    COCO-WholeBody-133, ``edges``) of ``p``'s layout."""
    sk = get_layout(p.layout)
    if sk.parents is not None:
        return {"joint_names": list(sk.joint_names), "parents": list(sk.parents)}
    return {"joint_names": list(sk.joint_names), "parents": list(WHOLEBODY133_PARENTS),
            "edges": [list(e) for e in sk.edges]}


def _meta(p: PoseFile) -> dict:
    from wsgcn_cli import __version__

    units = {"keypoints_2d": "pixels, origin top-left, x right, y down",
             "keypoints_3d": "metres, camera coordinates (x right, y down, z forward), root-relative",
             "times": "seconds since the first frame"}
    if p.layout != "h36m17":
        units["keypoints_3d"] += (" (root: the pelvis, mean of keypoints 11 and 12); null where the keypoint "
                                  "was not seen in 2D")
    return {
        "layout": p.layout, **_names(p),
        "fps": p.fps, "image_size": [int(p.image_size[0]), int(p.image_size[1])],
        "num_frames": p.num_frames, "pipeline": p.pipeline, "weights_sha256": p.weights_sha256,
        "source": p.source, "detector_layout": p.detector_layout, "wsgcn_version": __version__,
        "units": units,
        **({"focal_px": float(p.focal_px)} if p.focal_px is not None else {}),
        **({"camera_to_world": np.asarray(p.camera_to_world).round(9).tolist(),
            "world_frame": "metres, y up, floor at y = 0, origin under the first frame's pelvis, "
                           "x towards the camera's right, z towards the camera"} if p.has_world else {}),
        **p.extra,
    }


def write(p: PoseFile, path: str | Path, fmt: str | None = None) -> Path:
    """Write ``p`` to ``path`` in ``fmt`` (one of :data:`FORMATS`; default: from the
    suffix), atomically.

    ``p`` may be a :class:`PeoplePoseFile`: npz / json / csv then carry the person axis
    (module docstring) and bvh / trc / mot are written once per person, to
    :func:`person_path`; the first of those paths is returned (see :func:`write_people`).

    ``bvh``, ``trc`` and ``mot`` are made from ``keypoints_3d_world``; a single image
    (``fps`` 0) is written at 1 frame per second.

    Raises:
        WsgcnError: unknown format; a world format for a pose file without the world
            outputs; an unwritable destination.
    """
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".")
    if isinstance(p, PeoplePoseFile):
        return write_people(p, path, fmt)[0]
    if fmt in WORLD_FORMATS and not p.has_world:
        raise WsgcnError(f"--format {fmt} needs the world outputs (keypoints_3d_world), which this pose "
                         f"data lacks: run a pipeline with the world stage")
    fps = p.fps if p.fps > 0 else 1.0
    if fmt == "bvh":
        from wsgcn_cli.io.bvh import write_bvh

        write_bvh(path, p.keypoints_3d_world, fps)
    elif fmt == "trc":
        from wsgcn_cli.io.opensim import write_trc

        write_trc(path, p.keypoints_3d_world, p.times, fps)
    elif fmt == "mot":
        from wsgcn_cli.io.opensim import write_mot

        write_mot(path, p.keypoints_3d_world, p.times)
    else:
        _writer(fmt, {"npz": _write_npz, "json": _write_json, "csv": _write_csv})(p, path)
    return path


def _writer(fmt: str, writers: dict):
    """The writer of ``fmt`` among ``writers``; WsgcnError for an unknown format."""
    if fmt not in writers:
        raise WsgcnError(f"unknown pose file format {fmt!r}; use one of {', '.join(FORMATS)}")
    return writers[fmt]


def write_people(p: PeoplePoseFile, path: str | Path, fmt: str | None = None) -> list[Path]:
    """Write several people's pose data: ``[path]`` for npz / json / csv (one file with a
    person axis or column), or one file per person (:func:`person_path`) for bvh / trc /
    mot. Atomic per file. Raises WsgcnError like :func:`write`."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".")
    if fmt in WORLD_FORMATS:
        return [write(q, person_path(path, i), fmt) for q, i in zip(p.people, p.track_ids)]
    _write_people(p, path, fmt)
    return [path]


def _write_people(p: PeoplePoseFile, path: Path, fmt: str) -> Path:
    _writer(fmt, {"npz": _write_people_npz, "json": _write_people_json, "csv": _write_people_csv})(p, path)
    return path


def _people_meta(p: PeoplePoseFile) -> dict:
    meta = _meta(p.people[0])
    meta.pop("camera_to_world", None)
    meta.update(people=p.num_people, track_ids=p.track_ids.tolist())
    if p.has_world:
        meta["camera_to_world"] = [np.asarray(q.camera_to_world).round(9).tolist() for q in p.people]
        meta["world_frame"] = "per person: " + meta["world_frame"]
    return meta


def _write_people_npz(p: PeoplePoseFile, path: Path):
    q0 = p.people[0]
    meta = _meta(q0)
    arrays = {
        "keypoints_2d": p.stacked("keypoints_2d"), "scores": p.stacked("scores"),
        "keypoints_3d": p.stacked("keypoints_3d"), "missing": p.stacked("missing"), "track_id": p.track_ids,
        "times": q0.times, "fps": np.float64(q0.fps), "image_size": np.asarray(q0.image_size, np.int32),
        "joint_names": np.array(H36M17.joint_names), "parents": np.array(H36M17.parents, np.int32),
        "layout": np.array("h36m17"), "pipeline": np.array(q0.pipeline),
        "weights_sha256": np.array(q0.weights_sha256), "source": np.array(q0.source),
        "wsgcn_version": np.array(meta["wsgcn_version"]), "detector_layout": np.array(q0.detector_layout),
    }
    if q0.detector_keypoints is not None:
        arrays["detector_keypoints"] = p.stacked("detector_keypoints").astype(np.float32)
        arrays["detector_scores"] = p.stacked("detector_scores").astype(np.float32)
    for name, _, _ in WORLD_KEYS:
        if getattr(q0, name) is not None:
            arrays[name] = p.stacked(name)
    if q0.focal_px is not None:
        arrays["focal_px"] = np.float64(q0.focal_px)
    with atomic_open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def _write_people_json(p: PeoplePoseFile, path: Path):
    q0 = p.people[0]
    frames = []
    for i in range(p.num_frames):
        people = []
        for q, tid in zip(p.people, p.track_ids):
            if not np.isfinite(q.keypoints_2d[i]).any() and q.missing[i]:
                continue  # outside this person's track
            people.append({
                "track_id": int(tid), "missing": bool(q.missing[i]),
                "keypoints_2d": _nan_to_none(q.keypoints_2d[i]), "scores": _nan_to_none(q.scores[i]),
                "keypoints_3d": _nan_to_none(q.keypoints_3d[i]),
                **({"root_camera_m": _nan_to_none(q.root_camera_m[i]),
                    "keypoints_3d_world": _nan_to_none(q.keypoints_3d_world[i]),
                    "foot_contact": [bool(v) for v in q.foot_contact[i]]} if q.has_world else {})})
        frames.append({"index": i, "time_s": float(q0.times[i]), "people": people})
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump({"meta": _people_meta(p), "frames": frames}, f)


def _write_people_csv(p: PeoplePoseFile, path: Path):
    header = ["frame", "time_s", "person", "joint", "name", "x_px", "y_px", "score", "x_m", "y_m", "z_m"]
    if p.has_world:
        from wsgcn_cli.angles import joint_angles

        tables = []
        for q in p.people:
            angles = joint_angles(q.keypoints_3d_world)
            tables.append(np.stack(list(angles.values()), axis=1))
        header += ["xw_m", "yw_m", "zw_m"] + [f"{k}_deg" for k in angles]
    with atomic_open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(p.num_frames):
            t = f"{p.people[0].times[i]:.6f}"
            for k, (q, tid) in enumerate(zip(p.people, p.track_ids)):
                if not np.isfinite(q.keypoints_2d[i]).any() and q.missing[i]:
                    continue  # outside this person's track
                frame_angles = [_cell(v) for v in tables[k][i]] if p.has_world else []
                for j, name in enumerate(H36M17.joint_names):
                    x, y = q.keypoints_2d[i, j]
                    X, Y, Z = q.keypoints_3d[i, j]
                    row = [i, t, int(tid), j, name, _cell(x), _cell(y), _cell(q.scores[i, j]), _cell(X), _cell(Y),
                           _cell(Z)]
                    if p.has_world:
                        row += [_cell(v) for v in q.keypoints_3d_world[i, j]] + frame_angles
                    w.writerow(row)


def _write_npz(p: PoseFile, path: Path):
    meta = _meta(p)
    arrays = {
        "keypoints_2d": p.keypoints_2d, "scores": p.scores, "keypoints_3d": p.keypoints_3d,
        "times": p.times, "missing": p.missing, "fps": np.float64(p.fps),
        "image_size": np.asarray(p.image_size, np.int32),
        "joint_names": np.array(meta["joint_names"]), "parents": np.array(meta["parents"], np.int32),
        **({"edges": np.array(meta["edges"], np.int32)} if "edges" in meta else {}),
        "layout": np.array(p.layout), "pipeline": np.array(p.pipeline),
        "weights_sha256": np.array(p.weights_sha256), "source": np.array(p.source),
        "wsgcn_version": np.array(meta["wsgcn_version"]), "detector_layout": np.array(p.detector_layout),
    }
    if p.detector_keypoints is not None:
        arrays["detector_keypoints"] = np.asarray(p.detector_keypoints, np.float32)
        arrays["detector_scores"] = np.asarray(p.detector_scores, np.float32)
    for name, _, _ in WORLD_KEYS:
        if getattr(p, name) is not None:
            arrays[name] = getattr(p, name)
    if p.focal_px is not None:
        arrays["focal_px"] = np.float64(p.focal_px)
    with atomic_open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def _nan_to_none(a: np.ndarray):
    return [[None if not math.isfinite(v) else round(float(v), 6) for v in row] for row in a] if a.ndim == 2 else \
        [None if not math.isfinite(v) else round(float(v), 6) for v in a]


def _write_json(p: PoseFile, path: Path):
    frames = [
        {"index": i, "time_s": float(p.times[i]), "missing": bool(p.missing[i]),
         "keypoints_2d": _nan_to_none(p.keypoints_2d[i]), "scores": _nan_to_none(p.scores[i]),
         "keypoints_3d": _nan_to_none(p.keypoints_3d[i]),
         **({"root_camera_m": _nan_to_none(p.root_camera_m[i]),
             "keypoints_3d_world": _nan_to_none(p.keypoints_3d_world[i]),
             "foot_contact": [bool(v) for v in p.foot_contact[i]]} if p.has_world else {})}
        for i in range(p.num_frames)
    ]
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump({"meta": _meta(p), "frames": frames}, f)


def _cell(v) -> str:
    return "" if not math.isfinite(v) else f"{v:.6g}"


def _write_csv(p: PoseFile, path: Path):
    header = ["frame", "time_s", "joint", "name", "x_px", "y_px", "score", "x_m", "y_m", "z_m"]
    if p.has_world:
        from wsgcn_cli.angles import joint_angles

        angles = joint_angles(p.keypoints_3d_world)
        header += ["xw_m", "yw_m", "zw_m"] + [f"{k}_deg" for k in angles]
        angle_table = np.stack(list(angles.values()), axis=1)
    with atomic_open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(p.num_frames):
            t = f"{p.times[i]:.6f}"
            frame_angles = [_cell(v) for v in angle_table[i]] if p.has_world else []
            for j, name in enumerate(get_layout(p.layout).joint_names):
                x, y = p.keypoints_2d[i, j]
                X, Y, Z = p.keypoints_3d[i, j]
                row = [i, t, j, name, _cell(x), _cell(y), _cell(p.scores[i, j]), _cell(X), _cell(Y), _cell(Z)]
                if p.has_world:
                    row += [_cell(v) for v in p.keypoints_3d_world[i, j]] + frame_angles
                w.writerow(row)


def _open_npz(path: Path, what: str, extra_keys: tuple = ()):
    """(the loaded npz, its keys) of a pose file holding the base keys and ``extra_keys``;
    WsgcnError (naming ``what``) if it is missing, unreadable or lacks any of them."""
    if not path.is_file():
        raise WsgcnError(f"pose file not found: {path}")
    try:
        z = np.load(path, allow_pickle=False)
        keys = set(z.files)
    except (OSError, ValueError) as e:
        raise WsgcnError(f"{path} is not a pose file (.wsgcn.npz): {e}")
    need = {"keypoints_2d", "scores", "keypoints_3d", "times", "fps", "image_size", *extra_keys}
    if not need <= keys:
        raise WsgcnError(f"{path} is not a {what}: it lacks {', '.join(sorted(need - keys))}")
    return z, keys


def read(path: str | Path, layouts: tuple = ("h36m17",)) -> PoseFile:
    """Read a ``.wsgcn.npz`` pose file of one of ``layouts`` (e.g. ``("h36m17",
    "coco_wholebody133")``); raises WsgcnError if missing, not one of ours or of another layout."""
    path = Path(path)
    z, keys = _open_npz(path, "wsgcn pose file")
    layout = str(z["layout"]) if "layout" in keys else "h36m17"
    if layout not in layouts:
        raise WsgcnError(f"{path} holds layout {layout!r}, expected {' or '.join(map(repr, layouts))}")
    if "track_id" in keys:
        raise WsgcnError(f"{path} holds {len(z['track_id'])} tracked people (lift --people): read it with "
                         f"wsgcn_cli.io.posefile.read_people")
    return _pose_file(z, keys)


def _pose_file(z, keys, person: int | None = None) -> PoseFile:
    """One PoseFile from an npz's arrays; with ``person``, that row of the person axis."""
    per = {"keypoints_2d", "scores", "keypoints_3d", "missing", "detector_keypoints", "detector_scores",
           *(name for name, _, _ in WORLD_KEYS)}

    def opt(k):
        if k not in keys:
            return None
        return z[k][person] if person is not None and k in per else z[k]
    return PoseFile(
        keypoints_2d=opt("keypoints_2d"), scores=opt("scores"), keypoints_3d=opt("keypoints_3d"),
        times=z["times"], fps=float(z["fps"]), image_size=tuple(int(v) for v in z["image_size"]), missing=opt("missing"),
        detector_keypoints=opt("detector_keypoints"), detector_scores=opt("detector_scores"),
        detector_layout=str(z["detector_layout"]) if "detector_layout" in keys else "",
        pipeline=str(z["pipeline"]) if "pipeline" in keys else "",
        weights_sha256=str(z["weights_sha256"]) if "weights_sha256" in keys else "",
        source=str(z["source"]) if "source" in keys else "",
        focal_px=float(z["focal_px"]) if "focal_px" in keys else None,
        layout=str(z["layout"]) if "layout" in keys else "h36m17",
        **{name: opt(name) for name, _, _ in WORLD_KEYS},
    )


def read_people(path: str | Path) -> PeoplePoseFile:
    """Read a multi-person ``.wsgcn.npz`` (``lift --people all|N``); raises WsgcnError if
    missing, not one of ours, or a single-person file (use :func:`read`)."""
    path = Path(path)
    z, keys = _open_npz(path, "multi-person wsgcn pose file", ("track_id",))
    ids = z["track_id"]
    return PeoplePoseFile([_pose_file(z, keys, k) for k in range(len(ids))], ids)


def read_any(path: str | Path) -> "PoseFile | PeoplePoseFile":
    """Read any ``.wsgcn.npz`` pose file ``lift`` writes: one person (:func:`read`, H36M-17
    or COCO-WholeBody-133) or several (:func:`read_people`, a file with ``track_id``);
    WsgcnError as they raise."""
    path = Path(path)
    _, keys = _open_npz(path, "wsgcn pose file")
    return read_people(path) if "track_id" in keys else read(path, layouts=("h36m17", "coco_wholebody133"))
