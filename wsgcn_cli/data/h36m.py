"""Human3.6M: 3D ground truth, cameras, ground-truth 2D and Stacked-Hourglass detections.

Reads the files described in ``shared/data/SOURCES.md`` from a folder (an option
everywhere, default ``../shared/data/h36m`` beside the repository):

* ``h36m_3d_17j_world_mm.npz``: ``"S1/Walking 1"`` -> (T, 17, 3) world mm, 50 fps.
* ``h36m_cameras.json``: per subject, the four cameras (see :mod:`wsgcn_cli.camera`).
* ``h36m_2d_sh_16j_px.npz``: ``"S1/Walking 1/54138969"`` -> (T, 16, 2) pixels,
  Stacked-Hourglass (MPII-pretrained) detections in SH-16 order (H36M-17 without
  joint 9, Neck/Nose).

Each sample is one frame seen by one camera. Ground-truth 2D is the 3D projected with
the camera model (distortion included). Protocol: train S1 S5 S6 S7 S8, test S9 S11.
Our copy lacks the 3D of S5 "Discussion 2/3", S7 "Discussion", S7 "SittingDown 1" and
S9 "Discussion 1" (a standard test sequence): :func:`missing_3d` lists them and every
evaluation table says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsgcn_cli.camera import load_h36m_cameras
from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.pose2d.mapping import mapping_matrix

TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")
CAMERAS = ("54138969", "55011271", "58860488", "60457274")
FPS = 50.0

#: The 15 actions of the protocol; sub-takes ("Walking 1") belong to their action.
ACTIONS = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing",
    "Purchases", "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking",
    "WalkTogether",
)

FILE_3D = "h36m_3d_17j_world_mm.npz"
FILE_SH = "h36m_2d_sh_16j_px.npz"
FILE_CAMERAS = "h36m_cameras.json"
FILE_META = "h36m_meta.json"


def default_root() -> Path:
    """``../shared/data/h36m`` beside the repository checkout."""
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "h36m"


def action_of(sequence: str) -> str:
    """Protocol action of a sequence name: ``"Walking 1"`` -> ``"Walking"``."""
    return re.sub(r"\s+\d+$", "", sequence)


def sh16_to_h36m17(xy16):
    """SH-16 keypoints (..., 16, 2) -> H36M-17 (..., 17, 2) float32.

    Stacked Hourglass has no Neck/Nose (H36M joint 9) and its "Spine" and head top are
    not H36M's: they are re-made from the trunk with the mapping that ``lift`` applies
    to SH-16 keypoints (see :data:`wsgcn_cli.pose2d.mapping.SH16_ADJUST`).
    """
    w = mapping_matrix("sh16").astype(np.float32)
    return np.einsum("kj,...jc->...kc", w, np.asarray(xy16, dtype=np.float32))


@dataclass
class H36MSamples:
    """Frames x cameras of Human3.6M, flattened to N samples.

    Attributes:
        pose3d: (N, 17, 3) float32 camera coordinates, millimetres (not root-relative).
        kp2d_gt: (N, 17, 2) float32 projected ground truth, pixels.
        kp2d_sh: (N, 17, 2) float32 Stacked-Hourglass detections with Neck/Nose made
            (see :func:`sh16_to_h36m17`), pixels; NaN where no detection file exists.
        image_size: (N, 2) int32 width, height in pixels.
        subject, action, camera: (N,) int16 indices into ``subjects``, ``ACTIONS``,
            ``CAMERAS``.
        sequence: (N,) int32 index into ``sequences`` (one per subject/take/camera);
        frame: (N,) int32 frame number (50 fps) within the take.
        subjects, sequences: name lists the indices refer to.
    """

    pose3d: np.ndarray
    kp2d_gt: np.ndarray
    kp2d_sh: np.ndarray
    image_size: np.ndarray
    subject: np.ndarray
    action: np.ndarray
    camera: np.ndarray
    sequence: np.ndarray
    frame: np.ndarray
    subjects: tuple[str, ...]
    sequences: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.pose3d)

    def kp2d(self, source: str) -> np.ndarray:
        """2D keypoints by source name: ``"gt"`` or ``"sh"``."""
        if source == "gt":
            return self.kp2d_gt
        if source == "sh":
            return self.kp2d_sh
        raise WsgcnError(f"unknown 2D source {source!r}; use 'gt' or 'sh'")


def _require(root: Path, name: str) -> Path:
    path = root / name
    if not path.is_file():
        raise WsgcnError(f"Human3.6M file not found: {path} (set --data to the folder holding {name})")
    return path


def load_cameras(root: str | Path | None = None) -> dict:
    """The calibrated cameras of ``h36m_cameras.json``: {(subject, camera id): Camera}.
    Raises WsgcnError if the file is missing."""
    return load_h36m_cameras(_require(Path(root) if root else default_root(), FILE_CAMERAS))


def intrinsics(data: H36MSamples, root: str | Path | None = None) -> dict[str, np.ndarray]:
    """Per-sample intrinsics of ``data``'s samples (from ``h36m_cameras.json``): float32
    ``f`` (N, 2) focal lengths and ``c`` (N, 2) principal point in pixels, ``k`` (N, 3)
    radial and ``p`` (N, 2) tangential distortion. Raises WsgcnError if the file is missing."""
    cams = load_cameras(root)
    s, c = data.subject.astype(np.int64), data.camera.astype(np.int64)
    return {name: np.stack([[getattr(cams[(sub, cam)], name) for cam in CAMERAS] for sub in data.subjects])[s, c]
            .astype(np.float32) for name in ("f", "c", "k", "p")}


def missing_3d(root: str | Path | None = None) -> list[str]:
    """Sequences of the standard protocol whose 3D is absent from our copy."""
    root = Path(root) if root else default_root()
    meta = json.loads(_require(root, FILE_META).read_text())
    return list(meta.get("missing_3d_sequences", []))


def load(
    subjects=TRAIN_SUBJECTS,
    root: str | Path | None = None,
    stride: int = 1,
    cameras=CAMERAS,
    with_sh: bool = True,
) -> H36MSamples:
    """Load the samples of ``subjects`` (every ``stride``-th frame, all ``cameras``).

    Raises WsgcnError if a file is missing or a subject is unknown.
    """
    root = Path(root) if root else default_root()
    if stride < 1:
        raise WsgcnError(f"stride must be >= 1, got {stride}")
    cams = load_cameras(root)
    data3d = np.load(_require(root, FILE_3D))
    sh = np.load(_require(root, FILE_SH)) if with_sh else None
    sh_keys = set(sh.files) if sh is not None else set()
    known = {k.split("/")[0] for k in data3d.files}
    for s in subjects:
        if s not in known:
            raise WsgcnError(f"unknown Human3.6M subject {s!r}; known: {sorted(known)}")

    parts = {k: [] for k in ("pose3d", "gt", "sh", "size", "subject", "action", "camera", "sequence", "frame")}
    sequences = []
    for key in sorted(data3d.files):
        subject, take = key.split("/")
        if subject not in subjects:
            continue
        world = data3d[key][::stride].astype(np.float64)
        frames = np.arange(0, len(data3d[key]), stride, dtype=np.int32)
        act = ACTIONS.index(action_of(take))
        for cam_id in cameras:
            cam = cams[(subject, cam_id)]
            xc = cam.world_to_camera(world)
            gt2d = cam.project(xc)
            sh_key = f"{key}/{cam_id}"
            if sh_key in sh_keys:
                det = sh[sh_key][::stride]
                if len(det) != len(world):
                    raise WsgcnError(f"{sh_key}: {len(det)} detections for {len(world)} 3D frames")
                det = sh16_to_h36m17(det)
            else:
                det = np.full(gt2d.shape, np.nan, dtype=np.float32)
            n = len(world)
            parts["pose3d"].append(xc.astype(np.float32))
            parts["gt"].append(gt2d.astype(np.float32))
            parts["sh"].append(det)
            parts["size"].append(np.tile(np.int32([cam.width, cam.height]), (n, 1)))
            parts["subject"].append(np.full(n, subjects.index(subject), np.int16))
            parts["action"].append(np.full(n, act, np.int16))
            parts["camera"].append(np.full(n, CAMERAS.index(cam_id), np.int16))
            parts["sequence"].append(np.full(n, len(sequences), np.int32))
            parts["frame"].append(frames)
            sequences.append(sh_key)
    if not sequences:
        raise WsgcnError(f"no Human3.6M 3D sequences for subjects {list(subjects)} in {root}")
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    return H36MSamples(
        pose3d=cat["pose3d"], kp2d_gt=cat["gt"], kp2d_sh=cat["sh"], image_size=cat["size"],
        subject=cat["subject"], action=cat["action"], camera=cat["camera"],
        sequence=cat["sequence"], frame=cat["frame"], subjects=tuple(subjects),
        sequences=tuple(sequences),
    )
