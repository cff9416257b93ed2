"""ProviderClient against a real misbehaving server on loopback: retries, waits, fatal errors, redaction."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from uuid import uuid4

import httpx
import pytest

from integrations.engine.auth import BasicTokenAuth, QueryTokenAuth
from integrations.engine.definition import ErrorsConfig
from integrations.engine.errors import (
    AuthFailed,
    ForeignHostError,
    MalformedResponse,
    ProviderError,
    RetriesExhausted,
)
from integrations.engine.http_client import ProviderClient
from integrations.engine.retries import RetryPolicy
from tests.engine.conftest import TOKEN, FakeProvider, ratelimit_headers_config

FAST = RetryPolicy(base_delay=0.01, max_delay=0.05, max_attempts=5)
CHECKR_LIKE = ratelimit_headers_config(6000, 60)


def make_client(
    provider: FakeProvider, *, query_auth: bool = False, retry: RetryPolicy = FAST, timeout: float = 10.0
) -> ProviderClient:
    auth: httpx.Auth = QueryTokenAuth(TOKEN, "api_token") if query_auth else BasicTokenAuth(TOKEN)
    return ProviderClient(
        integration="fakeprov",
        connection_id="conn-1",
        api_base=f"{provider.base}/v1",
        auth=auth,
        rate_limit=CHECKR_LIKE,
        credential_fingerprint=uuid4().hex,  # a private limiter: tests must not pace each other
        errors=ErrorsConfig(message_path="error"),
        retry=retry,
        timeout=timeout,
    )


@pytest.fixture
def client(fake_provider: FakeProvider) -> Iterator[ProviderClient]:
    with make_client(fake_provider) as c:
        yield c


def key() -> str:
    return uuid4().hex


def test_a_plain_get_sends_the_credential_and_parses_json(client: ProviderClient, fake_provider: FakeProvider) -> None:
    body, response = client.get_json("/items")
    assert response.status_code == 200
    assert [r["id"] for r in body["data"]] == ["item_000", "item_001", "item_002", "item_003", "item_004"]
    assert fake_provider.credentials[-1].startswith("Basic ")
    assert client.stats.requests == 1 and client.stats.retries == 0


def test_keep_alive_reuses_one_connection(client: ProviderClient) -> None:
    ports = set()
    for _ in range(4):
        response = client.request("GET", "/items")
        stream = response.extensions["network_stream"]
        ports.add(stream.get_extra_info("client_addr")[1])
    assert len(ports) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_bursts_are_retried_until_they_pass(client: ProviderClient, status: int) -> None:
    body, _ = client.get_json("/flaky", params={"key": key(), "fail": 3, "status": status})
    assert len(body["data"]) == 2
    assert client.stats.requests == 4 and client.stats.retries == 3 and client.stats.rate_limited == 0


def test_5xx_past_max_attempts_gives_up_naming_the_connection(client: ProviderClient) -> None:
    with pytest.raises(RetriesExhausted) as info:
        client.get_json("/flaky", params={"key": key(), "fail": 99})
    assert client.stats.requests == FAST.max_attempts
    message = str(info.value)
    assert "fakeprov connection 'conn-1'" in message and "gave up after 5 attempts" in message
    assert "HTTP 503 upstream down" in info.value.last_error


def test_total_wait_cap_stops_before_a_long_retry_after(fake_provider: FakeProvider) -> None:
    """Retry-After: 1 with only half a second of waiting allowed: give up instead of sleeping."""
    policy = RetryPolicy(max_attempts=5, max_total_wait=0.5)
    with make_client(fake_provider, retry=policy) as c, pytest.raises(RetriesExhausted) as info:
        c.get_json("/retry-after", params={"key": key(), "fail": 1})
    assert c.stats.requests == 1 and c.stats.waited_s < 0.5
    assert "429" in info.value.last_error


def test_retry_after_seconds_is_honoured(client: ProviderClient) -> None:
    body, _ = client.get_json("/retry-after", params={"key": key(), "fail": 1})
    assert body["data"]
    assert client.stats.rate_limited == 1 and client.stats.retries == 1
    assert client.stats.waited_s >= 1.0  # the server's second, not FAST's hundredths


def test_retry_after_http_date_is_honoured(client: ProviderClient) -> None:
    client.get_json("/retry-after-date", params={"key": key(), "fail": 1})
    assert client.stats.rate_limited == 1
    assert client.stats.waited_s >= 0.5  # an HTTP date ~2 s ahead, to the second


def test_a_used_up_window_waits_for_the_iso_reset(client: ProviderClient) -> None:
    client.get_json("/window-used-up", params={"key": key(), "fail": 1})
    assert client.stats.rate_limited == 1 and client.stats.requests == 2
    assert client.stats.waited_s >= 0.25  # the reset margin at least, not FAST's hundredths


def test_a_429_with_quota_left_backs_off_instead_of_waiting_out_the_window(client: ProviderClient) -> None:
    client.get_json("/burst-429", params={"key": key(), "fail": 2})
    assert client.stats.rate_limited == 2 and client.stats.requests == 3
    assert client.stats.waited_s < 5  # not the minute until the window's reset


def test_a_body_cut_off_mid_way_is_fetched_again(client: ProviderClient) -> None:
    body, _ = client.get_json("/cut-off", params={"key": key(), "fail": 2})
    assert len(body["data"]) == 25
    assert client.stats.retries == 2


def test_garbled_json_is_fetched_again_then_parsed(client: ProviderClient) -> None:
    body, _ = client.get_json("/garbled", params={"key": key(), "fail": 2})
    assert [r["id"] for r in body["data"]] == ["item_000", "item_001", "item_002"]
    assert client.stats.requests == 3


def test_a_page_fetched_ahead_is_parsed_at_its_turn_and_fetched_again_if_garbled(client: ProviderClient) -> None:
    """Pages fetched ahead wait as bytes (json_of parses them when the list reaches them); a garbled
    one is then fetched again as get_json would, not handed on or fatal."""
    params = {"key": key(), "fail": 1}
    garbled = client.request("GET", "/garbled", params=params)
    body, response = client.json_of(garbled, "/garbled", params=params)
    assert [r["id"] for r in body["data"]] == ["item_000", "item_001", "item_002"]
    assert response is not garbled and client.stats.requests == 2
    fine = client.request("GET", "/items")
    body, response = client.json_of(fine, "/items")
    assert response is fine and len(body["data"]) == 5 and client.stats.requests == 3


def test_json_that_stays_garbled_is_a_malformed_response(client: ProviderClient) -> None:
    with pytest.raises(MalformedResponse, match=r"fakeprov connection 'conn-1': .*/v1/garbled.* not JSON 3 times"):
        client.get_json("/garbled", params={"key": key(), "fail": 99})


@pytest.mark.parametrize(("path", "status"), [("/forbidden", 403), ("/unauthorized", 401)])
def test_401_and_403_fail_at_once_and_say_what_to_do(fake_provider: FakeProvider, path: str, status: int) -> None:
    with make_client(fake_provider) as c:
        if status == 401:  # the provider does not know this key
            c._http.auth = BasicTokenAuth("sk_revoked_key_456")
        with pytest.raises(AuthFailed) as info:
            c.get_json(path)
    assert c.stats.requests == 1 and c.stats.retries == 0
    err = info.value
    assert (err.status_code, err.integration, err.connection_id) == (status, "fakeprov", "conn-1")
    assert "screensync connections test" in str(err) and "Reconnect" in str(err)
    assert TOKEN not in str(err) and "sk_revoked_key_456" not in str(err)


def test_other_4xx_is_a_provider_error_with_the_declared_message(client: ProviderClient) -> None:
    with pytest.raises(ProviderError) as info:
        client.request("POST", "/invalid", json={"email": "x"})
    err = info.value
    assert err.status_code == 422 and err.message == "email is invalid; zipcode is required"
    assert err.url.endswith("/v1/invalid") and client.stats.requests == 1


def test_query_token_never_shows_in_errors_or_logs(
    fake_provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with make_client(fake_provider, query_auth=True) as c:
        c.get_json("/flaky", params={"key": key(), "fail": 1})  # logs a retry
        assert fake_provider.credentials[-1] == TOKEN  # it was sent...
        with pytest.raises(ProviderError) as info:  # ...and the 404 body echoes the URL with it
            c.get_json("/no-such-route", params={"filter": "x"})
    err = info.value
    assert err.status_code == 404 and "no route for" in err.message
    assert TOKEN not in str(err) and TOKEN not in err.url and TOKEN not in err.message
    assert "api_token=***" in err.message
    assert "retry 1" in caplog.text and TOKEN not in caplog.text


def test_a_redirect_is_not_followed(client: ProviderClient) -> None:
    with pytest.raises(
        ProviderError, match=re.escape("redirect to http://elsewhere.invalid/login?api_token=*** not followed")
    ):
        client.request("GET", "/redirect")


def test_a_link_to_another_origin_is_refused_before_sending(
    client: ProviderClient, fake_provider: FakeProvider, foreign_provider: FakeProvider
) -> None:
    before = sum(foreign_provider.hits.values())
    for url in (f"{foreign_provider.base}/v1/items", fake_provider.base.replace("http:", "https:") + "/v1/items"):
        with pytest.raises(ForeignHostError, match=r"not on the API origin.*nothing was sent"):
            client.request("GET", url)
    assert sum(foreign_provider.hits.values()) == before
    assert client.stats.requests == 0
    # the same origin spelled as an absolute URL is fine
    body, _ = client.get_json(f"{fake_provider.base}/v1/items")
    assert body["count"] == 5


def test_every_request_has_a_timeout(fake_provider: FakeProvider) -> None:
    policy = RetryPolicy(max_attempts=2, base_delay=0.01)
    with (
        make_client(fake_provider, timeout=0.3, retry=policy) as c,
        pytest.raises(RetriesExhausted, match="ReadTimeout"),
    ):
        c.get_json("/slow", params={"seconds": 2})
    assert c.stats.requests == 2


def test_connection_refused_is_retried_then_reported(fake_provider: FakeProvider) -> None:
    from tests.support.asgi_server import free_port

    dead = FakeProvider()
    dead.base = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    policy = RetryPolicy(max_attempts=3, base_delay=0.01)
    with make_client(dead, retry=policy) as c, pytest.raises(RetriesExhausted, match="ConnectError") as info:
        c.get_json("/items")
    assert c.stats.requests == 3 and c.stats.retries == 2
    assert "fakeprov connection 'conn-1'" in str(info.value)


def test_a_read_response_is_freed_without_the_cycle_collector(client: ProviderClient) -> None:
    """httpx ties a response and its stream in a reference cycle; the client breaks it, so each
    page's body is freed as soon as the engine drops it, not at the next full GC pass."""
    import gc
    import weakref

    gc.disable()
    try:
        body, response = client.get_json("/items")
        assert body["data"] and response.content
        gone = weakref.ref(response)
        del response
        assert gone() is None
    finally:
        gc.enable()


def test_the_tls_context_is_made_once_however_many_syncs_ask_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's syncs make their clients together: they wait for one context instead of each loading
    the CA bundle (0.2 s of every run's start on this machine, docs/benchmarks.md)."""
    import threading
    import time

    from integrations.engine import http_client

    http_client.WARMING.join()  # the import's own warm-up is done before the context is swapped
    made: list[object] = []

    def slow_context() -> object:
        time.sleep(0.05)  # loading the CA bundle
        made.append(object())
        return made[-1]

    monkeypatch.setattr(http_client, "_ssl", [])
    monkeypatch.setattr(http_client.httpx, "create_ssl_context", slow_context)
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(http_client._ssl_context())) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and got == made * 6


def test_a_process_forked_while_the_tls_context_is_being_made_still_makes_clients() -> None:
    """The warm-up thread holds the context's lock for ~50 ms after import: a fork in that window
    (a server forking its workers) must not leave the child waiting for a lock nobody will release."""
    import os
    import signal

    from integrations.engine import http_client

    http_client.WARMING.join()
    with http_client._ssl_lock:  # as if the warm-up were making it at the fork
        pid = os.fork()
        if pid == 0:  # the child: made, or killed by the alarm if it waits for the parent's lock
            signal.alarm(10)
            http_client._ssl_context()
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child ended with status {status}"
