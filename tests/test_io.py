"""Saving and loading decompositions: exact round trips, refusals, no partial files."""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

import nearid
from references import ball_points
from nearid.maps import Affine, Chain, FromCallable, ResidualBlock, ResidualNet


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
    assert loaded.constants == dec.constants and loaded.constants.estimated == ("M",)
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
