"""Linear near-identity factors (Hardt & Ma 2017).

A matrix A with det A > 0 is a product ``F_m ... F_1`` of matrices close to
the identity. The construction (docs/theory.md, section 3, which proves the
bound below): the polar decomposition A = U P, ``U = exp(S)`` with S real
skew-symmetric read off the real Schur form of U (pairs of eigenvalues -1
become rotations by pi), ``P = exp(L)`` with L symmetric; the path
``A(t) = U^t P^t`` runs from I to A, and ``F_i = A(i/m) A((i-1)/m)^{-1}``.
Every factor then satisfies

    ||F_i - I||_2 <= (e^{g/m} - 1) + 2 sin(theta / (2m)),

with g = max_j |log sigma_j(A)| and theta <= pi the largest rotation angle
of U. Real arithmetic throughout.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._native import core as _core
from ._validation import as_count, as_matrix

__all__ = ["hardt_ma", "hardt_ma_bound"]


def _square(A: Any) -> np.ndarray:
    A = as_matrix(A, "A")
    if A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(f"A must be a non-empty square matrix of shape (d, d); got {A.shape}")
    return A


def hardt_ma(A: Any, m: int) -> np.ndarray:
    """Near-identity factors of A.

    Parameters
    ----------
    A : array_like, shape (d, d)
        det A must be > 0 (a product of matrices near I has positive
        determinant); otherwise ValueError, which suggests flipping one row.
    m : int
        Number of factors (>= 1).

    Returns
    -------
    ndarray, shape (m, d, d)
        ``F_1, ..., F_m`` (``factors[i]`` is F_{i+1}) with ``F_m @ ... @ F_1 == A``
        up to rounding (relative error about 1e-14) and every ``||F_i - I||_2``
        within :func:`hardt_ma_bound`. One array, so that m in the millions
        costs m d^2 doubles and no Python objects per factor.

    Notes
    -----
    Singular values anywhere in the float64 range are fine: the sign of det A
    comes from a log-determinant, so ``0.1 * I`` of size 400 (det 1e-400) or
    ``diag(1e-200, 1e-200, 1e200, 1e200)`` are accepted. Long runs stop on
    Ctrl-C.
    """
    A = _square(A)
    m = as_count(m, "m", limit="factors")
    return _core.hardt_ma(A, m)


def hardt_ma_bound(A: Any, m: int) -> float:
    """The bound ``(e^{g/m} - 1) + 2 sin(theta / (2m))`` on every ``||F_i - I||_2``."""
    A = _square(A)
    m = as_count(m, "m", limit="factors")
    g, theta = _core.hardt_ma_spectrum(A)
    return float(np.expm1(g / m) + 2.0 * np.sin(theta / (2.0 * m)))
