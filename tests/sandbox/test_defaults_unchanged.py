"""With every new knob off, the sandbox serves exactly what it served before they existed.

The digest covers every provider's export before and after advancing the clock and every webhook
body sent meanwhile. It was computed from the sandbox code before latency jitter, webhook chaos,
activity and removals were added (commit 1e3cf4c). Change it only when the generated data is
meant to change, and say so in the commit.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from checkr_helpers import receiver

EXPECTED = "d8a4030dae09e6efa291d2c9b858c56063267493651a90f6330609003d15a6b1"


def test_default_world_and_webhooks_are_unchanged(fresh_sandbox: Any) -> None:
    server = fresh_sandbox(seed=42, scale=30)
    digest = hashlib.sha256()
    with receiver() as hooks:
        server.providers["checkr"].set_webhook_url(hooks.url)
        for key in ("checkr", "checkr_staging", "clearchecks"):
            digest.update(orjson.dumps(server.export(key), option=orjson.OPT_SORT_KEYS))
        server.advance(days=31)
        server.advance(hours=7)
        for key in ("checkr", "checkr_staging", "clearchecks"):
            digest.update(orjson.dumps(server.export(key), option=orjson.OPT_SORT_KEYS))
        server.flush_webhooks("checkr")
        bodies = sorted(
            orjson.dumps({k: v for k, v in e.items() if k != "webhook_url"}, option=orjson.OPT_SORT_KEYS).decode()
            for e in hooks.events()
        )
    assert len(bodies) == 41
    digest.update("".join(bodies).encode())
    assert digest.hexdigest() == EXPECTED
