"""Saving and loading decompositions: exact round trips, refusals, no partial files."""

from __future__ import annotations

import zipfile

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
