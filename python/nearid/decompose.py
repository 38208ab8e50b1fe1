"""Exact decomposition of a smooth invertible map into near-identity layers.

Following Bartlett, Evans & Long (2018), Theorems 1-2 (docs/theory.md), a map
h with det Dh(x0) > 0 is written on the ball B_R(x0) as

    h = F_{m'} o ... o F_1 o h_m o ... o h_1,

- normalisation: J0 = Dh(x0), h~(z) = J0^{-1} (h(z + x0) - h(x0)), so that
  h~(0) = 0 and Dh~(0) = I;
- nonlinear layers: g_i(z) = h~(a_i z) / a_i for scales
  0 < a_1 < ... < a_m = 1, h_1 = g_1, h_i = g_i o g_{i-1}^{-1};
- linear layers: Hardt-Ma factors F_m' ... F_1 = J0;
- the translation by x0 folds into h_1 and the one by h(x0) into the last
  layer, so applying :attr:`Decomposition.layers` in turn reproduces h.

Evaluating a run of nonlinear layers i..j telescopes to g_j o g_{i-1}^{-1}:
at most one inversion, solved in C++ (fixed point, Anderson, Newton).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

import numpy as np

from . import bounds, schedules
from ._native import core as _core
from ._validation import as_count, as_index, as_points, as_positive, as_seed, as_vector, check_choice, is_real_scalar
from .bounds import Constants
from .certification import FORMULA_MARGIN, DecompositionCertificate, certify_decomposition_layers
from .errors import EstimateWarning, VacuousBoundWarning
from .inversion import METHODS, raise_unless_converged, solve
from .linear import hardt_ma, hardt_ma_bound
from .lipschitz import pairwise_lipschitz
from .maps import Affine, Chain, Inverse, Labelled, Map
from .scaled import Normalised, jacobian_deviations, sample_for_deviations

__all__ = ["Decomposition", "DecompositionSpec", "InversionSettings", "decompose"]


@dataclass(frozen=True, repr=False)
class LayerDeviations:
    """Measured ||h_i - Id||_Lip for every layer of a decomposition.

    Attributes
    ----------
    values : ndarray, shape (len(dec.layers),)
        One estimate per layer, nonlinear layers first. Sample estimates of a
        supremum: lower estimates of the true constants.
    method : str
        "pairwise" or "jacobian".
    n_samples : int
    epsilon_bound : float
        The decomposition's bound on the nonlinear layers (for comparison).
    m : int
        Number of nonlinear layers.
    bound_status : str
        "proven" or "estimated": see :attr:`Decomposition.bound_status`.
    """

    values: np.ndarray
    method: str
    n_samples: int
    epsilon_bound: float
    m: int
    bound_status: str = "estimated"

    @property
    def nonlinear(self) -> np.ndarray:
        """The estimates of the nonlinear layers, shape (m,)."""
        return self.values[: self.m]

    @property
    def linear(self) -> np.ndarray:
        """The estimates of the linear layers (Hardt-Ma factors)."""
        return self.values[self.m :]

    @property
    def max_nonlinear(self) -> float:
        """The largest estimate over the nonlinear layers."""
        return float(self.nonlinear.max())

    def __repr__(self) -> str:
        linear = f", max linear={self.linear.max():.4g}" if self.linear.size else ""
        return (
            f"LayerDeviations({self.method}, n_samples={self.n_samples}, max nonlinear={self.max_nonlinear:.4g}"
            f"{linear}, epsilon_bound={self.epsilon_bound:.4g} [{bounds.STATUS_LABELS[self.bound_status]}])"
        )

    @property
    def exceeds_bound(self) -> np.ndarray:
        """1-based numbers of the nonlinear layers whose measured deviation exceeds epsilon_bound."""
        return np.flatnonzero(self.nonlinear > self.epsilon_bound) + 1


@dataclass(frozen=True)
class InversionSettings:
    """How layers invert g_{i-1}: see :func:`nearid.invert`.

    The default tolerance is tighter than :func:`nearid.invert`'s so that
    errors stay below 1e-10 after a hundred layers applied one by one.
    Invalid settings raise ValueError or TypeError here, whether they come
    from code or from a file.
    """

    method: str = "auto"
    tol: float = 1e-13
    max_iter: int = 100
    anderson_memory: int = 5

    def __post_init__(self) -> None:
        check_choice(self.method, "inversion method", METHODS)
        if not is_real_scalar(self.tol):
            raise TypeError(f"inversion tol must be a number; got {type(self.tol).__name__}")
        if not (np.isfinite(self.tol) and self.tol > 0):
            raise ValueError(f"inversion tol must be a finite number > 0; got {self.tol!r}")
        object.__setattr__(self, "tol", float(self.tol))
        object.__setattr__(self, "max_iter", as_count(self.max_iter, "max_iter"))
        object.__setattr__(self, "anderson_memory", as_count(self.anderson_memory, "anderson_memory"))

    def inverse_of(self, g: Map, radius: float, continuation: Map | None = None, scale: float = 1.0) -> Inverse:
        """g^{-1} with these settings: solutions must lie in the ball of `radius`, and points the
        direct solve misses are retried by continuation in a of continuation(a z) / a up to `scale`."""
        return Inverse(g, self.method, self.tol, self.max_iter, self.anderson_memory, radius, continuation, scale)


@dataclass(frozen=True, eq=False, repr=False)
class DecompositionSpec:
    """Everything that defines a decomposition, checked once on construction.

    :func:`decompose` computes it, :class:`Decomposition` derives everything
    else from it (layers, bounds), pickling and :func:`nearid.load` rebuild
    a decomposition from it. Invalid fields raise ValueError (TypeError for
    wrong types) naming the rule they break; arrays are stored as read-only
    float64 copies.

    Attributes
    ----------
    h : Map
    scales : ndarray, shape (m,)
        0 < a_1 < ... < a_m = 1.
    schedule : str
        One of :data:`nearid.schedules.RECORDED_NAMES`.
    rate : float or None
        c of a "theorem" or "geometric" schedule.
    radius : float
    center : ndarray, shape (d,)
    jacobian_at_center : ndarray, shape (d, d)
        Dh(center), with a positive determinant.
    linear_factors : tuple of ndarray, shape (d, d) each
        Hardt-Ma factors whose product is jacobian_at_center (may be empty).
    constants : Constants
        With ``constants.R == radius``.
    inversion : InversionSettings
    """

    h: Map
    scales: np.ndarray
    schedule: str
    rate: float | None
    radius: float
    center: np.ndarray
    jacobian_at_center: np.ndarray
    linear_factors: tuple[np.ndarray, ...]
    constants: Constants
    inversion: InversionSettings

    def __post_init__(self) -> None:
        scales, center, J0, factors = _checked_state(
            self.h, self.scales, self.schedule, self.rate, self.radius, self.center, self.jacobian_at_center,
            self.linear_factors, self.constants, self.inversion)
        for name, value in (("scales", scales), ("center", center), ("jacobian_at_center", J0),
                            ("linear_factors", tuple(factors)), ("radius", float(self.radius))):
            object.__setattr__(self, name, value)

    @property
    def m(self) -> int:
        """Number of nonlinear layers."""
        return int(self.scales.size)

    def __repr__(self) -> str:
        rate = "" if self.rate is None else f", rate={self.rate:.6g}"
        return (f"DecompositionSpec(dim={self.h.dim}, m={self.m}, linear_layers={len(self.linear_factors)}, "
                f"schedule={self.schedule!r}{rate}, radius={self.radius})")

    def __reduce__(self) -> Any:
        # Unpickling goes through the checks again, as loading a file does.
        return (DecompositionSpec, tuple(getattr(self, f.name) for f in fields(self)))


class Decomposition:
    """A map h written as an exact composition of near-identity layers.

    Build one with :func:`nearid.decompose`, or ``Decomposition(spec)``
    from a :class:`DecompositionSpec`. Python indexing is 0-based
    (``nonlinear[0]`` is the paper's h_1); names, reprs, plots and reports
    number layers from 1 as the paper does.

    Every attribute is read-only and derived from :attr:`spec`: to change
    the scales or anything else, decompose again.

    Attributes
    ----------
    spec : DecompositionSpec
        What defines the decomposition.
    h : Map
        The decomposed map.
    m : int
        Number of nonlinear layers.
    scales : ndarray, shape (m,)
        a_1 < ... < a_m = 1 (read-only).
    schedule : str
        One of :data:`nearid.schedules.RECORDED_NAMES` ("explicit" for an array).
    rate : float or None
        c of a geometric or theorem schedule, ``a_i = (1 - c)^(m - i)``.
    radius, center : float, ndarray (d,)
        The ball B_R(x0) on which the composition equals h.
    jacobian_at_center : ndarray (d, d)
        J0 = Dh(x0).
    constants : Constants
        alpha, M, R, L, B (given or estimated, see :mod:`nearid.bounds`).
    epsilon_bound : float
        The bound on max_i ||h_i - Id||_Lip over the nonlinear layers:
        Theorem 2's for the "theorem" and "geometric" schedules, the sharp
        O(1/m) bound (docs/theory.md, section 4b) for the others. Reported as
        is, even when >= 1 (vacuous; :func:`decompose` then warns).
    bound_status : str
        "proven" when every constant epsilon_bound uses was given by the user
        (``constants=``), else "estimated": the bound is then computed from
        sample estimates of alpha or M, which are lower estimates, so it is
        an estimate of the proven bound, not a guarantee.
    epsilon_bounds, bound_statuses : mapping (read-only)
        Both bounds and their statuses: {"paper": ..., "sharp": ...}.
    linear_bound : float
        Bound on ||F_i - I||_2 for the Hardt-Ma factors (0 without them).
    nonlinear, linear, layers : tuple of Map
        The nonlinear layers h_1..h_m, the linear layers F_1..F_m', and both
        in order of application.
    linear_factors : tuple of ndarray
        The matrices F_1, ..., F_m'.
    """

    def __init__(self, spec: DecompositionSpec) -> None:
        if not isinstance(spec, DecompositionSpec):
            raise TypeError(f"Decomposition(spec) takes a nearid.DecompositionSpec; got {type(spec).__name__}. "
                            "Build decompositions with nearid.decompose(h, m, ...)")
        self._spec = spec
        d = spec.h.dim
        self._normalised = Normalised(spec.h, spec.center, spec.jacobian_at_center)
        product = np.eye(d)
        for F in spec.linear_factors:
            product = F @ product
        self._linear_product = product if spec.linear_factors else spec.jacobian_at_center
        epsilon_bounds = {
            "paper": bounds.paper_epsilon(spec.scales, spec.constants),
            "sharp": bounds.sharp_epsilon(spec.scales, spec.constants),
        }
        if any(np.isnan(v) for v in epsilon_bounds.values()):
            raise ValueError(
                f"the bound on the layer deviations is NaN (constants {spec.constants}); the schedule or the "
                "constants are not usable. Check the scales and give finite constants."
            )
        self._epsilon_bounds = MappingProxyType(epsilon_bounds)
        self._bound_statuses = MappingProxyType({kind: spec.constants.bound_status(kind) for kind in epsilon_bounds})
        self._bound_kind = "paper" if spec.schedule in schedules.RATE_NAMES else "sharp"
        self._linear_bound = (hardt_ma_bound(spec.jacobian_at_center, len(spec.linear_factors))
                              if spec.linear_factors else 0.0)
        # h~ = g_m, the map every layer's inversion continues along when it must.
        self._h_tilde = self._normalised.scaled(float(spec.scales[-1]))
        self._layers = tuple(self.segment(i, i + 1) for i in range(self.m + len(spec.linear_factors)))
        normalised = self._normalised
        value_shift = normalised.value_at_center - self._linear_product @ normalised.shifted_value
        self._whole = Labelled(
            Chain(spec.h, Affine(self._linear_product @ normalised.inverse_jacobian, value_shift)),
            f"Decomposition.whole(m={self.m})",
        )

    # ----------------------------------------------------------- stored state, read-only

    spec = property(lambda self: self._spec, doc="The DecompositionSpec everything else derives from.")
    h = property(lambda self: self._spec.h, doc="The decomposed map.")
    scales = property(lambda self: self._spec.scales, doc="a_1 < ... < a_m = 1, shape (m,) (read-only array).")
    schedule = property(lambda self: self._spec.schedule, doc="The schedule's name (see nearid.schedules).")
    rate = property(lambda self: self._spec.rate, doc="c of a theorem or geometric schedule, else None.")
    radius = property(lambda self: self._spec.radius, doc="R, the radius of the ball.")
    center = property(lambda self: self._spec.center, doc="x0, the centre of the ball, shape (d,).")
    jacobian_at_center = property(lambda self: self._spec.jacobian_at_center, doc="J0 = Dh(x0), shape (d, d).")
    linear_factors = property(lambda self: self._spec.linear_factors, doc="The Hardt-Ma factors F_1, ..., F_m'.")
    constants = property(lambda self: self._spec.constants, doc="alpha, M, R, L, B (see nearid.bounds).")
    inversion = property(lambda self: self._spec.inversion, doc="How layers invert (InversionSettings).")

    # ----------------------------------------------------------- derived

    epsilon_bounds = property(lambda self: self._epsilon_bounds, doc='{"paper": ..., "sharp": ...} (read-only).')
    bound_statuses = property(lambda self: self._bound_statuses, doc="The status of each bound (read-only).")
    bound_kind = property(lambda self: self._bound_kind, doc='"paper" or "sharp": the bound epsilon_bound is.')
    epsilon_bound = property(lambda self: self._epsilon_bounds[self._bound_kind],
                             doc="The bound on max_i ||h_i - Id||_Lip over the nonlinear layers.")
    bound_status = property(lambda self: self._bound_statuses[self._bound_kind],
                            doc='"proven" or "estimated": see the class docstring.')
    linear_bound = property(lambda self: self._linear_bound, doc="Bound on ||F_i - I||_2 (0 without factors).")
    layers = property(lambda self: self._layers, doc="Every layer, in order of application.")
    nonlinear = property(lambda self: self._layers[: self.m], doc="The nonlinear layers h_1..h_m.")
    linear = property(lambda self: self._layers[self.m :], doc="The linear layers F_1..F_m'.")

    # ----------------------------------------------------------- basic facts

    @property
    def m(self) -> int:
        """Number of nonlinear layers."""
        return int(self.scales.size)

    @property
    def dim(self) -> int:
        """The dimension d of h."""
        return self.h.dim

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        return (
            f"Decomposition(dim={self.dim}, m={self.m}, linear_layers={len(self.linear_factors)}, "
            f"schedule={self.schedule!r}, radius={self.radius}, epsilon_bound={self.epsilon_bound:.4g} "
            f"[{bounds.STATUS_LABELS[self.bound_status]}])"
        )

    # ----------------------------------------------------------- pieces

    def g(self, i: int) -> Map:
        """The paper's g_i(z) = h~(a_i z) / a_i for 1 <= i <= m (1-based, like a_i)."""
        i = as_count(i, "i", limit="m")
        if i > self.m:
            raise ValueError(f"i must be in 1..m = 1..{self.m}; got {i}")
        return Labelled(self._normalised.scaled(float(self.scales[i - 1])), f"g_{i}(a={self.scales[i - 1]:.6g})")

    @property
    def h_tilde(self) -> Map:
        """The normalised map h~(z) = J0^{-1} (h(z + x0) - h(x0)) (equal to g_m)."""
        return Labelled(self._h_tilde, "h~")

    def segment(self, start: int, stop: int) -> Map:
        """``layers[start:stop]`` composed, as one map.

        A run of nonlinear layers telescopes: layers i..j-1 (0-based) are
        ``g_j o g_i^{-1}`` (the paper's h_{i+1}..h_j), one inversion at most,
        none when the run starts at layer 0. Linear layers in the run are
        multiplied into one matrix.
        """
        count = self.m + len(self.linear_factors)
        start, stop = as_index(start, "start"), as_index(stop, "stop")
        if not (0 <= start < stop <= count):
            raise ValueError(f"need 0 <= start < stop <= {count} (the number of layers); "
                             f"got start={start}, stop={stop}")
        d = self.dim
        scaled = self._normalised.scaled
        pieces: list[Map] = []
        label = []
        if start < self.m:
            end = min(stop, self.m)
            if start == 0:
                pieces.append(scaled(float(self.scales[end - 1]), input_shift=self.center))
            else:
                a = float(self.scales[start - 1])
                pieces.append(self.inversion.inverse_of(scaled(a), self.radius, self._h_tilde, a))
                pieces.append(scaled(float(self.scales[end - 1])))
            label.append(f"h_{start + 1}" if end == start + 1 else f"h_{start + 1}..h_{end}")
            if end == self.m and not self.linear_factors:
                pieces.append(Affine(self.jacobian_at_center, self._normalised.value_at_center))
        if stop > self.m:
            first, last = max(start, self.m) - self.m, stop - self.m
            product = np.eye(d)
            for F in self.linear_factors[first:last]:
                product = F @ product
            shift = self._normalised.value_at_center if last == len(self.linear_factors) else np.zeros(d)
            pieces.append(Affine(product, shift))
            label.append(f"F_{first + 1}" if last == first + 1 else f"F_{first + 1}..F_{last}")
        name = "Layer" if stop - start == 1 else "Segment"
        return Labelled(pieces[0] if len(pieces) == 1 else Chain(*pieces), f"{name}({', '.join(label)})")

    def __getitem__(self, index: int | slice) -> Map:
        """``dec[i]`` is ``layers[i]``; ``dec[i:j]`` is :meth:`segment` (i, j)."""
        count = len(self.layers)
        if isinstance(index, slice):
            start, stop, step = index.indices(count)
            if step != 1:
                raise ValueError("a slice of layers must have step 1")
            return self.segment(start, stop)
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            return self.layers[index]
        raise TypeError(f"layer index must be an int or a slice; got {type(index).__name__}")

    # ----------------------------------------------------------- evaluation

    def __call__(self, X: Any) -> np.ndarray:
        """The whole composition; equals h(X) on the ball.

        Telescoped: ``F_m' ... F_1 (g_m(X - x0)) + h(x0)`` is evaluated as
        ``P (h(X) - h(x0)) + h(x0)`` with ``P = (F_m' ... F_1) J0^{-1}``
        (the identity up to rounding), so no inversion is needed.
        """
        return self._whole(X)

    def inverse(self, Y: Any) -> np.ndarray:
        """x with h(x) = y, through the decomposition.

        Solves ``h~(u) = w`` with ``w = (F_m' ... F_1)^{-1} (y - h(x0))``
        warm-started from w (h~ is the identity to first order), and returns
        ``x0 + u``. Only solutions in the ball count (``||u|| <= R`` up to
        rounding): h may have other preimages outside it. Points the direct
        solve misses are solved again by continuation along the scales, from
        ``g_a`` with a near 0 (the identity) up to ``g_m = h~``. Raises
        :class:`nearid.ConvergenceError` if points still fail (reason
        "outside_ball" when the only solution found lies outside the ball:
        y is not in h(ball)).

        Parameters
        ----------
        Y : array_like, shape (n, d) or (d,)

        Returns
        -------
        ndarray, the shape of Y
        """
        points, single = as_points(Y, self.dim, "Y")
        W = np.linalg.solve(self._linear_product, (points - self._normalised.value_at_center).T).T
        settings = self.inversion
        h_tilde = self._h_tilde
        result = solve(h_tilde, W, None, settings.method, settings.tol, settings.tol, settings.max_iter,
                       settings.anderson_memory, self.radius, h_tilde, 1.0)
        raise_unless_converged(
            result, "dec.inverse",
            hint="even by continuation along the scales; those points may lie outside h(ball)", strict_option=False,
        )
        X = result.x + self.center
        return X[0] if single else X

    # ----------------------------------------------------------- measurement

    def lipschitz(self, n_samples: int = 2000, method: str = "jacobian", seed: int = 0) -> LayerDeviations:
        """Measure ||h_i - Id||_Lip for every layer (``dec.layers`` order).

        Points u are sampled in B_R(0): half uniform, half close partners of
        those (u + 1e-3 R w), so that pairwise ratios approach derivatives.

        - "jacobian" (default): max over u of ||Dh_i(g_{i-1}(u)) - I||_2 with
          Dh_i(g_{i-1}(u)) = Dh~(a_i u) Dh~(a_{i-1} u)^{-1}; linear layers give
          ||F_i - I||_2 exactly.
        - "pairwise": layer i's inputs g_{i-1}(u) and outputs g_i(u) need no
          inversion; the estimate is the exact max over all pairs of
          ||(h_i - Id)(x_j) - (h_i - Id)(x_k)|| / ||x_j - x_k||
          (:func:`nearid.pairwise_lipschitz`). Linear layers use their inputs
          F_{i-1} ... F_1 h~(u).

        Both are lower estimates of the suprema. "jacobian" is the tighter
        one in general: a pairwise ratio is an average of the Jacobian's
        deviation along a segment, so it cannot exceed the largest deviation
        there (on the same points it measured 0.0016 where "pairwise" gave
        0.0009 for a d = 8 net). Compare with :attr:`epsilon_bound`: a
        measured deviation above an estimated bound proves that the sample
        constants are too low, and raises an :class:`nearid.EstimateWarning`
        (above a proven bound: the given constants are wrong).

        Parameters
        ----------
        n_samples : int
            Sample points (>= 2).
        method : {"jacobian", "pairwise"}
        seed : int

        Returns
        -------
        LayerDeviations
        """
        n_samples = as_count(n_samples, "n_samples")
        seed = as_seed(seed)
        if method not in ("pairwise", "jacobian"):
            raise ValueError(f"method must be 'jacobian' or 'pairwise'; got {method!r}")
        U = sample_for_deviations(self.dim, self.radius, n_samples, seed)
        d = self.dim
        identity = np.eye(d)
        if method == "jacobian":
            nonlinear = jacobian_deviations(self._normalised, self.scales, U)
            linear = np.array([np.linalg.norm(F - identity, 2) for F in self.linear_factors])
        else:
            nonlinear = np.empty(self.m)
            previous = U
            for i in range(1, self.m + 1):
                current = self.g(i)(U)
                nonlinear[i - 1] = pairwise_lipschitz(previous, current - previous).value
                previous = current
            linear = np.empty(len(self.linear_factors))
            Z = previous
            for i, F in enumerate(self.linear_factors):
                linear[i] = pairwise_lipschitz(Z, Z @ (F - identity).T).value
                Z = Z @ F.T
        result = LayerDeviations(np.concatenate([nonlinear, linear]), method, n_samples, self.epsilon_bound, self.m,
                                 self.bound_status)
        _warn_if_exceeded(result, self.constants)
        return result

    def __reduce__(self) -> Any:
        # Rebuilt from what defines it (for Dask workers and multiprocessing).
        return (Decomposition, (self._spec,))

    # ----------------------------------------------------------- certificates

    def certify(self, rtol: float = 0.01, max_seconds: float | None = None, n_samples: int = 2000,
                seed: int = 0) -> DecompositionCertificate:
        """Certified two-sided bounds for every layer and a certified epsilon_bound (DESIGN 7).

        Certifies alpha and M of h~ on the ball, each nonlinear layer's
        ``||h_i - Id||_Lip`` through ``Lip(phi_i) Lip(g_{i-1}^-1)`` (upper
        bounds rigorous; lower bounds attained at sample points, the worst of
        ``n_samples`` measured ones, and rigorous there) and each Hardt-Ma
        factor's ``||F_i - I||``. See :class:`nearid.certification.DecompositionCertificate`.

        Parameters
        ----------
        rtol : float
            Relative gap each underlying branch-and-bound aims at.
        max_seconds : float, optional
            Time budget for the whole certification; what is not certified in
            time keeps a valid but looser (or infinite) upper bound.
        n_samples, seed : int
            Sample points whose measured layer deviations pick the witnesses.

        Returns
        -------
        DecompositionCertificate
            Its ``decomposition`` is this one with the certified constants, whose
            ``bound_status`` is "certified".

        Raises
        ------
        ValueError
            h cannot be enclosed (a Python callable) or has relu kinks in the ball.
        """
        import time

        rtol = as_positive(rtol, "rtol")
        budget = None if max_seconds is None else as_positive(max_seconds, "max_seconds")
        n_samples = as_count(n_samples, "n_samples")
        start = time.monotonic()
        deadline = None if budget is None else start + budget
        samples = sample_for_deviations(self.dim, self.radius, n_samples, as_seed(seed))
        alpha, M, layers, linear = certify_decomposition_layers(
            self._h_tilde, self.scales, self.radius, self.linear_factors, rtol, deadline, samples)
        c = self.constants
        alpha_up = alpha.upper * (1 + FORMULA_MARGIN)
        M_up = M.upper * (1 + FORMULA_MARGIN)
        L, B = bounds.derived(alpha_up, M_up, c.R)
        certified_constants = Constants(alpha_up, M_up, c.R, L * (1 + FORMULA_MARGIN), B * (1 + FORMULA_MARGIN),
                                        (), 0, ("alpha", "M", "L", "B"))
        spec = DecompositionSpec(**{f.name: getattr(self._spec, f.name) for f in fields(DecompositionSpec)
                                    if f.name != "constants"}, constants=certified_constants)
        certified = Decomposition(spec)
        layer_max = max(layer.upper for layer in layers)
        epsilon_bounds = {"layers": layer_max, **certified.epsilon_bounds}
        bound = min(epsilon_bounds.values())
        return DecompositionCertificate(alpha, M, layers, linear, bound, epsilon_bounds,
                                        "certified" if math.isfinite(bound) else "uncertified", certified,
                                        time.monotonic() - start)

    # ----------------------------------------------------------- persistence

    def save(self, path: Any) -> None:
        """Write the decomposition to an .npz file (no pickle): ``nearid.save(self, path)``, see :func:`nearid.load`.

        An alias kept for the ``dec.save(path)`` the README shows. Files are
        :mod:`nearid.io`'s business and io depends on this module, not the
        reverse: this deferred import is decompose's only use of io.
        """
        from .io import save

        save(self, path)


#: Relative (norm-wise) agreement required between a stored Dh(x0) and its
#: recomputation from the map, and between the Hardt-Ma factors' product and Dh(x0).
STATE_RTOL = 1e-10


def _relative_gap(A: np.ndarray, B: np.ndarray) -> float:
    return float(np.linalg.norm(A - B) / max(np.linalg.norm(B), np.finfo(float).tiny))


def _checked_state(
    h: Any, scales: Any, schedule: Any, rate: Any, radius: Any, center: Any, jacobian_at_center: Any,
    linear_factors: Any, constants: Any, inversion: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """The rules every decomposition satisfies, whether built by decompose(), unpickled or
    loaded from a file: ValueError (TypeError for wrong types) naming what breaks them.
    Returns read-only float64 copies of the arrays."""
    if not isinstance(h, Map):
        raise TypeError(f"h must be a nearid map; got {type(h).__name__}")
    d = h.dim
    m = as_count(int(np.size(scales)), "m (the number of scales)", limit="m")
    scales = schedules.validate(scales, m, "stored" if schedule == schedules.EXPLICIT else str(schedule))
    if not isinstance(schedule, str) or schedule not in schedules.RECORDED_NAMES:
        raise ValueError(f"schedule must be one of {schedules.RECORDED_NAMES}; got {schedule!r}")
    if rate is not None and not (is_real_scalar(rate) and 0.0 < rate < 1.0):
        raise ValueError(f"rate must be None or a number in (0, 1); got {rate!r}")
    radius = as_positive(radius, "radius")
    center = as_vector(center, "center", d)
    J0 = np.array(jacobian_at_center, dtype=np.float64)
    if J0.shape != (d, d) or not np.all(np.isfinite(J0)):
        raise ValueError(f"jacobian_at_center must be a finite ({d}, {d}) matrix; got shape {J0.shape}")
    gap = _relative_gap(J0, h.jacobian(center))
    if not gap <= STATE_RTOL:
        raise ValueError(f"jacobian_at_center differs from Dh(center) recomputed from the map (relative "
                         f"difference {gap:.3g} > {STATE_RTOL:g}): it does not belong to this map and centre")
    sign, _ = _core.log_determinant(J0)
    if not sign > 0:
        raise ValueError("jacobian_at_center must have a positive determinant")
    factors = [np.array(F, dtype=np.float64) for F in linear_factors]
    if len(factors) > _core.LIMITS["linear_layers"][1]:
        raise ValueError(f"linear_factors holds {len(factors)} factors, more than {_core.LIMITS['linear_layers'][1]}")
    product = np.eye(d)
    for i, F in enumerate(factors):
        if F.shape != (d, d) or not np.all(np.isfinite(F)):
            raise ValueError(f"linear_factors[{i}] must be a finite ({d}, {d}) matrix; got shape {F.shape}")
        product = F @ product
    # Multiplying m factors in float64 leaves a relative error of about m d eps.
    product_rtol = STATE_RTOL + 16 * len(factors) * d * np.finfo(float).eps
    if factors and not _relative_gap(product, J0) <= product_rtol:
        raise ValueError(f"the product of linear_factors differs from jacobian_at_center (relative difference "
                         f"{_relative_gap(product, J0):.3g} > {product_rtol:.3g}): they are not its Hardt-Ma factors")
    if not isinstance(constants, Constants):
        raise TypeError(f"constants must be a nearid.Constants; got {type(constants).__name__}")
    if constants.R != radius:
        raise ValueError(f"constants.R = {constants.R} differs from radius = {radius}")
    if not isinstance(inversion, InversionSettings):
        raise TypeError(f"inversion must be an InversionSettings; got {type(inversion).__name__}")
    for array in (center, J0, *factors):
        array.setflags(write=False)
    return scales, center, J0, factors


def _warn_if_exceeded(deviations: LayerDeviations, constants: Constants) -> None:
    """EstimateWarning when a measured deviation exceeds the bound it is compared with."""
    above = deviations.exceeds_bound
    if not above.size:
        return
    worst = int(np.argmax(deviations.nonlinear)) + 1
    measured = f"measured deviation {deviations.max_nonlinear:.6g} of layer h_{worst}"
    count = f" ({above.size} of {deviations.m} layers above it)" if above.size > 1 else ""
    if deviations.bound_status == "estimated":
        estimated = ", ".join(name for name in constants.estimated if name in ("alpha", "M"))
        message = (
            f"{measured} exceeds the estimated bound {deviations.epsilon_bound:.6g}{count}: the sample estimates "
            f"of {estimated} ({constants.n_samples} samples) are too low, so the bound is not valid. Decompose "
            "with more samples (n_samples=...) or give the constants (constants={'alpha': ..., 'M': ...})."
        )
    else:
        message = (
            f"{measured} exceeds the proven bound {deviations.epsilon_bound:.6g}{count}, which holds only if the "
            "constants given to decompose() are true: check constants={...} (alpha and M must be upper bounds "
            "on the ball)."
        )
    warnings.warn(message, EstimateWarning, stacklevel=3)


def _normalise(h: Map, center: np.ndarray) -> np.ndarray:
    """J0 = Dh(x0), checked for positive orientation."""
    J0 = h.jacobian(center)
    if not np.all(np.isfinite(J0)):
        raise ValueError("Dh(center) is not finite")
    sign, log_abs = _core.log_determinant(J0)
    if not sign > 0.0:
        if sign == 0.0:
            det = "0 (Dh(center) is singular)"
        else:
            det = f"{-np.exp(log_abs):.6g}" if log_abs < 700 else f"-exp({log_abs:.6g})"
        raise ValueError(
            f"det Dh(center) = {det} <= 0: h reverses orientation (or is singular) at the centre. "
            "A composition of near-identity maps has positive Jacobian determinant (Theorem 1's topological "
            "constraint), so no such decomposition exists. Flip one coordinate of the output, e.g. "
            "Chain(h, Affine(np.diag([-1.0] + [1.0] * (d - 1)))), or choose another centre."
        )
    return J0


def _check_orientation_on_ball(h_tilde: Map, center: np.ndarray, radius: float, n_samples: int, seed: int) -> None:
    """ValueError when det Dh~ <= 0 at a sample point of the ball: h folds there, so it is
    not invertible on the ball and the layers would silently pick wrong preimages.
    Passing this sample check does not prove invertibility."""
    U = bounds.sample_ball(np.random.default_rng(seed + 1), n_samples, h_tilde.dim, radius)
    signs, logdets = np.linalg.slogdet(h_tilde.jacobian(U))
    bad = np.flatnonzero(signs <= 0)
    if bad.size:
        x = U[bad[0]] + center
        raise ValueError(
            f"h is not invertible on the ball: det Dh changes sign inside it (det Dh~ <= 0 at x = {x}, "
            f"{bad.size} of {n_samples} sample points). The decomposition needs h bi-Lipschitz on the ball; "
            "choose a smaller radius or another centre."
        )


#: A schedule is refused when g_1's rounding errors exceed its inversion tolerance this many times.
PRECISION_MARGIN = 10.0


def _check_scale_precision(scales: np.ndarray, radius: float, center: np.ndarray, value: np.ndarray,
                           J0: np.ndarray, J0_inv: np.ndarray, schedule: str, source: str, tol: float) -> None:
    """ValueError when the smallest scale makes g_1(z) = J0^{-1} (h(a_1 z + x0) - h(x0)) / a_1
    carry rounding errors well above the tolerance its inversions must meet.

    Computing h(a z + x0) - h(x0) leaves an absolute error of at least about
    eps (||J0^{-1}|| ||h(x0)|| + cond(J0) ||x0||) after the J0^{-1} (the
    rounding of the values and of the shifted input); dividing by a makes it a
    relative error noise/(a R) in g's values, which are of size R. Evaluating a
    layer inverts g_{i-1} to relative tolerance `tol`, which noise more than
    PRECISION_MARGIN times larger makes unreachable. Below a R of tiny/eps the
    product a z itself loses digits to underflow.
    """
    eps, tiny = np.finfo(float).eps, np.finfo(float).tiny
    a1 = float(scales[0])
    noise = eps * (np.linalg.norm(J0_inv, 2) * np.linalg.norm(value) + np.linalg.cond(J0) * np.linalg.norm(center))
    relative = noise / (a1 * radius)
    if a1 * radius < tiny / eps or not relative <= PRECISION_MARGIN * tol:
        underflow = a1 * radius < tiny / eps or not np.isfinite(relative)
        kept = "none" if underflow else f"about {max(0.0, -np.log10(relative)):.0f}"
        fixes = ["use fewer layers (m)"]
        if schedule in ("theorem", "geometric"):
            fixes.append("a smaller rate")
        if schedule != "uniform":
            fixes.append("the 'uniform' schedule")
        fixes.append("loosen InversionSettings(tol=...)")
        raise ValueError(
            f"the {source} schedule starts at a_1 = {a1:.3g}, so small that g_1(z) = h~(a_1 z) / a_1 keeps "
            f"{kept} of its 16 significant digits: the rounding of h(x0) and x0 (about {noise:.2g} after "
            f"normalisation) is divided by a_1 R = {a1 * radius:.3g}, a relative error of {relative:.2g}, more than "
            f"{PRECISION_MARGIN:g} times the tolerance {tol:g} its layers are inverted to. "
            f"{', '.join(fixes[:-1]).capitalize()} or {fixes[-1]}."
        )


def decompose(
    h: Map,
    m: int,
    radius: float = 1.0,
    center: Any = None,
    schedule: str | Any = "uniform",
    linear_layers: int | None = None,
    constants: Mapping[str, float] | None = None,
    *,
    rate: float | None = None,
    n_samples: int = 2000,
    seed: int = 0,
    inversion: InversionSettings | None = None,
) -> Decomposition:
    """Write h as an exact composition of near-identity layers on a ball.

    Parameters
    ----------
    h : nearid map
        Any map of :mod:`nearid.maps` (Chain and FromCallable included),
        invertible on the ball with det Dh(center) > 0.
    m : int
        Number of nonlinear layers (>= 1).
    radius : float
        R, the radius of the ball around the centre (> 0).
    center : array_like, shape (d,), optional
        x0; default the origin.
    schedule : str or array_like
        "uniform" (a_i = i/m), "theorem", "geometric" (see
        :mod:`nearid.schedules`), "balanced" (scales that make the measured
        layer deviations as equal as possible, never worse than uniform on the
        measuring points; see :func:`nearid.schedules.balanced`), or an explicit array
        of scales: strictly increasing, positive, ending at 1.
    linear_layers : int, optional
        Number m' of Hardt-Ma factors of J0 (default m). With 0, J0 and the
        translation by h(x0) fold into the last nonlinear layer.
    constants : mapping, optional
        Known values of "alpha", "M", "L" and/or "B" for h~ on the ball.
        alpha and M not given are estimated from ``n_samples`` samples (lower
        estimates: see :func:`nearid.bounds.estimate_constants`); L and B not
        given follow from alpha, M and R (docs/theory.md, section 4). With
        any of them estimated, :attr:`Decomposition.bound_status` is
        "estimated".
    rate : float, optional
        c of a "geometric" schedule (default: balance the first layer's
        bound against the others').
    n_samples, seed : int
        Samples for estimating constants, and their seed.
    inversion : InversionSettings, optional
        Method and tolerance of the inversions inside layer evaluations
        (default: "auto", tol 1e-13, 100 iterations).

    Returns
    -------
    Decomposition

    Warns
    -----
    VacuousBoundWarning
        When the bound is >= 1 or M > :data:`LARGE_M`.

    Raises
    ------
    ValueError
        When det Dh(center) <= 0 (orientation: flip a coordinate), when
        det Dh changes sign at a sample point of the ball (h is not
        invertible there), or on invalid arguments.
    """
    if not isinstance(h, Map):
        raise TypeError(f"h must be a nearid map (nearid.maps.*); got {type(h).__name__}")
    m = as_count(m, "m")
    radius = as_positive(radius, "radius")
    d = h.dim
    center_ = np.zeros(d) if center is None else as_vector(center, "center", d)
    center_.setflags(write=False)
    linear_layers = m if linear_layers is None else as_count(linear_layers, "linear_layers")
    n_samples = as_count(n_samples, "n_samples")
    seed = as_seed(seed)
    inversion = InversionSettings() if inversion is None else inversion
    if not isinstance(inversion, InversionSettings):
        raise TypeError(f"inversion must be an InversionSettings; got {type(inversion).__name__}")

    J0 = _normalise(h, center_)
    J0.setflags(write=False)
    normalised = Normalised(h, center_, J0)
    h_tilde = Labelled(normalised.h_tilde, "h~")
    _check_orientation_on_ball(h_tilde, center_, radius, n_samples, seed)
    consts = bounds.make_constants(h_tilde, radius, constants, n_samples, seed)

    scales, name, rate_used = schedules.resolve(schedule, m, rate=rate, constants=consts, normalised=normalised,
                                                n_samples=n_samples, seed=seed)
    _check_scale_precision(scales, radius, center_, normalised.value_at_center, J0, normalised.inverse_jacobian, name,
                           schedules.describe(name, m, rate_used), inversion.tol)

    factors = list(hardt_ma(J0, linear_layers)) if linear_layers else []
    dec = Decomposition(DecompositionSpec(h, scales, name, rate_used, radius, center_, J0, tuple(factors), consts,
                                          inversion))
    _warn_if_vacuous(dec)
    return dec


#: An inverse Lipschitz constant M above this makes :func:`decompose` warn:
#: h~ then shrinks some direction 10^4-fold, so h is close to non-injective.
LARGE_M = 1e4


def _warn_if_vacuous(dec: Decomposition) -> None:
    """One VacuousBoundWarning when the bound says nothing (>= 1) or M is huge."""
    c = dec.constants
    problems = []
    if not dec.epsilon_bound < 1.0:
        problems.append(f"the {dec.bound_status} bound on max ||h_i - Id||_Lip is {dec.epsilon_bound:.6g} >= 1, "
                        "so it says nothing about the layers")
    if not c.M <= LARGE_M:
        kind = "estimated" if "M" in c.estimated else "given"
        problems.append(f"the {kind} inverse Lipschitz constant M = {c.M:.6g} is huge: h is close to "
                        "non-injective on the ball")
    if problems:
        warnings.warn(
            f"{'; '.join(problems)}. Use more layers (m), a smaller radius, or a ball where h is further from "
            "singular.", VacuousBoundWarning, stacklevel=3,
        )
