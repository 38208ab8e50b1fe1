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
        return 1.0 - np.tanh(z) ** 2
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
