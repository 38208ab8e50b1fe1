"""Kernels beside the NumPy/SciPy code a user would otherwise write.

The baselines here are shared by ``nearid bench`` (a quick table in one
process) and the pytest-benchmark files in ``bench/`` (the measured figures
in the README). :func:`run` times each pair in the same process, best of a
few runs, and checks that both give the same answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import _progress

__all__ = [
    "numpy_resnet_forward",
    "numpy_resnet_jacobian",
    "numpy_loss_and_grad",
    "NumpyLayer",
    "CASES",
    "best_time",
    "run",
    "table",
]


def numpy_resnet_forward(params: Sequence[Sequence[np.ndarray]], X: np.ndarray) -> np.ndarray:
    """X = X + tanh(X B^T + c) A^T (+ s) per block; params holds (A, B, c) or (A, B, c, s) per block
    (the shift-free form is the loop the README's benchmark times)."""
    for A, B, c, *shift in params:
        X = X + np.tanh(X @ B.T + c) @ A.T
        if shift:
            X = X + shift[0]
    return X


def numpy_resnet_jacobian(params: Sequence[Sequence[np.ndarray]], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values and Jacobians (n, d, d) of a tanh residual net by the chain rule, batched with einsum."""
    n, d = X.shape
    J = np.broadcast_to(np.eye(d), (n, d, d)).copy()
    for A, B, c, *shift in params:
        t = np.tanh(X @ B.T + c)
        J = J + np.einsum("ak,nkb->nab", A, (1.0 - t * t)[:, :, None] * (B @ J))
        X = X + t @ A.T
        if shift:
            X = X + shift[0]
    return X, J


def numpy_loss_and_grad(params: Sequence[Sequence[np.ndarray]], X: np.ndarray, Y: np.ndarray) -> tuple[float, list]:
    """Q = 1/(2n) sum ||net(x) - y||^2 and (dA, dB, dc, ds) per block by backpropagation."""
    n = X.shape[0]
    xs, ts = [X], []
    for A, B, c, s in params:
        t = np.tanh(xs[-1] @ B.T + c)
        ts.append(t)
        xs.append(xs[-1] + t @ A.T + s)
    r = xs[-1] - Y
    loss = 0.5 * float(np.sum(r * r)) / n
    delta = r / n
    grads = []
    for (A, B, c, s), x, t in zip(reversed(params), reversed(xs[:-1]), reversed(ts)):
        dz = (delta @ A) * (1.0 - t * t)
        grads.append((delta.T @ t, dz.T @ x, dz.sum(axis=0), delta.sum(axis=0)))
        delta = delta + dz @ B
    return loss, grads[::-1]


class NumpyLayer:
    """The last layer h_m = g_m o g_{m-1}^{-1} of a decomposition of a tanh ResidualNet
    normalised at 0, in NumPy: Newton's method on g_{m-1}(u) = y with batched
    Jacobians and np.linalg.solve, run to the tolerance `tol`."""

    def __init__(self, net: Any, dec: Any, tol: float = 1e-13) -> None:
        self.params = [(b.A, b.B, b.bias, b.shift) for b in net.blocks]
        self.J0_inv = np.linalg.inv(dec.jacobian_at_center)
        self.h0 = net(np.zeros(net.dim))
        self.a_prev, self.a_last = dec.scales[-2], dec.scales[-1]
        self.tol = tol

    def g(self, a: float, U: np.ndarray) -> np.ndarray:
        """g_a(u) = J0^{-1} (h(a u) - h(0)) / a."""
        return ((numpy_resnet_forward(self.params, a * U) - self.h0) @ self.J0_inv.T) / a

    def __call__(self, Y: np.ndarray) -> np.ndarray:
        """h_m(y) for each row of Y."""
        u = Y.copy()
        tolerance = self.tol * (1 + np.linalg.norm(Y, axis=1))
        for _ in range(50):
            values, J = numpy_resnet_jacobian(self.params, self.a_prev * u)
            r = ((values - self.h0) @ self.J0_inv.T) / self.a_prev - Y
            if np.all(np.linalg.norm(r, axis=1) <= tolerance):
                break
            u = u - np.linalg.solve(self.J0_inv @ J, r[..., None])[..., 0]
        return self.g(self.a_last, u)


#: The problem sizes of the README's performance table, in one place for
#: ``nearid bench --full``, the benchmarks in ``bench/`` and the main job.
CASES: dict[str, dict[str, int]] = {
    "forward_small": dict(n=100_000, d=8, k=16, depth=64),
    "forward_large": dict(n=20_000, d=256, k=256, depth=4),
    "jacobian": dict(n=20_000, d=8, k=16, depth=16),
    "gradient": dict(n=100_000, d=8, k=16, depth=16),
    "layer": dict(n=20_000, d=5, k=16, depth=4, m=40),
    "pairwise": dict(n=20_000, d=32),
}


def best_time(function: Callable[..., Any], *args: Any, repeat: int = 5) -> tuple[float, Any]:
    """(fastest of `repeat` calls of ``function(*args)`` in seconds, the last call's value)."""
    best, value = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        value = function(*args)
        best = min(best, time.perf_counter() - start)
    return best, value


def run(full: bool = False, progress: bool = False) -> list[dict[str, Any]]:
    """Time every kernel beside its baseline; one dict per row.

    Quick sizes by default (a few seconds); ``full=True`` uses the README's
    sizes. Each row holds the kernel, sizes, both times (best of a few runs),
    their ratio (baseline / nearid) and the largest difference of the answers.
    """
    import nearid
    from nearid.bounds import sample_ball
    from nearid.maps import ResidualNet

    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []

    def forward_case() -> dict[str, Any]:
        n = CASES["forward_small"]["n"] if full else 20_000
        net = ResidualNet.random(8, 16, 64, 0.5, seed=0)  # zero shifts: the shift-free NumPy loop is exact
        params = [(b.A, b.B, b.bias) for b in net.blocks]
        X = rng.standard_normal((n, 8))
        ours, a = best_time(lambda: net(X), repeat=5)
        theirs, b = best_time(lambda: numpy_resnet_forward(params, X), repeat=3)
        return dict(kernel="ResidualNet forward (64 tanh blocks)", size=f"n={n}, d=8, k=16", nearid_s=ours,
                    baseline_s=theirs, baseline="NumPy", difference=float(np.abs(a - b).max()))

    def layer_case() -> dict[str, Any]:
        n = CASES["layer"]["n"] if full else 5_000
        net = ResidualNet.random(5, 16, 4, 0.5, seed=0)
        dec = nearid.decompose(net, 40, inversion=nearid.InversionSettings(tol=1e-13))
        X = sample_ball(rng, n, 5, 1.0)
        Y = dec.g(39)(X)
        numpy_layer = NumpyLayer(net, dec)
        ours, a = best_time(lambda: dec.nonlinear[-1](Y), repeat=5)
        theirs, b = best_time(lambda: numpy_layer(Y), repeat=2)
        return dict(kernel="decomposition layer (one inversion per point)", size=f"n={n}, d=5, m=40",
                    nearid_s=ours, baseline_s=theirs, baseline="NumPy Newton", difference=float(np.abs(a - b).max()))

    def pairwise_case() -> dict[str, Any]:
        from scipy.spatial.distance import pdist

        n = CASES["pairwise"]["n"] if full else 4_000
        X = rng.standard_normal((n, 32))
        Y = X + 0.3 * np.tanh(X)
        ours, a = best_time(lambda: nearid.pairwise_lipschitz(X, Y).value, repeat=3 if not full else 1)
        theirs, b = best_time(lambda: (pdist(Y) / pdist(X)).max(), repeat=1)
        return dict(kernel="exact max pairwise Lipschitz ratio", size=f"n={n}, d=32", nearid_s=ours,
                    baseline_s=theirs, baseline="SciPy pdist", difference=abs(a - b))

    def gradient_case() -> dict[str, Any]:
        n = CASES["gradient"]["n"] if full else 20_000
        net = ResidualNet.random(8, 16, 16, 0.5, seed=0)
        params = [(b.A, b.B, b.bias, b.shift) for b in net.blocks]
        X = rng.standard_normal((n, 8))
        Y = np.sin(X)
        ours, a = best_time(lambda: nearid.landscape.loss_and_grad(net, X, Y), repeat=5)
        theirs, b = best_time(lambda: numpy_loss_and_grad(params, X, Y), repeat=3)
        difference = max(float(np.abs(g.A - dA).max()) for g, (dA, *_rest) in zip(a.gradients, b[1]))
        return dict(kernel="loss and parametric gradient (16 blocks)", size=f"n={n}, d=8, k=16", nearid_s=ours,
                    baseline_s=theirs, baseline="NumPy backprop", difference=difference)

    cases = [forward_case, layer_case, gradient_case]
    try:
        import scipy  # noqa: F401

        cases.append(pairwise_case)
    except ImportError:  # pragma: no cover - scipy is a test extra
        pass
    for case in _progress.iterate(cases, "bench", progress):
        row = case()
        row["ratio"] = row["baseline_s"] / row["nearid_s"]
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`run` as a text table."""
    lines = [f"{'kernel':48s} {'size':18s} {'nearid':>10s} {'baseline':>10s} {'ratio':>7s}  baseline",
             "-" * 110]
    for r in rows:
        lines.append(f"{r['kernel']:48s} {r['size']:18s} {r['nearid_s'] * 1e3:8.1f}ms {r['baseline_s'] * 1e3:8.1f}ms "
                     f"{r['ratio']:6.1f}x  {r['baseline']} (answers differ by {r['difference']:.1e})")
    return "\n".join(lines)
