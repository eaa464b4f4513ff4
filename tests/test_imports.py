"""The runtime package has no import circles, counting imports inside functions (which only
defer a circle) and leaving out ``if TYPE_CHECKING:`` blocks (annotations only)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "neuralcodec"


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _runtime_nodes(tree: ast.AST):
    """Every node, except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports (``from a import b`` counts a.b when b is a
    module, else a)."""
    modules = module_names()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base])
                    base = base.rstrip(".")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (its modules in order, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_runtime_package_has_no_import_circles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_checker_sees_circles_through_imports_inside_functions():
    graph = import_graph()
    assert "neuralcodec.codec" in graph["neuralcodec.models.mean_scale"]  # a function-level import
    assert find_cycle({**graph, "neuralcodec.codec": graph["neuralcodec.codec"] | {"neuralcodec.api"}})


def test_the_runtime_never_imports_training_benchmarks_or_tools():
    # Only ``ncodec train`` hands over to the training code (the train extra).
    allowed = {"neuralcodec.cli": {"neuralcodec.training.train"}}
    for name, targets in import_graph().items():
        if not name.startswith("neuralcodec.training"):
            training = {t for t in targets if t.startswith("neuralcodec.training")}
            assert training <= allowed.get(name, set()), name
    for path in module_names().values():
        if "training" not in path.parts:
            text = path.read_text()
            assert "import benchmarks" not in text and "from benchmarks" not in text, path
            assert "from tools" not in text and "import compressai" not in text, path
