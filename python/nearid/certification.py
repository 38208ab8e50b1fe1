"""Certified two-sided bounds on Lipschitz constants over a ball (DESIGN 7).

:func:`certify` brackets a Lipschitz quantity of a map on the closed ball
``||x - center|| <= radius`` in the L2 norm:

- the **upper** bound is a theorem about the float64 parameters as given: the
  Jacobian is enclosed over boxes covering the ball with interval arithmetic
  rounded outward, and the operator norm of every matrix in each enclosure is
  bounded (verified eigenvalue bounds, never a plain floating-point SVD);
- the **lower** bound is attained: it is a rigorous lower bound on the value
  at the point :attr:`Certificate.witness` of the ball.

Branch-and-bound splits the boxes with the largest upper bounds until
``upper / lower - 1 <= rtol``, the time limit or the box budget. The result
is the same for any thread count (without a time limit).

Supported maps: those built from ResidualBlock, ResidualNet, Affine and Chain
(and the layers of decompositions built from them), with any activation.
For relu the Jacobian is enclosed by the Clarke hull at the kinks, which keeps
the Lipschitz bounds valid. Maps evaluated by Python callables
(:class:`~nearid.maps.FromCallable`) and inverses cannot be enclosed and
raise ValueError.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _progress
from ._native import core as _core
from ._validation import as_count, as_positive, as_vector, check_choice
from .maps import Map

#: The quantities :func:`certify` brackets.
QUANTITIES: tuple[str, ...] = tuple(_core.QUANTITIES)

_DESCRIPTIONS = {
    "lipschitz": "Lip f",
    "deviation": "Lip (f - Id)",
    "jacobian_lipschitz": "Lip Df",
    "inverse_lipschitz": "Lip f^-1",
    "layer_curvature": "sup ||d/da Df(a u)||",
    "layer_deviation": "Lip (h_i - Id)",
}


@dataclass(frozen=True, eq=False)
class Certificate:
    """A two-sided bound ``lower <= quantity <= upper`` on a ball.

    Attributes
    ----------
    quantity : str
        One of :data:`QUANTITIES`.
    lower : float
        Attained: a rigorous lower bound on the quantity's value at
        :attr:`witness` (``||Df(x)||``, ``||Df(x) - I||`` or
        ``1 / sigma_min(Df(x))``), so the quantity on the ball is at least this.
    upper : float
        Rigorous upper bound; ``inf`` when none could be proven (for
        ``"inverse_lipschitz"``: when ``delta >= 1``, see :attr:`delta`).
    witness : ndarray, shape (d,)
        The point of the ball where :attr:`lower` is attained.
    boxes : int
        Boxes whose enclosures were computed.
    seconds : float
        Wall-clock time.
    rtol : float
        The requested relative gap.
    stopped : str
        Why the search stopped: ``"converged"``, ``"time"`` (max_seconds),
        ``"boxes"`` (max_boxes), ``"exhausted"`` (boxes at float64 resolution),
        ``"overflow"`` (Df overflows float64 at the centre; upper is inf)
        or, for ``"inverse_lipschitz"``, ``"limit"``: delta is bracketed to
        rtol / 10 and the bound ``||K^-1|| / (1 - delta)`` cannot get tighter.
    radius : float
    center : ndarray, shape (d,)
        The ball.
    delta : tuple of float or None
        ``"inverse_lipschitz"`` only: the bracket on
        ``delta = sup ||K^-1 Df(x) - I||`` over the ball, with ``K = Df(center)``;
        the upper bound is ``||K^-1|| / (1 - delta)``.
    direction : ndarray, shape (d,), or None
        ``"jacobian_lipschitz"`` only: the unit direction v with
        ``||D^2 f(witness)[v]|| >= lower``.
    """

    quantity: str
    lower: float
    upper: float
    witness: np.ndarray
    boxes: int
    seconds: float
    rtol: float
    stopped: str
    radius: float
    center: np.ndarray
    delta: tuple[float, float] | None = None
    direction: np.ndarray | None = None

    @property
    def gap(self) -> float:
        """``upper / lower - 1`` (0 when both are 0, inf when only the lower bound is 0)."""
        if self.upper == self.lower:
            return 0.0
        if self.lower <= 0.0:
            return math.inf
        return self.upper / self.lower - 1.0

    @property
    def converged(self) -> bool:
        """True when ``gap <= rtol``."""
        return self.gap <= self.rtol

    def __repr__(self) -> str:
        what = _DESCRIPTIONS.get(self.quantity, self.quantity)
        gap = "inf" if math.isinf(self.gap) else f"{self.gap:.2%}"
        state = "converged" if self.converged else f"not converged: stopped by {self.stopped}"
        ball = f"||x - c|| <= {self.radius:g}"
        return (f"Certificate({self.lower:.6g} <= {what} <= {self.upper:.6g} on {ball}, gap {gap} ({state}), "
                f"witness {np.array2string(self.witness, precision=4, threshold=6)}, {self.boxes} boxes, "
                f"{self.seconds:.2f} s)")


def certify(
    f: Map,
    radius: float = 1.0,
    center: Any = None,
    quantity: str = "lipschitz",
    rtol: float = 0.01,
    max_seconds: float | None = None,
    max_boxes: int = 1_000_000,
    progress: bool = False,
) -> Certificate:
    """Certified lower and upper bounds on a Lipschitz quantity of `f` on a ball.

    Parameters
    ----------
    f : Map
        Built from ResidualBlock, ResidualNet, Affine and Chain.
    radius : float
        Radius of the ball (L2), > 0.
    center : array_like, shape (d,), optional
        Centre of the ball; default the origin.
    quantity : str
        ``"lipschitz"`` (Lip f = sup ||Df||), ``"deviation"``
        (Lip (f - Id) = sup ||Df - I||), ``"jacobian_lipschitz"`` (Lip of Df
        in operator norm: sup over x and unit v of ``||D^2 f(x)[v]||``, the
        paper's alpha; needs smooth activations) or ``"inverse_lipschitz"``
        (Lip of f^-1 on f(ball), the paper's M).
    rtol : float
        Stop when ``upper <= (1 + rtol) lower``.
    max_seconds : float, optional
        Time limit; the certificate then says it stopped early (its bounds
        stay valid). Without it the result is reproducible bit for bit.
    max_boxes : int
        Budget of boxes (memory grows with it: about 2 d + 8 doubles each).
    progress : bool
        Show lower / upper as a progress bar (needs tqdm and a terminal).

    Returns
    -------
    Certificate

    Raises
    ------
    TypeError
        `f` is not a nearid map.
    ValueError
        `f` holds a part that cannot be enclosed (a Python callable, an
        inverse), bad options, or, for ``"inverse_lipschitz"``, Df(center)
        is singular.
    """
    if not isinstance(f, Map):
        raise TypeError(f"f must be a nearid map; got {type(f).__name__}")
    quantity = check_choice(quantity, "quantity", QUANTITIES)
    radius = as_positive(radius, "radius")
    rtol = as_positive(rtol, "rtol")
    seconds = 0.0 if max_seconds is None else as_positive(max_seconds, "max_seconds")
    boxes = as_count(max_boxes, "max_boxes", minimum=1)
    center_ = None if center is None else as_vector(center, "center", f.dim)
    return _run(f, quantity, radius, center_, rtol, seconds, boxes, progress)


def certify_layer_curvature(f: Map, radius: float, a0: float, a1: float, rtol: float = 0.01,
                            max_seconds: float | None = None, max_boxes: int = 1_000_000) -> Certificate:
    """Bounds on ``sup ||d/da Df(a u)|| = sup ||D^2 f(a u)[u]||`` over ``||u|| <= radius`` and
    ``a0 <= a <= a1``: for a decomposition's normalised map f = h~ and layer i,
    ``Lip(phi_i) <= (a_i - a_{i-1})`` times the upper bound (DESIGN 7)."""
    if not (0.0 <= a0 <= a1 <= 1.0):
        raise ValueError(f"need 0 <= a0 <= a1 <= 1; got a0={a0!r}, a1={a1!r}")
    seconds = 0.0 if max_seconds is None else as_positive(max_seconds, "max_seconds")
    return _run(f, "layer_curvature", as_positive(radius, "radius"), None, as_positive(rtol, "rtol"), seconds,
                as_count(max_boxes, "max_boxes", minimum=1), False, (float(a0), float(a1)))


def layer_deviation_lower(f: Map, u: Any, a0: float, a1: float) -> float:
    """A rigorous lower bound on ``||Df(a1 u) Df(a0 u)^-1 - I||``: for f = h~ of a decomposition,
    the deviation ``||Dh_i(y) - I||`` of layer i at ``y = g_{i-1}(u)`` (a0 = a_{i-1}, a1 = a_i)."""
    return float(_core.layer_deviation_lower(f.compiled, as_vector(u, "u", f.dim), float(a0), float(a1)))


def _run(f: Map, quantity: str, radius: float, center: np.ndarray | None, rtol: float, seconds: float, boxes: int,
         progress: bool, scales: tuple[float, float] = (0.0, 1.0)) -> Certificate:
    callback, bar = _progress.fraction_callback(1.0, f"certify {quantity}", progress)
    try:
        raw = _core.certify(f.compiled, quantity, radius, center, rtol, seconds, boxes, callback, *scales)
    finally:
        if bar is not None:
            bar.close()
    d = f.dim
    point = np.asarray(raw["witness"], dtype=np.float64)
    return Certificate(
        quantity=quantity,
        lower=float(raw["lower"]),
        upper=float(raw["upper"]),
        witness=point[:d],
        boxes=int(raw["boxes"]),
        seconds=float(raw["seconds"]),
        rtol=rtol,
        stopped=str(raw["stopped"]),
        radius=radius,
        center=np.zeros(d) if center is None else center,
        delta=(raw["delta_lower"], raw["delta_upper"]) if quantity == "inverse_lipschitz" else None,
        direction=point[d:] if quantity == "jacobian_lipschitz" else None,
    )


#: Relative margin added to certified constants before they enter the bound formulas of
#: :mod:`nearid.bounds` (a few float64 operations, each within 2^-53 relative): with it the
#: formulas, evaluated in round-to-nearest, still give upper bounds.
FORMULA_MARGIN = 1e-13


@dataclass(frozen=True, eq=False)
class DecompositionCertificate:
    """Certified bounds for a decomposition (:meth:`nearid.Decomposition.certify`).

    Attributes
    ----------
    alpha, M : Certificate
        Lip Dh~ (``"jacobian_lipschitz"``) and Lip h~^-1 (``"inverse_lipschitz"``)
        of the normalised map on the ball.
    layers : tuple of Certificate
        Per nonlinear layer h_i, bounds on ``||h_i - Id||_Lip`` on its domain
        g_{i-1}(ball) (quantity ``"layer_deviation"``): the lower bound is
        attained at ``g_{i-1}(witness)``; the upper bound is
        ``(a_i - a_{i-1}) S_i / (1 - delta_{i-1})`` with S_i certified by
        :func:`certify_layer_curvature` and delta_{i-1} =
        ``sup ||Dh~ - I||`` on the ball of radius ``a_{i-1} R``, certified
        (layer 1: the deviation of h~ on the ball of radius ``a_1 R``).
    linear : tuple of Certificate
        ``||F_i - I||`` for the Hardt-Ma factors.
    epsilon_bound : float
        A certified bound on ``max_i ||h_i - Id||_Lip`` over the nonlinear
        layers: the smallest of ``epsilon_bounds``; inf when nothing could be
        certified.
    epsilon_bounds : dict
        ``"layers"`` (the largest layer upper bound) and the formula bounds
        ``"paper"`` and ``"sharp"`` with the certified alpha and M.
    status : str
        ``"certified"``, or ``"uncertified"`` when epsilon_bound is inf.
    decomposition : Decomposition
        The same decomposition with the certified constants (its
        ``bound_status`` is "certified").
    seconds : float
    """

    alpha: Certificate
    M: Certificate
    layers: tuple[Certificate, ...]
    linear: tuple[Certificate, ...]
    epsilon_bound: float
    epsilon_bounds: dict[str, float]
    status: str
    decomposition: Any
    seconds: float

    @property
    def upper(self) -> np.ndarray:
        """The layers' upper bounds (nonlinear, then linear), shape (m + m',)."""
        return np.array([c.upper for c in self.layers + self.linear])

    @property
    def lower(self) -> np.ndarray:
        """The layers' lower bounds (nonlinear, then linear), shape (m + m',)."""
        return np.array([c.lower for c in self.layers + self.linear])

    def __repr__(self) -> str:
        worst = max((c.upper / c.lower for c in self.layers if c.lower > 0), default=math.inf)
        return (f"DecompositionCertificate(m={len(self.layers)}, "
                f"epsilon_bound={self.epsilon_bound:.6g} [{self.status}], alpha <= {self.alpha.upper:.6g}, "
                f"M <= {self.M.upper:.6g}, layers' upper / lower <= {worst:.4g}, {self.seconds:.2f} s)")


#: The box budget for alpha inside :meth:`nearid.Decomposition.certify`.
ALPHA_BOXES = 200_000


def _pattern_search(objective: Any, u: np.ndarray, value: float, radius: float) -> tuple[np.ndarray, float]:
    """Raise `value` = objective(u) by compass moves inside the ball (steps from R / 20 down to R / 2^12)."""
    step = radius / 20
    d = u.size
    while step > radius / 4096:
        improved = False
        for axis in range(d):
            for sign in (1.0, -1.0):
                trial = u.copy()
                trial[axis] += sign * step
                relative = np.linalg.norm(trial / radius)  # scaled: tiny radii do not underflow
                if relative > 1 - 1e-9:
                    trial *= (1 - 1e-9) / relative
                v = objective(trial)
                if v > value:
                    u, value, improved = trial, v, True
        if not improved:
            step /= 2
    return u, value


def _up(x: float) -> float:
    return math.nextafter(x, math.inf)


def _down(x: float) -> float:
    return math.nextafter(x, -math.inf)


def certify_decomposition_layers(
    h_tilde: Map, scales: np.ndarray, radius: float, linear_factors: tuple[np.ndarray, ...], rtol: float,
    deadline: float | None, samples: np.ndarray,
) -> tuple[Certificate, Certificate, tuple[Certificate, ...], tuple[Certificate, ...]]:
    """The certificates of :class:`DecompositionCertificate` (alpha, M, layers, linear) for the
    normalised map `h_tilde`; `samples` (points of the ball) seed the layers' lower bounds."""
    import time

    from .lipschitz import quotient_norms
    from .maps import Affine

    def remaining(share: float = 1.0) -> float | None:
        """A `share` of the time left (every search gets its part of max_seconds, not what the first leaves)."""
        if deadline is None:
            return None
        return max((deadline - time.monotonic()) * share, 1e-3)

    # alpha enters only the formula bounds, which the layers' own bounds beat: a box budget and a
    # quarter of the time keep it cheap; M gets a third of what is left, the layers share the rest.
    alpha = certify(h_tilde, radius, quantity="jacobian_lipschitz", rtol=rtol, max_seconds=remaining(0.25),
                    max_boxes=ALPHA_BOXES)
    M = certify(h_tilde, radius, quantity="inverse_lipschitz", rtol=rtol, max_seconds=remaining(1 / 3))
    d = h_tilde.dim
    layers = []
    previous = None
    for i, a in enumerate(scales):
        a = float(a)
        J = h_tilde.jacobian(a * samples)
        measured = quotient_norms(J, previous).deviation
        previous = J
        candidates = samples[np.argsort(measured)[-3:]]
        if i == 0:
            # h_1 = g_1: Dh_1(u) = Dh~(a_1 u), so its deviation is h~'s on the ball of radius a_1 R.
            c = certify(h_tilde, a * radius, quantity="deviation", rtol=rtol, max_seconds=remaining(1 / len(scales)))
            layers.append(Certificate("layer_deviation", c.lower, c.upper, c.witness / a, c.boxes, c.seconds, rtol,
                                      c.stopped, radius, np.zeros(d)))
            continue
        a0 = float(scales[i - 1])
        layers_left = len(scales) - i
        delta = certify(h_tilde, a0 * radius, quantity="deviation", rtol=rtol, max_seconds=remaining(0.5 / layers_left))
        curvature = certify_layer_curvature(h_tilde, radius, a0, a, rtol=rtol, max_seconds=remaining(1 / layers_left))
        # (a_i - a_{i-1}) S_i / (1 - delta), each operation rounded up (down for the divisor).
        if delta.upper < 1.0:
            upper = _up(_up(_up(a - a0) * curvature.upper) / _down(1.0 - delta.upper))
        else:
            upper = math.inf
        points = [*candidates, curvature.witness]
        lows = [layer_deviation_lower(h_tilde, u, a0, a) for u in points]
        best = int(np.argmax(lows))
        points[best], lows[best] = _pattern_search(lambda u: layer_deviation_lower(h_tilde, u, a0, a),
                                                   np.asarray(points[best], dtype=np.float64), lows[best], radius)
        stopped = next((c.stopped for c in (delta, curvature) if c.stopped != "converged"), "converged")
        layers.append(Certificate("layer_deviation", lows[best], upper, np.asarray(points[best], dtype=np.float64),
                                  delta.boxes + curvature.boxes, delta.seconds + curvature.seconds, rtol, stopped,
                                  radius, np.zeros(d)))
    linear = tuple(certify(Affine(F), 1.0, quantity="deviation") for F in linear_factors)
    return alpha, M, tuple(layers), linear
