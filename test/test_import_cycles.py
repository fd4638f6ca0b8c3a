"""No import cycles in the package: between modules, and between its sub-packages.

The graph is read from the source with :mod:`ast` (nothing is imported), counting every
``import`` statement, also those deferred into functions: a cycle through a lazy import
is still two modules that cannot be understood, tested or moved apart. Importing
``a.b.c`` also runs ``a/b/__init__.py``, so the package is an edge too (except the
importer's own packages, which are already running).

``python test/test_import_cycles.py`` prints the figures (modules, edges, cycles).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "anomaly_seg_ros"
#: Every folder of importable code: the installed package, the product's training tools,
#: the demo (not installed) and the experiments.
PACKAGES = (PACKAGE, "training", "demo", "research")
#: Which folder may import which (the layers, lowest first): the product knows none of the
#: others, training builds on the product, the demo on both, the research on all three.
MAY_IMPORT = {
    PACKAGE: set(),
    "training": {PACKAGE},
    "demo": {PACKAGE, "training"},
    "research": {PACKAGE, "training", "demo"},
}


def module_files(root: Path = REPO, package: str | tuple[str, ...] = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> source file, for every ``.py`` of the package(s)."""
    modules = {}
    packages = (package,) if isinstance(package, str) else package
    for path in sorted(p for name in packages for p in (root / name).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _targets(node: ast.AST, importer: str, modules: dict[str, Path]) -> Iterable[str]:
    """The package's modules one import statement names."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            name = alias.name
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                yield name
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = importer if _is_package(importer, modules) else importer.rpartition(".")[0]
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            source = f"{base}.{node.module}" if node.module else base
        else:
            source = node.module or ""
        if source not in modules:
            return
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            yield submodule if submodule in modules else source


def import_graph(
    root: Path = REPO, package: str | tuple[str, ...] = PACKAGE
) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (with the packages that run first);
    with several packages, the imports between them too."""
    modules = module_files(root, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for importer, path in modules.items():
        own = {importer.rsplit(".", depth)[0] for depth in range(importer.count(".") + 1)}
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            for target in _targets(node, importer, modules):
                parts = target.split(".")
                for depth in range(2, len(parts) + 1):
                    name = ".".join(parts[:depth])
                    if name in modules and name not in own:
                        graph[importer].add(name)
    return graph


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between the package's first-level parts (``anomaly_seg_ros.X``)."""

    def part(name: str) -> str:
        return ".".join(name.split(".")[:2])

    collapsed: dict[str, set[str]] = {part(name): set() for name in graph}
    for importer, targets in graph.items():
        collapsed[part(importer)] |= {part(t) for t in targets if part(t) != part(importer)}
    return collapsed


def folder_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between top-level folders (``anomaly_seg_ros``, ``training``, ...)."""
    collapsed: dict[str, set[str]] = {name.split(".")[0]: set() for name in graph}
    for importer, targets in graph.items():
        top = importer.split(".")[0]
        collapsed[top] |= {t.split(".")[0] for t in targets} - {top}
    return collapsed


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_graph_reader_sees_imports():
    """The reader must find edges, or an empty graph would pass the tests below."""
    graph = import_graph()
    assert "anomaly_seg_ros.errors" in graph["anomaly_seg_ros.detector"]
    assert "anomaly_seg_ros.backends" in graph["anomaly_seg_ros.detector"]


def test_reader_finds_a_cycle(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from .. import a\n")
    graph = import_graph(tmp_path, "pkg")
    assert cycles(graph) == [["pkg.a", "pkg.sub.b"]]
    assert cycles(package_graph(graph)) == [["pkg.a", "pkg.sub"]]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_cycle_between_modules(package):
    assert cycles(import_graph(REPO, package)) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_cycle_between_subpackages(package):
    assert cycles(package_graph(import_graph(REPO, package))) == []


def test_no_cycle_between_folders():
    """anomaly_seg_ros, training, demo and research: no cycle through any of their modules,
    and each folder imports only the layers below it (the installed package none of the
    others, so it never needs a source checkout)."""
    graph = import_graph(REPO, PACKAGES)
    assert cycles(graph) == []
    folders = folder_graph(graph)
    assert set(folders) == set(PACKAGES)
    assert cycles(folders) == []
    assert {name: targets - MAY_IMPORT[name] for name, targets in folders.items()} == {
        name: set() for name in PACKAGES
    }
    assert "training" in folders["demo"]  # the reader sees the edges across folders


#: The package's own layers, lowest first: what a model is (``model/``), one frame's host
#: path (``pipeline/``), then the Detector and everything that runs one (backends, the
#: node, the tools). Below them all: errors, settings, the refinement specification and
#: atomic files, which import none of the parts.
UPPER_PARTS = {
    "detector",
    "backends",
    "networks",
    "deploy",
    "io",
    "ros",
    "evaluation",
    "commands",
    "objects",
    "datasets",
    "cli",
    "node_settings",
}
FOUNDATION = {"errors", "config", "config_files", "refinement_spec", "atomic", "optional"}


def test_the_package_layers_model_below_pipeline_below_the_rest():
    parts = package_graph(import_graph(REPO, PACKAGE))

    def names(part: str) -> set[str]:
        return {target.removeprefix(f"{PACKAGE}.") for target in parts[f"{PACKAGE}.{part}"]}

    assert names("model") & (UPPER_PARTS | {"pipeline"}) == set()
    assert names("pipeline") & UPPER_PARTS == set()
    assert "model" in names("pipeline")  # the reader sees the edge that is allowed
    for part in FOUNDATION:
        assert names(part) <= FOUNDATION, part


def test_folder_graph_finds_a_cycle_across_folders(tmp_path):
    for name in ("low", "high"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "low" / "a.py").write_text("import high.b\n")
    (tmp_path / "high" / "b.py").write_text("def f():\n    from low import a\n")
    graph = import_graph(tmp_path, ("low", "high"))
    assert cycles(folder_graph(graph)) == [["high", "low"]]


if __name__ == "__main__":
    module_graph = import_graph()
    parts = package_graph(module_graph)
    print(f"modules {len(module_graph)}, edges {sum(map(len, module_graph.values()))}")
    print(f"module cycles {cycles(module_graph)}")
    print(f"parts {len(parts)}, edges {sum(map(len, parts.values()))}")
    print(f"part cycles {cycles(parts)}")
