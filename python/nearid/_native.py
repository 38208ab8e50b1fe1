"""Load the compiled core, choosing the fastest build this CPU can run.

On x86-64 nearid ships the same C++ core compiled three times: ``_core`` for
any x86-64 CPU, ``_core_avx2`` for x86-64-v3 CPUs (AVX2, FMA) and
``_core_avx512`` for x86-64-v4 CPUs (AVX-512). Other platforms have ``_core``
only. The environment variable ``NEARID_CPU`` overrides the choice: ``auto``
(default), ``baseline``, ``avx2`` or ``avx512``.

OpenMP threads that wait for work sleep rather than spin
(``OMP_WAIT_POLICY=PASSIVE``) unless the environment says otherwise: spinning
threads take the cores from other busy processes (Dask workers, DataLoader
workers, a second job), and a layer-by-layer evaluation then ran 30 times
slower than on one thread. The setting is read when the OpenMP runtime loads,
that is, while the core is imported, and is removed from the environment
afterwards so that child processes do not inherit it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING

# (variant, module, x86-64 level it needs), fastest first.
_VARIANTS = (
    ("avx512", "_core_avx512", "x86-64-v4"),
    ("avx2", "_core_avx2", "x86-64-v3"),
    ("baseline", "_core", None),
)
_CHOICES = ("auto",) + tuple(v[0] for v in _VARIANTS)


def _import(name: str) -> ModuleType:
    try:
        return import_module(f"nearid.{name}")
    except ImportError as exc:
        raise ImportError(
            f"nearid's compiled extension nearid.{name} could not be imported ({exc}). "
            "Was the package built? Install it with `pip install .` from the source tree "
            "(a plain checkout on sys.path has no compiled core)."
        ) from exc


@contextmanager
def _passive_openmp_wait() -> Iterator[None]:
    """OMP_WAIT_POLICY=PASSIVE while the OpenMP runtime initialises, unless already set."""
    if "OMP_WAIT_POLICY" in os.environ:
        yield
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        yield
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)


def load(choice: str | None = None) -> tuple[ModuleType, str]:
    """Return (module, variant name) for `choice` (default: $NEARID_CPU, else "auto")."""
    choice = os.environ.get("NEARID_CPU", "auto") if choice is None else choice
    if choice not in _CHOICES:
        raise ValueError(f"NEARID_CPU must be one of {', '.join(_CHOICES)}; got {choice!r}")
    baseline = _import("_core")
    for variant, module, level in _VARIANTS:
        if choice not in ("auto", variant):
            continue
        if level is not None and not baseline.cpu_supports(level):
            if choice == variant:
                raise RuntimeError(f"NEARID_CPU={variant} was requested but this CPU does not support {level}")
            continue
        try:
            return _import(module), variant
        except ImportError:
            if choice == variant:
                raise
            # Not built here (another architecture or an old compiler): try the next one.
    return baseline, "baseline"


if TYPE_CHECKING:
    from . import _core as core

    variant: str
else:
    with _passive_openmp_wait():
        core, variant = load()
