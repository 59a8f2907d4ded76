"""The documentation site: ``mkdocs build --strict`` passes, every public name is in the API reference, and the
examples on the site give the values their comments show."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
# the modules whose ``__all__`` is the public API
PUBLIC_MODULES = (
    "tensorbleu_metrics",
    "tensorbleu_metrics.functional",
    "tensorbleu_metrics.integrations.trl",
    "tensorbleu_metrics.integrations.transformers",
    "tensorbleu_metrics.integrations.verl",
)
EXPECTED = re.compile(r"#.*?(tensor\(.*\))\s*$")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def test_strict_build(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "api" / "functional" / "index.html").is_file()


def _anchors(name: str, module: str) -> set[str]:
    """The ids mkdocstrings may give ``module.name``: where it is exported, and where it is defined."""
    obj = getattr(importlib.import_module(module), name)
    ids = {f"{module}.{name}"}
    if inspect.ismodule(obj):
        ids.add(obj.__name__)
    elif getattr(obj, "__module__", None) and hasattr(obj, "__qualname__"):
        ids.add(f"{obj.__module__}.{obj.__qualname__}")
    return ids


def test_every_public_name_is_in_the_reference(site: Path) -> None:
    html = "\n".join(p.read_text(encoding="utf-8") for p in (site / "api").rglob("*.html"))
    documented = set(re.findall(r'id="([\w.]+)"', html))
    missing = []
    for module in PUBLIC_MODULES:
        names = importlib.import_module(module).__all__
        assert names, module
        for name in names:
            if not _anchors(name, module) & documented:
                missing.append(f"{module}.{name}")
    assert not missing, f"public names missing from docs/api/: {missing}"


def _runnable_blocks(page: Path) -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)
    # blocks with elisions (``...``) are sketches of user code, not runnable
    return [block for block in blocks if "..." not in block and "tensor(" in block]


PAGES_WITH_EXAMPLES = [page for page in sorted(DOCS.rglob("*.md")) if _runnable_blocks(page)]


def test_metric_pages_have_examples() -> None:
    assert {p.name for p in PAGES_WITH_EXAMPLES} >= {"bleu.md", "gleu.md", "diversity.md", "rouge.md", "chrf.md"}


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_examples(page: Path) -> None:
    """Each Python block with ``tensor(...)`` values runs on its own and gives the values its comments show."""
    for block in _runnable_blocks(page):
        namespace: dict[str, object] = {}
        lines = block.splitlines()
        checked = 0
        for stmt in ast.parse(block).body:
            match = EXPECTED.search(lines[stmt.end_lineno - 1])
            if isinstance(stmt, ast.Expr) and match:
                value = eval(compile(ast.Expression(stmt.value), str(page), "eval"), namespace)
                with torch.no_grad():
                    shown = re.sub(r"\s+", "", repr(value))
                source = ast.get_source_segment(block, stmt)
                assert re.sub(r"\s+", "", match.group(1)) in shown, f"{page.name}: {source!r} gives {shown}"
                checked += 1
            else:
                exec(compile(ast.Module([stmt], type_ignores=[]), str(page), "exec"), namespace)
        assert checked, f"{page.name}: a block shows tensor values in no checked comment"
