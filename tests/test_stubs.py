"""The type stubs (_core.pyi) describe the compiled core: mypy's stubtest compares
them with every build of the core that runs on this machine.

stubtest checks names, classes, properties and constants, but cannot see the
parameters of pybind11 functions: builtins carry no ``__text_signature__``, so
``inspect.signature`` fails on them and stubtest skips their signatures. The
parameters are compared separately, with the signature line pybind11 writes at
the top of each docstring ("name(a: T, b: U = 1) -> R", parsed by ``ast``).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import nearid
from nearid import _native

STUB = Path(nearid.__file__).with_name("_core.pyi")
ALLOWLIST = Path(__file__).with_name("stubtest_allowlist.txt")
VARIANTS = ("baseline", "avx2", "avx512")


def built_modules() -> list[ModuleType]:
    """The builds of the core that import and run here (baseline always; AVX2 and
    AVX-512 when they were built and the CPU runs them)."""
    modules = []
    for variant in VARIANTS:
        try:
            modules.append(_native.load(variant)[0])
        except (RuntimeError, ImportError):
            assert variant != "baseline", "the baseline core must always load"
    return modules


def test_stubtest_finds_no_difference(tmp_path):
    names = [module.__name__ for module in built_modules()]
    command = [sys.executable, "-m", "mypy.stubtest", "--allowlist", str(ALLOWLIST), *names]
    env = None
    if names != ["nearid._core"]:
        # stubtest finds a module's stub by the module's name, and the AVX builds use
        # _core.pyi too: check them against copies of it under their own names.
        package = tmp_path / "stubs" / "nearid"
        package.mkdir(parents=True)
        (package / "__init__.pyi").write_text("")
        for name in names:
            shutil.copyfile(STUB, package / f"{name.rpartition('.')[2]}.pyi")
        env = {**os.environ, "MYPYPATH": str(package.parent)}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"stubtest on {names}:\n{done.stdout[-6000:]}{done.stderr[-2000:]}"


def stub_parameters() -> dict[str, tuple[list[str], int]]:
    """{"function" or "Class.method": (parameter names without self, number of defaults)}."""
    found: dict[str, tuple[list[str], int]] = {}

    def add(name: str, node: ast.FunctionDef, method: bool) -> None:
        names = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
        defaults = len(node.args.defaults) + sum(d is not None for d in node.args.kw_defaults)
        found[name] = (names[1:] if method else names, defaults)

    for node in ast.parse(STUB.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            add(node.name, node, method=False)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not any(
                    isinstance(d, ast.Name) and d.id == "property" for d in item.decorator_list
                ):
                    add(f"{node.name}.{item.name}", item, method=True)
    return found


def runtime_parameters(module: ModuleType) -> dict[str, tuple[list[str], int]]:
    """The same from pybind11's docstring signature lines of the compiled module."""
    found: dict[str, tuple[list[str], int]] = {}

    def add(name: str, function: object, method: bool) -> None:
        line = (getattr(function, "__doc__", None) or "").partition("\n")[0]
        try:
            node = ast.parse(f"def {line}: ...").body[0]
        except SyntaxError:
            pytest.fail(f"{module.__name__}.{name}: no pybind11 signature line in its docstring: {line!r}")
        assert isinstance(node, ast.FunctionDef)
        names = [a.arg for a in node.args.args + node.args.kwonlyargs]
        defaults = len(node.args.defaults) + sum(d is not None for d in node.args.kw_defaults)
        found[name] = (names[1:] if method else names, defaults)

    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        if isinstance(value, type):
            for key, member in vars(value).items():
                if key == "__init__" and isinstance(member, type(object.__init__)):
                    continue  # pybind11's generic constructor of an abstract class (stubtest_allowlist.txt)
                if (key.startswith("_") and key != "__init__") or isinstance(member, property):
                    continue
                add(f"{name}.{key}", member, method=True)
        elif callable(value):
            add(name, value, method=False)
    return found


@pytest.mark.parametrize("module", built_modules(), ids=lambda m: m.__name__)
def test_parameters_match_the_stub(module):
    assert runtime_parameters(module) == stub_parameters()


def test_package_ships_typing_markers():
    assert STUB.is_file()
    assert STUB.with_name("py.typed").is_file()


def test_mypy_finds_no_error_in_the_package(tmp_path):
    """The package's source type-checks against its own stubs (the settings are pyproject.toml's).
    The source tree, not the installed copy: mypy run on a path inside site-packages takes
    site-packages for a source root and stops on the modules it finds there."""
    root = Path(__file__).parents[1]
    config, source = root / "pyproject.toml", root / "python" / "nearid"
    if not (config.exists() and source.is_dir()):
        pytest.skip("the mypy settings and the package source live in the source tree")
    command = [sys.executable, "-m", "mypy", "--config-file", str(config), "--cache-dir", str(tmp_path), str(source)]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
