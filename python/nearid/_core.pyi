"""Type stubs for nearid's compiled core (``_core``; ``_core_avx2`` and
``_core_avx512`` have the same API). Private: use the nearid package.

tests/test_stubs.py fails when these stubs and the module disagree (mypy's
stubtest, and the parameter names pybind11 writes in each docstring).
"""

from collections.abc import Callable, Sequence
from typing import Any, NoReturn, type_check_only

import numpy as np
import numpy.typing as npt

_Array = npt.NDArray[np.float64]

def has_openmp() -> bool: ...
def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def get_thread_override() -> int: ...
def set_thread_override(n: int) -> None: ...
def cpu_supports(level: str) -> bool: ...
def activation_value(activation: str, t: float) -> float: ...
def activation_slope(activation: str, t: float) -> float: ...
def activation_max_slope(activation: str) -> float: ...
def invert(
    f: Map,
    Y: _Array,
    x0: _Array | None,
    method: str,
    tol: float,
    atol: float,
    max_iter: int,
    anderson_memory: int,
    radius: float,
    continuation: Map | None,
    scale: float,
) -> dict[str, np.ndarray]: ...
def convergence_message(
    what: str, failed: int, total: int, worst_residual: float, index: int, reason: str, hint: str
) -> str: ...
def hardt_ma(A: _Array, m: int) -> _Array: ...
def hardt_ma_spectrum(A: _Array) -> tuple[float, float]: ...
def log_determinant(A: _Array) -> tuple[float, float]: ...
def check_pair_count(n: int) -> None: ...
def raise_duplicate_pair(j: int, k: int) -> NoReturn: ...
def certify(
    f: Map,
    quantity: str,
    radius: float,
    center: _Array | None,
    rtol: float,
    max_seconds: float,
    max_boxes: int,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]: ...
def interval_activation(activation: str, lo: float, hi: float, order: int) -> tuple[float, float]: ...
def interval_norm_bounds(mid: _Array, rad: _Array) -> tuple[float, float, float]: ...
def pairwise_lipschitz(
    X: _Array, Y: _Array, reduce: str, on_duplicate: str, top_k: int, progress: Callable[[float], None] | None = None
) -> dict[str, object]: ...
def pairwise_lipschitz_cross(
    X1: _Array, Y1: _Array, X2: _Array, Y2: _Array, reduce: str, on_duplicate: str, top_k: int
) -> dict[str, object]: ...
def jacobian_norms(A: _Array, B: _Array | None, d: int) -> _Array: ...
def loss_and_grad(
    net: ResidualNet, X: _Array, Y: _Array
) -> tuple[float, list[tuple[_Array, _Array, _Array, _Array]]]: ...
def functional_gradient(net: ResidualNet, X: _Array, Y: _Array) -> _Array: ...
def ridge_block_fit(
    X: _Array, T: _Array, B: _Array, bias: _Array, activation: str, ridge: float
) -> tuple[_Array, _Array]: ...

STOP_REASONS: tuple[str, ...]
INVERSION_METHODS: tuple[str, ...]
ACTIVATIONS: tuple[str, ...]
REDUCTIONS: tuple[str, ...]
QUANTITIES: tuple[str, ...]
ON_DUPLICATE: tuple[str, ...]
LIMITS: dict[str, tuple[int, int]]

@type_check_only
class _Pybind11Type(type):
    """pybind11_builtins.pybind11_type: the metaclass of every class pybind11 binds."""

class Map(metaclass=_Pybind11Type):
    @property
    def dim(self) -> int: ...
    @property
    def is_native(self) -> bool: ...
    def forward(self, X: _Array) -> _Array: ...
    def jacobian(self, X: _Array) -> _Array: ...
    def forward_and_jacobian(self, X: _Array) -> tuple[_Array, _Array]: ...

class ResidualNet(Map):
    def __init__(self, blocks: Sequence[tuple[_Array, _Array, _Array, _Array, str]]) -> None: ...
    @property
    def depth(self) -> int: ...

class Affine(Map):
    def __init__(self, W: _Array, b: _Array) -> None: ...

class Chain(Map):
    def __init__(self, maps: Sequence[Map]) -> None: ...

class CallableMap(Map):
    def __init__(self, dim: int, owner: object) -> None: ...

class Inverse(Map):
    def __init__(
        self,
        g: Map,
        method: str,
        tol: float,
        atol: float,
        max_iter: int,
        anderson_memory: int,
        radius: float,
        continuation: Map | None,
        scale: float,
    ) -> None: ...
