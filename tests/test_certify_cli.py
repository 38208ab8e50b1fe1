"""The command line's certificates: ``nearid certify`` and ``nearid decompose --certify``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nearid import io
from nearid.maps import ResidualNet
from test_cli import assert_one_line_error, run, strict_loads


def test_certify_help():
    result = run("certify", "--help")
    assert result.returncode == 0 and "--quantity" in result.stdout and "jacobian_lipschitz" in result.stdout


def test_certify_a_map_file_as_json(tmp_path):
    net = ResidualNet.random(2, 6, 2, 0.4, seed=0)
    path = tmp_path / "net.json"
    path.write_text(json.dumps(io.map_to_json(net)))
    result = run("certify", "--map", str(path), "--quantity", "deviation", "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    out = strict_loads(result.stdout)
    assert out["quantity"] == "deviation" and out["converged"] and out["stopped"] == "converged"
    assert out["lower"] <= out["upper"] <= out["lower"] * 1.01
    J = net.jacobian(np.array(out["witness"])) - np.eye(2)
    assert np.linalg.norm(J, 2) >= out["lower"] * (1 - 1e-12)


def test_certify_prints_the_certificate():
    result = run("certify", "--demo", "planar", "--quantity", "lipschitz", "--quiet")
    assert result.returncode == 0 and result.stdout.startswith("Certificate(") and "Lip f" in result.stdout


@pytest.mark.parametrize("arguments, text", [
    (["--demo", "planar", "--radius", "-1"], "radius must be a finite number > 0"),
    (["--demo", "planar", "--center", "1,2,3"], "center must have shape (2,)"),
    ([], "give exactly one of --map FILE and --demo NAME"),
    (["--map", "missing.json"], "does not exist"),
])
def test_certify_errors_are_one_line(arguments, text):
    assert_one_line_error(run("certify", *arguments, "--quiet"), 2, text)


def test_certify_refuses_relu_kinks_for_the_curvature(tmp_path):
    net = ResidualNet.random(2, 6, 2, 0.4, seed=0, activation="relu")
    path = tmp_path / "relu.json"
    path.write_text(json.dumps(io.map_to_json(net)))
    assert_one_line_error(run("certify", "--map", str(path), "--quantity", "jacobian_lipschitz", "--quiet"), 2,
                          "relu pre-activation may cross 0")


def test_decompose_certify_puts_bands_in_the_report(tmp_path):
    result = run("decompose", "--demo", "planar", "-m", "8", "--certify", "--rtol", "0.02", "--report",
                 str(tmp_path), "--no-sweep", "--no-plots", "--quiet")
    assert result.returncode == 0, result.stderr
    report = strict_loads((tmp_path / "report.json").read_text())
    certificate = report["certificate"]
    assert certificate["status"] == "certified"
    m = report["decomposition"]["m"]
    lower, upper = np.array(certificate["lower"]), np.array(certificate["upper"])
    assert lower.size == m + report["decomposition"]["linear_layers"]
    assert np.all(lower <= upper) and np.all(upper[:m] <= 1.25 * lower[:m])
    assert np.all(np.array(report["deviations"]["nonlinear"]) <= upper[:m])
    assert certificate["epsilon_bound"] >= max(report["deviations"]["nonlinear"])
    summary = run("decompose", "--demo", "planar", "-m", "8", "--certify", "--rtol", "0.02")
    assert "certified bound on max ||h_i - Id||_Lip" in summary.stdout
