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

from uuid import UUID

from flows.deploy import ensure_process_pool
from flows.deployments import REPO_ROOT
from flows.serve import runner_deployments

POOL = "screensync-cluster"


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
    """The automation that marks a Running flow run Crashed when its heartbeats stop (flows/zombies.py)."""
    from flows.zombies import ensure_zombie_automation

    return ensure_zombie_automation(zombie_after_s)
