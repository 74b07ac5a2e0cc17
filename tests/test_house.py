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
