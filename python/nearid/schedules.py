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
- "balanced": scales that equalise the measured layer deviations
  (:func:`balanced`, measured on the scaled maps of :mod:`nearid.scaled`).
- an explicit array: strictly increasing, positive, ending at exactly 1
  (a decomposition records it under the name "explicit").

:func:`resolve` turns any of these into scales; it is the one place that
dispatches on a schedule's name, and :data:`NAMES` the one list of names.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import as_count, is_real_scalar
from .bounds import Constants
from .scaled import Normalised, jacobian_deviations, sample_for_deviations

__all__ = [
    "NAMES", "EXPLICIT", "RECORDED_NAMES", "uniform", "geometric", "theorem_rate", "balanced_geometric_rate",
    "balanced", "resolve", "describe", "validate",
]

#: The named schedules (what ``decompose(schedule=...)`` and ``nearid decompose --schedule`` accept).
NAMES = ("uniform", "theorem", "geometric", "balanced")
#: The name a decomposition records for an array of scales.
EXPLICIT = "explicit"
#: Every name a decomposition can record as its schedule.
RECORDED_NAMES = NAMES + (EXPLICIT,)
#: The named schedules that take a rate c, ``a_i = (1 - c)^(m - i)``.
RATE_NAMES = ("theorem", "geometric")


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


def balanced(normalised: Normalised, m: int, radius: float, n_samples: int, seed: int,
             iterations: int = 12) -> np.ndarray:
    """Scales whose layers have measured deviations as equal as possible.

    Starting from the uniform schedule, each round measures every layer's
    deviation dev_i (Jacobian method, on the points
    :meth:`nearid.Decomposition.lipschitz` uses for the same `n_samples` and
    `seed`) and, since dev_i is about kappa_i (a_i - a_{i-1}) with kappa_i
    the local rate, resizes each interval to be proportional to
    (a_i - a_{i-1}) / dev_i, damped by a geometric mean with the old size.
    The schedule with the smallest maximum is kept, so it is never worse
    than the uniform one on those points.

    Parameters
    ----------
    normalised : nearid.scaled.Normalised
        The map h normalised at the centre x0.
    m : int
        Number of scales.
    radius : float
        R, the radius of the ball the deviations are measured on.
    n_samples, seed : int
        Measuring points (:func:`nearid.scaled.sample_for_deviations`).
    """
    m = as_count(m, "m")
    U = sample_for_deviations(normalised.dim, radius, n_samples, seed)
    scales = uniform(m)
    best, best_max = scales, np.inf
    if m == 1:
        return scales
    for _ in range(iterations):
        deviations = jacobian_deviations(normalised, scales, U)
        if deviations.max() < best_max:
            best, best_max = scales, deviations.max()
        widths = np.diff(scales, prepend=0.0)
        rates = np.maximum(deviations, np.finfo(float).tiny) / widths
        target = 1.0 / rates
        widths = np.sqrt(widths * target / target.sum())
        scales = np.cumsum(widths / widths.sum())
        scales[-1] = 1.0
        if np.any(np.diff(scales, prepend=0.0) <= 0):
            break
    return best


def describe(name: str, m: int, rate: float | None = None) -> str:
    """How messages name a schedule, e.g. "geometric (rate 0.5, m = 8)"; "explicit" for arrays."""
    if name == EXPLICIT:
        return EXPLICIT
    return f"{name} (rate {rate:.6g}, m = {m})" if rate is not None else f"{name} (m = {m})"


def resolve(
    schedule: str | Any,
    m: int,
    *,
    rate: float | None = None,
    constants: Constants | None = None,
    normalised: Normalised | None = None,
    n_samples: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, str, float | None]:
    """The scales of a schedule given by name or as an array.

    Parameters
    ----------
    schedule : str or array_like
        One of :data:`NAMES`, or explicit scales (recorded as "explicit").
    m : int
        Number of scales.
    rate : float, optional
        c of a "geometric" schedule (default: balance the first layer's bound
        against the last layer's, from ``constants.M``); refused for the
        other schedules.
    constants : nearid.Constants, optional
        Needed by "theorem" (alpha, R, B) and by "geometric" without a rate (M).
    normalised : nearid.scaled.Normalised, optional
        Needed by "balanced", which measures layer deviations on the ball of
        radius ``constants.R`` with `n_samples` points drawn from `seed`.

    Returns
    -------
    scales : ndarray, shape (m,)
        Validated (:func:`validate`), read-only.
    name : str
        The schedule's name, "explicit" for an array.
    rate_used : float or None
        c of a "theorem" or "geometric" schedule, else None.
    """
    m = as_count(m, "m")
    rate_used: float | None = None
    if isinstance(schedule, str):
        name = schedule
        if name not in NAMES:
            raise ValueError(f"schedule must be one of {NAMES} or an array of scales; got {schedule!r}")
        if rate is not None and name != "geometric":
            raise ValueError("rate applies only to schedule='geometric'")
        needs_constants = name == "theorem" or name == "balanced" or (name == "geometric" and rate is None)
        if needs_constants and constants is None:
            raise ValueError(f"the {name} schedule needs the constants of the map (constants=...)")
        if name == "uniform":
            scales = uniform(m)
        elif name == "theorem":
            assert constants is not None  # needs_constants
            rate_used = theorem_rate(m, constants.alpha, constants.R, constants.B)
            scales = geometric(m, rate_used)
        elif name == "geometric":
            if rate is None:
                assert constants is not None  # needs_constants
                rate_used = balanced_geometric_rate(m, constants.M)
            else:
                rate_used = float(rate)
            scales = geometric(m, rate_used)
        else:
            assert constants is not None  # needs_constants
            if normalised is None:
                raise ValueError("the balanced schedule needs the normalised map (normalised=...) to measure")
            scales = balanced(normalised, m, constants.R, n_samples, seed)
    else:
        if rate is not None:
            raise ValueError("rate applies only to schedule='geometric'")
        scales, name = schedule, EXPLICIT
    return validate(scales, m, describe(name, m, rate_used)), name, rate_used


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
