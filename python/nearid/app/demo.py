"""nearid's main job: a short end-to-end run that shows what the library does
(``nearid demo``, ``python -m nearid demo`` or ``python examples/main_job.py``).

1. Builds a deep residual network of near-identity tanh blocks, evaluates it
   and its Jacobians on a batch with nearid's C++ core, and times both beside
   the NumPy code a user would otherwise write, checking that the answers agree.
2. Decomposes a 2-D map (a tanh net followed by a rotation by nearly pi and an
   uneven scaling) into near-identity layers (Bartlett, Evans & Long 2018),
   and prints the scales, the constants, the bound (estimated: its constants
   are sample estimates) beside the measured deviation, the composition
   error and the time of one layer's inversion beside a NumPy Newton solve.
"""

from __future__ import annotations

import time

import numpy as np

import nearid
from nearid import bounds
from nearid.app.bench import CASES, best_time, numpy_resnet_forward, numpy_resnet_jacobian
from nearid.bounds import sample_ball
from nearid.maps import Affine, Chain, ResidualNet


def numpy_forward(net: ResidualNet, X: np.ndarray) -> np.ndarray:
    """The NumPy loop a user would write for `net` (each block's shift included)."""
    return numpy_resnet_forward([(b.A, b.B, b.bias, b.shift) for b in net.blocks], X)


def numpy_jacobian(net: ResidualNet, X: np.ndarray) -> np.ndarray:
    """Jacobians of `net` by the chain rule in NumPy."""
    return numpy_resnet_jacobian([(b.A, b.B, b.bias, b.shift) for b in net.blocks], X)[1]


#: Centre of the planar demo map's ball.
PLANAR_CENTER = np.array([0.2, -0.1])


def planar_map() -> Chain:
    """The 2-D demo map: a tanh residual net followed by a rotation by pi - 0.05
    and an uneven scaling (det > 0, nearly a rotation by pi)."""
    theta = np.pi - 0.05
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return Chain(ResidualNet.random(dim=2, width=8, depth=3, scale=0.5, seed=1),
                 Affine(rotation @ np.diag([2.0, 0.7]), [0.3, -0.2]))


def resnet_map() -> ResidualNet:
    """A 4-D demo map: a random tanh residual network of 4 blocks, each 0.5-Lipschitz near the identity."""
    return ResidualNet.random(dim=4, width=16, depth=4, scale=0.5, seed=0)


def decomposition_demo() -> None:
    h = planar_map()
    center = PLANAR_CENTER
    print("\nDecomposition of a 2-D map h = Affine(rotation by pi - 0.05, scaling) o tanh net, "
          "on the unit ball around (0.2, -0.1)")
    for m in (4, 16, 64):
        dec = nearid.decompose(h, m, radius=1.0, center=center)
        X = center + sample_ball(np.random.default_rng(2), 20_000, 2, 1.0)
        expected = h(X)
        Z = X
        start = time.perf_counter()
        for layer in dec.layers:
            Z = layer(Z)
        elapsed = time.perf_counter() - start
        error = np.abs(Z - expected).max() / np.abs(expected).max()
        inverse_error = np.abs(dec.inverse(expected) - X).max()
        measured = dec.lipschitz().max_nonlinear
        print(f"  m={m:3d}: {bounds.STATUS_LABELS[dec.bound_status]} on max ||h_i - Id||_Lip = "
              f"{dec.epsilon_bound:.4f} = {dec.epsilon_bound * m:.3f}/m, measured max {measured:.4f} (jacobian); "
              f"layers one by one vs h: {error:.1e} ({elapsed * 1e3:.0f} ms for {len(dec.layers)} layers, "
              f"n={X.shape[0]}); inverse error {inverse_error:.1e}")
        if m == 4:
            c = dec.constants
            print(f"  scales a_i = {np.array2string(dec.scales, precision=3)}")
            print(f"  constants (alpha, M estimated from {c.n_samples} samples and refined by local ascent: "
                  "lower estimates, so the bounds are estimates too): "
                  f"alpha={c.alpha:.4f} M={c.M:.4f} R={c.R} L={c.L:.4f} B={c.B:.4f}")
            print(f"  Hardt-Ma factors of J0 = Dh(x0): ||F_i - I|| <= {dec.linear_bound:.4f}")
    theorem = nearid.decompose(h, 64, radius=1.0, center=center, schedule="theorem")
    print(f"  m= 64, schedule 'theorem': c = {theorem.rate:.4f}, Theorem 2's "
          f"{bounds.STATUS_LABELS[theorem.bound_status]} = {theorem.epsilon_bound:.3f}, "
          f"measured max {theorem.lipschitz().max_nonlinear:.4f}")


def inversion_demo() -> None:
    net = ResidualNet.random(dim=5, width=16, depth=4, scale=0.5, seed=0)
    dec = nearid.decompose(net, 40)
    X = sample_ball(np.random.default_rng(1), CASES["layer"]["n"], 5, 1.0)
    Y = dec.g(39)(X)
    layer = dec.nonlinear[-1]  # h_40 = g_40 o g_39^{-1}: one inversion per point
    error = np.abs(layer(Y) - dec.g(40)(X)).max()
    t_layer = best_time(layer, Y)[0]
    t_whole, t_h = best_time(dec, X)[0], best_time(net, X)[0]
    print(f"\nResidualNet d=5, 4 blocks, m=40: last layer on n=20000 points (one inversion each) "
          f"{t_layer * 1e3:.1f} ms, error vs g_40(x) {error:.1e}")
    print(f"whole composition dec(X) {t_whole * 1e3:.2f} ms vs h(X) {t_h * 1e3:.2f} ms "
          f"(overhead {t_whole / t_h:.2f}x)")


def main() -> None:
    """Run the main job, printing to standard output."""
    print(f"nearid {nearid.__version__}: {nearid.cpu_variant} build, "
          f"{nearid.get_num_threads()} threads, OpenMP {'on' if nearid.has_openmp else 'off'}")

    case = CASES["forward_small"]
    d, width, depth, scale = case["d"], case["k"], case["depth"], 0.5
    net = ResidualNet.random(dim=d, width=width, depth=depth, scale=scale, seed=0)
    X = np.random.default_rng(1).standard_normal((case["n"], d))
    print(f"\nResidualNet: d={d}, width={width}, depth={depth}, every block's residual "
          f"{scale}-Lipschitz at most (max bound {max(b.residual_lipschitz_bound for b in net.blocks):.3f})")

    Y = net(X)
    error = np.abs(Y - numpy_forward(net, X)).max() / np.abs(Y).max()
    t_nearid, t_numpy = best_time(net, X)[0], best_time(numpy_forward, net, X)[0]
    print(f"forward  n={X.shape[0]}: nearid {t_nearid * 1e3:7.1f} ms, NumPy {t_numpy * 1e3:7.1f} ms, "
          f"ratio {t_numpy / t_nearid:5.1f}x, relative difference {error:.1e}")

    Xj = X[: CASES["jacobian"]["n"]]
    J = net.jacobian(Xj)
    error = np.abs(J - numpy_jacobian(net, Xj)).max() / np.abs(J).max()
    t_nearid = best_time(net.jacobian, Xj, repeat=3)[0]
    t_numpy = best_time(numpy_jacobian, net, Xj, repeat=3)[0]
    print(f"jacobian n={Xj.shape[0]}: nearid {t_nearid * 1e3:7.1f} ms, NumPy {t_numpy * 1e3:7.1f} ms, "
          f"ratio {t_numpy / t_nearid:5.1f}x, relative difference {error:.1e}")

    deviation = np.linalg.norm(J - np.eye(d), ord=2, axis=(1, 2))
    singular = np.linalg.svd(J, compute_uv=False)
    print(f"\non these points: max ||Dh - I|| = {deviation.max():.3f}, "
          f"singular values of Dh in [{singular.min():.3f}, {singular.max():.3f}]")

    decomposition_demo()
    inversion_demo()


if __name__ == "__main__":
    main()
