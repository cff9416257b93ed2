"""What the demo prints: numbered steps, waits with a spinner, the sync summaries and what landed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

# wide enough for the summary tables when output is piped (CI logs, `| tee`)
console = Console(width=None if Console().is_terminal else 130)
PROGRESS_LINE_EVERY_S = 15.0
SUMMARY_COLUMNS = ("connection", "sync", "status", "added", "updated", "deleted", "unchanged", "rejected",
                   "requests", "seconds")  # fmt: skip
STATUS_COLOURS = {"success": "green", "failed": "red", "interrupted": "yellow"}


class Steps:
    """Numbered progress lines with elapsed time, so a user sees where the demo is."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.n = 0

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        self.n += 1
        console.print(f"[bold cyan][{self.n}][/] {text} ...")
        start = time.monotonic()
        yield
        console.print(f"    [green]done[/] in {time.monotonic() - start:.1f}s (total {time.monotonic() - self.t0:.0f}s)")


@contextmanager
def waiting(text: str) -> Iterator[Callable[[str], None]]:
    """Yields `update(detail)`: a spinner on a terminal, a progress line every 15 s in a log."""
    if console.is_terminal:
        with console.status(f"{text} ...") as status:
            yield lambda detail: status.update(f"{text} ... {detail}")
        return
    last = time.monotonic()

    def update(detail: str) -> None:
        nonlocal last
        if time.monotonic() - last >= PROGRESS_LINE_EVERY_S:
            console.print(f"    {text} ... {detail}")
            last = time.monotonic()

    yield update


def summary_table(rows: list[dict[str, Any]], title: str) -> Table:
    """The per-(connection, sync) rows a sync run publishes as its table artifact."""
    table = Table(title=title)
    for col in SUMMARY_COLUMNS:
        table.add_column(col, justify="left" if col in {"connection", "sync", "status"} else "right")
    for r in rows:
        status = str(r["status"])
        counts = [str(r[c]) for c in ("added", "updated", "deleted", "unchanged", "rejected", "requests")]
        table.add_row(r["connection"], r["sync"], f"[{STATUS_COLOURS.get(status, 'yellow')}]{status}[/]", *counts,
                      f"{float(r['duration_s']):.1f}")
    return table


def print_warehouse(path: Path) -> None:
    from warehouse.query import run_query

    _, tables = run_query(
        path,
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name NOT IN ('_screensync') "
        "AND table_name NOT LIKE '%_superseded' ORDER BY 1, 2",
        limit=1000,
    )
    table = Table(title="rows per table (current, not deleted)")
    for col in ("table", "rows", "deleted", "history versions"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for schema, name in tables:
        _, ((live, deleted),) = run_query(
            path, f'SELECT count(*) FILTER (_deleted_at IS NULL), count(*) FILTER (_deleted_at IS NOT NULL) '
                  f'FROM "{schema}"."{name}"')
        _, ((versions,),) = run_query(path, f'SELECT count(*) FROM "{schema}"."{name}_history"')
        table.add_row(f"{schema}.{name}", str(live), str(deleted), str(versions))
    console.print(table)

    sql = ("SELECT provider, status, count(*) AS checks, round(avg(turnaround_hours), 1) AS avg_turnaround_h "
           "FROM unified.background_checks GROUP BY ALL ORDER BY provider, checks DESC")
    columns, rows = run_query(path, sql, limit=50)
    sample = Table(title=f"unified.background_checks: {sql}")
    for c in columns:
        sample.add_column(c)
    for row in rows:
        sample.add_row(*("" if v is None else str(v) for v in row))
    console.print(sample)


def webhook_summary(store: Any) -> str:
    from collections import Counter

    counts = Counter(e["status"] for e in store.events())
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
