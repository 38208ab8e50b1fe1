"""Decomposition kernels beside the NumPy code a user would write.

- One layer h_m = g_m o g_{m-1}^{-1} (one inversion per point) vs a
  vectorised NumPy Newton iteration (np.linalg.solve on batched Jacobians)
  run to the same tolerance.
- The whole composition dec(X) vs h(X): the decomposition's overhead.
"""

from __future__ import annotations

import numpy as np
import pytest

import nearid
from nearid.bench import NumpyLayer
from nearid.bounds import sample_ball
from nearid.maps import ResidualNet

N, D, WIDTH, DEPTH, M = 20_000, 5, 16, 4, 40
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
    # Both reach the same accuracy against the exact answer g_m(x).
    assert np.abs(dec.nonlinear[-1](Y) - expected).max() < 1e-11
    assert np.abs(numpy_layer(Y) - expected).max() < 1e-11
    return net, dec, X, Y, numpy_layer


@pytest.mark.benchmark(group=LAYER_GROUP)
def test_last_layer_nearid(nearid_benchmark, case):
    _, dec, _, Y, _ = case
    nearid_benchmark(dec.nonlinear[-1], Y)


@pytest.mark.benchmark(group=LAYER_GROUP)
def test_last_layer_numpy_newton(baseline_benchmark, case):
    *_, Y, numpy_layer = case
    baseline_benchmark(numpy_layer, Y)


@pytest.mark.benchmark(group=WHOLE_GROUP)
def test_whole_composition_nearid(nearid_benchmark, case):
    _, dec, X, _, _ = case
    nearid_benchmark(dec, X)


@pytest.mark.benchmark(group=WHOLE_GROUP)
def test_whole_composition_h(baseline_benchmark, case):
    net, _, X, _, _ = case
    baseline_benchmark(net, X)
