"""How the cluster's syncs become flow runs: one `fanout-<integration>` dispatcher run per integration.

Each dispatcher (flows/fanout.py, the product's own path) cuts its connections into shards of
`connections_per_run`, starts one `sync-shard` run per shard on the worker hosts' queue, and starts
a shard again when its run ends Crashed (its host died: the zombie automation saw its heartbeats
stop). The harness only starts the dispatchers and waits for them (watch.py); it re-submits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from flows.fanout import DEFAULT_MAX_ATTEMPTS
from screensync.cluster.config import PlannedConnection

STRATEGY = "one fanout-<integration> dispatcher run per integration (services host); its sync-shard runs on the worker hosts"
TAG = "screensync-cluster"


@dataclass
class Dispatch:
    """One integration's dispatcher run and the connections it was given."""

    integration: str
    connection_ids: list[str]
    run_id: UUID


def by_integration(planned: list[PlannedConnection]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in planned:
        out.setdefault(c.integration, []).append(c.connection_id)
    return out


def start_dispatchers(
    client: Any, deployments: dict[str, UUID], planned: list[PlannedConnection], shard_size: int
) -> list[Dispatch]:
    """Create each integration's dispatcher run (Scheduled now; the services host's worker picks it up)."""
    started = []
    for integration, ids in by_integration(planned).items():
        run = client.create_flow_run_from_deployment(
            deployments[integration],
            parameters={"connections": ids, "shard_size": shard_size, "max_attempts": DEFAULT_MAX_ATTEMPTS},
            tags=[TAG],
        )
        started.append(Dispatch(integration, ids, run.id))
    return started
