"""Map evaluation: nearid beside the NumPy code a user would write.

Run: pytest bench --benchmark-enable --benchmark-json=bench.json && python bench/report.py bench.json
"""

from __future__ import annotations

import numpy as np
import pytest

from nearid.bench import numpy_resnet_forward, numpy_resnet_jacobian
from nearid.maps import Affine, ResidualNet


CASES = {
    "small": dict(n=100_000, d=8, k=16, depth=64),
    "large": dict(n=20_000, d=256, k=256, depth=4),
}


@pytest.fixture(scope="module", params=list(CASES))
def resnet_case(request):
    case = CASES[request.param]
    net = ResidualNet.random(case["d"], case["k"], case["depth"], 0.5, seed=0)
    X = np.random.default_rng(1).standard_normal((case["n"], case["d"]))
    params = [(b.A, b.B, b.bias) for b in net.blocks]  # random nets have zero shifts
    np.testing.assert_allclose(net(X[:1000]), numpy_resnet_forward(params, X[:1000]), rtol=1e-12, atol=1e-12)
    return request.param, net, params, X


def test_resnet_forward_nearid(nearid_benchmark, resnet_case):
    name, net, _, X = resnet_case
    nearid_benchmark.group = f"resnet forward {name}: " + ", ".join(f"{k}={v}" for k, v in CASES[name].items())
    nearid_benchmark(net, X)


def test_resnet_forward_numpy(baseline_benchmark, resnet_case):
    name, _, params, X = resnet_case
    baseline_benchmark.group = f"resnet forward {name}: " + ", ".join(f"{k}={v}" for k, v in CASES[name].items())
    baseline_benchmark(numpy_resnet_forward, params, X)


JACOBIAN_CASE = dict(n=20_000, d=8, k=16, depth=16)


@pytest.fixture(scope="module")
def jacobian_case():
    c = JACOBIAN_CASE
    net = ResidualNet.random(c["d"], c["k"], c["depth"], 0.5, seed=0)
    X = np.random.default_rng(1).standard_normal((c["n"], c["d"]))
    params = [(b.A, b.B, b.bias) for b in net.blocks]
    _, J = numpy_resnet_jacobian(params, X[:500])
    np.testing.assert_allclose(net.jacobian(X[:500]), J, rtol=1e-12, atol=1e-12)
    return net, params, X


JACOBIAN_GROUP = "resnet jacobian: " + ", ".join(f"{k}={v}" for k, v in JACOBIAN_CASE.items())


@pytest.mark.benchmark(group=JACOBIAN_GROUP)
def test_resnet_jacobian_nearid(nearid_benchmark, jacobian_case):
    net, _, X = jacobian_case
    nearid_benchmark(net.value_and_jacobian, X)


@pytest.mark.benchmark(group=JACOBIAN_GROUP)
def test_resnet_jacobian_numpy(baseline_benchmark, jacobian_case):
    _, params, X = jacobian_case
    baseline_benchmark(numpy_resnet_jacobian, params, X)


AFFINE_CASE = dict(n=1_000_000, d=8)
AFFINE_GROUP = "affine forward: " + ", ".join(f"{k}={v}" for k, v in AFFINE_CASE.items())


@pytest.fixture(scope="module")
def affine_case():
    rng = np.random.default_rng(2)
    W, b = rng.standard_normal((AFFINE_CASE["d"], AFFINE_CASE["d"])), rng.standard_normal(AFFINE_CASE["d"])
    X = rng.standard_normal((AFFINE_CASE["n"], AFFINE_CASE["d"]))
    return Affine(W, b), W, b, X


@pytest.mark.benchmark(group=AFFINE_GROUP)
def test_affine_nearid(nearid_benchmark, affine_case):
    f, _, _, X = affine_case
    nearid_benchmark(f, X)


@pytest.mark.benchmark(group=AFFINE_GROUP)
def test_affine_numpy(baseline_benchmark, affine_case):
    _, W, b, X = affine_case
    baseline_benchmark(lambda: X @ W.T + b)
