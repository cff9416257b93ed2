"""Run it as several hosts (issue 15, item 4): workers in Linux network namespaces, one killed mid-run.

One cluster run (screensync/cluster/) for the module: PostgreSQL, the Prefect server on it and the
sandbox on the services host; two worker hosts, each reaching them only over its veth link; four
ClearChecks connections synced into one warehouse while an analyst process queries it, through the
product's fan-out: prefect.yaml's `fanout-clearchecks` dispatcher, run by the services host's own
worker, starts two `sync-shard` runs (several list pages each, a slow provider) that the worker
hosts take. The first worker host is killed once its shard has saved a checkpoint; Prefect's
zombie-run automation marks its run Crashed (heartbeats stop), the dispatcher starts that shard
again, and the other worker runs it from the checkpoints. The harness re-submits nothing.

Needs root, `ip` (iproute2) and PostgreSQL's server binaries (`.ci/run` installs both); without
them, or when the kernel refuses namespaces, every test here skips and says why.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from sandbox.netns import NetnsUnavailable, SimulatedHosts, unavailable_reason
from screensync.cluster.config import ClusterConfig
from screensync.cluster.report import ClusterReport
from tests.support.postgres import PostgresUnavailable, find_bin_dir

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# unique per test process: a CLI cluster (ssw*, 10.231.0.0/24) or another session may run beside it
PREFIX = f"sct{os.getpid() % 1000}"
SUBNET = f"10.231.{100 + os.getpid() % 100}.0/24"


def _skip_without_namespaces() -> None:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"multi-host test skipped: {reason}")
    try:
        find_bin_dir()
    except PostgresUnavailable as exc:
        pytest.skip(f"multi-host test skipped: {exc}")


def _namespaces(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(prefix)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterReport]:
    from screensync.cluster.run import run_cluster

    _skip_without_namespaces()
    config = ClusterConfig(
        workers=2,
        connections=4,
        connections_per_run=2,  # 2 shards: the survivor is idle when the killed shard comes back
        kill_one=True,
        integrations=["clearchecks"],
        scale=500,  # 5 pages of reports per connection: a kill lands between pages
        latency_ms=300,
        runs_per_worker=1,  # a flow-run process takes 20-45 s to start on 2 busy cores: few at once
        zombie_after_s=45,  # heartbeats every 30 s (Prefect's minimum)
        kill_after_s=120,  # in practice: killed once a run of the host saved a checkpoint
        prefix=PREFIX,
        subnet=SUBNET,
        run_dir=tmp_path_factory.mktemp("cluster"),
    )
    lines: list[str] = []
    try:
        report = run_cluster(config, say=lines.append)
    except NetnsUnavailable as exc:  # root and `ip` are here, but the kernel refused
        pytest.skip(f"multi-host test skipped: network namespaces refused here: {exc}")
    print("\n".join([*lines, *report.lines()]))
    yield report


def test_each_worker_host_reaches_the_services_only_over_its_veth_link(cluster: ClusterReport) -> None:
    assert [i.host for i in cluster.isolation] == [f"{PREFIX}1", f"{PREFIX}2"]
    for found in cluster.isolation:
        assert sorted(found.interfaces) == ["eth0", "lo"]
        assert found.routes and all("dev eth0" in r and "default" not in r for r in found.routes)
        assert found.services_reachable and not found.root_loopback_reachable


def test_every_record_landed_exactly_once(cluster: ClusterReport) -> None:
    truth = cluster.truth
    assert truth.records_expected >= 4 * 500  # every connection's reports, at least
    assert truth.mismatches == {"missing": 0, "wrongly deleted": 0, "stale": 0, "not deleted": 0, "duplicated": 0}, (
        truth.examples
    )
    assert truth.rows_landed == truth.records_expected
    assert cluster.jobs_completed == cluster.jobs == 2


def test_one_dispatcher_on_the_services_host_started_every_shard(cluster: ClusterReport) -> None:
    assert cluster.dispatchers == {"clearchecks": "Completed"}
    assert cluster.dispatcher_workers == {"clearchecks": "services"}  # not on a worker host: it outlives their death
    assert sum(cluster.runs_per_worker.values()) == cluster.jobs + cluster.retried_runs  # every shard run was its


def test_both_workers_ran_flow_runs(cluster: ClusterReport) -> None:
    assert set(cluster.runs_per_worker) == {f"{PREFIX}1", f"{PREFIX}2"}
    assert all(n > 0 for n in cluster.runs_per_worker.values()), cluster.runs_per_worker


def test_the_killed_workers_runs_completed_elsewhere_from_their_checkpoints(cluster: ClusterReport) -> None:
    assert cluster.killed == f"{PREFIX}1"
    assert cluster.killed_runs, "the killed host had no run in flight"
    assert cluster.killed_runs_completed_elsewhere == {run: f"{PREFIX}2" for run in cluster.killed_runs}
    assert cluster.run_states.get("Crashed", 0) == len(cluster.killed_runs)
    assert cluster.crashed_by_heartbeat >= 1  # Prefect's zombie-run automation saw the heartbeats stop
    assert cluster.retried_runs == len(cluster.killed_runs)
    assert cluster.resumed_syncs >= 1  # the host died after a page was committed: its sync resumed there


def test_the_analyst_was_answered_while_the_syncs_ran(cluster: ClusterReport) -> None:
    analyst = cluster.analyst
    assert analyst.answered >= 10, analyst
    assert analyst.failed == 0, analyst.first_failure


def test_the_cluster_leaves_no_namespace_bridge_or_process_behind(cluster: ClusterReport) -> None:
    assert _namespaces(PREFIX) == []
    link = subprocess.run(["ip", "link", "show", f"{PREFIX}br0"], capture_output=True, text=True)
    assert link.returncode != 0, link.stdout


def test_a_killed_host_takes_every_process_in_it_and_stop_removes_it_all() -> None:
    """The harness's "host dies" is SIGKILL to every process in the namespace, children included."""
    _skip_without_namespaces()
    prefix = f"sck{os.getpid() % 1000}"
    hosts = SimulatedHosts(2, prefix=prefix, subnet=f"10.232.{os.getpid() % 200}.0/24")
    try:
        hosts.start()
    except NetnsUnavailable as exc:
        pytest.skip(f"network namespaces refused here: {exc}")
    try:
        victim, other = hosts.hosts
        sleepers = [
            subprocess.Popen([*hosts.exec_prefix(h), "sh", "-c", "sleep 300 & sleep 300"]) for h in (victim, other)
        ]
        deadline = time.monotonic() + 10
        while len(hosts.pids(victim)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        killed = hosts.kill(victim)
        assert len(killed) >= 2  # the shell and its background child
        assert sleepers[0].wait(timeout=10) == -9
        assert hosts.pids(victim) == []
        assert sleepers[1].poll() is None and hosts.pids(other)  # the other host lives on
    finally:
        hosts.stop()
    assert sleepers[1].wait(timeout=10) == -9  # stop() killed what was left
    assert _namespaces(prefix) == []


def test_the_command_line_names_what_it_refuses(capsys: pytest.CaptureFixture[str]) -> None:
    from screensync.cluster.__main__ import main, parse

    config = parse(["--workers", "3", "--connections", "12", "--kill-one", "--integrations", "checkr"])
    assert (config.workers, config.connections, config.kill_one, config.integrations) == (3, 12, True, ["checkr"])
    assert (config.warehouse, config.store) == ("ducklake", "postgres")  # the several-hosts topology by default
    assert main(["--integrations", "bamboo"]) == 2
    assert "bamboo" in capsys.readouterr().err
    assert main(["--workers", "0"]) == 2
    assert "workers" in capsys.readouterr().err

