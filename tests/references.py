"""Independent NumPy/SciPy references shared by the tests (nothing here calls nearid)."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit, ndtr


def activation_parts(name: str) -> tuple[str, float]:
    """("elu", 0.5) from "elu(alpha=0.5)", with the documented defaults when no parameter is written."""
    kind, _, rest = name.partition("(")
    defaults = {"elu": 1.0, "leaky_relu": 0.01, "lipswish": 1.0}
    return kind, float(rest.rstrip(")").split("=")[1]) if rest else defaults.get(kind, 0.0)


GELU_C = np.sqrt(2.0 / np.pi)


def activation(name: str, z: np.ndarray) -> np.ndarray:
    """s(z) computed with NumPy/SciPy."""
    kind, c = activation_parts(name)
    with np.errstate(over="ignore", invalid="ignore"):
        if kind == "tanh":
            return np.tanh(z)
        if kind == "sigmoid":
            return expit(z)
        if kind == "softplus":
            return np.logaddexp(0.0, z)
        if kind == "relu":
            return np.maximum(z, 0.0)
        if kind == "identity":
            return z.copy()
        if kind == "elu":
            return np.where(z > 0, z, c * np.expm1(np.minimum(z, 0.0)))
        if kind == "leaky_relu":
            return np.where(z > 0, z, c * z)
        if kind == "silu":
            return z * expit(z)
        if kind == "lipswish":
            return z * expit(c * z) / 1.1
        if kind == "gelu":
            return z * ndtr(z)
        if kind == "gelu_tanh":
            return 0.5 * z * (1.0 + np.tanh(GELU_C * (z + 0.044715 * z**3)))
    raise ValueError(name)


def activation_slope(name: str, z: np.ndarray) -> np.ndarray:
    """s'(z) computed with NumPy/SciPy (at kinks the left derivative: relu 0, leaky_relu its slope, elu alpha)."""
    kind, c = activation_parts(name)
    with np.errstate(over="ignore", invalid="ignore"):
        if kind == "tanh":
            return 1.0 / np.cosh(z) ** 2  # 1 - tanh^2 would cancel for large |z|; cosh overflows to inf: slope 0
        if kind == "sigmoid":
            return expit(z) * expit(-z)
        if kind == "softplus":
            return expit(z)
        if kind == "relu":
            return (z > 0).astype(float)
        if kind == "identity":
            return np.ones_like(z)
        if kind == "elu":
            return np.where(z > 0, 1.0, c * np.exp(np.minimum(z, 0.0)))
        if kind == "leaky_relu":
            return np.where(z > 0, 1.0, c)
        if kind == "silu":
            return expit(z) + z * expit(z) * expit(-z)
        if kind == "lipswish":
            u = c * z
            return (expit(u) + u * expit(u) * expit(-u)) / 1.1
        if kind == "gelu":
            return ndtr(z) + z * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
        if kind == "gelu_tanh":
            u = GELU_C * (z + 0.044715 * z**3)
            sech2 = 1.0 / np.cosh(u) ** 2
            return 0.5 * (1.0 + np.tanh(u)) + 0.5 * z * sech2 * GELU_C * (1.0 + 3 * 0.044715 * z**2)
    raise ValueError(name)


def mp_activation(name: str, t: float, order: int):
    """s, s' or s'' (order 0, 1, 2) at t in mpmath's working precision, from closed forms
    (left derivatives at kinks)."""
    import mpmath

    kind, c = activation_parts(name)
    t = mpmath.mpf(t)
    c = mpmath.mpf(c)

    def logistic(v):
        s = 1 / (1 + mpmath.exp(-v))
        return [s, s * (1 - s), s * (1 - s) * (1 - 2 * s)]

    if kind == "tanh":
        s = mpmath.tanh(t)
        return [s, 1 - s**2, -2 * s * (1 - s**2)][order]
    if kind == "sigmoid":
        return logistic(t)[order]
    if kind == "softplus":
        return [mpmath.log1p(mpmath.exp(t)), *logistic(t)[:2]][order]
    if kind == "identity":
        return [t, mpmath.mpf(1), mpmath.mpf(0)][order]
    if kind == "relu":
        return [max(t, 0), mpmath.mpf(1 if t > 0 else 0), mpmath.mpf(0)][order]
    if kind == "elu":
        if t > 0:
            return [t, mpmath.mpf(1), mpmath.mpf(0)][order]
        return [c * mpmath.expm1(t), c * mpmath.exp(t), c * mpmath.exp(t)][order]
    if kind == "leaky_relu":
        return [t, mpmath.mpf(1), mpmath.mpf(0)][order] if t > 0 else [c * t, c, mpmath.mpf(0)][order]
    if kind in ("silu", "lipswish"):
        beta, scale = (1, 1) if kind == "silu" else (c, mpmath.mpf(1) / mpmath.mpf("1.1"))
        u = beta * t
        s, ds, dds = logistic(u)
        return [t * s * scale, (s + u * ds) * scale, beta * (2 * ds + u * dds) * scale][order]
    if kind == "gelu":
        if abs(t) > 1000:  # Phi is 1 or 0 far beyond double precision (mpmath's erfc gives up at 1e200)
            return [t if t > 0 else mpmath.mpf(0), mpmath.mpf(1 if t > 0 else 0), mpmath.mpf(0)][order]
        cdf, pdf = mpmath.ncdf(t), mpmath.npdf(t)
        return [t * cdf, cdf + t * pdf, pdf * (2 - t**2)][order]
    if kind == "gelu_tanh":
        if abs(t) > 50:  # sigmoid(v) is 1 or 0 to within exp(-10^5): no numerical differentiation out there
            return [t if t > 0 else mpmath.mpf(0), mpmath.mpf(1 if t > 0 else 0), mpmath.mpf(0)][order]
        g = lambda x: x / (1 + mpmath.exp(-2 * mpmath.sqrt(2 / mpmath.pi) * (x + mpmath.mpf("0.044715") * x**3)))  # noqa: E731
        return g(t) if order == 0 else mpmath.diff(g, t, order)
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
    try:
        return float(value)  # mpmath rounds to nearest; values beyond the range give inf
    except OverflowError:  # an exponent beyond any double's: 0 or inf with its sign
        return math.copysign(0.0 if abs(value) < 1 else math.inf, float(mpmath.sign(value)))


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
