"""Saving and loading decompositions and maps (.npz and JSON): exact round trips, refusals, no partial files."""

from __future__ import annotations

import itertools
import json
import os
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nearid
from nearid.app import cli
from nearid.maps import Affine, Chain, FromCallable, ResidualBlock, ResidualNet
from references import activation, ball_points


@pytest.fixture
def dec():
    h = Chain(
        Affine(np.array([[1.0, 0.2, 0.0], [0.0, 1.1, 0.1], [0.3, 0.0, 0.9]]), [0.1, 0.2, 0.3]),
        ResidualNet([ResidualBlock(0.2 * np.ones((3, 2)), 0.5 * np.ones((2, 3)), activation="sigmoid"),
                     ResidualBlock(0.1 * np.eye(3), np.eye(3), [0.1, 0.0, -0.1], [0.0, 0.1, 0.0], "softplus")]),
    )
    return nearid.decompose(h, 7, radius=0.6, center=[0.1, 0.0, -0.2], schedule="geometric",
                            constants={"alpha": 0.3}, inversion=nearid.InversionSettings(tol=1e-12, max_iter=50))


def test_round_trip_is_exact(dec, tmp_path):
    path = tmp_path / "dec.npz"
    dec.save(path)
    loaded = nearid.load(path)
    # Inside the ball around the centre (layer 0's domain) and the ball around 0 (the others').
    X = ball_points(np.random.default_rng(0), 64, 3, 0.5 * dec.radius)
    assert np.array_equal(loaded(X), dec(X))
    for a, b in zip(loaded.layers, dec.layers):
        assert np.array_equal(a(X), b(X))
    assert np.array_equal(loaded.scales, dec.scales)
    assert loaded.constants == dec.constants and loaded.constants.estimated == dec.constants.estimated
    assert "M" in loaded.constants.estimated
    assert loaded.schedule == "geometric" and loaded.rate == dec.rate
    assert loaded.inversion == dec.inversion
    assert loaded.epsilon_bound == dec.epsilon_bound
    assert all(np.array_equal(a, b) for a, b in zip(loaded.linear_factors, dec.linear_factors))


def test_file_holds_no_pickle(dec, tmp_path):
    path = tmp_path / "dec.npz"
    dec.save(path)
    with np.load(path, allow_pickle=False) as data:  # would raise on object arrays
        assert int(data["format_version"]) == nearid.io.FORMAT_VERSION
        assert all(data[key].dtype != object for key in data.files)


def test_suffix_is_added(dec, tmp_path):
    dec.save(tmp_path / "plain")
    assert (tmp_path / "plain.npz").is_file()


def test_python_maps_are_refused_and_nothing_is_written(tmp_path):
    h = FromCallable(lambda X: X + 0.1 * np.sin(X), 2)
    dec = nearid.decompose(h, 3)
    with pytest.raises(ValueError, match="cannot save a decomposition of a FromCallable map"):
        dec.save(tmp_path / "dec.npz")
    assert list(tmp_path.iterdir()) == []


def test_loading_bad_files(dec, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        nearid.load(tmp_path / "missing.npz")
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ValueError, match="is not a saved nearid decomposition"):
        nearid.load(other)
    path = tmp_path / "dec.npz"
    dec.save(path)
    with np.load(path) as data:
        entries = dict(data)
    entries["format_version"] = np.array(99)
    np.savez(path, **entries)
    with pytest.raises(ValueError, match="has format version 99"):
        nearid.load(path)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="is not an .npz archive"):
        nearid.load(broken)
    assert zipfile.is_zipfile(path)


# ---------------------------------------------------------------- hand-edited and crafted files


def saved_entries(dec, tmp_path):
    path = tmp_path / "dec.npz"
    dec.save(path)
    with np.load(path) as data:
        return dict(data)


def write(path, entries, compressed=False):
    (np.savez_compressed if compressed else np.savez)(path, **entries)
    return path


def edited(entries, **changes):
    out = dict(entries)
    for key, value in changes.items():
        if value is None:
            del out[key]
        else:
            out[key] = value
    return out


EDITS = [
    ("scales", lambda e: np.array([0.5, 0.4, 0.6, 0.7, 0.8, 0.9, 1.0]), "strictly increasing"),
    ("scales", lambda e: np.r_[-0.1, e["scales"][1:]], "must be positive"),
    ("scales", lambda e: np.r_[np.nan, e["scales"][1:]], "must be finite"),
    ("scales", lambda e: e["scales"][:-1] * 0.5, "must end at exactly 1"),
    ("radius", lambda e: np.array(0.0), "radius must be a finite number > 0"),
    ("radius", lambda e: np.array(-2.0), "radius must be a finite number > 0"),
    ("radius", lambda e: np.array(np.inf), "radius must be a finite number > 0"),
    ("center", lambda e: np.array([np.nan, 0.0, 0.0]), "center must be finite"),
    ("jacobian_at_center", lambda e: e["jacobian_at_center"] * (1 + 1e-6), "differs from Dh\\(center\\) recomputed"),
    ("jacobian_at_center", lambda e: np.full((3, 3), np.nan), "jacobian_at_center must be a finite"),
    ("linear_factors", lambda e: e["linear_factors"] * 1.001, "product of linear_factors differs"),
    ("linear_factors", lambda e: np.where(np.eye(3, dtype=bool), np.nan, e["linear_factors"]),
     "linear_factors\\[0\\] must be a finite"),
    ("constants", lambda e: np.array([np.nan, 1.0, 0.6, 1.0, 1.0]), "constant alpha must be a number >= 0"),
    ("constants", lambda e: np.array([0.3, 1.0, 0.5, 1.0, 1.0]), "constants.R = 0.5 differs from radius"),
    ("rate", lambda e: np.array(1.5), "rate must be None or a number in \\(0, 1\\)"),
    ("schedule", lambda e: np.array("cosine"), "schedule must be one of"),
    ("inversion_numbers", lambda e: np.array([1e-12, 100, 2.0**62]), "anderson_memory must be <= 1000"),
    ("inversion_numbers", lambda e: np.array([1e-12, 0, 5]), "max_iter must be >= 1"),
    ("inversion_numbers", lambda e: np.array([np.nan, 100, 5]), "inversion tol must be a finite number > 0"),
    ("inversion_numbers", lambda e: np.array([1e-12, 2.5, 5]), "max_iter must be an integer"),
    ("inversion_method", lambda e: np.array("bisection"), "inversion method must be one of"),
    ("h/0/W", lambda e: np.full((3, 3), np.nan), "h/0/.*W must be finite"),
    ("h/1/0/A", lambda e: np.ones((3, 5)), "h/1/0/B' must have shape \\(5, 3\\)"),
    ("h/1/0/activation", lambda e: np.array("swish"), "activation must be one of"),
    ("h/1/depth", lambda e: np.array(7), "no entry 'h/1/2/type'"),
    ("constants_estimated", lambda e: np.array("alpha,beta"), "estimated must list distinct names"),
    ("center", lambda e: np.zeros(4), "must have shape \\(4, 4\\)|dimension"),
]


@pytest.mark.parametrize("key, change, message", EDITS, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(EDITS)])
def test_edited_files_are_refused_with_the_entry_named(dec, tmp_path, key, change, message):
    """load() used to rebuild whatever the file held: NaN scales, a radius of 0, factors
    that are not Dh(x0)'s, inversion settings that crash the solver (anderson_memory
    = 2**62 corrupted the heap on the first layer evaluation)."""
    entries = saved_entries(dec, tmp_path)
    path = write(tmp_path / "edited.npz", edited(entries, **{key: change(entries)}))
    with pytest.raises(ValueError, match=message) as info:
        nearid.load(path)
    assert str(path) in str(info.value)


def test_files_without_required_entries(dec, tmp_path):
    entries = saved_entries(dec, tmp_path)
    for key in ("scales", "center", "inversion_numbers", "h/0/type", "h/1/0/bias"):
        path = write(tmp_path / "missing.npz", edited(entries, **{key: None}))
        with pytest.raises(ValueError, match=f"no entry '{key}'"):
            nearid.load(path)


def test_not_a_decomposition_file(tmp_path):
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.npz"
    with pytest.raises(FileNotFoundError, match="no such file"):
        nearid.load(tmp_path / "nothing")
    for path, message in ((npy, "not an .npz archive"), (empty, "is an empty file")):
        with pytest.raises(ValueError, match=message):
            nearid.load(path)
    good = tmp_path / "good.npz"
    np.savez(good, format=np.array(nearid.io.FORMAT), format_version=np.array(1), scales=np.ones(3))
    truncated.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(ValueError):
        nearid.load(truncated)
    with pytest.raises(ValueError, match="has no entry 'schedule'; it is incomplete"):
        nearid.load(good)
    with pytest.raises(ValueError, match="not a saved nearid map"):
        nearid.io.load_map(good)


def test_pickled_and_object_entries_are_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, format=np.array(nearid.io.FORMAT), format_version=np.array(1),
             scales=np.array([1.0, "a"], dtype=object))
    with pytest.raises(ValueError, match="entry 'scales' has dtype object"):
        nearid.load(path)


def test_small_files_declaring_huge_arrays_are_refused_before_decompressing(dec, tmp_path):
    """A 1.9 MB compressed file of zeros drove load() to 5.5 GB; declared sizes are read from
    the headers and checked against the structure and a cap first."""
    entries = saved_entries(dec, tmp_path)
    k = 10_000_000  # a consistent block of width 1e7: 480 MB of zeros in a 0.5 MB file
    bomb = write(tmp_path / "bomb.npz", edited(entries, **{"h/1/0/A": np.zeros((3, k)), "h/1/0/B": np.zeros((k, 3)),
                                                          "h/1/0/bias": np.zeros(k)}), compressed=True)
    assert bomb.stat().st_size < 2_000_000
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(ValueError, match="need more than .* bytes.*refusing to decompress"):
        nearid.load(bomb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2**20
    big = write(tmp_path / "big.npz", edited(entries, **{"h/1/0/bias": np.zeros(400_000_000 // 8)}), compressed=True)
    with pytest.raises(ValueError, match="need more than|must have shape"):
        nearid.load(big)
    center = write(tmp_path / "center.npz", edited(entries, center=np.zeros(50_000_000)), compressed=True)
    with pytest.raises(ValueError, match="need more than|must have shape"):
        nearid.load(center)


def test_deeply_nested_map_files_are_a_clear_error(tmp_path):
    entries = {"format": np.array(nearid.io.MAP_FORMAT), "format_version": np.array(1)}
    prefix = "map/"
    for _ in range(5000):
        entries[f"{prefix}type"] = np.array("Chain")
        entries[f"{prefix}length"] = np.array(1)
        prefix += "0/"
    entries[f"{prefix}type"] = np.array("Affine")
    entries[f"{prefix}W"] = np.eye(2)
    entries[f"{prefix}b"] = np.zeros(2)
    path = write(tmp_path / "deep.npz", entries)
    with pytest.raises(ValueError, match="nest deeper than 64 levels"):
        nearid.io.load_map(path)
    spec: dict = {"type": "Affine", "W": [[1.0]]}
    for _ in range(5000):
        spec = {"type": "Chain", "maps": [spec]}
    with pytest.raises(ValueError, match="nest deeper than 64 levels"):
        nearid.io.map_from_json(spec)


def test_nested_chains_are_saved_flat_and_load_back(tmp_path):
    h = Affine(np.eye(2), [1.0, 0.0])
    for _ in range(300):
        h = Chain(h, Affine(np.eye(2), [0.0, 1.0]))
    nearid.io.save_map(h, tmp_path / "chain")
    again = nearid.io.load_map(tmp_path / "chain")
    assert np.array_equal(again(np.zeros((2, 2))), h(np.zeros((2, 2))))
    assert nearid.io.map_to_json(h)["maps"][0]["type"] == "Affine"


def test_save_and_load_agree_on_the_file_name(dec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dec.save("x")
    assert (tmp_path / "x.npz").is_file() and not (tmp_path / "x").exists()
    assert np.array_equal(nearid.load("x").scales, dec.scales)
    assert np.array_equal(nearid.load("x.npz").scales, dec.scales)
    (tmp_path / "x.npz").rename(tmp_path / "renamed")  # a file without the suffix still loads by its name
    assert np.array_equal(nearid.load("renamed").scales, dec.scales)


def test_atomic_write_syncs_before_renaming(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    nearid.io.atomic_write(tmp_path / "f.bin", lambda name: Path(name).write_bytes(b"data"))
    assert events[:2] == ["fsync", "replace"] and (tmp_path / "f.bin").read_bytes() == b"data"


def test_an_interrupted_write_leaves_nothing(dec, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        dec.save(tmp_path / "dec.npz")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "dec.npz").write_bytes(b"previous")
    with pytest.raises(KeyboardInterrupt):
        dec.save(tmp_path / "dec.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["dec.npz"]
    assert (tmp_path / "dec.npz").read_bytes() == b"previous"  # the old file is untouched


def _patch_member(path, member, local_offset, central_offset, value, size=2):
    """Overwrite a field of one archive member in its local header and its central directory entry."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    fmt = "<H" if size == 2 else "<I"
    raw[info.header_offset + local_offset:info.header_offset + local_offset + size] = struct.pack(fmt, value)
    at = raw.find(b"PK\x01\x02")
    while at != -1:
        length = struct.unpack("<H", raw[at + 28:at + 30])[0]
        if bytes(raw[at + 46:at + 46 + length]) == member.encode():
            raw[at + central_offset:at + central_offset + size] = struct.pack(fmt, value)
        at = raw.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(raw))


def test_damaged_archive_members_are_value_errors_naming_the_entry(dec, tmp_path):
    """An encrypted flag, an unknown compression method or a bad checksum raised RuntimeError,
    NotImplementedError or zipfile.BadZipFile from deep inside zipfile."""
    entries = saved_entries(dec, tmp_path)
    cases = {
        "encrypted": lambda p: _patch_member(p, "scales.npy", 6, 8, 1),
        "compression 99": lambda p: _patch_member(p, "scales.npy", 8, 10, 99),
        "bad checksum": lambda p: _patch_member(p, "linear_factors.npy", 14, 16, 12345, size=4),
    }
    big = edited(entries)
    for name, damage in cases.items():
        path = write(tmp_path / f"{name}.npz", big)
        damage(path)
        with pytest.raises(ValueError) as info:
            nearid.load(path)
        message = str(info.value)
        assert "'scales'" in message or "'linear_factors'" in message, (name, message)


def test_scale_counts_in_files_are_bounded(dec, tmp_path):
    entries = saved_entries(dec, tmp_path)
    empty = write(tmp_path / "empty.npz", edited(entries, scales=np.zeros(0)))
    with pytest.raises(ValueError, match=r"m \(the number of scales\) must be >= 1"):
        nearid.load(empty)
    many = write(tmp_path / "many.npz", edited(entries, scales=np.linspace(0.5, 1.0, 100_001)), compressed=True)
    with pytest.raises(ValueError, match=r"m \(the number of scales\) must be <= 100000"):
        nearid.load(many)


def test_a_directory_is_not_a_file(tmp_path):
    (tmp_path / "dec.npz").mkdir()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        nearid.load(tmp_path / "dec.npz")


def test_writing_leaves_the_umask_alone_and_keeps_permissions(dec, tmp_path, monkeypatch):
    """Reading the umask by setting it to 0 briefly gave other threads' new files mode 0o666."""
    path = tmp_path / "dec.npz"
    dec.save(path)
    os.chmod(path, 0o640)
    monkeypatch.setattr(os, "umask", lambda mask: pytest.fail("os.umask was called"))
    dec.save(path)
    assert path.stat().st_mode & 0o777 == 0o640
    assert np.array_equal(nearid.load(path).scales, dec.scales)


# ---------------------------------------------------------------- unknown entries in .npz files


def saved_map_entries(tmp_path):
    h = Chain(Affine(np.eye(2), [1.0, 0.0]), ResidualNet.random(2, 3, 2, 0.3, seed=4))
    nearid.io.save_map(h, tmp_path / "map")
    with np.load(tmp_path / "map.npz") as data:
        return dict(data)


STRAY_MAP_ENTRIES = [
    ({"map/1/0/bais": np.zeros(3)}, ("unknown entry 'map/1/0/bais' (did you mean 'bias'?); the entries of a map "
     "at 'map/1/0/' are, by its type, ResidualNet: type, depth; ResidualBlock: type, A, B, bias, shift, activation, "
     "dtype (optional); ResidualMLP: type, n_layers, activation, dtype (optional); Linear: type, W, b; Affine: type, "
     "W, b, dtype (optional); Chain: type, length")),
    ({"map/0/wieghts": np.eye(2)}, "unknown entry 'map/0/wieghts'; the entries of a map at 'map/0/' are"),
    ({"fromat": np.array("x")}, ("unexpected entry 'fromat' (did you mean 'format'?); a saved nearid map holds "
     "'format', 'format_version' and its map's entries under 'map/'")),
    ({"extra": np.zeros(1)}, "unexpected entry 'extra'"),
    ({"map/0/A": np.zeros((2, 2))}, ("entry 'map/0/A' does not belong to the Affine at 'map/0/', whose entries "
     "are 'map/0/type', 'map/0/W', 'map/0/b'")),
    ({"map/1/0/b": np.zeros(2)}, "entry 'map/1/0/b' does not belong to the ResidualBlock at 'map/1/0/'"),
    ({"map/5/type": np.array("Affine")}, "entry 'map/5/type' belongs to no map: the file describes no map at 'map/5/'"),
    ({"map/1/2/type": np.array("ResidualBlock")}, "the file describes no map at 'map/1/2/'"),
]


@pytest.mark.parametrize("extra, message", STRAY_MAP_ENTRIES, ids=[next(iter(e)) for e, _ in STRAY_MAP_ENTRIES])
def test_map_files_with_entries_outside_the_format_are_refused(tmp_path, extra, message):
    """load_map ignored entries it did not read: a misspelt 'bais' left the bias at its saved value silently."""
    entries = saved_map_entries(tmp_path)
    path = write(tmp_path / "extra.npz", {**entries, **extra})
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        nearid.io.load_map(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("extra, message", [
    ({"scale": np.ones(3)}, ("unexpected entry 'scale' (did you mean 'scales'?); a saved nearid decomposition "
     "holds 'format', 'format_version', 'schedule'")),
    ({"h/1/0/shfit": np.zeros(3)}, "unknown entry 'h/1/0/shfit' (did you mean 'shift'?)"),
    ({"h/0/depth": np.array(1)}, "entry 'h/0/depth' does not belong to the Affine at 'h/0/'"),
    ({"h/2/type": np.array("Affine")}, "the file describes no map at 'h/2/'"),
])
def test_decomposition_files_with_entries_outside_the_format_are_refused(dec, tmp_path, extra, message):
    path = write(tmp_path / "extra.npz", {**saved_entries(dec, tmp_path), **extra})
    with pytest.raises(ValueError, match=re.escape(message)):
        nearid.load(path)


# ---------------------------------------------------------------- JSON maps


def reference(spec, X):
    """A JSON map description evaluated with NumPy, with the defaults map_from_json documents
    (a block's bias and shift zeros, activation tanh; an affine map's b zeros)."""
    kind = spec.get("type", "ResidualBlock")
    if kind == "ResidualNet":
        for block in spec["blocks"]:
            X = reference(block, X)
        return X
    if kind == "ResidualBlock":
        A, B = np.array(spec["A"], dtype=float), np.array(spec["B"], dtype=float)
        bias = np.array(spec.get("bias") or np.zeros(B.shape[0]), dtype=float)
        shift = np.array(spec.get("shift") or np.zeros(A.shape[0]), dtype=float)
        return X + activation(spec.get("activation") or "tanh", X @ B.T + bias) @ A.T + shift
    if kind == "Affine":
        W = np.array(spec["W"], dtype=float)
        return X @ W.T + np.array(spec.get("b") or np.zeros(W.shape[0]), dtype=float)
    assert kind == "Chain"
    for f in spec["maps"]:
        X = reference(f, X)
    return X


def map_objects(text):
    """Every outermost {"type": ...} object written in `text`, whitespace and backticks removed."""
    text = " ".join(text.replace("`", " ").split())
    found = []
    start = text.find('{"type"')
    while start != -1:
        level = 0
        for end in range(start, len(text)):
            level += {"{": 1, "}": -1}.get(text[end], 0)
            if level == 0:
                break
        found.append(text[start:end + 1])
        start = text.find('{"type"', end + 1)
    return found


def filled(examples):
    """The examples with their placeholders filled: [[...]] by 2x2 matrices, [...] by vectors of 2,
    and a Chain's "maps": [...] by the other examples."""
    values = itertools.count(1)

    def matrix(_):
        return json.dumps([[0.1 * next(values), -0.05], [0.02, 0.1 * next(values)]])

    def vector(_):
        return json.dumps([0.03 * next(values), -0.01 * next(values)])

    maps = [re.sub(r"\[\.\.\.\]", vector, re.sub(r"\[\[\.\.\.\]\]", matrix, e)) for e in examples
            if '"maps": [...]' not in e]
    chains = [e.replace('"maps": [...]', f'"maps": [{", ".join(maps)}]') for e in examples if '"maps": [...]' in e]
    return [json.loads(e) for e in maps + chains]


@pytest.mark.parametrize("source", ["README.md", "nearid decompose --help"])
def test_documented_json_examples_load_as_written(source, capsys):
    """The README and --help showed blocks without a "type"; map_from_json refused them."""
    if source == "README.md":
        text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    else:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["decompose", "--help"])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
    examples = map_objects(text)
    assert {json.loads(re.sub(r"\[+\.\.\.\]+", "[]", e))["type"] for e in examples} >= {"ResidualNet", "Affine",
                                                                                          "Chain"}, examples
    X = np.random.default_rng(3).standard_normal((20, 2))
    for spec in filled(examples):
        f = nearid.io.map_from_json(spec)
        np.testing.assert_allclose(f(X), reference(spec, X), rtol=1e-14, atol=1e-15)
        # What the README promises: the file and map_to_json describe the same map.
        assert np.array_equal(nearid.io.map_from_json(json.loads(json.dumps(nearid.io.map_to_json(f))))(X), f(X))


A2 = [[0.2, -0.1], [0.05, 0.3]]
B2 = [[1.0, 0.5], [-0.25, 2.0]]


def test_json_optional_keys_take_the_documented_defaults():
    X = np.random.default_rng(5).standard_normal((30, 2))
    minimal = {"type": "ResidualNet", "blocks": [{"A": A2, "B": B2}]}
    expected = ResidualNet([ResidualBlock(np.array(A2), np.array(B2), np.zeros(2), np.zeros(2), "tanh")])
    for spec in (minimal,
                 {"type": "ResidualNet", "blocks": [{"type": "ResidualBlock", "A": A2, "B": B2}]},
                 {"type": "ResidualNet", "blocks": [{"A": A2, "B": B2, "bias": None, "shift": None,
                                                     "activation": None}]},
                 {"type": "ResidualBlock", "A": A2, "B": B2}):
        assert np.array_equal(nearid.io.map_from_json(spec)(X), expected(X)), spec
    np.testing.assert_allclose(expected(X), reference(minimal, X), rtol=1e-14, atol=1e-15)
    affine = nearid.io.map_from_json({"type": "Affine", "W": B2})
    assert np.array_equal(affine(X), Affine(np.array(B2), np.zeros(2))(X))
    assert np.array_equal(affine.b, np.zeros(2))
    given_all = nearid.io.map_from_json({"type": "ResidualNet", "blocks": [
        {"A": A2, "B": B2, "bias": [0.1, -0.2], "shift": [0.3, 0.0], "activation": "softplus"}]})
    assert np.array_equal(given_all(X), ResidualBlock(np.array(A2), np.array(B2), np.array([0.1, -0.2]),
                                                      np.array([0.3, 0.0]), "softplus")(X))


ALLOWED_BLOCK = "allowed keys: 'type', 'A', 'B', 'bias', 'shift', 'activation', 'dtype'"
UNKNOWN_KEYS = [
    ({"type": "ResidualNet", "blocks": [{"A": A2, "B": B2, "bais": [0.0, 0.0]}]},
     f"map.blocks[0] (ResidualBlock) has unknown key 'bais' (did you mean 'bias'?); {ALLOWED_BLOCK}"),
    ({"type": "ResidualNet", "blocks": [{"A": A2, "B": B2}, {"A": A2, "B": B2, "shfit": [0.0, 0.0]}]},
     f"map.blocks[1] (ResidualBlock) has unknown key 'shfit' (did you mean 'shift'?); {ALLOWED_BLOCK}"),
    ({"type": "ResidualNet", "blocks": [{"A": A2, "B": B2, "activaton": "relu", "Bias": [1.0, 1.0]}]},
     ("map.blocks[0] (ResidualBlock) has unknown keys 'activaton' (did you mean 'activation'?), 'Bias' (did you "
      f"mean 'bias'?); {ALLOWED_BLOCK}")),
    ({"type": "Affine", "wieghts": B2},
     "map (Affine) has unknown key 'wieghts'; allowed keys: 'type', 'W', 'b', 'dtype'"),
    ({"type": "ResidualNet", "blocks": [{"A": A2, "B": B2}], "name": "net"},
     "map (ResidualNet) has unknown key 'name'; allowed keys: 'type', 'blocks'"),
    ({"type": "Chain", "maps": [{"type": "Affine", "W": B2}], "map": []},
     "map (Chain) has unknown key 'map' (did you mean 'maps'?); allowed keys: 'type', 'maps'"),
    ({"type": "Chain", "maps": [{"type": "Affine", "W": B2}, {"type": "ResidualBlock", "A": A2, "B": B2, "C": 1}]},
     f"map.maps[1] (ResidualBlock) has unknown key 'C'; {ALLOWED_BLOCK}"),
]


@pytest.mark.parametrize("spec, message", UNKNOWN_KEYS, ids=["bais", "shfit", "activaton+Bias", "wieghts", "name",
                                                             "map", "C"])
def test_json_unknown_keys_are_refused_with_the_key_its_place_and_the_allowed_keys(spec, message):
    """A misspelt "bais" used to be ignored: the block silently got a zero bias."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        nearid.io.map_from_json(spec)


@pytest.mark.parametrize("spec, message", [
    ({"type": "ResidualNet", "blocks": [{"type": "Affine", "W": B2}]},
     "map.blocks[0] has type 'Affine'; the blocks of a ResidualNet are ResidualBlocks (their 'type' may be omitted)"),
    ({"type": "ResidualNet", "blocks": {"A": A2, "B": B2}}, "map (ResidualNet): 'blocks' must be an array; got dict"),
    ({"type": "ResidualNet", "blocks": [[A2, B2]]}, "map.blocks[0] must be an object with the keys of a ResidualBlock"),
    ({"type": "ResidualNet", "blocks": []}, "map (ResidualNet): blocks must hold at least one ResidualBlock"),
    ({"type": "ResidualNet", "blocks": [{"B": B2}]}, "map.blocks[0] (ResidualBlock) needs 'A'"),
    ({"type": "Chain", "maps": "Affine"}, "map (Chain): 'maps' must be an array; got str"),
    ({"type": "Chain", "maps": [{"W": B2}]}, "map.maps[0] must be an object with a 'type'"),
    ({"type": "Chain"}, "map (Chain) needs 'maps'"),
    ({"A": A2, "B": B2}, "map must be an object with a 'type'"),
    ({"type": ["Affine"], "W": B2}, "map has unknown type ['Affine']"),
    ({"type": "ResidualNet", "blocks": [{"A": A2, "B": B2, "activation": "swish"}]},
     "map.blocks[0] (ResidualBlock): activation must be one of"),
    ({"type": "ResidualNet", "blocks": [{"A": A2, "B": B2, "bias": [0.0]}]}, "map.blocks[0] (ResidualBlock): "),
])
def test_json_structure_errors_name_the_place(spec, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        nearid.io.map_from_json(spec)


def test_json_round_trip_is_bitwise():
    rng = np.random.default_rng(7)
    blocks = [ResidualBlock(rng.standard_normal((3, k)) / 3, rng.standard_normal((k, 3)), rng.standard_normal(k),
                            np.array([-0.0, 1 / 3, 5e-324]), act)
              for k, act in zip((1, 4, 2), ("tanh", "relu", "sigmoid"))]
    h = Chain(Affine(np.array([[1.0, 1e-300, 0.1], [0.0, 1 + 2**-52, -0.0], [np.pi, 0.0, 1.0]]), [0.1, 0.2, 0.3]),
              Chain(ResidualNet(blocks), blocks[0]))
    text = json.dumps(nearid.io.map_to_json(h))
    again = nearid.io.map_from_json(json.loads(text))
    assert json.dumps(nearid.io.map_to_json(again)) == text
    flat, flat_again = h.flat_maps(), again.flat_maps()
    assert [type(f) for f in flat] == [type(f) for f in flat_again] == [Affine, ResidualNet, ResidualBlock]
    for f, g in zip(flat, flat_again):
        parts = [(f.W, g.W), (f.b, g.b)] if isinstance(f, Affine) else [
            (getattr(a, name), getattr(b, name)) for a, b in zip(getattr(f, "blocks", [f]), getattr(g, "blocks", [g]))
            for name in ("A", "B", "bias", "shift")]
        assert all(p.tobytes() == q.tobytes() for p, q in parts)  # bitwise, the sign of -0.0 included
    X = rng.standard_normal((50, 3))
    assert np.array_equal(again(X), h(X))


@settings(max_examples=60, deadline=None)
@given(d=st.integers(1, 3), k=st.integers(1, 3), data=st.data(),
       act=st.sampled_from(["tanh", "sigmoid", "softplus", "relu", "identity"]))
def test_json_round_trip_keeps_every_float(d, k, data, act):
    floats = st.floats(allow_nan=False, allow_infinity=False, width=64)
    A, B = data.draw(hnp.arrays(np.float64, (d, k), elements=floats)), data.draw(hnp.arrays(np.float64, (k, d),
                                                                                             elements=floats))
    bias, shift = data.draw(hnp.arrays(np.float64, k, elements=floats)), data.draw(hnp.arrays(np.float64, d,
                                                                                               elements=floats))
    block = ResidualBlock(A, B, bias, shift, act)
    again = nearid.io.map_from_json(json.loads(json.dumps(nearid.io.map_to_json(ResidualNet([block])))))
    (got,) = again.blocks
    for name in ("A", "B", "bias", "shift"):
        assert getattr(got, name).tobytes() == getattr(block, name).tobytes()
    assert got.activation == act
