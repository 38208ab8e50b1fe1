"""nearid's own exceptions and warnings. Invalid arguments raise ValueError or TypeError."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConvergenceError",
    "DivergenceError",
    "NoPairError",
    "UnsupportedModule",
    "NearidWarning",
    "EstimateWarning",
    "VacuousBoundWarning",
]


class ConvergenceError(RuntimeError):
    """An inversion did not converge for some points.

    Attributes
    ----------
    failed : int
        Points that did not converge.
    total : int
        Points in the batch.
    worst_residual : float
        The largest ``||f(x) - y||`` among the failed points (best iterate).
    reason : str
        Why the worst point stopped: "max_iterations", "stalled",
        "singular_jacobian" or "non_finite".
    """

    def __init__(
        self, message: str, failed: int = 0, total: int = 0, worst_residual: float = float("nan"), reason: str = ""
    ):
        super().__init__(message)
        self.failed = failed
        self.total = total
        self.worst_residual = worst_residual
        self.reason = reason


class NoPairError(ValueError):
    """Every pair of points is a duplicate (X_j == X_k and Y_j == Y_k), so no
    pairwise ratio exists. Raised by :func:`nearid.pairwise_lipschitz` and
    :func:`nearid.dask.pairwise_lipschitz`; a ValueError, so callers catching
    ValueError still do."""

    def __init__(self) -> None:
        super().__init__("every pair of points is a duplicate (X_j == X_k and Y_j == Y_k): no ratio to report")


class DivergenceError(ValueError):
    """Training reached a non-finite loss or non-finite parameters.

    Raised by :func:`nearid.landscape.train` when the starting loss overflows; when a step
    leaves the finite numbers with the safeguard off (``max_increase=None``);
    or when no step size down to ``lr * 2**-60`` keeps the loss finite and
    within the safeguard. The message gives the step and the first and last
    losses. A ValueError, so callers catching ValueError still do.

    Attributes
    ----------
    step : int
        The step that failed, counted from 1 as in ``TrainResult.losses``
        (0: the starting loss is not finite).
    losses : ndarray, shape (step + 1,)
        The loss before every step, ending with the failed step's: non-finite,
        or the safeguard's last trial (NaN when the parameters were not finite).
    """

    def __init__(self, message: str, step: int, losses: Any):
        super().__init__(message)
        self.step = step
        self.losses = losses


class UnsupportedModule(ValueError):
    """A PyTorch module, or one operation of its graph, that :func:`nearid.from_torch`
    cannot represent with nearid's maps; the message names the graph node and the
    operation. ``from_torch(module, fallback=True)`` wraps such parts in a
    :class:`nearid.FromTorch` map instead."""


class NearidWarning(UserWarning):
    """Base class of nearid's warnings."""


class EstimateWarning(NearidWarning):
    """A measured value contradicts a bound: the bound was computed from sample
    estimates of its constants that are too low (or from given constants that
    are wrong). Use more samples (``n_samples``) or give the constants."""


class VacuousBoundWarning(NearidWarning):
    """A decomposition's bound on the layer deviations says nothing useful: it is
    >= 1, or the inverse Lipschitz constant M is so large that the map is close
    to non-injective on the ball."""
