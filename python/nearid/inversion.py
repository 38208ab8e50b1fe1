"""Inverting maps point by point: f(x) = y for a batch of y.

The solver runs in C++ (in parallel over points for maps implemented in
C++) and climbs a ladder per point: fixed-point iteration
``x <- x - (f(x) - y)``, which contracts when ``||f - Id||_Lip < 1`` (every
near-identity layer); Anderson acceleration of that iteration (regularised,
restarted when its history becomes ill-conditioned); and damped Newton with
the analytic Jacobian and a backtracking line search. "auto" skips Anderson
when the points of a tile (a block of rows solved together) would need, at
the median, more fixed-point steps than Newton costs (a Jacobian counted as
d / 2 evaluations): slow contractions in small dimensions go straight to
Newton, all points of the tile together.

A small residual does not make a solution accurate when Df is
ill-conditioned, so every point that meets the residual test is verified: its
a-posteriori error estimate, the Newton correction ``||Df(x)^{-1} (f(x) - y)||``
(the error of x to first order, and at most ``||f(x) - y|| / sigma_min(Df(x))``),
must also be within the tolerance. Points that fail it take Newton steps from
there, each accepted when the next correction is shorter (the residual,
already at its rounding floor, cannot guide them); with an explicit
"fixed_point" or "anderson" method the chosen iteration goes on instead. A
point whose x cannot be made that accurate stops with reason
"ill_conditioned".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._native import core as _core
from ._validation import as_count, as_points, check_choice
from .errors import ConvergenceError
from .maps import Map

__all__ = ["InversionResult", "invert", "METHODS", "REASONS"]

#: Methods accepted by :func:`invert`.
METHODS = tuple(_core.INVERSION_METHODS)
#: Why a point's iteration stopped (:attr:`InversionResult.reason`).
REASONS = tuple(_core.STOP_REASONS)
_REASONS = np.array(REASONS)
_METHOD_NAMES = np.array(_core.INVERSION_METHODS)


@dataclass(frozen=True, repr=False)
class InversionResult:
    """Per-point outcome of :func:`invert`.

    Attributes
    ----------
    x : ndarray, shape (n, d) or (d,)
        The solutions; for points that did not converge, the best iterate
        (smallest residual) found.
    converged : ndarray of bool, shape (n,) or ()
    iterations : ndarray of int, shape (n,) or ()
        Iterations used (each costs one evaluation of f; Newton steps also
        one Jacobian).
    residual : ndarray, shape (n,) or ()
        ``||f(x) - y||`` at the returned x (not the last step length).
    error : ndarray, shape (n,) or ()
        A-posteriori estimate of ``||x - x*||``, the distance to the exact
        solution: the Newton correction ``||Df(x)^{-1} (f(x) - y)||`` at the
        returned x (first-order exact; 0 when f(x) == y exactly). It measures
        the error left by the iteration, from the residual as computed; the
        rounding error of evaluating f itself adds about cond(Df) eps ||x||
        where f's values are ill-conditioned. NaN where it was not computed
        (points that never met the residual test), inf where Df was singular.
    reason : ndarray of str, shape (n,) or ()
        "converged", "max_iterations", "stalled" (Newton's line search found
        no decrease), "singular_jacobian", "non_finite", "ill_conditioned"
        (the residual is within tolerance but the error estimate is not: Df is
        too ill-conditioned there for the tolerance) or "outside_ball" (the
        only solution found lies outside the ball the map lives on; layers of
        a decomposition).
    method : ndarray of str, shape (n,) or ()
        The method running when the point stopped: "fixed_point",
        "anderson" or "newton".
    """

    x: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    error: np.ndarray
    reason: np.ndarray
    method: np.ndarray

    @property
    def success(self) -> bool:
        """True when every point converged."""
        return bool(np.all(self.converged))

    def __repr__(self) -> str:
        converged = np.atleast_1d(self.converged)
        residual = np.atleast_1d(self.residual)
        iterations = np.atleast_1d(self.iterations)
        methods, counts = np.unique(np.atleast_1d(self.method), return_counts=True)
        if converged.size == 0:
            return "InversionResult(n=0)"
        return (
            f"InversionResult(n={converged.size}, converged={int(converged.sum())}/{converged.size}, "
            f"max residual={residual.max():.3g}, iterations mean={iterations.mean():.1f} max={iterations.max()}, "
            f"methods={{{', '.join(f'{m}: {c}' for m, c in zip(methods, counts))}}})"
        )


def invert(
    f: Map,
    Y: Any,
    method: str = "auto",
    tol: float = 1e-12,
    max_iter: int = 100,
    x0: Any = None,
    strict: bool = True,
    atol: float | None = None,
    anderson_memory: int = 5,
) -> InversionResult:
    """Solve ``f(x) = y`` for each point y.

    Parameters
    ----------
    f : nearid map
        Any map of :mod:`nearid.maps` (or a decomposition layer).
    Y : array_like, shape (n, d) or (d,)
        Right-hand sides.
    method : {"auto", "fixed_point", "anderson", "newton"}
        "auto" starts with fixed-point iteration; after its first step, a
        tile of points moves to Newton together when the median of the
        fixed-point steps still needed (predicted from that step's
        contraction) would cost more than finishing by Newton, taking a
        Jacobian as d / 2 evaluations of f (small d). Otherwise each point
        moves to Anderson acceleration when its residual falls by less than a
        factor of 4 per step, then to Newton when Anderson stops improving.
    tol : float
        Relative tolerance: a point has converged when
        ``||f(x) - y|| <= atol + tol * ||y||`` and its error estimate
        ``<= atol + tol * ||x||`` (see :class:`InversionResult`).
    max_iter : int
        Iterations per point.
    x0 : array_like, optional
        Starting points, the shape of Y; default Y itself (right for maps
        near the identity).
    strict : bool
        If True, raise :class:`nearid.ConvergenceError` (stating how many
        points failed and the worst residual) when any point fails; if False,
        return the best iterates with per-point flags.
    atol : float, optional
        Absolute tolerance (default: ``tol``).
    anderson_memory : int
        Number of past steps Anderson acceleration combines.

    Returns
    -------
    InversionResult
    """
    if not isinstance(f, Map):
        raise TypeError(f"f must be a nearid map (nearid.maps.*); got {type(f).__name__}")
    points, single = as_points(Y, f.dim, "Y")
    start = None
    if x0 is not None:
        start, _ = as_points(x0, f.dim, "x0")
        if start.shape != points.shape:
            raise ValueError(f"x0 must have the shape of Y, {points.shape}; got {start.shape}")
    check_choice(method, "method", METHODS)
    tol = float(tol)
    atol = tol if atol is None else float(atol)
    max_iter = as_count(max_iter, "max_iter")
    anderson_memory = as_count(anderson_memory, "anderson_memory")
    result = solve(f, points, start, method, tol, atol, max_iter, anderson_memory)
    if strict:
        raise_unless_converged(result, "inversion")
    if single:
        result = InversionResult(*(np.asarray(v)[0] for v in (result.x, result.converged, result.iterations,
                                                             result.residual, result.error, result.reason,
                                                             result.method)))
    return result


def solve(
    f: Map, points: np.ndarray, start: np.ndarray | None, method: str, tol: float, atol: float, max_iter: int,
    anderson_memory: int, radius: float = np.inf, continuation: Map | None = None, scale: float = 1.0,
) -> InversionResult:
    """The compiled solver on checked arguments (shared by :func:`invert` and decompositions):
    solutions must satisfy ||x|| <= radius; with a continuation map c, failed points are solved
    again by continuation in a of c(a z) / a up to `scale`."""
    raw = _core.invert(f.compiled, points, start, method, tol, atol, max_iter, anderson_memory, radius,
                       None if continuation is None else continuation.compiled, scale)
    return InversionResult(
        x=raw["x"],
        converged=raw["converged"].astype(bool),
        iterations=raw["iterations"].astype(np.int64),
        residual=raw["residual"],
        error=raw["error"],
        reason=_REASONS[raw["reason"]],
        method=_METHOD_NAMES[raw["method"]],
    )


def raise_unless_converged(
    result: InversionResult, what: str, hint: str | None = None, strict_option: bool = True
) -> None:
    """:class:`ConvergenceError` stating how many points failed, the worst residual and why
    (`hint` replaces the generic advice for reasons without a specific one; `strict_option`
    says whether the caller has a strict=False to suggest)."""
    if result.success:
        return
    failed = ~result.converged
    # The worst point: the largest residual, NaN first.
    residual = np.where(np.isnan(result.residual), np.inf, result.residual)
    worst = int(np.flatnonzero(failed)[np.argmax(residual[failed])])
    reason = str(result.reason[worst])
    # The core words every non-convergence error, its own (strict inverse maps) and these.
    message = _core.convergence_message(what, int(failed.sum()), int(failed.size), float(result.residual[worst]),
                                        worst, reason, hint or "")
    raise ConvergenceError(
        message + ("; pass strict=False to get the best iterates with per-point flags" if strict_option else ""),
        failed=int(failed.sum()),
        total=int(failed.size),
        worst_residual=float(result.residual[worst]),
        reason=reason,
    )
