"""The package's import graph: module-level imports among nearid's modules form no cycle.

Read from the source (each module's AST), not by importing it, so a cycle is found even
where Python would tolerate it at import time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nearid

PACKAGE = Path(nearid.__file__).resolve().parent


def modules() -> dict[str, Path]:
    """{dotted name: source file} for the package and every module under it."""
    found = {}
    for file in sorted(PACKAGE.rglob("*.py")):
        parts = file.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(body: list[ast.stmt], deferred: bool) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement under `body`, each with whether it runs only when a function is called
    (or never: ``if TYPE_CHECKING``) rather than when the module is imported."""
    out: list[tuple[ast.Import | ast.ImportFrom, bool]] = []
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append((node, deferred))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out += _imports(node.body, True)
        elif isinstance(node, ast.If) and _is_type_checking(node):
            out += _imports(node.body, True) + _imports(node.orelse, deferred)
        else:  # if, try, with, for, class bodies run when the module is imported
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ExceptHandler):
                    out += _imports(child.body, deferred)
                elif isinstance(child, ast.stmt):
                    out += _imports([child], deferred)
    return out


def _targets(module: str, node: ast.Import | ast.ImportFrom, known: dict[str, Path]) -> set[str]:
    """The package's modules `node`, written in `module`, imports."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            package = module if known[module].name == "__init__.py" else module.rsplit(".", 1)[0]
            for _ in range(node.level - 1):
                package = package.rsplit(".", 1)[0]
            base = f"{package}.{node.module}" if node.module else package
        else:
            base = node.module or ""
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
    targets = set()
    for name in names:
        while name and name not in known:  # "nearid.maps.Affine" -> "nearid.maps"
            name = name.rpartition(".")[0]
        if name:
            targets.add(name)
    return targets - {module}


def graph(deferred: bool = False) -> dict[str, set[str]]:
    """{module: the package's modules it imports}: at import time only, or with `deferred` also those
    imported inside functions."""
    known = modules()
    edges: dict[str, set[str]] = {}
    for module, file in known.items():
        edges[module] = set()
        for node, later in _imports(ast.parse(file.read_text(), str(file)).body, False):
            if deferred or not later:
                edges[module] |= _targets(module, node, known)
    return edges


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `edges` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_every_kind_of_import():
    edges = graph()
    assert {"nearid.decompose", "nearid.io", "nearid.maps"} <= edges["nearid"]  # from .x import y
    assert "nearid._native" in edges["nearid.maps"]  # from ._native import core as _core
    assert "nearid.lipschitz" in edges["nearid.decompose"]  # from . import bounds, lipschitz, schedules


def test_module_level_imports_form_no_cycle():
    assert cycle(graph()) is None


def test_io_depends_on_decompose_not_the_reverse():
    edges, later = graph(), graph(deferred=True)
    assert "nearid.decompose" in edges["nearid.io"]
    assert "nearid.io" not in edges["nearid.decompose"]
    # Decomposition.save, an alias of nearid.io.save, is the one deferred use of io in decompose.
    source = (PACKAGE / "decompose.py").read_text()
    assert source.count("from .io import") == 1 and "nearid.io" in later["nearid.decompose"]


def test_the_library_never_imports_the_application():
    later = graph(deferred=True)
    library = [m for m in later if not (m.startswith("nearid.app") or m == "nearid.__main__")]
    assert library and "nearid.app.cli" in later["nearid.__main__"]
    for module in library:
        assert not {t for t in later[module] if t.startswith("nearid.app")}, module


def _private_names_imported(file: Path) -> list[str]:
    """Names starting with one underscore that `file` imports from another module
    (``from .maps import _helper``); private modules themselves (``from . import _json``) are fine."""
    found = []
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [f"{node.module}.{a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__") and a.name != "_core"]
    return found


def _foreign_impl_reads(file: Path) -> list[int]:
    """Lines where `file` reads ``._impl`` of an object other than ``self``."""
    return [node.lineno for node in ast.walk(ast.parse(file.read_text(), str(file)))
            if isinstance(node, ast.Attribute) and node.attr == "_impl"
            and not (isinstance(node.value, ast.Name) and node.value.id == "self")]


def test_no_module_imports_another_modules_private_names():
    for module, file in modules().items():
        assert _private_names_imported(file) == [], module


def test_only_maps_touches_the_compiled_objects_of_maps():
    for module, file in modules().items():
        if module != "nearid.maps":
            assert _foreign_impl_reads(file) == [], f"{module} reads another object's ._impl"


def test_the_layout_checkers_find_what_they_look_for(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text("from .maps import _helper, Affine\nfrom . import _json\n\ndef f(g):\n    return g._impl\n")
    assert _private_names_imported(source) == ["maps._helper"]
    assert _foreign_impl_reads(source) == [5]
