"""The sync runs Prefect has scheduled, for `screensync status` (None when no Prefect API answers)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class ScheduledSyncRun(BaseModel):
    """One scheduled run of a `sync-<integration>` deployment; `None` lists mean "all"."""

    integration: str
    expected_start: datetime
    syncs: list[str] | None = None
    connections: list[str] | None = None

    def covers(self, connection_id: str, sync: str, connection_active: bool) -> bool:
        """Whether this run will sync `sync` for that connection (a run for "all" skips inactive ones)."""
        if self.syncs is not None and sync not in self.syncs:
            return False
        if self.connections is None:
            return connection_active
        return connection_id in self.connections


def scheduled_sync_runs(integrations: list[str], *, timeout: float = 3.0, limit: int = 200) -> list[ScheduledSyncRun] | None:
    """Scheduled runs of the integrations' sync deployments, earliest first; None if Prefect is unreachable."""
    from flows.prefect_env import PrefectUnreachable, check_api_reachable

    try:
        check_api_reachable(timeout=timeout)
    except PrefectUnreachable:
        return None
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[f"sync-{i}" for i in integrations])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=limit,
        )
    out = []
    for run in runs:
        params = run.parameters or {}
        if run.expected_start_time is None or params.get("integration") not in integrations:
            continue
        out.append(
            ScheduledSyncRun(
                integration=params["integration"],
                expected_start=run.expected_start_time,
                syncs=params.get("syncs") or params.get("models"),
                connections=params.get("connections"),
            )
        )
    return out

