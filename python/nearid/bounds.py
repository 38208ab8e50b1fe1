"""The constants of Theorem 1 and the proven bounds on layer deviations.

For the normalised map h~ on the ball B_R(0) (DESIGN 1, 4):

- alpha: Lipschitz constant of Dh~ in operator norm;
- M: Lipschitz constant of h~^{-1} on h~(B_R(0));
- L = 1 + alpha R (Lemma 3: ||h~||_L <= L);
- B = max{alpha M (R + M), M (L + 1 + 2 R alpha) + alpha R^2}.

Constants not given by the user are estimated from samples (see
:func:`estimate_constants`). Sample estimates are *lower* estimates of the
true suprema, so bounds computed from them are estimates of the proven
bound, not guarantees; give the constants yourself for a guarantee.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import is_real_scalar
from .maps import Map

__all__ = ["Constants", "estimate_constants", "paper_epsilon", "sharp_epsilon", "make_constants"]

_GIVEN = ("alpha", "M")


@dataclass(frozen=True)
class Constants:
    """alpha, M, R, L, B of Theorem 1 for h~ on the ball of radius R.

    ``estimated`` names the constants (among "alpha", "M") that were estimated
    from ``n_samples`` sample points rather than given; L and B are given or
    derived from alpha, M and R.
    """

    alpha: float
    M: float
    R: float
    L: float
    B: float
    estimated: tuple[str, ...] = ()
    n_samples: int = 0

    def __post_init__(self) -> None:
        for name in ("alpha", "M", "L", "B"):
            value = getattr(self, name)
            # +inf is an honest estimate (a singular Jacobian in the ball); NaN or a negative value is not.
            if not is_real_scalar(value) or np.isnan(value) or value < 0:
                raise ValueError(f"constant {name} must be a number >= 0 (inf allowed); got {value!r}")
        if not (is_real_scalar(self.R) and np.isfinite(self.R) and self.R > 0):
            raise ValueError(f"constant R (the radius) must be a finite number > 0; got {self.R!r}")
        if not set(self.estimated) <= set(_GIVEN) or len(set(self.estimated)) != len(self.estimated):
            raise ValueError(f"estimated must list distinct names among {_GIVEN}; got {self.estimated!r}")
        if isinstance(self.n_samples, bool) or not isinstance(self.n_samples, (int, np.integer)) or self.n_samples < 0:
            raise ValueError(f"n_samples must be an integer >= 0; got {self.n_samples!r}")

    def as_dict(self) -> dict[str, Any]:
        """The constants as a JSON-ready dict (``estimated`` as a list)."""
        return {
            "alpha": self.alpha,
            "M": self.M,
            "R": self.R,
            "L": self.L,
            "B": self.B,
            "estimated": list(self.estimated),
            "n_samples": self.n_samples,
        }


def derived(alpha: float, M: float, R: float) -> tuple[float, float]:
    """(L, B) from alpha, M and R."""
    L = 1.0 + alpha * R
    B = max(alpha * M * (R + M), M * (L + 1.0 + 2.0 * R * alpha) + alpha * R**2)
    return L, B


def sample_ball(rng: np.random.Generator, n: int, d: int, R: float) -> np.ndarray:
    """n points uniform in the closed ball of radius R in R^d."""
    directions = rng.standard_normal((n, d))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radii = R * rng.random(n) ** (1.0 / d)
    return directions * radii[:, None]


def estimate_constants(h_tilde: Map, R: float, n_samples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Sample estimates (alpha, M) for h~ on B_R(0).

    Draws ``n_samples`` points u uniform in the ball, each paired with a
    random other sample point and with a close partner u + delta w
    (delta = 1e-3 R, w a random unit vector; projected back onto the ball
    when it leaves it), and returns

    - alpha ~ max ||Dh~(u) - Dh~(v)||_2 / ||u - v|| over the pairs, and
    - M ~ max of 1 / sigma_min(Dh~(u)) over the points and of
      ||u - v|| / ||h~(u) - h~(v)|| over the pairs.

    Both are lower estimates of the suprema (DESIGN 4).
    """
    d = h_tilde.dim
    rng = np.random.default_rng(seed)
    U = sample_ball(rng, n_samples, d, R)
    w = rng.standard_normal((n_samples, d))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    delta = 1e-3 * R
    close = U + delta * w
    norms = np.linalg.norm(close, axis=1)
    close *= np.minimum(1.0, R / norms)[:, None]  # back onto the ball where the step left it
    far = U[rng.permutation(n_samples)]
    values_u, jac_u = h_tilde.value_and_jacobian(U)
    values_c, jac_c = h_tilde.value_and_jacobian(close)
    values_f, jac_f = h_tilde.value_and_jacobian(far)
    alpha = 0.0
    M = float(np.max(1.0 / np.linalg.svd(jac_u, compute_uv=False)[:, -1]))
    for V, values_v, jac_v in ((close, values_c, jac_c), (far, values_f, jac_f)):
        gap = np.linalg.norm(U - V, axis=1)
        keep = gap > 0
        if not np.any(keep):
            continue
        jump = np.linalg.norm(jac_u[keep] - jac_v[keep], ord=2, axis=(1, 2))
        alpha = max(alpha, float(np.max(jump / gap[keep])))
        image_gap = np.linalg.norm(values_u[keep] - values_v[keep], axis=1)
        M = max(M, float(np.max(gap[keep] / np.maximum(image_gap, np.finfo(float).tiny))))
    return alpha, M


def make_constants(
    h_tilde: Map, R: float, given: Mapping[str, float] | None, n_samples: int, seed: int
) -> Constants:
    """Constants from the user's `given` values, the rest estimated or derived.

    `given` may hold "alpha", "M", "L" and "B" (and "R", which must equal the
    radius). alpha and M not given are estimated from samples; L and B not
    given follow from alpha, M and R.
    """
    given = dict(given or {})
    unknown = set(given) - {"alpha", "M", "L", "B", "R"}
    if unknown:
        raise ValueError(
            f"constants may give 'alpha', 'M', 'L', 'B' (and 'R', the radius); got unknown keys {sorted(unknown)}"
        )
    for key, value in given.items():
        if not is_real_scalar(value) or not np.isfinite(value) or value < 0:
            raise ValueError(f"constants[{key!r}] must be a finite number >= 0; got {value!r}")
    if "R" in given and float(given["R"]) != R:
        raise ValueError(f"constants['R'] = {given['R']} differs from radius = {R}; R is the radius")
    estimated = tuple(k for k in _GIVEN if k not in given)
    alpha, M = float(given.get("alpha", 0.0)), float(given.get("M", 0.0))
    if estimated:
        alpha_hat, M_hat = estimate_constants(h_tilde, R, n_samples, seed)
        alpha = alpha_hat if "alpha" in estimated else alpha
        M = M_hat if "M" in estimated else M
    L, B = derived(alpha, M, R)
    L = float(given.get("L", L))
    B = float(given.get("B", B))
    return Constants(alpha, M, R, L, B, estimated, n_samples if estimated else 0)


def paper_epsilon(scales: np.ndarray, c: Constants) -> float:
    """Theorem 2's bound for any schedule: max{2 alpha R a_1, B max_i (a_i - a_{i-1}) / a_i}."""
    first = 2.0 * c.alpha * c.R * scales[0]
    if scales.size == 1:
        return float(first)
    # np.max propagates NaN (Python's max would drop it in favour of `first`).
    return float(np.max([first, c.B * np.max(np.diff(scales) / scales[1:])]))


def sharp_epsilon(scales: np.ndarray, c: Constants) -> float:
    """DESIGN 4b's bound for any schedule: max{alpha R a_1, alpha R M max_i (a_i - a_{i-1})}."""
    first = c.alpha * c.R * scales[0]
    if scales.size == 1:
        return float(first)
    return float(np.max([first, c.alpha * c.R * c.M * np.max(np.diff(scales))]))
