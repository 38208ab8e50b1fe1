"""Exact sup distance between two shallow ReLU nets in 2-D (200 neurons each, box [-1, 1]^2):
nearid's vertex enumeration beside the dense 2000 x 2000 grid a user would evaluate in NumPy
(which only gives a lower bound), in the same run.

Run: pytest bench/test_shallow_speed.py --benchmark-enable --benchmark-json=shallow.json
     python bench/report.py shallow.json
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import measuring, peer
from nearid import shallow

GROUP = "shallow ReLU sup distance, d=2, N=200 + 200, box [-1, 1]^2"


def net(seed):
    rng = np.random.default_rng(seed)
    return shallow.ShallowReLU(rng.standard_normal((200, 2)), rng.standard_normal(200), rng.standard_normal(200))


@pytest.fixture(scope="module")
def case(request):
    return net(1), net(2), shallow.Box([-1, -1], [1, 1]), 2000 if measuring(request.config) else 200


def numpy_grid_sup(f, g, n):
    """max |f - g| over an n x n grid, by rows of the grid (memory O(n N))."""
    axis = np.linspace(-1, 1, n)
    best = 0.0
    for y in axis:
        X = np.stack([axis, np.full(n, y)], 1)
        F = np.maximum(X @ f.W.T + f.b, 0) @ f.a
        G = np.maximum(X @ g.W.T + g.b, 0) @ g.a
        best = max(best, float(np.abs(F - G).max()))
    return best


def test_sup_distance_nearid(nearid_benchmark, case):
    f, g, box, _ = case
    nearid_benchmark.group = GROUP
    exact = nearid_benchmark(shallow.realization_distance, f, g, box)
    assert exact.exact


def test_sup_distance_numpy_grid(peer_benchmark, case):
    f, g, box, n = case
    peer(peer_benchmark, f"NumPy {n}x{n} grid (a lower bound)", exact=False).group = GROUP
    found = peer_benchmark.pedantic(numpy_grid_sup, args=(f, g, n), rounds=1, iterations=1)
    exact = shallow.realization_distance(f, g, box).value
    assert found <= exact * (1 + 1e-12)
    peer_benchmark.extra_info["max_abs_error"] = exact - found
