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
Every such problem is a ValueError that names the entry.
"""

from __future__ import annotations

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

__all__ = ["load", "load_map", "save_map", "map_from_json", "map_to_json", "FORMAT", "FORMAT_VERSION", "MAX_NESTING"]

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
        raise ValueError(
            "cannot save a decomposition of a FromCallable map: Python callables cannot be stored without "
            "pickle. Save the parameters of your function yourself and call nearid.decompose again after loading."
        )
    else:
        raise ValueError(f"cannot save a decomposition of a {type(f).__name__}: only ResidualNet, ResidualBlock, "
                         "Affine and Chain maps can be stored")


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


def _map_from_entries(data: Any, prefix: str, where: str, depth: int = 0) -> Map:
    if depth > MAX_NESTING:
        raise ValueError(f"{where}: maps nest deeper than {MAX_NESTING} levels at '{prefix}'; "
                         "flatten nested chains (nearid saves them flat)")
    kind = _text_entry(data, f"{prefix}type", where)
    try:
        if kind == "ResidualNet":
            depth_ = _count_entry(data, f"{prefix}depth", where, "depth")
            blocks = [_map_from_entries(data, f"{prefix}{i}/", where, depth + 1) for i in range(depth_)]
            return ResidualNet(cast(list[ResidualBlock], blocks))  # ResidualNet checks the types
        if kind == "ResidualBlock":
            return ResidualBlock(_entry(data, f"{prefix}A", where), _entry(data, f"{prefix}B", where),
                                 _entry(data, f"{prefix}bias", where), _entry(data, f"{prefix}shift", where),
                                 _text_entry(data, f"{prefix}activation", where))
        if kind == "Affine":
            return Affine(_entry(data, f"{prefix}W", where), _entry(data, f"{prefix}b", where))
        if kind == "Chain":
            length = _count_entry(data, f"{prefix}length", where, "depth")
            return Chain(*(_map_from_entries(data, f"{prefix}{i}/", where, depth + 1) for i in range(length)))
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
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
                    elif version == (2, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
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
    ranks = {"A": 2, "B": 2, "W": 2, "bias": 1, "shift": 1, "b": 1}
    blocks: dict[str, dict[str, tuple[int, ...]]] = {}
    for name, (shape, _) in declared.items():
        if not name.startswith(map_prefix):
            continue
        owner, field = name.rsplit("/", 1)
        if len(shape) != ranks.get(field, 0):
            raise ValueError(f"{where}: entry '{name}' must have {ranks.get(field, 0)} dimension(s); got shape {shape}")
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
    with data:
        _check_structure(declared, str(file), "map/", None)
        return _map_from_entries(data, "map/", str(file))


# ---------------------------------------------------------------- JSON


def map_to_json(f: Map) -> dict[str, Any]:
    """A JSON-ready description of a ResidualNet, ResidualBlock, Affine or Chain of those
    (nested chains are written flat)."""
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
    """Build a map from :func:`map_to_json`'s description; errors name the offending entry.

    Blocks may omit "bias", "shift" (zeros) and "activation" ("tanh");
    affine maps may omit "b". Maps may nest at most :data:`MAX_NESTING` deep.
    """
    if _depth > MAX_NESTING:
        raise ValueError(f"{where}: maps nest deeper than {MAX_NESTING} levels; flatten nested chains")
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"{where} must be an object with a 'type' (ResidualNet, ResidualBlock, Affine, Chain)")
    kind = spec["type"]

    def need(key: str) -> Any:
        if key not in spec:
            raise ValueError(f"{where} ({kind}) needs '{key}'")
        return spec[key]

    try:
        if kind == "ResidualNet":
            blocks = [map_from_json(b, f"{where}.blocks[{i}]", _depth + 1) for i, b in enumerate(need("blocks"))]
            return ResidualNet(cast(list[ResidualBlock], blocks))  # ResidualNet checks the types
        if kind == "ResidualBlock":
            return ResidualBlock(need("A"), need("B"), spec.get("bias"), spec.get("shift"),
                                 spec.get("activation", "tanh"))
        if kind == "Affine":
            return Affine(need("W"), spec.get("b"))
        if kind == "Chain":
            return Chain(*(map_from_json(g, f"{where}.maps[{i}]", _depth + 1) for i, g in enumerate(need("maps"))))
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(where):
            raise
        raise ValueError(f"{where} ({kind}): {exc}") from exc
    raise ValueError(f"{where} has unknown type {kind!r}; use ResidualNet, ResidualBlock, Affine or Chain")


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
    from .decompose import Decomposition, InversionSettings

    data, file, declared = _open(path, FORMAT, "decomposition")
    where = str(file)
    with data:
        for key, rank in _DECOMPOSITION_SHAPES.items():
            if key not in declared:
                raise ValueError(f"{where}: the file has no entry '{key}'; it is incomplete or not a nearid file")
            if len(declared[key][0]) != rank:
                raise ValueError(f"{where}: entry '{key}' must have {rank} dimension(s); got shape {declared[key][0]}")
        d = declared["center"][0][0]
        m = declared["scales"][0][0]
        for key, shape in (("jacobian_at_center", (d, d)), ("constants", (5,)), ("inversion_numbers", (3,))):
            if declared[key][0] != shape:
                raise ValueError(f"{where}: entry '{key}' must have shape {shape}; got {declared[key][0]}")
        if declared["linear_factors"][0][1:] != (d, d):
            raise ValueError(f"{where}: entry 'linear_factors' must have shape (m', {d}, {d}); "
                             f"got {declared['linear_factors'][0]}")
        _check_structure(declared, where, "h/", d)

        h = _map_from_entries(data, "h/", where)
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
        factors = list(_float_entry(data, "linear_factors", where, declared["linear_factors"][0]))
        radius = float(_float_entry(data, "radius", where, ()))
        schedule = _text_entry(data, "schedule", where)
        try:
            constants = Constants(alpha, M, R, L, B, estimated, n_samples)
            return Decomposition(h, scales, schedule, None if np.isnan(rate) else rate, radius, center, J0, factors,
                                 constants, inversion)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from exc


def _integral(value: float, name: str) -> int:
    if not (np.isfinite(value) and value == int(value)):
        raise ValueError(f"{name} must be an integer; got {value!r}")
    return int(value)
