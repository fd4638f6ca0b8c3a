"""One logger convention in the package and in training/: ``LOGGER = logging.getLogger(__name__)``.

Read from the sources with :mod:`ast`. A module that also runs as a script (``python -m
training.x``, where ``__name__`` is ``"__main__"``) may name itself: the string must then
be its own dotted name. Loggers made inside functions (third-party loggers quietened,
TensorRT's adapter, the CLI's program logger) are not module loggers and pass; calls on the
root logger (``logging.info(...)``) do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("anomaly_seg_ros", "training")
ROOT_LOGGER_CALLS = {"debug", "info", "warning", "error", "exception", "critical", "log"}


def _sources() -> list[Path]:
    return sorted(path for root in ROOTS for path in (REPO / root).rglob("*.py"))


def _is_get_logger(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "getLogger"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "logging"
    )


def _runs_as_script(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body
    )


def convention_problems(path: Path) -> list[str]:
    """What in ``path`` breaks the logger convention, one line per place."""
    tree = ast.parse(path.read_text(), filename=str(path))
    module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
    where = path.relative_to(REPO)
    problems = []
    for node in tree.body:
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if value is None or not _is_get_logger(value):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [target.id for target in targets if isinstance(target, ast.Name)]
        if names != ["LOGGER"]:
            problems.append(f"{where}:{node.lineno}: module logger named {names}, not LOGGER")
        argument = ast.unparse(value.args[0]) if value.args else "<root>"
        allowed = {"__name__", repr(module)} if _runs_as_script(tree) else {"__name__"}
        if argument not in allowed:
            problems.append(
                f"{where}:{node.lineno}: getLogger({argument}); use __name__"
                + (
                    f" (or {module!r}: the module runs as __main__)"
                    if _runs_as_script(tree)
                    else ""
                )
            )
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ROOT_LOGGER_CALLS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "logging"
        ):
            problems.append(
                f"{where}:{node.lineno}: logging.{node.func.attr}() on the root logger"
            )
    return problems


def test_one_logger_convention():
    sources = _sources()
    assert len(sources) > 100, "the walk found too few sources"
    problems = [problem for path in sources for problem in convention_problems(path)]
    assert not problems, "\n".join(problems)


def test_the_check_catches_the_old_conventions(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    package = tmp_path / "anomaly_seg_ros"
    package.mkdir()
    bad = package / "old.py"
    bad.write_text(
        "import logging\n_LOG = logging.getLogger(__name__)\n"
        'LOGGER = logging.getLogger("training")\nlogging.info("root")\n'
    )
    problems = convention_problems(bad)
    assert len(problems) == 3, problems
    assert "named ['_LOG']" in problems[0] and "getLogger('training')" in problems[1]
    assert "root logger" in problems[2]
