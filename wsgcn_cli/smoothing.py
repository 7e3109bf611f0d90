"""Temporal smoothing of keypoints: the One-Euro filter (causal, streaming) and the
zero-phase Butterworth low-pass (whole clip).

* :class:`OneEuroFilter` / :func:`one_euro`: Casiez, Roussel & Vogel, "1€ Filter: A
  Simple Speed-based Low-pass Filter for Noisy Input in Interactive Systems", CHI 2012.
  A first-order low-pass whose cutoff rises with the signal's speed:
  ``fc = min_cutoff + beta * |dx/dt|`` (eq. in section 3 of the paper), smoothing factor
  ``alpha = 1 / (1 + tau / Te)`` with ``tau = 1 / (2 pi fc)`` and ``Te`` the time since
  the previous sample; the speed itself is low-passed at ``d_cutoff``. Causal: each output
  depends only on the samples up to it, so it runs inside the stream
  (:class:`OneEuroStage`, on the 2D keypoints before the lifter).
* :func:`butterworth`: ``scipy.signal.butter`` second-order sections applied forwards and
  backwards (``scipy.signal.sosfiltfilt``): zero phase (no lag), magnitude response
  squared. It needs the whole clip, so it runs after the stream
  (:meth:`wsgcn_cli.pipeline.Pipeline.whole_clip`) on the 3D and the trajectory.

Both work on arrays (T, ...) of any trailing shape, in any unit, with times in seconds.
Frames with a NaN are gaps: the One-Euro filter restarts after a gap (per value); the
Butterworth filter smooths each run of complete frames on its own and leaves gap frames
(and runs too short to filter) as they are.

A lift pipeline's ``[smoothing]`` table (:class:`Smoothing`) chooses the kind
(``wsgcn lift --smooth none|one-euro|butterworth`` overrides it) and the parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from wsgcn_cli.errors import WsgcnError
from wsgcn_cli.options import from_table

#: The kinds of ``--smooth`` / ``[smoothing] kind``.
KINDS = ("none", "one-euro", "butterworth")


@dataclass
class Smoothing:
    """A lift pipeline's ``[smoothing]`` table.

    Attributes:
        kind: ``"none"``, ``"one-euro"`` (causal, on the 2D keypoints before the lifter)
            or ``"butterworth"`` (zero phase, on the lifted 3D after the stream).
        min_cutoff_hz, beta, d_cutoff_hz: the One-Euro parameters (Casiez et al. 2012);
            ``beta`` in 1 / (image widths), as the filter sees 2D divided by the image's
            longer side (so the same values suit any resolution).
        cutoff_hz, order: the Butterworth low-pass's cutoff (Hz) and order.
    """

    kind: str = "none"
    min_cutoff_hz: float = 1.0
    beta: float = 10.0
    d_cutoff_hz: float = 1.0
    cutoff_hz: float = 6.0
    order: int = 4

    @classmethod
    def from_spec(cls, table: dict, kind: str | None = None) -> "Smoothing":
        """From a pipeline's ``[smoothing]`` table, ``kind`` (``--smooth``) replacing its kind.
        Raises WsgcnError for unknown keys or kinds and non-positive parameters."""
        s = from_table(cls, table, "smoothing")
        if kind is not None:
            s.kind = kind
        check_kind(s.kind)
        for name in ("min_cutoff_hz", "d_cutoff_hz", "cutoff_hz"):
            if not _positive(getattr(s, name)):
                raise WsgcnError(f"[smoothing] {name} must be a number > 0, got {getattr(s, name)!r}")
        if not isinstance(s.beta, (int, float)) or not s.beta >= 0:
            raise WsgcnError(f"[smoothing] beta must be a number >= 0, got {s.beta!r}")
        if not isinstance(s.order, int) or not 1 <= s.order <= 8:
            raise WsgcnError(f"[smoothing] order must be a whole number in 1..8, got {s.order!r}")
        return s


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def check_kind(kind) -> str:
    """``kind`` if it is one of :data:`KINDS`; else WsgcnError (one line)."""
    if kind not in KINDS:
        raise WsgcnError(f"unknown smoothing {kind!r}; use one of {', '.join(KINDS)}")
    return kind


# -- One-Euro (causal) -------------------------------------------------------------------

def _alpha(cutoff_hz, dt):
    tau = 1.0 / (2.0 * np.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """The One-Euro filter over a stream of arrays of one shape (Casiez et al. 2012).

    Args:
        min_cutoff_hz: cutoff at rest (Hz): lower = smoother when still, more lag.
        beta: speed coefficient (1 / signal unit): higher = less lag when moving.
        d_cutoff_hz: cutoff of the speed estimate (Hz).

    :meth:`__call__` takes one sample (any shape, NaN for a gap) and its time in seconds;
    values that are NaN reset that value's state (the next valid one starts afresh and is
    returned unchanged, as the paper's first sample is). Times must increase; a repeated
    or missing time (``dt <= 0``) uses ``1 / fallback_fps``.
    """

    def __init__(self, min_cutoff_hz: float = 1.0, beta: float = 0.0, d_cutoff_hz: float = 1.0,
                 fallback_fps: float = 25.0):
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff_hz), float(beta), float(d_cutoff_hz)
        self.fallback_dt = 1.0 / fallback_fps
        self._x = self._dx = None  # filtered value and speed, NaN where there is no state
        self._t = None

    def __call__(self, x, t: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None:
            self._x, self._dx = np.full(x.shape, np.nan), np.zeros(x.shape)
        dt = self.fallback_dt if self._t is None or not t > self._t else t - self._t
        self._t = t
        fresh = np.isnan(self._x)
        dx = np.where(fresh, 0.0, (x - self._x) / dt)
        dx_hat = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        a = _alpha(self.min_cutoff + self.beta * np.abs(dx_hat), dt)
        out = np.where(fresh, x, self._x + a * (x - self._x))
        gap = ~np.isfinite(x)
        self._x = np.where(gap, np.nan, out)
        self._dx = np.where(gap | fresh, 0.0, dx_hat)
        return np.where(gap, np.nan, out)


def one_euro(x, times, min_cutoff_hz: float = 1.0, beta: float = 0.0, d_cutoff_hz: float = 1.0) -> np.ndarray:
    """:class:`OneEuroFilter` over a whole sequence ``x`` (T, ...) sampled at ``times`` (T,)
    seconds; returns (T, ...) float64, NaN where ``x`` is. The same as streaming it."""
    x = np.asarray(x, np.float64)
    filt = OneEuroFilter(min_cutoff_hz, beta, d_cutoff_hz)
    return np.stack([filt(x[i], float(times[i])) for i in range(len(x))]) if len(x) else x.copy()


class OneEuroStage:
    """The One-Euro filter as a lift stage (:mod:`wsgcn_cli.pipeline.stages` protocol) on
    the 2D keypoints (H36M-17 pixels) after the 2D stage and before the lifter: one in,
    one out, no delay. The filter sees the pixels divided by the image's longer side, so
    ``beta`` is in 1 / (image lengths). ``options``: a :class:`Smoothing`."""

    def __init__(self, options: Smoothing, width: int, height: int, fps: float):
        self.scale = float(max(width, height))
        self.filter = OneEuroFilter(options.min_cutoff_hz, options.beta, options.d_cutoff_hz,
                                    fallback_fps=fps if fps and fps > 0 else 25.0)

    def push(self, item) -> list:
        if item.keypoints_2d is not None:
            xy = self.filter(np.asarray(item.keypoints_2d, np.float64) / self.scale, item.time)
            item.keypoints_2d = (xy * self.scale).astype(np.float32)
        return [item]

    def finish(self) -> list:
        return []


# -- Butterworth (zero phase, whole clip) ----------------------------------------------------

def butterworth(x, fps: float, cutoff_hz: float = 6.0, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth low-pass along axis 0 (``scipy.signal.butter`` as second-order
    sections, then ``scipy.signal.sosfiltfilt``: forwards and backwards, so no lag).

    Args:
        x: (T, ...) samples at ``fps`` frames per second, any unit; a frame with any NaN
            is a gap.
        fps: the frame rate (Hz); 0 or a cutoff at or above the Nyquist frequency
            (``fps / 2``) returns ``x`` unchanged (nothing to filter).
        cutoff_hz: -3 dB point of one pass (the forward-backward response is its square,
            -6 dB there); order: the filter's order (the effective order doubles).

    Returns (T, ...) float64: each run of complete frames filtered on its own (with odd
    extension padding shortened to the run's length; runs of fewer than 4 frames are left
    as they are), gap frames unchanged.
    """
    from scipy.signal import butter, sosfiltfilt

    from wsgcn_cli.temporal import runs_of

    x = np.asarray(x, np.float64)
    out = x.copy()
    if len(x) < 4 or not fps or fps <= 0 or cutoff_hz >= fps / 2:
        return out
    sos = butter(order, cutoff_hz, btype="low", fs=fps, output="sos")
    flat = x.reshape(len(x), -1)
    for a, b in runs_of(np.isfinite(flat).all(axis=1)):
        n = b - a
        if n < 4:
            continue
        padlen = min(3 * (2 * len(sos) + 1), n - 1)
        out.reshape(len(x), -1)[a:b] = sosfiltfilt(sos, flat[a:b], axis=0, padlen=padlen)
    return out
