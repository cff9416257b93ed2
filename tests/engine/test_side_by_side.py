"""A connection's independent syncs side by side (issue 17): each waits only for the syncs it
declares `after`; over loopback HTTP they overlap, draw from the credential's one limiter (the
sandbox never sees more than its pace allows) and land exactly the provider's data."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import httpx
import pytest
import yaml
from pydantic import ValidationError

from integrations.engine.definition import IntegrationDefinition
from integrations.engine.rate_limiter import _burst
from integrations.engine.registry import get_integration
from integrations.engine.side_by_side import Wait, dependencies, reference_waits, run_side_by_side
from tests.engine.conftest import Env
from tests.engine.test_sync_truth import assert_checkr_equal

PER_MINUTE = 600  # 10 a second: with 100 ms answers and a window of 8 the budget, not latency, is the bound


def test_after_must_name_a_sync_declared_before() -> None:
    raw = yaml.safe_load((get_integration("checkr").folder / "definition.yaml").read_text())
    raw["syncs"][0]["after"] = ["invoices"]  # the account sync, declared first, after the last one
    with pytest.raises(ValidationError, match=r"sync 'account': `after` names \['invoices'\]"):
        IntegrationDefinition.model_validate(raw)


def test_declared_dependencies_of_the_shipped_definitions() -> None:
    checkr = get_integration("checkr").definition
    names = [s.name for s in checkr.syncs]
    assert dependencies(checkr, names) == {"account": [], "candidates": [], "reports": ["candidates"],
                                           "packages": [], "invitations": ["candidates"], "invoices": []}
    assert dependencies(checkr, ["reports"]) == {"reports": []}  # run alone: re-polls what is stored
    # invitations lists beside candidates; only its reference resolution waits for them
    assert reference_waits(checkr, names) == {n: ["candidates"] if n == "invitations" else [] for n in names}
    assert reference_waits(checkr, ["invitations"]) == {"invitations": []}
    clearchecks = get_integration("clearchecks").definition
    clearchecks_names = [s.name for s in clearchecks.syncs]
    assert dependencies(clearchecks, clearchecks_names)["report_status"] == ["reports"]
    assert not any(reference_waits(clearchecks, clearchecks_names).values())  # in turn anyway


def test_a_sync_waiting_only_for_references_starts_at_once_and_waits_before_resolving() -> None:
    events: list[tuple[str, str]] = []
    lock = threading.Lock()

    def run(name: str, wait: Wait) -> str:
        with lock:
            events.append(("start", name))
        if name == "refs":
            wait()
            with lock:
                events.append(("resolve", name))
        else:
            time.sleep(0.2)
        with lock:
            events.append(("end", name))
        return name

    assert run_side_by_side(["lands", "refs"], {"refs": ["lands"]}, run, references={"refs": ["lands"]}) == [
        "lands", "refs"]
    assert events.index(("start", "refs")) < events.index(("end", "lands"))  # listed beside it
    assert events.index(("resolve", "refs")) > events.index(("end", "lands"))  # resolved after it
    # a pool smaller than the syncs: a waiting sync could hold the thread the other needs, so it starts after
    events.clear()
    assert run_side_by_side(["lands", "refs"], {"refs": ["lands"]}, run, references={"refs": ["lands"]},
                            max_workers=1) == ["lands", "refs"]
    assert events.index(("start", "refs")) > events.index(("end", "lands"))


def test_each_sync_starts_once_those_it_reads_finished_the_others_at_once() -> None:
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    both_running = threading.Barrier(2, timeout=5)

    def run(name: str, wait: Wait) -> str:
        with lock:
            events.append(("start", name))
        if name in ("a", "b"):
            both_running.wait()  # a and b must be running at the same time, or this times out
        time.sleep(0.05)
        with lock:
            events.append(("end", name))
        return name.upper()

    out = run_side_by_side(["a", "b", "c"], {"a": [], "b": [], "c": ["a", "b"]}, run)
    assert out == ["A", "B", "C"]  # in the order asked, whatever the order they finished in
    assert events.index(("start", "c")) > max(events.index(("end", "a")), events.index(("end", "b")))


def test_at_most_max_workers_syncs_run_at_once() -> None:
    running, peak = [0], [0]
    lock = threading.Lock()

    def run(name: str, wait: Wait) -> str:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return name

    assert run_side_by_side(list("abcde"), {}, run, max_workers=2) == list("abcde")
    assert peak[0] == 2  # SCREENSYNC_SYNCS_AT_ONCE: memory for time


def test_a_definition_may_run_its_syncs_one_after_another() -> None:
    """ClearChecks declares `syncs_side_by_side: false` (its 60 a minute bound every sync anyway):
    each of its syncs waits for the one declared before it, and no two ever run at once; Checkr's do
    not wait for one another beyond what they declare."""
    clearchecks = get_integration("clearchecks").definition
    assert not clearchecks.rate_limit.concurrency.syncs_side_by_side
    names = [s.name for s in clearchecks.syncs]
    after = dependencies(clearchecks, names)
    assert all(earlier in after[later] for earlier, later in itertools.pairwise(names)), after
    reversed_names = names[::-1]  # asked for in another order: still declared order, no deadlock
    assert dependencies(clearchecks, reversed_names) == after
    running, peak, order = [0], [0], []
    lock = threading.Lock()

    def run(name: str, wait: Wait) -> str:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            order.append(name)
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return name

    assert run_side_by_side(reversed_names, dependencies(clearchecks, reversed_names), run) == reversed_names
    assert peak[0] == 1 and order == names
    checkr = get_integration("checkr").definition
    assert checkr.rate_limit.concurrency.syncs_side_by_side
    assert dependencies(checkr, [s.name for s in checkr.syncs])["packages"] == []


class Recorder:
    """ASGI wrapper noting when each request reached the provider, and its path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[float, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append((time.monotonic(), scope["path"]))
        await self.app(scope, receive, send)


def _record(sandbox: Any, key: str) -> Recorder:
    dated = sandbox._threads[key].server.config.app  # sandbox.server.SimulatedDate, looked up per request
    recorder = Recorder(dated.app)
    dated.app = recorder
    return recorder


def test_a_connections_syncs_run_side_by_side_within_one_budget(env: Env, fresh_sandbox: Any) -> None:
    sandbox = fresh_sandbox(scale=300, open_reports={"checkr": 40}, rate_limits={"checkr": PER_MINUTE})
    account_id = env.connect(sandbox, "checkr", "cust-1")
    httpx.put(f"{sandbox.info['control_url']}/latency/checkr", json={"ms": 100, "jitter_ms": 20}).raise_for_status()
    recorder = _record(sandbox, "checkr")
    definition = get_integration("checkr").definition
    names = [s.name for s in definition.syncs]

    def sync_all() -> dict[str, Any]:
        """What `screensync sync checkr` runs; each sync with its own Warehouse, as the flow's tasks do."""
        results = run_side_by_side(names, dependencies(definition, names),
                                   lambda n, wait: env.sync("checkr", "cust-1", n, references_wait=wait),
                                   references=reference_waits(definition, names))
        assert all(r.ok for r in results), [(r.sync, r.error) for r in results]
        assert sum(r.rate_limited for r in results) == 0
        return {r.sync: r for r in results}

    def window(prefix: str, since: float) -> tuple[float, float]:
        times = [t for t, p in recorder.seen if p.startswith(prefix) and t >= since]
        assert times, f"no request to {prefix}"
        return min(times), max(times)

    def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return a[0] <= b[1] and b[0] <= a[1]

    by = sync_all()
    # independent syncs overlap: packages and invoices ran while candidates were being listed and landed
    runs = {name: (r.started_at.timestamp(), r.finished_at.timestamp()) for name, r in by.items()}
    assert overlap(runs["packages"], runs["candidates"]) and overlap(runs["invoices"], runs["candidates"]), runs
    # so did invitations' list (it began before candidates had landed: with `after: [candidates]` it
    # would begin once candidates finished), and its references were resolved only once candidates
    # had landed them: none was fetched one by one. (Its first request need not come before
    # candidates' last: 3 pages go out in the limiter's first second's worth.)
    assert runs["invitations"][0] < runs["candidates"][1], runs
    assert by["invitations"].referenced == 0 and by["invitations"].requests == by["invitations"].pages
    env.hours_pass(2)  # the open reports are due for their re-poll (due-based, integrations/checkr)
    second = time.monotonic()
    assert sync_all()["reports"].requests >= 40  # the re-poll had work: the budget was the bound
    reports = window("/v1/reports/", second)
    # the invitations (declared after the re-poll, but waiting only for candidates) went out before
    # the re-poll's last request: one sync after another, they would have come after it...
    assert window("/v1/invitations", second)[0] < reports[1], recorder.seen
    # ...and no report was re-polled before the candidates' list was done
    assert reports[0] > window("/v1/candidates", second)[1]

    # one limiter for all of them: at the sandbox, no stretch of requests beat its token bucket
    cfg = definition.rate_limit
    rate = cfg.target_share * PER_MINUTE / cfg.per_seconds
    # the burst is the declared limit's (1,200: a second's worth, 19) until the sandbox's 600 is seen
    burst = _burst(cfg.target_share * cfg.requests / cfg.per_seconds, cfg.requests, cfg.target_share)
    arrived = sorted(t for t, _ in recorder.seen)
    for i in range(len(arrived)):
        for j in range(i + 1, len(arrived)):
            # +1: loopback delivery may squeeze two sends a few ms closer together
            assert j - i + 1 <= burst + rate * (arrived[j] - arrived[i]) + 1, (i, j, arrived[j] - arrived[i])

    httpx.put(f"{sandbox.info['control_url']}/latency/checkr", json={"ms": 0, "jitter_ms": 0}).raise_for_status()
    assert_checkr_equal(env, sandbox, "checkr", "cust-1", account_id)
