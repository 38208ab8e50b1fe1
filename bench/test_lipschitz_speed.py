"""Exact pairwise Lipschitz ratios beside the distance tools a user would
pick, in the same run: SciPy's pdist (exact: direct differences) and the
fast-but-inexact Gram-matrix formulas of torch.cdist and scikit-learn's
euclidean_distances, both by blocks (the full matrices would take 6 GB);
each peer's error is |its max ratio - nearid's exact one|.

With --benchmark-disable (the test suite's smoke run) the problems shrink so
the suite stays fast; measured figures come from --benchmark-enable.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import peers
import pytest
from scipy.spatial.distance import pdist

import nearid
from conftest import measuring, peer, record_error
from nearid.app.bench import CASES


def dgemm_gflops() -> float:
    """This machine's measured double-precision GEMM rate through NumPy (all cores)."""
    A = np.random.default_rng(0).standard_normal((3000, 3000))
    A @ A
    start = time.perf_counter()
    A @ A
    return 2 * 3000**3 / (time.perf_counter() - start) / 1e9


@pytest.fixture(scope="module")
def dense_case(request):
    n, d = (CASES["pairwise"]["n"], CASES["pairwise"]["d"]) if measuring(request.config) else (2_000, 32)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, d))
    Y = X + 0.3 * np.tanh(X @ rng.standard_normal((d, d)) / np.sqrt(d))
    return n, d, X, Y


def group(n, d):
    return f"pairwise max ratio: n={n}, d={d}"


def test_pairwise_nearid(nearid_benchmark, dense_case):
    n, d, X, Y = dense_case
    nearid_benchmark.group = group(n, d)
    result = nearid_benchmark.pedantic(nearid.pairwise_lipschitz, args=(X, Y), rounds=3, iterations=1)
    pairs_per_second = result.pairs_evaluated / nearid_benchmark.stats.stats.min if nearid_benchmark.stats else 0.0
    gflops = pairs_per_second * 4 * d / 1e9  # a subtraction and a multiply-add per coordinate, X and Y
    nearid_benchmark.extra_info.update(
        pairs_per_second=pairs_per_second, gflops=gflops, dgemm_gflops=dgemm_gflops(), d=d, n=n
    )
    # The same value as the brute-force reference (checked outside the timing on a subset here,
    # and against pdist in test_pairwise_pdist).
    sub = slice(0, 500)
    expected = (pdist(Y[sub]) / pdist(X[sub])).max()
    assert abs(nearid.pairwise_lipschitz(X[sub], Y[sub]).value - expected) <= 1e-12 * expected


def test_pairwise_pdist(peer_benchmark, dense_case):
    n, d, X, Y = dense_case
    peer(peer_benchmark, "SciPy pdist").group = group(n, d)
    value = peer_benchmark.pedantic(lambda: (pdist(Y) / pdist(X)).max(), rounds=1, iterations=1)
    ours = nearid.pairwise_lipschitz(X, Y).value
    record_error(peer_benchmark, ours, value)
    assert abs(ours - value) <= 1e-12 * value


BLOCK = 2048  # rows per block of the chunked peers: two 2048 x 2048 matrices, 64 MB


def test_pairwise_torch_cdist(peer_benchmark, dense_case):
    torch = peers.torch_module()
    n, d, X, Y = dense_case
    peer(peer_benchmark, "torch.cdist by blocks", exact=False).group = group(n, d)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    value = peer_benchmark.pedantic(peers.chunked_max_ratio, args=(torch.cdist, Xt, Yt, BLOCK), rounds=2, iterations=1)
    record_error(peer_benchmark, nearid.pairwise_lipschitz(X, Y).value, value)


def test_pairwise_sklearn(peer_benchmark, dense_case):
    pairwise = pytest.importorskip("sklearn.metrics.pairwise")
    n, d, X, Y = dense_case
    peer(peer_benchmark, "scikit-learn by blocks", exact=False).group = group(n, d)
    value = peer_benchmark.pedantic(peers.chunked_max_ratio, args=(pairwise.euclidean_distances, X, Y, BLOCK),
                                    rounds=2, iterations=1)
    record_error(peer_benchmark, nearid.pairwise_lipschitz(X, Y).value, value)


@pytest.fixture(scope="module")
def top_k_case(request):
    n, k = (5_000, 100_000) if measuring(request.config) else (500, 1_000)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, 3))
    return n, k, X, np.sin(X)


def top_k_group(n, k):
    return f"pairwise top {k} pairs: n={n}, d=3 (vs pdist + argpartition)"


def test_pairwise_top_k_nearid(nearid_benchmark, top_k_case):
    n, k, X, Y = top_k_case
    nearid_benchmark.group = top_k_group(n, k)
    nearid_benchmark.pedantic(nearid.pairwise_lipschitz, args=(X, Y), kwargs=dict(top_k=k), rounds=3, iterations=1)


def test_pairwise_top_k_numpy(peer_benchmark, top_k_case):
    """The k largest ratios by pdist, argpartition and a sort of those k."""
    n, k, X, Y = top_k_case
    peer(peer_benchmark, "pdist + argpartition").group = top_k_group(n, k)

    def numpy_top_k():
        ratios = pdist(Y) / pdist(X)
        best = np.argpartition(ratios, -k)[-k:]
        return ratios[best[np.argsort(-ratios[best], kind="stable")]]

    values = peer_benchmark.pedantic(numpy_top_k, rounds=3, iterations=1)
    ours = np.array([v for v, _, _ in nearid.pairwise_lipschitz(X, Y, top_k=k).top])
    record_error(peer_benchmark, ours, values)
    assert np.allclose(ours, values, rtol=1e-14, atol=0)


MEMORY_SCRIPT = """
import json, sys, time
import numpy as np
import nearid


def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key))  # kB


n, d = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(2)
X = rng.standard_normal((n, d))
Y = np.sin(X)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current resident size
before = status("VmRSS:")
start = time.perf_counter()
result = nearid.pairwise_lipschitz(X, Y)
seconds = time.perf_counter() - start
peak = status("VmHWM:")
print(json.dumps(dict(extra_mb=(peak - before) / 1024, seconds=seconds, value=result.value,
                      pairs=result.pairs_evaluated)))
"""


def test_pairwise_large_n_memory(nearid_benchmark, request):
    """n = 100000, d = 16: 5e9 pairs (pdist would need 40 GB); peak memory must grow by < 200 MB.

    Measured in a fresh process: the peak resident size (reset just before the
    call through /proc/self/clear_refs, Linux) minus the size before it."""
    n, d = (100_000, 16) if measuring(request.config) else (10_000, 16)
    nearid_benchmark.group = f"pairwise max ratio, memory: n={n}, d={d}"

    def run():
        out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(n), str(d)], capture_output=True, text=True,
                             check=True)
        return json.loads(out.stdout)

    report = nearid_benchmark.pedantic(run, rounds=1, iterations=1)
    nearid_benchmark.extra_info.update(report)
    nearid_benchmark.extra_info["pairs_per_second"] = report["pairs"] / report["seconds"]
    assert report["pairs"] == n * (n - 1) // 2
    assert report["extra_mb"] < 200, report
