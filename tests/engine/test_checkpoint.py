"""The engine's typed Checkpoint: what a list run stores to resume, and what it reads back."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from integrations.engine.checkpoint import Checkpoint


def test_a_checkpoint_round_trips_through_its_stored_form() -> None:
    ckpt = Checkpoint(page={"next_url": "https://api.x/v1/c?page=3", "page_number": 2},
                      params={"created_after": "2024-01-01T00:00:00Z"}, max_cursor="2024-02-01T00:00:00+00:00",
                      hold="start")
    stored = ckpt.to_stored()
    assert stored == {"page": {"next_url": "https://api.x/v1/c?page=3", "page_number": 2},
                      "params": {"created_after": "2024-01-01T00:00:00Z"},
                      "max_cursor": "2024-02-01T00:00:00+00:00", "hold": "start"}
    assert Checkpoint.from_stored(stored) == ckpt


def test_nothing_stored_is_no_checkpoint_and_a_broken_one_is_named() -> None:
    assert Checkpoint.from_stored(None) is None and Checkpoint.from_stored({}) is None
    with pytest.raises(ValidationError, match="params"):
        Checkpoint.from_stored({"page": {"page": 2}})
