"""Inverting maps point by point: f(x) = y for a batch of y.

The solver runs in C++ (in parallel over points for maps implemented in
C++) and climbs a ladder per point: fixed-point iteration
``x <- x - (f(x) - y)``, which contracts when ``||f - Id||_Lip < 1`` (every
near-identity layer); Anderson acceleration of that iteration (regularised,
restarted when its history becomes ill-conditioned); and damped Newton with
the analytic Jacobian and a backtracking line search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._native import core as _core
from ._validation import as_points, as_positive_int
from .errors import ConvergenceError
from .maps import Map

__all__ = ["InversionResult", "invert", "METHODS"]

#: Methods accepted by :func:`invert`.
METHODS = tuple(_core.INVERSION_METHODS)
_REASONS = np.array(_core.STOP_REASONS)
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
    reason : ndarray of str, shape (n,) or ()
        "converged", "max_iterations", "stalled" (Newton's line search found
        no decrease), "singular_jacobian" or "non_finite".
    method : ndarray of str, shape (n,) or ()
        The method running when the point stopped: "fixed_point",
        "anderson" or "newton".
    """

    x: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
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
        "auto" starts with fixed-point iteration and, per point, moves to
        Anderson acceleration when the residual falls by less than a factor
        of 4 per step, then to Newton when Anderson stops improving.
    tol : float
        Relative tolerance: a point has converged when
        ``||f(x) - y|| <= atol + tol * ||y||``.
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
        start, start_single = as_points(x0, f.dim, "x0")
        if start.shape != points.shape:
            raise ValueError(f"x0 must have the shape of Y, {points.shape}; got {start.shape}")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    tol = float(tol)
    atol = tol if atol is None else float(atol)
    max_iter = as_positive_int(max_iter, "max_iter")
    anderson_memory = as_positive_int(anderson_memory, "anderson_memory")
    raw = _core.invert(f._impl, points, start, method, tol, atol, max_iter, anderson_memory)
    result = InversionResult(
        x=raw["x"],
        converged=raw["converged"].astype(bool),
        iterations=raw["iterations"].astype(np.int64),
        residual=raw["residual"],
        reason=_REASONS[raw["reason"]],
        method=_METHOD_NAMES[raw["method"]],
    )
    if strict and not result.success:
        failed = ~result.converged
        worst = int(np.flatnonzero(failed)[np.argmax(result.residual[failed])])
        raise ConvergenceError(
            f"inversion did not converge for {int(failed.sum())} of {failed.size} points "
            f"(worst residual ||f(x) - y|| = {result.residual[worst]:.3g} at index {worst}, {result.reason[worst]}); "
            "the map may not be invertible there. Raise max_iter, loosen tol, or pass strict=False "
            "to get the best iterates with per-point flags",
            failed=int(failed.sum()),
            total=int(failed.size),
            worst_residual=float(result.residual[worst]),
            reason=str(result.reason[worst]),
        )
    if single:
        result = InversionResult(*(np.asarray(v)[0] for v in (result.x, result.converged, result.iterations,
                                                             result.residual, result.reason, result.method)))
    return result
