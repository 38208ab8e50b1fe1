"""Map families: smooth maps R^d -> R^d evaluated on batches, with Jacobians.

Every map ``f`` takes points as a batch of shape ``(n, d)`` or one point of
shape ``(d,)`` and returns the same shape; ``f.jacobian(X)`` returns
``(n, d, d)`` (or ``(d, d)`` for one point) with ``J[r, a, b] = d f_a / d x_b``
at ``X[r]``. NaN/Inf, booleans, complex numbers and wrong shapes are rejected
with an error naming the argument; a result that overflows (inf, or NaN from
inf - inf) raises ValueError instead of being returned.

Precision follows NumPy's promotion of the map's :attr:`Map.dtype` and the
input's: maps are float64 by default, and array-likes, integers and float32
inputs are computed in float64. A float32 map (``dtype=np.float32`` in the
constructors, or :meth:`Map.astype`) stores float32 parameters and, given a
float32 array, computes in float32 with twice the points per SIMD register and
returns float32; given any other input (float64, float16, integers, lists)
it computes in float64 with its float32 parameters, which float64 holds
exactly. Decompositions, inversion, Hardt-Ma
and certification always compute in float64 (with a float32 map's exact
float64 parameters).

Maps implemented in C++ (:class:`ResidualBlock`, :class:`ResidualNet`,
:class:`Affine` and :class:`Chain` of those) evaluate in parallel over points
with OpenMP, without holding the GIL, and give bitwise identical results for
any thread count (see :func:`nearid.set_num_threads`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ._native import core as _core
from ._validation import (
    as_activation,
    as_count,
    as_dtype,
    as_float_array,
    as_matrix,
    as_nonnegative,
    as_points,
    as_seed,
    as_vector,
    check_finite,
)

__all__ = [
    "Map", "ResidualBlock", "ResidualNet", "ResidualMLP", "Affine", "Chain", "FromCallable", "Labelled", "Inverse",
    "ACTIVATIONS",
]

#: Activations accepted by :class:`ResidualBlock` (the core's list).
ACTIVATIONS: tuple[str, ...] = tuple(_core.ACTIVATIONS)


_FLOAT64 = np.dtype(np.float64)
_FLOAT32 = np.dtype(np.float32)


def _readonly(array: np.ndarray, dtype: np.dtype = _FLOAT64) -> np.ndarray:
    array = np.array(array, dtype=dtype, copy=True)
    array.setflags(write=False)
    return array


def _parameter(array: np.ndarray, name: str, dtype: np.dtype) -> np.ndarray:
    """A checked float64 parameter in `dtype`, read-only; ValueError when rounding to
    float32 overflows (|entry| > 3.4e38)."""
    with np.errstate(over="ignore"):  # reported below, naming the entry
        result = _readonly(array, dtype)
    if not np.isfinite(result).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(result))[0])
        raise ValueError(f"{name} has an entry {array[index]} at index {index} beyond the range of {dtype} "
                         f"(+-{np.finfo(dtype).max:.3g}); use dtype=numpy.float64 or rescale")
    return result


def _check_result(values: np.ndarray, points: np.ndarray, what: str) -> None:
    """ValueError when a map's result at finite points is not finite: the precision overflowed
    (inf, or NaN from inf - inf) somewhere inside the map. Never returned silently."""
    if not np.isfinite(values).all():
        row = int(np.argwhere(~np.isfinite(values))[0][0])
        raise ValueError(
            f"{what} is not finite at row {row} (x = {points[row]}): {values.dtype} overflowed inside the map, "
            "whose parameters or inputs are too large there. Rescale the inputs or the map"
            + (", or evaluate in float64." if values.dtype == _FLOAT32 else ".")
        )


class Map:
    """Base class of nearid maps R^d -> R^d.

    Subclasses set ``self._impl`` to the compiled map (and ``self._dtype`` for
    float32 maps). Calling the map evaluates it; :meth:`jacobian` gives its
    derivative.
    """

    _impl: Any
    _dtype: np.dtype = _FLOAT64

    @property
    def dtype(self) -> np.dtype:
        """The precision of the parameters: float64, or float32 for maps that evaluate
        float32 inputs in float32 (see the module notes)."""
        return self._dtype

    def astype(self, dtype: Any) -> Map:
        """The same map with parameters in `dtype` (numpy.float64 or numpy.float32).

        To float32 every parameter is rounded to nearest (ValueError when one exceeds
        float32's range); to float64 the parameters are exact. Returns ``self`` when the
        dtype is already `dtype`. ResidualBlock, ResidualNet, ResidualMLP, Affine and
        chains of those have float32 kernels; other maps raise TypeError for float32.
        """
        dtype = as_dtype(dtype)
        return self if dtype == self._dtype else self._with_dtype(dtype)

    def _with_dtype(self, dtype: np.dtype) -> Map:
        raise TypeError(f"{type(self).__name__} computes in float64 only: it has no float32 kernels "
                        "(ResidualBlock, ResidualNet, ResidualMLP, Affine and chains of those have them)")

    def _precision(self, X: Any) -> np.dtype:
        """float32 when the map and the array X are both float32, else float64 (NumPy's promotion)."""
        if self._dtype == _FLOAT32 and getattr(X, "dtype", None) == _FLOAT32 and isinstance(X, np.ndarray):
            return _FLOAT32
        return _FLOAT64

    @property
    def dim(self) -> int:
        """The dimension d of the domain and range."""
        return int(self._impl.dim)

    @property
    def compiled(self) -> Any:
        """The compiled object (from ``nearid._core``) that evaluates this map.

        nearid's solvers and kernels (inversion, the landscape gradients, the
        Jacobian norms) take it so that a whole computation stays in C++; it has
        no stable API of its own.
        """
        return self._impl

    def __call__(self, X: Any) -> np.ndarray:
        """Evaluate the map.

        Parameters
        ----------
        X : array_like, shape (n, d) or (d,)
            Points, one per row.

        Returns
        -------
        ndarray, shape (n, d) or (d,)
            f(X), the same shape as X: float32 when the map and X are float32, else float64.
        """
        dtype = self._precision(X)
        points, single = as_points(X, self.dim, "X", dtype)
        Y = (self._impl.forward32 if dtype == _FLOAT32 else self._impl.forward)(points)
        _check_result(Y, points, "f(X)")
        return Y[0] if single else Y

    def jacobian(self, X: Any) -> np.ndarray:
        """Jacobian matrices Df at each point.

        Parameters
        ----------
        X : array_like, shape (n, d) or (d,)

        Returns
        -------
        ndarray, shape (n, d, d) or (d, d)
            ``J[r, a, b] = d f_a / d x_b`` evaluated at ``X[r]`` (dtype as for :meth:`__call__`).
        """
        dtype = self._precision(X)
        points, single = as_points(X, self.dim, "X", dtype)
        d = self.dim
        J = (self._impl.jacobian32 if dtype == _FLOAT32 else self._impl.jacobian)(points)
        _check_result(J, points, "Df(X)")
        J = J.reshape(points.shape[0], d, d)
        return J[0] if single else J

    def value_and_jacobian(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(f(X), Df(X))`` in one pass (shapes as :meth:`__call__` and :meth:`jacobian`)."""
        dtype = self._precision(X)
        points, single = as_points(X, self.dim, "X", dtype)
        d = self.dim
        Y, J = (self._impl.forward_and_jacobian32 if dtype == _FLOAT32 else self._impl.forward_and_jacobian)(points)
        _check_result(Y, points, "f(X)")
        _check_result(J, points, "Df(X)")
        J = J.reshape(points.shape[0], d, d)
        return (Y[0], J[0]) if single else (Y, J)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}{self._dtype_note()})"

    def _dtype_note(self) -> str:
        return ", dtype=float32" if self._dtype == _FLOAT32 else ""

    def __reduce__(self) -> Any:
        # Subclasses pickle their parameters (for Dask workers and
        # multiprocessing); the compiled object itself cannot be pickled.
        raise TypeError(f"{type(self).__name__} cannot be pickled")


class ResidualBlock(Map):
    """One residual block ``x -> x + A s(B x + bias) + shift``.

    Parameters
    ----------
    A : array_like, shape (d, k)
        Output weights.
    B : array_like, shape (k, d)
        Input weights.
    bias : array_like, shape (k,), optional
        Added to ``B x`` before the activation (default zeros).
    shift : array_like, shape (d,), optional
        Added to the output (default zeros).
    activation : str
        The elementwise nonlinearity s, one of :data:`ACTIVATIONS`, with its
        parameter where it has one: "tanh", "sigmoid", "softplus", "relu",
        "identity", "elu" (``"elu(alpha=0.5)"``; default alpha 1),
        "leaky_relu" (``"leaky_relu(slope=0.2)"``; default 0.01), "silu"
        (t sigmoid(t)), "lipswish" (t sigmoid(beta t) / 1.1 as in Residual
        Flows; ``"lipswish(beta=0.8)"``; default 1), "gelu" (t Phi(t), the
        exact erf form) and "gelu_tanh" (PyTorch's ``approximate="tanh"``).
        At the kinks of relu, leaky_relu and elu the Jacobian uses the left
        derivative (relu: s'(0) = 0), the almost-everywhere derivative.
        The name is stored in canonical form (:attr:`activation`).
    dtype : numpy.float64 or numpy.float32
        The precision of the stored parameters (rounded to nearest for float32);
        a float32 block evaluates float32 inputs in float32.

    Notes
    -----
    The residual part ``x -> A s(B x + bias) + shift`` has Lipschitz constant at
    most ``||A||_2 ||B||_2 sup|s'|`` (:attr:`residual_lipschitz_bound`), with
    sup|s'| = 1/4 for sigmoid, 1 for tanh, softplus, relu and lipswish, 1.1
    for silu, 1.13 for the gelus and max(1, |parameter|) for elu and leaky_relu.
    """

    def __init__(
        self,
        A: Any,
        B: Any,
        bias: Any = None,
        shift: Any = None,
        activation: str = "tanh",
        dtype: Any = np.float64,
    ) -> None:
        self._dtype = as_dtype(dtype)
        A_ = as_matrix(A, "A")
        d, k = A_.shape
        if d == 0 or k == 0:
            raise ValueError(f"A must have shape (d, k) with d, k >= 1; got {A_.shape}")
        B_ = as_matrix(B, "B")
        bias_ = np.zeros(k) if bias is None else as_vector(bias, "bias")
        shift_ = np.zeros(d) if shift is None else as_vector(shift, "shift")
        activation = as_activation(activation)
        self._A, self._B = _parameter(A_, "A", self._dtype), _parameter(B_, "B", self._dtype)
        self._bias, self._shift = _parameter(bias_, "bias", self._dtype), _parameter(shift_, "shift", self._dtype)
        self._activation = activation
        # The shape consistency of A, B, bias and shift is checked by the core. It gets the
        # stored parameters in float64 (exact for float32 ones) and rounds them to float
        # itself for its float32 kernels.
        self._impl = _core.ResidualNet([self._params64()])

    A = property(lambda self: self._A, doc="Output weights, shape (d, k) (read-only).")
    B = property(lambda self: self._B, doc="Input weights, shape (k, d) (read-only).")
    bias = property(lambda self: self._bias, doc="Pre-activation bias, shape (k,) (read-only).")
    shift = property(lambda self: self._shift, doc="Output shift, shape (d,) (read-only).")
    activation = property(lambda self: self._activation, doc="Canonical name of the activation ('elu(alpha=0.5)').")

    @property
    def width(self) -> int:
        """The number k of hidden units."""
        return int(self._A.shape[1])

    @property
    def residual_lipschitz_bound(self) -> float:
        """``||A||_2 ||B||_2 sup|s'|``, an upper bound on the Lipschitz constant of the residual part."""
        slope = _core.activation_max_slope(self._activation)
        A, B = (np.asarray(M, dtype=np.float64) for M in (self._A, self._B))
        return float(np.linalg.norm(A, 2) * np.linalg.norm(B, 2) * slope)

    def __reduce__(self) -> Any:
        return (ResidualBlock, (*self._params(), self._dtype))

    def _params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
        return (self._A, self._B, self._bias, self._shift, self._activation)

    def _params64(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
        """The parameters in float64 (exact), as the core takes them."""
        A, B, bias, shift, activation = self._params()
        return (*(np.asarray(p, dtype=np.float64) for p in (A, B, bias, shift)), activation)  # type: ignore[return-value]

    def _with_dtype(self, dtype: np.dtype) -> Map:
        return ResidualBlock(*self._params(), dtype=dtype)

    def __repr__(self) -> str:
        return (f"ResidualBlock(dim={self.dim}, width={self.width}, activation={self._activation!r}"
                f"{self._dtype_note()})")


class ResidualNet(Map):
    """Residual blocks applied in order: ``blocks[-1] o ... o blocks[0]``.

    Parameters
    ----------
    blocks : sequence of ResidualBlock
        At least one block; all of the same dimension d (widths may differ).
        The net is float32 when every block is (NumPy's promotion otherwise:
        float64, with the float32 blocks' parameters held exactly).
    """

    def __init__(self, blocks: Iterable[ResidualBlock]) -> None:
        blocks = tuple(blocks)
        if not blocks:
            raise ValueError("blocks must hold at least one ResidualBlock; got an empty sequence")
        for i, block in enumerate(blocks):
            if not isinstance(block, ResidualBlock):
                raise TypeError(f"blocks[{i}] must be a ResidualBlock; got {type(block).__name__}")
        self._impl = _core.ResidualNet([b._params64() for b in blocks])
        self._blocks = blocks
        self._dtype = _FLOAT32 if all(b.dtype == _FLOAT32 for b in blocks) else _FLOAT64

    @property
    def blocks(self) -> tuple[ResidualBlock, ...]:
        """The blocks, in the order they are applied."""
        return self._blocks

    @property
    def depth(self) -> int:
        """The number of blocks."""
        return len(self._blocks)

    def __len__(self) -> int:
        return len(self._blocks)

    def __reduce__(self) -> Any:
        return (ResidualNet, (list(self._blocks),))

    def _with_dtype(self, dtype: np.dtype) -> Map:
        return ResidualNet([ResidualBlock(*b._params(), dtype=dtype) for b in self._blocks])

    @classmethod
    def random(
        cls,
        dim: int,
        width: int,
        depth: int,
        scale: float,
        seed: int | None = 0,
        activation: str = "tanh",
        bias_scale: float = 0.1,
        dtype: Any = np.float64,
    ) -> ResidualNet:
        """A random residual network whose blocks are near the identity.

        Each block has A (dim, width) and B (width, dim) with standard normal
        entries, rescaled so that ``||A||_2 = ||B||_2`` and
        ``||A||_2 ||B||_2 sup|s'| = scale``: the residual part of every block is
        then ``scale``-Lipschitz at most. Biases are normal with standard
        deviation ``bias_scale``; shifts are zero.

        Parameters
        ----------
        dim, width, depth : int
            d, k and the number of blocks (all >= 1).
        scale : float
            Bound on each block's residual Lipschitz constant (>= 0).
        seed : int or None
            Seed for ``numpy.random.default_rng``; the same seed gives the same net.
        activation : str
            One of :data:`ACTIVATIONS`.
        bias_scale : float
            Standard deviation of the biases (>= 0).
        dtype : numpy.float64 or numpy.float32
            The parameters are drawn in float64 and, for float32, rounded to nearest
            (the same seed gives the float64 net's parameters rounded).
        """
        dim = as_count(dim, "dim")
        width = as_count(width, "width")
        depth = as_count(depth, "depth")
        scale = as_nonnegative(scale, "scale")
        bias_scale = as_nonnegative(bias_scale, "bias_scale")
        activation = as_activation(activation)
        dtype = as_dtype(dtype)
        rng = np.random.default_rng(None if seed is None else as_seed(seed))
        factor = np.sqrt(scale / _core.activation_max_slope(activation))
        blocks = []
        for _ in range(depth):
            A = rng.standard_normal((dim, width))
            B = rng.standard_normal((width, dim))
            A *= factor / np.linalg.norm(A, 2)
            B *= factor / np.linalg.norm(B, 2)
            bias = bias_scale * rng.standard_normal(width)
            blocks.append(ResidualBlock(A, B, bias=bias, activation=activation, dtype=dtype))
        return cls(blocks)

    def __repr__(self) -> str:
        return f"ResidualNet(dim={self.dim}, depth={self.depth}{self._dtype_note()})"


class ResidualMLP(Map):
    """A residual block with any number of hidden layers:
    ``x -> x + W_L s(... s(W_2 s(W_1 x + b_1) + b_2) ...) + b_L``.

    The block family of i-ResNets (several Linear layers, often spectrally
    normalised, with ELU) and Residual Flows (LipSwish). With one hidden layer
    it is :class:`ResidualBlock` ``(A=W_2, B=W_1, bias=b_1, shift=b_2)`` and
    evaluates to the same bits.

    Parameters
    ----------
    weights : sequence of array_like
        ``W_1`` of shape (k_1, d), ``W_2`` (k_2, k_1), ..., ``W_L`` (d, k_{L-1}):
        at least two layers (one hidden layer); widths free. The layout of
        ``torch.nn.Linear.weight`` (out_features, in_features).
    biases : sequence of array_like, optional
        ``b_1`` (k_1,), ..., ``b_L`` (d,); None for all zeros, or None entries
        for single zero biases.
    activation : str
        Applied after every hidden layer (not after the last); any of
        :data:`ACTIVATIONS` with its parameter, as for :class:`ResidualBlock`.
    dtype : numpy.float64 or numpy.float32
        The precision of the stored parameters, as for :class:`ResidualBlock`.
    """

    def __init__(self, weights: Sequence[Any], biases: Sequence[Any] | None = None, activation: str = "tanh",
                 dtype: Any = np.float64) -> None:
        self._dtype = as_dtype(dtype)
        if isinstance(weights, np.ndarray) or not isinstance(weights, Sequence):
            raise TypeError(f"weights must be a list of matrices (W_1, ..., W_L); got {type(weights).__name__}")
        Ws = [as_matrix(W, f"weights[{i}]") for i, W in enumerate(weights)]
        if biases is None:
            biases = [None] * len(Ws)
        if isinstance(biases, np.ndarray) or not isinstance(biases, Sequence):
            raise TypeError(f"biases must be a list of vectors (b_1, ..., b_L) or None; got {type(biases).__name__}")
        if len(biases) != len(Ws):
            raise ValueError(f"biases must hold one vector per layer: {len(Ws)} weights but {len(biases)} biases")
        bs = [np.zeros(W.shape[0]) if b is None else as_vector(b, f"biases[{i}]")
              for i, (W, b) in enumerate(zip(Ws, biases, strict=True))]
        activation = as_activation(activation)
        self._weights = tuple(_parameter(W, f"weights[{i}]", self._dtype) for i, W in enumerate(Ws))
        self._biases = tuple(_parameter(b, f"biases[{i}]", self._dtype) for i, b in enumerate(bs))
        self._activation = activation
        # The shapes (each layer follows the last, the last returns to d) are checked by the core.
        self._impl = _core.ResidualMLP([np.asarray(W, dtype=np.float64) for W in self._weights],
                                       [np.asarray(b, dtype=np.float64) for b in self._biases], activation)

    weights = property(lambda self: self._weights, doc="W_1, ..., W_L (read-only arrays).")
    biases = property(lambda self: self._biases, doc="b_1, ..., b_L (read-only arrays).")
    activation = property(lambda self: self._activation, doc="Canonical name of the activation.")

    @property
    def widths(self) -> tuple[int, ...]:
        """The hidden widths k_1, ..., k_{L-1}."""
        return tuple(int(W.shape[0]) for W in self._weights[:-1])

    @property
    def residual_lipschitz_bound(self) -> float:
        """``prod_l ||W_l||_2 * sup|s'|^(L-1)``, an upper bound on the Lipschitz constant of the residual part."""
        slope = _core.activation_max_slope(self._activation)
        norms = [np.linalg.norm(np.asarray(W, dtype=np.float64), 2) for W in self._weights]
        return float(np.prod(norms) * slope ** (len(norms) - 1))

    def __reduce__(self) -> Any:
        return (ResidualMLP, (list(self._weights), list(self._biases), self._activation, self._dtype))

    def _with_dtype(self, dtype: np.dtype) -> Map:
        return ResidualMLP(list(self._weights), list(self._biases), self._activation, dtype=dtype)

    def __repr__(self) -> str:
        return (f"ResidualMLP(dim={self.dim}, widths={self.widths}, activation={self._activation!r}"
                f"{self._dtype_note()})")


class Affine(Map):
    """The affine map ``x -> W x + b``.

    Parameters
    ----------
    W : array_like, shape (d, d)
    b : array_like, shape (d,), optional
        Default zeros.
    dtype : numpy.float64 or numpy.float32
        The precision of the stored parameters, as for :class:`ResidualBlock`.
    """

    def __init__(self, W: Any, b: Any = None, dtype: Any = np.float64) -> None:
        self._dtype = as_dtype(dtype)
        W_ = as_matrix(W, "W")
        if W_.shape[0] != W_.shape[1] or W_.shape[0] == 0:
            raise ValueError(f"W must be a non-empty square matrix of shape (d, d); got {W_.shape}")
        b_ = np.zeros(W_.shape[0]) if b is None else as_vector(b, "b", W_.shape[0])
        self._W, self._b = _parameter(W_, "W", self._dtype), _parameter(b_, "b", self._dtype)
        self._impl = _core.Affine(np.asarray(self._W, dtype=np.float64), np.asarray(self._b, dtype=np.float64))

    W = property(lambda self: self._W, doc="The matrix, shape (d, d) (read-only).")
    b = property(lambda self: self._b, doc="The offset, shape (d,) (read-only).")

    def __reduce__(self) -> Any:
        return (Affine, (self._W, self._b, self._dtype))

    def _with_dtype(self, dtype: np.dtype) -> Map:
        return Affine(self._W, self._b, dtype=dtype)


class Chain(Map):
    """The composition of maps applied in the order given.

    ``Chain(f, g, h)(x) == h(g(f(x)))``. A chain of C++ maps runs entirely in
    C++, tile by tile through every map; a chain holding a :class:`FromCallable`
    evaluates one map after another on the whole batch.

    Parameters
    ----------
    *maps : Map
        At least one map, all of the same dimension. The chain is float32 when
        every map is (float64 otherwise).
    """

    def __init__(self, *maps: Map) -> None:
        if not maps:
            raise ValueError("Chain needs at least one map")
        for i, f in enumerate(maps):
            if not isinstance(f, Map):
                raise TypeError(
                    f"Chain argument {i} must be a nearid map; got {type(f).__name__} "
                    "(wrap Python functions in nearid.maps.FromCallable)"
                )
        self._impl = _core.Chain([f._impl for f in maps])
        self._maps = tuple(maps)
        if all(f.dtype == _FLOAT32 for f in maps) and self._impl.has_float32:
            self._dtype = _FLOAT32

    @property
    def maps(self) -> tuple[Map, ...]:
        """The maps, in the order they are applied."""
        return self._maps

    def flat_maps(self) -> tuple[Map, ...]:
        """The maps in order of application with nested chains spliced in.

        Iterative, so chains nested to any depth are fine (evaluation, pickling
        and saving all use this order; the result is the same map).
        """
        flat: list[Map] = []
        stack: list[Map] = list(reversed(self._maps))
        while stack:
            f = stack.pop()
            if isinstance(f, Chain):
                stack.extend(reversed(f._maps))
            else:
                flat.append(f)
        return tuple(flat)

    def __repr__(self) -> str:
        flat = self.flat_maps()
        if len(flat) > 8:
            kinds = sorted({type(f).__name__ for f in flat})
            return f"Chain({len(flat)} maps: {', '.join(kinds)}; dim={self.dim})"
        return f"Chain({', '.join(repr(f) for f in flat)})"

    def __reduce__(self) -> Any:
        return (_chain_of, (self.flat_maps(),))

    def _with_dtype(self, dtype: np.dtype) -> Map:
        return Chain(*(f.astype(dtype) for f in self.flat_maps()))


def _chain_of(maps: tuple[Map, ...]) -> Chain:
    return Chain(*maps)


#: Relative step of the central differences used by FromCallable without a Jacobian.
FD_RELATIVE_STEP = float(np.finfo(np.float64).eps ** (1.0 / 3.0))


class FromCallable(Map):
    """A map given by a batched Python callable.

    Parameters
    ----------
    f : callable
        ``f(X)`` with X of shape (n, d) (float64) returns an array of shape (n, d).
        It is called on whole batches, never on single rows.
    dim : int
        The dimension d.
    jacobian : callable, optional
        ``jacobian(X)`` with X (n, d) returns (n, d, d), ``J[r, a, b] = d f_a / d x_b``.
        Without it, Jacobians are central differences: coordinate b of every
        point moves by ``h = eps**(1/3) * max(1, |x_b|)`` (eps**(1/3) is about
        6.1e-6, :data:`FD_RELATIVE_STEP`), one batched call of f on 2n points per
        coordinate; the error is O(h^2 |f'''|), about 1e-10 relative for smooth f.

    Notes
    -----
    Outputs are checked: a wrong shape or a NaN/Inf value raises ValueError.
    Evaluation holds the GIL while f runs, so it is not parallel.
    """

    def __init__(self, f: Callable[[np.ndarray], Any], dim: int, jacobian: Callable[[np.ndarray], Any] | None = None):
        if not callable(f):
            raise TypeError(f"f must be callable; got {type(f).__name__}")
        if jacobian is not None and not callable(jacobian):
            raise TypeError(f"jacobian must be callable or None; got {type(jacobian).__name__}")
        self._f = f
        self._jacobian_fn = jacobian
        self._dim = as_count(dim, "dim")
        # The compiled map refers back to this object weakly (see CallableMap):
        # a dropped FromCallable is freed with whatever its function captures.
        self._impl = _core.CallableMap(self._dim, self)

    @property
    def function(self) -> Callable[[np.ndarray], Any]:
        """The wrapped callable."""
        return self._f

    def _checked_forward(self, X: np.ndarray) -> np.ndarray:
        Y = as_float_array(self._f(X), "output of f")
        if Y.shape != X.shape:
            raise ValueError(
                f"FromCallable: f returned shape {Y.shape} for input of shape {X.shape}; "
                "a batched callable must return (n, d) for (n, d) input"
            )
        check_finite(Y, "output of f")
        return Y

    def _checked_jacobian(self, X: np.ndarray) -> np.ndarray:
        n, d = X.shape
        if self._jacobian_fn is None:
            J = self._central_differences(X)
        else:
            J = as_float_array(self._jacobian_fn(X), "output of jacobian")
            if J.shape != (n, d, d):
                raise ValueError(
                    f"FromCallable: jacobian returned shape {J.shape} for input of shape {X.shape}; "
                    f"expected {(n, d, d)}"
                )
            check_finite(J, "output of jacobian")
        return J.reshape(n, d * d)

    def _central_differences(self, X: np.ndarray) -> np.ndarray:
        n, d = X.shape
        J = np.empty((n, d, d))
        for b in range(d):
            h = FD_RELATIVE_STEP * np.maximum(1.0, np.abs(X[:, b]))
            plus, minus = X.copy(), X.copy()
            plus[:, b] += h
            minus[:, b] -= h
            values = self._checked_forward(np.concatenate([plus, minus]))
            # Divide by the step actually taken (x + h and x - h are rounded).
            J[:, :, b] = (values[:n] - values[n:]) / (plus[:, b] - minus[:, b])[:, None]
        return J

    def __repr__(self) -> str:
        name = getattr(self._f, "__name__", type(self._f).__name__)
        return f"FromCallable({name}, dim={self._dim})"

    def __reduce__(self) -> Any:
        # Pickles when the callables do (cloudpickle, as Dask uses, handles lambdas).
        return (FromCallable, (self._f, self._dim, self._jacobian_fn))



class Labelled(Map):
    """A map shown under a name of its own: the maps nearid assembles from
    others (decomposition layers, segments, g_i, h~), in the paper's notation.

    It evaluates exactly as `map` does (entirely in C++ when its pieces are
    compiled) and pickles when `map` does.

    Parameters
    ----------
    map : Map
        What the map computes.
    label : str
        Its repr, e.g. ``"Layer(h_1)"``.
    """

    def __init__(self, map: Map, label: str) -> None:
        if not isinstance(map, Map):
            raise TypeError(f"map must be a nearid map; got {type(map).__name__}")
        self._map = map
        self._impl = map._impl
        self._label = str(label)
        self._dtype = map.dtype

    @property
    def map(self) -> Map:
        """The map this one evaluates."""
        return self._map

    def __repr__(self) -> str:
        return self._label

    def __reduce__(self) -> Any:
        return (Labelled, (self._map, self._label))

    def _with_dtype(self, dtype: np.dtype) -> Map:
        return Labelled(self._map.astype(dtype), self._label)


class Inverse(Map):
    """The inverse ``f^{-1}`` of a map, each evaluation solving ``f(x) = y`` in C++.

    Solutions must lie in the ball ``||x|| <= radius`` (up to rounding); points
    the direct solve misses are retried by continuation in a along
    ``continuation(a z) / a`` up to a = `scale` when `continuation` is given.
    An evaluation that does not converge raises :class:`nearid.ConvergenceError`.

    Parameters
    ----------
    f : Map
        The map to invert.
    method : str
        An inversion method of :func:`nearid.invert`.
    tol : float
        Relative and absolute residual tolerance.
    max_iter, anderson_memory : int
    radius : float
        Radius of the ball solutions must lie in.
    continuation : Map, optional
        The map continued along (for decomposition layers h~, with f = g_i).
    scale : float
        The scale a at which ``continuation(a z) / a`` equals f.
    """

    def __init__(self, f: Map, method: str, tol: float, max_iter: int, anderson_memory: int, radius: float,
                 continuation: Map | None = None, scale: float = 1.0) -> None:
        for name, value in (("f", f), ("continuation", continuation)):
            if value is not None and not isinstance(value, Map):
                raise TypeError(f"{name} must be a nearid map; got {type(value).__name__}")
        self._params = (f, method, tol, max_iter, anderson_memory, radius, continuation, scale)
        self._impl = _core.Inverse(f._impl, method, tol, tol, max_iter, anderson_memory, radius,
                                   None if continuation is None else continuation._impl, scale)

    @property
    def f(self) -> Map:
        """The inverted map."""
        return self._params[0]

    def __repr__(self) -> str:
        return f"Inverse({self.f!r})"

    def __reduce__(self) -> Any:
        return (Inverse, self._params)
