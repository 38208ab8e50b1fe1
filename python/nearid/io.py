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
"""

from __future__ import annotations

import difflib
import os
import secrets
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np

from ._native import core as _core
from .bounds import Constants
from .maps import Affine, Chain, FromCallable, Map, ResidualBlock, ResidualNet

__all__ = ["FORMAT", "FORMAT_VERSION", "MAX_NESTING", "load", "load_map", "map_from_json", "map_to_json", "save_map"]

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


def _flat(f: Map) -> Iterator[Map]:
    yield from (f.flat_maps() if isinstance(f, Chain) else (f,))


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
        # Flattened (iteratively): nested chains compose to the same map.
        maps = f.flat_maps()
        out[f"{prefix}type"] = np.array("Chain")
        out[f"{prefix}length"] = np.array(len(maps))
        for i, g in enumerate(maps):
            _map_entries(g, f"{prefix}{i}/", out)
    elif isinstance(f, FromCallable):
        # A map that cannot be stored is a ValueError here, as every refusal of io is.
        raise ValueError(  # noqa: TRY004
            "cannot save a decomposition of a FromCallable map: Python callables cannot be stored without "
            "pickle. Save the parameters of your function yourself and call nearid.decompose again after loading."
        )
    else:
        raise ValueError(f"cannot save a decomposition of a {type(f).__name__}: only ResidualNet, "  # noqa: TRY004
                         "ResidualBlock, Affine and Chain maps can be stored")


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


#: The entries of each kind of map in a file, under its prefix ("map/", "h/0/", ...);
#: the maps of a ResidualNet or Chain are under "<prefix>0/", "<prefix>1/", ...
_NPZ_ENTRIES: dict[str, tuple[str, ...]] = {
    "ResidualNet": ("type", "depth"),
    "ResidualBlock": ("type", "A", "B", "bias", "shift", "activation"),
    "Affine": ("type", "W", "b"),
    "Chain": ("type", "length"),
}
#: The number of dimensions of every entry name a map may have.
_NPZ_RANKS = {"type": 0, "depth": 0, "length": 0, "activation": 0, "A": 2, "B": 2, "W": 2, "bias": 1, "shift": 1,
              "b": 1}
#: _NPZ_ENTRIES for error messages.
_NPZ_NAMES = "; ".join(f"{kind}: {', '.join(fields)}" for kind, fields in _NPZ_ENTRIES.items())


def _map_from_entries(data: Any, prefix: str, where: str, nodes: dict[str, str], depth: int = 0) -> Map:
    """The map stored under `prefix`; records in `nodes` the prefix and kind of every map read."""
    if depth > MAX_NESTING:
        raise ValueError(f"{where}: maps nest deeper than {MAX_NESTING} levels at '{prefix}'; "
                         "flatten nested chains (nearid saves them flat)")
    kind = _text_entry(data, f"{prefix}type", where)
    nodes[prefix] = kind
    try:
        if kind == "ResidualNet":
            depth_ = _count_entry(data, f"{prefix}depth", where, "depth")
            blocks = [_map_from_entries(data, f"{prefix}{i}/", where, nodes, depth + 1) for i in range(depth_)]
            return ResidualNet(cast(list[ResidualBlock], blocks))  # ResidualNet checks the types
        if kind == "ResidualBlock":
            return ResidualBlock(_entry(data, f"{prefix}A", where), _entry(data, f"{prefix}B", where),
                                 _entry(data, f"{prefix}bias", where), _entry(data, f"{prefix}shift", where),
                                 _text_entry(data, f"{prefix}activation", where))
        if kind == "Affine":
            return Affine(_entry(data, f"{prefix}W", where), _entry(data, f"{prefix}b", where))
        if kind == "Chain":
            length = _count_entry(data, f"{prefix}length", where, "depth")
            return Chain(*(_map_from_entries(data, f"{prefix}{i}/", where, nodes, depth + 1) for i in range(length)))
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(where):
            raise
        raise ValueError(f"{where}: the map at '{prefix}' ({kind}) is invalid: {exc}") from exc
    raise ValueError(f"{where}: unknown map type {kind!r} at '{prefix}type'")


# ---------------------------------------------------------------- writing


def atomic_write(path: Any, write: Callable[[str], None]) -> None:
    """Call write(temporary) for a new file beside `path`, then rename it to `path`:
    readers see the complete file or nothing, and a failure (Ctrl-C included)
    leaves nothing. The data is flushed to disk (fsync) before the rename, and
    the directory after it, so a crash cannot leave a truncated file under the
    final name. The new file gets the permissions open() would give it (or
    those of the file it replaces); a symbolic link at `path` is followed, as
    writing through it would."""
    path = Path(os.path.realpath(os.fspath(path)))
    mode = path.stat().st_mode & 0o7777 if path.is_file() else 0o666  # open() applies the umask to 0o666
    temporary = ""
    try:
        while True:
            candidate = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
            try:
                os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
            except FileExistsError:
                continue
            temporary = str(candidate)
            break
        write(temporary)
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        if mode != 0o666:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
        temporary = ""
        _fsync_directory(path.parent)
    finally:
        if temporary and os.path.exists(temporary):
            os.unlink(temporary)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse it
        pass
    finally:
        os.close(fd)


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
        elif "W" in fields:  # an affine map: W (d, d), b (d,)
            dim = fields["W"][0]
            expected = {"W": (dim, dim), "b": (dim,)}
        else:
            continue
        if d is not None and dim != d:
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
    "constants_n_samples": 0, "inversion_method": 0, "scales": 1, "center": 1, "jacobian_at_center": 2,
    "linear_factors": 3, "constants": 1, "inversion_numbers": 1,
}


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
    _map_entries(f, "map/", entries)
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

#: The keys of each kind of JSON map object, "type" first. "type" is required
#: everywhere except in the objects of a ResidualNet's "blocks", which are
#: always ResidualBlocks.
_JSON_KEYS: dict[str, tuple[str, ...]] = {
    "ResidualNet": ("type", "blocks"),
    "ResidualBlock": ("type", "A", "B", "bias", "shift", "activation"),
    "Affine": ("type", "W", "b"),
    "Chain": ("type", "maps"),
}


def map_to_json(f: Map) -> dict[str, Any]:
    """A JSON-ready description of a ResidualNet, ResidualBlock, Affine or Chain of those.

    The result is the format :func:`map_from_json` reads, with every key
    written out (blocks carry ``"type": "ResidualBlock"``) and nested chains
    written flat. Numbers are Python floats, which ``json.dumps`` writes with
    the shortest repr that reads back to the same float64, so
    ``map_from_json(json.loads(json.dumps(map_to_json(f))))`` has bitwise the
    same parameters as ``f``.
    """
    if isinstance(f, ResidualNet):
        return {"type": "ResidualNet", "blocks": [map_to_json(b) for b in f.blocks]}
    if isinstance(f, ResidualBlock):
        return {"type": "ResidualBlock", "A": f.A.tolist(), "B": f.B.tolist(), "bias": f.bias.tolist(),
                "shift": f.shift.tolist(), "activation": f.activation}
    if isinstance(f, Affine):
        return {"type": "Affine", "W": f.W.tolist(), "b": f.b.tolist()}
    if isinstance(f, Chain):
        return {"type": "Chain", "maps": [map_to_json(g) for g in f.flat_maps()]}
    _map_entries(f, "", {})  # raises the explanatory error for FromCallable and others
    raise AssertionError("unreachable")


def map_from_json(spec: Any, where: str = "map", _depth: int = 0) -> Map:
    """Build a map from its JSON description (the output of ``json.load``).

    A map is an object whose ``"type"`` names its kind; d is the map's
    dimension and k a block's width. Keys marked optional may be omitted or
    null (as None in the Python constructors), which gives the default.

    ``{"type": "ResidualBlock", "A", "B", "bias", "shift", "activation"}``
        ``x -> x + A s(B x + bias) + shift`` (:class:`~nearid.maps.ResidualBlock`):
        "A" (d, k) and "B" (k, d) required, nested arrays of numbers;
        "bias" (k,) optional, default zeros; "shift" (d,) optional, default
        zeros; "activation" optional, one of "tanh", "sigmoid", "softplus",
        "relu", "identity", default "tanh".
    ``{"type": "ResidualNet", "blocks": [...]}``
        The blocks applied in order (:class:`~nearid.maps.ResidualNet`): a
        non-empty array of ResidualBlock objects of one dimension d. Their
        "type" may be omitted; if present it must be "ResidualBlock".
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
    if _depth > MAX_NESTING:
        raise ValueError(f"{where}: maps nest deeper than {MAX_NESTING} levels; flatten nested chains")
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"{where} must be an object with a 'type' (ResidualNet, ResidualBlock, Affine, Chain)")
    kind = spec["type"]
    if not isinstance(kind, str) or kind not in _JSON_KEYS:
        raise ValueError(f"{where} has unknown type {kind!r}; use ResidualNet, ResidualBlock, Affine or Chain")
    return _map_from_json(spec, kind, where, _depth)


def _map_from_json(spec: dict[Any, Any], kind: str, where: str, depth: int) -> Map:
    """map_from_json for an object `spec` already known to describe a `kind`."""
    _check_json_keys(spec, kind, where)

    def need(key: str) -> Any:
        if key not in spec:
            raise ValueError(f"{where} ({kind}) needs '{key}'")
        return spec[key]

    def array_of(key: str) -> list[Any]:
        items = need(key)
        if not isinstance(items, (list, tuple)):  # a malformed description is a ValueError, as documented
            raise ValueError(  # noqa: TRY004
                f"{where} ({kind}): '{key}' must be an array; got {type(items).__name__}")
        return list(items)

    try:
        if kind == "ResidualNet":
            blocks = [_block_from_json(b, f"{where}.blocks[{i}]", depth + 1) for i, b in enumerate(array_of("blocks"))]
            return ResidualNet(blocks)
        if kind == "ResidualBlock":
            activation = spec.get("activation")
            return ResidualBlock(need("A"), need("B"), spec.get("bias"), spec.get("shift"),
                                 "tanh" if activation is None else activation)
        if kind == "Affine":
            return Affine(need("W"), spec.get("b"))
        return Chain(*(map_from_json(g, f"{where}.maps[{i}]", depth + 1) for i, g in enumerate(array_of("maps"))))
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(where):
            raise
        raise ValueError(f"{where} ({kind}): {exc}") from exc


def _block_from_json(spec: Any, where: str, depth: int) -> ResidualBlock:
    """One object of a ResidualNet's "blocks": a ResidualBlock whose "type" is optional."""
    if not isinstance(spec, dict):  # a malformed description is a ValueError, as documented
        raise ValueError(  # noqa: TRY004
            f"{where} must be an object with the keys of a ResidualBlock (A, B and optionally bias, shift, "
            f"activation); got {type(spec).__name__}")
    if spec.get("type", "ResidualBlock") != "ResidualBlock":
        raise ValueError(f"{where} has type {spec['type']!r}; the blocks of a ResidualNet are ResidualBlocks "
                         "(their 'type' may be omitted)")
    return cast(ResidualBlock, _map_from_json(spec, "ResidualBlock", where, depth))


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


def save_decomposition(dec: Any, path: Any) -> None:
    """Write `dec` to :func:`npz_path` (path). The file appears complete or not at all."""
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


def _float_entry(data: Any, key: str, where: str, shape: tuple[int, ...]) -> np.ndarray:
    value = _entry(data, key, where)
    if value.dtype.kind not in "iuf" or value.shape != shape:
        raise ValueError(f"{where}: entry '{key}' must be numbers of shape {shape}; got {value.dtype} "
                         f"of shape {value.shape}")
    return np.array(value, dtype=np.float64)


def load(path: Any) -> Any:
    """Load a decomposition written by :meth:`Decomposition.save`.

    Parameters
    ----------
    path : str or os.PathLike
        The .npz file; as in :meth:`Decomposition.save`, ".npz" is appended
        when the name has no such suffix (``dec.save("x")`` writes x.npz and
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
    from .decompose import Decomposition, DecompositionSpec, InversionSettings

    data, file, declared = _open(path, FORMAT, "decomposition")
    where = str(file)
    with data:
        for key, rank in _DECOMPOSITION_SHAPES.items():
            if key not in declared:
                raise ValueError(f"{where}: the file has no entry '{key}'; it is incomplete or not a nearid file")
            if len(declared[key][0]) != rank:
                raise ValueError(f"{where}: entry '{key}' must have {rank} dimension(s); got shape {declared[key][0]}")
        _check_entries(declared, where, _DECOMPOSITION_SHAPES, "h/", None, "decomposition")
        d = declared["center"][0][0]
        m = declared["scales"][0][0]
        for key, shape in (("jacobian_at_center", (d, d)), ("constants", (5,)), ("inversion_numbers", (3,))):
            if declared[key][0] != shape:
                raise ValueError(f"{where}: entry '{key}' must have shape {shape}; got {declared[key][0]}")
        if declared["linear_factors"][0][1:] != (d, d):
            raise ValueError(f"{where}: entry 'linear_factors' must have shape (m', {d}, {d}); "
                             f"got {declared['linear_factors'][0]}")
        _check_structure(declared, where, "h/", d)
        nodes: dict[str, str] = {}
        h = _map_from_entries(data, "h/", where, nodes)
        _check_entries(declared, where, _DECOMPOSITION_SHAPES, "h/", nodes, "decomposition")
        alpha, M, R, L, B = (float(v) for v in _float_entry(data, "constants", where, (5,)))
        estimated = tuple(s for s in _text_entry(data, "constants_estimated", where).split(",") if s)
        n_samples = _count_entry(data, "constants_n_samples", where, (0, _core.LIMITS["n_samples"][1]))
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
            constants = Constants(alpha, M, R, L, B, estimated, n_samples)
            spec = DecompositionSpec(h, scales, schedule, None if np.isnan(rate) else rate, radius, center, J0,
                                     factors, constants, inversion)
            return Decomposition(spec)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from exc


def _integral(value: float, name: str) -> int:
    if not (np.isfinite(value) and value == int(value)):
        raise ValueError(f"{name} must be an integer; got {value!r}")
    return int(value)
