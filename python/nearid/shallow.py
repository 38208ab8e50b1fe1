"""Shallow ReLU networks: parameters against realizations (Berner, Elbrachter & Grohs 2019).

A shallow ReLU network ``f(x) = sum_i a_i relu(w_i . x + b_i) + v . x + c`` on
R^d (:class:`ShallowReLU`) has many parametrizations of one realization (the
function): neurons can be permuted, and ``a relu(z) = (a / l) relu(l z)`` for
``l > 0``. Some parametrizations are degenerate: neurons whose hyperplanes
miss the domain (dead or always active there), two neurons on one hyperplane
with one orientation (parallel), or with opposite orientations (``relu(z) -
relu(-z) = z``: a linear part written with neurons), unbalanced neurons with
tiny outer and large inner weights. :func:`canonical` removes the symmetries
and degeneracies without changing the realization on the domain and reports
them (:class:`DegeneracyReport`); :func:`parameter_distance` measures how far
apart two parametrizations are modulo the symmetries;
:func:`realization_distance` how far apart their functions are, in the sup
norm or the Sobolev norm W^{1,inf} (exactly in d = 1 and d = 2, where the
realizations are affine on the cells of a line arrangement).

Domains are boxes (:class:`Box`) or balls (:class:`Ball`); exact distances
need a box (an interval in d = 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from ._native import core as _core
from ._validation import as_matrix, as_points, as_vector, check_finite

__all__ = [
    "Ball",
    "Box",
    "DegeneracyReport",
    "InverseStability",
    "TrainResult",
    "ParameterDistance",
    "RealizationDistance",
    "ShallowReLU",
    "balance",
    "canonical",
    "degeneracies",
    "inverse_stability",
    "loss_and_grad",
    "parameter_distance",
    "pathologies",
    "pathology",
    "realization_distance",
    "restricted",
    "train",
]


class ShallowReLU:
    """``x -> sum_i a_i relu(w_i . x + b_i) + v . x + c``, R^d -> R.

    Parameters
    ----------
    W : array_like, shape (N, d)
        Inner weights, one neuron per row (w_i).
    b : array_like, shape (N,)
        Inner biases.
    a : array_like, shape (N,)
        Outer weights.
    c : float
        Output offset (default 0).
    v : array_like, shape (d,), optional
        A linear part (default zeros).

    Values and gradients run in C++ over row tiles (no (n, N) array), in
    parallel and without the GIL. At a kink (``w_i . x + b_i = 0``) the
    gradient takes relu'(0) = 0.
    """

    def __init__(self, W: Any, b: Any, a: Any, c: float = 0.0, v: Any = None) -> None:
        W_ = as_matrix(W, "W")
        N, d = W_.shape
        if N == 0 or d == 0:
            raise ValueError(f"W must have shape (N, d) with N, d >= 1; got {W_.shape}")
        b_ = as_vector(b, "b", N)
        a_ = as_vector(a, "a", N)
        v_ = np.zeros(d) if v is None else as_vector(v, "v", d)
        c_ = float(as_vector([c], "c", 1)[0])
        for value in (W_, b_, a_, v_):
            value.setflags(write=False)
        self._W, self._b, self._a, self._v, self._c = W_, b_, a_, v_, c_

    W = property(lambda self: self._W, doc="Inner weights, shape (N, d) (read-only).")
    b = property(lambda self: self._b, doc="Inner biases, shape (N,) (read-only).")
    a = property(lambda self: self._a, doc="Outer weights, shape (N,) (read-only).")
    v = property(lambda self: self._v, doc="Linear part, shape (d,) (read-only).")
    c = property(lambda self: self._c, doc="Output offset.")

    @property
    def width(self) -> int:
        """The number N of neurons."""
        return int(self._W.shape[0])

    @property
    def dim(self) -> int:
        """The input dimension d."""
        return int(self._W.shape[1])

    def _evaluate(self, X: Any, gradients: bool) -> Any:
        points, single = as_points(X, self.dim, "X")
        out = _core.shallow_evaluate(self._W, self._b, self._a, self._v, self._c, points, gradients)
        if gradients:
            values, grads = out
            return (values[0], grads[0]) if single else (values, grads)
        return out[0] if single else out

    def __call__(self, X: Any) -> Any:
        """f(X): X (n, d) gives (n,); one point (d,) gives a float."""
        return self._evaluate(X, False)

    def gradient(self, X: Any) -> np.ndarray:
        """grad f(X): X (n, d) gives (n, d); one point (d,) gives (d,)."""
        return self._evaluate(X, True)[1]

    def value_and_gradient(self, X: Any) -> tuple[Any, np.ndarray]:
        """``(f(X), grad f(X))`` in one pass."""
        return self._evaluate(X, True)  # type: ignore[no-any-return]

    def __reduce__(self) -> Any:
        return (ShallowReLU, (self._W, self._b, self._a, self._c, self._v))

    def __repr__(self) -> str:
        return f"ShallowReLU(width={self.width}, dim={self.dim})"


# ---------------------------------------------------------------- domains


@dataclass(frozen=True)
class Box:
    """The box ``low <= x <= high`` (coordinatewise); in d = 1 an interval."""

    low: np.ndarray
    high: np.ndarray

    def __init__(self, low: Any, high: Any) -> None:
        lo = np.atleast_1d(np.asarray(low, dtype=np.float64))
        hi = np.atleast_1d(np.asarray(high, dtype=np.float64))
        if lo.ndim != 1 or lo.shape != hi.shape:
            raise ValueError(f"low and high must be vectors of one length; got shapes {lo.shape} and {hi.shape}")
        check_finite(lo, "low")
        check_finite(hi, "high")
        if not np.all(lo < hi):
            raise ValueError("the box needs low < high in every coordinate")
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)

    @property
    def dim(self) -> int:
        return int(self.low.size)

    def ranges(self, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """min and max of w_i . x + b_i over the box, per neuron."""
        mid, rad = (self.low + self.high) / 2, (self.high - self.low) / 2
        centre = W @ mid + b
        reach = np.abs(W) @ rad
        return centre - reach, centre + reach


@dataclass(frozen=True)
class Ball:
    """The closed ball ``||x - center|| <= radius``."""

    center: np.ndarray
    radius: float

    def __init__(self, center: Any, radius: float) -> None:
        c = np.atleast_1d(np.asarray(center, dtype=np.float64))
        check_finite(c, "center")
        r = float(radius)
        if not (np.isfinite(r) and r > 0):
            raise ValueError(f"radius must be a finite number > 0; got {radius!r}")
        object.__setattr__(self, "center", c)
        object.__setattr__(self, "radius", r)

    @property
    def dim(self) -> int:
        return int(self.center.size)

    def ranges(self, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """min and max of w_i . x + b_i over the ball, per neuron."""
        centre = W @ self.center + b
        reach = np.linalg.norm(W, axis=1) * self.radius
        return centre - reach, centre + reach


def _as_domain(domain: Any, d: int) -> Box | Ball:
    if isinstance(domain, (Box, Ball)):
        out = domain
    elif isinstance(domain, tuple) and len(domain) == 2:
        out = Box(*domain)
    else:
        raise TypeError("domain must be a nearid.shallow.Box, a Ball or a (low, high) pair; got "
                        f"{type(domain).__name__}")
    if out.dim != d:
        raise ValueError(f"the domain has dimension {out.dim} but the network's inputs have d = {d}")
    return out


def _as_net(net: Any, name: str = "net") -> ShallowReLU:
    if not isinstance(net, ShallowReLU):
        raise TypeError(f"{name} must be a nearid.shallow.ShallowReLU; got {type(net).__name__}")
    return net


# ---------------------------------------------------------------- symmetries and degeneracies


def balance(net: ShallowReLU) -> ShallowReLU:
    """The same realization with every neuron balanced: ``|a_i| = ||(w_i, b_i)||``.

    Each neuron is rescaled by the positive homogeneity of relu, ``a relu(z) =
    (a / l) relu(l z)`` with ``l = sqrt(|a_i| / ||(w_i, b_i)||)``; a neuron with
    ``a_i = 0`` or ``(w_i, b_i) = 0`` computes 0 and becomes all zeros.
    """
    net = _as_net(net)
    inner = np.hypot(np.linalg.norm(net.W, axis=1), net.b)
    alive = (inner > 0) & (net.a != 0)
    scale = np.zeros_like(inner)
    scale[alive] = np.sqrt(np.abs(net.a[alive]) / inner[alive])
    a = np.zeros_like(net.a)
    a[alive] = net.a[alive] / scale[alive]
    return ShallowReLU(net.W * scale[:, None], net.b * scale, a, net.c, net.v)


@dataclass(frozen=True)
class DegeneracyReport:
    """The degeneracies of a parametrization on a domain (indices into the network's neurons).

    Attributes
    ----------
    unbalanced : tuple of int
        ``|a_i|`` differs from ``||(w_i, b_i)||`` by more than the tolerance.
    parallel_pairs : tuple of (int, int)
        Two neurons on one hyperplane with one orientation: their sum is one neuron.
    opposite_pairs : tuple of (int, int)
        One hyperplane, opposite orientations: ``relu(z) - relu(-z) = z``, a linear part written with
        neurons.
    dead : tuple of int
        ``w_i . x + b_i <= 0`` on the whole domain: the neuron computes 0 there.
    always_active : tuple of int
        ``w_i . x + b_i >= 0`` on the whole domain: the neuron is affine there.
    zero : tuple of int
        ``a_i = 0`` or ``(w_i, b_i) = 0``.
    tiny_outer : tuple of int
        ``|a_i|`` below ``tiny`` times the largest ``|a_j|`` while ``||(w_i, b_i)||`` is above
        ``1 / tiny`` times the smallest nonzero ``||(w_j, b_j)||``: a neuron that barely shows in
        the realization but dominates the parameters.
    """

    unbalanced: tuple[int, ...]
    parallel_pairs: tuple[tuple[int, int], ...]
    opposite_pairs: tuple[tuple[int, int], ...]
    dead: tuple[int, ...]
    always_active: tuple[int, ...]
    zero: tuple[int, ...]
    tiny_outer: tuple[int, ...]

    @property
    def degenerate(self) -> bool:
        """True when any degeneracy other than imbalance was found."""
        return bool(self.parallel_pairs or self.opposite_pairs or self.dead or self.always_active or self.zero
                    or self.tiny_outer)

    def __repr__(self) -> str:
        parts = [f"{name}={len(getattr(self, name))}" for name in
                 ("unbalanced", "parallel_pairs", "opposite_pairs", "dead", "always_active", "zero", "tiny_outer")]
        return f"DegeneracyReport({', '.join(parts)})"


def _directions(net: ShallowReLU) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors u_i = (w_i, b_i) / ||(w_i, b_i)|| (rows; zero rows for zero neurons) and the norms."""
    inner = np.hstack([net.W, net.b[:, None]])
    norms = np.linalg.norm(inner, axis=1)
    units = np.zeros_like(inner)
    units[norms > 0] = inner[norms > 0] / norms[norms > 0, None]
    return units, norms


def _groups(units: np.ndarray, keep: np.ndarray, tol: float) -> list[list[int]]:
    """Neurons (among `keep`) whose unit vectors agree within `tol` (max norm) with their group's
    first member, in groups (one vectorised comparison per group)."""
    idx = np.flatnonzero(keep)
    U = units[idx]
    free = np.ones(len(idx), dtype=bool)
    groups: list[list[int]] = []
    for i in range(len(idx)):
        if not free[i]:
            continue
        members = np.flatnonzero(free & (np.max(np.abs(U - U[i]), axis=1) <= tol))
        free[members] = False
        groups.append([int(idx[m]) for m in members])
    return groups


def _opposites(units: np.ndarray, idx: np.ndarray, tol: float) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j in `idx`, whose unit vectors are opposite within `tol`."""
    U = units[idx]
    pairs = []
    for k in range(len(idx)):
        for m in np.flatnonzero(np.max(np.abs(U[k + 1:] + U[k]), axis=1) <= tol):
            pairs.append((int(idx[k]), int(idx[k + 1 + m])))
    return pairs


def degeneracies(net: ShallowReLU, domain: Any, tol: float = 1e-12, tiny: float = 1e-6) -> DegeneracyReport:
    """The :class:`DegeneracyReport` of `net` on `domain` (see :func:`canonical`)."""
    net = _as_net(net)
    dom = _as_domain(domain, net.dim)
    units, norms = _directions(net)
    zero = (norms == 0) | (net.a == 0)
    low, high = dom.ranges(net.W, net.b)
    dead = ~zero & (high <= 0)
    active = ~zero & (low >= 0)
    live = ~zero
    scale = max(float(np.max(np.abs(net.a), initial=0)), float(np.max(norms, initial=0)), 1e-300)
    unbalanced = live & (np.abs(np.abs(net.a) - norms) > tol * scale)
    parallel = [(g[0], j) for g in _groups(units, live, tol) for j in g[1:]]
    opposite = _opposites(units, np.flatnonzero(live), tol)
    big_a = float(np.max(np.abs(net.a), initial=0))
    small_w = float(np.min(norms[norms > 0], initial=np.inf))
    tiny_outer = live & (np.abs(net.a) < tiny * big_a) & (norms > small_w / tiny)
    as_tuple = lambda mask: tuple(int(i) for i in np.flatnonzero(mask))  # noqa: E731
    return DegeneracyReport(as_tuple(unbalanced), tuple(parallel), tuple(opposite), as_tuple(dead),
                            as_tuple(active), as_tuple(zero), as_tuple(tiny_outer))


def canonical(net: ShallowReLU, domain: Any, tol: float = 1e-12) -> tuple[ShallowReLU, DegeneracyReport]:
    """A canonical parametrization of net's realization on `domain`, and the degeneracies removed.

    In order: neurons with ``a_i = 0`` or ``(w_i, b_i) = 0`` and neurons dead on the domain are
    dropped; neurons always active on it become part of the affine part (``a_i (w_i . x + b_i)``);
    neurons on one hyperplane with one orientation are merged (``(w_i, b_i) = l (w_j, b_j)``,
    ``l > 0``, within `tol` after normalisation); of two opposite neurons the second is written as
    the first minus a linear part (``relu(-z) = relu(z) - z``) and merged into it; every remaining
    neuron is balanced (``|a_i| = ||(w_i, b_i)||``) and the neurons are sorted by their unit
    vectors ``(w_i, b_i) / ||(w_i, b_i)||``. On the domain the realization is unchanged up to
    rounding (merging within `tol` > 0 changes it by at most ``tol`` times the merged weights).

    Returns
    -------
    (ShallowReLU, DegeneracyReport)
        The canonical net (possibly with fewer neurons; at least one, a zero neuron when nothing
        is left) and the report of the given net.
    """
    net = _as_net(net)
    report = degeneracies(net, domain, tol)
    units, norms = _directions(net)
    d = net.dim
    v, c = net.v.copy(), net.c
    keep = np.ones(net.width, dtype=bool)
    keep[list(report.zero) + list(report.dead)] = False
    for i in report.always_active:
        v += net.a[i] * net.W[i]
        c += net.a[i] * net.b[i]
        keep[i] = False
    # Coefficients on unit neurons: a_i relu(n_i u_i . (x, 1)) = (a_i n_i) relu(u_i . (x, 1)).
    weight = net.a * norms
    merged: list[tuple[np.ndarray, float]] = []
    for group in _groups(units, keep, tol):
        merged.append((units[group[0]], float(np.sum(weight[group]))))
    # Opposite pairs: alpha relu(z) + beta relu(-z) = (alpha + beta) relu(z) - beta z, z = u . (x, 1).
    out: list[tuple[np.ndarray, float]] = []
    used = np.zeros(len(merged), dtype=bool)
    merged_units = np.array([u for u, _ in merged]).reshape(len(merged), d + 1)
    for i, (u, alpha) in enumerate(merged):
        if used[i]:
            continue
        used[i] = True
        for j in np.flatnonzero(~used & (np.max(np.abs(merged_units + u), axis=1) <= tol)):
            beta = merged[j][1]
            used[j] = True
            alpha += beta
            v -= beta * u[:d]
            c -= beta * u[d]
        # One orientation per hyperplane: the one whose first nonzero entry is positive.
        first = u[np.flatnonzero(u)[0]] if np.any(u) else 1.0
        if first < 0:
            # alpha relu(z) = alpha relu(-(-z)) = alpha (relu(-z) + z)
            v += alpha * u[:d]
            c += alpha * u[d]
            u = -u
        if alpha != 0:
            out.append((u, alpha))
    out.sort(key=lambda item: tuple(item[0]))
    if not out:
        return ShallowReLU(np.zeros((1, d)), np.zeros(1), np.zeros(1), c, v), report
    U = np.array([u for u, _ in out])
    alphas = np.array([alpha for _, alpha in out])
    root = np.sqrt(np.abs(alphas))
    return ShallowReLU(U[:, :d] * root[:, None], U[:, d] * root, np.sign(alphas) * root, c, v), report


def restricted(net: ShallowReLU, domain: Any, tol: float = 1e-12) -> bool:
    """True when `net` lies in the restricted set on which inverse stability holds.

    The conditions, as nearid's design notes (DESIGN section 8) summarise Berner, Elbrachter &
    Grohs (2019), Theorem 3.1 (the paper's full text was not at hand when this was written, so
    the theorem's exact constants, such as how far apart the directions must be, are not
    checked): every neuron balanced (``|a_i| = ||(w_i, b_i)||`` within `tol`) and nonzero, no two
    neurons parallel or opposite (their unit vectors ``(w_i, b_i) / ||(w_i, b_i)||`` differ, and
    differ from each other's negatives, by more than `tol`), and every hyperplane
    ``w_i . x + b_i = 0`` meets the interior of the domain (no neuron dead or always active there).
    """
    report = degeneracies(net, domain, tol)
    return not (report.unbalanced or report.degenerate)


# ---------------------------------------------------------------- distances


@dataclass(frozen=True)
class ParameterDistance:
    """The distance between two parametrizations modulo permutations and positive rescaling.

    Attributes
    ----------
    distance : float
        ``sqrt(min over matchings of sum ||theta_i - theta'_j||^2 + ||v - v'||^2 + (c - c')^2)``
        with ``theta_i = (w_i, b_i, a_i)`` of the balanced nets.
    matching : ndarray, shape (K, 2)
        Matched neuron indices (i in net1, j in net2); -1 for a padding zero neuron.
    """

    distance: float
    matching: np.ndarray


def parameter_distance(net1: ShallowReLU, net2: ShallowReLU) -> ParameterDistance:
    """The distance between the parametrizations of two shallow ReLU nets modulo their symmetries.

    Both nets are balanced (:func:`balance`: the representative of each neuron's rescaling
    orbit), the smaller is padded with zero neurons, and the neurons are matched by an optimal
    assignment (``scipy.optimize.linear_sum_assignment``) of the squared Euclidean distances
    between ``(w_i, b_i, a_i)``; the affine parts add ``||v - v'||^2 + (c - c')^2``. Exact for this
    definition: 0 between a net and any permuted, positively rescaled copy, and symmetric.
    """
    from scipy.optimize import linear_sum_assignment

    n1, n2 = balance(_as_net(net1, "net1")), balance(_as_net(net2, "net2"))
    if n1.dim != n2.dim:
        raise ValueError(f"the nets have different input dimensions: {n1.dim} and {n2.dim}")
    theta1 = np.hstack([n1.W, n1.b[:, None], n1.a[:, None]])
    theta2 = np.hstack([n2.W, n2.b[:, None], n2.a[:, None]])
    size = max(len(theta1), len(theta2))
    padded1 = np.vstack([theta1, np.zeros((size - len(theta1), theta1.shape[1]))])
    padded2 = np.vstack([theta2, np.zeros((size - len(theta2), theta2.shape[1]))])
    cost = np.sum((padded1[:, None, :] - padded2[None, :, :]) ** 2, axis=2)
    rows, cols = linear_sum_assignment(cost)
    total = float(cost[rows, cols].sum() + np.sum((n1.v - n2.v) ** 2) + (n1.c - n2.c) ** 2)
    matching = np.stack([np.where(rows < len(theta1), rows, -1), np.where(cols < len(theta2), cols, -1)], axis=1)
    return ParameterDistance(float(np.sqrt(total)), matching)


@dataclass(frozen=True)
class RealizationDistance:
    """The distance between two realizations on a domain.

    Attributes
    ----------
    value : float
        The distance when ``exact``; otherwise ``upper`` (a bound, never an estimate).
    lower, upper : float
        Bounds: equal to ``value`` when exact (up to rounding).
    exact : bool
        True in d = 1 and d = 2 on a box (a maximum over the vertices and cells of the
        hyperplane arrangement).
    norm : str
        ``"sup"`` (sup |f1 - f2|) or ``"sobolev"`` (max of that and sup ||grad f1 - grad f2||).
    witness : ndarray, shape (d,)
        A point where the lower bound is attained (for the Sobolev norm: of whichever part is larger).
    sup_gradient : float or None
        For the Sobolev norm and exact distances: ess sup ||grad f1 - grad f2|| alone.
    """

    value: float
    lower: float
    upper: float
    exact: bool
    norm: str
    witness: np.ndarray
    sup_gradient: float | None = None


def _difference(net1: ShallowReLU, net2: ShallowReLU) -> ShallowReLU:
    """f1 - f2 as one shallow net (the neurons of both)."""
    return ShallowReLU(np.vstack([net1.W, net2.W]), np.concatenate([net1.b, net2.b]),
                       np.concatenate([net1.a, -net2.a]), net1.c - net2.c, net1.v - net2.v)


_UNIT = 2.0**-53


def _step_up(x: float, ulps: int = 2) -> float:
    for _ in range(ulps):
        x = math.nextafter(x, math.inf)
    return x


def _lipschitz_upper(g: ShallowReLU) -> float:
    """An upper bound on sum |a_i| ||w_i|| + ||v||, rounding included (each term and the sum are
    within (N + d + 4) u of the float64 result, u = 2^-53)."""
    N, d = g.W.shape
    total = float(np.sum(np.abs(g.a) * np.linalg.norm(g.W, axis=1)) + np.linalg.norm(g.v))
    return _step_up(total * (1 + 4 * (N + d + 4) * _UNIT))


def _evaluation_error(g: ShallowReLU, x: np.ndarray) -> float:
    """An upper bound on |g(x) - fl(g(x))|: (N + d + 4) u times the sum of the magnitudes of every term."""
    N, d = g.W.shape
    magnitude = float(np.abs(g.a) @ (np.abs(g.W) @ np.abs(x) + np.abs(g.b)) + np.abs(g.v) @ np.abs(x) + abs(g.c))
    return _step_up(magnitude * 4 * (N + d + 4) * _UNIT)


def _ascend(g: ShallowReLU, domain: Box | Ball, start: np.ndarray, reach: float) -> tuple[np.ndarray, float]:
    """Compass search for a larger |g| from `start`, steps reach/8 down to reach/2^12, inside the domain."""
    point, value = start.copy(), abs(float(g(start)))
    step = reach / 8
    while step > reach / 4096:
        improved = False
        for axis in range(point.size):
            for sign in (1.0, -1.0):
                trial = point.copy()
                trial[axis] += sign * step
                if isinstance(domain, Box):
                    trial = np.clip(trial, domain.low, domain.high)
                else:
                    offset = trial - domain.center
                    norm = float(np.linalg.norm(offset))
                    if norm > domain.radius:
                        trial = domain.center + offset * (domain.radius / norm)
                v = abs(float(g(trial)))
                if v > value:
                    point, value, improved = trial, v, True
        if not improved:
            step /= 2
    return point, value


def realization_distance(net1: ShallowReLU, net2: ShallowReLU, domain: Any, norm: str = "sup",
                         n_samples: int = 100_000, seed: int = 0) -> RealizationDistance:
    """The distance between the realizations of two shallow ReLU nets on a domain.

    Parameters
    ----------
    net1, net2 : ShallowReLU
        Of one input dimension d.
    domain : Box, Ball or (low, high)
    norm : {"sup", "sobolev"}
        ``sup |f1 - f2|``, or the W^{1,inf} norm ``max(sup |f1 - f2|, ess sup ||grad f1 - grad f2||)``.
    n_samples, seed : int
        For d > 2 (or a ball): random points of the domain for the lower bound.

    Returns
    -------
    RealizationDistance
        Exact in d = 1 and d = 2 on a box: f1 - f2 is affine on every cell of the arrangement of
        the 2N hyperplanes, so sup |f1 - f2| is a maximum over the cells' vertices and the gradient
        is one vector per cell (computed in C++, every vertex visited once, O(N^3) time and O(N)
        memory, in parallel, Ctrl-C honoured; witness ties go to the first vertex found).
        Otherwise ``exact`` is False and [lower, upper] holds the distance:
        lower is attained (the samples, then a local ascent of |f1 - f2| from the best five; the
        point is ``witness``), upper is a bound, coarse but sound: ``|g(x0)| + L r`` for the
        domain's centre x0, its radius r (the box's half diagonal) and L = sum |a_i| ||w_i|| +
        ||v|| over the neurons of g = f1 - f2 (which also bounds ||grad g||), every rounding
        error of float64 added.
    """
    n1, n2 = _as_net(net1, "net1"), _as_net(net2, "net2")
    if n1.dim != n2.dim:
        raise ValueError(f"the nets have different input dimensions: {n1.dim} and {n2.dim}")
    if norm not in ("sup", "sobolev"):
        raise ValueError(f"norm must be 'sup' or 'sobolev'; got {norm!r}")
    dom = _as_domain(domain, n1.dim)
    g = _difference(n1, n2)
    d = g.dim
    if isinstance(dom, Box) and d in (1, 2):
        # In C++: every vertex of the arrangement visited once (memory O(N)), the cells found around
        # each. A 1-D net is the 2-D net of the strip [low, high] x [0, 1] whose lines are vertical.
        W, low, high = g.W, dom.low, dom.high
        if d == 1:
            W, low, high = np.hstack([W, np.zeros_like(W)]), np.array([low[0], 0.0]), np.array([high[0], 1.0])
        v = np.append(g.v, 0.0) if d == 1 else g.v
        value, at, gradient, gradient_at = _core.arrangement_max_2d(W, g.b, g.a, v, g.c, low, high, norm == "sobolev")
        witness = np.array(at[:d])
        sup_gradient = float(gradient) if norm == "sobolev" else None
        if norm == "sobolev" and gradient > value:
            value, witness = gradient, np.array(gradient_at[:d])
        return RealizationDistance(float(value), float(value), float(value), True, norm, witness, sup_gradient)
    rng = np.random.default_rng(seed)
    if isinstance(dom, Box):
        X = dom.low + (dom.high - dom.low) * rng.random((n_samples, d))
        x0 = (dom.low + dom.high) / 2
        reach = float(np.linalg.norm(dom.high - dom.low)) / 2  # max ||x - x0|| over the box
    else:
        X = rng.standard_normal((n_samples, d))
        X *= dom.radius * rng.random((n_samples, 1)) ** (1 / d) / np.linalg.norm(X, axis=1, keepdims=True)
        X += dom.center
        x0, reach = dom.center, dom.radius
    values, grads = g.value_and_gradient(X)
    lower_value = np.abs(values)
    k = int(np.argmax(lower_value))
    lower, witness = float(lower_value[k]), X[k]
    # Local ascent of |g| from the best samples (compass steps, kept inside the domain).
    for start in X[np.argsort(lower_value)[-5:]]:
        point, value = _ascend(g, dom, start, reach)
        if value > lower:
            lower, witness = value, point
    # A bound, with every rounding error accounted for: |g(x)| <= |g(x0)| + L ||x - x0||, where
    # L = sum |a_i| ||w_i|| + ||v|| bounds the Lipschitz constant of g.
    upper = _step_up(abs(float(g(x0))) + _evaluation_error(g, x0) + _step_up(_lipschitz_upper(g) * _step_up(reach)))
    if norm == "sobolev":
        gradient_norms = np.linalg.norm(grads, axis=1)
        j = int(np.argmax(gradient_norms))
        if gradient_norms[j] > lower:
            lower, witness = float(gradient_norms[j]), X[j]
        upper = max(upper, _lipschitz_upper(g))  # ||grad g|| <= L everywhere
    return RealizationDistance(upper, lower, upper, False, norm, np.asarray(witness, dtype=float))


# ---------------------------------------------------------------- pathologies and inverse stability


def _unit_neuron(d: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    return w, float(rng.uniform(-0.3, 0.3))


def _pathology_opposite(t: float, d: int, rng: np.random.Generator) -> tuple[ShallowReLU, ShallowReLU]:
    # (1/t) (relu(z) - relu(-z)) - (1/t) z = 0: a zero realization with parameters of size 1/sqrt(t).
    w, b = _unit_neuron(d, rng)
    net = ShallowReLU(np.stack([w, -w]), [b, -b], [1 / t, -1 / t], -b / t, -w / t)
    return net, ShallowReLU(np.zeros((1, d)), [0.0], [0.0])


def _pathology_parallel(t: float, d: int, rng: np.random.Generator) -> tuple[ShallowReLU, ShallowReLU]:
    # (1/t) relu(z) - (1/t - 1) relu(z) = relu(z): two neurons on one hyperplane and orientation.
    w, b = _unit_neuron(d, rng)
    net = ShallowReLU(np.stack([w, 2 * w]), [b, 2 * b], [1 / t, -(1 / t - 1) / 2])
    return net, ShallowReLU(w[None, :], [b], [1.0])


def _pathology_dead(t: float, d: int, rng: np.random.Generator) -> tuple[ShallowReLU, ShallowReLU]:
    # A neuron whose hyperplane misses the unit ball (w . x + b <= 0 there) with outer weight 1/t.
    w, b = _unit_neuron(d, rng)
    u, _ = _unit_neuron(d, rng)
    reference = ShallowReLU(w[None, :], [b], [1.0])
    return ShallowReLU(np.stack([w, u / t]), [b, -2.0 / t], [1.0, 1 / t]), reference


def _pathology_always_active(t: float, d: int, rng: np.random.Generator) -> tuple[ShallowReLU, ShallowReLU]:
    # A neuron active on the whole unit ball, cancelled by the linear part: affine written with a neuron.
    w, b = _unit_neuron(d, rng)
    u, _ = _unit_neuron(d, rng)
    reference = ShallowReLU(w[None, :], [b], [1.0])
    net = ShallowReLU(np.stack([w, u / t]), [b, 2.0 / t], [1.0, 1 / t], -2.0 / t**2, -u / t**2)
    return net, reference


#: The pathologies of the parametrization (Berner, Elbrachter & Grohs 2019, section 2) by name
#: (read-only; :func:`pathology` builds one), each a
#: family ``t -> (net_t, reference)`` on the unit ball (or the box [-1, 1]^d) with realizations
#: equal on the domain for every t > 0 (distance 0 up to rounding) while the parameter distance
#: modulo symmetries grows without bound as t -> 0 (like t^(-1/2) for parallel, t^(-1) for
#: opposite and dead, t^(-2) for always active): no bound of the parameter distance by the
#: realization distance holds near such nets.
pathologies: Mapping[str, Callable[[float, int, np.random.Generator], tuple[ShallowReLU, ShallowReLU]]] = \
    MappingProxyType({
        "opposite": _pathology_opposite,
        "parallel": _pathology_parallel,
        "dead": _pathology_dead,
        "always_active": _pathology_always_active,
    })


def pathology(name: str, t: float, d: int = 2, seed: int = 0) -> tuple[ShallowReLU, ShallowReLU]:
    """``(net_t, reference)`` of the pathology `name` (a key of :data:`pathologies`) at t > 0 in R^d."""
    if name not in pathologies:
        raise ValueError(f"name must be one of {', '.join(repr(k) for k in pathologies)}; got {name!r}")
    t = float(t)
    if not (np.isfinite(t) and t > 0):
        raise ValueError(f"t must be a finite number > 0; got {t!r}")
    return pathologies[name](t, int(d), np.random.default_rng(seed))


@dataclass(frozen=True)
class InverseStability:
    """Parameter distances against realization distances over random perturbations of a net.

    Attributes
    ----------
    parameter_distances, realization_distances : ndarray, shape (n,)
        Per perturbation: the parameter distance modulo symmetries (:func:`parameter_distance`)
        and the realization distance (:func:`realization_distance`, Sobolev norm) from the net.
    constant, exponent : float
        The least-squares fit ``parameter ~ constant * realization ** exponent`` (on logs).
    max_ratio : float
        The largest parameter / realization ratio: bounded for nets in the restricted set.
    """

    parameter_distances: np.ndarray
    realization_distances: np.ndarray
    constant: float
    exponent: float
    max_ratio: float

    def __repr__(self) -> str:
        return (f"InverseStability(parameter ~ {self.constant:.4g} * realization^{self.exponent:.3f}, max ratio "
                f"{self.max_ratio:.4g}, {self.parameter_distances.size} perturbations)")


def _degenerate_move(net: ShallowReLU, report: DegeneracyReport, step: float, rng: np.random.Generator) -> ShallowReLU:
    """A move of size `step` along one of the net's degeneracies that keeps its realization on the
    domain (up to rounding): an outer weight of a dead neuron; an always-active neuron's outer
    weight with the affine part compensating; weight moved between two parallel neurons; between
    two opposite neurons with the affine part compensating."""
    W, b, a, v, c = net.W.copy(), net.b.copy(), net.a.copy(), net.v.copy(), net.c
    norms = np.hypot(np.linalg.norm(W, axis=1), b)
    kinds = [k for k in ("dead", "always_active", "parallel_pairs", "opposite_pairs") if getattr(report, k)]
    kind = kinds[int(rng.integers(len(kinds)))]
    chosen = getattr(report, kind)[int(rng.integers(len(getattr(report, kind))))]
    if kind == "dead":
        a[chosen] += step
    elif kind == "always_active":
        a[chosen] += step
        v -= step * W[chosen]
        c -= step * b[chosen]
    else:
        i, j = chosen
        ratio = norms[j] / norms[i]  # (w_j, b_j) = +-ratio (w_i, b_i)
        # Parallel: a_i relu(z) + a_j relu(ratio z) keeps a_i + ratio a_j. Opposite: a_j relu(-ratio z)
        # = a_j ratio (relu(z) - z), so a_i + ratio a_j is kept and the linear part -step ratio z given back.
        a[j] += step
        a[i] -= step * ratio
        if kind == "opposite_pairs":
            v += step * ratio * W[i]
            c += step * ratio * b[i]
    return ShallowReLU(W, b, a, c, v)


def inverse_stability(net: ShallowReLU, domain: Any, scale: float = 0.1, n_perturbations: int = 32,
                      seed: int = 0, norm: str = "sobolev") -> InverseStability:
    """Measure inverse stability near `net`: perturb its parameters (relative sizes log-spaced from
    ``scale * 1e-3`` to `scale`), realize, and compare the parameter distance modulo symmetries with
    the realization distance on `domain` in `norm` ("sobolev": W^{1,inf}, or "sup"), exact in d <= 2
    on a box; otherwise the upper bound, so the ratios are then lower estimates.

    Perturbations are random directions; when the net has degeneracies on the domain
    (:func:`degeneracies`: dead, always-active, parallel or opposite neurons), every second one
    moves along a degeneracy instead, which keeps the realization: the ratios then blow up (to
    the rounding level), the failure of inverse stability. Near nets in the restricted set there
    is no such move and the ratios stay bounded. In W^{1,inf} moving a hyperplane at all changes
    the gradient by ``|a_i| ||w_i||`` on a sliver, so the realization distance stays of order 1
    and the ratios go to 0 with the perturbation; the sup norm shows the linear relation."""
    net = _as_net(net)
    _as_domain(domain, net.dim)
    report = degeneracies(net, domain)
    degenerate = bool(report.dead or report.always_active or report.parallel_pairs or report.opposite_pairs)
    rng = np.random.default_rng(seed)
    sizes = np.geomspace(scale * 1e-3, scale, int(n_perturbations))
    size_of = max(float(np.max(np.abs(net.W))), float(np.max(np.abs(net.a))), 1e-300)
    params, reals = [], []
    for k, s in enumerate(sizes):
        step = s * size_of
        if degenerate and k % 2 == 1:
            other = _degenerate_move(net, report, step, rng)
        else:
            other = ShallowReLU(net.W + step * rng.standard_normal(net.W.shape),
                                net.b + step * rng.standard_normal(net.width),
                                net.a + step * rng.standard_normal(net.width), net.c, net.v)
        params.append(parameter_distance(net, other).distance)
        reals.append(realization_distance(net, other, domain, norm).value)
    P, R = np.array(params), np.array(reals)
    ok = (P > 0) & (R > 0)
    exponent, log_constant = np.polyfit(np.log(R[ok]), np.log(P[ok]), 1) if ok.sum() >= 2 else (np.nan, np.nan)
    ratios = np.where(R > 0, P / np.where(R > 0, R, 1), np.inf)
    return InverseStability(P, R, float(np.exp(log_constant)), float(exponent), float(np.max(ratios)))


# ---------------------------------------------------------------- training, plain or restricted


def loss_and_grad(net: ShallowReLU, X: Any, y: Any) -> tuple[float, dict[str, Any]]:
    """``Q = (1/2n) sum_r (f(x_r) - y_r)^2`` and its gradient with respect to W, b, a, v and c
    (a dict of arrays of their shapes; relu'(0) = 0)."""
    net = _as_net(net)
    X_ = as_matrix(X, "X", (None, net.dim))
    y_ = as_vector(y, "y", X_.shape[0])
    if X_.shape[0] == 0:
        raise ValueError("X and y need at least one row")
    Z = X_ @ net.W.T + net.b
    S_ = np.maximum(Z, 0)
    r = (S_ @ net.a + X_ @ net.v + net.c - y_) / X_.shape[0]
    active = (Z > 0) * net.a  # (n, N): a_i relu'(z_i)
    loss = 0.5 * float(np.sum(r * r)) * X_.shape[0]
    grads = {"W": (active * r[:, None]).T @ X_, "b": r @ active, "a": r @ S_, "v": r @ X_, "c": float(r.sum())}
    return loss, grads


@dataclass(frozen=True)
class TrainResult:
    """Gradient descent on a shallow ReLU net (:func:`train`).

    Attributes
    ----------
    net : ShallowReLU
        The final network.
    losses : ndarray, shape (steps + 1,)
        Q before the first step and after every step.
    widths : ndarray, shape (steps + 1,)
        The number of neurons (projection onto the restricted set may merge or drop some).
    """

    net: ShallowReLU
    losses: np.ndarray
    widths: np.ndarray

    def __repr__(self) -> str:
        return (f"TrainResult(loss {self.losses[0]:.4g} -> {self.losses[-1]:.4g} in {self.losses.size - 1} steps, "
                f"width {self.widths[0]} -> {self.widths[-1]})")


def train(net: ShallowReLU, X: Any, y: Any, steps: int = 500, lr: float = 0.05, project: Any = None) -> TrainResult:
    """Plain gradient descent on Q (:func:`loss_and_grad`), or, with `project` a domain, gradient
    descent projected onto the restricted set after every step: the net is replaced by its
    :func:`canonical` form on the domain (balanced; parallel and opposite neurons merged; dead
    neurons dropped and always-active ones folded into the affine part). The projection never
    changes the realization on the domain, so it costs nothing in expressive power there."""
    from ._validation import as_count, as_positive

    net = _as_net(net)
    steps = as_count(steps, "steps", minimum=0)
    lr = as_positive(lr, "lr")
    domain = None if project is None else _as_domain(project, net.dim)
    losses, widths = [], []
    loss, grads = loss_and_grad(net, X, y)
    losses.append(loss)
    widths.append(net.width)
    for _ in range(steps):
        net = ShallowReLU(net.W - lr * grads["W"], net.b - lr * grads["b"], net.a - lr * grads["a"],
                          net.c - lr * grads["c"], net.v - lr * grads["v"])
        if domain is not None:
            net = canonical(net, domain)[0]
        loss, grads = loss_and_grad(net, X, y)
        losses.append(loss)
        widths.append(net.width)
    return TrainResult(net, np.array(losses), np.array(widths))
