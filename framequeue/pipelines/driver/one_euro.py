"""The One Euro filter (Casiez, Roussel, Vogel, "1€ Filter", CHI 2012), scalar and clock-injected.

An adaptive low-pass filter: its cutoff rises with the signal's speed, `cutoff = min_cutoff_hz + beta *
|dx/dt|`, so a still signal is smoothed hard (little jitter) and a moving one lightly (little lag). Each
call carries its own timestamp and the sampling period is the gap to the previous one, so dropped or
irregular frames need no special handling. As in the authors' reference, the first sample passes through
unchanged and the speed starts at 0. The speed is the step from the previous *filtered* value (the paper's
pseudocode and the authors' test vector), not from the previous raw sample: the raw difference is noisier and
misses the vector by up to 0.08.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["OneEuroFilter", "OneEuroVector"]


def _alpha(cutoff_hz: float, dt_s: float) -> float:
    """Smoothing factor of a first-order low-pass with this cutoff over one step of dt_s."""
    tau_s = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau_s / dt_s)


class OneEuroFilter:
    """One scalar signal; `filter(t_s, x)` returns the smoothed x. Timestamps must strictly increase."""

    def __init__(self, min_cutoff_hz: float = 1.0, beta: float = 0.05, d_cutoff_hz: float = 1.0) -> None:
        for name, value in (("min_cutoff_hz", min_cutoff_hz), ("d_cutoff_hz", d_cutoff_hz)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not (math.isfinite(beta) and beta >= 0):
            raise ValueError(f"beta must be a number >= 0, got {beta!r}")
        #: the cutoff of a still signal, Hz: lower = less jitter, more lag
        self.min_cutoff_hz = min_cutoff_hz
        #: how much the cutoff rises per unit of speed, Hz per (signal unit / s): higher = less lag
        self.beta = beta
        #: cutoff of the low-pass on the speed estimate, Hz
        self.d_cutoff_hz = d_cutoff_hz
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through unchanged."""
        self._t_s: float | None = None
        self._x_hat = 0.0
        self._dx_hat = 0.0  #: filtered speed, signal units per second

    def filter(self, t_s: float, x: float) -> float:
        """The filtered value at time t_s (seconds, any origin); ValueError on non-finite input or time."""
        if not math.isfinite(x):
            raise ValueError(f"cannot filter a non-finite value: {x!r}")
        if not math.isfinite(t_s):
            raise ValueError(f"timestamp must be finite, got {t_s!r}")
        if self._t_s is None:
            self._t_s, self._x_hat, self._dx_hat = t_s, x, 0.0
            return x
        dt_s = t_s - self._t_s
        if dt_s <= 0:
            raise ValueError(f"timestamp {t_s!r} s is not after the previous one ({self._t_s!r} s)")
        dx = (x - self._x_hat) / dt_s
        a_d = _alpha(self.d_cutoff_hz, dt_s)
        self._dx_hat = a_d * dx + (1.0 - a_d) * self._dx_hat
        a = _alpha(self.min_cutoff_hz + self.beta * abs(self._dx_hat), dt_s)
        self._x_hat = a * x + (1.0 - a) * self._x_hat
        self._t_s = t_s
        return self._x_hat


class OneEuroVector:
    """n independent One Euro filters sharing the clock, e.g. for (yaw, pitch, roll).

    Values are filtered as plain numbers: angles must not wrap (±180°) within a track.
    """

    def __init__(self, n: int, min_cutoff_hz: float = 1.0, beta: float = 0.05, d_cutoff_hz: float = 1.0) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self._filters = [OneEuroFilter(min_cutoff_hz, beta, d_cutoff_hz) for _ in range(n)]

    def reset(self) -> None:
        for f in self._filters:
            f.reset()

    def filter(self, t_s: float, values: Sequence[float]) -> tuple[float, ...]:
        """The n filtered values at t_s; ValueError when len(values) != n (nothing is updated then)."""
        if len(values) != len(self._filters):
            raise ValueError(f"expected {len(self._filters)} values, got {len(values)}")
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"cannot filter non-finite values: {tuple(values)!r}")
        return tuple(f.filter(t_s, v) for f, v in zip(self._filters, values, strict=True))
