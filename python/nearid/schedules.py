"""Scale schedules 0 < a_1 < ... < a_m = 1 for the nonlinear layers.

Layer i of a decomposition is ``h_i = g_i o g_{i-1}^{-1}`` with
``g_i(z) = h~(a_i z) / a_i`` (docs/theory.md, section 2); the schedule
decides how the nonlinearity of h~ is spread over the layers.

- "uniform": ``a_i = i / m``. docs/theory.md, section 4b, proves
  ``||h_i - Id||_L <= alpha R M (a_i - a_{i-1})`` (and ``alpha R a_1`` for
  i = 1), so this schedule reaches O(1/m) without the log factor.
- "theorem": the paper's ``a_i = (1 - c)^{m - i}`` with c minimising
  ``max{2 alpha R (1 - c)^{m-1}, B c}``, the bound of Theorem 2.
- "geometric": ``a_i = (1 - c)^{m - i}`` with c given, or chosen to balance
  the first layer's bound ``alpha R a_1`` against the last layer's
  ``alpha R M c``, i.e. ``(1 - c)^{m-1} = M c``.
- "balanced": scales that equalise the measured layer deviations (computed
  by :func:`nearid.decompose`, which can measure them).
- an explicit array: strictly increasing, positive, ending at exactly 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import as_count, is_real_scalar

__all__ = ["uniform", "geometric", "theorem_rate", "balanced_geometric_rate", "validate"]

NAMES = ("uniform", "theorem", "geometric", "balanced")


def uniform(m: int) -> np.ndarray:
    """``a_i = i / m`` for i = 1..m."""
    m = as_count(m, "m")
    return np.arange(1, m + 1, dtype=np.float64) / m


def geometric(m: int, c: float) -> np.ndarray:
    """``a_i = (1 - c)^{m - i}`` for i = 1..m, 0 < c < 1."""
    m = as_count(m, "m")
    if not is_real_scalar(c) or not 0.0 < c < 1.0:
        raise ValueError(f"c must be a number in (0, 1) for a geometric schedule; got {c!r}")
    scales = (1.0 - c) ** np.arange(m - 1, -1, -1, dtype=np.float64)
    scales[-1] = 1.0
    return scales


def _bisect(decreasing, lo: float = 0.0, hi: float = 1.0, iterations: int = 200) -> float:
    """The root of a decreasing function on (lo, hi) by bisection."""
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if decreasing(mid) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def theorem_rate(m: int, alpha: float, R: float, B: float) -> float:
    """c minimising ``max{2 alpha R (1 - c)^{m-1}, B c}`` over (0, 1).

    The first term decreases and the second increases in c, so the minimum
    is where they cross (or at an end of the interval when one vanishes).
    """
    if m == 1:
        return 0.5  # a single layer: a_1 = 1 whatever c is
    first = 2.0 * alpha * R
    if B <= 0.0:
        return 1.0 - 1e-12
    if first <= 0.0:
        return 1e-12
    c = _bisect(lambda c: first * (1.0 - c) ** (m - 1) - B * c)
    return min(max(c, 1e-12), 1.0 - 1e-12)


def balanced_geometric_rate(m: int, M: float) -> float:
    """c with ``(1 - c)^{m-1} = M c``: the first layer's bound ``alpha R a_1``
    equals the last layer's ``alpha R M c`` (docs/theory.md, section 4b)."""
    if m == 1:
        return 0.5
    return _bisect(lambda c: (1.0 - c) ** (m - 1) - M * c)


def validate(scales: Any, m: int, source: str = "explicit") -> np.ndarray:
    """A schedule as a read-only float64 array, or ValueError saying what is wrong and what to do.

    Every schedule passes here, explicit or computed (`source` names the
    schedule in messages, e.g. "geometric (rate 0.5)"): scales must be finite,
    positive, strictly increasing and end at exactly 1.
    """
    computed = source != "explicit"
    try:
        array = np.asarray(scales, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"schedule must be a name {NAMES} or an array of scales; got {type(scales).__name__}") from exc
    if array.shape != (m,):
        raise ValueError(f"an explicit schedule must have shape (m,) = ({m},); got {array.shape}")
    fix = (" Use fewer layers (m), a smaller rate, or the 'uniform' schedule." if computed else "")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"the {source} schedule must be finite.{fix}")
    if array[0] <= 0.0:
        why = " (the scales underflow to 0 in floating point)" if computed else ""
        raise ValueError(
            f"the {source} schedule must be positive: a_1 = {array[0]}{why}; scales satisfy "
            f"0 < a_1 < ... < a_m = 1.{fix}"
        )
    if np.any(np.diff(array) <= 0.0):
        i = int(np.flatnonzero(np.diff(array) <= 0.0)[0])
        raise ValueError(
            f"the {source} schedule must be strictly increasing; a_{i + 1} = {array[i]!r} >= "
            f"a_{i + 2} = {array[i + 1]!r}.{fix}"
        )
    if array[-1] != 1.0:
        raise ValueError(f"schedule must end at exactly 1 (a_m = 1 makes g_m = h~); got a_m = {array[-1]!r}")
    array = array.copy()
    array.setflags(write=False)
    return array
