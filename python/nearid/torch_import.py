"""Import PyTorch residual networks as nearid maps (optional extra ``torch``).

:func:`from_torch` traces a module with ``torch.fx`` and reads its graph as a
chain of maps: Linear layers and the activations between them become the
branches ``g`` of residual connections ``x + g(x)`` (a
:class:`~nearid.maps.ResidualMLP`, or an :class:`~nearid.maps.Affine` when
``g`` is linear), square Linear layers on the residual stream become
:class:`~nearid.maps.Affine` maps. Scalar factors (an i-ResNet's coefficient,
the 1/1.1 of LipSwish, a softplus beta) are folded into the weights.
:class:`FromTorch` wraps what cannot be read: the module itself, evaluated by
PyTorch in float64 with autograd Jacobians.
"""

from __future__ import annotations

import copy
import operator
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from .errors import UnsupportedModule
from .maps import Affine, Chain, FromCallable, Map, ResidualBlock, ResidualMLP, ResidualNet

__all__ = ["FromTorch", "from_torch"]


def _import_torch() -> Any:
    try:
        import torch
        import torch.fx  # noqa: F401
    except ImportError as exc:
        raise ImportError("nearid.from_torch needs PyTorch: pip install 'nearid[torch]'") from exc
    return torch


# ---------------------------------------------------------------- symbolic values


@dataclass
class _Stream:
    """The residual stream after `index` maps (0: the module's input)."""

    index: int


@dataclass
class _Branch:
    """Linear layers, with one activation between them, applied to stream `base`; the value is
    ``W_j h + b_j`` of the last layer, or ``expr`` of it when `expr` is not None (an
    elementwise expression in that value)."""

    base: int
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activation: str | None = None
    expr: Any = None


@dataclass(frozen=True)
class _Var:
    """The last linear layer's output t, inside an elementwise expression."""


@dataclass(frozen=True)
class _Scaled:
    factor: float
    inner: Any


@dataclass(frozen=True)
class _Activated:
    name: str
    inner: Any


@dataclass(frozen=True)
class _Product:
    left: Any
    right: Any


@dataclass(frozen=True)
class _Pending:
    """An activated value awaiting its next layer, which multiplies it by `factor` first."""

    factor: float


@dataclass
class _Const:
    value: Any  # a float64 torch tensor or a Python number


@dataclass
class _Reader:
    """The state of one pass over a traced graph."""

    torch: Any
    root: Any
    maps: list[Map] = field(default_factory=list)
    dim: int | None = None


# Elementwise expressions of t = W h + b reduce to  out * s(in * t), s an activation or None.
def _classify(expr: Any, node: Any) -> tuple[float, str | None, float]:
    if isinstance(expr, _Var):
        return 1.0, None, 1.0
    if isinstance(expr, _Scaled):
        i, a, o = _classify(expr.inner, node)
        return (i, a, o * expr.factor)
    if isinstance(expr, _Activated):
        i, a, o = _classify(expr.inner, node)
        if a is not None:
            raise UnsupportedModule(f"node '{node}': two activations in a row ({a}, then {expr.name}); nearid's "
                                    "blocks apply one activation between Linear layers")
        return i * o, expr.name, 1.0
    if isinstance(expr, _Product):
        # t * sigmoid(beta t) (swish), as Residual Flows' LipSwish computes it.
        for lhs, rhs in ((expr.left, expr.right), (expr.right, expr.left)):
            i1, a1, o1 = _classify(lhs, node)
            i2, a2, o2 = _classify(rhs, node)
            if a1 is None and a2 == "sigmoid":
                factor = i1 * o1 * o2  # the product is factor * t * sigmoid(i2 t)
                if i2 == 1.0:
                    return 1.0, "silu", factor
                return 1.0, f"lipswish(beta={i2!r})", factor * 1.1
        raise UnsupportedModule(f"node '{node}': a product of two expressions in the same units that is not "
                                "t * sigmoid(beta t) (swish)")
    raise AssertionError(expr)


def _scaled_layer(W: np.ndarray, b: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    return (W, b) if factor == 1.0 else (W * factor, b * factor)


def _settle(branch: _Branch, node: Any) -> _Branch:
    """`branch` with its elementwise expression folded in: the value is then the last layer's
    output, or an activation of it awaiting the next layer (activation set, one more layer due)."""
    if branch.expr is None:
        return branch
    i, act, o = _classify(branch.expr, node)
    weights, biases = list(branch.weights), list(branch.biases)
    weights[-1], biases[-1] = _scaled_layer(weights[-1], biases[-1], i)
    if act is None:
        weights[-1], biases[-1] = _scaled_layer(weights[-1], biases[-1], o)
        return _Branch(branch.base, weights, biases, branch.activation)
    if branch.activation is not None and branch.activation != act:
        raise UnsupportedModule(f"node '{node}': activation {act} after {branch.activation} in one residual "
                                "branch; nearid's blocks use one activation throughout")
    # The activation's output enters the next layer scaled by o: record it as a pending factor.
    return _Branch(branch.base, weights, biases, act, _Pending(o))


def _then_linear(branch: _Branch, W: np.ndarray, b: np.ndarray, node: Any) -> _Branch:
    """`branch` followed by the linear layer t -> W t + b."""
    settled = _settle(branch, node)
    weights, biases = list(settled.weights), list(settled.biases)
    if isinstance(settled.expr, _Pending):
        weights.append(W * settled.expr.factor if settled.expr.factor != 1.0 else W)
        biases.append(b)
    else:  # two linear layers in a row compose into one
        weights[-1], biases[-1] = W @ weights[-1], W @ biases[-1] + b
    return _Branch(settled.base, weights, biases, settled.activation)


def _residual(branch: _Branch, d: int, node: Any) -> Map:
    """The map x -> x + branch(x)."""
    settled = _settle(branch, node)
    weights, biases = list(settled.weights), list(settled.biases)
    if isinstance(settled.expr, _Pending):  # ends with an activation: a last layer factor * I
        weights.append(np.eye(d) * settled.expr.factor)
        biases.append(np.zeros(d))
    if settled.activation is None:  # linear: x + W x + b
        (W,), (b,) = weights, biases
        return Affine(np.eye(d) + W, b)
    if len(weights) == 2:  # one hidden layer: nearid's ResidualBlock (the same function, bit for bit)
        return ResidualBlock(weights[1], weights[0], biases[0], biases[1], settled.activation)
    return ResidualMLP(weights, biases, settled.activation)


# ---------------------------------------------------------------- graph reading

_ACTIVATION_FUNCTIONS = {"tanh": "tanh", "tanh_": "tanh", "sigmoid": "sigmoid", "sigmoid_": "sigmoid",
                         "relu": "relu", "relu_": "relu", "silu": "silu"}


def _module_activation(module: Any, torch: Any) -> tuple[str, float, float] | None:
    """(name, in factor, out factor) of a torch activation module, None for a no-op, else KeyError."""
    nn = torch.nn
    if isinstance(module, (nn.Identity, nn.Dropout)):
        return None
    if type(module).__name__ == "TorchActivation" and type(module).__module__ == "nearid.export":
        return str(module.activation), 1.0, 1.0  # "identity" too: the layers stay apart, as exported
    simple = {nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.ReLU: "relu", nn.SiLU: "silu"}
    for cls, name in simple.items():
        if type(module) is cls:
            return name, 1.0, 1.0
    if type(module) is nn.ELU:
        return f"elu(alpha={float(module.alpha)!r})", 1.0, 1.0
    if type(module) is nn.LeakyReLU:
        return f"leaky_relu(slope={float(module.negative_slope)!r})", 1.0, 1.0
    if type(module) is nn.GELU:
        return ("gelu_tanh" if module.approximate == "tanh" else "gelu"), 1.0, 1.0
    if type(module) is nn.Softplus:
        beta = float(module.beta)
        return "softplus", beta, 1.0 / beta
    raise KeyError(type(module).__name__)


def _function_activation(target: Any, kwargs: dict[str, Any], torch: Any) -> tuple[str, float, float] | None:
    F = torch.nn.functional
    name = getattr(target, "__name__", None)
    if target in (F.elu, F.elu_):
        return f"elu(alpha={float(kwargs.get('alpha', 1.0))!r})", 1.0, 1.0
    if target in (F.leaky_relu, F.leaky_relu_):
        return f"leaky_relu(slope={float(kwargs.get('negative_slope', 0.01))!r})", 1.0, 1.0
    if target is F.gelu:
        return ("gelu_tanh" if kwargs.get("approximate", "none") == "tanh" else "gelu"), 1.0, 1.0
    if target is F.softplus:
        beta = float(kwargs.get("beta", 1.0))
        return "softplus", beta, 1.0 / beta
    if name in _ACTIVATION_FUNCTIONS and (target is getattr(torch, name, None) or target is getattr(F, name, None)):
        return _ACTIVATION_FUNCTIONS[name], 1.0, 1.0
    return None


def _numpy(tensor: Any) -> np.ndarray:
    return tensor.detach().to("cpu").double().numpy().copy()


def _scalar(value: Any) -> float | None:
    """A Python float for a number or a one-element tensor, else None."""
    if isinstance(value, _Const):
        value = value.value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hasattr(value, "numel") and value.numel() == 1:
        return float(value.detach().double().reshape(()))
    return None


_ADDS = ("add", "add_", "iadd")


def _stream_nodes(nodes: list[Any], torch: Any) -> set[Any]:
    """The nodes whose values are the residual stream: the skip operand `a` of every addition
    a + b where b depends on a (a residual connection), and the module's output."""
    ancestors: dict[Any, set[Any]] = {}
    for node in nodes:  # topological order: a node's inputs come first
        found: set[Any] = set()
        for parent in node.all_input_nodes:
            found.add(parent)
            found |= ancestors[parent]
        ancestors[node] = found
    streams: set[Any] = set()
    for node in nodes:
        target = node.target
        name = target if isinstance(target, str) else getattr(target, "__name__", "")
        if node.op in ("call_function", "call_method") and name in _ADDS and len(node.args) >= 2:
            a, b = node.args[0], node.args[1]
            if isinstance(a, torch.fx.Node) and isinstance(b, torch.fx.Node):
                if a in ancestors[b]:
                    streams.add(a)
                elif b in ancestors[a]:
                    streams.add(b)
        if node.op == "output":
            streams.update(n for n in node.all_input_nodes)
    return streams


def _read_graph(reader: _Reader, graph: Any) -> Map:
    torch = reader.torch
    env: dict[Any, Any] = {}
    nodes = list(graph.nodes)
    placeholders = [n for n in nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise UnsupportedModule(f"the module's forward takes {len(placeholders)} inputs; from_torch reads maps of one "
                                "input x (n, d)")

    def current(index: int, node: Any) -> int:
        if index != len(reader.maps):
            raise UnsupportedModule(f"node '{node}' uses the residual stream as it was before map {index}; the model "
                                    "is not a chain of maps (each block must read the output of the one before)")
        return index

    def as_branch(value: Any, node: Any) -> _Branch | None:
        if isinstance(value, _Stream):
            return None
        if isinstance(value, _Branch):
            return value
        raise UnsupportedModule(f"node '{node}' applies a layer to a constant")

    def materialise(value: Any, node: Any) -> _Stream:
        """`value` as the stream: a branch that is one square linear layer becomes an Affine map."""
        if isinstance(value, _Stream):
            return value
        if isinstance(value, _Branch):
            settled = _settle(value, node)
            if settled.activation is None and not isinstance(settled.expr, _Pending):
                current(settled.base, node)
                (W,), (b,) = settled.weights, settled.biases
                if W.shape[0] != W.shape[1]:
                    raise UnsupportedModule(
                        f"node '{node}' maps R^{W.shape[1]} to R^{W.shape[0]}; nearid's maps send R^d to R^d "
                        "(projections between dimensions have no nearid form)")
                reader.maps.append(Affine(W, b))
                return _Stream(len(reader.maps))
        raise UnsupportedModule(f"node '{node}' is a nonlinear layer outside a residual connection x + g(x); nearid "
                                "reads residual blocks, Linear layers and activations inside them")

    def linear(value: Any, W: np.ndarray, b: np.ndarray | None, node: Any) -> _Branch:
        b = np.zeros(W.shape[0]) if b is None else b
        branch = as_branch(value, node)
        if branch is None:
            base = current(value.index, node)
            if reader.dim is None:
                reader.dim = int(W.shape[1])
            return _Branch(base, [W], [b])
        return _then_linear(branch, W, b, node)

    def elementwise(value: Any, wrap: Any, node: Any) -> _Branch:
        if not isinstance(value, _Branch):
            raise UnsupportedModule(f"node '{node}' ({node.target}) acts on the residual stream itself; nearid's "
                                    "blocks act elementwise only inside a branch, after a Linear layer")
        settled = value
        if isinstance(settled.expr, _Pending):
            raise UnsupportedModule(f"node '{node}' ({node.target}) follows an activation without a Linear layer "
                                    "in between")
        return _Branch(settled.base, settled.weights, settled.biases, settled.activation,
                       wrap(_Var() if settled.expr is None else settled.expr))

    def activate(value: Any, spec: tuple[str, float, float] | None, node: Any) -> Any:
        if spec is None:
            return value
        name, inside, outside = spec

        def wrap(e: Any) -> Any:
            activated = _Activated(name, _Scaled(inside, e) if inside != 1.0 else e)
            return _Scaled(outside, activated) if outside != 1.0 else activated

        return elementwise(value, wrap, node)

    def add(a: Any, b: Any, node: Any) -> Any:
        for stream, other in ((a, b), (b, a)):
            if isinstance(stream, _Stream) and isinstance(other, (_Branch, _Const)):
                current(stream.index, node)
                if reader.dim is None:
                    raise UnsupportedModule(f"node '{node}' adds to the input before any Linear layer tells its "
                                            "dimension")
                if isinstance(other, _Branch) and other.base != stream.index:
                    raise UnsupportedModule(f"node '{node}' adds a branch of another stream to the residual stream")
                try:
                    if isinstance(other, _Branch):
                        reader.maps.append(_residual(other, reader.dim, node))
                    else:
                        shift = np.broadcast_to(np.asarray(_numpy_const(other), dtype=float), (reader.dim,))
                        reader.maps.append(Affine(np.eye(reader.dim), shift))
                except ValueError as exc:
                    if isinstance(exc, UnsupportedModule):
                        raise
                    raise UnsupportedModule(f"node '{node}': this residual connection has no nearid form: {exc}") \
                        from exc
                return _Stream(len(reader.maps))
            if isinstance(stream, _Branch) and isinstance(other, _Const) and stream.expr is None:
                biases = list(stream.biases)
                biases[-1] = biases[-1] + _numpy_const(other)
                return _Branch(stream.base, stream.weights, biases, stream.activation)
        if isinstance(a, _Stream) and isinstance(b, _Stream):
            raise UnsupportedModule(f"node '{node}' adds two values of the residual stream (such as x + x); "
                                    "nearid reads x + g(x) with g a branch of Linear layers")
        raise UnsupportedModule(f"node '{node}' adds two values nearid cannot combine ({type(a).__name__[1:]}, "
                                f"{type(b).__name__[1:]})")

    def _numpy_const(c: _Const) -> Any:
        v = c.value
        return _numpy(v) if hasattr(v, "detach") else float(v)

    def multiply(a: Any, b: Any, node: Any, divide: bool = False) -> Any:
        for value, other in ((a, b), (b, a)) if not divide else ((a, b),):
            factor = _scalar(other)
            if factor is not None and isinstance(value, _Branch):
                factor = 1.0 / factor if divide else factor
                return elementwise(value, lambda e, f=factor: _Scaled(f, e), node)
        if isinstance(a, _Branch) and isinstance(b, _Branch) and not divide and a.base == b.base \
                and len(a.weights) == len(b.weights) and all(x is y for x, y in zip(a.weights, b.weights)):
            return elementwise(a, lambda e: _Product(e, b.expr if b.expr is not None else _Var()), node)
        raise UnsupportedModule(f"node '{node}' ({node.target}) multiplies values nearid cannot combine; scalar "
                                "factors and t * sigmoid(beta t) are read")

    def constant(node: Any) -> Any:
        args = [env[a] if isinstance(a, torch.fx.Node) else a for a in node.args]
        kwargs = {k: env[v] if isinstance(v, torch.fx.Node) else v for k, v in node.kwargs.items()}
        if not all(isinstance(a, _Const) or not isinstance(a, (_Stream, _Branch)) for a in [*args, *kwargs.values()]):
            return None
        raw = [a.value if isinstance(a, _Const) else a for a in args]
        raw_kw = {k: (v.value if isinstance(v, _Const) else v) for k, v in kwargs.items()}
        if node.op == "call_function":
            return _Const(node.target(*raw, **raw_kw))
        if node.op == "call_method":
            return _Const(getattr(raw[0], node.target)(*raw[1:], **raw_kw))
        if node.op == "call_module":
            return _Const(reader.root.get_submodule(node.target)(*raw, **raw_kw))
        return None

    F = torch.nn.functional
    streams = _stream_nodes(nodes, torch)
    for node in nodes:
        args = [env[a] if isinstance(a, torch.fx.Node) else a for a in node.args]
        if node.op == "placeholder":
            env[node] = _Stream(0)
        elif node.op == "get_attr":
            value = reader.root
            for part in node.target.split("."):
                value = getattr(value, part)
            env[node] = _Const(value.detach().double() if hasattr(value, "detach") else value)
        elif node.op == "output":
            (result,) = args if not isinstance(args[0], (tuple, list)) else (args[0],)
            if isinstance(result, (tuple, list)):
                raise UnsupportedModule("the module returns several values; from_torch reads maps with one output")
            stream = materialise(result, node)
            current(stream.index, node)
        elif (folded := constant(node)) is not None:
            env[node] = folded
        elif node.op == "call_module":
            module = reader.root.get_submodule(node.target)
            if isinstance(module, torch.nn.Linear):
                bias = None if module.bias is None else _numpy(module.bias)
                env[node] = linear(args[0], _numpy(module.weight), bias, node)
            else:
                try:
                    spec = _module_activation(module, torch)
                except KeyError:
                    raise UnsupportedModule(f"node '{node}': module '{node.target}' ({type(module).__name__}) is not "
                                            "a Linear layer or a supported activation") from None
                env[node] = activate(args[0], spec, node)
        elif node.op in ("call_function", "call_method"):
            target = node.target
            kwargs = dict(node.kwargs)
            method = target if node.op == "call_method" else None
            if target in (operator.add, operator.iadd, torch.add) or method in ("add", "add_"):
                env[node] = add(args[0], args[1], node)
            elif target in (operator.mul, operator.imul, torch.mul) or method in ("mul", "mul_"):
                env[node] = multiply(args[0], args[1], node)
            elif target in (operator.truediv, operator.itruediv, torch.div) or method in ("div", "div_"):
                env[node] = multiply(args[0], args[1], node, divide=True)
            elif target is F.linear:
                weight = args[1] if len(args) > 1 else kwargs["weight"]
                bias = args[2] if len(args) > 2 else kwargs.get("bias")
                env[node] = linear(args[0], _numpy(weight.value), None if bias is None else _numpy(bias.value), node)
            elif target in (operator.matmul, torch.matmul) and isinstance(args[1], _Const):
                env[node] = linear(args[0], _numpy(args[1].value).T, None, node)
            elif method is not None and method in _ACTIVATION_FUNCTIONS:
                env[node] = activate(args[0], (_ACTIVATION_FUNCTIONS[method], 1.0, 1.0), node)
            elif (spec := _function_activation(target, kwargs, torch)) is not None:
                env[node] = activate(args[0], spec, node)
            elif target in (F.dropout,) or method in ("contiguous", "clone"):
                env[node] = args[0]
            else:
                raise UnsupportedModule(f"node '{node}': operation {getattr(target, '__name__', target)!r} has no "
                                        "nearid form")
        else:
            raise UnsupportedModule(f"node '{node}': {node.op} is not supported")
        if node in streams and isinstance(env.get(node), _Branch):
            # The residual stream itself (a residual connection adds to it): a layer on it is a map of its own.
            env[node] = materialise(env[node], node)
    if not reader.maps:
        raise UnsupportedModule("the module computes the identity (no layer was found)")
    if len(reader.maps) == 1:
        return reader.maps[0]
    if all(isinstance(f, ResidualBlock) for f in reader.maps):
        return ResidualNet(cast(list[ResidualBlock], reader.maps))
    return Chain(*reader.maps)


# ---------------------------------------------------------------- public API


#: Points per vectorised Jacobian call of FromTorch (memory stays O(chunk), whatever the batch).
_JACOBIAN_CHUNK = 1024


class FromTorch(FromCallable):
    """A map computed by a PyTorch module, in float64, with autograd Jacobians.

    The module is copied, converted to float64 and put in eval mode (the
    caller's module is not changed); parametrized weights (spectral or weight
    norm) are fixed at their effective values. Values run the module on the batch under
    ``torch.no_grad``; Jacobians use ``torch.func.vmap(torch.func.jacrev(...))``
    over the rows, 1024 rows at a time. Slower than nearid's own maps (each call goes through
    PyTorch and holds the GIL), but any module R^d -> R^d works.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a batch (n, d) to (n, d).
    dim : int
        The dimension d.
    """

    def __init__(self, module: Any, dim: int) -> None:
        torch = _import_torch()
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}")
        self._module = _float64_copy(module, torch)
        super().__init__(self._values, dim, self._jacobians)

    @property
    def module(self) -> Any:
        """The float64 copy of the module that this map evaluates."""
        return self._module

    def _values(self, X: np.ndarray) -> np.ndarray:
        torch = _import_torch()
        with torch.no_grad():
            return _numpy(self._module(torch.from_numpy(np.ascontiguousarray(X))))

    def _jacobians(self, X: np.ndarray) -> np.ndarray:
        torch = _import_torch()

        def one(x: Any) -> Any:
            return self._module(x.unsqueeze(0)).squeeze(0)

        # In chunks: one vmap over 10^5 points holds every intermediate of every point at once (tens of GB).
        jacobians = torch.func.vmap(torch.func.jacrev(one), chunk_size=_JACOBIAN_CHUNK)
        return _numpy(jacobians(torch.from_numpy(np.ascontiguousarray(X))))

    def __repr__(self) -> str:
        return f"FromTorch({type(self._module).__name__}, dim={self.dim})"

    def __reduce__(self) -> Any:
        return (FromTorch, (self._module, self.dim))


def from_torch(module: Any, dim: int | None = None, fallback: bool = False, dtype: Any = None) -> Map:
    """A nearid map computing what a PyTorch module computes, read from its graph.

    The module is traced with ``torch.fx``; its graph must be a chain of maps
    R^d -> R^d: residual connections ``x + g(x)`` whose branch ``g`` is
    ``nn.Linear`` layers (``F.linear``, ``x @ W.T``) with one kind of
    activation between them, and square Linear layers on the stream itself.
    Residual branches become :class:`~nearid.maps.ResidualMLP` maps (an
    :class:`~nearid.maps.Affine` ``I + W`` when g is linear), stream Linear
    layers Affine maps, the whole a :class:`~nearid.maps.Chain`. Parameters
    are read in eval mode, as the module computes them, so weights behind
    parametrizations (``torch.nn.utils.parametrizations.spectral_norm``,
    ``weight_norm``) are the effective weights, computed in float64 and
    rounded once to the map's dtype.

    Recognised activations: modules ``nn.Tanh``, ``nn.Sigmoid``, ``nn.ReLU``,
    ``nn.ELU``, ``nn.LeakyReLU``, ``nn.SiLU``, ``nn.GELU`` (both forms),
    ``nn.Softplus`` (any beta), the same functions in ``torch`` and
    ``torch.nn.functional``, and ``t * sigmoid(beta * t)`` written out (with
    or without ``/ 1.1``: Residual Flows' LipSwish). Scalar factors and
    divisions are folded into the weights; ``nn.Identity`` and ``nn.Dropout``
    (eval mode) are skipped.

    Parameters
    ----------
    module : torch.nn.Module
    dim : int, optional
        The dimension d, needed only when the module has no Linear layer (a
        :class:`FromTorch` of it); checked against the module's otherwise.
    fallback : bool
        When the graph has an operation nearid cannot read: False (default)
        raises :class:`UnsupportedModule`; True wraps the unsupported part in
        a :class:`FromTorch` map: each child of an ``nn.Sequential`` on its
        own, else the whole module.
    dtype : numpy.float32 or numpy.float64, optional
        The map's dtype. Default: float32 when every floating-point parameter
        and buffer of the module is float32 (a float32 model stays float32: float32 inputs
        are then evaluated in float32), else float64. A :class:`FromTorch`
        part evaluates in float64 only, so a fallback result is float64
        unless ``dtype=numpy.float32`` is asked for, which then raises
        TypeError.

    Returns
    -------
    Map
        One map, or a Chain of them. ``from_torch(to_torch(net))`` equals net
        (same parameters); values agree with the module to rounding (folded
        factors round once more).

    Raises
    ------
    UnsupportedModule
        (a ValueError) naming the graph node and its operation.
    TypeError
        When `module` is not a ``torch.nn.Module``.
    ImportError
        When PyTorch is not installed (``pip install 'nearid[torch]'``).

    Notes
    -----
    torch's ``nn.Softplus`` returns its input above ``threshold`` (20 by
    default, an error of e^-20 relative there); nearid computes softplus
    exactly.
    """
    torch = _import_torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}")
    from ._validation import as_count, as_dtype

    if dim is not None:
        dim = as_count(dim, "dim")
    asked = None if dtype is None else as_dtype(dtype)
    try:
        result = _import(module, torch)
    except UnsupportedModule:
        if not fallback:
            raise
        result = _fallback(module, dim, torch)
    if dim is not None and result.dim != dim:
        raise ValueError(f"dim is {dim} but the module maps R^{result.dim} to itself")
    if asked is not None:
        return result.astype(asked)
    tensors = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]  # not counters
    if tensors and all(t.dtype == torch.float32 for t in tensors):
        try:
            return result.astype(np.float32)
        except TypeError:  # a FromTorch part: float64 only
            return result
    return result


def _import(module: Any, torch: Any) -> Map:
    # A float64 copy in eval mode: the module as it computes in float64, with the effective weights of
    # its parametrizations (no power iteration runs), and the caller's module untouched.
    copied = _float64_copy(module, torch)
    try:
        graph = _tracer(torch)().trace(copied)
    except Exception as exc:  # noqa: BLE001 - any tracing failure means the same thing here
        raise UnsupportedModule(f"torch.fx cannot trace the module ({type(exc).__name__}: {exc}); "
                                "use fallback=True to evaluate it through PyTorch") from exc
    with torch.no_grad():
        return _read_graph(_Reader(torch, copied), graph)


def _float64_copy(module: Any, torch: Any) -> Any:
    """A float64, eval-mode copy of `module` whose parametrized weights are plain tensors holding
    the effective weights (so that it pickles, and evaluates without re-running them)."""
    copied = copy.deepcopy(module).double().eval()
    with torch.no_grad():
        for m in list(copied.modules()):
            if torch.nn.utils.parametrize.is_parametrized(m):
                effective = {name: getattr(m, name).detach().clone() for name in m.parametrizations}
                # Not parametrize.remove_parametrizations: it edits the parametrized class, which the
                # copy shares with the caller's module. The copy alone returns to the plain class.
                m.__class__ = type(m).__bases__[0]
                del m._modules["parametrizations"]
                for name, value in effective.items():
                    m.register_parameter(name, torch.nn.Parameter(value))
        for p in copied.parameters():
            p.requires_grad_(False)
    return copied


def _tracer(torch: Any) -> Any:
    """torch.fx's tracer, with nearid's exported activations (TorchActivation) kept as one node."""

    class Tracer(torch.fx.Tracer):  # type: ignore[misc]
        def is_leaf_module(self, m: Any, qualified_name: str) -> bool:
            return type(m).__name__ == "TorchActivation" or super().is_leaf_module(m, qualified_name)

    return Tracer


def _fallback(module: Any, dim: int | None, torch: Any) -> Map:
    if isinstance(module, torch.nn.Sequential) and len(module) > 1:
        parts: list[Map] = []
        for child in module:
            try:
                part = _import(child, torch)
            except UnsupportedModule:
                part = _fallback(child, dim if dim is not None else (parts[-1].dim if parts else None), torch)
            parts.append(part)
        return Chain(*parts)
    if dim is None:
        dim = _infer_dim(module, torch)
    return FromTorch(module, dim)


def _infer_dim(module: Any, torch: Any) -> int:
    for m in module.modules():
        if isinstance(m, torch.nn.Linear):
            return int(m.in_features)
    raise ValueError("cannot tell the dimension d of a module without Linear layers; pass dim=")
