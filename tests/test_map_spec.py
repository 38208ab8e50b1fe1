"""nearid._map_spec: the one translation between maps and plain specs, and where each format names a fault."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nearid.io
from nearid._map_spec import FIELDS, OMITTED_AT_DEFAULT, map_from_spec, map_to_spec
from nearid.maps import Affine, Chain, FromCallable, ResidualBlock, ResidualNet


def the_map():
    net = ResidualNet([ResidualBlock(0.2 * np.ones((2, 3)), np.ones((3, 2)), [0.1, 0.0, -0.1], [0.0, 0.2], "relu")])
    return Chain(Chain(Affine(np.array([[1.0, 0.5], [0.0, 2.0]]), [1.0, -1.0]), net), net.blocks[0])


def never(path, kind, exc):
    raise AssertionError(f"{path} {kind} {exc}")


def test_spec_is_plain_data_and_builds_the_same_map():
    f = the_map()
    spec = map_to_spec(f)
    assert [m["type"] for m in spec["maps"]] == ["Affine", "ResidualNet", "ResidualBlock"]  # written flat
    for node in (spec, *spec["maps"], spec["maps"][1]["blocks"][0]):
        # "dtype" is left out at its default (float64).
        assert list(node) == ["type", *(k for k in FIELDS[node["type"]] if k not in OMITTED_AT_DEFAULT)]
    block = spec["maps"][2]
    assert all(isinstance(block[k], np.ndarray) and block[k].dtype == np.float64 for k in ("A", "B", "bias", "shift"))
    X = np.random.default_rng(0).standard_normal((10, 2))
    assert np.array_equal(map_from_spec(spec, never)(X), f(X))


def test_float32_maps_keep_their_dtype_through_specs_json_and_npz(tmp_path):
    f = the_map().astype(np.float32)
    spec = map_to_spec(f)
    for node in (spec["maps"][0], spec["maps"][2], spec["maps"][1]["blocks"][0]):  # the leaves carry it
        assert list(node) == ["type", *FIELDS[node["type"]]] and node["dtype"] == "float32"
    assert spec["maps"][2]["A"].dtype == np.float32
    X = np.random.default_rng(0).standard_normal((10, 2)).astype(np.float32)
    as_json = json.loads(json.dumps(nearid.io.map_to_json(f)))
    nearid.io.save_map(f, tmp_path / "f")
    for g in (map_from_spec(spec, never), nearid.io.map_from_json(as_json), nearid.io.load_map(tmp_path / "f")):
        assert g.dtype == np.float32 and repr(g) == repr(f)
        assert np.array_equal(g(X), f(X))
    with pytest.raises(ValueError, match=r"map \(Affine\): dtype must be numpy.float64 or numpy.float32; got float16"):
        nearid.io.map_from_json({"type": "Affine", "W": np.eye(2).tolist(), "dtype": "float16"})


def test_json_and_npz_are_layouts_of_the_spec(tmp_path):
    f = the_map()
    spec = map_to_spec(f)
    as_json = nearid.io.map_to_json(f)
    assert json.dumps(as_json) == json.dumps(spec, default=lambda a: a.tolist())
    nearid.io.save_map(f, tmp_path / "f")
    with np.load(tmp_path / "f.npz") as data:
        assert data["map/length"] == 3 and data["map/1/depth"] == 1 and str(data["map/2/activation"]) == "relu"
        assert np.array_equal(data["map/1/0/bias"], spec["maps"][1]["blocks"][0]["bias"])


@pytest.mark.parametrize("write", [nearid.io.map_to_json, lambda f: nearid.io.save_map(f, "unused")])
def test_maps_that_cannot_be_stored_are_refused_by_every_writer(write):
    with pytest.raises(ValueError, match="cannot save a decomposition of a FromCallable map"):
        write(FromCallable(np.sin, 2))


def test_the_innermost_invalid_map_is_named_in_json():
    bad_block = {"A": [[0.1], [0.0]], "B": [[1.0, 0.0]], "activation": "swish"}
    spec = {"type": "Chain", "maps": [{"type": "Affine", "W": [[1.0, 0.0], [0.0, 1.0]]},
                                      {"type": "ResidualNet", "blocks": [bad_block]}]}
    with pytest.raises(ValueError, match=r"^map\.maps\[1\]\.blocks\[0\] \(ResidualBlock\): activation must be"):
        nearid.io.map_from_json(spec)
    mixed = {"type": "Chain", "maps": [{"type": "Affine", "W": [[1.0]]}, {"type": "Affine", "W": np.eye(2).tolist()}]}
    with pytest.raises(ValueError, match=r"^map \(Chain\): .*same dim"):
        nearid.io.map_from_json(mixed)


def npz_with(tmp_path, **changes):
    nearid.io.save_map(the_map(), tmp_path / "f")
    with np.load(tmp_path / "f.npz") as data:
        entries = dict(data)
    entries.update(changes)
    np.savez(tmp_path / "edited.npz", **entries)
    return tmp_path / "edited.npz"


def test_the_innermost_invalid_map_is_named_in_npz(tmp_path):
    path = npz_with(tmp_path, **{"map/1/0/A": np.full((2, 3), np.nan)})
    with pytest.raises(ValueError, match=r"the map at 'map/1/0/' \(ResidualBlock\) is invalid: A must be finite"):
        nearid.io.load_map(path)
    # A ResidualNet whose block is an Affine: the net is at fault, not the Affine.
    entries = {"map/1/0/type": np.array("Affine"), "map/1/0/W": np.eye(2), "map/1/0/b": np.zeros(2)}
    path = npz_with(tmp_path, **entries)
    with np.load(path) as data:
        kept = {k: data[k] for k in data.files if not k.startswith("map/1/0/") or k in entries}
    np.savez(path, **kept)
    with pytest.raises(ValueError, match=r"the map at 'map/1/' \(ResidualNet\) is invalid: blocks\[0\] must be a "
                                         r"ResidualBlock"):
        nearid.io.load_map(path)
    with pytest.raises(ValueError, match=r"unknown map type 'Sequential' at 'map/0/type'"):
        nearid.io.load_map(npz_with(tmp_path, **{"map/0/type": np.array("Sequential")}))
