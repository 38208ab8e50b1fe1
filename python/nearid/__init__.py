"""nearid: deep compositions of near-identity maps.

Build smooth invertible maps R^d -> R^d from residual blocks, affine maps and
Python callables (:mod:`nearid.maps`), evaluate them and their Jacobians on
batches with a parallel C++ core, invert them (:func:`invert`), write them
as exact compositions of near-identity layers (:func:`decompose`: the state
is a :class:`DecompositionSpec`, the scales come from :mod:`schedules`, the
scaled maps g_a from :mod:`scaled`), measure
every layer's deviation from the identity (:func:`pairwise_lipschitz`,
``dec.lipschitz``), distil the layers into a residual network
(:func:`distill`) and study its optimisation landscape (:mod:`landscape`).

Where things live (one module per concept):

- maps and their algebra: ``maps`` (ResidualBlock, ResidualNet, ResidualMLP, Affine,
  Chain, FromCallable, Inverse, Labelled), ``scaled`` (g_a), ``linear``
  (Hardt-Ma factors);
- decompositions: ``decompose`` (DecompositionSpec, Decomposition),
  ``schedules`` (every named schedule), ``bounds`` (alpha, M, L, B, the
  bounds and their status);
- solvers and measurement: ``inversion``, ``lipschitz``, ``certification``
  (certified two-sided bounds: :func:`certify`; the interval kernels are in
  C++), ``landscape``,
  ``distill``, ``export`` (to PyTorch), ``torch_import`` (from PyTorch:
  :func:`from_torch`, :class:`FromTorch`);
- files: ``_map_spec`` (maps <-> plain specs), ``io`` (JSON and .npz, which
  depends on decompose, never the reverse), ``_files`` (atomic writes);
- checks and plumbing: ``_validation`` (array conversion and shapes; option
  lists come from the core), ``errors`` (exceptions and warnings),
  ``_native`` (loads the fastest compiled core, ``_core``), ``_progress``;
- shallow ReLU networks, parameters against realizations: ``shallow``;
- scale-out: ``dask`` (the optional dask extra).

The application built on the library (the ``nearid`` command, its report, the
main job and the benchmark baselines) lives in the subpackage :mod:`nearid.app`;
no library module imports it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from types import MappingProxyType

from . import _native, bounds, export, landscape, lipschitz, maps, scaled, schedules, shallow
from ._native import variant as cpu_variant
from ._validation import as_count
from .bounds import Constants
from .certification import Certificate, certify
from .decompose import Decomposition, DecompositionSpec, InversionSettings, LayerDeviations, decompose
from .distill import DistilledNet, distill
from .errors import (
    ConvergenceError,
    DivergenceError,
    EstimateWarning,
    NearidWarning,
    NoPairError,
    UnsupportedModule,
    VacuousBoundWarning,
)
from .inversion import InversionResult, invert
from .io import load, save
from .linear import hardt_ma, hardt_ma_bound
from .lipschitz import JacobianNorms, PairwiseResult, jacobian_norms, pairwise_lipschitz, pairwise_lipschitz_cross
from .torch_import import FromTorch, from_torch

try:
    __version__ = version("nearid")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0+unknown"

#: True when the compiled core uses OpenMP threads.
has_openmp: bool = bool(_native.core.has_openmp())

#: The bounds on every size or count nearid accepts, {argument: (minimum, maximum)}:
#: far above any useful value, and small enough that no size computed from them can
#: overflow. Arguments outside them raise ValueError naming the argument and the bound.
LIMITS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {name: (int(low), int(high)) for name, (low, high) in _native.core.LIMITS.items()}
)


def get_num_threads() -> int:
    """The number of threads nearid's parallel loops started from this thread use."""
    return int(_native.core.get_num_threads())


def set_num_threads(n: int | None) -> None:
    """Set the process-wide default of threads nearid's parallel loops use; ``None`` or 0 restores OpenMP's.

    Results do not depend on this number: they are bitwise identical for any
    count. A thread inside :func:`num_threads` keeps its own count.
    """
    n = 0 if n is None else as_count(n, "n", limit="threads")
    _native.core.set_num_threads(n)


@contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Context manager: loops started by this thread use `n` threads inside it.

    The override belongs to the calling Python thread only: other threads,
    and the process default (:func:`set_num_threads`), are untouched, so
    concurrent threads can each choose their own count.
    """
    n = as_count(n, "n", limit="threads", minimum=1)
    previous = int(_native.core.get_thread_override())
    _native.core.set_thread_override(n)
    try:
        yield
    finally:
        _native.core.set_thread_override(previous)


__all__ = [
    "__version__",
    "Certificate",
    "FromTorch",
    "UnsupportedModule",
    "Constants",
    "ConvergenceError",
    "NoPairError",
    "DivergenceError",
    "EstimateWarning",
    "NearidWarning",
    "VacuousBoundWarning",
    "Decomposition",
    "DecompositionSpec",
    "DistilledNet",
    "InversionResult",
    "InversionSettings",
    "JacobianNorms",
    "LIMITS",
    "LayerDeviations",
    "PairwiseResult",
    "bounds",
    "certify",
    "cpu_variant",
    "decompose",
    "distill",
    "from_torch",
    "export",
    "landscape",
    "hardt_ma",
    "hardt_ma_bound",
    "invert",
    "jacobian_norms",
    "lipschitz",
    "load",
    "save",
    "pairwise_lipschitz",
    "pairwise_lipschitz_cross",
    "scaled",
    "schedules",
    "shallow",
    "get_num_threads",
    "has_openmp",
    "maps",
    "num_threads",
    "set_num_threads",
]
