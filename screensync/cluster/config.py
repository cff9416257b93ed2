"""What a cluster run starts and syncs: a validated config and the plan of connections it registers."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field, field_validator

# integration -> the sandbox provider key that serves it (the integrations the harness can connect)
PROVIDERS = {"clearchecks": "clearchecks", "checkr": "checkr"}
EMBEDDED = "embedded"  # the warehouse as one DuckDB file on the shared file system
DUCKLAKE = "ducklake"  # DuckLake, catalog in the cluster's PostgreSQL, data files in the run directory
SQLITE = "sqlite"
POSTGRES = "postgres"


class ClusterConfig(BaseModel):
    """Everything `python -m screensync.cluster` takes; defaults make a small demo run."""

    workers: int = Field(2, ge=1, le=50, description="worker hosts (network namespaces)")
    connections: int = Field(8, ge=1, description="connections registered and synced")
    kill_one: bool = Field(False, description="kill the first worker host mid-run")
    kill_after_s: float = Field(
        5, ge=0, description="with kill_one: kill once a run of the host saved a checkpoint, or ran this long"
    )
    integrations: list[str] = Field(default_factory=lambda: ["clearchecks", "checkr"])
    scale: int = Field(200, ge=1, description="sandbox records per account (lists of 100 a page)")
    seed: int = 42
    latency_ms: int = Field(30, ge=0, description="added to every provider request (keeps runs in flight)")
    warehouse: str = Field(
        DUCKLAKE, description="`embedded`, `ducklake`, a DuckDB file path or a `ducklake:postgres://...` URL"
    )
    store: str = Field(POSTGRES, description="`sqlite`, `postgres`, a SQLite path or a `postgresql://...` URL")
    prefix: str = Field("ssw", description="namespace names: <prefix>1..<prefix>N")
    subnet: str = "10.231.0.0/24"
    connections_per_run: int = Field(1, ge=1, description="connections one flow run syncs (a shard)")
    runs_per_worker: int = Field(1, ge=1, description="flow runs a worker runs at once (`prefect worker --limit`)")
    heartbeat_s: int = Field(30, ge=30, description="PREFECT_FLOWS_HEARTBEAT_FREQUENCY (Prefect's minimum is 30)")
    zombie_after_s: int = Field(60, description="a Running run silent this long is marked Crashed")
    timeout_s: float = Field(900, description="give up waiting for the syncs after this long")
    run_dir: Path | None = Field(None, description="logs, warehouse and stores; a temp dir (deleted) by default")

    @field_validator("integrations")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [i for i in value if i not in PROVIDERS]
        if unknown or not value:
            raise ValueError(f"integrations must be some of {sorted(PROVIDERS)}, got {value}")
        return value


class PlannedConnection(BaseModel):
    """One connection the harness registers: which sandbox account it reads, under which id."""

    integration: str
    connection_id: str
    provider: str  # the sandbox provider key
    account_id: str
    token: str
    base_url: str


def on_loopback(base_url: str) -> str:
    """The same URL on the host's own loopback, where sandbox/loopback_relay.py relays it to the services host."""
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(netloc=f"127.0.0.1:{parts.port}"))


def plan_connections(config: ClusterConfig, sandbox_info: dict[str, object]) -> list[PlannedConnection]:
    """`config.connections` connections, round-robin over every account of every chosen integration,
    each reaching its provider through the loopback relay of whichever host runs it.

    The sandbox has a few accounts per provider, so several connections may read one account (as two
    customers would not, but the warehouse keys every row by connection: each is checked on its own).
    """
    accounts: list[tuple[str, str, dict[str, str], str]] = []
    for integration in config.integrations:
        section = sandbox_info[PROVIDERS[integration]]
        assert isinstance(section, dict)
        accounts += [(integration, PROVIDERS[integration], a, section["base_url"]) for a in section["accounts"]]
    planned = []
    for i in range(config.connections):
        integration, provider, account, base_url = accounts[i % len(accounts)]
        planned.append(
            PlannedConnection(
                integration=integration,
                connection_id=f"{integration}-{i + 1:04d}",
                provider=provider,
                account_id=account["id"],
                token=account.get("api_key") or account["api_token"],
                base_url=on_loopback(base_url),
            )
        )
    return planned
