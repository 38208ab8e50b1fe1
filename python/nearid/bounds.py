"""The constants of Theorem 1 and the proven bounds on layer deviations.

For the normalised map h~ on the ball B_R(0) (docs/theory.md, sections 1 and 4):

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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import as_nonnegative, is_real_scalar
from .maps import Map

__all__ = ["Constants", "estimate_constants", "paper_epsilon", "sharp_epsilon", "make_constants", "onto_ball"]

_GIVEN = ("alpha", "M")
_NAMES = ("alpha", "M", "L", "B")

#: The constants each bound on the nonlinear layers uses (besides R).
USES = {"paper": ("alpha", "B"), "sharp": ("alpha", "M")}

#: How each status is written in summaries, plot legends and reprs.
STATUS_LABELS = {"proven": "proven bound", "certified": "certified bound",
                 "estimated": "estimated bound (sample constants)"}


@dataclass(frozen=True)
class Constants:
    """alpha, M, R, L, B of Theorem 1 for h~ on the ball of radius R.

    ``estimated`` names the constants that are sample estimates rather than
    given: "alpha" and "M" when estimated from ``n_samples`` sample points,
    and "L" and "B" when they were derived from an estimated alpha or M.
    (An L or B that equals the value derived from an estimated alpha or M is
    counted as estimated even if it was passed in: the conservative reading.)
    ``certified`` names the constants that are certified upper bounds
    (:meth:`nearid.Decomposition.certify`), and L and B derived from them.
    :attr:`status` is "estimated" when anything is estimated, else "certified"
    when something is certified, else "proven" (every constant given).
    """

    alpha: float
    M: float
    R: float
    L: float
    B: float
    estimated: tuple[str, ...] = ()
    n_samples: int = 0
    certified: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("alpha", "M", "L", "B"):
            value = getattr(self, name)
            # +inf is an honest estimate (a singular Jacobian in the ball); NaN or a negative value is not.
            if not is_real_scalar(value) or np.isnan(value) or value < 0:
                raise ValueError(f"constant {name} must be a number >= 0 (inf allowed); got {value!r}")
        if not (is_real_scalar(self.R) and np.isfinite(self.R) and self.R > 0):
            raise ValueError(f"constant R (the radius) must be a finite number > 0; got {self.R!r}")
        if not set(self.estimated) <= set(_NAMES) or len(set(self.estimated)) != len(self.estimated):
            raise ValueError(f"estimated must list distinct names among {_NAMES}; got {self.estimated!r}")
        # L and B derived from an estimated alpha or M are estimates too (files written
        # before L and B were listed hold only "alpha" and "M").
        estimated = set(self.estimated)
        L, B = derived(self.alpha, self.M, self.R)
        if "alpha" in estimated and self.L == L:
            estimated.add("L")
        if estimated & {"alpha", "M"} and self.B == B:
            estimated.add("B")
        object.__setattr__(self, "estimated", tuple(name for name in _NAMES if name in estimated))
        if not set(self.certified) <= set(_NAMES) or len(set(self.certified)) != len(self.certified):
            raise ValueError(f"certified must list distinct names among {_NAMES}; got {self.certified!r}")
        certified = set(self.certified) - estimated
        if "alpha" in certified and self.L == L:
            certified.add("L")
        if {"alpha", "M"} & certified and not {"alpha", "M"} & estimated and self.B == B:
            certified.add("B")
        certified -= estimated
        object.__setattr__(self, "certified", tuple(name for name in _NAMES if name in certified))
        if isinstance(self.n_samples, bool) or not isinstance(self.n_samples, (int, np.integer)) or self.n_samples < 0:
            raise ValueError(f"n_samples must be an integer >= 0; got {self.n_samples!r}")

    @property
    def status(self) -> str:
        """"estimated" when a constant is a sample estimate, else "certified" when one
        is a certified bound, else "proven" (every constant given)."""
        return "estimated" if self.estimated else ("certified" if self.certified else "proven")

    def bound_status(self, kind: str) -> str:
        """Status of the bound `kind` ("paper" or "sharp") from the constants it uses
        (:data:`USES`): "estimated" if any is estimated, else "certified" if any is
        certified, else "proven"."""
        uses = set(USES[kind])
        if uses & set(self.estimated):
            return "estimated"
        return "certified" if uses & set(self.certified) else "proven"

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
            "certified": list(self.certified),
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


def onto_ball(X: np.ndarray, R: float) -> np.ndarray:
    """X with the rows outside the closed ball of radius R scaled back onto its sphere.

    Norms are taken of X / R, so that tiny radii (squares below 1e-308) do not underflow.
    """
    relative = np.linalg.norm(X / R, axis=1, keepdims=True)
    return X * np.minimum(1.0, 1.0 / np.maximum(relative, np.finfo(float).tiny))


#: Shells of :func:`_shell_jumps`: radii R 2^-j down to min(R, 1) 2^-SHELL_DEPTH (at most
#: SHELL_COUNT of them), each with max(SHELL_MIN_POINTS, n_samples // SHELL_SHARE) close pairs.
SHELL_DEPTH, SHELL_COUNT, SHELL_MIN_POINTS, SHELL_SHARE = 10, 1100, 4, 64


def _shell_jumps(h_tilde: Map, R: float, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """||Dh~(u) - Dh~(v)|| / ||u - v|| for close pairs on shells of radii R 2^-j, each pair
    1e-3 of its shell's radius apart.

    Uniform samples of a huge ball (R = 1e150) all lie where a bounded network is
    saturated, while its curvature sits within a few units of the centre: without the
    shells, alpha would be estimated as 0. Shells reach down to radius min(R, 1) 2^-10,
    so that scale is sampled however large R is.
    """
    d = h_tilde.dim
    floor = min(R, 1.0) * 2.0**-SHELL_DEPTH
    count = int(min(SHELL_COUNT, max(0, np.ceil(np.log2(R / floor)))))
    if count == 0:
        return np.zeros(0)
    per_shell = max(SHELL_MIN_POINTS, n_samples // SHELL_SHARE)
    radii = np.repeat(R * 2.0 ** -np.arange(1, count + 1), per_shell)
    u = rng.standard_normal((radii.size, d))
    u *= (radii * rng.random(radii.size) ** (1.0 / d) / np.linalg.norm(u, axis=1))[:, None]
    w = rng.standard_normal((radii.size, d))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    gaps = 1e-3 * radii
    v = u + gaps[:, None] * w
    jump = np.linalg.norm(h_tilde.jacobian(u) - h_tilde.jacobian(v), ord=2, axis=(1, 2))
    return jump / np.linalg.norm(u - v, axis=1)


#: Local ascent of the sample estimates (see :func:`estimate_constants`):
#: candidates kept, trial moves per candidate and round, most rounds, and the
#: step (relative to R) below which the ascent stops.
ASCENT_CANDIDATES, ASCENT_TRIALS, ASCENT_ROUNDS, ASCENT_MIN_STEP = 8, 8, 100, 1e-5
#: Sample pairs whose direction is turned towards the steepest one before the ascent,
#: and power iterations for the singular vectors that turn it.
ASCENT_TURNED, SINGULAR_ITERATIONS = 256, 8


def _ascend(
    objective: Callable[[np.ndarray], np.ndarray], P: np.ndarray, values: np.ndarray,
    move: Callable[[np.ndarray, float, np.random.Generator], np.ndarray], rng: np.random.Generator, R: float,
    polish: Callable[[np.ndarray, float], np.ndarray] | None = None,
) -> float:
    """The largest objective found by local ascent from the best rows of P.

    Each round moves every kept candidate ASCENT_TRIALS times at random by
    about `step` and, with `polish` (a first-order step computed from
    derivatives, e.g. a power-iteration step for a direction), once more by
    ``polish(P, step)``; a candidate keeps its best move when that improves
    it, and the step halves after a round without improvement. Every value
    is the objective at an actual candidate in the ball, so the result is a
    value attained there: still a lower estimate of the supremum.
    """
    keep = np.argsort(np.nan_to_num(values, nan=-np.inf))[::-1][:ASCENT_CANDIDATES]
    P, values = P[keep].copy(), values[keep].copy()
    k, trials = P.shape[0], ASCENT_TRIALS + (polish is not None)
    rows = np.arange(k)
    step = 0.1 * R
    for _ in range(ASCENT_ROUNDS):
        if step < ASCENT_MIN_STEP * R or not np.all(np.isfinite(values)):
            break
        trial = move(np.repeat(P, trials, axis=0), step, rng)
        if polish is not None:
            trial[trials - 1::trials] = polish(P, step)
        scores = np.nan_to_num(objective(trial), nan=-np.inf).reshape(k, trials)
        best = np.argmax(scores, axis=1)
        better = scores[rows, best] > values
        if np.any(better):
            P[better] = trial[rows * trials + best][better]
            values[better] = scores[rows, best][better]
        else:
            step *= 0.5
    return float(np.max(values))


def estimate_constants(
    h_tilde: Map, R: float, n_samples: int = 2000, seed: int = 0, refine: bool = True
) -> tuple[float, float]:
    """Sample estimates (alpha, M) for h~ on B_R(0).

    Draws ``n_samples`` points u uniform in the ball, each paired with a
    random other sample point and with a close partner u + delta w
    (delta = 1e-3 R, w a random unit vector; projected back onto the ball
    when it leaves it), and takes

    - alpha ~ max ||Dh~(u) - Dh~(v)||_2 / ||u - v|| over the pairs and over
      close pairs on shells of radii R 2^-j (:func:`_shell_jumps`: in a huge
      ball the curvature near the centre is never sampled uniformly), and
    - M ~ max of 1 / sigma_min(Dh~(u)) over the points and of
      ||u - v|| / ||h~(u) - h~(v)|| over the pairs.

    With `refine` (the default), each maximum is then pushed up, since the
    suprema sit at isolated points, often on the sphere, which uniform
    samples approach slowly: the ASCENT_TURNED best close pairs have their
    direction turned towards the steepest one (a power-iteration step on
    D^2 h~(u)), then :func:`_ascend` runs from the ASCENT_CANDIDATES best
    candidates (close pairs for alpha, with that turn as its first-order
    move; points for M, stepping sigma_min down its gradient; far pairs for
    M), ASCENT_TRIALS random moves each per round, at most ASCENT_ROUNDS
    rounds, halving the step from 0.1 R when no move helps.

    Every value is a ratio attained at points of the ball, so both results
    are *lower* estimates of the suprema (docs/theory.md, section 5); bounds
    computed from them are estimates, not guarantees.
    """
    d = h_tilde.dim
    rng = np.random.default_rng(seed)
    U = sample_ball(rng, n_samples, d, R)
    w = rng.standard_normal((n_samples, d))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    delta = 1e-3 * R
    close = onto_ball(U + delta * w, R)
    far = U[rng.permutation(n_samples)]

    # Pairs closer than delta / 2 are not counted: their ratios would divide rounding
    # errors by a tiny gap (the ascent finds such pairs, e.g. two points on the sphere).
    min_gap = 0.5 * delta

    def jacobian_jump(P: np.ndarray) -> np.ndarray:
        """||Dh~(u) - Dh~(v)|| / ||u - v|| for rows (u, v); 0 where u, v are too close."""
        u, v = P[:, :d], P[:, d:]
        gap = np.linalg.norm(u - v, axis=1)
        jump = np.linalg.norm(h_tilde.jacobian(u) - h_tilde.jacobian(v), ord=2, axis=(1, 2))
        return np.where(gap >= min_gap, jump / np.maximum(gap, min_gap), 0.0)

    def inverse_gain(P: np.ndarray) -> np.ndarray:
        """||u - v|| / ||h~(u) - h~(v)|| for rows (u, v); 0 where u, v are too close."""
        u, v = P[:, :d], P[:, d:]
        gap = np.linalg.norm(u - v, axis=1)
        image_gap = np.maximum(np.linalg.norm(h_tilde(u) - h_tilde(v), axis=1), np.finfo(float).tiny)
        return np.where(gap >= min_gap, gap / image_gap, 0.0)

    def inverse_sigma(P: np.ndarray) -> np.ndarray:
        """1 / sigma_min(Dh~(u)) (inf where singular)."""
        with np.errstate(divide="ignore"):
            return 1.0 / np.linalg.svd(h_tilde.jacobian(P), compute_uv=False)[:, -1]

    close_pairs, far_pairs = np.hstack([U, close]), np.hstack([U, far])
    # The shells draw from their own stream, so the uniform samples and the ascent stay as they were.
    shells = _shell_jumps(h_tilde, R, n_samples, np.random.default_rng([seed, 1]))
    jumps = np.concatenate([jacobian_jump(close_pairs), jacobian_jump(far_pairs), shells])
    sigmas = inverse_sigma(U)
    gains = inverse_gain(far_pairs)
    alpha = float(np.max(jumps))
    M = max(float(np.max(sigmas)), float(np.max(gains)))
    if not refine:
        return alpha, M

    def unit(X: np.ndarray) -> np.ndarray:
        return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), np.finfo(float).tiny)

    def bilinear_gradient(u: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """grad_u of a^T Dh~(u) b, i.e. the derivative of Dh~(u)^T a along b, by
        central differences (two Jacobians per row)."""
        Jp, Jm = h_tilde.jacobian(u + delta * b), h_tilde.jacobian(u - delta * b)
        return np.einsum("kij,ki->kj", Jp - Jm, a) / (2.0 * delta)

    def top_singular_pair(D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top singular vectors (a, b) of each matrix, by power iteration
        (an SVD of every matrix costs too much for d in the hundreds)."""
        b = unit(np.ones(D.shape[:2]) + rng.standard_normal(D.shape[:2]) * 1e-3)
        for _ in range(SINGULAR_ITERATIONS):
            b = unit(np.einsum("kij,ki->kj", D, unit(np.einsum("kij,kj->ki", D, b))))
        return unit(np.einsum("kij,kj->ki", D, b)), b

    def turn_towards_steepest(P: np.ndarray, step: float) -> np.ndarray:
        # One power-iteration step for w maximising ||D^2 h~(u)[w]||: with (a, b) the top singular
        # pair of Dh~(v) - Dh~(u), the best next w is grad_u a^T Dh~(u) b.
        u, v = P[:, :d], P[:, d:]
        a, b = top_singular_pair(h_tilde.jacobian(v) - h_tilde.jacobian(u))
        direction = unit(bilinear_gradient(u, a, b))
        return np.hstack([u, onto_ball(u + delta * direction, R)])

    def flatten_further(P: np.ndarray, step: float) -> np.ndarray:
        # A gradient step that lowers sigma_min(Dh~(u)): d sigma = a^T dDh~ b for its singular pair (a, b).
        left, _, right = np.linalg.svd(h_tilde.jacobian(P))
        return onto_ball(P - step * unit(bilinear_gradient(P, left[:, :, -1], right[:, -1, :])), R)

    def move_close_pair(P: np.ndarray, step: float, rng: np.random.Generator) -> np.ndarray:
        # Move u and turn the direction w, keeping the partner delta away.
        u = onto_ball(P[:, :d] + step / np.sqrt(d) * rng.standard_normal((P.shape[0], d)), R)
        direction = unit(unit(P[:, d:] - P[:, :d]) + (step / R) * rng.standard_normal((P.shape[0], d)))
        return np.hstack([u, onto_ball(u + delta * direction, R)])

    def move_points(P: np.ndarray, step: float, rng: np.random.Generator) -> np.ndarray:
        k = P.shape[1] // d
        moved = P + step / np.sqrt(d) * rng.standard_normal(P.shape)
        return np.hstack([onto_ball(moved[:, j * d:(j + 1) * d], R) for j in range(k)])

    # In high dimensions a random w is nearly orthogonal to the steepest direction: turn the
    # best sample pairs' w once before choosing the candidates (three Jacobians per pair).
    best = np.argsort(jumps[:n_samples])[::-1][:ASCENT_TURNED]
    turned = turn_towards_steepest(close_pairs[best], 0.0)
    turned_jumps = jacobian_jump(turned)
    alpha = max(alpha, float(np.max(turned_jumps)))
    alpha = max(alpha, _ascend(jacobian_jump, np.vstack([turned, close_pairs]),
                               np.concatenate([turned_jumps, jumps[:n_samples]]), move_close_pair, rng, R,
                               polish=turn_towards_steepest))
    M = max(M, _ascend(inverse_sigma, U, sigmas, move_points, rng, R, polish=flatten_further),
            _ascend(inverse_gain, far_pairs, gains, move_points, rng, R))
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
        as_nonnegative(value, f"constants[{key!r}]")
    if "R" in given and float(given["R"]) != R:
        raise ValueError(f"constants['R'] = {given['R']} differs from radius = {R}; R is the radius")
    estimated = [k for k in _GIVEN if k not in given]
    alpha, M = float(given.get("alpha", 0.0)), float(given.get("M", 0.0))
    if estimated:
        alpha_hat, M_hat = estimate_constants(h_tilde, R, n_samples, seed)
        alpha = alpha_hat if "alpha" in estimated else alpha
        M = M_hat if "M" in estimated else M
    L, B = derived(alpha, M, R)
    if "L" not in given and "alpha" in estimated:
        estimated.append("L")
    if "B" not in given and estimated:
        estimated.append("B")
    L = float(given.get("L", L))
    B = float(given.get("B", B))
    return Constants(alpha, M, R, L, B, tuple(estimated), n_samples if estimated else 0)


def paper_epsilon(scales: np.ndarray, c: Constants) -> float:
    """Theorem 2's bound for any schedule: max{2 alpha R a_1, B max_i (a_i - a_{i-1}) / a_i}."""
    first = 2.0 * c.alpha * c.R * scales[0]
    if scales.size == 1:
        return float(first)
    # np.max propagates NaN (Python's max would drop it in favour of `first`).
    return float(np.max([first, c.B * np.max(np.diff(scales) / scales[1:])]))


def sharp_epsilon(scales: np.ndarray, c: Constants) -> float:
    """The sharp bound (docs/theory.md, section 4b) for any schedule:
    max{alpha R a_1, alpha R M max_i (a_i - a_{i-1})}."""
    first = c.alpha * c.R * scales[0]
    if scales.size == 1:
        return float(first)
    return float(np.max([first, c.alpha * c.R * c.M * np.max(np.diff(scales))]))
