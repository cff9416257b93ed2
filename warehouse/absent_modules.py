"""DuckDB's Python client looks for pandas at every statement it runs (to scan a DataFrame named in
the SQL). Without pandas installed each look is a failed import that walks all of sys.path again:
~0.6 ms a statement, ~60 statements in a small connection's sync (bench/connection_overhead.py).
Python's own way to say "this module is not there" is `sys.modules[name] = None`: every later
import of it fails at once with ImportError, as it would have failed anyway."""

from __future__ import annotations

import importlib.util
import sys

PROBED_BY_DUCKDB = ("pandas",)


def note_absent_modules() -> None:
    """Record each module DuckDB probes for that is not installed (an installed one is left alone)."""
    for name in PROBED_BY_DUCKDB:
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.modules[name] = None  # type: ignore[assignment]
