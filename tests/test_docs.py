"""Every public name has a docstring, and so do the public methods of public classes."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping

import pytest

# By name: nearid.decompose and nearid.distill are the functions, which hide their modules.
MODULES = [
    importlib.import_module(name)
    for name in ("nearid", "nearid.maps", "nearid.inversion", "nearid.linear", "nearid.lipschitz",
                 "nearid.decompose", "nearid.distill", "nearid.landscape", "nearid.export", "nearid.io",
                 "nearid.bounds", "nearid.schedules", "nearid.scaled", "nearid.app", "nearid.app.report",
                 "nearid.app.bench", "nearid.app.cli", "nearid.app.demo")
]
try:
    MODULES.append(importlib.import_module("nearid.dask"))
except ImportError:  # the optional dask extra
    pass


def public_names():
    for module in MODULES:
        assert module.__doc__, module.__name__
        for name in getattr(module, "__all__", []):
            if name.startswith("__"):
                continue
            yield module.__name__, name, getattr(module, name)


@pytest.mark.parametrize("module, name, obj", list(public_names()), ids=lambda v: v if isinstance(v, str) else "")
def test_public_name_is_documented(module, name, obj):
    if isinstance(obj, (str, bool, int, float, tuple, Mapping)):
        return  # constants are documented where they are defined
    assert inspect.getdoc(obj), f"{module}.{name} has no docstring"
    if inspect.isclass(obj):
        for attribute, member in vars(obj).items():
            if attribute.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
                continue
            assert inspect.getdoc(member), f"{module}.{name}.{attribute} has no docstring"
