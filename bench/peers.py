"""The strongest peers a user would pick instead of nearid: JAX (jit, float64
on the CPU) and PyTorch (float64, eager and torch.compile), in the formulation
each library is written for. Benchmarks import this module only after
pytest.importorskip has found the library (the optional extra `bench`).

Inputs are converted to the library's arrays outside the timed call (JAX's
copy to its buffers, zero-copy torch.from_numpy); each timed call ends when
its result is ready (block_until_ready for JAX).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

THREADS = 2  # the project machine's cores


def jax_module() -> Any:
    """jax, set to float64 on the CPU (skips the benchmark when jax is absent)."""
    import pytest

    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)  # this machine has only the CPU backend
    return jax


def torch_module() -> Any:
    """torch with THREADS threads (skips the benchmark when torch is absent)."""
    import pytest

    torch = pytest.importorskip("torch")
    torch.set_num_threads(THREADS)
    return torch


def compiled(torch: Any, measuring: bool, function: Callable, *example: Any) -> Callable:
    """torch.compile(function), compiled by one call on `example` outside the timing.
    Skips the benchmark in smoke runs (not `measuring`: compiling takes about a
    minute) and when this machine cannot compile (no C++ compiler for inductor)."""
    import pytest

    if not measuring:
        pytest.skip("torch.compile is timed only with --benchmark-enable (it compiles for about a minute)")
    fn = torch.compile(function)
    try:
        fn(*example)
    except Exception as error:  # inductor's failures have no common type
        pytest.skip(f"torch.compile failed here: {type(error).__name__}: {error}")
    return fn


# ------------------------------------------------------------------ residual nets


def jax_resnet(params: Sequence[Sequence[np.ndarray]]) -> tuple[Any, Callable]:
    """(JAX params, forward(params, X)): X + tanh(X B^T + c) A^T (+ s) per block."""
    import jax.numpy as jnp

    def forward(p: Any, X: Any) -> Any:
        for A, B, c, *shift in p:
            X = X + jnp.tanh(X @ B.T + c) @ A.T
            if shift:
                X = X + shift[0]
        return X

    return [tuple(jnp.asarray(a) for a in block) for block in params], forward


def torch_resnet(torch: Any, params: Sequence[Sequence[np.ndarray]]) -> tuple[Any, Callable]:
    """(torch params, forward(params, X)) with the same blocks as jax_resnet."""

    def forward(p: Any, X: Any) -> Any:
        for A, B, c, *shift in p:
            X = X + torch.tanh(X @ B.T + c) @ A.T
            if shift:
                X = X + shift[0]
        return X

    return [tuple(torch.tensor(a) for a in block) for block in params], forward  # copies: params are read-only


def jax_value_and_jacobian(jax: Any, forward: Callable) -> Callable:
    """jit(vmap(jacfwd)): values (n, d) and Jacobians (n, d, d) of forward."""

    def one(p: Any, x: Any) -> Any:
        y = forward(p, x)
        return y, y

    jac = jax.jacfwd(one, argnums=1, has_aux=True)
    return jax.jit(jax.vmap(lambda p, x: jac(p, x)[::-1], in_axes=(None, 0)))


def torch_value_and_jacobian(torch: Any, forward: Callable) -> Callable:
    """torch.func.vmap(jacfwd): values (n, d) and Jacobians (n, d, d) of forward."""

    def one(p: Any, x: Any) -> Any:
        y = forward(p, x)
        return y, y

    jac = torch.func.jacfwd(one, argnums=1, has_aux=True)
    batched = torch.func.vmap(lambda p, x: jac(p, x)[::-1], in_dims=(None, 0))
    return batched


def half_squared_loss(xp: Any, forward: Callable) -> Callable:
    """Q(params) = 1/(2n) sum ||forward(params, X) - Y||^2 in the array module xp."""

    def loss(p: Any, X: Any, Y: Any) -> Any:
        r = forward(p, X) - Y
        return 0.5 * xp.sum(r * r) / X.shape[0]

    return loss


def torch_loss_and_grad(torch: Any, forward: Callable, loss: Callable | None = None) -> Callable:
    """(Q, [grad per parameter]) by autograd; params must require gradients. `loss`
    (default: half_squared_loss of forward) may be compiled: torch.compile builds
    its backward too (AOTAutograd), while autograd.grad itself cannot be compiled."""
    loss = loss or half_squared_loss(torch, forward)

    def value_and_grad(p: Any, X: Any, Y: Any) -> Any:
        flat = [a for block in p for a in block]
        q = loss(p, X, Y)
        return q, torch.autograd.grad(q, flat)

    return value_and_grad


# ------------------------------------------------------------------ inversion


def jax_iteration(jax: Any, g: Callable, step: Callable, tol: float, max_iter: int) -> Callable:
    """jit of u <- step(u, g(u) - y) over the whole batch, from u = y, until every
    residual ||g(u) - y|| <= tol (1 + ||y||) or `max_iter` steps."""
    import jax.numpy as jnp

    def solve(Y: Any) -> Any:
        limit = tol * (1.0 + jnp.linalg.norm(Y, axis=1))

        def cond(state: Any) -> Any:
            _, r, k = state
            return (k < max_iter) & jnp.any(jnp.linalg.norm(r, axis=1) > limit)

        def body(state: Any) -> Any:
            u, r, k = state
            u = step(u, r)
            return u, g(u) - Y, k + 1

        u, _, _ = jax.lax.while_loop(cond, body, (Y, g(Y) - Y, 0))
        return u

    return jax.jit(solve)


def jax_fixed_point(jax: Any, g: Callable, tol: float, max_iter: int) -> Callable:
    """jit of the fixed-point iteration u <- u - (g(u) - y) (see :func:`jax_iteration`)."""
    return jax_iteration(jax, g, lambda u, r: u - r, tol, max_iter)


def jax_newton(jax: Any, g: Callable, tol: float, max_iter: int) -> Callable:
    """jit of Newton's method u <- u - Dg(u)^{-1} (g(u) - y), Jacobians by vmap(jacfwd)
    (see :func:`jax_iteration`)."""
    import jax.numpy as jnp

    jacobians = jax.vmap(jax.jacfwd(lambda u: g(u[None, :])[0]))
    return jax_iteration(jax, g, lambda u, r: u - jnp.linalg.solve(jacobians(u), r[..., None])[..., 0], tol,
                         max_iter)


def numpy_fixed_point(g: Callable, Y: np.ndarray, tol: float, max_iter: int = 200) -> np.ndarray:
    """u <- u - (g(u) - y) over the whole batch until every residual is within tol (1 + ||y||)."""
    limit = tol * (1.0 + np.linalg.norm(Y, axis=1))
    u = Y.copy()
    r = g(u) - Y
    for _ in range(max_iter):
        if np.all(np.linalg.norm(r, axis=1) <= limit):
            break
        u -= r
        r = g(u) - Y
    return u


# ------------------------------------------------------------------ pairwise distances


def chunked_max_ratio(distances: Callable, X: Any, Y: Any, block: int) -> float:
    """max over pairs i < j of d(Y_i, Y_j) / d(X_i, X_j), by blocks of `block`
    rows: distances(A, B) gives the (len A, len B) distance matrix. Only blocks
    on or above the diagonal, so each pair is computed once as in pdist."""
    n = X.shape[0]
    best = 0.0
    for i in range(0, n, block):
        for j in range(i, n, block):
            dx = np.asarray(distances(X[i:i + block], X[j:j + block]))
            dy = np.asarray(distances(Y[i:i + block], Y[j:j + block]))
            if i == j:  # pairs above the diagonal only
                keep = np.triu(np.ones(dx.shape, dtype=bool), k=1)
                dx, dy = dx[keep], dy[keep]
            best = max(best, float((dy / dx).max()))
    return best


def numpy_newton(value_and_jacobian: Callable, Y: np.ndarray, tol: float, max_iter: int = 50) -> np.ndarray:
    """Newton's method u <- u - Dg(u)^{-1} (g(u) - y) with batched np.linalg.solve, until
    every residual is within tol (1 + ||y||); value_and_jacobian(U) gives g(U) and Dg(U)."""
    limit = tol * (1.0 + np.linalg.norm(Y, axis=1))
    u = Y.copy()
    for _ in range(max_iter):
        values, J = value_and_jacobian(u)
        r = values - Y
        if np.all(np.linalg.norm(r, axis=1) <= limit):
            break
        u -= np.linalg.solve(J, r[..., None])[..., 0]
    return u
