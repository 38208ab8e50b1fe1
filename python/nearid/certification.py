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
    "inverse_lipschitz": "Lip f^-1",
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
        ``"boxes"`` (max_boxes), ``"exhausted"`` (boxes at float64 resolution)
        or, for ``"inverse_lipschitz"``, ``"limit"``: delta is bracketed to
        rtol / 10 and the bound ``||K^-1|| / (1 - delta)`` cannot get tighter.
    radius : float
    center : ndarray, shape (d,)
        The ball.
    delta : tuple of float or None
        ``"inverse_lipschitz"`` only: the bracket on
        ``delta = sup ||K^-1 Df(x) - I||`` over the ball, with ``K = Df(center)``;
        the upper bound is ``||K^-1|| / (1 - delta)``.
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
        (Lip (f - Id) = sup ||Df - I||) or ``"inverse_lipschitz"`` (Lip of
        f^-1 on f(ball), the paper's M).
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
    callback, bar = _progress.fraction_callback(1.0, f"certify {quantity}", progress)
    try:
        raw = _core.certify(f.compiled, quantity, radius, center_, rtol, seconds, boxes, callback)
    finally:
        if bar is not None:
            bar.close()
    delta = (raw["delta_lower"], raw["delta_upper"]) if quantity == "inverse_lipschitz" else None
    return Certificate(
        quantity=quantity,
        lower=float(raw["lower"]),
        upper=float(raw["upper"]),
        witness=np.asarray(raw["witness"], dtype=np.float64),
        boxes=int(raw["boxes"]),
        seconds=float(raw["seconds"]),
        rtol=rtol,
        stopped=str(raw["stopped"]),
        radius=radius,
        center=np.zeros(f.dim) if center_ is None else center_,
        delta=delta,
    )
