"""Argument checking and conversion shared by the public API.

Every public function converts its array arguments here, so that errors name
the argument, the expected shape and what was received, and the compiled core
only ever sees finite float64 C-contiguous arrays.

Rules about option names and counts live in the core, which exports them
(``_core.ACTIVATIONS``, ``_core.INVERSION_METHODS``, ``_core.REDUCTIONS``,
``_core.ON_DUPLICATE``, ``_core.LIMITS``) and checks them again itself; the
helpers here only let Python refuse a bad option before starting work, with
the core's wording.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._native import core as _core

_REAL_KINDS = "iuf"


def check_real_dtype(dtype: Any, name: str) -> None:
    """TypeError unless `dtype` holds real numbers (integer or floating; not bool or complex).
    Also applied to lazy (Dask) arrays, before any block is computed."""
    if np.dtype(dtype).kind not in _REAL_KINDS:
        raise TypeError(f"{name} must be an array of real numbers (integer or floating dtype); got dtype {dtype}")


#: The precisions nearid computes in: float64 (the default, and the only one for
#: decompositions, inversion and certification) and float32 (map evaluation,
#: Jacobians and the landscape gradients of float32 maps).
FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def as_dtype(value: Any, name: str = "dtype") -> np.dtype:
    """`value` (np.float64, np.float32, "float32", a dtype, ...) as one of :data:`FLOAT_DTYPES`."""
    try:
        dtype = np.dtype(value)
    except TypeError as exc:
        raise TypeError(f"{name} must be numpy.float64 or numpy.float32; got {value!r}") from exc
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be numpy.float64 or numpy.float32; got {dtype}")
    return dtype


def as_float_array(value: Any, name: str, dtype: Any = np.float64) -> np.ndarray:
    """`value` as a C-contiguous ndarray of `dtype` (float64 unless float32 is asked for);
    TypeError for non-numeric, complex or boolean data."""
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged nested lists and the like
        raise TypeError(f"{name} must be an array of real numbers; could not convert it: {exc}") from exc
    check_real_dtype(array.dtype, name)
    return np.asarray(array, dtype=dtype, order="C")


def check_finite(array: np.ndarray, name: str, row_offset: int = 0) -> None:
    """ValueError naming the first NaN/Inf entry of `array` (rows counted from `row_offset`,
    for a block of a larger array)."""
    if not np.isfinite(array).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        shown = (index[0] + int(row_offset),) + index[1:]
        where = shown[0] if len(shown) == 1 else shown
        raise ValueError(
            f"{name} must be finite; found {array[index]} at index {where}. Remove or replace NaN/Inf values."
        )


def as_matrix(value: Any, name: str, shape: tuple[int | None, int | None] = (None, None),
              dtype: Any = np.float64) -> np.ndarray:
    """A finite 2-D array of `dtype` (float64 by default); `shape` entries that are not None are enforced."""
    array = as_float_array(value, name, dtype)
    expected = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape {expected}; got an array of shape {array.shape}")
    if any(s is not None and s != got for s, got in zip(shape, array.shape)):
        raise ValueError(f"{name} must have shape {expected}; got {array.shape}")
    check_finite(array, name)
    return array


def as_vector(value: Any, name: str, length: int | None = None) -> np.ndarray:
    """A finite 1-D float64 array, of `length` entries when given."""
    array = as_float_array(value, name)
    if array.ndim != 1 or (length is not None and array.shape[0] != length):
        expected = f"({length},)" if length is not None else "(n,)"
        raise ValueError(f"{name} must have shape {expected}; got {array.shape}")
    check_finite(array, name)
    return array


def as_points(value: Any, dim: int, name: str = "X", dtype: Any = np.float64) -> tuple[np.ndarray, bool]:
    """A batch (n, dim) of finite points of `dtype` (float64 by default), and whether a
    single (dim,) point was given."""
    array = as_float_array(value, name, dtype)
    if array.ndim == 1:
        if array.shape[0] != dim:
            raise ValueError(f"{name} must have shape ({dim},) for one point of a map of dim {dim}; got {array.shape}")
        array = array.reshape(1, dim)
        single = True
    elif array.ndim == 2:
        if array.shape[1] != dim:
            raise ValueError(f"{name} must have shape (n, {dim}) for a map of dim {dim}; got {array.shape}")
        single = False
    else:
        raise ValueError(
            f"{name} must be one point of shape ({dim},) or a batch of shape (n, {dim}); "
            f"got an array of shape {array.shape}"
        )
    check_finite(array, name)
    return array, single


def as_point_rows(value: Any, name: str) -> np.ndarray:
    """(n, d) finite float64 points, one per row; a 1-D array is n points of dimension 1."""
    array = as_float_array(value, name)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, d) of points, one per row; got shape {array.shape}")
    if array.shape[1] == 0:
        raise ValueError(f"{name} must have at least one column; got shape {array.shape}")
    check_finite(array, name)
    return array


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """`value` when it is one of `choices` (a list the core exports); otherwise the
    ValueError the core raises for a bad option name (nearid::invalid_choice)."""
    if isinstance(value, str) and value in choices:
        return value
    listed = (" or " if len(choices) == 2 else ", ").join(f"'{c}'" for c in choices)
    got = f"'{value}'" if isinstance(value, str) else repr(value)
    raise ValueError(f"{name} must be {'' if len(choices) == 2 else 'one of '}{listed}; got {got}")


def as_activation(value: Any, name: str = "activation") -> str:
    """The canonical spelling of an activation name such as ``"tanh"`` or
    ``"elu(alpha=0.5)"`` (``_core.canonical_activation``); TypeError for a non-string,
    the core's ValueError (naming the choices) for an unknown name or a bad parameter."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string such as 'tanh' or 'elu(alpha=0.5)'; got {type(value).__name__}")
    return str(_core.canonical_activation(value))


def _as_real(value: Any) -> float:
    """`value` as a float, NaN for what is not a real number (bool and str included)."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def as_nonnegative(value: Any, name: str) -> float:
    """`value` as a float when it is a finite real number >= 0 (bool and str refused);
    ValueError naming `name` otherwise."""
    number = _as_real(value)
    if not np.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return number


def as_positive(value: Any, name: str) -> float:
    """`value` as a float when it is a finite real number > 0 (bool and str refused);
    ValueError naming `name` otherwise."""
    number = _as_real(value)
    if not np.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return number


def is_real_scalar(value: Any) -> bool:
    """True for a Python or NumPy integer or float (bool excluded); the caller checks its range."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))


def as_index(value: Any, name: str) -> int:
    """A Python or NumPy integer as an int (bool, floats and the rest raise TypeError);
    the caller checks its range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer; got {type(value).__name__} {value!r}")
    return int(value)


def as_seed(value: Any, name: str = "seed") -> int:
    """A seed for numpy.random.default_rng: an integer >= 0 of any size."""
    seed = as_index(value, name)
    if seed < 0:
        raise ValueError(f"{name} must be >= 0; got {seed}")
    return seed


def as_count(value: Any, name: str, limit: str | None = None, minimum: int | None = None) -> int:
    """A size or count within the bounds of the core's table ``_core.LIMITS[limit or name]``.

    Python and NumPy integers are accepted; bool, float (even 2.0), str and
    the rest raise TypeError; values outside the bounds (Python ints of any
    size included) raise ValueError naming `name` and the bound. Every count
    that sizes memory or loops in the core passes here once, so that no size
    arithmetic in C++ can overflow. `minimum` tightens the table's lower bound.
    """
    value = as_index(value, name)
    low, high = (int(v) for v in _core.LIMITS[limit or name])
    if minimum is not None:
        low = max(low, minimum)
    if value < low:
        raise ValueError(f"{name} must be >= {low}; got {value}")
    if value > high:
        raise ValueError(f"{name} must be <= {high}; got {value}")
    return value
