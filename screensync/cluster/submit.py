"""How the cluster's syncs become flow runs: the one place to change when the sharded dispatcher lands.

Today: each shard of `connections_per_run` connections of one integration is a flow run of that
integration's `sync-integration` deployment (`-p connections=[...]`), and the harness itself
re-submits a shard whose run crashed (`watch.py`, RESUBMIT_CRASHED). With the dispatcher (a
`sync-shard` deployment and a dispatcher flow that re-submits crashed shards), `submit_jobs` starts
the dispatcher's one run instead and RESUBMIT_CRASHED becomes False.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from screensync.cluster.config import PlannedConnection

STRATEGY = "one sync-integration flow run per shard, crashed shards re-submitted by the harness"
RESUBMIT_CRASHED = True
MAX_ATTEMPTS = 3
TAG = "screensync-cluster"


@dataclass
class Job:
    """A shard of connections and every flow run it took (the last one is the current attempt)."""

    integration: str
    connection_ids: list[str]
    runs: list[UUID] = field(default_factory=list)

    @property
    def name(self) -> str:
        first, last = self.connection_ids[0], self.connection_ids[-1]
        return first if first == last else f"{first}..{last}"


def plan_jobs(planned: list[PlannedConnection], per_run: int) -> list[Job]:
    by_integration: dict[str, list[str]] = {}
    for c in planned:
        by_integration.setdefault(c.integration, []).append(c.connection_id)
    return [
        Job(integration, ids[i : i + per_run])
        for integration, ids in by_integration.items()
        for i in range(0, len(ids), per_run)
    ]


def submit(client: Any, deployments: dict[str, UUID], job: Job) -> UUID:
    """Create the job's next flow run (Scheduled now; a worker of the pool picks it up)."""
    attempt = len(job.runs) + 1
    run = client.create_flow_run_from_deployment(
        deployments[job.integration],
        parameters={"connections": job.connection_ids},
        name=f"sync-{job.name}" + (f"-attempt-{attempt}" if attempt > 1 else ""),
        tags=[TAG],
    )
    job.runs.append(run.id)
    return run.id


def submit_jobs(client: Any, deployments: dict[str, UUID], jobs: list[Job]) -> None:
    for job in jobs:
        submit(client, deployments, job)
