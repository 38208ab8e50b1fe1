"""float32 end to end: nearid's float32 kernels beside nearid float64 and the
float32 peers a user would pick (JAX jit and PyTorch eager / torch.compile, all
in float32), on the four cases of issue 16, in the same run.

Every result is compared with the float64 evaluation of the same float32 net
on the same float32 inputs (the exact answer up to float64 rounding): each
benchmark records max |result - reference| and the worst row-relative error
||result_r - reference_r|| / ||reference_r|| in units of float32's eps (2^-23),
for nearid and the peers alike (bench/report.py prints both).

Run: pytest bench/test_float32_speed.py --benchmark-enable --benchmark-json=f32.json && python bench/report.py f32.json
"""

from __future__ import annotations

import numpy as np
import peers
import pytest

import nearid
from conftest import measuring, peer
from nearid.app.bench import CASES
from nearid.maps import ResidualNet

EPS32 = float(np.finfo(np.float32).eps)
PARAMETERS = ("A", "B", "bias", "shift")


def group(name: str, case: dict) -> str:
    return f"float32 {name}: " + ", ".join(f"{k}={v}" for k, v in case.items())


def record_float32_error(benchmark, reference, result) -> None:
    """max |result - reference| and the worst row-relative error in float32 eps, over
    arrays (or sequences of arrays) whose first axis is the row."""
    pairs = list(zip(reference, result)) if isinstance(reference, (list, tuple)) else [(reference, result)]
    worst_abs, worst_rows = 0.0, 0.0
    for ref, res in pairs:
        ref = np.asarray(ref, dtype=np.float64).reshape(len(ref) if np.ndim(ref) else 1, -1)
        res = np.asarray(res, dtype=np.float64).reshape(ref.shape)
        diff = np.linalg.norm(res - ref, axis=1)
        scale = np.linalg.norm(ref, axis=1)
        worst_abs = max(worst_abs, float(np.max(np.abs(res - ref))))
        worst_rows = max(worst_rows, float(np.max(diff / np.where(scale > 0, scale, 1.0))) / EPS32)
    benchmark.extra_info.update(max_abs_error=worst_abs, float32_error_eps=worst_rows)


def variant(benchmark, name: str):
    """A second nearid timing in the group (here: the float64 kernels), listed beside the peers."""
    benchmark.extra_info.update(impl="variant", variant=name)
    return benchmark


def sized(case: dict, config) -> dict:
    """The issue's size when measuring; a smoke run uses at most 2048 points."""
    return case if measuring(config) else {**case, "n": min(case["n"], 2048)}


# ------------------------------------------------------------------ forward

FORWARD = {"small": CASES["forward_small"], "large": CASES["forward_large"]}


@pytest.fixture(scope="module", params=list(FORWARD))
def forward_case(request):
    case = sized(FORWARD[request.param], request.config)
    net = ResidualNet.random(case["d"], case["k"], case["depth"], 0.5, seed=0, dtype=np.float32)
    X = np.random.default_rng(1).standard_normal((case["n"], case["d"])).astype(np.float32)
    params = [(b.A, b.B, b.bias) for b in net.blocks]  # float32; random nets have zero shifts
    return group(f"resnet forward {request.param}", FORWARD[request.param]), net, params, X, net(X.astype(np.float64))


def test_forward_nearid_float32(nearid_benchmark, forward_case):
    name, net, _, X, reference = forward_case
    nearid_benchmark.group = name
    Y = nearid_benchmark(net, X)
    assert Y.dtype == np.float32
    record_float32_error(nearid_benchmark, reference, Y)


def test_forward_nearid_float64(benchmark, forward_case):
    name, net, _, X, reference = forward_case
    variant(benchmark, "nearid float64").group = name
    X64 = X.astype(np.float64)
    record_float32_error(benchmark, reference, benchmark(net, X64))


def test_forward_jax_float32(peer_benchmark, forward_case):
    jax = peers.jax_module()
    name, _, params, X, reference = forward_case
    peer(peer_benchmark, "JAX jit float32").group = name
    p, forward = peers.jax_resnet(params)
    fn = jax.jit(forward)
    Xj = jax.numpy.asarray(X)
    assert fn(p, Xj).block_until_ready().dtype == np.float32
    record_float32_error(peer_benchmark, reference, peer_benchmark(lambda: fn(p, Xj).block_until_ready()))


@pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning")  # raised inside torch.compile / torch.func
@pytest.mark.parametrize("mode", ["eager", "compile"])
def test_forward_torch_float32(peer_benchmark, forward_case, mode, request):
    torch = peers.torch_module()
    name, _, params, X, reference = forward_case
    peer(peer_benchmark, f"torch {mode} float32").group = name
    p, forward = peers.torch_resnet(torch, params)
    Xt = torch.from_numpy(X)
    fn = peers.compiled(torch, measuring(request.config), forward, p, Xt) if mode == "compile" else forward
    with torch.no_grad():
        Y = peer_benchmark(fn, p, Xt)
    assert Y.dtype == torch.float32
    record_float32_error(peer_benchmark, reference, Y.numpy())


# ------------------------------------------------------------------ Jacobians


@pytest.fixture(scope="module")
def jacobian_case(request):
    case = sized(CASES["jacobian"], request.config)
    net = ResidualNet.random(case["d"], case["k"], case["depth"], 0.5, seed=0, dtype=np.float32)
    X = np.random.default_rng(1).standard_normal((case["n"], case["d"])).astype(np.float32)
    params = [(b.A, b.B, b.bias) for b in net.blocks]
    return group("resnet jacobian", CASES["jacobian"]), net, params, X, net.value_and_jacobian(X.astype(np.float64))


def test_jacobian_nearid_float32(nearid_benchmark, jacobian_case):
    name, net, _, X, reference = jacobian_case
    nearid_benchmark.group = name
    values, jacobians = nearid_benchmark(net.value_and_jacobian, X)
    assert values.dtype == jacobians.dtype == np.float32
    record_float32_error(nearid_benchmark, reference, (values, jacobians))


def test_jacobian_nearid_float64(benchmark, jacobian_case):
    name, net, _, X, reference = jacobian_case
    variant(benchmark, "nearid float64").group = name
    record_float32_error(benchmark, reference, benchmark(net.value_and_jacobian, X.astype(np.float64)))


def test_jacobian_jax_float32(peer_benchmark, jacobian_case):
    jax = peers.jax_module()
    name, _, params, X, reference = jacobian_case
    peer(peer_benchmark, "JAX jit(vmap(jacfwd)) float32").group = name
    p, forward = peers.jax_resnet(params)
    fn = peers.jax_value_and_jacobian(jax, forward)
    Xj = jax.numpy.asarray(X)
    assert jax.block_until_ready(fn(p, Xj))[1].dtype == np.float32
    values, jacobians = peer_benchmark(lambda: jax.block_until_ready(fn(p, Xj)))
    record_float32_error(peer_benchmark, reference, (np.asarray(values), np.asarray(jacobians)))


@pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning")  # raised inside torch.compile / torch.func
def test_jacobian_torch_float32(peer_benchmark, jacobian_case):
    torch = peers.torch_module()
    name, _, params, X, reference = jacobian_case
    peer(peer_benchmark, "torch.func vmap(jacfwd) float32").group = name
    p, forward = peers.torch_resnet(torch, params)
    fn = peers.torch_value_and_jacobian(torch, forward)
    values, jacobians = peer_benchmark(fn, p, torch.from_numpy(X))
    assert jacobians.dtype == torch.float32
    record_float32_error(peer_benchmark, reference, (values.numpy(), jacobians.numpy()))


# ------------------------------------------------------------------ loss and gradient


def flat_gradient(result) -> list[np.ndarray]:
    """[loss] then dA, dB, dbias, dshift of every block, as one row each (errors relative per array)."""
    return [np.array([result.loss])] + [np.ravel(getattr(g, p))[None, :] for g in result.gradients for p in PARAMETERS]


@pytest.fixture(scope="module")
def gradient_case(request):
    case = sized(CASES["gradient"], request.config)
    net = ResidualNet.random(case["d"], case["k"], case["depth"], 0.5, seed=0, dtype=np.float32)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((case["n"], case["d"])).astype(np.float32)
    Y = np.sin(X)
    params = [tuple(getattr(b, p) for p in PARAMETERS) for b in net.blocks]
    reference = flat_gradient(nearid.landscape.loss_and_grad(net, X.astype(np.float64), Y.astype(np.float64)))
    return group("loss and gradient", CASES["gradient"]), net, params, X, Y, reference


def test_gradient_nearid_float32(nearid_benchmark, gradient_case):
    name, net, _, X, Y, reference = gradient_case
    nearid_benchmark.group = name
    result = nearid_benchmark(nearid.landscape.loss_and_grad, net, X, Y)
    assert result.gradients[0].A.dtype == np.float32
    record_float32_error(nearid_benchmark, reference, flat_gradient(result))


def test_gradient_nearid_float64(benchmark, gradient_case):
    name, net, _, X, Y, reference = gradient_case
    variant(benchmark, "nearid float64").group = name
    result = benchmark(nearid.landscape.loss_and_grad, net, X.astype(np.float64), Y.astype(np.float64))
    record_float32_error(benchmark, reference, flat_gradient(result))


def peer_gradient(loss, grads) -> list[np.ndarray]:
    return [np.array([float(loss)])] + [np.ravel(np.asarray(a))[None, :] for a in grads]


def test_gradient_jax_float32(peer_benchmark, gradient_case):
    jax = peers.jax_module()
    name, _, params, X, Y, reference = gradient_case
    peer(peer_benchmark, "JAX jit(value_and_grad) float32").group = name
    p, forward = peers.jax_resnet(params)
    fn = jax.jit(jax.value_and_grad(peers.half_squared_loss(jax.numpy, forward)))
    Xj, Yj = jax.numpy.asarray(X), jax.numpy.asarray(Y)
    assert jax.block_until_ready(fn(p, Xj, Yj))[0].dtype == np.float32
    loss, grads = peer_benchmark(lambda: jax.block_until_ready(fn(p, Xj, Yj)))
    record_float32_error(peer_benchmark, reference, peer_gradient(loss, [a for g in grads for a in g]))


@pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning")  # raised inside torch.compile / torch.func
@pytest.mark.parametrize("mode", ["eager", "compile"])
def test_gradient_torch_float32(peer_benchmark, gradient_case, mode, request):
    torch = peers.torch_module()
    name, _, params, X, Y, reference = gradient_case
    peer(peer_benchmark, f"torch autograd {mode} float32").group = name
    p, forward = peers.torch_resnet(torch, params)
    for block in p:
        for a in block:
            a.requires_grad_(True)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    loss = peers.half_squared_loss(torch, forward)
    if mode == "compile":
        loss = peers.compiled(torch, measuring(request.config), loss, p, Xt, Yt)
    fn = peers.torch_loss_and_grad(torch, forward, loss)
    q, grads = peer_benchmark(fn, p, Xt, Yt)
    assert q.dtype == torch.float32
    record_float32_error(peer_benchmark, reference, peer_gradient(q.item(), [g.numpy() for g in grads]))
