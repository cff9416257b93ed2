"""Concurrent fetching within one credential's budget (issue 17): the AIMD window on its own, then
whole syncs over loopback HTTP against a sandbox with latency: exact data, exact resume after
SIGKILL, and a 429 storm that shrinks the window and loses nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any
from uuid import uuid4

import httpx
import pytest

from integrations.engine import pending_write, slow_provider
from integrations.engine.auth import BasicTokenAuth
from integrations.engine.concurrency import AimdController, controller_for
from integrations.engine.definition import ConcurrencyConfig, ErrorsConfig, NextLinkPagination, PageNumberPagination
from integrations.engine.fetch_ahead import in_order
from integrations.engine.http_client import ProviderClient
from integrations.engine.paginators import NextLinkPaginator, PageNumberPaginator, iterate_pages
from integrations.engine.prefetch import prefetch
from integrations.engine.rate_limiter import credential_fingerprint
from integrations.engine.registry import get_integration
from tests.engine.conftest import Env, ratelimit_headers_config
from tests.engine.test_sync_reliability import _checkpoint, kill_candidates_sync_after_a_checkpoint, set_faults
from tests.engine.test_sync_truth import assert_checkr_equal, assert_clearchecks_equal
from warehouse import access
from warehouse.connection import wal_bytes

CHECKR_SYNCS = ("account", "candidates", "reports", "packages", "invitations", "invoices")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _round(ctl: AimdController, latency: float = 0.1, *, limiter_wait: float = 0.0) -> None:
    """One window's worth of requests in flight at once, all answered after `latency`."""
    with ExitStack() as stack:
        starts = [stack.enter_context(ctl.slot()) for _ in range(ctl.window)]
    for started in starts:
        ctl.answered(latency, limiter_wait_s=limiter_wait, started=started)


def test_the_window_grows_to_the_ceiling_while_latency_is_flat() -> None:
    ctl = AimdController(5, clock=Clock())
    for _ in range(10):
        _round(ctl)
    assert ctl.window == 5
    assert ctl.history == [1, 2, 4, 5]  # doubles per full window of good answers, never past the ceiling


def test_after_the_first_cut_the_window_grows_by_one_and_it_may_start_higher() -> None:
    clock = Clock()
    ctl = AimdController(16, initial=4, clock=clock)
    assert ctl.window == 4  # a declared `concurrency.initial`: no ramp from 1 at the start of a run
    _round(ctl)
    assert ctl.window == 8  # slow start: doubling
    clock.now += 1
    ctl.congested(clock.now)
    assert ctl.window == 4
    for _ in range(3):
        _round(ctl)
    assert ctl.history == [4, 8, 4, 5, 6, 7]  # after a cut: one more per window (additive increase)
    assert AimdController(2, initial=8).window == 2  # never above the ceiling


def test_the_window_does_not_grow_while_the_limiter_holds_requests_back_or_it_is_not_full() -> None:
    ctl = AimdController(8, clock=Clock())
    for _ in range(5):
        _round(ctl, limiter_wait=0.2)  # the budget is the bound: more in flight would only queue
    assert ctl.window == 1
    for _ in range(10):  # one request at a time: fills a window of 1, never one of 2
        with ctl.slot() as started:
            pass
        ctl.answered(0.1, started=started)
    assert ctl.window == 2


def test_a_429_halves_the_window_once_per_burst() -> None:
    clock = Clock()
    ctl = AimdController(8, clock=clock)
    for _ in range(10):
        _round(ctl)
    assert ctl.window == 8
    sent = clock.now
    clock.now += 1
    for _ in range(8):  # eight requests sent together all answered 429: one cut
        ctl.congested(sent)
    assert ctl.window == 4 and ctl.cuts == 1
    clock.now += 1
    ctl.congested(clock.now)  # a request sent after that cut: halves again
    assert ctl.window == 2
    clock.now += 1
    ctl.congested(clock.now)
    ctl.congested(clock.now + 1)
    assert ctl.window == 1  # never below one


def test_rising_latency_halves_the_window() -> None:
    ctl = AimdController(8, clock=Clock())
    for _ in range(10):
        _round(ctl, 0.1)
    assert ctl.window == 8
    for _ in range(3):
        _round(ctl, 0.5)
    assert ctl.window < 8 and ctl.cuts >= 1


def test_in_order_hands_answers_back_in_order_and_keeps_declared_errors() -> None:
    ctl = AimdController(4)

    def fetch(n: int) -> int:
        time.sleep(0.01 * (n % 3))  # answers come back out of order
        if n == 5:
            raise KeyError(n)
        return n * n

    out = list(in_order(ctl, range(10), fetch, keep=(KeyError,)))
    assert [i for i, _ in out] == list(range(10))
    assert [a for i, a in out if i != 5] == [i * i for i in range(10) if i != 5]
    assert isinstance(out[5][1], KeyError)


def test_syncs_fetching_side_by_side_share_the_credentials_fetch_threads() -> None:
    import threading

    ctl = AimdController(3, initial=3)
    names: set[threading.Thread] = set()

    def fetch(n: int) -> int:
        names.add(threading.current_thread())  # the thread itself: pools repeat their threads' names
        time.sleep(0.005)
        return n

    runs = [threading.Thread(target=lambda: list(in_order(ctl, range(40), fetch))) for _ in range(3)]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    assert all(n.name.startswith("screensync-fetch") for n in names)
    assert len(names) <= 3, names  # three syncs at once, still only the ceiling's threads


def test_paginators_name_the_pages_ahead_up_to_the_last_one_the_total_implies() -> None:
    link = NextLinkPaginator(NextLinkPagination(type="next_link", next_path="next", page_param="page"))
    link.update_state({"next": "https://api.test/v1/c?per_page=100&page=2&x=1"}, [{}] * 100)
    pages = [httpx.URL(u).params["page"] for u, _ in link.ahead(total=450, page_size=100, count=8)]
    assert pages == ["2", "3", "4", "5"]  # 450 records: 5 pages, page 1 already read
    assert all(httpx.URL(u).params["x"] == "1" for u, _ in link.ahead(total=450, page_size=100, count=8))
    assert [httpx.URL(u).params["page"] for u, _ in link.ahead(total=450, page_size=100, count=2)] == ["2", "3"]
    undeclared = NextLinkPaginator(NextLinkPagination(type="next_link", next_path="next"))
    undeclared.update_state({"next": "https://api.test/v1/c?page=2"}, [{}])
    assert undeclared.ahead(total=450, page_size=100, count=8) == []  # the links' numbering is not declared
    numbered = PageNumberPaginator(PageNumberPagination(type="page_number", last_page_path="last_page"))
    numbered.init_request("/r", {})
    numbered.update_state({"last_page": 3}, [{}] * 100)
    assert [q["page"] for _, q in numbered.ahead(total=None, page_size=100, count=8)] == [2, 3]
    numbered.update_state({"last_page": 3}, [{}] * 100)
    numbered.update_state({"last_page": 3}, [{}] * 100)
    assert numbered.ahead(total=None, page_size=100, count=8) == []  # the last page was read


def _set_latency(sandbox: Any, provider: str, ms: int, jitter_ms: int = 0) -> None:
    httpx.put(f"{sandbox.info['control_url']}/latency/{provider}",
              json={"ms": ms, "jitter_ms": jitter_ms}).raise_for_status()


def _peak_in_flight(sandbox: Any, provider: str) -> int:
    r = httpx.get(f"{sandbox.info['control_url']}/faults/{provider}")
    return int(r.json()["stats"]["peak_waiting"])


def test_concurrent_syncs_equal_the_truth(env: Env, fresh_sandbox: Any) -> None:
    # no rate limit: latency is the bound, so the window grows
    sandbox = fresh_sandbox(scale=500, open_reports={"checkr": 120}, rate_limits={"checkr": 0, "clearchecks": 0})
    checkr_account = env.connect(sandbox, "checkr", "cust-1")
    cc_account = env.connect(sandbox, "clearchecks", "cc-1")
    for provider in ("checkr", "clearchecks"):
        _set_latency(sandbox, provider, 20, 30)  # answers overtake each other
    results = env.sync_all("checkr", "cust-1") + env.sync_all("clearchecks", "cc-1")
    assert all(r.ok for r in results), [(r.sync, r.error) for r in results]
    # several requests were waiting on the provider at once: the fetching really was concurrent
    assert _peak_in_flight(sandbox, "checkr") >= 2
    assert _peak_in_flight(sandbox, "clearchecks") >= 2
    for provider in ("checkr", "clearchecks"):
        _set_latency(sandbox, provider, 0)
    assert_checkr_equal(env, sandbox, "checkr", "cust-1", checkr_account)
    assert_clearchecks_equal(env, sandbox, "cc-1", cc_account)


def test_syncs_at_a_slow_provider_write_small_checkpoint_each_and_equal_the_truth(
        env: Env, fresh_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a slow provider writes are due at a few MB and each is checkpointed on its own, even while
    the connection's other syncs wait for the file (issue 17's memory): the data is still exact."""
    sandbox = fresh_sandbox(scale=3000, open_reports={"checkr": 1000}, rate_limits={"checkr": 0})
    account_id = env.connect(sandbox, "checkr", "cust-1")
    for name, value in (("_detected", False), ("_answers", 0), ("_slow", 0)):  # decided afresh here
        monkeypatch.setattr(slow_provider, name, value)
    monkeypatch.setattr(access, "KEEP_WAL_BYTES", float("inf"))  # put back after: the listener sets it
    monkeypatch.setattr(pending_write, "MAX_BYTES_SLOW_PROVIDER", 256 * 1024)  # many writes from 3,000
    logged: list[int] = []
    detach = access.detach_writer

    def counting(con: Any, alias: str, **kw: Any) -> None:
        logged.append(wal_bytes(env.db))
        detach(con, alias, **kw)

    monkeypatch.setattr(access, "detach_writer", counting)
    _set_latency(sandbox, "checkr", 60, 20)
    results = env.sync_all("checkr", "cust-1")
    assert all(r.ok for r in results), [(r.sync, r.error) for r in results]
    assert slow_provider.detected() and access.KEEP_WAL_BYTES == pending_write.SLOW_PROVIDER_WAL_BYTES
    # each small write let the file go with its log (~0.3 MB), none waited for another's
    assert sum(n >= access.KEEP_WAL_BYTES for n in logged) >= 8, logged
    assert max(logged) < 4 * 1024 * 1024, logged
    _set_latency(sandbox, "checkr", 0)
    assert_checkr_equal(env, sandbox, "checkr", "cust-1", account_id)


def test_a_concurrent_sync_killed_with_sigkill_resumes_exactly(env: Env, fresh_sandbox: Any) -> None:
    sandbox = fresh_sandbox(scale=3000, rate_limits={"checkr": 300})
    account_id = env.connect(sandbox, "checkr", "cust-1")
    # ~28 pages at <= 4.75 a second, each answered in 300-600 ms: several in flight, out of order
    set_faults(sandbox, "checkr", latency_ms=300, latency_jitter_ms=300)
    kill_candidates_sync_after_a_checkpoint(env)
    assert _peak_in_flight(sandbox, "checkr") >= 2, "the killed run did not fetch pages ahead"
    assert _checkpoint(env), "the checkpoint committed before the kill was lost"
    set_faults(sandbox, "checkr")
    sandbox.provider("checkr").set_rate_limit(0)
    result = env.sync("checkr", "cust-1", "candidates")
    assert result.ok and result.resumed, result.error
    for sync in CHECKR_SYNCS:
        if sync != "candidates":
            assert env.sync("checkr", "cust-1", sync).ok
    assert_checkr_equal(env, sandbox, "checkr", "cust-1", account_id)


def test_a_429_storm_shrinks_the_window_and_loses_nothing(env: Env, fresh_sandbox: Any) -> None:
    from integrations.engine.retries import RetryPolicy

    sandbox = fresh_sandbox(scale=300, open_reports={"checkr": 150}, rate_limits={"checkr": 0})
    account_id = env.connect(sandbox, "checkr", "cust-1")
    token = sandbox.info["checkr"]["accounts"][0]["api_key"]
    ctl = controller_for("checkr", credential_fingerprint(token), 8)
    _set_latency(sandbox, "checkr", 20, 20)
    fast = RetryPolicy(base_delay=0.01, max_delay=0.05, max_attempts=12)
    # the open reports re-polled at 20-40 ms and no rate limit: the window grows
    assert all(env.sync("checkr", "cust-1", s, retry=fast).ok for s in ("account", "candidates"))
    env.hours_pass(2)  # the open reports are due for their re-poll (due-based, integrations/checkr)
    assert env.sync("checkr", "cust-1", "reports", retry=fast).ok
    assert ctl.peak >= 2, ctl.history
    cuts_before, before = ctl.cuts, len(ctl.history)
    set_faults(sandbox, "checkr", latency_ms=20, burst_429_rate=0.15, burst_429_length=4)
    env.hours_pass(2)  # and due again for the storm
    results = [env.sync("checkr", "cust-1", s, retry=fast) for s in CHECKR_SYNCS if s != "account"]
    assert all(r.ok for r in results), [(r.sync, r.error) for r in results]
    assert sum(r.rate_limited for r in results) > 0  # the storm really happened
    # the window went down (a cut is recorded only when it shrinks the window)
    assert ctl.cuts > cuts_before and min(ctl.history[before:]) < max(ctl.history[before - 1:]), ctl.history
    set_faults(sandbox, "checkr")
    assert_checkr_equal(env, sandbox, "checkr", "cust-1", account_id)


def _most_in_flight(sandbox: Any, latency_ms: int, reader_waiting: Callable[[], bool]) -> int:
    """Most Checkr requests waiting at the sandbox at once while a list is paged through, told by
    `reader_waiting` whether its reader waits for pages (the list sync asks its prefetch queue)."""
    account = sandbox.info["checkr"]["accounts"][0]
    client = ProviderClient(
        integration="checkr", connection_id="ahead", api_base=sandbox.info["checkr"]["base_url"],
        auth=BasicTokenAuth(account["api_key"]), credential_fingerprint=uuid4().hex,
        rate_limit=ratelimit_headers_config(100_000, 60).model_copy(
            update={"concurrency": ConcurrencyConfig(max=8, initial=8)}),
        errors=ErrorsConfig(message_path="error"),
    )
    set_faults(sandbox, "checkr", latency_ms=latency_ms)  # and the sandbox's peak starts afresh
    with client:
        numbers = [page.number for page in iterate_pages(
            client, get_integration("checkr").definition.pagination, "/v1/candidates", {"per_page": 25},
            reader_waiting=reader_waiting)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) > 30, numbers  # every page, in order
    return _peak_in_flight(sandbox, "checkr")


def test_pages_are_fetched_ahead_only_while_the_reader_waits_for_them(fresh_sandbox: Any) -> None:
    """A reader slower than the provider gets one request at a time (more would only add threads
    parsing beside the writer); one that waits for pages gets several at once."""
    sandbox = fresh_sandbox(scale=1000, rate_limits={"checkr": 0})
    assert _most_in_flight(sandbox, 30, reader_waiting=lambda: False) == 1
    assert _most_in_flight(sandbox, 30, reader_waiting=lambda: True) >= 2


def test_the_prefetch_queue_says_whether_its_reader_waited() -> None:
    """What the list sync passes as `reader_waiting`: its reader found no page ready (a slow source)."""

    def source(delay_s: float) -> Iterator[int]:
        for i in range(12):
            time.sleep(delay_s)
            yield i

    slow = prefetch(source(0.1), depth=4)
    waited = []
    for _ in slow:
        waited.append(slow.starved)
    assert all(waited), waited

    fast = prefetch(source(0.0), depth=4)
    waited = []
    for _ in fast:
        waited.append(fast.starved)
        time.sleep(0.1)  # the reader is the slow side: the next item is always ready
    assert sum(waited[1:]) <= 2, waited  # the first read may come before the first item
