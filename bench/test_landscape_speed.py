"""Loss and parametric gradient of a residual network: nearid's C++ backprop
beside the NumPy backpropagation a user would write, in the same run."""

from __future__ import annotations

import numpy as np
import pytest

import nearid
from nearid.maps import ResidualNet

CASE = dict(n=100_000, d=8, k=16, depth=16)
GROUP = "loss and gradient: " + ", ".join(f"{k}={v}" for k, v in CASE.items())


def numpy_loss_and_grad(params, X, Y):
    """Forward keeping activations, then backward through x + A tanh(B x + c) + s."""
    n = X.shape[0]
    xs, ts = [X], []
    for A, B, c, s in params:
        t = np.tanh(xs[-1] @ B.T + c)
        ts.append(t)
        xs.append(xs[-1] + t @ A.T + s)
    r = xs[-1] - Y
    loss = 0.5 * np.sum(r * r) / n
    delta = r / n
    grads = []
    for (A, B, c, s), x, t in zip(reversed(params), reversed(xs[:-1]), reversed(ts)):
        dz = (delta @ A) * (1.0 - t * t)
        grads.append((delta.T @ t, dz.T @ x, dz.sum(axis=0), delta.sum(axis=0)))
        delta = delta + dz @ B
    return loss, grads[::-1]


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
