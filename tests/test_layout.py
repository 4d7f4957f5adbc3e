"""The package's folders are the stages of a pass, and imports run one way: from the command
line towards the domain (docs/architecture.md). Checked on the source, every import counted,
at module level or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gardener"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "text", "folding", "model", "paths"),
    ("library",),
    ("shortlist",),
    ("endpoint",),
    ("local",),
    ("propose",),
    ("graph",),
    ("steps",),
    ("pipeline",),
    ("pipeline.prefect",),
    ("review",),
    ("config",),
    ("cli", "testing", "__main__", "__init__"),
)
"""Lowest first: a module may import its own layer's and lower layers' modules only."""

BASE_ORDER = ("errors", "text", "folding", "model", "paths")
"""Within the base layer, the same rule in this order (no cycles among them)."""

PREFECT_FREE = ("library", "shortlist", "endpoint", "local", "propose", "graph", "steps",
                "errors", "text", "folding", "model", "paths")
"""Stages that never import Prefect: the pass runs without it."""

MAX_LINES = 500


def _stage(module: str) -> str:
    """``gardener.pipeline.prefect.serve`` -> ``pipeline.prefect``; ``gardener.model`` ->
    ``model``."""
    parts = module.split(".")[1:]
    if parts[:2] == ["pipeline", "prefect"]:
        return "pipeline.prefect"
    return parts[0] if parts else "__init__"


def _layer(stage: str) -> int:
    for i, layer in enumerate(LAYERS):
        if stage in layer:
            return i
    raise AssertionError(f"{stage} belongs to no layer: add it to LAYERS")


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            # ``from gardener.x import y`` where y is a module counts as importing x.y
            found.extend((node.lineno, f"{name}.{a.name}") for a in node.names)
    return found


def _violations() -> list[str]:
    modules = _modules()
    out: list[str] = []
    for module, path in modules.items():
        stage = _stage(module)
        mine = _layer(stage)
        for line, name in _imports(path, module):
            if name.split(".")[0] == "prefect" and stage in PREFECT_FREE:
                out.append(f"{path}:{line}: {module} imports Prefect")
            if not name.startswith("gardener.") or name not in modules:
                continue
            other = _stage(name)
            theirs = _layer(other)
            if theirs > mine or (mine == 0 and other != stage
                                 and BASE_ORDER.index(other) > BASE_ORDER.index(stage)):
                out.append(f"{path}:{line}: {module} ({stage}) imports {name} ({other})")
    return out


def test_imports_run_from_the_command_line_towards_the_domain() -> None:
    assert _violations() == []


def test_the_product_never_imports_the_test_doubles() -> None:
    """``gardener.testing`` (the fakes the suite and the benchmarks share) is not in the
    wheel: nothing else in the package may import it."""
    found = [f"{path}:{line}: {module} imports {name}"
             for module, path in _modules().items() if _stage(module) != "testing"
             for line, name in _imports(path, module)
             if name == "gardener.testing" or name.startswith("gardener.testing.")]
    assert found == []


def test_every_stage_has_a_docstring_saying_what_it_takes_and_gives() -> None:
    for folder in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()):
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
        assert doc and len(doc.split()) >= 8, f"{folder}/__init__.py says nothing"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_no_module_is_over_500_lines(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{path}: {lines} lines; one concept a module"
