"""Dask scale-out on a LocalCluster of 2 workers on loopback: identical results
to the in-memory functions; clear errors from failing tasks and workers."""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest

import nearid

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
import dask.array as da  # noqa: E402

import nearid.dask as nd  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=":0")
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2500, 6))
    Y = np.tanh(X @ rng.standard_normal((6, 6)) / 2)
    return X, Y


@pytest.mark.parametrize("reduce", ["max", "min"])
@pytest.mark.parametrize("chunk", [300, 1000, 2500])
def test_pairwise_on_the_cluster_equals_in_memory(client, data, reduce, chunk):
    X, Y = data
    expected = nearid.pairwise_lipschitz(X, Y, reduce=reduce, top_k=4)
    got = nd.pairwise_lipschitz(X, Y, reduce=reduce, top_k=4, chunk=chunk, threads_per_task=1)
    assert got == expected  # value, pair, top, pairs_evaluated, duplicates: all identical


def test_dask_array_inputs_with_uneven_chunks(client, data):
    X, Y = data
    Xd = da.from_array(X, chunks=(700, 6))
    Yd = da.from_array(Y, chunks=(333, 3))
    assert nd.pairwise_lipschitz(Xd, Yd, top_k=2) == nearid.pairwise_lipschitz(X, Y, top_k=2)


def test_duplicates_behave_as_in_memory(client):
    X = np.repeat(np.arange(40.0).reshape(20, 2), 2, axis=0)  # every point twice
    Y = X.copy()
    Y[17] += 1.0  # rows 16 and 17 share X but not Y
    expected = nearid.pairwise_lipschitz(X, Y)
    got = nd.pairwise_lipschitz(X, Y, chunk=7)
    assert got == expected and got.value == np.inf and got.pair == (16, 17)
    with pytest.raises(ValueError, match="X rows 16 and 17 are equal but the Y rows differ"):
        nd.pairwise_lipschitz(X, Y, chunk=7, on_duplicate="raise", reduce="min")
    with pytest.raises(nearid.NoPairError, match="every pair of points is a duplicate"):
        nd.pairwise_lipschitz(np.zeros((10, 2)), np.ones((10, 1)), chunk=3)


def test_bad_data_raises_the_in_memory_error(client, data):
    X, Y = data
    Xd = da.from_array(X.copy(), chunks=(500, 6))
    Xd[1234, 3] = np.nan
    with pytest.raises(ValueError, match=r"X must be finite; found nan at index \(1234, 3\)"):
        nd.pairwise_lipschitz(Xd, Y)
    with pytest.raises(ValueError, match="same number of rows"):
        nd.pairwise_lipschitz(X, Y[:10])
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        nd.pairwise_lipschitz(X, Y, chunk=0)
    with pytest.raises(TypeError, match="chunk must be an integer"):
        nd.pairwise_lipschitz(X, Y, chunk=2.5)


@pytest.mark.parametrize("dtype", [np.complex128, np.bool_])
def test_complex_and_bool_data_are_rejected_as_in_memory(data, dtype):
    """The Dask functions refuse what nearid.pairwise_lipschitz refuses, with its message,
    before any task runs (dask arrays) and for NumPy inputs alike."""
    X, Y = data
    bad = X[:100].astype(dtype)
    with pytest.raises(TypeError) as in_memory:
        nearid.pairwise_lipschitz(bad, Y[:100])
    for given in (bad, da.from_array(bad, chunks=(50, 6))):
        with pytest.raises(TypeError) as distributed_error:
            nd.pairwise_lipschitz(given, Y[:100], chunk=50)
        assert str(distributed_error.value) == str(in_memory.value)
        assert "got dtype" in str(in_memory.value)
    with pytest.raises(TypeError, match="X must be an array of real numbers"):
        nd.map_blocks(nearid.maps.Affine(np.eye(6)), da.from_array(bad, chunks=(50, 6)))


def test_without_a_client_the_local_scheduler_gives_the_same(data):
    X, Y = data
    with dask.config.set(scheduler="threads"):
        assert nd.pairwise_lipschitz(X[:800], Y[:800], chunk=150) == nearid.pairwise_lipschitz(X[:800], Y[:800])


def test_map_blocks_maps_layers_and_inverse(client):
    rng = np.random.default_rng(1)
    h = nearid.maps.Chain(nearid.maps.ResidualNet.random(3, 6, 2, 0.4, seed=2), nearid.maps.Affine(2 * np.eye(3)))
    dec = nearid.decompose(h, 5, center=[0.1, 0.0, -0.1])
    # Layers live on the ball (radius 1 around the centre): points well inside it.
    U = rng.standard_normal((1200, 3))
    X = 0.8 * U / np.maximum(1.0, np.linalg.norm(U, axis=1, keepdims=True)) + dec.center
    Xd = da.from_array(X, chunks=(250, 3))
    for f in (h, dec, dec.layers[2], dec[1:7], dec.inverse):
        assert np.array_equal(nd.map_blocks(f, Xd).compute(), f(X))
    callable_map = nearid.maps.FromCallable(lambda Z: Z + 0.1 * np.sin(Z), 3)
    assert np.array_equal(nd.map_blocks(callable_map, Xd, chunk=400).compute(), callable_map(X))
    with pytest.raises(ValueError, match=r"X must have shape \(n, 3\)"):
        nd.map_blocks(h, da.zeros((10, 4)))
    with pytest.raises(TypeError, match="f must be a nearid map or a callable"):
        nd.map_blocks(3, Xd)


def test_map_blocks_keeps_float32_for_float32_maps(client):
    net = nearid.maps.ResidualNet.random(3, 6, 2, 0.4, seed=2, dtype=np.float32)
    X = np.random.default_rng(3).standard_normal((700, 3)).astype(np.float32)
    lazy = nd.map_blocks(net, da.from_array(X, chunks=(200, 3)))
    assert lazy.dtype == np.float32
    assert np.array_equal(lazy.compute(), net(X))
    # Either side float64: float64 (NumPy's promotion), as the map itself computes it.
    promoted = nd.map_blocks(net, da.from_array(X.astype(np.float64), chunks=(200, 3)))
    assert promoted.dtype == np.float64 and np.array_equal(promoted.compute(), net(X.astype(np.float64)))
    float64_map = net.astype(np.float64)
    assert nd.map_blocks(float64_map, da.from_array(X, chunks=(200, 3))).compute().dtype == np.float64


def test_errors_inside_tasks_surface(client):
    squash = nearid.maps.FromCallable(np.tanh, 1, jacobian=lambda Z: (1 - np.tanh(Z) ** 2)[:, :, None])
    dec = nearid.decompose(squash, 4)
    Y = da.from_array(np.array([[0.5], [5.0], [0.1], [0.2]]), chunks=(2, 1))
    with pytest.raises(nearid.ConvergenceError, match="did not converge"):
        nd.map_blocks(dec.layers[1], Y).compute()


@contextlib.contextmanager
def retries(client, allowed_failures):
    """Let the scheduler retry a task whose worker died `allowed_failures` times. The
    scheduler reads distributed.scheduler.allowed-failures once, when it starts, so a
    dask.config.set around a test would not change it."""

    def swap(dask_scheduler, value):
        previous, dask_scheduler.allowed_failures = dask_scheduler.allowed_failures, value
        return previous

    previous = client.run_on_scheduler(swap, value=allowed_failures)
    try:
        yield
    finally:
        client.run_on_scheduler(swap, value=previous)
        client.wait_for_workers(2, timeout=60)  # the nanny restarts a killed worker for the other tests


@contextlib.contextmanager
def worker_dies_at_first_tile(client, tmp_path):
    """The first worker that starts running a pairwise tile exits at that moment (once:
    a marker file stops the restarted worker from doing it again)."""
    marker = str(tmp_path / "killed")

    class DieAtFirstTile(distributed.WorkerPlugin):  # local: cloudpickle sends it by value
        name = "nearid-test-die-at-first-tile"

        def transition(self, key, start, finish, **kwargs):
            if finish != "executing" or "_tile" not in str(key):
                return
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return
            os._exit(1)  # the task is running on this worker: its result is lost

    client.register_plugin(DieAtFirstTile())
    try:
        yield
    finally:
        client.unregister_worker_plugin(DieAtFirstTile.name)
    assert os.path.exists(marker), "no worker was killed"


def test_a_dying_worker_is_a_clear_error_not_an_answer(client):
    def die(Z):
        os._exit(3)  # kills the worker process running this task

    killer = nearid.maps.FromCallable(die, 2)
    X = da.from_array(np.ones((4, 2)), chunks=(4, 2))  # one task: one worker dies
    with retries(client, 0), pytest.raises(distributed.scheduler.KilledWorker):
        nd.map_blocks(killer, X).compute()


def test_a_worker_killed_during_pairwise_without_retries_is_a_worker_failure(client, tmp_path):
    X = np.random.default_rng(3).standard_normal((4_000, 6))
    failure = "pairwise_lipschitz failed on the cluster .*no result was returned"
    with (
        retries(client, 0),
        worker_dies_at_first_tile(client, tmp_path),
        pytest.raises(nd.WorkerFailure, match=failure),
    ):
        nd.pairwise_lipschitz(X, np.sin(X), chunk=500, threads_per_task=1)


def test_a_worker_killed_during_pairwise_with_retries_gives_the_exact_answer(client, tmp_path):
    """The dying worker's tile runs again elsewhere; dask-array blocks it held are
    recomputed from the graph (scattered NumPy blocks could not be)."""
    X = np.random.default_rng(3).standard_normal((4_000, 6))
    Y = np.sin(X)
    expected = nearid.pairwise_lipschitz(X, Y, top_k=3)
    with retries(client, 1), worker_dies_at_first_tile(client, tmp_path):
        got = nd.pairwise_lipschitz(da.from_array(X, chunks=(500, 6)), da.from_array(Y, chunks=(500, 6)), top_k=3,
                                    threads_per_task=1)
    assert got == expected


def test_cluster_failures_are_wrapped_with_context(client, data, monkeypatch):
    X, Y = data

    def lost(*args, **kwargs):
        raise distributed.comm.core.CommClosedError("connection to tcp://127.0.0.1:1 lost")

    monkeypatch.setattr(type(client), "gather", lost)
    with pytest.raises(nd.WorkerFailure, match=r"pairwise_lipschitz failed on the cluster \(CommClosedError"):
        nd.pairwise_lipschitz(X, Y, chunk=500)


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_tiles_are_exact_at_extreme_scales(client, reduce):
    """Tiles run the same exact kernels: data mixing subnormals, zeros and 1e300 give the
    in-memory answer (which tests/test_lipschitz.py checks against mpmath), tile by tile."""
    rng = np.random.default_rng(3)
    X = np.ldexp(rng.uniform(1, 2, (400, 3)), rng.integers(-1074, 990, (400, 3)))
    Y = np.ldexp(rng.uniform(1, 2, (400, 2)), rng.integers(-1074, 990, (400, 2)))
    X[::7] = 0.0
    X[5] = X[123]
    expected = nearid.pairwise_lipschitz(X, Y, reduce=reduce, top_k=5)
    assert nd.pairwise_lipschitz(X, Y, reduce=reduce, top_k=5, chunk=90) == expected
    assert nd.pairwise_lipschitz(da.from_array(X, chunks=(70, 3)), da.from_array(Y, chunks=(70, 2)),
                                 reduce=reduce, top_k=5) == expected

