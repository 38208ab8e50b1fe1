"""Saving and loading decompositions as .npz files, without pickle.

The file stores the decomposed map's parameters (residual blocks, affine maps
and chains of them), the scales, the ball, the constants, the Hardt-Ma
factors and the inversion settings, under a format version. Loading rebuilds
the same decomposition. Maps built from Python callables cannot be stored
without pickle and are refused.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np

from .bounds import Constants
from .maps import Affine, Chain, FromCallable, Map, ResidualBlock, ResidualNet

__all__ = ["load", "load_map", "save_map", "map_from_json", "map_to_json", "FORMAT", "FORMAT_VERSION"]

FORMAT = "nearid.Decomposition"
MAP_FORMAT = "nearid.Map"
FORMAT_VERSION = 1


def _map_entries(f: Map, prefix: str, out: dict[str, np.ndarray]) -> None:
    if isinstance(f, ResidualNet):
        out[f"{prefix}type"] = np.array("ResidualNet")
        out[f"{prefix}depth"] = np.array(f.depth)
        for i, block in enumerate(f.blocks):
            _map_entries(block, f"{prefix}{i}/", out)
    elif isinstance(f, ResidualBlock):
        out[f"{prefix}type"] = np.array("ResidualBlock")
        out[f"{prefix}A"] = f.A
        out[f"{prefix}B"] = f.B
        out[f"{prefix}bias"] = f.bias
        out[f"{prefix}shift"] = f.shift
        out[f"{prefix}activation"] = np.array(f.activation)
    elif isinstance(f, Affine):
        out[f"{prefix}type"] = np.array("Affine")
        out[f"{prefix}W"] = f.W
        out[f"{prefix}b"] = f.b
    elif isinstance(f, Chain):
        out[f"{prefix}type"] = np.array("Chain")
        out[f"{prefix}length"] = np.array(len(f.maps))
        for i, g in enumerate(f.maps):
            _map_entries(g, f"{prefix}{i}/", out)
    elif isinstance(f, FromCallable):
        raise ValueError(
            "cannot save a decomposition of a FromCallable map: Python callables cannot be stored without "
            "pickle. Save the parameters of your function yourself and call nearid.decompose again after loading."
        )
    else:
        raise ValueError(f"cannot save a decomposition of a {type(f).__name__}: only ResidualNet, ResidualBlock, "
                         "Affine and Chain maps can be stored")


def _map_from_entries(data: Any, prefix: str) -> Map:
    kind = str(data[f"{prefix}type"])
    if kind == "ResidualNet":
        blocks = [_map_from_entries(data, f"{prefix}{i}/") for i in range(int(data[f"{prefix}depth"]))]
        return ResidualNet(cast(list[ResidualBlock], blocks))  # ResidualNet checks the types
    if kind == "ResidualBlock":
        return ResidualBlock(data[f"{prefix}A"], data[f"{prefix}B"], data[f"{prefix}bias"], data[f"{prefix}shift"],
                             str(data[f"{prefix}activation"]))
    if kind == "Affine":
        return Affine(data[f"{prefix}W"], data[f"{prefix}b"])
    if kind == "Chain":
        return Chain(*(_map_from_entries(data, f"{prefix}{i}/") for i in range(int(data[f"{prefix}length"]))))
    raise ValueError(f"unknown map type {kind!r} in the file")


def atomic_write(path: Any, write: Callable[[str], None]) -> None:
    """Call write(temporary) for a temporary file beside `path`, then rename it to
    `path`: readers see the complete file or nothing, and a failure leaves nothing."""
    path = Path(os.fspath(path))
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # what open() would give; mkstemp uses 0o600
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _write_npz(entries: dict[str, np.ndarray], path: Any) -> None:
    """np.savez to `path` (".npz" appended when missing), atomically."""
    path = Path(os.fspath(path))
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")  # what numpy.savez would do, made explicit

    arrays: dict[str, Any] = dict(entries)  # savez's keyword names are the array names

    def write(temporary: str) -> None:
        with open(temporary, "wb") as stream:
            np.savez(stream, **arrays)

    atomic_write(path, write)


def _read_npz(path: Any, expected_format: str, what: str) -> Any:
    try:
        data = np.load(os.fspath(path), allow_pickle=False)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise ValueError(f"{path!s} is not a readable nearid .npz file: {exc}") from exc
    if "format" not in data or str(data["format"]) != expected_format:
        data.close()
        raise ValueError(f"{path!s} is not a saved nearid {what} (no '{expected_format}' format marker)")
    version = int(data["format_version"])
    if version != FORMAT_VERSION:
        data.close()
        raise ValueError(f"{path!s} has format version {version}; this nearid reads version {FORMAT_VERSION}")
    return data


def save_map(f: Map, path: Any) -> None:
    """Write a ResidualNet, ResidualBlock, Affine or Chain of those to an .npz file (no pickle)."""
    entries: dict[str, np.ndarray] = {"format": np.array(MAP_FORMAT), "format_version": np.array(FORMAT_VERSION)}
    _map_entries(f, "map/", entries)
    _write_npz(entries, path)


def load_map(path: Any) -> Map:
    """Read a map written by :func:`save_map`."""
    with _read_npz(path, MAP_FORMAT, "map") as data:
        return _map_from_entries(data, "map/")


def map_to_json(f: Map) -> dict[str, Any]:
    """A JSON-ready description of a ResidualNet, ResidualBlock, Affine or Chain of those."""
    if isinstance(f, ResidualNet):
        return {"type": "ResidualNet", "blocks": [map_to_json(b) for b in f.blocks]}
    if isinstance(f, ResidualBlock):
        return {"type": "ResidualBlock", "A": f.A.tolist(), "B": f.B.tolist(), "bias": f.bias.tolist(),
                "shift": f.shift.tolist(), "activation": f.activation}
    if isinstance(f, Affine):
        return {"type": "Affine", "W": f.W.tolist(), "b": f.b.tolist()}
    if isinstance(f, Chain):
        return {"type": "Chain", "maps": [map_to_json(g) for g in f.maps]}
    _map_entries(f, "", {})  # raises the explanatory error for FromCallable and others
    raise AssertionError("unreachable")


def map_from_json(spec: Any, where: str = "map") -> Map:
    """Build a map from :func:`map_to_json`'s description; errors name the offending entry.

    Blocks may omit "bias", "shift" (zeros) and "activation" ("tanh");
    affine maps may omit "b".
    """
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"{where} must be an object with a 'type' (ResidualNet, ResidualBlock, Affine, Chain)")
    kind = spec["type"]

    def need(key: str) -> Any:
        if key not in spec:
            raise ValueError(f"{where} ({kind}) needs '{key}'")
        return spec[key]

    try:
        if kind == "ResidualNet":
            blocks = [map_from_json(b, f"{where}.blocks[{i}]") for i, b in enumerate(need("blocks"))]
            return ResidualNet(cast(list[ResidualBlock], blocks))  # ResidualNet checks the types
        if kind == "ResidualBlock":
            return ResidualBlock(need("A"), need("B"), spec.get("bias"), spec.get("shift"),
                                 spec.get("activation", "tanh"))
        if kind == "Affine":
            return Affine(need("W"), spec.get("b"))
        if kind == "Chain":
            return Chain(*(map_from_json(g, f"{where}.maps[{i}]") for i, g in enumerate(need("maps"))))
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(where):
            raise
        raise ValueError(f"{where} ({kind}): {exc}") from exc
    raise ValueError(f"{where} has unknown type {kind!r}; use ResidualNet, ResidualBlock, Affine or Chain")


def save_decomposition(dec: Any, path: Any) -> None:
    """Write `dec` to `path` (.npz). The file appears complete or not at all."""
    entries: dict[str, np.ndarray] = {}
    _map_entries(dec.h, "h/", entries)
    c: Constants = dec.constants
    entries.update(
        {
            "format": np.array(FORMAT),
            "format_version": np.array(FORMAT_VERSION),
            "scales": np.asarray(dec.scales),
            "schedule": np.array(dec.schedule),
            "rate": np.array(np.nan if dec.rate is None else dec.rate),
            "radius": np.array(dec.radius),
            "center": np.asarray(dec.center),
            "jacobian_at_center": np.asarray(dec.jacobian_at_center),
            "linear_factors": np.asarray(dec.linear_factors).reshape(len(dec.linear_factors), dec.dim, dec.dim),
            "constants": np.array([c.alpha, c.M, c.R, c.L, c.B]),
            "constants_estimated": np.array(",".join(c.estimated)),
            "constants_n_samples": np.array(c.n_samples),
            "inversion_method": np.array(dec.inversion.method),
            "inversion_numbers": np.array([dec.inversion.tol, dec.inversion.max_iter, dec.inversion.anderson_memory]),
        }
    )
    _write_npz(entries, path)


def load(path: Any) -> Any:
    """Load a decomposition written by :meth:`Decomposition.save`.

    Parameters
    ----------
    path : str or os.PathLike
        The .npz file.

    Returns
    -------
    Decomposition
        Equal to the saved one: same map, scales, constants, factors and
        inversion settings.
    """
    from .decompose import Decomposition, InversionSettings

    with _read_npz(path, FORMAT, "decomposition") as data:
        h = _map_from_entries(data, "h/")
        alpha, M, R, L, B = (float(v) for v in data["constants"])
        estimated = tuple(s for s in str(data["constants_estimated"]).split(",") if s)
        constants = Constants(alpha, M, R, L, B, estimated, int(data["constants_n_samples"]))
        tol, max_iter, memory = data["inversion_numbers"]
        inversion = InversionSettings(str(data["inversion_method"]), float(tol), int(max_iter), int(memory))
        rate = float(data["rate"])
        scales = np.array(data["scales"])
        scales.setflags(write=False)
        center = np.array(data["center"])
        center.setflags(write=False)
        J0 = np.array(data["jacobian_at_center"])
        J0.setflags(write=False)
        factors = [np.array(F) for F in data["linear_factors"]]
        return Decomposition(h, scales, str(data["schedule"]), None if np.isnan(rate) else rate, float(data["radius"]),
                             center, J0, factors, constants, inversion)
