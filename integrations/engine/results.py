"""What one sync run reports: counts, activity and a status that never hides an interruption
or a quarantined record (`partial`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, field_validator

from integrations.engine.auth import redact_text
from warehouse.state import FINISHED, RunStatus

__all__ = ["RunStatus", "SyncResult"]


class SyncResult(BaseModel):
    run_id: str
    integration: str
    connection_id: str
    sync: str
    model: str
    mode: str
    status: RunStatus
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    rejected: int = 0  # quarantined by this run (`_screensync.rejected_records`)
    owed: int = 0  # quarantined records of this sync still waiting to land (`screensync rejects list`)
    refetched: int = 0  # owed records that landed by being fetched again by id
    referenced: int = 0  # records other records name (`references:`) that were missing, fetched by id
    gone: int = 0  # records the provider answered 404/410 for when fetched by id: marked deleted, never asked again
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0  # 429 answers seen (pacing should keep this at zero)
    pages: int = 0
    resumed: bool = False
    started_at: datetime
    finished_at: datetime
    duration_s: float
    error: str | None = None
    hint: str | None = None  # what an operator should do about `error`
    checkpoint_discarded: str | None = None  # why the run restarted the list instead of resuming

    @field_validator("error")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        """Provider words end up here (and in sync_runs, Prefect, the CLI): never a credential."""
        return redact_text(value) if value else value

    @property
    def ok(self) -> bool:
        """The run finished: `success`, or `partial` (what could land did; the rest is owed)."""
        return self.status in FINISHED
