"""Where an interrupted list run resumes: written with the page it follows, in one transaction.

The warehouse stores it as JSON (sync state); only the engine builds and reads it, through this model.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Checkpoint(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    page: dict[str, Any]  # the paginator's position (its `restore` reads it), with `page_number`
    params: dict[str, Any]  # the list's query parameters (an incremental run's cursor included)
    max_cursor: Any = None  # the largest cursor value landed so far (JSON form)
    hold: Any = None  # the cursor may not pass this (cursor_hold.py)

    @classmethod
    def from_stored(cls, stored: dict[str, Any] | None) -> Checkpoint | None:
        return cls.model_validate(stored) if stored else None

    def to_stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
