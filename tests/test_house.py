"""Rules of the house that import-linter cannot see (its contracts in pyproject.toml cover imports)."""

from __future__ import annotations

import ast
from pathlib import Path

HANDLERS = Path(__file__).resolve().parent.parent / "handlers"


def test_handlers_call_core_services_never_the_store_or_the_kimi_client():
    reaching_past = []
    for path in sorted(HANDLERS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in {"store", "kimi"}:
                reaching_past.append(f"{path.relative_to(HANDLERS.parent)}:{node.lineno} .{node.attr}")
    assert reaching_past == []


OURS = ("bot", "handlers", "storage", "composition_root")


def _names(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return [alias.name for alias in node.names]


def test_no_import_of_our_own_modules_hides_inside_a_function():
    """Such an import hides a dependency, often a cycle (documents <-> groups was one). Heavy or
    optional libraries (matplotlib, asyncpg) may still be imported where they are used."""
    hidden = []
    for package in OURS:
        for path in sorted((HANDLERS.parent / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom) and any(
                        name.split(".")[0] in OURS for name in _names(inner)
                    ):
                        hidden.append(f"{path.relative_to(HANDLERS.parent)}:{inner.lineno}")
    assert hidden == []
