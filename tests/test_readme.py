"""The README's runnable Python examples run, and give the values their comments show."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parent.parent / "README.md"
EXPECTED = re.compile(r"#.*?(tensor\(.*\))\s*$")


def _runnable_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    # blocks with elisions (``...``) are sketches of user code, not runnable
    return [block for block in blocks if "..." not in block and "tensor(" in block]


def _shown(value: object) -> str:
    with torch.no_grad():
        return repr(value).replace("\n", "")


def test_readme_example_values() -> None:
    """Run each runnable block on its own (a reader may copy any one of them), checking the values shown."""
    blocks = _runnable_blocks()
    assert len(blocks) >= 3
    checked = 0
    for block in blocks:
        namespace: dict[str, object] = {}
        lines = block.splitlines()
        for stmt in ast.parse(block).body:
            match = EXPECTED.search(lines[stmt.end_lineno - 1])
            if isinstance(stmt, ast.Expr) and match:
                value = eval(compile(ast.Expression(stmt.value), "<readme>", "eval"), namespace)
                shown = re.sub(r"\s+", "", _shown(value))
                source = ast.get_source_segment(block, stmt)
                assert re.sub(r"\s+", "", match.group(1)) in shown, f"README: {source!r} gives {shown}"
                checked += 1
            else:
                exec(compile(ast.Module([stmt], type_ignores=[]), "<readme>", "exec"), namespace)
    assert checked >= 5
