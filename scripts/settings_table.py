"""The README's settings table, from the `Settings` model (the one source of truth).

`python scripts/settings_table.py` prints it; `--write` puts it into README.md.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from r2v.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"
MARKED = re.compile(r"(<!-- settings:begin -->\n).*?(\n<!-- settings:end -->)", re.S)


def settings_table() -> str:
    rows = ["| variable | default | what it does |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            default = "(empty)"
        elif field.default is None:
            default = "(unset)"
        else:
            default = f"`{field.default}`"
        rows.append(f"| `R2V_{name.upper()}` | {default} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    if "--write" in sys.argv:
        text = README.read_text()
        README.write_text(MARKED.sub(lambda m: m.group(1) + settings_table() + m.group(2), text))
    else:
        print(settings_table())
