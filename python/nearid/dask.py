"""Scale-out with Dask (optional extra ``dask``: dask and distributed).

- :func:`pairwise_lipschitz` tiles the triangle of pairs into (block i,
  block j) tasks: a block against itself runs nearid's within-set kernel,
  two blocks run the cross-set kernel. The tiles' answers combine into the
  same ``value``, ``pair`` (global indices), ``top`` and ``pairs_evaluated``
  as :func:`nearid.pairwise_lipschitz` on the whole arrays: every pair's
  ratio is computed by the same exact code, so the results are identical.
- :func:`map_blocks` evaluates a nearid map, a decomposition, one of its
  layers or its inverse over a Dask array chunked by rows.

Both run on whatever scheduler is active. For a cluster, connect a client
first, e.g. ``from distributed import Client; Client("tcp://scheduler:8786")``
(or ``Client(LocalCluster(n_workers=4, threads_per_worker=1))`` on one
machine); with a client, NumPy inputs are scattered to the workers once.
Each task holds two row blocks and their copies in C++, about
``4 * chunk * (dx + dy) * 8`` bytes, so ``chunk`` bounds the memory per task.
A task that fails, or a worker that dies, raises an error; a partial answer
is never returned.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from ._native import core as _core
from ._validation import as_count, as_float_array, as_point_rows, check_finite, check_real_dtype
from .errors import NoPairError
from .lipschitz import PairwiseResult, best_pairs, check_options, pairwise_lipschitz_cross, pairwise_lipschitz_or_none

try:
    import dask
    import dask.array as da
except ImportError as exc:  # pragma: no cover - exercised only without dask
    raise ImportError("nearid.dask needs Dask: pip install 'nearid[dask]'") from exc

__all__ = ["pairwise_lipschitz", "map_blocks", "WorkerFailure"]


class WorkerFailure(RuntimeError):
    """A Dask task or worker failed while nearid was computing; no result is returned."""


def _task_options(chunk: Any, threads_per_task: Any) -> tuple[int | None, int | None]:
    """Checked `chunk` and `threads_per_task` (None keeps the default)."""
    return (None if chunk is None else as_count(chunk, "chunk"),
            None if threads_per_task is None else as_count(threads_per_task, "threads_per_task", limit="threads",
                                                           minimum=1))


def _check_block(block: np.ndarray, name: str, offset: int) -> np.ndarray:
    block = as_float_array(block, name)
    check_finite(block, name, row_offset=offset)  # the in-memory message, with global row numbers
    return block


def _tile(Xi: np.ndarray, Yi: np.ndarray, Xj: np.ndarray, Yj: np.ndarray, offset_i: int, offset_j: int,
          reduce: str, top_k: int, threads: int | None) -> dict[str, Any]:
    """One task: pairs within block i (when i == j) or across blocks i and j, in global indices."""
    import nearid

    same = offset_i == offset_j
    Xi, Yi = _check_block(Xi, "X", offset_i), _check_block(Yi, "Y", offset_i)
    if not same:
        Xj, Yj = _check_block(Xj, "X", offset_j), _check_block(Yj, "Y", offset_j)
    context = nearid.num_threads(threads) if threads else contextlib.nullcontext()
    with context:
        if same:
            if Xi.shape[0] < 2:
                return dict(top=[], pairs=0, duplicates=0, duplicate=None)
            result = pairwise_lipschitz_or_none(Xi, Yi, reduce=reduce, top_k=top_k)  # empty when all duplicates
        else:
            result = pairwise_lipschitz_cross(Xi, Yi, Xj, Yj, reduce=reduce, top_k=top_k)
    shift = (offset_i, offset_i if same else offset_j)
    duplicate = result.duplicate_pair
    return dict(
        top=[(v, j + shift[0], k + shift[1]) for v, j, k in result.top],
        pairs=result.pairs_evaluated,
        duplicates=result.duplicates_skipped,
        duplicate=None if duplicate is None else (duplicate[0] + shift[0], duplicate[1] + shift[1]),
    )


def _client() -> Any:
    try:
        from distributed import get_client
    except ImportError:  # pragma: no cover
        return None
    try:
        return get_client()
    except ValueError:
        return None


def _compute(tasks: list[Any], client: Any, description: str) -> list[Any]:
    """Gather futures (with a client) or compute delayed tasks; a failure becomes one clear error."""
    try:
        if client is not None:
            return client.gather(tasks)
        return list(dask.compute(*tasks))
    except (ValueError, TypeError):
        raise  # a problem with the data, raised by a task: the same error as in memory
    except Exception as exc:
        raise WorkerFailure(
            f"nearid.dask: {description} failed on the cluster ({type(exc).__name__}: {exc}); no result was "
            "returned. Check the workers' logs and memory; a smaller chunk lowers the memory per task."
        ) from exc


def _row_blocks(X: Any, Y: Any, chunk: int | None) -> tuple[Any, Any, list[int], bool]:
    """Row blocks of X and Y (dask arrays, or NumPy arrays to chunk) and their offsets."""
    if isinstance(X, da.Array) or isinstance(Y, da.Array):
        X = da.asarray(X)
        Y = da.asarray(Y)
        check_real_dtype(X.dtype, "X")
        check_real_dtype(Y.dtype, "Y")
        if X.ndim != 2 or Y.ndim != 2:
            raise ValueError(f"X and Y must be 2-D (n, d); got shapes {X.shape} and {Y.shape}")
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"X and Y must have the same number of rows (points); got {X.shape[0]} and {Y.shape[0]}")
        rows = X.chunks[0] if chunk is None else chunk
        X = X.rechunk((rows, -1))
        Y = Y.rechunk((X.chunks[0], -1))
        sizes = list(X.chunks[0])
        return X, Y, [0] + [int(v) for v in np.cumsum(sizes)], True
    X_ = as_point_rows(X, "X")
    Y_ = as_point_rows(Y, "Y")
    if X_.shape[0] != Y_.shape[0]:
        raise ValueError(f"X and Y must have the same number of rows (points); got {X_.shape[0]} and {Y_.shape[0]}")
    n = X_.shape[0]
    chunk = max(1, -(-n // 8)) if chunk is None else chunk
    offsets = list(range(0, n, chunk)) + [n]
    return X_, Y_, offsets, False


def pairwise_lipschitz(
    X: Any,
    Y: Any,
    reduce: str = "max",
    on_duplicate: str = "inf",
    top_k: int = 1,
    chunk: int | None = None,
    threads_per_task: int | None = None,
) -> PairwiseResult:
    """:func:`nearid.pairwise_lipschitz` over tiles of the triangle of pairs, as Dask tasks.

    Parameters
    ----------
    X, Y : dask.array.Array or array_like, shapes (n, dx) and (n, dy)
        Points; dask arrays keep their row chunks unless `chunk` is given,
        NumPy arrays are cut into blocks of `chunk` rows (default n / 8).
    reduce, on_duplicate, top_k
        As in :func:`nearid.pairwise_lipschitz`.
    chunk : int, optional
        Rows per block: T blocks give T (T + 1) / 2 tasks.
    threads_per_task : int, optional
        nearid threads inside each task (e.g. 1 when each worker has one
        thread per core); default: nearid's default in the worker.

    Returns
    -------
    PairwiseResult
        Identical to the in-memory result.
    """
    reduce, on_duplicate, top_k = check_options(reduce, on_duplicate, top_k)
    chunk, threads_per_task = _task_options(chunk, threads_per_task)
    X, Y, offsets, lazy = _row_blocks(X, Y, chunk)
    n = offsets[-1]
    _core.check_pair_count(n)
    count = len(offsets) - 1
    client = _client()
    if lazy:
        xb = [b[0] for b in X.to_delayed()]
        yb = [b[0] for b in Y.to_delayed()]
        tile = dask.delayed(_tile, pure=True)
        tasks = [tile(xb[i], yb[i], xb[j], yb[j], offsets[i], offsets[j], reduce, top_k, threads_per_task)
                 for i in range(count) for j in range(i, count)]
    elif client is not None:
        # hash=False: unique keys, so releasing an earlier call's identical blocks cannot drop these.
        blocks = client.scatter([(X[offsets[i]:offsets[i + 1]], Y[offsets[i]:offsets[i + 1]]) for i in range(count)],
                                hash=False)
        tasks = [client.submit(_tile_pair, blocks[i], blocks[j], offsets[i], offsets[j], reduce, top_k,
                               threads_per_task, pure=False)
                 for i in range(count) for j in range(i, count)]
    else:
        tile = dask.delayed(_tile, pure=True)
        tasks = [tile(X[offsets[i]:offsets[i + 1]], Y[offsets[i]:offsets[i + 1]],
                      X[offsets[j]:offsets[j + 1]], Y[offsets[j]:offsets[j + 1]],
                      offsets[i], offsets[j], reduce, top_k, threads_per_task)
                 for i in range(count) for j in range(i, count)]
    parts = _compute(tasks, client if (client is not None and not lazy) else None, "pairwise_lipschitz")  # futures

    entries = [entry for part in parts for entry in part["top"]]
    top = best_pairs(entries, reduce, top_k)
    duplicates = 0
    duplicate = None
    for part in parts:
        duplicates += part["duplicates"]
        if part["duplicate"] is not None and (duplicate is None or part["duplicate"] < duplicate):
            duplicate = part["duplicate"]
    if on_duplicate == "raise" and duplicate is not None:
        _core.raise_duplicate_pair(*duplicate)
    if not top:
        raise NoPairError()
    pairs = n * (n - 1) // 2
    assert sum(part["pairs"] for part in parts) == pairs, "a tile went missing"
    return PairwiseResult(top[0][0], (top[0][1], top[0][2]), tuple(top), pairs, duplicates, reduce, duplicate)


def _tile_pair(block_i: tuple[np.ndarray, np.ndarray], block_j: tuple[np.ndarray, np.ndarray], offset_i: int,
               offset_j: int, reduce: str, top_k: int, threads: int | None) -> dict[str, Any]:
    return _tile(block_i[0], block_i[1], block_j[0], block_j[1], offset_i, offset_j, reduce, top_k, threads)


def _apply(block: np.ndarray, f: Any, threads: int | None) -> np.ndarray:
    import nearid

    context = nearid.num_threads(threads) if threads else contextlib.nullcontext()
    with context:
        return np.asarray(f(block), dtype=block.dtype)


def map_blocks(f: Any, X: Any, chunk: int | None = None, threads_per_task: int | None = None) -> Any:
    """Evaluate `f` on every row block of a Dask array.

    Parameters
    ----------
    f : nearid map, Decomposition, or a method such as ``dec.inverse``
        Anything that maps an (n, d) float64 array to (n, d); it is pickled to
        the workers (maps pickle their parameters; FromCallable needs its
        function to pickle, which cloudpickle does for most functions).
    X : dask.array.Array or array_like, shape (n, d)
        Points; rows are chunked as given (or by `chunk`), columns are merged.
    chunk : int, optional
        Rows per block.
    threads_per_task : int, optional
        nearid threads inside each task.

    Returns
    -------
    dask.array.Array, shape (n, d)
        Lazy; call ``.compute()``. Errors in f (a point that does not
        converge, NaN input) surface when it is computed. float32 when `f` is
        a float32 map and X is float32 (computed in float32), else float64.
    """
    if not callable(f):
        raise TypeError(f"f must be a nearid map or a callable; got {type(f).__name__}")
    X = da.asarray(X)
    check_real_dtype(X.dtype, "X")
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D (n, d) array; got shape {X.shape}")
    chunk, threads_per_task = _task_options(chunk, threads_per_task)
    dim = getattr(f, "dim", None) if not hasattr(f, "__self__") else getattr(f.__self__, "dim", None)
    if dim is not None and X.shape[1] != dim:
        raise ValueError(f"X must have shape (n, {dim}) for a map of dim {dim}; got {X.shape}")
    single = getattr(f, "dtype", None) == np.float32 and X.dtype == np.float32
    dtype = np.float32 if single else np.float64
    X = X.rechunk((X.chunks[0] if chunk is None else chunk, -1)).astype(dtype)
    return X.map_blocks(_apply, f, threads_per_task, dtype=dtype, meta=np.empty((0, 0), dtype=dtype))
