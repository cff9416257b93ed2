"""Re-polls whose endpoint answers only part of a record (a status), merged over the stored record.

ClearChecks' `GET /reports/{report_key}/status` answers `{status, flagged_for_end_user_review,
reports}`: the fields that change while a report is open, not the report. A re-poll declared with
`merge: true` lays that answer over the record as last stored (`_raw`, the provider's own shape), so
the new version is the whole record with the fresh status, validated and versioned like any other;
an unchanged status is an unchanged record (same hash, nothing written, no change in the feed).
"""

from __future__ import annotations

from typing import Any


def merge_partial(stored: dict[str, Any] | None, partial: Any) -> Any:
    """`partial`'s fields over the stored record; a record never stored (or a non-object answer) as it came."""
    if stored is None or not isinstance(partial, dict):
        return partial
    return {**stored, **partial}
