"""Deployment runs started from a script (the demo): trigger them, wait for a worker to finish them,
and read back the summary table each sync run publishes (the artifact an operator sees in the UI)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

from flows.artifacts import artifact_key

SYNC_FLOW = "sync-integration"


def trigger_sync(integration: str, parameters: dict[str, Any] | None = None) -> Any:
    """Create a run of `sync-<integration>` for a worker to pick up; returns the FlowRun at once.

    With an idempotency key: on a loaded machine the client may time out and retry the request,
    and without one the server would create a second run.
    """
    from prefect.deployments import run_deployment

    return run_deployment(
        f"{SYNC_FLOW}/sync-{integration}",
        parameters=parameters or {},
        timeout=0,
        as_subflow=False,
        idempotency_key=f"screensync-{integration}-{uuid4()}",
    )


def wait_for_runs(
    run_ids: list[UUID],
    *,
    timeout: float,
    on_wait: Callable[[dict[UUID, Any], float], None] | None = None,
    poll_seconds: float = 1.0,
) -> dict[UUID, Any]:
    """Poll until every run is in a final state; TimeoutError naming the unfinished ones otherwise.

    `on_wait(runs, elapsed)` is called between polls (progress display, checking the worker is alive).
    """
    from prefect.client.orchestration import get_client

    started = time.monotonic()
    with get_client(sync_client=True) as client:
        while True:
            runs = {run_id: client.read_flow_run(run_id) for run_id in run_ids}
            if all(r.state is not None and r.state.is_final() for r in runs.values()):
                return runs
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                pending = ", ".join(f"{r.name} ({r.state.name if r.state else 'no state'})" for r in runs.values())
                raise TimeoutError(f"flow runs not finished after {timeout:.0f}s: {pending}")
            if on_wait is not None:
                on_wait(runs, elapsed)
            time.sleep(poll_seconds)


def sync_summary_rows(flow_run_id: UUID, integration: str) -> list[dict[str, Any]]:
    """The rows of the run's `sync-<integration>` table artifact (empty if the run published none)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
                key=ArtifactFilterKey(any_=[artifact_key("sync", integration)]),
            )
        )
    if not artifacts:
        return []
    data = artifacts[0].data
    return data if isinstance(data, list) else json.loads(data)
