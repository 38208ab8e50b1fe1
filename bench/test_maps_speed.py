"""Map evaluation: nearid beside the strongest peers a user would pick (NumPy,
JAX jit, PyTorch eager and torch.compile, all float64), in the same run.

Run: pytest bench --benchmark-enable --benchmark-json=bench.json && python bench/report.py bench.json
"""

from __future__ import annotations

import numpy as np
import peers
import pytest

from conftest import measuring, peer, record_error
from nearid.app.bench import CASES as SIZES
from nearid.app.bench import numpy_resnet_forward, numpy_resnet_jacobian
from nearid.maps import Affine, ResidualNet

CASES = {"small": SIZES["forward_small"], "large": SIZES["forward_large"]}


def forward_group(name):
    return f"resnet forward {name}: " + ", ".join(f"{k}={v}" for k, v in CASES[name].items())


@pytest.fixture(scope="module", params=list(CASES))
def resnet_case(request):
    case = CASES[request.param]
    net = ResidualNet.random(case["d"], case["k"], case["depth"], 0.5, seed=0)
    X = np.random.default_rng(1).standard_normal((case["n"], case["d"]))
    params = [(b.A, b.B, b.bias) for b in net.blocks]  # random nets have zero shifts
    np.testing.assert_allclose(net(X[:1000]), numpy_resnet_forward(params, X[:1000]), rtol=1e-12, atol=1e-12)
    return request.param, net, params, X, net(X)


def test_resnet_forward_nearid(nearid_benchmark, resnet_case):
    name, net, _, X, _ = resnet_case
    nearid_benchmark.group = forward_group(name)
    nearid_benchmark(net, X)


def test_resnet_forward_numpy(peer_benchmark, resnet_case):
    name, _, params, X, ours = resnet_case
    peer(peer_benchmark, "NumPy").group = forward_group(name)
    record_error(peer_benchmark, ours, peer_benchmark(numpy_resnet_forward, params, X))


def test_resnet_forward_jax(peer_benchmark, resnet_case):
    jax = peers.jax_module()
    name, _, params, X, ours = resnet_case
    peer(peer_benchmark, "JAX jit").group = forward_group(name)
    p, forward = peers.jax_resnet(params)
    fn = jax.jit(forward)
    Xj = jax.numpy.asarray(X)
    fn(p, Xj).block_until_ready()
    record_error(peer_benchmark, ours, peer_benchmark(lambda: fn(p, Xj).block_until_ready()))


@pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning")  # raised inside torch.compile / torch.func
@pytest.mark.parametrize("mode", ["eager", "compile"])
def test_resnet_forward_torch(peer_benchmark, resnet_case, mode, request):
    torch = peers.torch_module()
    name, _, params, X, ours = resnet_case
    peer(peer_benchmark, f"torch {mode}").group = forward_group(name)
    p, forward = peers.torch_resnet(torch, params)
    Xt = torch.from_numpy(X)
    fn = peers.compiled(torch, measuring(request.config), forward, p, Xt) if mode == "compile" else forward
    with torch.no_grad():
        record_error(peer_benchmark, ours, peer_benchmark(fn, p, Xt).numpy())


JACOBIAN_CASE = SIZES["jacobian"]
JACOBIAN_GROUP = "resnet jacobian: " + ", ".join(f"{k}={v}" for k, v in JACOBIAN_CASE.items())


@pytest.fixture(scope="module")
def jacobian_case():
    c = JACOBIAN_CASE
    net = ResidualNet.random(c["d"], c["k"], c["depth"], 0.5, seed=0)
    X = np.random.default_rng(1).standard_normal((c["n"], c["d"]))
    params = [(b.A, b.B, b.bias) for b in net.blocks]
    _, J = numpy_resnet_jacobian(params, X[:500])
    np.testing.assert_allclose(net.jacobian(X[:500]), J, rtol=1e-12, atol=1e-12)
    values, jacobians = net.value_and_jacobian(X)
    return net, params, X, (values, jacobians.reshape(c["n"], c["d"], c["d"]))


@pytest.mark.benchmark(group=JACOBIAN_GROUP)
def test_resnet_jacobian_nearid(nearid_benchmark, jacobian_case):
    net, _, X, _ = jacobian_case
    nearid_benchmark(net.value_and_jacobian, X)


@pytest.mark.benchmark(group=JACOBIAN_GROUP)
def test_resnet_jacobian_numpy(peer_benchmark, jacobian_case):
    _, params, X, ours = jacobian_case
    peer(peer_benchmark, "NumPy einsum")
    record_error(peer_benchmark, ours, peer_benchmark(numpy_resnet_jacobian, params, X))


@pytest.mark.benchmark(group=JACOBIAN_GROUP)
def test_resnet_jacobian_jax(peer_benchmark, jacobian_case):
    jax = peers.jax_module()
    _, params, X, ours = jacobian_case
    peer(peer_benchmark, "JAX jit(vmap(jacfwd))")
    p, forward = peers.jax_resnet(params)
    fn = peers.jax_value_and_jacobian(jax, forward)
    Xj = jax.numpy.asarray(X)
    jax.block_until_ready(fn(p, Xj))
    record_error(peer_benchmark, ours, peer_benchmark(lambda: jax.block_until_ready(fn(p, Xj))))


@pytest.mark.benchmark(group=JACOBIAN_GROUP)
@pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning")  # raised inside torch.compile / torch.func
def test_resnet_jacobian_torch(peer_benchmark, jacobian_case):
    torch = peers.torch_module()
    _, params, X, ours = jacobian_case
    peer(peer_benchmark, "torch.func vmap(jacfwd)")
    p, forward = peers.torch_resnet(torch, params)
    fn = peers.torch_value_and_jacobian(torch, forward)
    Xt = torch.from_numpy(X)
    values, jacobians = peer_benchmark(fn, p, Xt)
    record_error(peer_benchmark, ours, (values.numpy(), jacobians.numpy()))


AFFINE_CASE = dict(n=1_000_000, d=8)
AFFINE_GROUP = "affine forward: " + ", ".join(f"{k}={v}" for k, v in AFFINE_CASE.items())


@pytest.fixture(scope="module")
def affine_case():
    rng = np.random.default_rng(2)
    W, b = rng.standard_normal((AFFINE_CASE["d"], AFFINE_CASE["d"])), rng.standard_normal(AFFINE_CASE["d"])
    X = rng.standard_normal((AFFINE_CASE["n"], AFFINE_CASE["d"]))
    f = Affine(W, b)
    return f, W, b, X, f(X)


@pytest.mark.benchmark(group=AFFINE_GROUP)
def test_affine_nearid(nearid_benchmark, affine_case):
    f, _, _, X, _ = affine_case
    nearid_benchmark(f, X)


@pytest.mark.benchmark(group=AFFINE_GROUP)
def test_affine_numpy(peer_benchmark, affine_case):
    _, W, b, X, ours = affine_case
    peer(peer_benchmark, "NumPy")
    record_error(peer_benchmark, ours, peer_benchmark(lambda: X @ W.T + b))


@pytest.mark.benchmark(group=AFFINE_GROUP)
def test_affine_jax(peer_benchmark, affine_case):
    jax = peers.jax_module()
    _, W, b, X, ours = affine_case
    peer(peer_benchmark, "JAX jit")
    fn = jax.jit(lambda W, b, X: X @ W.T + b)
    args = [jax.numpy.asarray(a) for a in (W, b, X)]
    fn(*args).block_until_ready()
    record_error(peer_benchmark, ours, peer_benchmark(lambda: fn(*args).block_until_ready()))


@pytest.mark.benchmark(group=AFFINE_GROUP)
def test_affine_torch(peer_benchmark, affine_case):
    torch = peers.torch_module()
    _, W, b, X, ours = affine_case
    peer(peer_benchmark, "torch addmm")
    Wt, bt, Xt = (torch.from_numpy(a) for a in (W, b, X))
    record_error(peer_benchmark, ours, peer_benchmark(lambda: torch.addmm(bt, Xt, Wt.T)).numpy())
