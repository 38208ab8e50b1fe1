"""Dask scale-out cost: nearid.dask.pairwise_lipschitz on a LocalCluster of 2
workers (1 thread each) beside the in-memory kernel on the same 2 cores.

Reported ratio = in-memory time / cluster time; >= 0.67 means the cluster run
costs at most 1.5x the in-memory kernel (task overhead, scattering the data).
"""

from __future__ import annotations

import numpy as np
import pytest

import nearid
from conftest import measuring

distributed = pytest.importorskip("distributed")
import nearid.dask as nd  # noqa: E402


@pytest.fixture(scope="module")
def cluster_case(request):
    n, d = (100_000, 16) if measuring(request.config) else (10_000, 16)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((n, d))
    Y = np.sin(X)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=":0", silence_logs=40)
    client = distributed.Client(cluster)
    yield n, d, X, Y, client
    client.close()
    cluster.close()


def group(n, d):
    return f"pairwise on a 2-worker LocalCluster [nearid] vs in memory [baseline]: n={n}, d={d}"


def test_pairwise_dask_cluster(nearid_benchmark, cluster_case):
    n, d, X, Y, client = cluster_case
    nearid_benchmark.group = group(n, d)
    chunk = -(-n // 8)
    result = nearid_benchmark.pedantic(nd.pairwise_lipschitz, args=(X, Y), kwargs=dict(chunk=chunk, threads_per_task=1),
                                       rounds=1, iterations=1)
    assert result == nearid.pairwise_lipschitz(X, Y)
    nearid_benchmark.extra_info.update(chunk=chunk, tasks=8 * 9 // 2, workers=2)


def test_pairwise_in_memory(baseline_benchmark, cluster_case):
    n, d, X, Y, _ = cluster_case
    baseline_benchmark.group = group(n, d)
    baseline_benchmark.pedantic(nearid.pairwise_lipschitz, args=(X, Y), rounds=1, iterations=1)
