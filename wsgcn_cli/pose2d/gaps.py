"""Gap filling, the 2D stage's second step: short runs of missing keypoints interpolated over time.

:func:`fill_gaps` works on keypoints of any layout (in the lift pipeline: the H36M-17
keypoints made by :func:`wsgcn_cli.pose2d.mapping.to_h36m17`). Coordinates stay in
pixels of the image frame (origin top-left, x right, y down).
"""

from __future__ import annotations

import numpy as np

from wsgcn_cli.detect.base import Keypoints2D

#: Keypoints with a score below this are treated as missing by :func:`fill_gaps`.
DEFAULT_MIN_SCORE = 0.1

#: Score given to interpolated keypoints: low, but above DEFAULT_MIN_SCORE so that a
#: second pass keeps them.
INTERPOLATED_SCORE = 0.2


def fill_gaps(kp: Keypoints2D, max_gap_frames: int, *, min_score: float = DEFAULT_MIN_SCORE,
              fill_score: float = INTERPOLATED_SCORE) -> tuple[Keypoints2D, np.ndarray]:
    """Interpolate short runs of missing keypoints, per joint, linearly in time.

    A keypoint is missing where its xy is NaN or its score is below ``min_score``.
    A run of at most ``max_gap_frames`` missing frames with a valid frame on both sides
    is filled by linear interpolation between those two frames (weighted by the frame
    times when they increase strictly, else by frame index) and gets score
    ``fill_score``. Longer runs and runs at the start or end are left missing: xy NaN,
    score 0 (a low-score keypoint that is not filled is cleared too).

    Args:
        kp: keypoints, any layout.
        max_gap_frames: longest run of missing frames to fill (0 fills nothing).
        min_score: score threshold below which a keypoint counts as missing.
        fill_score: score of interpolated keypoints.

    Returns:
        (filled keypoints, missing) where ``missing`` is a (T,) bool array marking the
        frames in which at least one joint is still missing.
    """
    if max_gap_frames < 0:
        raise ValueError("max_gap_frames must be >= 0")
    xy, score = kp.xy.astype(np.float64), kp.score.copy()
    T = kp.num_frames
    valid = kp.detected(min_score)                                         # (T, J)
    t_idx = np.arange(T)[:, None]
    prev = np.maximum.accumulate(np.where(valid, t_idx, -1), axis=0)       # last valid <= t
    nxt = np.minimum.accumulate(np.where(valid, t_idx, T)[::-1], axis=0)[::-1]
    gap = nxt - prev - 1
    fill = ~valid & (prev >= 0) & (nxt < T) & (gap <= max_gap_frames)
    if fill.any():
        times = kp.times if T > 1 and np.all(np.diff(kp.times) > 0) else np.arange(T, dtype=float)
        p, n = np.clip(prev, 0, T - 1), np.clip(nxt, 0, T - 1)
        span = np.where(fill, times[n] - times[p], 1.0)
        w = np.where(fill, (times[:, None] - times[p]) / span, 0.0)[..., None]
        cols = np.arange(xy.shape[1])[None, :]
        interp = xy[p, cols] * (1.0 - w) + xy[n, cols] * w
        xy[fill] = interp[fill]
        score[fill] = fill_score
    still_missing = ~valid & ~fill
    xy[still_missing] = np.nan
    score[still_missing] = 0.0
    out = Keypoints2D(kp.layout, xy.astype(np.float32), score, kp.times.copy(), kp.width,
                      kp.height, kp.fps)
    return out, still_missing.any(axis=1)
