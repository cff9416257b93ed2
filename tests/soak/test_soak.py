"""Issue 12's property: over days of provider activity, webhook chaos, provider faults and killed
syncs, the warehouse converges to the providers' truth.

A seeded run, as a user runs the product: `screensync serve-web` receives Checkr's webhooks (lost,
doubled, late, shuffled, several at once, racing the syncs); the syncs of the generated deployment
run on their schedules as `screensync sync` subprocesses against a sandbox whose world changes by
itself (new reports on old candidates, vanishing candidates and reports, cancelled invitations,
missed ETAs, disputes) and whose API misbehaves (5xx, 429 bursts, dropped connections, a required
field missing); some runs are SIGKILLed part-way. Then the declared catch-up runs (every schedule
once, the sweep included) and every table of every connection must equal the sandbox's ground
truth: 0 missing, 0 duplicated, 0 wrongly deleted, 0 stale, 0 not deleted, nothing owed, and no
webhook event left pending. The figures are printed at the end.

CI runs one seed over a few simulated days; `SCREENSYNC_SOAK_SEEDS=1,2,3 SCREENSYNC_SOAK_DAYS=10`
runs more (docs/engine.md, "Convergence"). `SCREENSYNC_SOAK_WAREHOUSE=ducklake` runs the same soak on a
DuckLake warehouse (catalog in a throwaway PostgreSQL) with concurrent writers: every scheduled run is
one `screensync sync -c <connection>` process per connection, all at once, while the webhook applier in
`serve-web` (and each sync process at its end) applies deliveries beside them.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from flows.deployments import sync_deployment
from sandbox.faults import FaultConfig
from sandbox.server import SandboxServer
from tests.soak import scenario
from tests.soak.compare import Comparison, compare, rows
from tests.soak.customer_platform import invite_an_old_candidate
from tests.soak.processes import REPO, SyncRuns, screensync, serve_web
from tests.soak.scenario import Scenario

pytest_plugins = ["tests.support.postgres"]
FORCED_KILL_AT_RUN = 4  # the scheduled run killed when the seed drew no kill before it (no draw added)
WAREHOUSE_ENV = "SCREENSYNC_SOAK_WAREHOUSE"  # `ducklake`: the soak on a DuckLake (catalog in a throwaway PostgreSQL)

INTEGRATION = "checkr"
PENDING_WAIT_S = 90.0  # events reach the warehouse within seconds of it being writable


class Schedules:
    """The generated deployment's schedules for one integration, run when due on the sandbox clock."""

    def __init__(self, integration: str, start: float) -> None:
        self.specs = sync_deployment(integration)["schedules"]
        self.last = [start] * len(self.specs)

    def due(self, now: float) -> list[tuple[list[str], bool]]:
        """(models, full_refresh) to run now: the due plain schedules in one run, then each due sweep."""
        plain: list[str] = []
        sweeps: list[tuple[list[str], bool]] = []
        for i, spec in enumerate(self.specs):
            if now - self.last[i] >= spec["interval"]:
                self.last[i] = now
                models = spec["parameters"]["syncs"]
                if spec["parameters"].get("full_refresh"):
                    sweeps.append((models, True))
                else:
                    plain += models
        return ([(plain, False)] if plain else []) + sweeps

    def every_one(self) -> list[tuple[list[str], bool]]:
        """Each schedule once, plain ones first: what a day of the deployment runs (the catch-up)."""
        plain = [m for s in self.specs if not s["parameters"].get("full_refresh") for m in s["parameters"]["syncs"]]
        return [(plain, False)] + [(s["parameters"]["syncs"], True) for s in self.specs
                                   if s["parameters"].get("full_refresh")]


def _wait_no_pending(store: Any, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        pending = store.events(status="pending", integration=INTEGRATION)
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(0.5)


def _connect_every_account(store: Any, sandbox: SandboxServer) -> dict[str, str]:
    """One direct-API-key connection per sandbox Checkr account; connection id -> account id."""
    from connections.models import Connection, ConnectionMetadata, Credentials

    section = sandbox.info["checkr"]
    out = {}
    for i, acct in enumerate(section["accounts"]):
        cid = f"soak-{i}"
        store.add(Connection(connection_id=cid, integration=INTEGRATION, credential_kind="api_key",
                             metadata=ConnectionMetadata(base_url=section["base_url"], provider_account_id=acct["id"])),
                  Credentials(token=acct["api_key"]))
        out[cid] = acct["id"]
    return out


def _figures(seed: int, sc: Scenario, runs: SyncRuns, faults: Counter[str], invited: int, sent: list[dict[str, Any]],
             inbox: list[dict[str, Any]], result: Comparison, owed: int) -> str:
    states = Counter(e["state"] for e in sent)
    kinds = result.by_kind()
    return "\n".join([
        f"soak seed {seed}: {sc.days:g} simulated days, scale {sc.scale} x 3 accounts",
        f"  scheduled sync processes: {runs.n} ({runs.killed} SIGKILLed), exit codes {dict(sorted(runs.exit_codes.items()))}; "
        f"provider trouble per step: {dict(faults)}; old candidates invited again: {invited}",
        f"  webhook events: {len(sent)} emitted, {states['dropped']} lost on the way, "
        f"{sum(1 for e in sent if e['copies'] > 1)} sent twice, {states['delivered']} delivered; "
        f"inbox: {dict(Counter(e['status'] for e in inbox))}",
        f"  records compared: {sum(result.compared.values())} {dict(result.compared)}",
        f"  mismatches: {kinds} (total {result.total}); owed records: {owed}",
    ])


@pytest.mark.slow
@pytest.mark.timeout(1800 + int(scenario.days() * 600))
@pytest.mark.parametrize("seed", scenario.seeds())
def test_the_warehouse_converges_to_the_providers_truth(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    from connections.store import open_store

    sc = Scenario(seed=seed, days=scenario.days())
    began = time.monotonic()
    db: Any = tmp_path / "warehouse.duckdb"
    lake = os.environ.get(WAREHOUSE_ENV) == "ducklake"
    if lake:
        pg = request.getfixturevalue("postgres_db")
        db = f"ducklake:postgres://{pg.user}@{pg.host}:{pg.port}/{pg.name}?data={tmp_path / 'lake'}/"
    settings = {"SCREENSYNC_WAREHOUSE": str(db), "SCREENSYNC_CONNECTIONS": str(tmp_path / "connections.sqlite"),
                "SCREENSYNC_SECRET_KEY": Fernet.generate_key().decode()}
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    env = {**os.environ, **settings, "COLUMNS": "160"}
    logs = tmp_path / "logs"
    logs.mkdir()
    store = open_store()
    if lake:  # the deploy step before any worker starts (docs/warehouse.md)
        migrated = subprocess.run(screensync("warehouse", "migrate"), env=env, cwd=REPO, capture_output=True,
                                  text=True, timeout=300)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    rng = random.Random(f"soak:{seed}")
    faults: Counter[str] = Counter()
    invited: list[str | None] = []
    with SandboxServer(seed=seed, scale=sc.scale, rate_limits={"checkr": 12000}) as sandbox:
        connections = _connect_every_account(store, sandbox)
        checkr = sandbox.provider(INTEGRATION)
        with serve_web(env, logs) as web:
            checkr.set_webhook_url(f"{web}/webhooks/{INTEGRATION}")
            sandbox.set_webhook_chaos(INTEGRATION, sc.chaos())
            runs = SyncRuns(env, logs)
            side_by_side = sorted(connections) if lake else None  # a lake: one process per connection at once
            assert runs.run(INTEGRATION, [], each_of=side_by_side) == 0, runs.output()  # the first sync
            sandbox.set_activity(INTEGRATION, sc.activity())
            schedules = Schedules(INTEGRATION, sandbox.clock.now().timestamp())

            took: list[float] = []  # seconds each scheduled run that was not killed took
            drawn = Counter()  # scheduled runs, and kills among them

            def scheduled_runs(old: Any, new: Any) -> None:
                checkr.faults.configure(FaultConfig())
                if rng.random() < sc.invite_rate:
                    invited.append(invite_an_old_candidate(sandbox, rng))
                kind, fault = sc.fault(rng)
                faults[kind] += 1
                checkr.faults.configure(fault)
                for models, full in schedules.due(new.timestamp()):
                    # part-way through a run as long as the runs so far took (a fixed 1-4 s outlived
                    # every run on a fast machine: no run was killed)
                    typical = statistics.median(took[-9:]) if took else 2.0
                    kill = typical * rng.uniform(0.4, 0.95) if rng.random() < sc.kill_rate else None
                    if kill is None and not drawn["kills"] and drawn["runs"] == FORCED_KILL_AT_RUN:
                        kill = typical * 0.6  # a seed that drew no kill so far still kills one (149 drew none)
                    drawn.update(runs=1, kills=int(kill is not None))
                    started = time.monotonic()
                    code = runs.run(INTEGRATION, models, full_refresh=full, kill_after=kill, each_of=side_by_side)
                    if code >= 0:
                        took.append(time.monotonic() - started)

            steps = random.Random(seed)
            sandbox.simulate(days=sc.days - sc.held_days, rng=steps, min_step=sc.min_step, max_step=sc.max_step,
                             between=scheduled_runs)
            # the last hours' events are all held back, to arrive only after the catch-up
            sandbox.set_webhook_chaos(INTEGRATION, sc.chaos().model_copy(update={"hold": True}))
            sandbox.simulate(days=sc.held_days, rng=steps, min_step=sc.min_step, max_step=sc.max_step,
                             between=scheduled_runs)

            # the declared catch-up: the provider behaves again and every schedule runs once (the sweep
            # too); then the events held back arrive, older than what the catch-up read: none may roll
            # anything back
            sandbox.reset_faults()
            for models, full in schedules.every_one():
                code = runs.run(INTEGRATION, models, full_refresh=full, each_of=side_by_side)
                assert code == 0, f"catch-up run exited {code}:\n{runs.output()}"
            sandbox.flush_webhooks(INTEGRATION, timeout=120)
            pending = _wait_no_pending(store, PENDING_WAIT_S)
            result = Comparison()
            for cid, account in connections.items():
                compare(db, INTEGRATION, cid, sandbox.truth(INTEGRATION, account), result)
            (owed,) = rows(db, "SELECT count(*) FROM _screensync.owed_records")[0]
            sent = sandbox.webhook_events(INTEGRATION)
            inbox = store.events(integration=INTEGRATION)
    figures = _figures(seed, sc, runs, faults, sum(1 for i in invited if i), sent, inbox, result, owed)
    figures += (f"\n  warehouse: {'DuckLake, one sync process per connection at once' if lake else 'DuckDB file'}; "
                f"{time.monotonic() - began:.0f}s")
    with capsys.disabled():
        print("\n" + figures)
    assert not pending, f"{len(pending)} webhook event(s) left pending, e.g. {pending[:3]}\n{figures}"
    assert result.total == 0, "\n".join([figures, *result.examples])
    assert owed == 0, figures
    assert runs.killed, "no sync run was killed part-way: the scenario lost its SIGKILLs"
