"""Format version 1 as nearid wrote it before io.py had one map encoding (tests/data/io_v1, made by
make.py there at commit cd27c55): those files load unchanged, and today's writers produce the same entries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import nearid
from nearid.maps import Affine, ResidualBlock, ResidualNet
from references import ball_points

V1 = Path(__file__).resolve().parent / "data" / "io_v1"


def entries(path):
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def assert_same_entries(written, golden):
    """The same entries in the same order, each with the same dtype, shape and bytes."""
    assert list(written) == list(golden)
    for key, value in golden.items():
        assert written[key].dtype == value.dtype and written[key].shape == value.shape, key
        assert written[key].tobytes() == value.tobytes(), key


def test_v1_map_files_load_and_describe_the_same_map():
    from_npz = nearid.io.load_map(V1 / "map.npz")
    text = (V1 / "map.json").read_text()
    from_json = nearid.io.map_from_json(json.loads(text))
    assert [type(f) for f in from_npz.flat_maps()] == [Affine, ResidualNet, ResidualBlock]
    assert json.dumps(nearid.io.map_to_json(from_npz), indent=1) + "\n" == text
    assert json.dumps(nearid.io.map_to_json(from_json), indent=1) + "\n" == text
    X = np.random.default_rng(0).standard_normal((40, 3))
    assert np.array_equal(from_npz(X), from_json(X))
    golden = entries(V1 / "map.npz")
    net = from_npz.flat_maps()[1]
    assert isinstance(net, ResidualNet)
    assert np.array_equal(net.blocks[1].shift, golden["map/1/1/shift"]) and net.blocks[0].activation == "sigmoid"


def test_v1_map_file_is_what_save_map_writes_today(tmp_path):
    nearid.io.save_map(nearid.io.load_map(V1 / "map.npz"), tmp_path / "again")
    assert_same_entries(entries(tmp_path / "again.npz"), entries(V1 / "map.npz"))


def test_v1_json_is_what_map_to_json_writes_today():
    spec = json.loads((V1 / "map.json").read_text())
    again = nearid.io.map_to_json(nearid.io.map_from_json(spec))
    assert again == spec and list(again) == list(spec)  # keys in the same order: "type" first


@pytest.mark.parametrize("name", ["geometric", "uniform"])
def test_v1_decomposition_files_load_with_every_field(name):
    dec = nearid.load(V1 / f"{name}.npz")
    golden = entries(V1 / f"{name}.npz")
    assert isinstance(dec, nearid.Decomposition)
    assert np.array_equal(dec.scales, golden["scales"]) and dec.schedule == str(golden["schedule"])
    assert (dec.rate is None) == np.isnan(golden["rate"])
    assert dec.radius == float(golden["radius"]) and np.array_equal(dec.center, golden["center"])
    assert np.array_equal(dec.jacobian_at_center, golden["jacobian_at_center"])
    assert len(dec.linear_factors) == golden["linear_factors"].shape[0]
    c = dec.constants
    assert np.array_equal([c.alpha, c.M, c.R, c.L, c.B], golden["constants"])
    assert ",".join(c.estimated) == str(golden["constants_estimated"])
    assert dec.inversion.method == str(golden["inversion_method"])
    assert np.array_equal([dec.inversion.tol, dec.inversion.max_iter, dec.inversion.anderson_memory],
                          golden["inversion_numbers"])
    X = dec.center + ball_points(np.random.default_rng(1), 32, 3, 0.5 * dec.radius)
    np.testing.assert_allclose(dec(X), dec.h(X), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["geometric", "uniform"])
def test_v1_decomposition_file_is_what_save_writes_today(name, tmp_path):
    nearid.load(V1 / f"{name}.npz").save(tmp_path / "again")
    assert_same_entries(entries(tmp_path / "again.npz"), entries(V1 / f"{name}.npz"))


def test_save_and_its_alias_dec_save_write_the_same_entries(tmp_path):
    dec = nearid.load(V1 / "geometric.npz")
    nearid.save(dec, tmp_path / "function")
    dec.save(tmp_path / "method")
    assert nearid.save is nearid.io.save
    assert_same_entries(entries(tmp_path / "function.npz"), entries(tmp_path / "method.npz"))


def test_load_is_typed_to_return_a_decomposition():
    import typing

    assert typing.get_type_hints(nearid.io.load)["return"] is nearid.Decomposition
    with pytest.raises(ValueError, match="is not a saved nearid decomposition .*'nearid.Map'"):
        nearid.load(V1 / "map.npz")  # maps are load_map's
