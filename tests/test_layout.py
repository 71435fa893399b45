"""The package layout reads as the pipeline: imports run one way, from the applications down to the parts.

The import graph of benchmark/, perturbations/, segmentation/ and reports/ is read from the source (every
`import`, including those inside functions) and checked for circles and for imports of a later stage by an
earlier one.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("benchmark", "perturbations", "segmentation", "reports")
# Lowest first: a module may import its own layer and the layers below it, never one above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("shared infrastructure", ("benchmark", "benchmark.errors", "benchmark.atomic", "benchmark.numerics",
                               "benchmark.runtime", "benchmark.workers", "benchmark.config_schema")),
    ("data", ("benchmark.data",)),
    ("parts", ("perturbations", "benchmark.metrics", "benchmark.features", "benchmark.generators", "segmentation")),
    ("study", ("benchmark.study",)),
    ("reports", ("reports",)),
    ("applications", ("benchmark.pipeline", "benchmark.cli", "benchmark.__main__", "benchmark.config_checks",
                      "benchmark.lab", "benchmark.score")),
]


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the four packages."""
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    return modules


def run_time_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """The import statements of a module that run (those under `if TYPE_CHECKING:` do not)."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            found.extend(run_time_imports(ast.Module(body=node.orelse, type_ignores=[])))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        found.extend(run_time_imports(node))
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules its import statements run: a name inside a module resolves to that
    module, and importing `a.b.c` also runs the packages `a` and `a.b` (their __init__)."""

    def resolve(name: str) -> set[str]:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        parts = name.split(".") if name else []
        return {".".join(parts[:k]) for k in range(1, len(parts) + 1)} & modules.keys()

    graph = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in run_time_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(*(resolve(alias.name) for alias in node.names))
            elif node.module and node.level == 0:
                targets.update(*(resolve(f"{node.module}.{alias.name}") for alias in node.names))
        own_packages = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
        graph[name] = targets - {name} - own_packages
    return graph


def layer_of(module: str) -> int:
    """Index of the layer whose longest prefix matches `module`."""
    matches = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} belongs to no layer: add it to LAYERS in tests/test_layout.py"
    return max(matches)[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), i.e. import circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    assert cycles(import_graph(module_files())) == []


def test_no_module_imports_a_later_stage() -> None:
    graph = import_graph(module_files())
    upward = [f"{source} ({LAYERS[layer_of(source)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
              for source, targets in sorted(graph.items()) for target in sorted(targets)
              if layer_of(target) > layer_of(source)]
    assert upward == []


def test_the_checks_catch_a_circle_and_an_upward_import() -> None:
    """The two checks are not vacuous: a hand-made graph with both faults is reported."""
    graph = {"benchmark.data.a": {"benchmark.data.b"}, "benchmark.data.b": {"benchmark.data.a"},
             "benchmark.metrics.x": {"reports.build"}, "reports.build": set()}
    assert cycles(graph) == [["benchmark.data.a", "benchmark.data.b"]]
    assert layer_of("benchmark.metrics.x") < layer_of("reports.build")
