"""nearid.invert beside the loops a user would write to solve f(x) = y for a
batch: NumPy fixed-point and Newton iterations, and the same loops jitted in
JAX (lax.while_loop, Jacobians by vmap(jacfwd)), run to the same residual
tolerance; also nearid's single methods beside "auto".

The problem is the near-identity tanh net of tests/test_inversion.py (d=5,
k=12, 4 blocks, scale 0.3) on 20000 standard normal points: fixed-point
iteration contracts there by about 0.13 to 0.2 per step, slowly enough that
Newton wins at d=5.
"""

from __future__ import annotations

import numpy as np
import peers
import pytest

import nearid
from conftest import peer, record_error
from nearid.app.bench import numpy_resnet_forward, numpy_resnet_jacobian
from nearid.maps import ResidualNet

N, D, WIDTH, DEPTH, SCALE, TOL = 20_000, 5, 12, 4, 0.3, 1e-13
GROUP = f"inversion: near-identity tanh net, n={N}, d={D}, k={WIDTH}, {DEPTH} blocks, tol={TOL}"


@pytest.fixture(scope="module")
def case():
    net = ResidualNet.random(D, WIDTH, DEPTH, SCALE, seed=3)
    X = np.random.default_rng(4).standard_normal((N, D))
    Y = net(X)
    ours = nearid.invert(net, Y, tol=TOL)
    assert np.abs(ours.x - X).max() < 1e-11
    params = [(b.A, b.B, b.bias) for b in net.blocks]
    return net, params, Y, ours.x


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("method", nearid.inversion.METHODS)
def test_invert_nearid(benchmark, case, method):
    net, _, Y, ours = case
    benchmark.extra_info.update(impl="nearid" if method == "auto" else "variant", variant=f"nearid {method}")
    result = benchmark(nearid.invert, net, Y, method=method, tol=TOL)
    benchmark.extra_info.update(iterations_mean=float(result.iterations.mean()),
                                iterations_max=int(result.iterations.max()))
    record_error(benchmark, ours, result.x)


@pytest.mark.benchmark(group=GROUP)
def test_invert_numpy_fixed_point(peer_benchmark, case):
    _, params, Y, ours = case
    peer(peer_benchmark, "NumPy fixed-point")
    x = peer_benchmark(peers.numpy_fixed_point, lambda U: numpy_resnet_forward(params, U), Y, TOL)
    record_error(peer_benchmark, ours, x)


@pytest.mark.benchmark(group=GROUP)
def test_invert_numpy_newton(peer_benchmark, case):
    _, params, Y, ours = case
    peer(peer_benchmark, "NumPy Newton")
    x = peer_benchmark(peers.numpy_newton, lambda U: numpy_resnet_jacobian(params, U), Y, TOL)
    record_error(peer_benchmark, ours, x)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("method", ["fixed_point", "newton"])
def test_invert_jax(peer_benchmark, case, method):
    jax = peers.jax_module()
    _, params, Y, ours = case
    peer(peer_benchmark, f"JAX jit {method.replace('_', '-')}")
    p, forward = peers.jax_resnet(params)
    solver = peers.jax_fixed_point if method == "fixed_point" else peers.jax_newton
    fn = solver(jax, lambda U: forward(p, U), TOL, 200)
    Yj = jax.numpy.asarray(Y)
    fn(Yj).block_until_ready()
    record_error(peer_benchmark, ours, peer_benchmark(lambda: fn(Yj).block_until_ready()))
