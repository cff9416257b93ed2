"""Provider answers carry the sandbox clock's `Date`, as a real provider's carry its own clock: a
client orders record versions by it (integrations/engine/observed.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


def _date(response: httpx.Response) -> datetime:
    assert len(response.headers.get_list("date")) == 1, response.headers  # ours only, not uvicorn's as well
    return parsedate_to_datetime(response.headers["date"])


def test_every_provider_answer_is_dated_by_the_sandbox_clock(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(scale=5)
    checkr, cc = server.info["checkr"], server.info["clearchecks"]
    key = checkr["accounts"][0]["api_key"]
    start = server.clock.now()
    with httpx.Client() as client:
        listed = client.get(f"{checkr['base_url']}/v1/candidates", auth=(key, ""))
        refused = client.get(f"{checkr['base_url']}/v1/candidates", auth=("wrong", ""))
        other = client.get(f"{cc['base_url']}/api/accounts/all")
        assert (listed.status_code, refused.status_code) == (200, 401)
        assert _date(listed) == _date(refused) == _date(other) == start.replace(microsecond=0)
        server.advance(days=2, hours=3)
        assert _date(client.get(f"{checkr['base_url']}/v1/account", auth=(key, ""))) == start + timedelta(days=2, hours=3)
        control = client.get(f"{server.info['control_url']}/clock")
    assert abs(_date(control) - datetime.now(UTC)) < timedelta(minutes=5)  # the control API keeps real time
