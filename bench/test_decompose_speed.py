"""Decomposition kernels beside the code a user would write.

- One layer h_m = g_m o g_{m-1}^{-1} (one inversion per point) vs the same
  layer by a vectorised NumPy Newton iteration (np.linalg.solve on batched
  Jacobians), a NumPy fixed-point iteration and both loops jitted in JAX,
  each run to the same residual tolerance.
- The whole composition dec(X) vs h(X): the decomposition's overhead.
"""

from __future__ import annotations

import numpy as np
import peers
import pytest

import nearid
from conftest import peer, record_error
from nearid.app.bench import CASES, NumpyLayer
from nearid.bounds import sample_ball
from nearid.maps import ResidualNet

N, D, WIDTH, DEPTH, M = (CASES["layer"][key] for key in ("n", "d", "k", "depth", "m"))
TOL = 1e-13
LAYER_GROUP = f"last layer (inversion of g_(m-1)): n={N}, d={D}, {DEPTH} tanh blocks, m={M}"
WHOLE_GROUP = f"whole composition dec(X) [nearid] vs h(X) [baseline]: n={N}, d={D}, m={M}"


@pytest.fixture(scope="module")
def case():
    net = ResidualNet.random(D, WIDTH, DEPTH, 0.5, seed=0)
    dec = nearid.decompose(net, M, inversion=nearid.InversionSettings(tol=TOL))
    X = sample_ball(np.random.default_rng(1), N, D, 1.0)
    Y = dec.g(M - 1)(X)
    numpy_layer = NumpyLayer(net, dec, TOL)
    expected = dec.g(M)(X)
    ours = dec.nonlinear[-1](Y)
    # Both reach the same accuracy against the exact answer g_m(x).
    assert np.abs(ours - expected).max() < 1e-11
    assert np.abs(numpy_layer(Y) - expected).max() < 1e-11
    return net, dec, X, Y, numpy_layer, ours


@pytest.mark.benchmark(group=LAYER_GROUP)
def test_last_layer_nearid(nearid_benchmark, case):
    _, dec, _, Y, _, _ = case
    nearid_benchmark(dec.nonlinear[-1], Y)


@pytest.mark.benchmark(group=LAYER_GROUP)
def test_last_layer_numpy_newton(peer_benchmark, case):
    *_, Y, numpy_layer, ours = case
    peer(peer_benchmark, "NumPy Newton")
    record_error(peer_benchmark, ours, peer_benchmark(numpy_layer, Y))


@pytest.mark.benchmark(group=LAYER_GROUP)
def test_last_layer_numpy_fixed_point(peer_benchmark, case):
    *_, Y, layer, ours = case
    peer(peer_benchmark, "NumPy fixed-point")

    def fixed_point_layer(Y):
        u = peers.numpy_fixed_point(lambda U: layer.g(layer.a_prev, U), Y, TOL)
        return layer.g(layer.a_last, u)

    record_error(peer_benchmark, ours, peer_benchmark(fixed_point_layer, Y))


@pytest.mark.benchmark(group=LAYER_GROUP)
@pytest.mark.parametrize("method", ["fixed_point", "newton"])
def test_last_layer_jax(peer_benchmark, case, method):
    jax = peers.jax_module()
    jnp = jax.numpy
    *_, Y, layer, ours = case
    peer(peer_benchmark, f"JAX jit {method.replace('_', '-')}")
    p, forward = peers.jax_resnet(layer.params)
    J0_inv, h0 = jnp.asarray(layer.J0_inv), jnp.asarray(layer.h0)

    def g(a, U):  # g_a(u) = J0^{-1} (h(a u) - h(0)) / a
        return ((forward(p, a * U) - h0) @ J0_inv.T) / a

    solver = peers.jax_fixed_point if method == "fixed_point" else peers.jax_newton
    solve = solver(jax, lambda U: g(layer.a_prev, U), TOL, 200)
    fn = jax.jit(lambda Y: g(layer.a_last, solve(Y)))
    Yj = jnp.asarray(Y)
    fn(Yj).block_until_ready()
    record_error(peer_benchmark, ours, peer_benchmark(lambda: fn(Yj).block_until_ready()))


@pytest.mark.benchmark(group=WHOLE_GROUP)
def test_whole_composition_nearid(nearid_benchmark, case):
    _, dec, X, *_ = case
    nearid_benchmark(dec, X)


@pytest.mark.benchmark(group=WHOLE_GROUP)
def test_whole_composition_h(baseline_benchmark, case):
    net, _, X, *_ = case
    baseline_benchmark(net, X)
