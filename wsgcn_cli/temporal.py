"""Temporal refiner: a bidirectional LSTM over sequences of lifted 3D poses, run over windows.

The network (layers only) is :class:`wsgcn_cli.models.refiner_net.LSTMRefiner`, with
its test-time flip :class:`~wsgcn_cli.models.refiner_net.FlipTestRefiner`; this module
plans the windows, runs the network over them and over streams, and
:class:`TemporalRefiner` pairs it with its weights' metadata (read by
:func:`wsgcn_cli.weights.load_model`: nothing here reads files).

After the single-frame lifter, a small recurrent network looks at a window of frames
and corrects each frame's 3D pose from its neighbours (less jitter, fewer depth
flips). The design follows the temporal part of 3D Human Pose Machines (K. Wang,
L. Lin, C. Jiang, C. Qian, P. Wei, "3D Human Pose Machines with Self-supervised
Learning", TPAMI 2019; CVPR 2018 as "Recurrent 3D Pose Sequence Machines"): two
stacked bidirectional LSTM layers over the per-frame features.

Per frame the input is the lifter's output, root-relative camera coordinates in
metres (17, 3) (x right, y down, z forward; every joint minus joint 0, the pelvis),
concatenated with the lifter's normalised 2D input (17, 2) in the lifter's codec (see
:mod:`wsgcn_cli.codec`). The network predicts a residual added to the lifted pose; the
output is made root-relative again, so the root stays exactly at 0. The residual head
starts at zero: an untrained refiner is the identity.

Long sequences are refined in overlapping windows (:func:`refine_sequence`), so the
network never holds more than ``batch_windows`` windows at a time, and the window
outputs are blended with a linear cross-fade over the overlap (no seams).
:class:`StreamingRefiner` gives the same result frame by frame with at most
``window + step - 2`` frames of delay (``step = window - overlap``).

Windows (window W, overlap O, step S = W - O, 2·O <= W): regular windows on a fixed
grid [k·S, k·S + W) of the sequence's frame indices, a head and a tail window where a
run of valid frames does not start or end on the grid, linear cross-fades over each
overlap, and the weight-normalised sum of the windows covering a frame (details in
:func:`window_plan`).

Frames without a pose (any NaN in the 3D or the 2D) stay NaN and split the sequence:
each run of valid frames is refined on its own, so a NaN never reaches the network.
Because the grid is fixed, a gap changes only the frames within W + S of it; frames
further away are refined exactly as without the gap.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.models import registry
from wsgcn_cli.models.refiner_net import JOINTS, FlipTestRefiner
from wsgcn_cli.weights import load_model, resolve_device

__all__ = ["REFINERS", "StreamingRefiner", "TemporalRefiner", "build_refiner", "check_window",
           "refine_sequence", "runs_of", "valid_frames", "window_plan", "window_starts"]

#: Refiner names used in pipeline files and weights metadata (kind "refiner" in the registry).
REFINERS = registry.names("refiner")


def build_refiner(name: str, **options) -> nn.Module:
    """Construct the refiner ``name`` (see :mod:`wsgcn_cli.models.registry`) with ``options``.

    Raises WsgcnError for an unknown refiner name or options the model does not take.
    """
    return registry.build(name, options, kind="refiner")


# ----------------------------------------------------------------------------- windows


def check_window(window: int, overlap: int) -> None:
    """Raise WsgcnError unless ``window >= 1`` and ``0 <= overlap`` and ``2 * overlap <= window``."""
    if int(window) != window or int(overlap) != overlap:
        raise WsgcnError(f"refiner window and overlap must be integers, got {window} and {overlap}")
    if window < 1:
        raise WsgcnError(f"refiner window must be >= 1 frame, got {window}")
    if overlap < 0 or 2 * overlap > window:
        raise WsgcnError(f"refiner overlap must be between 0 and window/2 = {window // 2}, got {overlap}")


def _ramp(length: int) -> np.ndarray:
    """(i + 1) / (length + 1) for i = 0 .. length-1, float32."""
    return (np.arange(1, length + 1, dtype=np.float32) / np.float32(length + 1)).astype(np.float32)


def _regular_weights(window: int, overlap: int) -> np.ndarray:
    w = np.ones(window, np.float32)
    if overlap:
        r = _ramp(overlap)
        w[:overlap] = r
        w[window - overlap:] = r[::-1]
    return w


def _head_weights(a: int, g0: int, overlap: int) -> np.ndarray:
    """Head window of a run starting at ``a`` before the first grid window ``g0``: frames [a, g0 + O)."""
    w = np.ones(g0 + overlap - a, np.float32)
    if overlap:
        w[g0 - a:] = _ramp(overlap)[::-1]
    return w


def _tail_weights(b: int, end: int, overlap: int) -> np.ndarray:
    """Tail window of a run ending at ``b`` after the last grid window ending at ``end``: frames [end - O, b)."""
    w = np.ones(b - end + overlap, np.float32)
    if overlap:
        w[:overlap] = _ramp(overlap)
    return w


def window_plan(a: int, b: int, window: int, overlap: int) -> list[tuple[int, int, int, np.ndarray]]:
    """Windows refining the run of valid frames [a, b): ``[(start, stop, lo, weights)]``.

    The network runs on frames [start, stop); its outputs for frames
    [lo, lo + len(weights)) are added with ``weights``. Frame indices are those of the
    whole sequence: regular windows lie on the fixed grid [k·S, k·S + W) (S = W - O),
    so a run's windows away from its ends do not depend on where the run starts:

    * n = b - a < W: one window [a, b), weight 1.
    * grid windows inside [a, b), each weighted by the ramps (i + 1) / (O + 1) over its
      first O frames and (O - i) / (O + 1) over its last O frames (the two ramps of an
      overlap sum to 1);
    * if the run does not start on the grid, a head window [a, a + W) for frames
      [a, g0 + O) (g0: the first grid window), fading out over [g0, g0 + O);
    * if the last grid window ends at e < b, a tail window [b - W, b) for frames
      [e - O, b), fading in over [e - O, e);
    * n >= W with no grid window inside: head [a, a + W) and tail [b - W, b), cross-faded
      linearly over their overlap (a single window if n = W).
    """
    check_window(window, overlap)
    n = b - a
    if n <= 0:
        return []
    if n < window:
        return [(a, b, a, np.ones(n, np.float32))]
    step = window - overlap
    g0 = -(-a // step) * step
    grid = list(range(g0, b - window + 1, step))
    if not grid:
        if n == window:
            return [(a, b, a, np.ones(n, np.float32))]
        shared = 2 * window - n  # frames in [b - W, a + W)
        r = _ramp(shared)
        head, tail = np.ones(window, np.float32), np.ones(window, np.float32)
        head[window - shared:] = r[::-1]
        tail[:shared] = r
        return [(a, a + window, a, head), (b - window, b, b - window, tail)]
    plan = []
    if g0 > a:
        plan.append((a, a + window, a, _head_weights(a, g0, overlap)))
    w = _regular_weights(window, overlap)
    plan += [(g, g + window, g, w) for g in grid]
    end = grid[-1] + window
    if end < b:
        plan.append((b - window, b, end - overlap, _tail_weights(b, end, overlap)))
    return plan


def window_starts(usable: np.ndarray, group: np.ndarray, window: int) -> np.ndarray:
    """Training windows: the start indices s (int64, ascending) such that frames
    s .. s + window - 1 are all ``usable`` and of one ``group``.

    ``usable``: (N,) bool; ``group``: (N,) ids (a sequence or clip number) whose frames
    are contiguous, e.g. :func:`wsgcn_cli.data.h36m.load`'s sequences or finetune's clips
    (only the first and last frame of a window are compared).
    """
    n = len(usable)
    if n < window:
        return np.zeros(0, np.int64)
    csum = np.concatenate([[0], np.cumsum(np.asarray(usable, bool).astype(np.int64))])
    s = np.arange(n - window + 1, dtype=np.int64)
    full = (csum[s + window] - csum[s]) == window
    same = group[s] == group[s + window - 1]
    return s[full & same]


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def _run(model: nn.Module, pose3d: np.ndarray, x2d: np.ndarray) -> np.ndarray:
    """(B, T, 17, 3), (B, T, 17, 2) numpy -> refined (B, T, 17, 3) float32 numpy."""
    dev = _device(model)
    y = model(torch.from_numpy(np.ascontiguousarray(pose3d, np.float32)).to(dev),
              torch.from_numpy(np.ascontiguousarray(x2d, np.float32)).to(dev))
    return y.float().cpu().numpy()


def _check_inputs(pose3d, x2d):
    pose3d = np.asarray(pose3d, np.float32)
    x2d = np.asarray(x2d, np.float32)
    if pose3d.ndim != 3 or pose3d.shape[1:] != (JOINTS, 3):
        raise WsgcnError(f"refiner: pose3d must be (T, {JOINTS}, 3), got {pose3d.shape}")
    if x2d.shape != pose3d.shape[:-1] + (2,):
        raise WsgcnError(f"refiner: x2d must be (T, {JOINTS}, 2) like pose3d, got {x2d.shape}")
    return pose3d, x2d


def valid_frames(pose3d: np.ndarray, x2d: np.ndarray) -> np.ndarray:
    """(T,) bool: frames whose 3D and 2D are all finite."""
    return np.isfinite(pose3d).all(axis=(-1, -2)) & np.isfinite(x2d).all(axis=(-1, -2))


def runs_of(valid: np.ndarray) -> list[tuple[int, int]]:
    """[(start, stop)] of the runs of True in a (T,) bool array."""
    edges = np.diff(np.concatenate([[0], valid.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def refine_sequence(refiner: nn.Module, pose3d, x2d, window: int = 64, overlap: int = 16,
                    batch_windows: int = 64) -> np.ndarray:
    """Refine a whole sequence in overlapping windows.

    Args:
        refiner: an :class:`~wsgcn_cli.models.refiner_net.LSTMRefiner` (its device is used;
            it is put in eval mode).
        pose3d: (T, 17, 3) lifted poses, root-relative camera coordinates, metres;
            NaN rows for frames without a pose.
        x2d: (T, 17, 2) the lifter's normalised 2D input of the same frames.
        window, overlap: frames per window and frames shared by consecutive windows
            (``2 * overlap <= window``), in frames of the sequence's own rate.
        batch_windows: windows per network call (bounds the memory used by the network).
    Returns:
        (T, 17, 3) float32 refined root-relative camera coordinates in metres; frames
        with any NaN in ``pose3d`` or ``x2d`` are all-NaN, and each run of valid frames
        is refined independently (see the module docstring for the blending).
    Raises:
        WsgcnError: bad shapes, window or overlap.
    """
    pose3d, x2d = _check_inputs(pose3d, x2d)
    check_window(window, overlap)
    refiner.eval()
    out = np.full(pose3d.shape, np.nan, np.float32)
    for a, b in runs_of(valid_frames(pose3d, x2d)):
        plan = window_plan(a, b, window, overlap)
        acc = np.zeros((b - a, JOINTS, 3), np.float32)
        wsum = np.zeros(b - a, np.float32)
        full = sorted({p[0] for p in plan if p[1] - p[0] == window})
        results = {}
        for i in range(0, len(full), batch_windows):
            chunk = full[i : i + batch_windows]
            idx = np.array(chunk)[:, None] + np.arange(window)
            y = _run(refiner, pose3d[idx], x2d[idx])
            results.update({s: y[k] for k, s in enumerate(chunk)})
        for s, e, _, _ in plan:
            if s not in results:  # the run is shorter than a window
                results[s] = _run(refiner, pose3d[None, s:e], x2d[None, s:e])[0]
        for s, e, lo, w in plan:  # in plan order, as StreamingRefiner adds them
            hi = lo + len(w)
            acc[lo - a : hi - a] += w[:, None, None] * results[s][lo - s : hi - s]
            wsum[lo - a : hi - a] += w
        out[a:b] = acc / wsum[:, None, None]
    return out


class StreamingRefiner:
    """Frame-by-frame :func:`refine_sequence` with bounded delay.

    Push each frame's lifted pose (17, 3) metres and normalised 2D (17, 2) in order;
    :meth:`push` returns the frames that are finished, in order (possibly none), and
    :meth:`finish` the rest at the end of the stream. The rows equal those of
    :func:`refine_sequence` on the whole sequence (up to float rounding of batched
    versus single-window LSTM calls). A valid frame comes back at most
    ``window + step - 2`` frames after it was pushed (``step = window - overlap``;
    ``window - 1`` once its run is past the first grid window); a frame without a pose
    (any NaN) ends the current run, which is then finished, and comes back as a NaN row
    at once. At most ``window`` input frames and ``window + step`` unfinished outputs
    are held.

    Raises WsgcnError for bad shapes, window or overlap.
    """

    def __init__(self, refiner: nn.Module, window: int = 64, overlap: int = 16):
        check_window(window, overlap)
        self.refiner = refiner.eval()
        self.window, self.overlap, self.step = window, overlap, window - overlap
        self._t = 0  # frames pushed
        self._buf: deque = deque(maxlen=window)  # last valid frames of the run
        self._reset_run()

    def _reset_run(self):
        self._buf.clear()
        self._a = None  # index of the run's first frame
        self._grid = 0  # grid windows added
        self._head = None  # head window output, kept until its weights are known
        self._base = 0  # first unfinished frame
        self._acc = np.zeros((0, JOINTS, 3), np.float32)
        self._wsum = np.zeros(0, np.float32)

    def _infer(self, start: int, stop: int) -> np.ndarray:
        offset = self._t - len(self._buf)  # index of self._buf[0]
        frames = list(self._buf)[start - offset : stop - offset]
        return _run(self.refiner, np.stack([f[0] for f in frames])[None], np.stack([f[1] for f in frames])[None])[0]

    def _add(self, start: int, y: np.ndarray, lo: int, w: np.ndarray):
        hi = lo + len(w)
        self._acc[lo - self._base : hi - self._base] += w[:, None, None] * y[lo - start : hi - start]
        self._wsum[lo - self._base : hi - self._base] += w

    def _emit(self, upto: int) -> list[np.ndarray]:
        count = upto - self._base
        if count <= 0:
            return []
        rows = self._acc[:count] / self._wsum[:count, None, None]
        self._acc, self._wsum = self._acc[count:], self._wsum[count:]
        self._base = upto
        return list(rows)

    def push(self, pose3d_row, x2d_row) -> list[np.ndarray]:
        """Add one frame: (17, 3) metres root-relative, (17, 2) normalised 2D -> finished rows (17, 3)."""
        pose, x = _check_inputs(np.asarray(pose3d_row, np.float32)[None], np.asarray(x2d_row, np.float32)[None])
        if not valid_frames(pose, x)[0]:
            rows = self._finish_run() + [np.full((JOINTS, 3), np.nan, np.float32)]
            self._t += 1
            return rows
        if self._a is None:
            self._a = self._base = self._t
        self._buf.append((pose[0], x[0]))
        self._t += 1
        self._acc = np.concatenate([self._acc, np.zeros((1, JOINTS, 3), np.float32)])
        self._wsum = np.concatenate([self._wsum, np.zeros(1, np.float32)])
        a, end, w_ = self._a, self._t, self.window
        start = end - w_
        if end - a == w_ and a % self.step:
            self._head = self._infer(a, end)  # weights known at the first grid window or at the run's end
        if start >= a and start % self.step == 0:
            if self._grid == 0 and self._head is not None:
                self._add(a, self._head, a, _head_weights(a, start, self.overlap))
                self._head = None
            self._add(start, self._infer(start, end), start, _regular_weights(w_, self.overlap))
            self._grid += 1
            return self._emit(start + self.step)
        return []

    def _finish_run(self) -> list[np.ndarray]:
        if self._a is None:
            return []
        a, b = self._a, self._t
        plan = window_plan(a, b, self.window, self.overlap)
        done = self._grid + (1 if self._grid and a % self.step else 0)  # head + grid windows already added
        for start, stop, lo, w in plan[done:]:
            y = self._head if (start == a and self._head is not None) else self._infer(start, stop)
            self._add(start, y, lo, w)
        rows = self._emit(b)
        self._reset_run()
        return rows

    def finish(self) -> list[np.ndarray]:
        """End of the stream: the remaining rows (17, 3)."""
        return self._finish_run()


# ----------------------------------------------------------------------------- weights


class TemporalRefiner:
    """A trained refiner with its metadata (read from its safetensors weights).

    Attributes:
        model: the network; meta: the weights' metadata (``model``, ``model_options``,
        ``layout``, ``codec``, ``lifter_sha256``, ``window``, ``frame_stride``, ...);
        sha256: of the weights file; window, overlap: used by :meth:`refine` and
        :meth:`stream`; lifter_matches: False when a lifter was given whose weights
        differ from the ones the refiner was trained on (it still runs); flip_test:
        ``model`` is wrapped in :class:`FlipTestRefiner` (twice the refiner's compute).
    """

    def __init__(self, model: nn.Module, meta: dict, sha256: str = "", window: int | None = None,
                 overlap: int | None = None, lifter_matches: bool = True, flip_test: bool = False):
        self.flip_test = bool(flip_test)
        self.model = (FlipTestRefiner(model) if self.flip_test else model).eval()
        self.meta, self.sha256 = meta, sha256
        self.window = int(window if window is not None else meta.get("window", 64))
        self.overlap = int(overlap if overlap is not None else meta.get("overlap", self.window // 4))
        check_window(self.window, self.overlap)
        self.codec = meta.get("codec")
        self.lifter_matches = lifter_matches

    @classmethod
    def from_weights(cls, path: str | Path, device: str = "cpu", lifter=None, window: int | None = None,
                     overlap: int | None = None, flip_test: bool = False) -> "TemporalRefiner":
        """Load refiner weights (kind ``"refiner"``, layout h36m17) on ``device`` (``"auto"``,
        ``"cpu"``, ``"cuda"``) through :func:`wsgcn_cli.weights.load_model`. With ``lifter`` (a
        :class:`wsgcn_cli.lifter.Lifter`), check that its codec is the refiner's;
        ``flip_test``: see :class:`FlipTestRefiner`.

        Raises WsgcnError for unreadable weights, weights that are not a refiner, a layout
        other than h36m17, tensors that do not fit, or a codec mismatch.
        """
        model, meta, digest = load_model(path, "refiner", device=resolve_device(device), layout="h36m17")
        matches = True
        if lifter is not None:
            if meta.get("codec") != lifter.codec_mode:
                raise WsgcnError(f"refiner {path} was trained on codec {meta.get('codec')!r}, the lifter "
                                 f"uses {lifter.codec_mode!r}")
            matches = not meta.get("lifter_sha256") or meta.get("lifter_sha256") == lifter.sha256
        return cls(model, meta, digest, window, overlap, matches, flip_test)

    def refine(self, pose3d, x2d, batch_windows: int = 64) -> np.ndarray:
        """:func:`refine_sequence` with this refiner's window and overlap."""
        return refine_sequence(self.model, pose3d, x2d, self.window, self.overlap, batch_windows)

    def stream(self) -> StreamingRefiner:
        """A :class:`StreamingRefiner` with this refiner's window and overlap."""
        return StreamingRefiner(self.model, self.window, self.overlap)
