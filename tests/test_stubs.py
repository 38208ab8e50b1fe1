"""The type stubs (_core.pyi) must describe the compiled module exactly:
the same functions, classes, methods, properties and parameter names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import nearid
from nearid import _native

STUB = Path(nearid.__file__).with_name("_core.pyi")


def stub_api() -> dict[str, object]:
    """{function: [params]} and {class: {member: [params] or "property"}} from the stub."""
    tree = ast.parse(STUB.read_text())
    api: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            api[node.name] = [a.arg for a in node.args.args]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and not node.target.id.startswith("_"):
            api[node.target.id] = "constant"
        elif isinstance(node, ast.ClassDef):
            members: dict[str, object] = {}
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    is_property = any(isinstance(d, ast.Name) and d.id == "property" for d in item.decorator_list)
                    members[item.name] = "property" if is_property else [a.arg for a in item.args.args][1:]
            api[node.name] = members
    return api


def split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[(" and 1 or 0
        depth -= char in "])" and 1 or 0
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


def runtime_params(function, is_method: bool) -> list[str]:
    """Parameter names from pybind11's signature line (the docstring's first line)."""
    first = (function.__doc__ or "").splitlines()[0]
    match = re.match(r"^\w+\((.*)\) ->", first)
    assert match, first
    names = [p.split(":")[0].strip() for p in split_top_level(match.group(1))]
    return names[1:] if is_method else names


def module_api(module) -> dict[str, object]:
    api: dict[str, object] = {}
    for name in dir(module):
        if name.startswith("_"):
            continue
        value = getattr(module, name)
        if isinstance(value, type):
            members: dict[str, object] = {}
            for key, member in vars(value).items():
                if key.startswith("_") and key != "__init__":
                    continue
                if key == "__init__" and not hasattr(member, "__func__") and "instancemethod" not in type(member).__name__:
                    continue  # the abstract base has no constructor
                members[key] = "property" if isinstance(member, property) else runtime_params(member, True)
            api[name] = members
        elif callable(value):
            api[name] = runtime_params(value, False)
        else:
            api[name] = "constant"
    return api


@pytest.mark.parametrize("variant", ["baseline", "avx2", "avx512"])
def test_stub_matches_module(variant):
    try:
        module, _ = _native.load(variant)
    except (RuntimeError, ImportError):
        pytest.skip(f"the {variant} build does not run here")
    assert module_api(module) == stub_api()


def test_package_ships_typing_markers():
    assert STUB.is_file()
    assert STUB.with_name("py.typed").is_file()
