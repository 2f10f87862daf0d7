"""The layout's rules, read from the code's own imports: no import cycle in the package; the core
(matching/, export/, config.py) imports no Dagster and no HTTP library; and no module outside
crms/ names a specific CRM — everything else asks crms/registry.py."""

import ast
import gc
from pathlib import Path

import pytest

from crm_pipelines.crms import registry

PACKAGE = Path(__file__).resolve().parents[1] / "crm_pipelines"
CORE = ("crm_pipelines.matching", "crm_pipelines.export", "crm_pipelines.config")
ORCHESTRATION_AND_HTTP = ("dagster", "dagster_dbt", "requests", "httpx", "urllib3", "simple_salesforce", "hubspot",
                          "msal", "starlette", "uvicorn")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, ast.Module]:
    # The garbage collector off while parsing: on CPython 3.11 a finalizer that runs inside
    # ast.parse (an earlier test's SQLite connection, which logs as it is collected) fails the
    # parse with "AST constructor recursion depth mismatch".
    gc.collect()
    gc.disable()
    try:
        return {_module_name(path): ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))}
    finally:
        gc.enable()


def _imports(name: str, tree: ast.Module, at_module_level: bool) -> set[str]:
    """What ``name`` imports: every import, or those run when it is imported (not inside a function)."""
    package = name if (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists() else name.rpartition(".")[0]
    found: set[str] = set()
    nodes = _nodes(tree, skip_functions=at_module_level)
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _nodes(tree: ast.AST, skip_functions: bool):
    """Every node, without ``if TYPE_CHECKING:`` blocks (never run) and, if asked, function bodies."""
    for node in ast.iter_child_nodes(tree):
        if skip_functions and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        yield node
        yield from _nodes(node, skip_functions)


def test_no_import_cycle_in_the_package() -> None:
    modules = _modules()
    graph = {name: {m for m in _imports(name, tree, at_module_level=False) if m in modules and m != name}
             for name, tree in modules.items()}
    # A module importing its own package (``from . import sibling``) finds it imported already.
    graph = {name: {m for m in found if not name.startswith(m + ".")} for name, found in graph.items()}
    # A package's __init__ runs before its modules: importing a.b imports a.
    for name in modules:
        for other in list(graph[name]):
            parent = other.rpartition(".")[0]
            while parent and parent != "crm_pipelines":
                if parent in modules and parent != name and not name.startswith(parent + "."):
                    graph[name].add(parent)
                parent = parent.rpartition(".")[0]
    cycles = _strongly_connected(graph)
    assert cycles == [], "import cycles: " + "; ".join(" → ".join(sorted(c)) for c in cycles)


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("core", CORE)
def test_the_core_imports_no_dagster_and_no_http_library(core: str) -> None:
    modules = _modules()
    offending = {name: sorted(m for m in _imports(name, tree, at_module_level=False)
                              if m.split(".")[0] in ORCHESTRATION_AND_HTTP)
                 for name, tree in modules.items() if name == core or name.startswith(core + ".")}
    assert {name: found for name, found in offending.items() if found} == {}


def test_no_module_outside_crms_names_a_specific_crm() -> None:
    """A CRM's name as a whole string (a key of a table, a comparison) belongs in its folder."""
    # "custom" is also the custom identifier rule's name (config.py, matching/rules.py): a word, not the CRM.
    crm_names = (set(registry.names()) | set(registry.emulated_names())) - {"custom"}
    named = {}
    for name, tree in _modules().items():
        if name.startswith("crm_pipelines.crms"):
            continue
        strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
        if strings & crm_names:
            named[name] = sorted(strings & crm_names)
    assert named == {}


def test_no_crm_folder_imports_another_crms_folder() -> None:
    """What two CRMs share (an OData parser, REST paging, retries) lives in crms/wire/ or the
    sandbox's kernel, so a CRM's folder can be read, changed or removed on its own."""
    folders = {crm: f"crm_pipelines.crms.{crm}" for crm in registry.names()}
    crossing = {}
    for name, tree in _modules().items():
        owner = next((crm for crm, folder in folders.items() if name == folder or name.startswith(folder + ".")), None)
        if owner is None:
            continue
        others = sorted(m for m in _imports(name, tree, at_module_level=False)
                        for crm, folder in folders.items() if crm != owner and (m == folder or m.startswith(folder + ".")))
        if others:
            crossing[name] = others
    assert crossing == {}
