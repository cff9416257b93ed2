"""Retrying a write transaction that lost to a concurrent writer (DuckLake), and saying so safely.

DuckLake is optimistic: nothing blocks, and a transaction is checked against every commit made
since its snapshot when it COMMITs (docs/scale-out-notes.md). A failed commit wrote nothing and
ended the transaction, so the cure is to run the whole transaction again, re-reading the tables
(the diff is then against what the other writer committed), after a jittered pause. The embedded
file never raises these: its writers take turns (warehouse/access.py).

A DuckLake commit error goes on with the whole commit SQL, inlined rows and all (ids, emails,
hex-encoded records): only its first two lines may reach a log, a run's error or Prefect.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from collections.abc import Callable
from typing import TypeVar

import duckdb

from warehouse.connection import WarehouseError

log = logging.getLogger("screensync.warehouse")

T = TypeVar("T")

CONFLICT = "Transaction conflict"
RETRIES_EXHAUSTED = "Exceeded the maximum retry count"
# A transaction that met another writer this many times in a row fails its run (the checkpoint stays;
# the next run resumes). Measured: 4 writers whose every page UPDATEd one shared table needed up to
# 21 attempts (docs/scale-out-notes.md); with the backoff below 60 attempts is roughly a minute.
MAX_ATTEMPTS = int(os.environ.get("SCREENSYNC_WAREHOUSE_ATTEMPTS", "60"))
BASE_DELAY_S = 0.02
MAX_DELAY_S = 1.0


class WarehouseConflict(WarehouseError):
    """A write kept conflicting with other writers' commits; nothing of it was written."""


def is_conflict(exc: BaseException) -> bool:
    """A commit that did not happen because another writer committed first: retry it whole."""
    if not isinstance(exc, duckdb.TransactionException):
        return False
    text = str(exc)
    return CONFLICT in text or RETRIES_EXHAUSTED in text


def short_error(exc: BaseException | str, lines: int = 2) -> str:
    """The first `lines` lines of a DuckDB error: DuckLake's commit errors carry the rows after them."""
    text = str(exc)
    kept = text.splitlines()[:lines]
    short = "\n".join(kept)
    return short + (" [...]" if len(text) > len(short) else "")


def rollback_quietly(con: duckdb.DuckDBPyConnection) -> None:
    """ROLLBACK what is open; a failed COMMIT has already ended the transaction (nothing to roll back)."""
    with contextlib.suppress(duckdb.TransactionException):
        con.execute("ROLLBACK")


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt `attempt + 1`: full jitter over 20 ms doubling, capped at 1 s."""
    return random.uniform(0, min(MAX_DELAY_S, BASE_DELAY_S * 2 ** min(attempt, 10)))


def retrying(work: Callable[[], T], *, what: str, attempts: int | None = None,
             sleep: Callable[[float], None] = time.sleep) -> T:
    """`work()` (one whole transaction) until it commits, retrying only conflicts; after `attempts`
    a WarehouseConflict naming `what` (nothing of the last attempt was written)."""
    bound = MAX_ATTEMPTS if attempts is None else attempts
    for n in range(1, bound + 1):
        try:
            return work()
        except duckdb.Error as exc:
            if not is_conflict(exc):
                raise
            if n == bound:
                raise WarehouseConflict(
                    f"could not write {what}: {n} attempts in a row conflicted with other writers' commits "
                    f"(last: {short_error(exc).splitlines()[-1]}); nothing of it was written"
                ) from None
            log.debug("%s: commit conflicted with another writer (attempt %d), retrying", what, n)
            sleep(backoff(n))
    raise AssertionError("unreachable")
