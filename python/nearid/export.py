"""Export to PyTorch (optional extra ``torch``).

:func:`to_torch` turns a :class:`nearid.maps.ResidualNet` (a
:class:`nearid.distill.DistilledNet` included), a :class:`~nearid.maps.ResidualBlock`,
a :class:`~nearid.maps.ResidualMLP`, an :class:`~nearid.maps.Affine` or a
:class:`~nearid.maps.Chain` of those into a
``torch.nn.Module`` computing the same function, with the parameters as float64
``nn.Parameter`` tensors, ready for further training in PyTorch. The modules
can be saved with ``torch.save``, loaded with ``torch.load(path,
weights_only=False)`` and compiled with ``torch.jit.script``.

The module classes are ``nearid.export.TorchAffine``,
``nearid.export.TorchResidualBlock``, ``nearid.export.TorchResidualMLP``,
``nearid.export.TorchChain`` and ``nearid.export.TorchActivation``.
Importing this module does not import PyTorch: the classes are defined the
first time they are needed (by :func:`to_torch`, or by looking the name up in
this module, as unpickling does) and are then kept here under those names, so
pickling refers to them by name and a fresh process that loads a saved
module finds the same classes.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ._native import core as _core
from ._validation import as_activation
from .decompose import Decomposition
from .maps import Affine, Chain, Labelled, Map, ResidualBlock, ResidualMLP, ResidualNet

__all__ = ["to_torch"]

#: The names of the module classes, defined in this module on first use.
_CLASS_NAMES = ("TorchAffine", "TorchActivation", "TorchResidualBlock", "TorchResidualMLP", "TorchChain")
_define_lock = threading.Lock()

_SUPPORTED = (
    "nearid.maps.ResidualNet (nearid.distill.DistilledNet included), nearid.maps.ResidualBlock, "
    "nearid.maps.ResidualMLP, nearid.maps.Affine, and nearid.maps.Chain of those"
)


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ImportError("nearid.export needs PyTorch: pip install 'nearid[torch]'") from exc
    return torch


def __getattr__(name: str) -> Any:
    # Module-level lookup of the module classes (PEP 562): how torch.load and
    # pickle find them in a process that has not called to_torch yet.
    if name in _CLASS_NAMES:
        return _torch_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _torch_classes() -> dict[str, type]:
    """The module classes, defined once per process and stored in this module's namespace."""
    namespace = globals()
    with _define_lock:
        if not all(name in namespace for name in _CLASS_NAMES):
            for cls in _define_torch_classes():
                # Defined inside a function; give them the names they are stored
                # under so that pickle finds them as nearid.export.<name>.
                cls.__qualname__ = cls.__name__
                cls.__module__ = __name__
                namespace[cls.__name__] = cls
    return {name: namespace[name] for name in _CLASS_NAMES}


def _parameter(torch: Any, values: Any, dtype: Any) -> Any:
    # np.array copies: nearid's arrays are read-only and torch must own its data.
    return torch.nn.Parameter(torch.as_tensor(np.array(values, dtype=np.float64)).to(dtype))


def _define_torch_classes() -> tuple[type, ...]:
    _import_torch()  # ImportError naming the extra to install
    import torch
    from torch import nn

    class TorchAffine(nn.Module):
        """``x -> x W^T + b`` on a batch (n, d) or one point (d,): nearid's ``Affine`` in PyTorch.

        Parameters
        ----------
        W : array_like, shape (d, d)
        b : array_like, shape (d,)
        dtype : torch.dtype
            Parameter dtype (default ``torch.float64``).

        Attributes ``W`` and ``b`` are ``nn.Parameter`` s.
        """

        def __init__(self, W: Any, b: Any, dtype: Any = torch.float64) -> None:
            super().__init__()
            self.W = _parameter(torch, W, dtype)
            self.b = _parameter(torch, b, dtype)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """``x W^T + b``, the shape of `x`."""
            return x @ self.W.T + self.b

        def extra_repr(self) -> str:
            """The dimension."""
            return f"dim={self.W.shape[0]}"

    class TorchActivation(nn.Module):
        """An elementwise activation as nearid computes it, by canonical name.

        Parameters
        ----------
        activation : str
            One of :data:`nearid.maps.ACTIVATIONS`, with its parameter where it
            has one (``"elu(alpha=0.5)"``). softplus is log(1 + e^z) computed
            as max(z, 0) + log1p(e^-|z|), as nearid does (``torch.nn.Softplus``
            returns z above a threshold instead); lipswish is
            ``z sigmoid(beta z) / 1.1``; gelu and gelu_tanh are
            ``torch.nn.functional.gelu`` with ``approximate="none"`` and ``"tanh"``.

        Attributes ``activation`` (the canonical name), ``kind`` and ``parameter``.
        """

        def __init__(self, activation: str) -> None:
            super().__init__()
            self.activation = as_activation(activation)
            kind, parameter = _core.activation_parts(self.activation)
            self.kind: str = kind
            self.parameter: float = float(parameter)

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            """The activation of every entry of `z`."""
            kind, c = self.kind, self.parameter
            if kind == "tanh":
                return torch.tanh(z)
            if kind == "sigmoid":
                return torch.sigmoid(z)
            if kind == "softplus":
                return torch.clamp_min(z, 0.0) + torch.log1p(torch.exp(-torch.abs(z)))
            if kind == "relu":
                return torch.relu(z)
            if kind == "elu":
                return torch.nn.functional.elu(z, alpha=c)
            if kind == "leaky_relu":
                return torch.nn.functional.leaky_relu(z, negative_slope=c)
            if kind == "silu":
                return torch.nn.functional.silu(z)
            if kind == "lipswish":
                return z * torch.sigmoid(c * z) / 1.1
            if kind == "gelu":
                return torch.nn.functional.gelu(z)
            if kind == "gelu_tanh":
                return torch.nn.functional.gelu(z, approximate="tanh")
            return z  # identity (the constructor accepts nothing else)

        def extra_repr(self) -> str:
            """The canonical name."""
            return repr(self.activation)

    class TorchResidualBlock(nn.Module):
        """``x -> x + A s(B x + bias) + shift``: nearid's ``ResidualBlock`` in PyTorch.

        Parameters
        ----------
        A : array_like, shape (d, k)
        B : array_like, shape (k, d)
        bias : array_like, shape (k,)
        shift : array_like, shape (d,)
        activation : str
            As in nearid (see ``TorchActivation``).
        dtype : torch.dtype
            Parameter dtype (default ``torch.float64``).

        Attributes ``A``, ``B``, ``bias`` and ``shift`` are ``nn.Parameter`` s;
        ``activation`` is the canonical name and ``act`` the ``TorchActivation``.
        """

        def __init__(
            self, A: Any, B: Any, bias: Any, shift: Any, activation: str, dtype: Any = torch.float64
        ) -> None:
            super().__init__()
            self.act = TorchActivation(activation)
            self.activation: str = self.act.activation
            self.A = _parameter(torch, A, dtype)
            self.B = _parameter(torch, B, dtype)
            self.bias = _parameter(torch, bias, dtype)
            self.shift = _parameter(torch, shift, dtype)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """``x + A s(B x + bias) + shift``, row by row; the shape of `x`."""
            return x + (self.act(x @ self.B.T + self.bias) @ self.A.T + self.shift)

        def extra_repr(self) -> str:
            """Dimension, width and activation."""
            d, k = self.A.shape
            return f"dim={d}, width={k}, activation={self.activation!r}"

    class TorchResidualMLP(nn.Module):
        """``x -> x + W_L s(... s(W_1 x + b_1) ...) + b_L``: nearid's ``ResidualMLP`` in PyTorch.

        Parameters
        ----------
        weights : sequence of array_like
            ``W_1`` (k_1, d), ..., ``W_L`` (d, k_{L-1}).
        biases : sequence of array_like
            ``b_1`` (k_1,), ..., ``b_L`` (d,).
        activation : str
            As in nearid (see ``TorchActivation``), after every layer but the last.
        dtype : torch.dtype
            Parameter dtype (default ``torch.float64``).

        ``layers`` is an ``nn.ModuleList`` of ``nn.Linear`` layers (weights
        ``W_l``, biases ``b_l``); ``act`` the ``TorchActivation``.
        """

        def __init__(self, weights: Any, biases: Any, activation: str, dtype: Any = torch.float64) -> None:
            super().__init__()
            self.act = TorchActivation(activation)
            self.activation: str = self.act.activation
            layers = []
            for W, b in zip(weights, biases, strict=True):
                layer = nn.Linear(W.shape[1], W.shape[0], dtype=dtype)
                layer.weight = _parameter(torch, W, dtype)
                layer.bias = _parameter(torch, b, dtype)
                layers.append(layer)
            self.layers = nn.ModuleList(layers)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """``x`` plus the MLP's output, row by row; the shape of `x`."""
            h = x
            last = len(self.layers) - 1
            for i, layer in enumerate(self.layers):
                h = layer(h)
                if i < last:
                    h = self.act(h)
            return x + h

        def extra_repr(self) -> str:
            """The activation."""
            return f"activation={self.activation!r}"

    class TorchChain(nn.Sequential):
        """``TorchAffine`` and ``TorchResidualBlock`` modules applied in order (an ``nn.Sequential``).

        ``module[i]`` is the i-th layer; a nearid ``ResidualNet`` exports as a
        chain of its blocks.
        """

    return TorchAffine, TorchActivation, TorchResidualBlock, TorchResidualMLP, TorchChain


def _flat_layers(net: Any) -> list[Affine | ResidualBlock | ResidualMLP]:
    """The Affine, ResidualBlock and ResidualMLP maps that `net` applies, in order; TypeError for anything else."""
    if isinstance(net, (Affine, ResidualBlock, ResidualMLP)):
        return [net]
    if isinstance(net, ResidualNet):
        return list(net.blocks)
    if isinstance(net, Chain):
        layers: list[Affine | ResidualBlock | ResidualMLP] = []
        for i, f in enumerate(net.flat_maps()):
            if isinstance(f, ResidualNet):
                layers.extend(f.blocks)
            elif isinstance(f, (Affine, ResidualBlock, ResidualMLP)):
                layers.append(f)
            else:
                raise TypeError(
                    f"to_torch cannot export map {i} of the Chain (flattened), a {_type_name(f)}: "
                    f"supported are {_SUPPORTED}{_hint(f)}"
                )
        return layers
    raise TypeError(f"to_torch cannot export a {_type_name(net)}: supported are {_SUPPORTED}{_hint(net)}")


def _type_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _hint(obj: Any) -> str:
    if isinstance(obj, (Decomposition, Labelled)):
        return (
            ". A decomposition and its layers evaluate by inversion and have no PyTorch form; "
            "distil it first: nearid.distill(dec, width) returns a ResidualNet that exports"
        )
    if type(obj).__name__ == "FromCallable":
        return ". A FromCallable wraps a Python function, which has no PyTorch form"
    return ""


def to_torch(net: Map, dtype: Any = None) -> Any:
    """A ``torch.nn.Module`` computing the same function as `net`.

    Parameters
    ----------
    net : ResidualNet, ResidualBlock, ResidualMLP, Affine or Chain
        A :class:`~nearid.maps.ResidualNet` (such as the
        :class:`~nearid.distill.DistilledNet` returned by
        :func:`nearid.distill`), one :class:`~nearid.maps.ResidualBlock`,
        :class:`~nearid.maps.ResidualMLP` or
        :class:`~nearid.maps.Affine`, or a :class:`~nearid.maps.Chain` of
        these (nested chains and nets are flattened into one sequence).
    dtype : torch.dtype, optional
        Parameter dtype. Default: ``torch.float32`` for a float32 map
        (``net.dtype``), else ``torch.float64``; the module then matches
        nearid to rounding.

    Returns
    -------
    torch.nn.Module
        ``module(x)`` for a tensor of shape (n, d) or (d,) returns the same
        shape. An Affine gives a ``TorchAffine`` (parameters ``W``, ``b``), a
        ResidualMLP a ``TorchResidualMLP`` (``layers``, an ``nn.ModuleList``
        of ``nn.Linear``), a ResidualBlock a ``TorchResidualBlock`` (parameters ``A``, ``B``,
        ``bias``, ``shift``), a ResidualNet or Chain a ``TorchChain`` (an
        ``nn.Sequential`` of those, ``module[i]`` the i-th layer applied).
        The classes live in :mod:`nearid.export`: the module pickles with
        ``torch.save``/``torch.load(..., weights_only=False)`` and compiles
        with ``torch.jit.script``.

    Raises
    ------
    TypeError
        For any other object: maps wrapping Python callables
        (``FromCallable``), decomposition layers and other maps assembled by
        nearid (which evaluate by inversion; distil them first), non-maps.
    ImportError
        When PyTorch is not installed (``pip install 'nearid[torch]'``).
    """
    layers = _flat_layers(net)
    torch = _import_torch()
    classes = _torch_classes()
    if dtype is None:
        dtype = torch.float32 if net.dtype == np.float32 else torch.float64

    def convert(f: Affine | ResidualBlock | ResidualMLP) -> Any:
        if isinstance(f, Affine):
            return classes["TorchAffine"](f.W, f.b, dtype=dtype)
        if isinstance(f, ResidualMLP):
            return classes["TorchResidualMLP"](f.weights, f.biases, f.activation, dtype=dtype)
        return classes["TorchResidualBlock"](f.A, f.B, f.bias, f.shift, f.activation, dtype=dtype)

    if isinstance(net, (Affine, ResidualBlock, ResidualMLP)):
        return convert(net)
    return classes["TorchChain"](*(convert(f) for f in layers))
