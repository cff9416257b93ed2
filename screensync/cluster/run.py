"""Start the cluster in order, run the syncs, report; tear everything down on exit, Ctrl-C or failure.

Order: the worker hosts (namespaces + veth links), then on the services host PostgreSQL, the sandbox
providers and the Prefect server on PostgreSQL; then the pool, deployments and zombie automation,
the connections, the services host's worker and the dispatcher runs, one worker per host, the
analyst; then the wait. An `ExitStack` undoes each step in
reverse, so a failure at any point leaves no process, namespace or bridge behind.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from common.settings import CONNECTIONS_ENV, SECRET_KEY_ENV, WAREHOUSE_ENV
from flows.deployments import REPO_ROOT
from flows.prefect_server import prefect_environment
from flows.processes import ChildProcess
from sandbox.loopback_relay import READY
from sandbox.netns import Host, NetnsUnavailable, SimulatedHosts, unavailable_reason
from screensync.cluster.analyst import default_sql, read_outcomes
from screensync.cluster.config import ClusterConfig, PlannedConnection, plan_connections
from screensync.cluster.isolation import check_isolation
from screensync.cluster.prefect_setup import DISPATCH_QUEUE, POOL, SHARD_QUEUE, crash_zombie_runs, deploy_fanout
from screensync.cluster.report import ClusterReport, build_report
from screensync.cluster.services import Services, start_services
from screensync.cluster.submit import start_dispatchers
from screensync.cluster.watch import Watcher

Say = Callable[[str], None]
WORKER_HEARTBEAT_S = 10
SERVICES_WORKER = "services"  # the services host's worker: it runs the dispatchers


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """These variables set in this process for the block (the store reads its key from the environment)."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def register_connections(planned: list[PlannedConnection]) -> None:
    """Each planned connection in the store SCREENSYNC_CONNECTIONS names, encrypted as usual."""
    from connections.models import Connection, ConnectionMetadata, Credentials
    from connections.store import open_store

    store = open_store()
    for c in planned:
        metadata = ConnectionMetadata(base_url=c.base_url, provider_account_id=c.account_id)
        store.add(
            Connection(connection_id=c.connection_id, integration=c.integration, credential_kind="api_key",
                       metadata=metadata),
            Credentials(token=c.token),
        )  # fmt: skip


def worker_process(
    hosts: SimulatedHosts,
    host: Host | None,
    config: ClusterConfig,
    settings: Mapping[str, str],
    api_url: str,
    run_dir: Path,
    *,
    queue: str = SHARD_QUEUE,
) -> ChildProcess:
    """`prefect worker start` serving `queue` of the pool on `host` (None: the services host, the root
    namespace); its flow-run processes inherit the host and this environment."""
    name = host.name if host is not None else SERVICES_WORKER
    home = run_dir / "hosts" / name
    home.mkdir(parents=True, exist_ok=True)
    env = prefect_environment(home, api_url)
    env.update(settings)
    env.update({
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(config.heartbeat_s),
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_WORKER_HEARTBEAT_SECONDS": str(WORKER_HEARTBEAT_S),
        "SCREENSYNC_FANOUT_POLL": "1",  # a dispatcher notices a crashed shard within a second
        "SCREENSYNC_ZOMBIE_AFTER": str(config.zombie_after_s),  # what a dispatcher would create the automation with
        "PYTHONUNBUFFERED": "1",  # the "submitting flow run" lines reach the log at once
        "PWD": str(REPO_ROOT),
    })  # fmt: skip
    prefix = hosts.exec_prefix(host) if host is not None else []
    limit = config.runs_per_worker if host is not None else len(config.integrations)  # every dispatcher at once
    args = [
        *prefix, sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--work-queue", queue,
        "--type", "process", "--name", name, "--limit", str(limit),
    ]  # fmt: skip
    return ChildProcess(f"worker {name}", args, env=env, cwd=REPO_ROOT, log_path=run_dir / "logs" / f"{name}.log")


def relay_process(hosts: SimulatedHosts, host: Host, ports: list[int], run_dir: Path) -> ChildProcess:
    """sandbox/loopback_relay.py on `host`: its 127.0.0.1:PORT reaches the sandbox over the veth link."""
    args = [*hosts.exec_prefix(host), sys.executable, "-m", "sandbox.loopback_relay", "--to", hosts.services_address,
            "--ports", *map(str, ports)]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return ChildProcess(f"relay {host.name}", args, env=env, cwd=REPO_ROOT, log_path=run_dir / "logs" / f"{host.name}-relay.log")


def wait_for_line(process: ChildProcess, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in process.log_tail(50):
        if not process.running() or time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} did not start; its log {process.log_path}:\n{process.log_tail()}")
        time.sleep(0.1)


def run_cluster(config: ClusterConfig, say: Say = print) -> ClusterReport:
    reason = unavailable_reason()
    if reason:
        raise NetnsUnavailable(reason)
    run_dir = config.run_dir or Path(tempfile.mkdtemp(prefix="screensync-cluster-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    say = _timed(say, started)
    succeeded = False
    try:
        with ExitStack() as stack:
            report = _run(config, run_dir, stack, say)
        succeeded = True
        return report
    finally:
        if config.run_dir is None and succeeded:
            shutil.rmtree(run_dir, ignore_errors=True)
        elif not succeeded:
            say(f"logs kept in {run_dir / 'logs'} (and the Prefect server's in {run_dir / 'prefect-server'})")


def _timed(say: Say, started: float) -> Say:
    return lambda line: say(f"[{time.monotonic() - started:4.0f}s] {line}")


def _run(config: ClusterConfig, run_dir: Path, stack: ExitStack, say: Say) -> ClusterReport:
    from cryptography.fernet import Fernet
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    hosts = stack.enter_context(SimulatedHosts(config.workers, prefix=config.prefix, subnet=config.subnet))
    say(f"hosts: {', '.join(f'{h.name} {h.address}' for h in hosts.hosts)}; services host {hosts.services_address} "
        f"(bridge {hosts.bridge}, subnet {hosts.subnet})")
    say("starting PostgreSQL, the sandbox providers and the Prefect server on PostgreSQL ...")
    services: Services = start_services(config, hosts, run_dir, stack)
    isolation = [check_isolation(hosts, host, services.postgres.port) for host in hosts.hosts]
    for found in isolation:
        say(f"  {found.host}: interfaces {found.interfaces}, routes {found.routes}; services reachable, "
            "root loopback not")
    api_url = services.prefect.api_url
    say(f"Prefect UI {services.prefect.url}; warehouse {services.warehouse}; connection store {services.store}")
    settings = {WAREHOUSE_ENV: services.warehouse, CONNECTIONS_ENV: services.store,
                SECRET_KEY_ENV: Fernet.generate_key().decode()}  # fmt: skip
    stack.enter_context(_environment(settings))
    stack.enter_context(temporary_settings({PREFECT_API_URL: api_url}))
    client = stack.enter_context(get_client(sync_client=True))

    deployments = deploy_fanout(config.integrations, config.heartbeat_s)
    crash_zombie_runs(config.zombie_after_s)
    planned = plan_connections(config, services.sandbox.info)
    register_connections(planned)
    # the dispatchers first: their flow-run processes start while the worker hosts come up
    dispatcher_worker = stack.enter_context(
        worker_process(hosts, None, config, settings, api_url, run_dir, queue=DISPATCH_QUEUE)
    )
    dispatches = start_dispatchers(client, deployments, planned, config.connections_per_run)
    say(f"{len(planned)} connection(s) registered; {len(dispatches)} dispatcher run(s) (fanout-<integration>) "
        f"started on the services host's worker, shards of <= {config.connections_per_run}")
    ports = sorted({int(urlsplit(c.base_url).port or 0) for c in planned})
    for host in hosts.hosts:
        relay = stack.enter_context(relay_process(hosts, host, ports, run_dir))
        wait_for_line(relay, READY)
    workers = {h.name: worker_process(hosts, h, config, settings, api_url, run_dir) for h in hosts.hosts}
    for process in workers.values():
        stack.enter_context(process)
    analyst_out = run_dir / "analyst.jsonl"
    analyst = ChildProcess(
        "analyst",
        [sys.executable, "-m", "screensync.cluster.analyst", "--warehouse", services.warehouse,
         "--sql", default_sql(config.integrations), "--out", str(analyst_out)],
        env={k: v for k, v in os.environ.items() if k != SECRET_KEY_ENV},  # an analyst holds no key
        cwd=REPO_ROOT, log_path=run_dir / "logs" / "analyst.log",
    )  # fmt: skip
    stack.enter_context(analyst)

    say(f"{len(workers)} worker host(s) serve the shards (pool {POOL}, queue {SHARD_QUEUE})")
    every_worker = {**workers, SERVICES_WORKER: dispatcher_worker}
    watched = Watcher(client, dispatches, hosts, every_worker, config, services.warehouse, say=say).run()
    analyst.stop()
    say("checking the warehouse against the sandbox's truth ...")
    return build_report(
        workers=list(workers), planned=planned, per_run=config.connections_per_run, dispatches=dispatches,
        watched=watched, warehouse=services.warehouse, sandbox=services.sandbox,
        analyst=read_outcomes(analyst_out), api_url=api_url, isolation=isolation,
    )  # fmt: skip
