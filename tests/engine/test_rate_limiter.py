"""RateLimiter pacing on a fake clock, header adoption, the registry; and pacing against real servers."""

from __future__ import annotations

import bisect
import threading
import time
from typing import Any
from uuid import uuid4

import httpx
import pytest

from integrations.engine.auth import BasicTokenAuth
from integrations.engine.definition import ErrorsConfig, RateLimitConfig
from integrations.engine.http_client import ProviderClient
from integrations.engine.rate_limiter import RateLimiter, credential_fingerprint, limiter_for, parse_reset
from integrations.engine.retries import RetryPolicy
from tests.engine.conftest import TOKEN, FakeProvider, ratelimit_headers_config

CHECKR = ratelimit_headers_config(600, 60)


class FakeClock:
    """Monotonic and wall clocks that only move when the limiter sleeps (thread-safe)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        with self.lock:
            return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.clock()

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def limiter(config: RateLimitConfig = CHECKR) -> tuple[RateLimiter, FakeClock]:
    fake = FakeClock()
    return RateLimiter(config, clock=fake.clock, sleep=fake.sleep, wall=fake.wall), fake


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def test_requests_are_spread_at_the_target_share_of_the_limit() -> None:
    rl, fake = limiter()
    assert rl.rate == pytest.approx(0.95 * 600 / 60)
    start = fake.now
    for _ in range(96):
        rl.acquire()
    # a second's worth at once (9: half the 5% headroom would allow 15), then one every 1/9.5 s
    assert fake.now - start == pytest.approx(87 / 9.5, rel=1e-6)


def test_a_used_up_window_pauses_until_its_reset() -> None:
    rl, fake = limiter()
    rl.observe(
        200, {"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": iso(fake.wall() + 10), "X-Ratelimit-Limit": "600"}
    )
    waited = rl.acquire()
    assert waited >= 10  # the window's reset (to the second), plus margin


def test_little_left_in_the_window_slows_to_fit() -> None:
    rl, fake = limiter()
    for _ in range(9):
        rl.acquire()  # spend the burst
    rl.observe(
        200, {"X-Ratelimit-Remaining": "4", "X-Ratelimit-Reset": iso(fake.wall() + 20), "X-Ratelimit-Limit": "600"}
    )
    start = fake.now
    for _ in range(4):
        rl.acquire()
    assert fake.now - start >= 4 * (20 / 4) * 0.9  # ~0.2/s, far slower than 9.5/s


def test_the_servers_limit_replaces_the_declared_one() -> None:
    rl, _ = limiter()
    rl.observe(200, {"X-Ratelimit-Limit": "1200"})
    assert rl.rate == pytest.approx(0.95 * 1200 / 60)
    rl.observe(200, {"X-Ratelimit-Limit": "not-a-number"})
    assert rl.rate == pytest.approx(0.95 * 1200 / 60)


def test_a_zero_limit_is_no_window_not_a_pause() -> None:
    """A host with limiting switched off may say limit 0 / remaining 0; that must not stall the sync."""
    rl, fake = limiter()
    rl.observe(200, {"X-Ratelimit-Limit": "0", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": iso(fake.wall() + 50)})
    assert rl.acquire() == 0
    assert rl.rate == pytest.approx(0.95 * 600 / 60)


def test_pause_until_wall_holds_every_caller() -> None:
    rl, fake = limiter()
    rl.pause_until_wall(fake.wall() + 7)
    assert rl.acquire() >= 7


def test_threads_share_one_budget() -> None:
    """Four threads of 25 each: no token is handed out twice, so the fake time is the full pace."""
    rl, fake = limiter()
    start = fake.now

    def work() -> None:
        for _ in range(25):
            rl.acquire()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake.now - start >= (100 - 9) / 9.5 - 1e-6  # all but the burst (a second's worth) paced


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ("2023-11-14T22:13:30Z", "iso8601", 10.0),
        ("2023-11-14T22:13:30", "iso8601", 10.0),  # no offset: UTC
        ("2023-11-14T23:13:30+01:00", "iso8601", 10.0),
        ("1700000010", "epoch_seconds", 10.0),
        ("12.5", "delta_seconds", 12.5),
        ("soon", "delta_seconds", None),
    ],
)
def test_parse_reset_formats(value: str, fmt: str, expected: float | None) -> None:
    assert parse_reset(value, fmt, now_wall=1_700_000_000.0) == expected


def test_registry_shares_per_credential_and_hides_it() -> None:
    fp = credential_fingerprint("sk_live_secret")
    assert "sk_live_secret" not in fp and len(fp) == 16 and fp == credential_fingerprint("sk_live_secret")
    name = f"int-{uuid4().hex}"
    assert limiter_for(name, fp, CHECKR) is limiter_for(name, fp, CHECKR)
    assert limiter_for(name, credential_fingerprint("other"), CHECKR) is not limiter_for(name, fp, CHECKR)


# ---- against real servers ----


def test_pacing_keeps_a_short_fixed_window_free_of_429s(fake_provider: FakeProvider) -> None:
    """10 requests per 2 s window; 30 requests would hit the limit three times over unpaced."""
    config = ratelimit_headers_config(10, 2, reset_format="epoch_seconds")
    before = fake_provider.limited_429s
    client = ProviderClient(
        integration="fakeprov",
        connection_id="paced",
        api_base=f"{fake_provider.base}/v1",
        auth=BasicTokenAuth(TOKEN),
        rate_limit=config,
        credential_fingerprint=uuid4().hex,
        errors=ErrorsConfig(),
        retry=RetryPolicy(max_attempts=1),  # a 429 would fail the test outright
    )
    with client:
        for _ in range(30):
            client.get_json("/windowed")
    assert fake_provider.limited_429s == before
    assert client.stats.rate_limited == 0 and client.stats.requests == 30
    assert client.stats.waited_s > 0  # the limiter, not luck, kept us under


@pytest.mark.slow
def test_sandbox_checkr_at_120_per_minute_sees_no_429s(fresh_sandbox: Any) -> None:
    sandbox = fresh_sandbox(scale=20, rate_limits={"checkr": 120})
    info = sandbox.info["checkr"]
    definition_rate = RateLimitConfig(**{**CHECKR.model_dump(), "requests": 1200})  # the server will say 120
    client = ProviderClient(
        integration="checkr",
        connection_id="sandbox-paced",
        api_base=info["base_url"] + "/v1",
        auth=BasicTokenAuth(info["accounts"][0]["api_key"]),
        rate_limit=definition_rate,
        credential_fingerprint=uuid4().hex,
        errors=ErrorsConfig(),
        retry=RetryPolicy(max_attempts=1),
    )
    with client:
        for _ in range(20):
            client.get_json("/account")
    assert client.stats.rate_limited == 0 and client.stats.requests == 20
    assert client.limiter.rate == pytest.approx(0.95 * 120 / 60)
    assert client.stats.waited_s > 0
    assert httpx.get(f"{info['base_url']}/v1/account", auth=(info["accounts"][0]["api_key"], "")).status_code == 200


def test_a_seconds_worth_goes_out_at_once_and_no_window_exceeds_the_limit() -> None:
    """A short sync is bound by the provider's latency, not by pacing: its first second's worth of
    requests need not wait. However the requests fall, no window of `per_seconds` holds more than
    `target_share * requests + burst`, and the connection's actions keep the rest of the limit."""
    from flows.global_limits import action_budget

    config = RateLimitConfig(**{**CHECKR.model_dump(), "requests": 1200})
    rl, fake = limiter(config)
    sent = []
    for _ in range(3000):
        rl.acquire()  # the fake clock moves while it waits
        sent.append(fake.now)
    assert sent[18] == sent[0] < sent[19]  # 19 at once: a second at 95% of 1,200 a minute
    busiest = max(bisect.bisect_left(sent, t + 60) - i for i, t in enumerate(sent))
    assert busiest <= 0.95 * 1200 + 19
    slots, decay = action_budget(config)
    assert busiest + slots + decay * 60 <= 1200
