"""Loss and parametric gradient of a residual network: nearid's C++ backprop
beside the NumPy backpropagation a user would write, in the same run."""

from __future__ import annotations

import numpy as np
import pytest

import nearid
from nearid.bench import numpy_loss_and_grad
from nearid.maps import ResidualNet

CASE = dict(n=100_000, d=8, k=16, depth=16)
GROUP = "loss and gradient: " + ", ".join(f"{k}={v}" for k, v in CASE.items())


@pytest.fixture(scope="module")
def case():
    net = ResidualNet.random(CASE["d"], CASE["k"], CASE["depth"], 0.5, seed=0)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((CASE["n"], CASE["d"]))
    Y = np.sin(X)
    params = [(b.A, b.B, b.bias, b.shift) for b in net.blocks]
    loss, grads = numpy_loss_and_grad(params, X, Y)
    ours = nearid.landscape.loss_and_grad(net, X, Y)
    assert ours.loss == pytest.approx(loss, rel=1e-12)
    for g, (dA, dB, dc, ds) in zip(ours.gradients, grads):
        np.testing.assert_allclose(g.A, dA, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(g.B, dB, rtol=1e-9, atol=1e-12)
    return net, params, X, Y


@pytest.mark.benchmark(group=GROUP)
def test_loss_and_grad_nearid(nearid_benchmark, case):
    net, _, X, Y = case
    nearid_benchmark(nearid.landscape.loss_and_grad, net, X, Y)


@pytest.mark.benchmark(group=GROUP)
def test_loss_and_grad_numpy(baseline_benchmark, case):
    _, params, X, Y = case
    baseline_benchmark(numpy_loss_and_grad, params, X, Y)
