"""Independent NumPy/SciPy references shared by the tests (nothing here calls nearid)."""

from __future__ import annotations

import numpy as np
from scipy.special import expit


def activation(name: str, z: np.ndarray) -> np.ndarray:
    """s(z) computed with NumPy/SciPy."""
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return expit(z)
    if name == "softplus":
        return np.logaddexp(0.0, z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "identity":
        return z.copy()
    raise ValueError(name)


def activation_slope(name: str, z: np.ndarray) -> np.ndarray:
    """s'(z) computed with NumPy/SciPy (relu: 1 for z > 0, else 0)."""
    if name == "tanh":
        with np.errstate(over="ignore"):  # cosh overflows to inf beyond |z| = 710: slope 0
            return 1.0 / np.cosh(z) ** 2  # 1 - tanh^2 would cancel for large |z|
    if name == "sigmoid":
        return expit(z) * expit(-z)
    if name == "softplus":
        return expit(z)
    if name == "relu":
        return (z > 0).astype(float)
    if name == "identity":
        return np.ones_like(z)
    raise ValueError(name)


def block_forward(block, X: np.ndarray) -> np.ndarray:
    """x + A s(B x + bias) + shift, row by row, in NumPy."""
    return X + activation(block.activation, X @ block.B.T + block.bias) @ block.A.T + block.shift


def block_jacobian(block, X: np.ndarray) -> np.ndarray:
    """I + A diag(s'(B x + bias)) B at each row, shape (n, d, d)."""
    slopes = activation_slope(block.activation, X @ block.B.T + block.bias)
    return np.eye(X.shape[1]) + np.einsum("ak,nk,kb->nab", block.A, slopes, block.B)


def net_forward_and_jacobian(blocks, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values and Jacobians of blocks applied in order, by the chain rule in NumPy."""
    J = np.broadcast_to(np.eye(X.shape[1]), (X.shape[0], X.shape[1], X.shape[1])).copy()
    for block in blocks:
        J = block_jacobian(block, X) @ J
        X = block_forward(block, X)
    return X, J


def central_differences(f, X: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """(n, d, d) Jacobians of a batched map by central differences with step h."""
    n, d = X.shape
    J = np.empty((n, d, d))
    for b in range(d):
        step = np.zeros(d)
        step[b] = h
        J[:, :, b] = (f(X + step) - f(X - step)) / (2 * h)
    return J


def assert_close(actual: np.ndarray, expected: np.ndarray, rel: float) -> None:
    """max |actual - expected| <= rel * max |expected| (norm-wise relative error)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(float(np.abs(expected).max(initial=0.0)), np.finfo(float).tiny)
    error = float(np.abs(actual - expected).max(initial=0.0)) / scale
    assert error <= rel, f"relative error {error:.3e} > {rel:.1e}"


def ball_points(rng: np.random.Generator, n: int, d: int, radius: float, center=None) -> np.ndarray:
    """n points uniform in the ball of `radius` around `center` (default 0): a
    decomposition's layers live on its ball."""
    U = rng.standard_normal((n, d))
    U *= (radius * rng.random(n) ** (1.0 / d) / np.linalg.norm(U, axis=1))[:, None]
    return U if center is None else U + np.asarray(center, dtype=float)


def mp_pairwise(X: np.ndarray, Y: np.ndarray, X2=None, Y2=None):
    """Every pair's ratio ||Y_j - Y_k|| / ||X_j - X_k|| in mpmath at 256 bits (differences
    of doubles are then exact to far below an ulp, at any exponent): a list of
    (ratio, j, k) over pairs j < k of one set, or (j, k) across two sets; ratio
    is mpf, +inf for X_j == X_k with Y_j != Y_k; pairs with both equal are left out."""
    import mpmath

    with mpmath.workprec(256):
        def squared(a, b):
            return mpmath.fsum((mpmath.mpf(float(u)) - mpmath.mpf(float(v))) ** 2 for u, v in zip(a, b))

        if X2 is None:
            pairs = [(j, k) for j in range(len(X)) for k in range(j + 1, len(X))]
            X2, Y2 = X, Y
        else:
            pairs = [(j, k) for j in range(len(X)) for k in range(len(X2))]
        out = []
        for j, k in pairs:
            nx, ny = squared(X[j], X2[k]), squared(Y[j], Y2[k])
            if nx == 0:
                if ny != 0:
                    out.append((mpmath.inf, j, k))
                continue
            out.append((mpmath.sqrt(ny / nx), j, k))
        return out


def to_double(value) -> float:
    """An mpf rounded to the nearest double; inf beyond the largest (as the kernel documents)."""
    import mpmath

    if mpmath.isinf(value):
        return float("inf")
    result = float(value)  # mpmath rounds to nearest; values beyond the range give inf
    return result


def mp_best(ratios, reduce: str):
    """(value, candidate pairs): the extreme exact ratio and every pair whose ratio is within
    one ulp of it (any of them may be reported when ratios tie to the last bit)."""
    if not ratios:
        return None, set()
    best = max(r for r, _, _ in ratios) if reduce == "max" else min(r for r, _, _ in ratios)
    value = to_double(best)
    ulp = np.spacing(abs(value)) if np.isfinite(value) else 0.0
    near = {(j, k) for r, j, k in ratios
            if abs(to_double(r) - value) <= ulp or (np.isinf(value) and to_double(r) == value)}
    first = min((j, k) for r, j, k in ratios if r == best)
    return value, near | {first}
