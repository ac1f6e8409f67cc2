"""The README's settings table, from the `Settings` model (the one source of truth).

`python scripts/settings_table.py` prints it; `--write` puts it into README.md.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from pydantic.fields import FieldInfo

from r2v.settings import ModelSettings, Settings

README = Path(__file__).resolve().parent.parent / "README.md"
MARKED = re.compile(r"(<!-- settings:begin -->\n).*?(\n<!-- settings:end -->)", re.S)


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return "(empty)"
    if field.default is None:
        return "(unset)"
    return f"`{field.default}`"


def settings_table() -> str:
    rows = ["| variable | default | what it does |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        if name == "models":
            for model_field, info in ModelSettings.model_fields.items():
                variable = f"R2V_MODELS__<MODEL>__{model_field.upper()}"
                rows.append(f"| `{variable}` | {_default(info)} | {info.description} |")
            continue
        rows.append(f"| `R2V_{name.upper()}` | {_default(field)} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    if "--write" in sys.argv:
        text = README.read_text()
        README.write_text(MARKED.sub(lambda m: m.group(1) + settings_table() + m.group(2), text))
    else:
        print(settings_table())
