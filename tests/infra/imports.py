"""What a Lambda function can import, by a static scan of its code.

From the function's handler (and, for a route, the modules its route names: the endpoint and
its response models, which `api/routes.py` and `api/resolver.py` import by name) every import
of a policyhub module is followed, at module level and inside functions alike (a lazy import
still runs when that code path does), except under `if TYPE_CHECKING:` and under
`if <settings>.mode is Mode.LOCAL:` (the local stack's stand-ins, never run in AWS). The
composition root `policyhub.api.container` is the one exception: its factories import lazily
so that each function loads only the services it uses, so its function-level imports count
only for the factories the scanned code calls (`container.<factory>(`) and the factories those
call. The OpenAPI document resolves every route, so code that calls `openapi_document(` pulls
in every route's modules. What remains outside policyhub and the standard library is the set of
third-party top-level modules the function may import.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from infra.stack.config import REPO_ROOT
from policyhub.api.routes import ROUTES, ROUTES_BY_NAME, Route

SHARED = REPO_ROOT / "layers" / "shared" / "python"
FUNCTIONS = REPO_ROOT / "functions"
CONTAINER = "policyhub.api.container"
ENDPOINTS = "policyhub.api.endpoints"
DYNAMIC_IMPORT_SITES = {"policyhub.api.routes", "policyhub.api.resolver"}
"""The only modules that import by name (`importlib.import_module`): the route table's strings."""
OPENAPI_DOCUMENT = "openapi_document"


@dataclass
class Reach:
    """What a stretch of code (a module's top level, or one function) imports and calls."""

    imports: set[str] = field(default_factory=set)
    """Absolute names of the modules imported."""
    container_calls: set[str] = field(default_factory=set)
    """`container.<factory>(` calls."""
    local_calls: set[str] = field(default_factory=set)
    """Calls of this module's own top-level functions, by name."""
    builds_openapi: bool = False
    imports_by_name: bool = False


@dataclass
class Scanned:
    top_level: Reach
    """Module-level statements, class bodies included."""
    functions: dict[str, Reach]
    """Top-level functions."""


def module_path(name: str) -> Path | None:
    """The file of policyhub module `name`, or None for anything else."""
    if name.split(".")[0] != "policyhub":
        return None
    base = SHARED.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _never_in_aws(node: ast.If) -> bool:
    """`if TYPE_CHECKING:`, or `if <settings>.mode is Mode.LOCAL:`: neither body runs in AWS."""
    test = node.test
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Is):
        left, right = test.left, test.comparators[0]
        return (
            isinstance(left, ast.Attribute)
            and left.attr == "mode"
            and isinstance(right, ast.Attribute)
            and right.attr == "LOCAL"
            and isinstance(right.value, ast.Name)
            and right.value.id == "Mode"
        )
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """`ast.walk` that skips the bodies of what `_never_in_aws` names."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _never_in_aws(child):
            for other in child.orelse:
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _imports_of(node: ast.AST, module: str, path: Path) -> set[str]:
    found: set[str] = set()
    for n in _walk(node):
        if isinstance(n, ast.Import):
            found |= {alias.name for alias in n.names}
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ""
            if n.level:
                package = _package_of(module, path)
                for _ in range(n.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}".rstrip(".")
            if base == "__future__":
                continue
            found.add(base)
            # `from policyhub.api import container` imports a module, not a name.
            found |= {
                f"{base}.{alias.name}"
                for alias in n.names
                if module_path(f"{base}.{alias.name}") is not None
            }
    return found


def _calls(node: ast.AST) -> Iterator[ast.Call]:
    for n in _walk(node):
        if isinstance(n, ast.Call):
            yield n


def _reach(nodes: list[ast.stmt], module: str, path: Path, own: set[str]) -> Reach:
    tree = ast.Module(nodes, [])
    reach = Reach(imports=_imports_of(tree, module, path))
    for call in _calls(tree):
        func = call.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "container"
        ):
            reach.container_calls.add(func.attr)
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if isinstance(func, ast.Name) and name in own:
            reach.local_calls.add(name)
        reach.builds_openapi |= name == OPENAPI_DOCUMENT
        reach.imports_by_name |= name in ("import_module", "__import__")
    return reach


@cache
def scan_module(module: str, path: Path) -> Scanned:
    tree = ast.parse(path.read_text(), filename=str(path))
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    own = {n.name for n in defs}
    rest = [n for n in tree.body if not isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    return Scanned(
        top_level=_reach(rest, module, path, own),
        functions={n.name: _reach([n], module, path, own) for n in defs},
    )


def is_dispatch(module: str) -> bool:
    """Modules whose functions count only when called: the composition root, whose factories
    import lazily so that each function loads the services it uses, and the endpoint modules,
    one endpoint per route."""
    return module == CONTAINER or module.startswith(ENDPOINTS + ".")


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def route_modules(route: Route) -> set[str]:
    """The modules the route table names for `route`: imported by name at cold start."""
    names = [route.endpoint, *(r.model for r in route.responses)]
    return {name.partition(":")[0] for name in names}


@dataclass(frozen=True)
class ImportGraph:
    modules: frozenset[str]
    """policyhub modules reached."""
    third_party: frozenset[str]
    """Top-level names of everything else outside the standard library."""
    imports_by_name: frozenset[str]
    """Reached modules that import by name (must be `DYNAMIC_IMPORT_SITES`)."""


def import_graph(function_name: str) -> ImportGraph:
    """What `functions/<name>/handler.py` can import, in AWS, at cold start or in any call."""
    modules: set[str] = set()
    third_party: set[str] = set()
    by_name: set[str] = set()
    called: set[tuple[str, str]] = set()
    pending_modules: list[str] = []
    pending_calls: list[tuple[str, str]] = []
    openapi_done = False

    def add(reach: Reach) -> None:
        nonlocal openapi_done
        pending_modules.extend(sorted(reach.imports))
        pending_calls.extend((CONTAINER, f) for f in sorted(reach.container_calls))
        if reach.builds_openapi and not openapi_done:
            openapi_done = True  # the document imports every route's modules
            pending_modules.extend(m for r in ROUTES for m in sorted(route_modules(r)))

    def add_module(name: str) -> None:
        top = name.split(".")[0]
        if top != "policyhub":
            if top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
            return
        for parent in _with_parents(name):
            path = module_path(parent)
            if path is None or parent in modules:
                continue
            modules.add(parent)
            scanned = scan_module(parent, path)
            add(scanned.top_level)
            if scanned.top_level.imports_by_name:
                by_name.add(parent)
            if is_dispatch(parent):
                pending_calls.extend((parent, f) for f in sorted(scanned.top_level.local_calls))
                continue
            for fn in scanned.functions.values():  # no call graph: any of them may run
                add(fn)
                if fn.imports_by_name:
                    by_name.add(parent)

    def add_call(module: str, function: str) -> None:
        if (module, function) in called:
            return
        called.add((module, function))
        add_module(module)
        path = module_path(module)
        assert path is not None, module
        reach = scan_module(module, path).functions.get(function)
        if reach is None:
            return  # a class or an imported name, counted with the module's top level
        add(reach)
        pending_calls.extend((module, f) for f in sorted(reach.local_calls))

    handler = FUNCTIONS / function_name / "handler.py"
    root = scan_module(f"functions.{function_name}.handler", handler)
    add(root.top_level)
    for fn in root.functions.values():
        add(fn)
    route = ROUTES_BY_NAME.get(function_name)
    if route is not None:
        pending_modules.extend(sorted(route_modules(route)))
        module, _, endpoint = route.endpoint.partition(":")
        pending_calls.append((module, endpoint))
    while pending_modules or pending_calls:
        if pending_modules:
            add_module(pending_modules.pop())
        else:
            add_call(*pending_calls.pop())
    return ImportGraph(frozenset(modules), frozenset(third_party), frozenset(by_name))
