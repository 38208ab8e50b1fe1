"""Exact pairwise ratios beyond brute force: pairwise_lipschitz(method="tree")
beside method="brute" in the same run, with the answers checked equal.

Data: X uniform in [-3, 3]^d, Y = a tanh ResidualNet of X (width 16, 4
blocks, each block's residual 2-Lipschitz), whose sensitivity varies over the
cube as a trained network's does; and the worst case for the tree, the
similarity map Y = 2 X, where every pair has the same ratio and nothing can be
skipped. Brute force is timed where it takes under a minute (n <= 2e5); for
n = 1e6 the tree's answer is checked against brute force over every pair, by
tiles of 1e5 points (each tile's own pairs, and the pairs across every two
tiles with the cross-set kernel), which takes about 5 minutes per case.

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
    if not affordable(X) or X.shape[0] <= SMOKE_N:  # smoke runs check the tiling itself, on small tiles
        tile = 100_000 if X.shape[0] > SMOKE_N else 1000
        assert tiled_brute_force(X, Y, reduce, tile) == (result.value, result.pair)


def tiled_brute_force(X: np.ndarray, Y: np.ndarray, reduce: str, tile: int) -> tuple[float, tuple[int, int]]:
    """(value, pair) over all pairs by brute force on tiles: every tile's own pairs and the
    pairs across every two tiles, combined with the same tie rule (smallest global pair)."""
    starts = list(range(0, X.shape[0], tile))
    candidates = []
    for a, i in enumerate(starts):
        Xi, Yi = X[i:i + tile], Y[i:i + tile]
        if len(Xi) >= 2:
            r = nearid.pairwise_lipschitz(Xi, Yi, reduce=reduce, method="brute")
            candidates.append((r.value, (r.pair[0] + i, r.pair[1] + i)))
        for j in starts[a + 1:]:
            r = nearid.lipschitz.pairwise_lipschitz_cross(Xi, Yi, X[j:j + tile], Y[j:j + tile], reduce=reduce,
                                                          method="brute")
            candidates.append((r.value, (r.pair[0] + i, r.pair[1] + j)))
    sign = -1.0 if reduce == "max" else 1.0
    return min(candidates, key=lambda c: (sign * c[0], c[1]))


def test_pairwise_brute(benchmark, case):
    name, X, Y, reduce = case
    if not affordable(X):
        pytest.skip("brute force on 1e6 points takes about 400 s; the tree's answer is checked instead")
    benchmark.extra_info.update(impl="baseline")
    benchmark.group = group(name)
    benchmark.pedantic(nearid.pairwise_lipschitz, (X, Y), dict(reduce=reduce, method="brute"), rounds=1,
                       iterations=1)
