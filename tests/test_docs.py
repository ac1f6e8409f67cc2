"""The README documents every setting, exactly as the Settings model declares it."""

from __future__ import annotations

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
