"""The project's import graph has no cycles, counting every import: function-level and ``TYPE_CHECKING`` ones
too. A cycle is a sign that something lives in the wrong module; hiding the import would only hide that."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("middleware", "gateway")  # folders, installed as frontdesk.middleware and frontdesk.gateway


def _modules() -> dict[str, Path]:
    """Installed module name -> file, for the two packages and the ``frontdesk`` facade."""
    found: dict[str, Path] = {"frontdesk": REPO / "frontdesk" / "__init__.py"}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            name = ".".join(("frontdesk", *path.relative_to(REPO).with_suffix("").parts))
            found[name.removesuffix(".__init__")] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(module imported, line) for every import statement anywhere in the file, within the project."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{node.module}" if node.module else anchor
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            found = _resolve(target, modules)
            # a package importing its own submodules is how packages work, not a cycle
            if found and found != name and not (path.name == "__init__.py" and found.startswith(name + ".")):
                out.append((found, node.lineno))
                break
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {name: {target for target, _ in _imports(name, path, modules)} for name, path in modules.items()}
    assert _cycles(graph) == []


def test_the_gateway_imports_its_own_modules_at_the_top() -> None:
    """Function-level (and ``TYPE_CHECKING``) imports of sibling modules are how the old cycles were hidden."""
    modules = _modules()
    late: list[str] = []
    for name, path in modules.items():
        if not name.startswith("frontdesk.gateway"):
            continue
        tree = ast.parse(path.read_text())
        top = {node.lineno for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)}
        late += [f"{name}:{line} -> {target}" for target, line in _imports(name, path, modules) if line not in top]
    assert late == []


def _absolute_imports(path: Path) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.append((node.module, node.lineno))
    return out


def test_no_module_imports_the_bare_folder_names() -> None:
    """``middleware`` and ``gateway`` are folders, installed as ``frontdesk.*``: a bare import works only from a
    checkout's root, and there it loads a second copy of every module. (ruff's TID251 covers everything else.)"""
    bare = [
        f"{name}:{line} imports {target}"
        for name, path in _modules().items()
        for target, line in _absolute_imports(path)
        if target.split(".")[0] in PACKAGES
    ]
    assert bare == []


def test_the_library_never_imports_the_gateway() -> None:
    modules = _modules()
    wrong = [
        f"{name}:{line} -> {target}"
        for name, path in modules.items()
        if name.startswith("frontdesk.middleware")
        for target, line in _imports(name, path, modules)
        if target.startswith("frontdesk.gateway")
    ]
    assert wrong == []
