"""nearid beside busy processes: no worse than single-threaded code under load.

Other processes on the same cores (Dask workers, DataLoader workers, a second
job) deschedule OpenMP threads; a parallel loop then waits for its slowest
thread, and threads that spin while waiting take the cores from everyone.
nearid's idle threads sleep (OMP_WAIT_POLICY=PASSIVE, see nearid._native) and
a loop uses one more thread only per kMinSecondsPerThread of measured work, so
that under load it runs at least as fast as on one thread.

Each group times nearid with its default threads ("nearid") beside the same
code on one thread ("baseline") while busy processes (three per core) run; the
ratio is one thread's time over the default's (>= 1: no worse than serial).
Layer-by-layer evaluation is the workload that was 30x slower than serial under
load: eighty short calls of about 0.1 ms each.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import nearid
from conftest import measuring
from nearid.bounds import sample_ball
from nearid.maps import ResidualNet

BUSY = 3 * (os.cpu_count() or 2)
_SPIN = "import time\nend = time.time() + 600\nwhile time.time() < end:\n    pass\n"


@pytest.fixture(scope="module")
def busy(request):
    """Busy processes on every core while the module's benchmarks run (only when measuring)."""
    processes = [subprocess.Popen([sys.executable, "-c", _SPIN])
                 for _ in range(BUSY if measuring(request.config) else 0)]
    yield len(processes)
    for p in processes:
        p.kill()
        p.wait()


@pytest.fixture(scope="module", params=[256, 1024])
def layer_case(request):
    net = ResidualNet.random(5, 16, 4, 0.5, seed=0)
    dec = nearid.decompose(net, 40)
    U = sample_ball(np.random.default_rng(0), request.param, 5, 0.9)
    return request.param, dec, U


def evaluate_layers(dec, U, threads=None):
    Z = U
    if threads is None:
        for layer in dec.layers:
            Z = layer(Z)
        return Z
    with nearid.num_threads(threads):
        for layer in dec.layers:
            Z = layer(Z)
    return Z


def test_layers_under_load_default_threads(nearid_benchmark, busy, layer_case):
    n, dec, U = layer_case
    nearid_benchmark.group = f"under load ({busy} busy processes): layer by layer, m=40, n={n} [baseline: 1 thread]"
    nearid_benchmark(evaluate_layers, dec, U)


def test_layers_under_load_one_thread(baseline_benchmark, busy, layer_case):
    n, dec, U = layer_case
    baseline_benchmark.group = f"under load ({busy} busy processes): layer by layer, m=40, n={n} [baseline: 1 thread]"
    Z = baseline_benchmark(evaluate_layers, dec, U, 1)
    assert np.array_equal(Z, evaluate_layers(dec, U))  # bitwise the same result


@pytest.fixture(scope="module")
def forward_case():
    net = ResidualNet.random(8, 16, 64, 0.1, seed=0)
    return net, np.random.default_rng(1).standard_normal((100_000, 8))


def test_forward_under_load_default_threads(nearid_benchmark, busy, forward_case):
    net, X = forward_case
    nearid_benchmark.group = f"under load ({busy} busy processes): forward d=8, 64 blocks, n=1e5 [baseline: 1 thread]"
    nearid_benchmark(net, X)


def test_forward_under_load_one_thread(baseline_benchmark, busy, forward_case):
    net, X = forward_case
    baseline_benchmark.group = f"under load ({busy} busy processes): forward d=8, 64 blocks, n=1e5 [baseline: 1 thread]"

    def serial():
        with nearid.num_threads(1):
            return net(X)

    baseline_benchmark(serial)
