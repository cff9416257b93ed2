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


def test_a_stored_checkpoint_that_cannot_be_read_is_discarded_with_the_reason() -> None:
    from integrations.engine.run_failures import discard_reason
    from warehouse.state import SyncState

    def state(checkpoint: dict) -> SyncState:
        return SyncState(integration="x", connection_id="c", sync="s", checkpoint=checkpoint)

    good = Checkpoint(page={"next_url": "https://api.x/v1/c?page=2", "page_number": 1}, params={}).to_stored()
    assert discard_reason(state(good), full_refresh=False) is None
    reason = discard_reason(state({"page": "not-a-dict"}), full_refresh=False)
    assert reason is not None and "could not be read" in reason and "params" in reason and "page" in reason
