"""When a fetched record version was true at the provider, by the provider's own clock.

The warehouse never lets a version replace a newer one (warehouse/upsert.py), and Checkr reports
carry no `updated_at`, so every version is stamped with an observation time: for what a sync
fetches, the response's `Date` header (the moment the provider produced it); for a webhook's
object, the event's own time (the integration's webhook handler knows where it sits). A response
without a `Date` header gets this machine's clock instead: comparable with the provider's only as
far as the two clocks agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from warehouse.records import RecordBatch


def provider_time(response: httpx.Response | None) -> datetime:
    """The response's `Date` (UTC), or now by the local clock when there is none or it does not parse."""
    return date_header_time(response.headers.get("date") if response is not None else None)


def date_header_time(header: str | None) -> datetime:
    """A `Date` header's value as UTC (an error keeps its answer's: ProviderError.date), or now."""
    if header:
        try:
            when = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return datetime.now(UTC)


def stamp(batches: list[RecordBatch], by_id: dict[str, datetime], default: datetime) -> None:
    """Give each row the time its own record was fetched (records fetched one by one); rows that were
    not fetched by their own id (embedded children) get `default`."""
    for b in batches:
        key = b.target.primary_key
        b.observed_at = [by_id.get(_key(row.get(key)), default) for row in b.rows]


def _key(value: Any) -> str:
    return "" if value is None else str(value)
