"""A failed run never stays failed: when the saved position keeps failing, the list starts again.

A failed run keeps its checkpoint so the next run resumes after the last page it saved. But a
checkpoint can itself be the problem: a next link the provider no longer honours, or a page
count that a pagination guard will refuse from there on ("page 7 of a list that declares 300
records" fails the same way on every resume, provider fixed or not). So each failure is counted
against the checkpoint it failed from; after DISCARD_AFTER_FAILURES runs in a row failed the same
way from the same checkpoint, the next run discards it and reads the list from the start, and
its result says so. `--full-refresh` discards it at once.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

from integrations.engine.checkpoint import Checkpoint
from integrations.engine.errors import (
    EngineError,
    MalformedResponse,
    PaginationError,
    ProviderError,
    RetriesExhausted,
)
from warehouse.state import SyncState

DISCARD_AFTER_FAILURES = 3
_NUMBERS = re.compile(r"[0-9]+(\.[0-9]+)?")


def counts_against_position(exc: BaseException) -> bool:
    """Failures that depend on where the list is read from (not a revoked key or a held warehouse)."""
    return isinstance(exc, PaginationError | MalformedResponse | ProviderError | RetriesExhausted)


def failure_kind(exc: EngineError) -> str:
    """The error without its varying numbers (waits, attempts): two runs failing 'the same way'."""
    return f"{type(exc).__name__}: {_NUMBERS.sub('#', str(exc))}"


def discard_reason(state: SyncState | None, *, full_refresh: bool) -> str | None:
    """Why this run must not resume from the stored checkpoint, or None when it may."""
    if state is None or not state.checkpoint:
        return None
    if full_refresh:
        return "full refresh: the saved position was discarded and the list read from the start"
    if state.failures >= DISCARD_AFTER_FAILURES:
        return (
            f"the saved position failed {state.failures} times the same way; it was discarded"
            " and the list read from the start"
        )
    try:
        Checkpoint.from_stored(state.checkpoint)
    except ValidationError as exc:  # written by another version, or damaged: it cannot say where to resume
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return f"the saved position could not be read ({problems}); it was discarded and the list read from the start"
    return None


def failed_hint(failures: int) -> str:
    """What to do about a failure counted against the checkpoint."""
    left = DISCARD_AFTER_FAILURES - failures
    then = (
        "the next run restarts the list from the beginning"
        if left <= 0
        else f"after {DISCARD_AFTER_FAILURES} identical failures from it the list is restarted ({left} to go)"
    )
    return f"The checkpoint is kept: re-run the sync to resume from the last saved page; {then}. `--full-refresh` restarts it now."
