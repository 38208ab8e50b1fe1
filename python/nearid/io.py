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
from pathlib import Path
from typing import Any

import numpy as np

from .bounds import Constants
from .maps import Affine, Chain, FromCallable, Map, ResidualBlock, ResidualNet

__all__ = ["load", "FORMAT", "FORMAT_VERSION"]

FORMAT = "nearid.Decomposition"
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
        return ResidualNet([_map_from_entries(data, f"{prefix}{i}/") for i in range(int(data[f"{prefix}depth"]))])
    if kind == "ResidualBlock":
        return ResidualBlock(data[f"{prefix}A"], data[f"{prefix}B"], data[f"{prefix}bias"], data[f"{prefix}shift"],
                             str(data[f"{prefix}activation"]))
    if kind == "Affine":
        return Affine(data[f"{prefix}W"], data[f"{prefix}b"])
    if kind == "Chain":
        return Chain(*(_map_from_entries(data, f"{prefix}{i}/") for i in range(int(data[f"{prefix}length"]))))
    raise ValueError(f"unknown map type {kind!r} in the file")


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
    path = Path(os.fspath(path))
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")  # what numpy.savez would do, made explicit
    directory = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **entries)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


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

    try:
        data = np.load(os.fspath(path), allow_pickle=False)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise ValueError(f"{path!s} is not a readable nearid .npz file: {exc}") from exc
    with data:
        if "format" not in data or str(data["format"]) != FORMAT:
            raise ValueError(f"{path!s} is not a saved nearid decomposition (no '{FORMAT}' format marker)")
        version = int(data["format_version"])
        if version != FORMAT_VERSION:
            raise ValueError(f"{path!s} has format version {version}; this nearid reads version {FORMAT_VERSION}")
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
