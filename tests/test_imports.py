"""The package's import graph: no cycles, and imports run one way along the pipeline.

Every ``import`` of a ``tracker`` module counts, also those inside functions (a lazy import is still a
dependency). The stage order is video -> detect -> track -> reid -> associate -> store ->
export/annotate/evaluate -> view; shared leaves (types, config, geometry, ...) come first, the scheduler after
the camera stage, the pipeline and the command-line tools last.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tracker"

# rank of each module (or package) in the pipeline: a module may only import modules of a lower or equal rank
RANKS = {
    "tracker._version": 0,
    "tracker.errors": 0,
    "tracker.env": 1,
    "tracker.fsutil": 1,
    "tracker.geometry": 1,
    "tracker.config": 2,
    "tracker.types": 2,
    "tracker.mot": 3,
    "tracker.calibration": 3,
    "tracker.video": 4,
    "tracker.detect": 5,
    "tracker.track": 6,
    "tracker.reid": 7,
    "tracker.chunking": 8,
    "tracker.camera": 9,
    "tracker.cache": 10,
    "tracker.executor": 11,
    "tracker.network": 12,
    "tracker.association": 12,
    "tracker.store": 13,
    "tracker.export": 14,
    "tracker.annotate": 14,
    "tracker.evaluate": 14,
    "tracker.search": 15,
    "tracker.review": 15,
    "tracker.synthetic": 16,
    "tracker.pipeline": 17,
    "tracker.cli": 18,
    "tracker.view": 18,
    "tracker.__main__": 19,
    "tracker": 20,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The ``tracker`` modules ``path`` imports anywhere in it (``from tracker import env`` is
    tracker.env)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importing module's package, up level - 1 packages
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return {m for m in found if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, name, known) for name, path in modules.items()}


def _rank(module: str) -> int:
    while module not in RANKS:
        module = module.rpartition(".")[0]
    return RANKS[module]


def test_every_module_has_a_place_in_the_pipeline_order():
    for name in _modules():
        _rank(name)  # KeyError for a module no rank covers


def test_no_import_cycle_in_the_package():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_imports_run_one_way_along_the_pipeline():
    wrong = [
        f"{a} (rank {_rank(a)}) imports {b} (rank {_rank(b)})"
        for a, deps in sorted(_graph().items())
        for b in sorted(deps)
        if _rank(b) > _rank(a)
    ]
    assert not wrong, "\n".join(wrong)


def test_scheduler_builds_no_detector_or_tracker():
    """executor.py schedules units of work; building the stages is the camera stage's business."""
    graph = _graph()
    assert not graph["tracker.executor"] & {"tracker.detect", "tracker.track", "tracker.reid"}
    text = (PACKAGE / "executor.py").read_text()
    assert "build_detector" not in text and "CameraTracker" not in text


def test_the_checker_sees_a_cycle(tmp_path):
    """The cycle check itself: a lazy import inside a function counts."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("def f():\n    from tracker.b import g\n")
    b.write_text("from tracker import a\n")
    known = {"tracker.a", "tracker.b"}
    assert _imports(a, "tracker.a", known) == {"tracker.b"}
    assert _imports(b, "tracker.b", known) == {"tracker.a"}
