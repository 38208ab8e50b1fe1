"""nearid's own exceptions. Invalid arguments raise ValueError or TypeError."""

from __future__ import annotations

__all__ = ["ConvergenceError"]


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
