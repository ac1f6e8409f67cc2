"""The README documents every setting, exactly as the Settings model declares it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from scripts.settings_table import settings_table

ROOT = Path(__file__).resolve().parent.parent


def test_readme_settings_table_matches_the_settings_model() -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- settings:begin -->\n(.*?)\n<!-- settings:end -->", readme, re.S)
    assert found, "the README lost its settings markers"
    assert found.group(1) == settings_table(), "regenerate with: python scripts/settings_table.py"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    command = (
        "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && "
        "pip install -e '.[dev,diffusers]' && scripts/check"
    )
    assert command in readme
    assert command in (ROOT / ".ci" / "run").read_text()


def test_the_readme_python_examples_compile_and_use_only_names_they_set() -> None:
    # what a newcomer pastes must at least parse, and a name it reads must have been bound on
    # the path that reads it (the SDK example once used a result its `except` never set)
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) >= 4
    for block in blocks:
        tree = ast.parse(block)
        for handler in ast.walk(tree):
            if not isinstance(handler, ast.Try) or not handler.handlers:
                continue
            bound_in_try = {
                node.id
                for stmt in handler.body
                for node in ast.walk(stmt)
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
            }
            after = ast.Module(body=[], type_ignores=[])
            parent = next(node for node in ast.walk(tree) if handler in getattr(node, "body", []))
            body: list[ast.stmt] = parent.body  # type: ignore[attr-defined]
            after.body = body[body.index(handler) + 1 :]
            read_after = {
                node.id
                for node in ast.walk(after)
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
            }
            assert not bound_in_try & read_after, (
                f"read after a try that may not have bound them: {bound_in_try & read_after}"
            )


def test_the_readme_file_map_matches_the_tree() -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"```\nsrc/r2v/\n(.*?)```", readme, re.S)
    assert found, "the README lost its file map"
    named = set(re.findall(r"(?<![\w/.])([a-z_]+(?:\.py|/))", found.group(1)))
    package = ROOT / "src" / "r2v"
    top = {
        f"{p.name}/" if p.is_dir() else p.name
        for p in package.iterdir()
        if not p.name.startswith(("_", ".")) and (p.is_dir() or p.suffix == ".py")
    }
    assert top <= named, f"missing from the map: {sorted(top - named)}"
    for entry in named - top:  # the rest name files or folders one level down
        assert list(package.glob(f"*/{entry.rstrip('/')}")), (
            f"the map names {entry}: not in the tree"
        )
