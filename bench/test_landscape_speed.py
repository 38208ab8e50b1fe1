"""Loss and parametric gradient of a residual network: nearid's C++ backprop
beside the peers a user would pick (NumPy backpropagation, JAX
jit(value_and_grad), PyTorch autograd eager and compiled), in the same run."""

from __future__ import annotations

import numpy as np
import peers
import pytest

import nearid
from conftest import measuring, peer, record_error
from nearid.app.bench import CASES, numpy_loss_and_grad
from nearid.maps import ResidualNet

CASE = CASES["gradient"]
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
    # The answer peers are compared with: the loss, then (dA, dB, dc, ds) per block.
    answer = [np.array(ours.loss)] + [a for g in ours.gradients for a in (g.A, g.B, g.bias, g.shift)]
    return net, params, X, Y, answer


@pytest.mark.benchmark(group=GROUP)
def test_loss_and_grad_nearid(nearid_benchmark, case):
    net, _, X, Y, _ = case
    nearid_benchmark(nearid.landscape.loss_and_grad, net, X, Y)


@pytest.mark.benchmark(group=GROUP)
def test_loss_and_grad_numpy(peer_benchmark, case):
    _, params, X, Y, answer = case
    peer(peer_benchmark, "NumPy backprop")
    loss, grads = peer_benchmark(numpy_loss_and_grad, params, X, Y)
    record_error(peer_benchmark, answer, [np.array(loss)] + [a for g in grads for a in g])


@pytest.mark.benchmark(group=GROUP)
def test_loss_and_grad_jax(peer_benchmark, case):
    jax = peers.jax_module()
    _, params, X, Y, answer = case
    peer(peer_benchmark, "JAX jit(value_and_grad)")
    p, forward = peers.jax_resnet(params)
    fn = jax.jit(jax.value_and_grad(peers.half_squared_loss(jax.numpy, forward)))
    Xj, Yj = jax.numpy.asarray(X), jax.numpy.asarray(Y)
    jax.block_until_ready(fn(p, Xj, Yj))
    loss, grads = peer_benchmark(lambda: jax.block_until_ready(fn(p, Xj, Yj)))
    record_error(peer_benchmark, answer, [np.asarray(loss)] + [np.asarray(a) for g in grads for a in g])


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning")  # raised inside torch.compile / torch.func
@pytest.mark.parametrize("mode", ["eager", "compile"])
def test_loss_and_grad_torch(peer_benchmark, case, mode, request):
    torch = peers.torch_module()
    _, params, X, Y, answer = case
    peer(peer_benchmark, f"torch autograd {mode}")
    p, forward = peers.torch_resnet(torch, params)
    for block in p:
        for a in block:
            a.requires_grad_(True)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    loss = peers.half_squared_loss(torch, forward)
    if mode == "compile":
        loss = peers.compiled(torch, measuring(request.config), loss, p, Xt, Yt)
    fn = peers.torch_loss_and_grad(torch, forward, loss)
    loss, grads = peer_benchmark(fn, p, Xt, Yt)
    record_error(peer_benchmark, answer, [loss.detach().numpy()] + [g.numpy() for g in grads])
