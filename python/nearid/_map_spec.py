"""Maps as plain data: the one translation between storable maps and their specs.

A spec is a dict whose ``"type"`` names the kind of map, followed by that
kind's :data:`FIELDS` in order:

``{"type": "ResidualNet", "blocks": [block spec, ...]}``
``{"type": "ResidualBlock", "A": (d, k), "B": (k, d), "bias": (k,), "shift": (d,), "activation": str, "dtype": str}``
``{"type": "ResidualMLP", "layers": [layer spec, ...], "activation": str, "dtype": str}``
``{"type": "Linear", "W": (k_out, k_in), "b": (k_out,)}`` (a layer of a ResidualMLP only)
``{"type": "Affine", "W": (d, d), "b": (d,), "dtype": str}``
``{"type": "Chain", "maps": [map spec, ...]}`` (written flat: no Chain inside)

:func:`map_to_spec` writes the maps' own arrays (float64, or float32 for
float32 maps, which also get ``"dtype": "float32"``; the key is left out for
float64 maps, its default); :func:`map_from_spec` accepts whatever the map
constructors accept (lists from JSON, arrays of any numeric dtype from .npz
files, None for a default). The file formats in
:mod:`nearid.io` are layouts of this spec: JSON writes it with arrays as
lists; .npz flattens it into entries ("<prefix>A", ...), a list of maps
becoming a count (:data:`COUNT_ENTRIES`) and the maps under "<prefix>0/",
"<prefix>1/", ... Each format checks its own input (keys, entries, shapes,
nesting) while turning it into a spec; this module only builds maps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

from .maps import Affine, Chain, FromCallable, Map, ResidualBlock, ResidualMLP, ResidualNet

__all__ = ["COUNT_ENTRIES", "FIELDS", "ITEM_KINDS", "LISTS", "OMITTED_AT_DEFAULT", "OPTIONAL", "RANKS", "SpecPath",
           "map_from_spec", "map_to_spec"]

#: The fields of each kind of spec after "type", in the order the files write them.
FIELDS: dict[str, tuple[str, ...]] = {
    "ResidualNet": ("blocks",),
    "ResidualBlock": ("A", "B", "bias", "shift", "activation", "dtype"),
    "ResidualMLP": ("layers", "activation", "dtype"),
    "Linear": ("W", "b"),
    "Affine": ("W", "b", "dtype"),
    "Chain": ("maps",),
}
#: The field of each kind that holds a list of map specs.
LISTS: dict[str, str] = {"ResidualNet": "blocks", "ResidualMLP": "layers", "Chain": "maps"}
#: The kind every item of a list field must have, where it is fixed (its "type" may then be left out in JSON).
ITEM_KINDS: dict[str, str] = {"ResidualNet": "ResidualBlock", "ResidualMLP": "Linear"}
#: The .npz entry that stores the length of each list field.
COUNT_ENTRIES: dict[str, str] = {"blocks": "depth", "layers": "n_layers", "maps": "length"}
#: The number of dimensions of each array or text field (text: 0).
RANKS: dict[str, int] = {"A": 2, "B": 2, "W": 2, "bias": 1, "shift": 1, "b": 1, "activation": 0, "dtype": 0}
#: The fields a spec may leave out (or set to None) for the constructor's default.
OPTIONAL: frozenset[str] = frozenset({"bias", "shift", "activation", "b", "dtype"})
#: The optional fields map_to_spec leaves out at their default (files written before they
#: existed lack them too): "dtype", float64 unless "float32".
OMITTED_AT_DEFAULT: frozenset[str] = frozenset({"dtype"})

#: A place in a spec: the (list field, index) pairs that lead to it from the top.
SpecPath = tuple[tuple[str, int], ...]


def map_to_spec(f: Map) -> dict[str, Any]:
    """The spec of a ResidualNet, ResidualBlock, Affine or Chain of those (chains written flat).

    The arrays are the map's own parameters (read-only), not copies: float64, or
    float32 for a float32 map, whose spec also has ``"dtype": "float32"``.

    Raises
    ------
    ValueError
        For a FromCallable or any other map that cannot be stored without pickle.
    """
    if isinstance(f, ResidualNet):
        return {"type": "ResidualNet", "blocks": [map_to_spec(block) for block in f.blocks]}
    dtype = {"dtype": "float32"} if f.dtype == np.float32 else {}
    if isinstance(f, ResidualBlock):
        return {"type": "ResidualBlock", "A": f.A, "B": f.B, "bias": f.bias, "shift": f.shift,
                "activation": f.activation, **dtype}
    if isinstance(f, ResidualMLP):
        layers = [{"type": "Linear", "W": W, "b": b} for W, b in zip(f.weights, f.biases, strict=True)]
        return {"type": "ResidualMLP", "layers": layers, "activation": f.activation, **dtype}
    if isinstance(f, Affine):
        return {"type": "Affine", "W": f.W, "b": f.b, **dtype}
    if isinstance(f, Chain):
        # Flattened (iteratively): nested chains compose to the same map.
        return {"type": "Chain", "maps": [map_to_spec(g) for g in f.flat_maps()]}
    if isinstance(f, FromCallable):
        # A map that cannot be stored is a ValueError here, as every refusal of io is.
        raise ValueError(  # noqa: TRY004
            "cannot save a decomposition of a FromCallable map: Python callables cannot be stored without "
            "pickle. Save the parameters of your function yourself and call nearid.decompose again after loading."
        )
    raise ValueError(f"cannot save a decomposition of a {type(f).__name__}: only ResidualNet, "  # noqa: TRY004
                     "ResidualBlock, ResidualMLP, Affine and Chain maps can be stored")


def map_from_spec(spec: dict[str, Any], invalid: Callable[[SpecPath, str, Exception], ValueError],
                  path: SpecPath = ()) -> Map:
    """The map `spec` describes, built by the map constructors, which check its contents.

    `spec` must already have the form above (a known "type", its fields, lists
    where lists belong): the formats check that while reading. A constructor's
    TypeError or ValueError becomes ``invalid(path, kind, error)``, raised from
    it, for the innermost map at fault; `path` is where `spec` sits.
    """
    kind = spec["type"]
    if kind == "Linear":  # the layers of a ResidualMLP are read with it, below
        raise invalid(path, kind, ValueError("a Linear layer is part of a ResidualMLP's 'layers', not a map itself; "
                                             "for x -> W x + b use an Affine"))
    if kind == "ResidualMLP":
        layers = spec["layers"]
        for i, layer in enumerate(layers):
            if layer["type"] != "Linear":
                raise invalid((*path, ("layers", i)), layer["type"],
                              ValueError("the layers of a ResidualMLP are Linear layers ('W', 'b')"))
        try:
            activation = spec.get("activation")
            return ResidualMLP([layer["W"] for layer in layers], [layer.get("b") for layer in layers],
                               "tanh" if activation is None else activation, dtype=_dtype(spec))
        except (TypeError, ValueError) as exc:
            raise invalid(path, kind, exc) from exc
    parts: list[Map] = []
    if kind in LISTS:
        field = LISTS[kind]
        parts = [map_from_spec(item, invalid, (*path, (field, i))) for i, item in enumerate(spec[field])]
    try:
        if kind == "ResidualNet":
            return ResidualNet(cast(Sequence[ResidualBlock], parts))  # ResidualNet checks the types
        if kind == "ResidualBlock":
            activation = spec.get("activation")
            return ResidualBlock(spec["A"], spec["B"], spec.get("bias"), spec.get("shift"),
                                 "tanh" if activation is None else activation, dtype=_dtype(spec))
        if kind == "Affine":
            return Affine(spec["W"], spec.get("b"), dtype=_dtype(spec))
        if kind == "Chain":
            return Chain(*parts)
    except (TypeError, ValueError) as exc:
        raise invalid(path, kind, exc) from exc
    raise AssertionError(f"map_from_spec: unknown kind {kind!r}; the format reader must refuse it")


def _dtype(spec: dict[str, Any]) -> Any:
    """The "dtype" of a spec: a name the constructors check ("float32", "float64"); float64 when absent."""
    dtype = spec.get("dtype")
    if dtype is None:
        return np.float64
    if not isinstance(dtype, str):
        raise TypeError(f"'dtype' must be the text 'float32' or 'float64'; got {type(dtype).__name__}")
    return dtype
