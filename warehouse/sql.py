"""SQL text helpers for the hot path.

DuckDB's Python client tries `import pandas` on every parameterised `execute` (about 0.3 ms
each when pandas is absent), which dominated a 100-row page. The per-page statements
therefore inline their few string values as quoted literals, which also lets several
statements go in one `execute` call.
"""

from __future__ import annotations

from typing import Any


def lit(value: Any) -> str:
    """A SQL string literal (or NULL); single quotes doubled, so any text is safe."""
    if value is None:
        return "NULL"
    text = str(value)
    if "\x00" in text:
        raise ValueError("text with a NUL character cannot be stored")
    return "'" + text.replace("'", "''") + "'"
