"""What the cluster sets up on its Prefect server before any worker starts.

- the process work pool the workers serve;
- the sync deployments of prefect.yaml **without their schedules** (the harness triggers every run
  itself, so the counts it reports are its own runs, not a schedule's);
- the zombie-run automation of Prefect's docs ("detect zombie flows"): a flow run whose heartbeats
  stop (its worker host died) is marked Crashed `zombie_after_s` after its last heartbeat. Flow-run
  processes send heartbeats every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds (workers pass it on).
  Belongs in flows/automations.py once the dispatcher relies on it too.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from flows.deploy import ensure_process_pool
from flows.deployments import REPO_ROOT
from flows.serve import runner_deployments

POOL = "screensync-cluster"
ZOMBIE_AUTOMATION = "screensync cluster: crash zombie flow runs"
ZOMBIE_MESSAGE = "no heartbeat: its worker host is gone (marked Crashed by the zombie-run automation)"


def sync_deployment_name(integration: str) -> str:
    """`flow name/deployment name` of an integration's sync deployment (prefect.yaml's naming)."""
    return f"sync-integration/sync-{integration}"


def deploy_syncs(integrations: list[str], pool: str = POOL) -> dict[str, UUID]:
    """Create the pool and each integration's sync deployment on it, unscheduled; integration -> deployment id."""
    ensure_process_pool(pool)
    out = {}
    for integration in integrations:
        (deployment,) = runner_deployments([f"sync-{integration}"], work_pool=pool, checkout=REPO_ROOT)
        deployment.schedules = []
        out[integration] = deployment.apply()
    return out


def crash_zombie_runs(zombie_after_s: int) -> UUID:
    """The automation that marks a Running flow run Crashed when its heartbeats stop."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    automation = Automation(
        name=ZOMBIE_AUTOMATION,
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=zombie_after_s),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, message=ZOMBIE_MESSAGE)],
    ).create()
    assert automation.id is not None
    return automation.id
