"""H3WB (Human3.6M 3D WholeBody) fixture reader.

H3WB (Zhu et al., ICCV 2023) annotates Human3.6M frames with the 133 COCO-WholeBody
keypoints in 3D (layout ``coco_wholebody133``). Its full training files are not
reachable here; ``shared/data/h3wb/h3wb_train_sub.npz`` is mmpose's test fixture
(``shared/data/SOURCES.md``), read by :func:`load`.

File layout (an npz of two pickled dicts: ``np.load(path, allow_pickle=True)[key].item()``;
loading pickles runs code from the file, so only open this trusted, checksummed fixture)::

    train_data[subject][action] = {
        "global_3d": (133, 3) float32, Human3.6M world frame, millimetres (z up),
        "frame_id": (1,) str,
        camera_id: {"camera_3d": (1, 133, 3) float32 camera frame mm,
                    "pose_2d": (1, 133, 2) float32 pixels, "sample_id": (1,) int}}
    metadata[subject][camera_id] = {
        "K": (1, 3, 3) intrinsics divided by the image width (1000 px),
        "R": (1, 3, 3) world -> camera, "T": (1, 1, 3) metres,
        "Distortion": (1, 5)}

Checked on the file (``tests/test_wholebody_data.py``): ``camera_3d = R @ global_3d +
1000 T`` (to 0.0005 mm); ``pose_2d`` is the PINHOLE projection of ``camera_3d`` through
``K`` times 1000 (to 0.02 px; the listed distortion is not applied, which moves points by
up to 5 px); ``R`` and the camera centre equal Human3.6M's camera 60457274 of S1.
**The fixture holds one pose**: its four entries (S1, S5, S6, S7 "Directions") are the
same arrays (sample 78736, S1's frame and extrinsics) under four subject names.
``h3wb_train_bbox_subset.npz`` (the other fixture) holds placeholder values (uniform in
[0, 1], not a pose) and is not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsgcn_cli.errors import WsgcnError

FILE = "h3wb_train_sub.npz"
#: H3WB's image width, by which its K is divided (Human3.6M's cameras are 1000 px wide).
IMAGE_WIDTH = 1000.0
#: Image height per Human3.6M camera (``h36m_cameras.json``: 1002 for these two, else 1000).
IMAGE_HEIGHT = {"54138969": 1002.0, "60457274": 1002.0}


def default_path() -> Path:
    """``../shared/data/h3wb/h3wb_train_sub.npz`` beside the repository checkout."""
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "h3wb" / FILE


@dataclass
class H3WBSamples:
    """H3WB samples (N entries, 133 COCO-WholeBody keypoints).

    Attributes:
        pose3d: (N, 133, 3) float64 camera frame (x right, y down, z forward), metres,
            absolute (not root-relative).
        kp2d: (N, 133, 2) float64 pixels (origin top-left), as stored in the file.
        world: (N, 133, 3) float64 Human3.6M world frame (z up), metres.
        K: (N, 3, 3) float64 pixel intrinsics (the file's K times the image width);
            ``f`` and ``c`` (N, 2) px are its focal lengths and principal point, for
            :func:`wsgcn_cli.camera.project` (no distortion: see the module docstring).
        R: (N, 3, 3) world -> camera; T: (N, 3) metres, ``pose3d = world @ R.T + T``.
        image_size: (N, 2) width, height px.
        subject, action, camera: (N,) names; frame: (N,) str; sample_id: (N,) int.
    """

    pose3d: np.ndarray
    kp2d: np.ndarray
    world: np.ndarray
    K: np.ndarray
    R: np.ndarray
    T: np.ndarray
    image_size: np.ndarray
    subject: tuple
    action: tuple
    camera: tuple
    frame: tuple
    sample_id: np.ndarray

    def __len__(self) -> int:
        return len(self.pose3d)

    @property
    def f(self) -> np.ndarray:
        return self.K[:, [0, 1], [0, 1]]

    @property
    def c(self) -> np.ndarray:
        return self.K[:, :2, 2]


def load(path: str | Path | None = None, unique: bool = False) -> H3WBSamples:
    """Read an H3WB npz of the fixture's layout (module docstring) into camera-frame
    metres, pixels and cameras. ``unique`` keeps one entry per distinct ``sample_id``
    (the fixture's four entries are one sample). Raises WsgcnError if the file is missing
    or not of that layout."""
    path = Path(path) if path else default_path()
    if not path.is_file():
        raise WsgcnError(f"H3WB file not found: {path}")
    try:
        with np.load(path, allow_pickle=True) as f:
            train, meta = f["train_data"].item(), f["metadata"].item()
    except (OSError, ValueError, KeyError) as e:
        raise WsgcnError(f"cannot read H3WB file {path}: {e}")
    rows = []
    try:
        for subject in sorted(train):
            for action in sorted(train[subject]):
                entry = train[subject][action]
                for cam in sorted(k for k in entry if isinstance(entry[k], dict)):
                    m = meta[subject][cam]
                    cam3d = np.asarray(entry[cam]["camera_3d"], np.float64).reshape(-1, 133, 3)
                    kp2d = np.asarray(entry[cam]["pose_2d"], np.float64).reshape(-1, 133, 2)
                    world = np.asarray(entry["global_3d"], np.float64).reshape(-1, 133, 3)
                    frames = np.atleast_1d(entry["frame_id"])
                    ids = np.atleast_1d(entry[cam]["sample_id"])
                    for i in range(len(cam3d)):
                        rows.append((cam3d[i] / 1000.0, kp2d[i], world[i] / 1000.0,
                                     np.asarray(m["K"], np.float64).reshape(3, 3) * np.array([[IMAGE_WIDTH], [IMAGE_WIDTH], [1.0]]),
                                     np.asarray(m["R"], np.float64).reshape(3, 3),
                                     np.asarray(m["T"], np.float64).reshape(3),
                                     subject, action, cam, str(frames[i]), int(ids[i])))
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise WsgcnError(f"{path} is not in H3WB's layout (train_data/metadata dicts): {e}")
    if not rows:
        raise WsgcnError(f"{path} holds no H3WB samples")
    if unique:
        seen, kept = set(), []
        for r in rows:
            if r[-1] not in seen:
                seen.add(r[-1])
                kept.append(r)
        rows = kept
    col = list(zip(*rows))
    n = len(rows)
    return H3WBSamples(
        pose3d=np.stack(col[0]), kp2d=np.stack(col[1]), world=np.stack(col[2]), K=np.stack(col[3]),
        R=np.stack(col[4]), T=np.stack(col[5]), image_size=np.array([[IMAGE_WIDTH, IMAGE_HEIGHT.get(c, 1000.0)] for c in col[8]]),
        subject=col[6], action=col[7], camera=col[8], frame=col[9], sample_id=np.array(col[10]),
    )
