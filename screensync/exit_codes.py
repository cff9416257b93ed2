"""Exit codes of `screensync sync` and `screensync rejects retry` (documented in docs/operations.md).

When runs end differently, the most serious outcome decides: FAILED, then INTERRUPTED, then PARTIAL.
"""

from __future__ import annotations

from collections.abc import Iterable

from integrations.engine.results import RunStatus, SyncResult

OK = 0  # every run succeeded
FAILED = 1  # a run failed (the provider, a revoked key, ...): its checkpoint is kept, re-run to resume
USAGE = 2  # bad arguments: an unknown integration, sync or connection
PARTIAL = 3  # every run finished, but records were quarantined or are still owed (`screensync rejects list`)
INTERRUPTED = 4  # the warehouse is held by another process (another sync, a notebook), or a run stopped part-way
CONFIG = 5  # the connection store cannot be read: no encryption key, or the wrong one

_BY_STATUS = {
    RunStatus.SUCCESS: OK,
    RunStatus.PARTIAL: PARTIAL,
    RunStatus.INTERRUPTED: INTERRUPTED,
    RunStatus.RUNNING: INTERRUPTED,
    RunStatus.FAILED: FAILED,
}
_SEVERITY = [OK, PARTIAL, INTERRUPTED, FAILED]


def for_results(results: Iterable[SyncResult]) -> int:
    codes = [_BY_STATUS[r.status] for r in results]
    return max(codes, key=_SEVERITY.index, default=OK)
