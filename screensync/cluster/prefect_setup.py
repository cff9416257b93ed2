"""What the cluster sets up on its Prefect server before any worker starts.

- the process work pool, with two queues: `default`, which the worker hosts serve (the `shard`
  deployment's runs), and `dispatch`, which only the services host's own worker serves (the
  `fanout-<integration>` dispatchers). A dispatcher lives as long as all its shards, and a
  dispatcher on a worker host would die with that host; on the services host it outlives any
  worker host (docs/scale-out.md, "Where the dispatcher runs");
- prefect.yaml's `fanout-<integration>` and `shard` deployments, built by the code `prefect deploy`'s
  file is generated from (flows/deployments.py), **without their schedules**: the harness starts
  each dispatcher run itself, so every run it counts is its own;
- the zombie-run automation (flows/zombies.py) with the harness's `zombie_after_s`, created before
  the first dispatcher would create it with the product's default.
"""

from __future__ import annotations

from uuid import UUID

from flows.deploy import ensure_process_pool
from flows.deployments import REPO_ROOT, SHARD_DEPLOYMENT_NAME
from flows.serve import runner_deployments

POOL = "screensync-cluster"
SHARD_QUEUE = "default"  # the pool's own queue: where prefect.yaml's `shard` deployment sends its runs
DISPATCH_QUEUE = "dispatch"  # served only by the services host's worker


def fanout_deployment_name(integration: str) -> str:
    """`flow name/deployment name` of an integration's dispatcher (prefect.yaml's naming)."""
    return f"sync-fanout/fanout-{integration}"


def _heartbeats(deployment: object, heartbeat_s: int) -> None:
    """The runs send heartbeats every `heartbeat_s` (prefect.yaml's job variables say 30)."""
    variables = dict(getattr(deployment, "job_variables", None) or {})
    variables["env"] = {**variables.get("env", {}), "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(heartbeat_s)}
    deployment.job_variables = variables  # type: ignore[attr-defined]


def deploy_fanout(integrations: list[str], heartbeat_s: int, pool: str = POOL) -> dict[str, UUID]:
    """Create the pool, the `shard` deployment (queue `default`) and each integration's
    `fanout-<integration>` (queue `dispatch`), unscheduled; integration -> dispatcher deployment id."""
    ensure_process_pool(pool)
    (shard,) = runner_deployments([SHARD_DEPLOYMENT_NAME], work_pool=pool, checkout=REPO_ROOT)
    _heartbeats(shard, heartbeat_s)
    shard.apply()
    out = {}
    for integration in integrations:
        (dispatcher,) = runner_deployments([f"fanout-{integration}"], work_pool=pool, checkout=REPO_ROOT)
        dispatcher.schedules = []
        dispatcher.work_queue_name = DISPATCH_QUEUE
        _heartbeats(dispatcher, heartbeat_s)
        out[integration] = dispatcher.apply()
    return out


def crash_zombie_runs(zombie_after_s: int) -> UUID:
    """The automation that marks a Running flow run Crashed when its heartbeats stop (flows/zombies.py)."""
    from flows.zombies import ensure_zombie_automation

    return ensure_zombie_automation(zombie_after_s)
