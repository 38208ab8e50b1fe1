"""nearid.schedules: resolve() owns every named schedule; one list of names everywhere."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import nearid
from nearid import schedules
from nearid.bounds import Constants
from nearid.maps import ResidualNet
from nearid.scaled import Normalised

PACKAGE = Path(nearid.__file__).parent
CONSTANTS = Constants(alpha=0.4, M=1.5, R=1.0, L=1.2, B=0.9, estimated=(), n_samples=0)


@pytest.fixture(scope="module")
def normalised():
    net = ResidualNet.random(2, 4, 2, 0.3, seed=0)
    return Normalised(net, np.zeros(2), net.jacobian(np.zeros(2)))


def test_resolve_gives_each_named_schedule(normalised):
    scales, name, rate = schedules.resolve("uniform", 4)
    assert name == "uniform" and rate is None and np.array_equal(scales, [0.25, 0.5, 0.75, 1.0])
    scales, name, rate = schedules.resolve("theorem", 5, constants=CONSTANTS)
    assert name == "theorem" and rate == schedules.theorem_rate(5, 0.4, 1.0, 0.9)
    assert np.array_equal(scales, schedules.geometric(5, rate))
    scales, name, rate = schedules.resolve("geometric", 5, constants=CONSTANTS)
    assert rate == schedules.balanced_geometric_rate(5, 1.5) and np.array_equal(scales, schedules.geometric(5, rate))
    scales, name, rate = schedules.resolve("geometric", 5, rate=0.3)
    assert rate == 0.3 and np.array_equal(scales, schedules.geometric(5, 0.3))
    scales, name, rate = schedules.resolve("balanced", 3, constants=CONSTANTS, normalised=normalised, n_samples=50)
    assert name == "balanced" and rate is None
    assert np.array_equal(scales, schedules.balanced(normalised, 3, 1.0, 50, 0))
    scales, name, rate = schedules.resolve([0.1, 0.5, 1.0], 3)
    assert name == schedules.EXPLICIT == "explicit" and rate is None and not scales.flags.writeable


def test_balanced_is_never_worse_than_uniform(normalised):
    from nearid.scaled import jacobian_deviations, sample_for_deviations

    U = sample_for_deviations(2, 1.0, 200, 0)
    balanced = schedules.balanced(normalised, 6, 1.0, 200, 0)
    assert jacobian_deviations(normalised, balanced, U).max() <= jacobian_deviations(
        normalised, schedules.uniform(6), U).max()
    assert np.array_equal(schedules.balanced(normalised, 1, 1.0, 200, 0), [1.0])


@pytest.mark.parametrize("call, message", [
    (lambda n: schedules.resolve("linear", 3), r"schedule must be one of \('uniform'"),
    (lambda n: schedules.resolve("explicit", 3), "schedule must be one of"),
    (lambda n: schedules.resolve("theorem", 3, rate=0.2, constants=CONSTANTS), "rate applies only to"),
    (lambda n: schedules.resolve([0.5, 1.0], 2, rate=0.2), "rate applies only to"),
    (lambda n: schedules.resolve("theorem", 3), "needs the constants"),
    (lambda n: schedules.resolve("geometric", 3), "needs the constants"),
    (lambda n: schedules.resolve("balanced", 3, constants=CONSTANTS), "needs the normalised map"),
    (lambda n: schedules.resolve([0.5, 0.4, 1.0], 3), "strictly increasing"),
    (lambda n: schedules.resolve("geometric", 3, rate=1.5), r"c must be a number in \(0, 1\)"),
])
def test_resolve_refuses_what_it_cannot_use(normalised, call, message):
    with pytest.raises(ValueError, match=message):
        call(normalised)


def test_every_list_of_schedule_names_comes_from_schedules():
    from nearid.app import cli, report

    assert schedules.RECORDED_NAMES == schedules.NAMES + ("explicit",)
    commands = next(a for a in cli.parser()._actions if a.dest == "command")
    choices = {tuple(a.choices) for sub in commands.choices.values() for a in sub._actions if a.dest == "schedule"}
    assert choices == {schedules.NAMES}
    assert set(report.SWEEP_SCHEDULES) <= set(schedules.NAMES)
    # No module spells out the names again: "balanced" appears as a string only in schedules.py.
    for path in PACKAGE.glob("*.py"):
        if path.name == "schedules.py":
            continue
        strings = [node.value for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, ast.Constant) and node.value == "balanced"]
        assert not strings, f"{path.name} lists schedule names; use nearid.schedules.NAMES"


def _nearid_imports(path: Path) -> set[tuple[str, str]]:
    """(module, name) for every ``from .module import name`` in a file of the package."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.update((node.module or "", alias.name) for alias in node.names)
    return found


def test_schedules_and_scaled_do_not_depend_on_decompose():
    for name in ("schedules.py", "scaled.py"):
        assert not any(module == "decompose" for module, _ in _nearid_imports(PACKAGE / name))


def test_decompose_uses_only_public_names_of_maps():
    imported = _nearid_imports(PACKAGE / "decompose.py")
    private = {(module, name) for module, name in imported
               if name.startswith("_") and not module.startswith("_") and module}
    assert not private, private
    assert "._impl" not in (PACKAGE / "decompose.py").read_text()
