"""Helpers shared by the flow tests (a plain module: `conftest` names collide across test folders)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class FlowEnv:
    warehouse: Path
    store: Any

    def add(self, integration: str, connection_id: str, token: str, base_url: str) -> None:
        from connections.models import Connection, ConnectionMetadata, Credentials

        self.store.add(
            Connection(
                connection_id=connection_id,
                integration=integration,
                credential_kind="api_key",
                metadata=ConnectionMetadata(base_url=base_url),
            ),
            Credentials(token=token),
        )


def read_rows(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    from warehouse.read import query

    return query(sql, path=warehouse)


def artifacts_for(flow_run_id: Any) -> list[Any]:
    """Artifacts the flow run (or its tasks) created, read back through the Prefect client."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
