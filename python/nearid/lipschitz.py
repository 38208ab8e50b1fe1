"""Measuring Lipschitz constants: exact pairwise ratios and Jacobian norms.

:func:`pairwise_lipschitz` computes, over all pairs j < k of n points,

    max (or min) of ||Y_j - Y_k|| / ||X_j - X_k||

exactly: every pair's distances come from direct differences (never from the
identity ||x||^2 + ||y||^2 - 2 x.y, which loses every digit for close pairs
far from the origin), in C++, blocked over the triangle of pairs, in parallel
with the GIL released, in O(n d) memory. A vector screen skips pairs that
cannot reach the current answer; every pair that could is recomputed with an
overflow- and underflow-free norm. The answer and its pair are the same for
any thread count (ties go to the smallest (j, k)).

:func:`jacobian_norms` gives per point sigma_max(Df - I), sigma_max(Df) and
sigma_min(Df) by exact SVDs in C++.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _progress
from ._native import core as _core
from ._validation import as_count, as_point_rows, as_points, check_choice
from .errors import NoPairError
from .maps import Map

__all__ = [
    "PairwiseResult",
    "REDUCTIONS",
    "ON_DUPLICATE",
    "JacobianNorms",
    "pairwise_lipschitz",
    "pairwise_lipschitz_cross",
    "jacobian_norms",
]


#: Values of ``reduce`` and ``on_duplicate`` (the core's lists).
REDUCTIONS: tuple[str, ...] = tuple(_core.REDUCTIONS)
ON_DUPLICATE: tuple[str, ...] = tuple(_core.ON_DUPLICATE)
#: The search methods of :func:`pairwise_lipschitz` (the core's list).
PAIRWISE_METHODS: tuple[str, ...] = tuple(_core.PAIRWISE_METHODS)


@dataclass(frozen=True, repr=False)
class PairwiseResult:
    """The extreme ratio ||Y_j - Y_k|| / ||X_j - X_k|| over pairs of points.

    Attributes
    ----------
    value : float
        The max (or min) ratio; inf when two equal X rows have different Y
        rows (``on_duplicate="inf"``); nan when no pair has a ratio (cross
        sets whose pairs are all duplicates).
    pair : tuple of int, or None
        (j, k) attaining it; the smallest such pair on ties.
    top : tuple of (value, j, k)
        The ``top_k`` best pairs, best first.
    pairs_evaluated : int
        Pairs accounted for: n (n - 1) / 2 within a set, n1 n2 across two
        (the tree method examines some and proves the others cannot compete).
    duplicates_skipped : int
        Pairs with X_j == X_k and Y_j == Y_k (no ratio; skipped).
    reduce : str
        "max" or "min".
    duplicate_pair : tuple of int, or None
        The smallest pair with X_j == X_k but Y_j != Y_k (an infinite ratio).
    """

    value: float
    pair: tuple[int, int] | None
    top: tuple[tuple[float, int, int], ...]
    pairs_evaluated: int
    duplicates_skipped: int
    reduce: str
    duplicate_pair: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return (
            f"PairwiseResult({self.reduce}={self.value:.17g}, pair={self.pair}, "
            f"pairs_evaluated={self.pairs_evaluated}, duplicates_skipped={self.duplicates_skipped})"
        )


def _result(raw: dict, reduce: str) -> PairwiseResult:
    top = tuple((float(v), int(j), int(k)) for v, j, k in raw["top"])
    value, pair = (top[0][0], (top[0][1], top[0][2])) if top else (float("nan"), None)
    duplicate = raw["duplicate_pair"]
    return PairwiseResult(value, pair, top, int(raw["pairs_evaluated"]), int(raw["duplicates_skipped"]), reduce,
                          None if duplicate is None else (int(duplicate[0]), int(duplicate[1])))


def best_pairs(entries: list[tuple[float, int, int]], reduce: str, top_k: int) -> list[tuple[float, int, int]]:
    """The `top_k` best (value, j, k) entries, best first, ties to the smallest (j, k):
    the order the C++ kernel uses, so answers from tiles combine exactly."""
    def key(entry: tuple[float, int, int]) -> tuple[float, int, int]:
        value, j, k = entry
        return (-value if reduce == "max" else value, j, k)

    return sorted(entries, key=key)[:top_k]


def check_options(reduce: Any, on_duplicate: Any, top_k: Any) -> tuple[str, str, int]:
    """(reduce, on_duplicate, top_k) checked against the core's lists and limits, for callers
    that must refuse bad options before starting work (the core checks them again)."""
    return (check_choice(reduce, "reduce", REDUCTIONS), check_choice(on_duplicate, "on_duplicate", ON_DUPLICATE),
            as_count(top_k, "top_k"))


def pairwise_lipschitz_or_none(
    X: np.ndarray, Y: np.ndarray, reduce: str = "max", on_duplicate: str = "inf", top_k: int = 1
) -> PairwiseResult:
    """:func:`pairwise_lipschitz` on checked points (``as_point_rows``), except that when every
    pair is a duplicate the result has ``value`` nan and ``pair`` None instead of raising
    :class:`nearid.errors.NoPairError` (as :func:`pairwise_lipschitz_cross` does): answers of
    tiles that are combined later (nearid.dask)."""
    return _result(_core.pairwise_lipschitz(X, Y, *check_options(reduce, on_duplicate, top_k), None, "auto"), reduce)


def pairwise_lipschitz(
    X: Any, Y: Any, reduce: str = "max", on_duplicate: str = "inf", top_k: int = 1, progress: bool = False,
    method: str = "auto",
) -> PairwiseResult:
    """Max (or min) over pairs j < k of ||Y_j - Y_k|| / ||X_j - X_k||.

    With Y = f(X) this is a lower estimate of f's Lipschitz constant (max)
    or an upper estimate of its co-Lipschitz constant (min).

    Parameters
    ----------
    X : array_like, shape (n, dx)
        Inputs, one point per row (n >= 2; a 1-D array is n points in R^1).
    Y : array_like, shape (n, dy)
        Outputs; row j belongs to X[j].
    reduce : {"max", "min"}
    on_duplicate : {"inf", "raise"}
        Pairs with X_j == X_k: equal Y rows are skipped; different Y rows give
        an infinite ratio ("inf", reported with that pair) or a ValueError
        naming the rows ("raise").
    top_k : int
        How many of the best pairs to report.
    progress : bool
        Show a progress bar (optional extra ``progress``, on a terminal only).
    method : {"auto", "brute", "tree"}
        How the answer is found; it is the same either way, bit for bit (value,
        pairs, top-k order, duplicates, ``pairs_evaluated``). "brute" screens
        every pair. "tree" builds a kd-tree over X whose nodes also bound
        their Y values and skips pairs of nodes whose bounds prove that none
        of their pairs can enter the answer (rounding included, ties too);
        ``pairs_evaluated`` counts the skipped pairs as well. The tree is much
        faster in low dimension when high (for max) or low (for min) ratios
        are local, as for a map whose sensitivity varies over the data (38x
        on a steep tanh ridge, n = 1e5, d = 2), up to about 1.25x slower than
        brute force when nearly every pair has a ratio close to the answer (a
        near-linear map), and slower from d = 8 on. "auto" runs the tree for
        n >= 20000 points in dx <= 4 dimensions, brute force otherwise.

    Returns
    -------
    PairwiseResult
    """
    X_, Y_ = as_point_rows(X, "X"), as_point_rows(Y, "Y")
    if X_.shape[0] != Y_.shape[0]:
        raise ValueError(f"X and Y must have the same number of rows (points); got {X_.shape[0]} and {Y_.shape[0]}")
    options = check_options(reduce, on_duplicate, top_k)
    method = check_choice(method, "method", PAIRWISE_METHODS)
    n = X_.shape[0]
    callback, bar = _progress.fraction_callback(n * (n - 1) / 2, "pairs", progress, unit="pair")
    try:
        result = _result(_core.pairwise_lipschitz(X_, Y_, *options, callback, method), reduce)  # the core checks n >= 2
    finally:
        if bar is not None:
            bar.close()
    if result.pair is None:
        raise NoPairError()
    return result


def pairwise_lipschitz_cross(
    X1: Any, Y1: Any, X2: Any, Y2: Any, reduce: str = "max", on_duplicate: str = "inf", top_k: int = 1,
    method: str = "auto",
) -> PairwiseResult:
    """The same ratio over pairs (j, k) with j a row of set 1 and k a row of set 2.

    Large problems can be tiled: the within-set answers of the tiles and the
    cross answers of every pair of tiles combine (max of maxima, ties by the
    global pair) into the answer for the union. Pairs are (j, k) with j
    indexing set 1 and k indexing set 2. When every pair is a duplicate with
    equal outputs, ``value`` is nan and ``pair`` None. `method` is as for
    :func:`pairwise_lipschitz` (the tree search runs on a tree of each set;
    "auto" judges by the smaller set); the answer is the same either way.
    """
    X1_, Y1_, X2_, Y2_ = (as_point_rows(A, name) for A, name in ((X1, "X1"), (Y1, "Y1"), (X2, "X2"), (Y2, "Y2")))
    for a, b, names in ((X1_, Y1_, "X1 and Y1"), (X2_, Y2_, "X2 and Y2")):
        if a.shape[0] != b.shape[0]:
            raise ValueError(f"{names} must have the same number of rows; got {a.shape[0]} and {b.shape[0]}")
    options = check_options(reduce, on_duplicate, top_k)
    method = check_choice(method, "method", PAIRWISE_METHODS)
    return _result(_core.pairwise_lipschitz_cross(X1_, Y1_, X2_, Y2_, *options, method), reduce)


@dataclass(frozen=True, repr=False)
class JacobianNorms:
    """Per-point singular values of a Jacobian J = Df(x).

    Attributes
    ----------
    deviation : ndarray, shape (n,)
        sigma_max(J - I), the local deviation from the identity.
    sigma_max, sigma_min : ndarray, shape (n,)
        Largest and smallest singular values of J.
    """

    deviation: np.ndarray
    sigma_max: np.ndarray
    sigma_min: np.ndarray

    def __repr__(self) -> str:
        return (
            f"JacobianNorms(n={self.deviation.size}, max deviation={self.deviation.max(initial=0):.6g}, "
            f"sigma in [{self.sigma_min.min(initial=np.inf):.6g}, {self.sigma_max.max(initial=0):.6g}])"
        )


def _norms(raw: np.ndarray) -> JacobianNorms:
    return JacobianNorms(raw[:, 0].copy(), raw[:, 1].copy(), raw[:, 2].copy())


def jacobian_norms(f: Map, X: Any) -> JacobianNorms:
    """sigma_max(Df - I), sigma_max(Df) and sigma_min(Df) at each point.

    Parameters
    ----------
    f : nearid map
    X : array_like, shape (n, d) or (d,)

    Returns
    -------
    JacobianNorms
        Arrays of shape (n,) (shape (1,) for one point). Exact SVDs in C++,
        in parallel over points.
    """
    if not isinstance(f, Map):
        raise TypeError(f"f must be a nearid map (nearid.maps.*); got {type(f).__name__}")
    points, _ = as_points(X, f.dim, "X")
    J = f.compiled.jacobian(points)
    return _norms(_core.jacobian_norms(J, None, f.dim))


def quotient_norms(A: np.ndarray, B: np.ndarray | None) -> JacobianNorms:
    """Norms of M = A[r] B[r]^{-1} (or M = A[r] when B is None) for stacks of shape (n, d, d);
    used for layer Jacobians Dh~(a_i u) Dh~(a_{i-1} u)^{-1}."""
    n, d, _ = A.shape
    return _norms(_core.jacobian_norms(A.reshape(n, d * d), None if B is None else B.reshape(n, d * d), d))
