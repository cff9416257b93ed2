"""Process entry points for the DuckLake backend tests (spawned: importable, picklable arguments)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def write_new_reports(url: str, connection_id: str, pages: int, rows: int, barrier: Any, results: Any) -> None:
    """Commit `pages` pages of new reports of one connection through `Warehouse.write_page`, each
    with its checkpoint; puts (connection_id, pages committed, error or None) on `results`."""
    from tests.warehouse.whelpers import REPORTS, batch, page, rec
    from warehouse.loader import Warehouse

    done, error = 0, None
    try:
        wh = Warehouse(url, purpose=f"test writer {connection_id}")
        wh.ensure_tables([REPORTS])
        barrier.wait(timeout=120)
        for p in range(pages):
            records = [rec(f"{connection_id}-{p}-{i}") for i in range(rows)]
            wh.write_page(page([batch(records)], conn=connection_id, attempt=f"a-{connection_id}",
                               checkpoint={"page": p + 1}))
            done += 1
    except Exception as exc:  # reported to the test, which fails naming it
        error = f"{type(exc).__name__}: {exc}"
    results.put((connection_id, done, error))


Outcome = tuple[str, str, str | None]  # (sync, status, error)


def _sync_when_ready(url: str, integration: str, connection_id: str, syncs: list[str], barrier: Any,
                     rounds: int = 1) -> Iterator[list[Outcome]]:
    """Per round: wait for everyone at `barrier`, then run `syncs` of one connection into the lake, as
    a worker process would (the store comes from the environment); a crash is an outcome too."""
    from connections.store import open_store
    from integrations.engine.sync_runner import run_sync
    from warehouse.loader import Warehouse

    store = wh = None
    for _ in range(rounds):
        outcomes: list[Outcome] = []
        try:
            if wh is None:
                store, wh = open_store(), Warehouse(url, purpose=f"test sync {connection_id}")
            barrier.wait(timeout=120)
            for sync in syncs:
                result = run_sync(integration, connection_id, sync, warehouse=wh, store=store)
                outcomes.append((sync, result.status.value, result.error))
        except Exception as exc:  # reported to the test, which fails naming it
            outcomes.append(("-", "crashed", f"{type(exc).__name__}: {exc}"))
        yield outcomes


def sync_connection(url: str, integration: str, connection_id: str, syncs: list[str], barrier: Any,
                    results: Any) -> None:
    """Run `syncs` of one connection into the lake; puts (connection_id, [(sync, status, error)]) on `results`."""
    for outcomes in _sync_when_ready(url, integration, connection_id, syncs, barrier):
        results.put((connection_id, outcomes))


def sync_rounds(url: str, integration: str, connection_id: str, syncs: list[str], rounds: int, barrier: Any,
                results: Any) -> None:
    """`rounds` times, each starting when everyone is at `barrier`: run `syncs` of one connection into
    the lake; puts (connection_id, round, [(sync, status, error)]) on `results` after each."""
    for n, outcomes in enumerate(_sync_when_ready(url, integration, connection_id, syncs, barrier, rounds)):
        results.put((connection_id, n, outcomes))
