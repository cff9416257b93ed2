"""The services host (the root namespace): PostgreSQL, the Prefect server on it, the sandbox providers.

Each listens on the services address of the namespaces' subnet, so the worker hosts reach them over
their veth link (and PostgreSQL on loopback too, for the harness). PostgreSQL holds three
databases: `prefect` (the Prefect server's), `lake` (the DuckLake catalog) and `store` (the
connection store); the last two are used once those backends exist (config `ducklake` / `postgres`).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from flows.prefect_server import PrefectServer, pick_port
from sandbox.netns import SimulatedHosts
from sandbox.server import SandboxServer
from screensync.cluster.config import DUCKLAKE, EMBEDDED, POSTGRES, SQLITE, ClusterConfig
from tests.support.postgres import PgDatabase, ThrowawayPostgres

DATABASES = ("prefect", "lake", "store")
SERVER_DB_ENV = "PREFECT_SERVER_DATABASE_CONNECTION_URL"


def use_postgres(server: PrefectServer, db: PgDatabase) -> None:
    """Run `server` (not started yet) on PostgreSQL database `db` instead of its SQLite file."""
    server.process.env[SERVER_DB_ENV] = f"postgresql+asyncpg://{db.user}@{db.host}:{db.port}/{db.name}"


@dataclass
class Services:
    address: str
    postgres: ThrowawayPostgres
    sandbox: SandboxServer
    prefect: PrefectServer
    warehouse: str  # SCREENSYNC_WAREHOUSE for every process
    store: str  # SCREENSYNC_CONNECTIONS for every process

    def pg_url(self, database: str, scheme: str = "postgresql") -> str:
        """A database of the cluster's PostgreSQL as the worker hosts reach it (trusted subnet, no password)."""
        return f"{scheme}://{self.postgres.database(database).user}@{self.address}:{self.postgres.port}/{database}"


def warehouse_target(config: ClusterConfig, run_dir: Path, pg_url: str) -> str:
    """The SCREENSYNC_WAREHOUSE value: the embedded file works across the hosts only because they
    share this machine's file system (and its `flock`s); DuckLake is what separate machines need."""
    if config.warehouse == EMBEDDED:
        return str(run_dir / "warehouse.duckdb")
    if config.warehouse == DUCKLAKE:
        return f"ducklake:{pg_url}?data={quote(str(run_dir / 'lake') + '/', safe='')}"
    return config.warehouse


def store_target(config: ClusterConfig, run_dir: Path, pg_url: str) -> str:
    """The SCREENSYNC_CONNECTIONS value: the cluster's PostgreSQL, or a SQLite file on the shared file system."""
    if config.store == SQLITE:
        return str(run_dir / "connections.sqlite")
    if config.store == POSTGRES:
        return pg_url
    return config.store


def start_services(config: ClusterConfig, hosts: SimulatedHosts, run_dir: Path, stack: ExitStack) -> Services:
    """Start everything on the services address; each is stopped by `stack` (in reverse order)."""
    address = hosts.services_address
    postgres = ThrowawayPostgres(listen_addresses=("127.0.0.1", address), trust_networks=(hosts.subnet,))
    stack.enter_context(postgres)
    for name in DATABASES:
        postgres.create_database(name)

    sandbox = SandboxServer(host=address, seed=config.seed, scale=config.scale)
    stack.enter_context(sandbox)
    for provider in sandbox.providers.values():
        provider.faults.set_latency(config.latency_ms)

    prefect = PrefectServer(run_dir / "prefect-server", host=address, port=pick_port(address))
    use_postgres(prefect, postgres.database("prefect"))
    stack.enter_context(prefect)  # waits for /api/health (migrations on a new database take a while)

    services = Services(address, postgres, sandbox, prefect, "", "")
    services.warehouse = warehouse_target(config, run_dir, services.pg_url("lake", "postgres"))
    services.store = store_target(config, run_dir, services.pg_url("store"))
    return services
