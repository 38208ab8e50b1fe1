"""Saving and loading decompositions and maps as .npz files, without pickle.

The file stores the decomposed map's parameters (residual blocks, affine maps
and chains of them), the scales, the ball, the constants, the Hardt-Ma
factors and the inversion settings, under a format version. Loading rebuilds
the same decomposition. Maps built from Python callables cannot be stored
without pickle and are refused.

Files are untrusted input: before anything is decompressed, every entry's
declared shape and dtype are read from its header and checked against the
structure the other entries imply (the dimension from the centre, the
number of layers from the scales, block widths within nearid's limits) and
against a memory cap, so a small crafted file cannot make :func:`load`
allocate gigabytes; then the decomposition is rebuilt through the same
constructors as in code, which reject inconsistent contents (non-increasing
scales, a Jacobian that is not Dh(x0), factors whose product is not it, ...).
An entry the format does not define (a misspelt name, a foreign array, an
entry of a map the file does not describe) is refused as well: nothing in a
file is silently ignored. Every such problem is a ValueError that names the
entry.

Maps are also described in JSON (:func:`map_to_json`, :func:`map_from_json`,
the format of ``nearid decompose --map``), with the same strictness about keys.

Both formats are layouts of one spec (:mod:`nearid._map_spec`): JSON writes it
with arrays as lists, .npz flattens it into entries; each reader checks its
input while turning it into a spec, from which one builder makes the map.
This module depends on :mod:`nearid.decompose`, never the reverse
(:meth:`Decomposition.save` is an alias of :func:`save`); files are written
through :func:`nearid._files.atomic_write`.
"""

from __future__ import annotations

import difflib
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any, cast

import numpy as np

from ._files import atomic_write
from ._map_spec import (
    COUNT_ENTRIES,
    FIELDS,
    ITEM_KINDS,
    LISTS,
    OMITTED_AT_DEFAULT,
    OPTIONAL,
    RANKS,
    SpecPath,
    map_from_spec,
    map_to_spec,
)
from ._native import core as _core
from .bounds import Constants
from .decompose import Decomposition, DecompositionSpec, InversionSettings
from .maps import Map

__all__ = ["FORMAT", "FORMAT_VERSION", "MAX_NESTING", "load", "load_map", "map_from_json", "map_to_json", "save",
           "save_map"]

FORMAT = "nearid.Decomposition"
MAP_FORMAT = "nearid.Map"
FORMAT_VERSION = 1

#: Deepest nesting of maps (chains in chains) a file may describe; nearid
#: itself writes chains flattened, so its own files nest at most 2 deep.
MAX_NESTING = 64
#: Declared array data a file may hold: this many bytes plus
#: _MAX_EXPANSION times the file's size on disk (np.savez stores without compression).
_BASE_BYTES = 64 * 2**20
_MAX_EXPANSION = 16
_MAX_ENTRIES = 4_000_000
_MAX_TEXT = 64  # characters of a string entry (type names, activations, schedule)


def npz_path(path: Any) -> Path:
    """`path` with ".npz" appended when it has another suffix or none, as numpy.savez
    would name the file: :meth:`Decomposition.save` and :func:`load` agree on it."""
    path = Path(os.fspath(path))
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


# ---------------------------------------------------------------- maps in files


def _spec_entries(spec: dict[str, Any], prefix: str, out: dict[str, np.ndarray]) -> None:
    """Add the .npz entries of the map `spec` (see :mod:`nearid._map_spec`) under `prefix` to `out`."""
    kind = spec["type"]
    out[f"{prefix}type"] = np.array(kind)
    for field in FIELDS[kind]:
        if field in OMITTED_AT_DEFAULT and spec.get(field) is None:
            continue
        value = spec[field]
        if field in COUNT_ENTRIES:  # a list of maps: its length, then each map under "<prefix><i>/"
            out[f"{prefix}{COUNT_ENTRIES[field]}"] = np.array(len(value))
            for i, item in enumerate(value):
                _spec_entries(item, f"{prefix}{i}/", out)
        else:
            out[f"{prefix}{field}"] = np.array(value) if isinstance(value, str) else value


#: What reading a damaged archive member can raise (a bad CRC, an unknown compression
#: method, an encrypted member, truncated data); load() reports each as a ValueError.
_READ_ERRORS = (ValueError, OSError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipFile, zlib.error)


def _entry(data: Any, key: str, where: str) -> Any:
    if key not in data:
        raise ValueError(f"{where}: the file has no entry '{key}'; it is incomplete or not a nearid file")
    try:
        return data[key]
    except _READ_ERRORS as exc:
        raise ValueError(f"{where}: entry '{key}' cannot be read ({type(exc).__name__}: {exc})") from exc


def _count_entry(data: Any, key: str, where: str, limit: str | tuple[int, int]) -> int:
    value = _entry(data, key, where)
    if value.shape != () or value.dtype.kind not in "iu":
        raise ValueError(f"{where}: entry '{key}' must be one integer; got {value.dtype} of shape {value.shape}")
    low, high = _core.LIMITS[limit] if isinstance(limit, str) else limit
    if not low <= int(value) <= high:
        raise ValueError(f"{where}: entry '{key}' = {int(value)} is outside [{low}, {high}]")
    return int(value)


def _text_entry(data: Any, key: str, where: str) -> str:
    value = _entry(data, key, where)
    if value.shape != () or value.dtype.kind != "U":
        raise ValueError(f"{where}: entry '{key}' must be one string; got {value.dtype} of shape {value.shape}")
    return str(value)


#: The entries of each kind of map in a file, under its prefix ("map/", "h/0/", ...): its
#: spec's fields, a list of maps stored as its length (the maps are under "<prefix>0/", ...).
_NPZ_ENTRIES: dict[str, tuple[str, ...]] = {
    kind: ("type", *(COUNT_ENTRIES.get(field, field) for field in fields)) for kind, fields in FIELDS.items()
}
#: The number of dimensions of every entry name a map may have.
_NPZ_RANKS = {"type": 0, **dict.fromkeys(COUNT_ENTRIES.values(), 0), **RANKS}
#: _NPZ_ENTRIES for error messages.
_NPZ_NAMES = "; ".join(
    f"{kind}: {', '.join(f + ' (optional)' if f in OMITTED_AT_DEFAULT else f for f in fields)}"
    for kind, fields in _NPZ_ENTRIES.items())


def _spec_from_entries(data: Any, prefix: str, where: str, nodes: dict[str, str], depth: int = 0) -> dict[str, Any]:
    """The spec of the map stored under `prefix`; records in `nodes` the prefix and kind of every map read."""
    if depth > MAX_NESTING:
        raise ValueError(f"{where}: maps nest deeper than {MAX_NESTING} levels at '{prefix}'; "
                         "flatten nested chains (nearid saves them flat)")
    kind = _text_entry(data, f"{prefix}type", where)
    nodes[prefix] = kind
    if kind not in FIELDS:
        raise ValueError(f"{where}: unknown map type {kind!r} at '{prefix}type'")
    spec: dict[str, Any] = {"type": kind}
    for field in FIELDS[kind]:
        if field in COUNT_ENTRIES:
            count = _count_entry(data, f"{prefix}{COUNT_ENTRIES[field]}", where, "depth")
            spec[field] = [_spec_from_entries(data, f"{prefix}{i}/", where, nodes, depth + 1) for i in range(count)]
        elif field in OMITTED_AT_DEFAULT and f"{prefix}{field}" not in data:
            spec[field] = None
        elif RANKS[field] == 0:
            spec[field] = _text_entry(data, f"{prefix}{field}", where)
        else:
            spec[field] = _entry(data, f"{prefix}{field}", where)
    return spec


def _map_from_entries(data: Any, prefix: str, where: str, nodes: dict[str, str]) -> Map:
    """The map stored under `prefix`; records in `nodes` the prefix and kind of every map read."""
    spec = _spec_from_entries(data, prefix, where, nodes)

    def invalid(path: SpecPath, kind: str, exc: Exception) -> ValueError:
        place = prefix + "".join(f"{i}/" for _, i in path)
        return ValueError(f"{where}: the map at '{place}' ({kind}) is invalid: {exc}")

    return map_from_spec(spec, invalid)


# ---------------------------------------------------------------- writing


def _write_npz(entries: dict[str, np.ndarray], path: Any) -> None:
    """np.savez to :func:`npz_path` (path), atomically."""
    arrays: dict[str, Any] = dict(entries)  # savez's keyword names are the array names

    def write(temporary: str) -> None:
        with open(temporary, "wb") as stream:
            np.savez(stream, **arrays)

    atomic_write(npz_path(path), write)


# ---------------------------------------------------------------- reading


def _resolve(path: Any) -> Path:
    """The file :func:`load` reads for `path`: the name save() gives, or `path` itself
    when only that exists; FileNotFoundError otherwise."""
    given = Path(os.fspath(path))
    named = npz_path(given)
    for candidate in (named, given):
        if candidate.is_file():
            return candidate
    for candidate in (named, given):
        if candidate.is_dir():
            raise IsADirectoryError(f"{candidate} is a directory, not a saved nearid file")
    raise FileNotFoundError(f"no such file: {named}" + (f" (nor {given})" if named != given else ""))


def _declared(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """{entry: (shape, dtype)} from every .npy header in the archive, read without
    decompressing any data; ValueError for anything that is not a plain numeric or
    text array, and for declared sizes that disagree with the archive's."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        kind = "an empty file" if path.stat().st_size == 0 else "not an .npz archive"
        raise ValueError(f"{path} is {kind} ({exc}); nearid files are written by dec.save / save_map") from exc
    declared: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    total = 0
    cap = _BASE_BYTES + _MAX_EXPANSION * path.stat().st_size
    with archive:
        members = archive.infolist()
        if len(members) > _MAX_ENTRIES:
            raise ValueError(f"{path}: the archive has {len(members)} entries, more than {_MAX_ENTRIES}")
        for info in members:
            if not info.filename.endswith(".npy"):
                raise ValueError(f"{path}: unexpected member '{info.filename}' (an .npz holds .npy arrays only)")
            name = info.filename[: -len(".npy")]
            try:
                with archive.open(info) as stream:
                    version = np.lib.format.read_magic(stream)
                    if version == (1, 0):
                        shape, _fortran, dtype = np.lib.format.read_array_header_1_0(stream)
                    elif version == (2, 0):
                        shape, _fortran, dtype = np.lib.format.read_array_header_2_0(stream)
                    else:
                        raise ValueError(f"unsupported .npy format version {version}")
                    header = stream.tell()
            except _READ_ERRORS as exc:
                raise ValueError(f"{path}: entry '{name}' is not a readable array ({type(exc).__name__}: {exc})") \
                    from exc
            if dtype.hasobject or dtype.kind not in "biufU" or (dtype.kind == "U" and dtype.itemsize > 4 * _MAX_TEXT):
                raise ValueError(f"{path}: entry '{name}' has dtype {dtype}; nearid files hold numbers and short text")
            count = 1
            for n in shape:
                count *= int(n)
            size = count * dtype.itemsize
            if info.file_size != header + size:
                raise ValueError(f"{path}: entry '{name}' declares {shape} {dtype} ({size} bytes) but the archive "
                                 f"stores {info.file_size - header} bytes of data")
            total += size
            if total > cap:
                raise ValueError(f"{path}: the arrays declared in the file need more than {cap} bytes, far more "
                                 f"than a {path.stat().st_size}-byte nearid file holds; refusing to decompress it")
            declared[name] = (tuple(int(n) for n in shape), dtype)
    return declared


def _check_structure(declared: dict[str, tuple[tuple[int, ...], np.dtype]], where: str, map_prefix: str,
                     d: int | None) -> None:
    """Declared shapes of the map entries agree with each other, with the dimension d
    (from the centre, when known) and with the width limit."""
    width_limit = _core.LIMITS["width"][1]
    blocks: dict[str, dict[str, tuple[int, ...]]] = {}
    for name, (shape, _) in declared.items():
        if not name.startswith(map_prefix):
            continue
        owner, field = name.rsplit("/", 1)
        if field not in _NPZ_RANKS:
            raise ValueError(f"{where}: unknown entry '{name}'{_did_you_mean(field, _NPZ_RANKS)}; the entries of "
                             f"a map at '{owner}/' are, by its type, {_NPZ_NAMES}")
        if len(shape) != _NPZ_RANKS[field]:
            raise ValueError(f"{where}: entry '{name}' must have {_NPZ_RANKS[field]} dimension(s); got shape {shape}")
        blocks.setdefault(owner, {})[field] = shape
    for owner, fields in blocks.items():
        if "A" in fields:  # a residual block: A (d, k), B (k, d), bias (k,), shift (d,)
            dim, k = fields["A"]
            expected = {"B": (k, dim), "bias": (k,), "shift": (dim,)}
        elif "W" in fields and f"{owner.rsplit('/', 1)[0]}/n_layers" in declared:  # a ResidualMLP's layer
            dim = None  # W (k_out, k_in), b (k_out,); the MLP checks that the layers follow each other
            expected = {"b": (fields["W"][0],)}
        elif "W" in fields:  # an affine map: W (d, d), b (d,)
            dim = fields["W"][0]
            expected = {"W": (dim, dim), "b": (dim,)}
        else:
            continue
        if d is not None and dim is not None and dim != d:
            raise ValueError(f"{where}: the map at '{owner}/' has dimension {dim}; the decomposition's is {d}")
        if "A" in fields and not 1 <= fields["A"][1] <= width_limit:
            raise ValueError(f"{where}: entry '{owner}/A' gives a block width {fields['A'][1]} outside "
                             f"[1, {width_limit}]")
        for field, shape in expected.items():
            if field in fields and fields[field] != shape:
                raise ValueError(f"{where}: entry '{owner}/{field}' must have shape {shape}; got {fields[field]}")


def _did_you_mean(name: str, allowed: Any) -> str:
    close = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_entries(declared: dict[str, Any], where: str, expected: Any, map_prefix: str,
                   nodes: dict[str, str] | None, what: str) -> None:
    """ValueError for an entry of the file that is neither one of `expected` nor an entry of a
    map read (recorded in `nodes`): nothing in a file is silently ignored. With `nodes` None
    (before the map is read), only the entries outside `map_prefix` are checked."""
    wanted = set(expected)
    for prefix, kind in (nodes or {}).items():
        wanted.update(prefix + field for field in _NPZ_ENTRIES[kind])
    for name in sorted(set(declared) - wanted):
        if not name.startswith(map_prefix):
            raise ValueError(f"{where}: unexpected entry '{name}'{_did_you_mean(name, expected)}; a saved nearid "
                             f"{what} holds {', '.join(repr(k) for k in expected)} and its map's entries under "
                             f"'{map_prefix}'")
        if nodes is None:
            continue
        owner = name.rsplit("/", 1)[0] + "/"
        if owner in nodes:
            kind = nodes[owner]
            raise ValueError(f"{where}: entry '{name}' does not belong to the {kind} at '{owner}', whose entries are "
                             + ", ".join(f"'{owner}{field}'" for field in _NPZ_ENTRIES[kind]))
        raise ValueError(f"{where}: entry '{name}' belongs to no map: the file describes no map at '{owner}'")


_DECOMPOSITION_SHAPES = {
    "format": 0, "format_version": 0, "schedule": 0, "rate": 0, "radius": 0, "constants_estimated": 0,
    "constants_n_samples": 0, "constants_certified": 0, "inversion_method": 0, "scales": 1, "center": 1,
    "jacobian_at_center": 2, "linear_factors": 3, "constants": 1, "inversion_numbers": 1,
}
#: Entries that files written by earlier versions lack (read as their defaults).
_OPTIONAL_ENTRIES = {"constants_certified"}


def _open(path: Any, expected_format: str, what: str) -> tuple[Any, Path, dict[str, tuple[tuple[int, ...], np.dtype]]]:
    file = _resolve(path)
    declared = _declared(file)
    if "format" not in declared or "format_version" not in declared:
        raise ValueError(f"{file} is not a saved nearid {what} (no '{expected_format}' format marker)")
    data = np.load(file, allow_pickle=False)
    try:
        marker = _text_entry(data, "format", str(file))
        if marker != expected_format:
            raise ValueError(f"{file} is not a saved nearid {what} (format marker {marker!r}, "
                             f"expected '{expected_format}')")
        version = _count_entry(data, "format_version", str(file), (0, 2**31))
        if version != FORMAT_VERSION:
            raise ValueError(f"{file} has format version {version}; this nearid reads version {FORMAT_VERSION}")
    except BaseException:
        data.close()
        raise
    return data, file, declared


def save_map(f: Map, path: Any) -> None:
    """Write a ResidualNet, ResidualBlock, Affine or Chain of those to an .npz file (no pickle);
    ".npz" is appended to the name when missing."""
    entries: dict[str, np.ndarray] = {"format": np.array(MAP_FORMAT), "format_version": np.array(FORMAT_VERSION)}
    _spec_entries(map_to_spec(f), "map/", entries)
    _write_npz(entries, path)


def load_map(path: Any) -> Map:
    """Read a map written by :func:`save_map` (the same file name rule as :func:`load`)."""
    data, file, declared = _open(path, MAP_FORMAT, "map")
    where = str(file)
    with data:
        _check_entries(declared, where, ("format", "format_version"), "map/", None, "map")
        _check_structure(declared, where, "map/", None)
        nodes: dict[str, str] = {}
        f = _map_from_entries(data, "map/", where, nodes)
        _check_entries(declared, where, ("format", "format_version"), "map/", nodes, "map")
        return f


# ---------------------------------------------------------------- JSON

#: The keys of each kind of JSON map object, "type" first: its spec's fields. "type" is
#: required everywhere except in the objects of a ResidualNet's "blocks", which are
#: always ResidualBlocks.
_JSON_KEYS: dict[str, tuple[str, ...]] = {kind: ("type", *fields) for kind, fields in FIELDS.items()}


def map_to_json(f: Map) -> dict[str, Any]:
    """A JSON-ready description of a ResidualNet, ResidualBlock, Affine or Chain of those.

    The result is the format :func:`map_from_json` reads, with every key
    written out (blocks carry ``"type": "ResidualBlock"``) and nested chains
    written flat. Numbers are Python floats, which ``json.dumps`` writes with
    the shortest repr that reads back to the same float64, so
    ``map_from_json(json.loads(json.dumps(map_to_json(f))))`` has bitwise the
    same parameters as ``f``.
    """
    return cast(dict[str, Any], _with_lists(map_to_spec(f)))


def _with_lists(spec: Any) -> Any:
    """`spec` with every array written as nested lists of Python floats."""
    if isinstance(spec, dict):
        return {key: _with_lists(value) for key, value in spec.items()}
    if isinstance(spec, list):
        return [_with_lists(item) for item in spec]
    return spec.tolist() if isinstance(spec, np.ndarray) else spec


def map_from_json(spec: Any, where: str = "map", _depth: int = 0) -> Map:
    """Build a map from its JSON description (the output of ``json.load``).

    A map is an object whose ``"type"`` names its kind; d is the map's
    dimension and k a block's width. Keys marked optional may be omitted or
    null (as None in the Python constructors), which gives the default.

    ``{"type": "ResidualBlock", "A", "B", "bias", "shift", "activation"}``
        ``x -> x + A s(B x + bias) + shift`` (:class:`~nearid.maps.ResidualBlock`):
        "A" (d, k) and "B" (k, d) required, nested arrays of numbers;
        "bias" (k,) optional, default zeros; "shift" (d,) optional, default
        zeros; "activation" optional, a name of :data:`nearid.maps.ACTIVATIONS`
        with its parameter where it has one (``"elu(alpha=0.5)"``), default "tanh".
    ``{"type": "ResidualNet", "blocks": [...]}``
        The blocks applied in order (:class:`~nearid.maps.ResidualNet`): a
        non-empty array of ResidualBlock objects of one dimension d. Their
        "type" may be omitted; if present it must be "ResidualBlock".
    ``{"type": "ResidualMLP", "layers": [...], "activation"}``
        ``x -> x + W_L s(... s(W_1 x + b_1) ...) + b_L``
        (:class:`~nearid.maps.ResidualMLP`): "layers" a non-empty array of at
        least two objects ``{"W", "b"}`` ("type" "Linear" optional; "W"
        (k_out, k_in) required, "b" (k_out,) optional, default zeros);
        "activation" as for a ResidualBlock.
    ``{"type": "Affine", "W", "b"}``
        ``x -> W x + b`` (:class:`~nearid.maps.Affine`): "W" (d, d) required;
        "b" (d,) optional, default zeros.
    ``{"type": "Chain", "maps": [...]}``
        The maps applied in order (:class:`~nearid.maps.Chain`): a non-empty
        array of map objects, each with its "type".

    For example ``{"type": "ResidualNet", "blocks": [{"A": [[0.1], [0.0]],
    "B": [[1.0, 0.0]]}]}`` is one tanh block of dimension 2 and width 1.

    Parameters
    ----------
    spec : dict
        The description, as :func:`map_to_json` writes it.
    where : str
        What to call `spec` in error messages (default "map").

    Returns
    -------
    Map

    Raises
    ------
    ValueError
        For a description not of this form, naming where it is (``map.maps[1].blocks[0]``):
        a missing or unknown "type", a missing required key, a key not listed
        above (a misspelling such as "bais" is never ignored; the message
        lists the allowed keys), "blocks" or "maps" that are not arrays,
        arrays of the wrong shape or not numbers, an unknown activation, maps
        nested deeper than :data:`MAX_NESTING`.
    """
    def invalid(path: SpecPath, kind: str, exc: Exception) -> ValueError:
        return ValueError(f"{where}{''.join(f'.{field}[{i}]' for field, i in path)} ({kind}): {exc}")

    return map_from_spec(_spec_from_json(spec, where, _depth), invalid)


def _spec_from_json(spec: Any, where: str, depth: int) -> dict[str, Any]:
    """The spec of the JSON map object `spec`, checked as :func:`map_from_json` documents."""
    if depth > MAX_NESTING:
        raise ValueError(f"{where}: maps nest deeper than {MAX_NESTING} levels; flatten nested chains")
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"{where} must be an object with a 'type' (ResidualNet, ResidualBlock, ResidualMLP, Affine, "
                         "Chain)")
    kind = spec["type"]
    if not isinstance(kind, str) or kind not in _JSON_KEYS:
        raise ValueError(f"{where} has unknown type {kind!r}; use ResidualNet, ResidualBlock, ResidualMLP, Affine or "
                         "Chain")
    return _kind_spec_from_json(spec, kind, where, depth)


def _kind_spec_from_json(spec: dict[Any, Any], kind: str, where: str, depth: int) -> dict[str, Any]:
    """_spec_from_json for an object `spec` already known to describe a `kind`."""
    _check_json_keys(spec, kind, where)
    out: dict[str, Any] = {"type": kind}
    for field in FIELDS[kind]:
        if field in OPTIONAL:
            out[field] = spec.get(field)
            continue
        if field not in spec:
            raise ValueError(f"{where} ({kind}) needs '{field}'")
        if field != LISTS.get(kind):
            out[field] = spec[field]
            continue
        items = spec[field]
        if not isinstance(items, (list, tuple)):  # a malformed description is a ValueError, as documented
            raise ValueError(  # noqa: TRY004
                f"{where} ({kind}): '{field}' must be an array; got {type(items).__name__}")
        if kind in ITEM_KINDS:
            out[field] = [_item_spec_from_json(item, ITEM_KINDS[kind], kind, f"{where}.{field}[{i}]", depth + 1)
                          for i, item in enumerate(items)]
        else:
            out[field] = [_spec_from_json(item, f"{where}.{field}[{i}]", depth + 1) for i, item in enumerate(items)]
    return out


def _item_spec_from_json(spec: Any, item_kind: str, owner: str, where: str, depth: int) -> dict[str, Any]:
    """One object of a ResidualNet's "blocks" (ResidualBlocks) or a ResidualMLP's "layers" (Linear
    layers): its "type" is optional."""
    keys = ", ".join(FIELDS[item_kind])
    if not isinstance(spec, dict):  # a malformed description is a ValueError, as documented
        raise ValueError(  # noqa: TRY004
            f"{where} must be an object with the keys of a {item_kind} ({keys}); got {type(spec).__name__}")
    if spec.get("type", item_kind) != item_kind:
        plural = {"ResidualBlock": "ResidualBlocks", "Linear": "Linear layers"}[item_kind]
        raise ValueError(f"{where} has type {spec['type']!r}; the {LISTS[owner]} of a {owner} are {plural} "
                         "(their 'type' may be omitted)")
    return _kind_spec_from_json(spec, item_kind, where, depth)


def _check_json_keys(spec: dict[Any, Any], kind: str, where: str) -> None:
    allowed = _JSON_KEYS[kind]
    unknown = [key for key in spec if key not in allowed]
    if not unknown:
        return
    named = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        named.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ValueError(f"{where} ({kind}) has unknown key{'s' if len(unknown) > 1 else ''} {', '.join(named)}; "
                     f"allowed keys: {', '.join(repr(k) for k in allowed)}")


# ---------------------------------------------------------------- decompositions


def save(dec: Decomposition, path: Any) -> None:
    """Write a decomposition to an .npz file (no pickle); :func:`load` reads it back.

    Parameters
    ----------
    dec : Decomposition
        Of a ResidualNet, ResidualBlock, Affine or Chain of those.
    path : str or os.PathLike
        ".npz" is appended when the name has no such suffix (:func:`npz_path`).
        The file appears complete or not at all.

    Raises
    ------
    ValueError
        For a decomposition of a map that cannot be stored without pickle (FromCallable).
    """
    _write_npz(_decomposition_entries(dec), path)


def _decomposition_entries(dec: Decomposition) -> dict[str, np.ndarray]:
    """The .npz entries of `dec`: its map under "h/", then the fields of _DECOMPOSITION_SHAPES."""
    entries: dict[str, np.ndarray] = {}
    _spec_entries(map_to_spec(dec.h), "h/", entries)
    c = dec.constants
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
    if c.certified:  # only then: files without certificates stay as version 1 wrote them
        entries["constants_certified"] = np.array(",".join(c.certified))
    return entries


def _float_entry(data: Any, key: str, where: str, shape: tuple[int, ...]) -> np.ndarray:
    value = _entry(data, key, where)
    if value.dtype.kind not in "iuf" or value.shape != shape:
        raise ValueError(f"{where}: entry '{key}' must be numbers of shape {shape}; got {value.dtype} "
                         f"of shape {value.shape}")
    return np.array(value, dtype=np.float64)


def load(path: Any) -> Decomposition:
    """Load a decomposition written by :func:`save` (or its alias :meth:`Decomposition.save`).

    Maps saved on their own (:func:`save_map`) are read by :func:`load_map`;
    this function reads decompositions only, so it always returns one.

    Parameters
    ----------
    path : str or os.PathLike
        The .npz file; as in :func:`save`, ".npz" is appended when the name
        has no such suffix (``nearid.save(dec, "x")`` writes x.npz and
        ``load("x")`` reads it).

    Returns
    -------
    Decomposition
        Equal to the saved one: same map, scales, constants, factors and
        inversion settings.

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    ValueError
        For anything that is not a valid saved decomposition (a .npy file, an
        empty or truncated file, missing or malformed entries, contents the
        constructors reject), naming the entry.
    """
    data, file, declared = _open(path, FORMAT, "decomposition")
    where = str(file)
    with data:
        for key, rank in _DECOMPOSITION_SHAPES.items():
            if key not in declared and key in _OPTIONAL_ENTRIES:
                continue
            if key not in declared:
                raise ValueError(f"{where}: the file has no entry '{key}'; it is incomplete or not a nearid file")
            if len(declared[key][0]) != rank:
                raise ValueError(f"{where}: entry '{key}' must have {rank} dimension(s); got shape {declared[key][0]}")
        _check_entries(declared, where, _DECOMPOSITION_SHAPES, "h/", None, "decomposition")
        d = declared["center"][0][0]
        for key, shape in (("jacobian_at_center", (d, d)), ("constants", (5,)), ("inversion_numbers", (3,))):
            if declared[key][0] != shape:
                raise ValueError(f"{where}: entry '{key}' must have shape {shape}; got {declared[key][0]}")
        if declared["linear_factors"][0][1:] != (d, d):
            raise ValueError(f"{where}: entry 'linear_factors' must have shape (m', {d}, {d}); "
                             f"got {declared['linear_factors'][0]}")
        _check_structure(declared, where, "h/", d)
        return _decomposition_from_entries(data, declared, where)


def _decomposition_from_entries(data: Any, declared: dict[str, tuple[tuple[int, ...], np.dtype]],
                                where: str) -> Decomposition:
    """The decomposition whose entries `data` holds, once their declared shapes are checked:
    every entry read and checked, then one call to the constructors, which check the rest."""
    m = declared["scales"][0][0]
    d = declared["center"][0][0]
    nodes: dict[str, str] = {}
    h = _map_from_entries(data, "h/", where, nodes)
    _check_entries(declared, where, _DECOMPOSITION_SHAPES, "h/", nodes, "decomposition")
    alpha, M, R, L, B = (float(v) for v in _float_entry(data, "constants", where, (5,)))
    estimated = tuple(s for s in _text_entry(data, "constants_estimated", where).split(",") if s)
    n_samples = _count_entry(data, "constants_n_samples", where, (0, _core.LIMITS["n_samples"][1]))
    # Files written before certificates existed have no such entry: nothing was certified.
    certified = (tuple(s for s in _text_entry(data, "constants_certified", where).split(",") if s)
                 if "constants_certified" in declared else ())
    numbers = _float_entry(data, "inversion_numbers", where, (3,))
    try:
        inversion = InversionSettings(_text_entry(data, "inversion_method", where), float(numbers[0]),
                                      _integral(numbers[1], "max_iter"), _integral(numbers[2], "anderson_memory"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: entries 'inversion_method' / 'inversion_numbers' are invalid: {exc}") from exc
    rate = float(_float_entry(data, "rate", where, ()))
    scales = _float_entry(data, "scales", where, (m,))
    center = _float_entry(data, "center", where, (d,))
    J0 = _float_entry(data, "jacobian_at_center", where, (d, d))
    factors = tuple(_float_entry(data, "linear_factors", where, declared["linear_factors"][0]))
    radius = float(_float_entry(data, "radius", where, ()))
    schedule = _text_entry(data, "schedule", where)
    try:
        constants = Constants(alpha, M, R, L, B, estimated, n_samples, certified)
        spec = DecompositionSpec(h, scales, schedule, None if np.isnan(rate) else rate, radius, center, J0,
                                 factors, constants, inversion)
        return Decomposition(spec)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _integral(value: float, name: str) -> int:
    if not (np.isfinite(value) and value == int(value)):
        raise ValueError(f"{name} must be an integer; got {value!r}")
    return int(value)
