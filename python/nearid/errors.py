"""nearid's own exceptions and warnings. Invalid arguments raise ValueError or TypeError."""

from __future__ import annotations

__all__ = ["ConvergenceError", "NearidWarning", "EstimateWarning", "VacuousBoundWarning"]


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

    def __init__(self, message: str, failed: int = 0, total: int = 0, worst_residual: float = float("nan"), reason: str = ""):
        super().__init__(message)
        self.failed = failed
        self.total = total
        self.worst_residual = worst_residual
        self.reason = reason


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
