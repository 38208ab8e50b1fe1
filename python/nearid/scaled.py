"""The scaled maps g_a of a map normalised at a centre, built from public maps.

For h with J0 = Dh(x0) invertible, the normalised map is
``h~(z) = J0^{-1} (h(z + x0) - h(x0))`` (h~(0) = 0, Dh~(0) = I) and its
scaled versions are

    g_a(z) = h~(a z) / a = J0^{-1} (h(a z + x0) - h(x0)) / a,   0 < a <= 1,

so g_1 = h~ and g_a tends to the identity as a -> 0 (docs/theory.md,
section 2). Each g_a is a :class:`~nearid.maps.Chain` of an
:class:`~nearid.maps.Affine`, h and another Affine: for compiled h it runs
entirely in C++, and it pickles as its pieces do. Decompositions
(:mod:`nearid.decompose`) and the "balanced" schedule
(:mod:`nearid.schedules`) build their maps here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import bounds, lipschitz
from ._validation import as_vector
from .maps import Affine, Chain, Map

__all__ = ["Normalised", "sample_for_deviations", "jacobian_deviations"]


@dataclass(frozen=True, eq=False)
class Normalised:
    """h normalised at x0: the family g_a of scaled maps.

    Parameters
    ----------
    h : Map
    center : array_like, shape (d,)
        x0.
    jacobian_at_center : array_like, shape (d, d)
        J0 = Dh(x0), invertible.

    Attributes
    ----------
    inverse_jacobian : ndarray, shape (d, d)
        J0^{-1}.
    value_at_center : ndarray, shape (d,)
        h(x0).
    shifted_value : ndarray, shape (d,)
        J0^{-1} h(x0).
    """

    h: Map
    center: np.ndarray
    jacobian_at_center: np.ndarray
    inverse_jacobian: np.ndarray = field(init=False, repr=False)
    value_at_center: np.ndarray = field(init=False, repr=False)
    shifted_value: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.h, Map):
            raise TypeError(f"h must be a nearid map; got {type(self.h).__name__}")
        center = as_vector(self.center, "center", self.h.dim)
        J0 = np.asarray(self.jacobian_at_center, dtype=np.float64)
        J0_inv = np.linalg.inv(J0)
        value = self.h(center)
        for name, value_ in (("center", center), ("jacobian_at_center", J0), ("inverse_jacobian", J0_inv),
                             ("value_at_center", value), ("shifted_value", J0_inv @ value)):
            object.__setattr__(self, name, value_)

    @property
    def dim(self) -> int:
        """The dimension d of h."""
        return self.h.dim

    def scaled(self, a: float, input_shift: np.ndarray | None = None) -> Chain:
        """g_a(z) = J0^{-1} (h(a z + x0) - h(x0)) / a as one chain of public maps.

        With `input_shift`, the chain takes x and sets z = x - input_shift
        (how a decomposition's first layer absorbs the translation by x0).
        """
        a = float(a)
        d = self.dim
        offset = self.center if input_shift is None else self.center - a * input_shift
        return Chain(Affine(a * np.eye(d), offset), self.h, Affine(self.inverse_jacobian / a, -self.shifted_value / a))

    @property
    def h_tilde(self) -> Chain:
        """h~ = g_1."""
        return self.scaled(1.0)


def sample_for_deviations(d: int, radius: float, n_samples: int, seed: int) -> np.ndarray:
    """Points u in B_R(0) for measuring layer deviations: half uniform, half
    close partners u + 1e-3 R w of the first half (so pairwise ratios approach
    derivatives), projected back onto the ball when they leave it.

    Returns
    -------
    ndarray, shape (n_samples, d)
    """
    rng = np.random.default_rng(seed)
    half = n_samples - n_samples // 2
    U = bounds.sample_ball(rng, half, d, radius)
    w = rng.standard_normal((n_samples - half, d))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    close = U[: n_samples - half] + 1e-3 * radius * w
    close = bounds.onto_ball(close, radius)
    return np.concatenate([U, close])


def jacobian_deviations(normalised: Normalised, scales: Any, U: np.ndarray) -> np.ndarray:
    """max over u in U of ||Dh_i(g_{i-1}(u)) - I||_2 for the layers h_i = g_{a_i} o g_{a_{i-1}}^{-1}.

    Uses Dh_i(g_{i-1}(u)) = Dh~(a_i u) Dh~(a_{i-1} u)^{-1} (Dh~(a_0 u) = I), so no inversion is needed.

    Returns
    -------
    ndarray, shape (len(scales),)
    """
    scales = np.asarray(scales, dtype=np.float64)
    d = normalised.dim
    deviations = np.empty(scales.size)
    previous = None
    for i, a in enumerate(scales):
        J = normalised.scaled(float(a)).jacobian(U).reshape(U.shape[0], d, d)
        deviations[i] = lipschitz.quotient_norms(J, previous).deviation.max()
        previous = J
    return deviations
