"""The command line, driven as a user would: subprocesses, exit codes, files."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import nearid
from nearid import io
from nearid.app import report
from nearid.maps import Affine, Chain, ResidualNet


def strict_loads(text):
    """json.loads that refuses Infinity, -Infinity and NaN, as strict JSON readers do."""
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nearid", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def assert_one_line_error(result, status=2, text=None):
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("nearid: error:"), result.stderr
    if text is not None:
        assert text in lines[0]


@pytest.mark.parametrize("command", [[], ["decompose"], ["lipschitz"], ["bench"], ["demo"]])
def test_help(command):
    result = run(*command, "--help")
    assert result.returncode == 0 and "usage: nearid" in result.stdout


def test_console_script_is_installed():
    from pathlib import Path

    script = Path(sys.executable).with_name("nearid")  # installed beside this interpreter, on PATH or not
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "decompose" in result.stdout


def check_report(data, m, d, sweep):
    assert tuple(data) == report.REPORT_KEYS
    assert data["versions"]["nearid"] == nearid.__version__
    assert data["map"]["dim"] == d
    dec = data["decomposition"]
    assert dec["m"] == m and len(dec["scales"]) == m and dec["scales"][-1] == 1.0
    assert set(data["constants"]) >= {"alpha", "M", "R", "L", "B", "estimated"}
    assert data["bounds"]["epsilon_bound"] > 0 and {"paper", "sharp", "linear_bound"} <= set(data["bounds"])
    assert len(data["deviations"]["nonlinear"]) == m and len(data["deviations"]["linear"]) == dec["linear_layers"]
    assert data["composition_error"]["layers_vs_h"] < 1e-10 and data["composition_error"]["inverse_vs_x"] < 1e-10
    assert data["bounds"]["status"] == "estimated" and data["bounds"]["label"] == "estimated bound (sample constants)"
    assert data["settings"]["seed"] == 0 and data["settings"]["method"] == "jacobian"
    names = data["deviations"]["layer_names"]
    assert names[0] == "h_1" and names[m - 1] == f"h_{m}" and len(names) == m + dec["linear_layers"]
    if sweep is None:
        assert data["sweep"] is None
    else:
        assert data["sweep"]["m"] == sweep and data["sweep"]["method"] == "jacobian"
        for schedule in ("uniform", "theorem", "balanced"):
            assert len(data["sweep"][schedule]) == len(sweep) and all(v > 0 for v in data["sweep"][schedule])
    assert all(v >= 0 for v in data["timings"].values())


def test_decompose_demo_writes_report_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    result = run("decompose", "--demo", "planar", "-m", "6", "--sweep", "2,4,8", "--samples", "400",
                 "--report", str(out))
    assert result.returncode == 0, result.stderr
    assert "proven" not in result.stdout and "wrote" in result.stdout
    assert "estimated bound (sample constants) on max ||h_i - Id||_Lip" in result.stdout
    data = strict_loads((out / "report.json").read_text())
    check_report(data, 6, 2, [2, 4, 8])
    assert data["plots"] == ["deviations.png", "sweep.png", "grid.png"]
    for name in data["plots"]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == sorted(data["plots"] + ["report.json"])  # no temporaries


def test_decompose_map_files_json_and_npz(tmp_path):
    h = Chain(ResidualNet.random(3, 5, 2, 0.4, seed=3), Affine(np.diag([1.5, 1.0, 0.8]), [0.1, 0.2, 0.3]))
    spec = tmp_path / "map.json"
    spec.write_text(json.dumps(io.map_to_json(h)))
    result = run("decompose", "--map", str(spec), "-m", "5", "--sweep", "2,4", "--samples", "300",
                 "--schedule", "balanced", "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    data = strict_loads(result.stdout)
    check_report(data, 5, 3, [2, 4])
    assert data["decomposition"]["schedule"] == "balanced" and data["map"]["source"] == str(spec)
    # The full map parameters: the report alone rebuilds the map.
    X = np.random.default_rng(0).standard_normal((7, 3))
    assert np.array_equal(io.map_from_json(data["map"]["spec"])(X), h(X))
    io.save_map(h, tmp_path / "map.npz")
    result = run("decompose", "--map", str(tmp_path / "map.npz"), "-m", "3", "--sweep", "2", "--samples", "300",
                 "--report", str(tmp_path / "r"), "--no-plots", "--quiet")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["report.json"]


def test_decompose_sweeps_only_when_asked(tmp_path):
    """The m-sweep (3 decompositions per m) took 27 s for the planar demo by default; now it runs only
    with --sweep, or with --report unless --no-sweep."""
    result = run("decompose", "--demo", "planar", "-m", "4", "--samples", "300", "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    data = strict_loads(result.stdout)
    check_report(data, 4, 2, None)
    assert "sweep_s" not in data["timings"]
    result = run("decompose", "--demo", "planar", "-m", "4", "--samples", "300", "--sweep", "--json", "--quiet")
    assert strict_loads(result.stdout)["sweep"]["m"] == [4, 8, 16, 32, 64]
    out = tmp_path / "r"
    result = run("decompose", "--demo", "planar", "-m", "4", "--samples", "300", "--report", str(out),
                 "--no-sweep", "--quiet")
    assert result.returncode == 0, result.stderr
    data = strict_loads((out / "report.json").read_text())
    assert data["sweep"] is None and "sweep.png" not in data["plots"]
    assert_one_line_error(run("decompose", "--demo", "planar", "--sweep", "4", "--no-sweep"), text="at most one")


def test_decompose_with_given_constants_is_proven(tmp_path):
    result = run("decompose", "--demo", "resnet", "--alpha", "0.5", "--M", "1.2", "--samples", "300")
    assert result.returncode == 0, result.stderr
    assert "proven bound on max ||h_i - Id||_Lip: 0.0375;" in result.stdout  # alpha R M / m = 0.5 * 1.2 / 16
    partial = run("decompose", "--demo", "resnet", "--alpha", "0.5", "--samples", "300", "--json", "--quiet")
    bounds = strict_loads(partial.stdout)["bounds"]
    assert bounds["status"] == "estimated" and bounds["statuses"] == {"paper": "estimated", "sharp": "estimated"}


def test_own_demos_print_an_estimated_bound_above_the_measured_deviation():
    for demo in ("resnet", "planar"):
        data = strict_loads(run("decompose", "--demo", demo, "--json", "--quiet").stdout)
        assert data["bounds"]["status"] == "estimated"
        assert data["deviations"]["max_nonlinear"] <= data["bounds"]["epsilon_bound"]
        assert data["deviations"]["above_bound"] == []


def test_json_output_is_strict_when_values_are_infinite(tmp_path):
    X = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])  # a duplicate point with different outputs: ratio inf
    Y = np.array([[0.0], [1.0], [2.0]])
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    result = run("lipschitz", str(tmp_path / "X.npy"), str(tmp_path / "Y.npy"), "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    data = strict_loads(result.stdout)
    assert data["value"] is None and data["non_finite"]["value"] == "inf"
    assert data["top"][0][0] is None and data["non_finite"]["top.0.0"] == "inf"


def test_version_and_defaults_in_help():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"nearid {nearid.__version__}"
    text = run("decompose", "--help").stdout
    text = text[text.index("options:"):]
    for option, default in [("-m M", "16"), ("--radius", "1.0"), ("--schedule", "uniform"), ("--method", "jacobian"),
                            ("--samples", "2000"), ("--seed", "0")]:
        block = text[text.index(option):]
        assert f"(default: {default})" in " ".join(block.split()[:40]), option
    lipschitz_help = " ".join(run("lipschitz", "--help").stdout.split())
    assert "(default: max)" in lipschitz_help and "(default: 1)" in lipschitz_help


def test_report_directory_that_is_a_file_is_a_usage_error(tmp_path):
    file = tmp_path / "taken"
    file.write_text("keep me")
    assert_one_line_error(run("decompose", "--demo", "planar", "--report", str(file)), text="is an existing file")
    assert file.read_text() == "keep me"


def test_text_files_given_as_npy_name_the_expected_format(tmp_path):
    np.savetxt(tmp_path / "X.csv", np.zeros((4, 2)), delimiter=",")
    np.save(tmp_path / "Y.npy", np.zeros((4, 2)))
    result = run("lipschitz", str(tmp_path / "X.csv"), str(tmp_path / "Y.npy"))
    assert_one_line_error(result, text="is not a .npy file (NumPy's binary array format, written by numpy.save)")
    assert "np.loadtxt" in result.stderr and "pickle" not in result.stderr
    np.savez(tmp_path / "both.npz", X=np.zeros((4, 2)))
    assert_one_line_error(run("lipschitz", str(tmp_path / "both.npz"), str(tmp_path / "Y.npy")), text=".npz archive")


def test_map_json_round_trip():
    h = Chain(ResidualNet.random(2, 3, 2, 0.4, seed=1, activation="softplus"), Affine(np.eye(2) * 2, [1.0, 0.0]))
    again = io.map_from_json(json.loads(json.dumps(io.map_to_json(h))))
    X = np.random.default_rng(0).standard_normal((10, 2))
    assert np.array_equal(again(X), h(X))


def test_decompose_errors(tmp_path):
    assert_one_line_error(run("decompose", "--map", str(tmp_path / "missing.json")), text="does not exist")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert_one_line_error(run("decompose", "--map", str(bad)), text="not valid JSON")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"type": "ResidualBlock", "A": [[1.0, 0.0]], "B": [[1.0]]}))
    assert_one_line_error(run("decompose", "--map", str(wrong)), text="B must have shape")
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"type": "Conv", "W": [[1.0]]}))
    assert_one_line_error(run("decompose", "--map", str(unknown)), text="unknown type 'Conv'")
    flip = tmp_path / "flip.json"
    flip.write_text(json.dumps(io.map_to_json(Affine(np.diag([-1.0, 1.0])))))
    assert_one_line_error(run("decompose", "--map", str(flip), "--quiet"), text="Flip one coordinate")
    deep = tmp_path / "deep.json"
    deep.write_text('{"type": "Chain", "maps": [' * 5000 + '{"type": "Affine", "W": [[1.0]]}' + "]}" * 5000)
    assert_one_line_error(run("decompose", "--map", str(deep)), text="nest")
    shallow_deep = tmp_path / "deep100.json"
    shallow_deep.write_text('{"type": "Chain", "maps": [' * 100 + '{"type": "Affine", "W": [[1.0]]}' + "]}" * 100)
    assert_one_line_error(run("decompose", "--map", str(shallow_deep)), text="nest deeper than 64 levels")
    text = tmp_path / "map.txt"
    text.write_text("x")
    assert_one_line_error(run("decompose", "--map", str(text)), text="must be .json or .npz")
    assert_one_line_error(run("decompose", "--demo", "planar", "--center", "a,b"), text="--center must be")
    assert_one_line_error(run("decompose", "--demo", "planar", "-m", "0", "--quiet"), text="m must be >= 1")
    assert_one_line_error(run("decompose", "--demo", "planar", "--sweep", "0"), text="--sweep must be positive")
    assert_one_line_error(run("decompose"), text="give exactly one of --map FILE and --demo NAME")
    both = run("decompose", "--demo", "planar", "--map", str(bad))
    assert both.returncode == 2 and "not allowed with" in both.stderr and "Traceback" not in both.stderr


def test_lipschitz(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 3))
    Y = np.tanh(X)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    result = run("lipschitz", str(tmp_path / "X.npy"), str(tmp_path / "Y.npy"), "--json", "--top-k", "2")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    expected = nearid.pairwise_lipschitz(X, Y, top_k=2)
    assert data["value"] == expected.value and tuple(data["pair"]) == expected.pair
    assert data["pairs_evaluated"] == 500 * 499 // 2 and len(data["top"]) == 2
    text = run("lipschitz", str(tmp_path / "X.npy"), str(tmp_path / "Y.npy"), "--reduce", "min", "--quiet")
    assert text.returncode == 0 and "min ratio" in text.stdout


def test_lipschitz_errors(tmp_path):
    np.save(tmp_path / "X.npy", np.zeros((4, 2)))
    np.save(tmp_path / "Y.npy", np.zeros((5, 2)))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "nan.npy", np.array([[np.nan, 0.0], [1.0, 1.0], [0.0, 2.0], [3.0, 1.0]]))
    assert_one_line_error(run("lipschitz", str(tmp_path / "X.npy"), str(tmp_path / "Y.npy")),
                          text="same number of rows")
    assert_one_line_error(run("lipschitz", str(tmp_path / "X.npy"), str(tmp_path / "none.npy")), text="does not exist")
    assert_one_line_error(run("lipschitz", str(tmp_path / "objects.npy"), str(tmp_path / "X.npy")),
                          text="not a readable .npy array")
    assert_one_line_error(run("lipschitz", str(tmp_path / "nan.npy"), str(tmp_path / "X.npy")), text="X must be finite")
    dup = run("lipschitz", str(tmp_path / "X.npy"), str(tmp_path / "X.npy"), "--quiet")
    assert_one_line_error(dup, text="every pair of points is a duplicate")


def test_bench_json():
    result = run("bench", "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    rows = strict_loads(result.stdout)
    assert {r["kernel"] for r in rows} >= {"ResidualNet forward (64 tanh blocks)", "exact max pairwise Lipschitz ratio"}
    for r in rows:
        assert r["ratio"] > 0 and r["difference"] < 1e-9


def test_readme_shows_what_the_resnet_demo_prints():
    """The README quotes `nearid decompose --demo resnet`; its numbers must be the command's own."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    quoted = readme[readme.index("decomposed a ResidualNet in d = 4"):].split("```")[0].strip().splitlines()
    printed = run("decompose", "--demo", "resnet").stdout.strip().splitlines()
    assert len(quoted) == len(printed) == 4
    number = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"
    for a, b in zip(quoted, printed):
        assert re.sub(number, "#", a) == re.sub(number, "#", b)
        np.testing.assert_allclose([float(x) for x in re.findall(number, a)],
                                   [float(x) for x in re.findall(number, b)], rtol=1e-4)
