"""nearid's main job: a short end-to-end run that shows what the library does.

Builds a deep residual network of near-identity tanh blocks, evaluates it and
its Jacobians on a batch with nearid's C++ core, and times both beside the
NumPy code a user would otherwise write, checking that the answers agree.

    python examples/main_job.py
"""

from __future__ import annotations

import time

import numpy as np

import nearid
from nearid.maps import ResidualNet


def best_time(function, *args, repeat: int = 5) -> float:
    """Fastest of `repeat` runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def numpy_forward(net: ResidualNet, X: np.ndarray) -> np.ndarray:
    for b in net.blocks:
        X = X + np.tanh(X @ b.B.T + b.bias) @ b.A.T + b.shift
    return X


def numpy_jacobian(net: ResidualNet, X: np.ndarray) -> np.ndarray:
    n, d = X.shape
    J = np.broadcast_to(np.eye(d), (n, d, d)).copy()
    for b in net.blocks:
        z = X @ b.B.T + b.bias
        J = J + np.einsum("ak,nkb->nab", b.A, (1.0 - np.tanh(z) ** 2)[:, :, None] * (b.B @ J))
        X = X + np.tanh(z) @ b.A.T + b.shift
    return J


def main() -> None:
    print(f"nearid {nearid.__version__}: {nearid.cpu_variant} build, "
          f"{nearid.get_num_threads()} threads, OpenMP {'on' if nearid.has_openmp else 'off'}")

    d, width, depth, scale = 8, 16, 64, 0.5
    net = ResidualNet.random(dim=d, width=width, depth=depth, scale=scale, seed=0)
    X = np.random.default_rng(1).standard_normal((100_000, d))
    print(f"\nResidualNet: d={d}, width={width}, depth={depth}, every block's residual "
          f"{scale}-Lipschitz at most (max bound {max(b.residual_lipschitz_bound for b in net.blocks):.3f})")

    Y = net(X)
    error = np.abs(Y - numpy_forward(net, X)).max() / np.abs(Y).max()
    t_nearid, t_numpy = best_time(net, X), best_time(numpy_forward, net, X)
    print(f"forward  n={X.shape[0]}: nearid {t_nearid * 1e3:7.1f} ms, NumPy {t_numpy * 1e3:7.1f} ms, "
          f"ratio {t_numpy / t_nearid:5.1f}x, relative difference {error:.1e}")

    Xj = X[:20_000]
    J = net.jacobian(Xj)
    error = np.abs(J - numpy_jacobian(net, Xj)).max() / np.abs(J).max()
    t_nearid, t_numpy = best_time(net.jacobian, Xj, repeat=3), best_time(numpy_jacobian, net, Xj, repeat=3)
    print(f"jacobian n={Xj.shape[0]}: nearid {t_nearid * 1e3:7.1f} ms, NumPy {t_numpy * 1e3:7.1f} ms, "
          f"ratio {t_numpy / t_nearid:5.1f}x, relative difference {error:.1e}")

    deviation = np.linalg.norm(J - np.eye(d), ord=2, axis=(1, 2))
    singular = np.linalg.svd(J, compute_uv=False)
    print(f"\non these points: max ||Dh - I|| = {deviation.max():.3f}, "
          f"singular values of Dh in [{singular.min():.3f}, {singular.max():.3f}]")


if __name__ == "__main__":
    main()
