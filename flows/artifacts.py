"""Run summaries as Prefect artifacts: what an operator reads first on a flow run's page."""

from __future__ import annotations

import re
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from integrations.engine.results import RunStatus, SyncResult

COUNT_COLUMNS = ("added", "updated", "deleted", "gone", "unchanged", "rejected", "owed")


def artifact_key(*parts: str) -> str:
    """Prefect keys allow lowercase letters, digits and dashes only."""
    key = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower())
    return re.sub(r"-{2,}", "-", key).strip("-")


def sync_table_rows(results: list[SyncResult]) -> list[dict[str, Any]]:
    return [
        {
            "connection": r.connection_id,
            "sync": r.sync,
            "model": r.model,
            "status": r.status.value,
            **{c: getattr(r, c) for c in COUNT_COLUMNS},
            "requests": r.requests,
            "duration_s": r.duration_s,
        }
        for r in results
    ]


def failures_markdown(integration: str, results: list[SyncResult]) -> str:
    lines = [f"# {integration}: syncs that did not succeed", ""]
    for r in results:
        if r.status == RunStatus.SUCCESS:
            continue
        if r.status == RunStatus.PARTIAL:  # finished; some records quarantined and owed
            lines += [
                f"## `{r.connection_id}` / `{r.sync}` — partial",
                "",
                f"- **quarantined:** {r.rejected} this run, {r.owed} still owed",
                f"- **what to do:** {r.hint}",
                "",
            ]
            continue
        lines += [
            f"## `{r.connection_id}` / `{r.sync}` — {r.status.value}",
            "",
            f"- **error:** {r.error or 'no message'}",
            f"- **what to do:** {r.hint or 'check the task logs'}",
            f"- **re-run just this one:** `screensync sync {integration} -c {r.connection_id} -s {r.sync}`"
            " or run the deployment with `connections` and `syncs` set.",
            "",
        ]
    return "\n".join(lines)


def publish_sync_artifacts(integration: str, results: list[SyncResult], *, kind: str = "sync") -> None:
    """`kind` keys them apart: `sync-<integration>` for sync-integration, `fanout-`/`shard-` for a
    fan-out's dispatcher and its shards, so each key's latest artifact stays one kind of run."""
    create_table_artifact(
        table=sync_table_rows(results),
        key=artifact_key(kind, integration),
        description=f"{integration}: per-connection, per-model counts, status and duration",
    )
    if any(r.status != RunStatus.SUCCESS for r in results):
        create_markdown_artifact(
            markdown=failures_markdown(integration, results),
            key=artifact_key(kind, integration, "failures"),
            description=f"{integration}: failed or partial syncs with the error and what to do",
        )


def publish_action_artifact(record: Any) -> None:
    """A table of what one action did (its input and output already have secrets redacted)."""
    row = {
        "integration": record.integration,
        "connection": record.connection_id,
        "action": record.action,
        "status": record.status,
        "request": f"{record.method} {record.endpoint}",
        "idempotency_key": record.idempotency_key or "",
        "duration_s": record.duration_s,
        "input": str(record.input),
        "output": str(record.output) if record.output is not None else "",
        "error": record.error or "",
    }
    create_table_artifact(
        table=[row],
        key=artifact_key("action", record.integration, record.action),
        description=f"{record.integration} action {record.action} on {record.connection_id}",
    )
