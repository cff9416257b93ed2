"""What happens when the provider sends bad data: one bad item never loses the page or the run,
a failed run never stays failed, and what was quarantined stays owed until it lands.

Every case runs the real `checkr` definition against a hostile provider on loopback HTTP
(tests/engine/hostile_provider.py) with one thing wrong at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.engine.conftest import Env
from tests.engine.hostile_provider import CONN, HostileProvider, add_connection


def sync(env: Env, name: str = "candidates", **kw: Any) -> Any:
    return env.sync("checkr", CONN, name, **kw)


def stored_candidates(env: Env) -> dict[str, Any]:
    return env.raws("checkr", "candidates", CONN)


def rejects(env: Env) -> list[tuple[str, str | None, str, str]]:
    """(table, record id, error, raw text) of every quarantined item."""
    return env.rows("SELECT model, record_id, error, CAST(raw AS VARCHAR) FROM _screensync.rejected_records "
                    "ORDER BY rejected_at")


def owed(env: Env) -> list[tuple[str, str, str]]:
    return env.rows("SELECT sync, \"table\", record_id FROM _screensync.owed_records ORDER BY record_id")


# ---- 1. a failed run can poison its checkpoint ------------------------------------------------

def _poison(env: Env, hostile: HostileProvider) -> None:
    """A runaway list stops the run at page 7 of 300 records; then the provider is fixed."""
    hostile.faults.runaway = True
    first = sync(env)
    assert first.status.value == "failed" and "page 7 of a list that declares 300 records" in (first.error or "")
    hostile.faults.runaway = False


def test_full_refresh_starts_from_nothing_after_a_failed_run(env: Env, hostile: HostileProvider) -> None:
    _poison(env, hostile)
    again = sync(env)  # resuming from the stored position fails the same way, provider fixed or not
    assert again.status.value == "failed" and again.resumed
    fresh = sync(env, full_refresh=True)
    assert fresh.ok and not fresh.resumed, fresh.error
    assert fresh.checkpoint_discarded and "full refresh" in fresh.checkpoint_discarded
    assert set(hostile.candidate_ids()) <= set(stored_candidates(env))


def test_a_checkpoint_that_failed_the_same_way_three_times_is_discarded(env: Env, hostile: HostileProvider) -> None:
    from integrations.engine.run_failures import DISCARD_AFTER_FAILURES

    assert DISCARD_AFTER_FAILURES == 3
    _poison(env, hostile)  # failure 1
    for _ in range(2):  # failures 2 and 3, each resuming from the same position
        again = sync(env)
        assert again.status.value == "failed" and again.resumed
        assert "restart" in (again.hint or "")
    restarted = sync(env)
    assert restarted.ok, restarted.error
    assert not restarted.resumed
    assert restarted.checkpoint_discarded and "3 times" in restarted.checkpoint_discarded
    assert set(hostile.candidate_ids()) <= set(stored_candidates(env))
    state = env.rows("SELECT checkpoint, failures FROM _screensync.sync_state WHERE sync = 'candidates'")
    assert state == [(None, 0)]


# ---- 2. one bad item never loses the page ----------------------------------------------------

@pytest.mark.both_backends
def test_a_non_object_item_is_quarantined_and_the_rest_lands(env: Env, hostile: HostileProvider) -> None:
    hostile.faults.non_object_at = 150
    result = sync(env)
    assert result.status.value == "partial", result.error
    assert result.rejected == 1
    assert len(stored_candidates(env)) == 299
    ((table, rid, error, raw),) = rejects(env)
    assert (table, rid, orjson.loads(raw)) == ("candidates", None, "not-a-candidate")
    assert "not an object" in error and "str" in error


def test_a_lone_surrogate_is_quarantined_and_the_rest_lands(env: Env, hostile: HostileProvider) -> None:
    hostile.faults.surrogate_id = "cand_0100"
    result = sync(env)
    assert result.status.value == "partial", result.error
    assert result.rejected == 1
    assert len(stored_candidates(env)) == 299 and "cand_0100" not in stored_candidates(env)
    ((table, rid, error, raw),) = rejects(env)
    assert (table, rid) == ("candidates", "cand_0100")
    assert "surrogate" in error
    assert "\\ud800" in raw and "Last100" in raw  # the record as sent, escape and all
    assert owed(env) == [("candidates", "candidates", "cand_0100")]


def test_nan_is_quarantined_not_stored_as_null(env: Env, hostile: HostileProvider) -> None:
    hostile.faults.nan_id = "cand_0010"
    result = sync(env)
    assert result.status.value == "partial" and result.rejected == 1
    ((_, rid, error, raw),) = rejects(env)
    assert rid == "cand_0010" and "JSON does not allow" in error and '"score":"NaN"' in raw


def test_a_value_no_column_can_hold_is_quarantined(env: Env, hostile: HostileProvider) -> None:
    hostile.faults.bigint_id = "cand_0020"
    result = sync(env)
    assert result.status.value == "partial" and result.rejected == 1
    assert len(env.raws("checkr", "reports", CONN)) == 299 and len(stored_candidates(env)) == 300
    ((table, rid, error, _),) = rejects(env)
    assert (table, rid) == ("reports", "rep_0020") and "turnaround_time" in error
    hostile.faults.bigint_id = None
    assert sync(env).refetched == 1  # an owed report is fetched again from /reports/{id}
    assert owed(env) == []


def test_an_8mb_string_is_written_in_a_write_of_its_own(env: Env, hostile: HostileProvider) -> None:
    hostile.faults.huge_id = "cand_0042"
    result = sync(env)  # the writer's default 48 MB
    assert result.status.value == "success", result.error
    assert len(stored_candidates(env)) == 300
    assert len(stored_candidates(env)["cand_0042"]["first_name"]) == hostile.faults.huge_bytes


@pytest.mark.file_only("the file writer's memory limit; a lake's catalog reads need more than 32 MB")
def test_a_record_too_large_for_the_writer_is_quarantined_naming_the_setting(
    env: Env, hostile: HostileProvider
) -> None:
    from integrations.engine.sync_runner import run_sync
    from warehouse.loader import Warehouse

    hostile.faults.huge_id = "cand_0042"
    hostile.faults.huge_bytes = 24 * 1024 * 1024
    with Warehouse(env.db, memory_limit="32MB") as wh:
        result = run_sync("checkr", CONN, "candidates", warehouse=wh, store=env.store)
    assert result.status.value == "partial", result.error
    assert result.rejected == 1 and len(stored_candidates(env)) == 299
    ((table, rid, error, _raw),) = rejects(env)
    assert (table, rid) == ("candidates", "cand_0042")
    assert "SCREENSYNC_WAREHOUSE_MEMORY" in error and "32MB" in error
    assert owed(env) == [("candidates", "candidates", "cand_0042")]
    hostile.faults.huge_id = None  # once it fits, the owed record lands by id
    retried = sync(env)
    assert retried.ok and retried.refetched == 1 and owed(env) == []


# ---- 3. quarantined records stay owed until a later fetch lands them ---------------------------

@pytest.mark.both_backends
def test_records_quarantined_in_an_incremental_sync_are_fetched_again_by_id(
    env: Env, hostile: HostileProvider
) -> None:
    hostile.faults.missing_created_every = 7
    first = sync(env)
    assert first.status.value == "partial"
    broken = {f"cand_{i:04d}" for i in range(300) if (i + 1) % 7 == 0}
    assert first.rejected == len(broken) == 42 and first.owed == 42
    assert {rid for _, _, rid in owed(env)} == broken
    assert all("created_at" in err for _, _, err, _ in rejects(env))
    # the reports inside the broken candidates still landed
    assert len(env.raws("checkr", "reports", CONN)) == 300

    hostile.faults.missing_created_every = None  # the provider is fixed
    second = sync(env)
    assert second.mode == "incremental"
    assert second.status.value == "success", second.error
    assert second.refetched == 42 and second.owed == 0
    assert owed(env) == []
    truth = hostile.truth()["candidates"]
    assert stored_candidates(env) == truth


def test_an_owed_record_that_is_gone_at_the_provider_is_no_longer_owed(env: Env, hostile: HostileProvider) -> None:
    hostile.faults.epoch_id = "cand_0299"
    assert sync(env).status.value == "partial"
    hostile.faults.epoch_id = None
    hostile.n_candidates = 299  # cand_0299 was deleted at the provider: GET answers 404
    second = sync(env)
    assert second.ok and second.owed == 0 and owed(env) == []


# ---- 4. one decision per type: what is coerced and what is rejected ----------------------------

def test_an_integer_epoch_in_a_date_time_field_is_rejected_not_converted(env: Env, hostile: HostileProvider) -> None:
    hostile.faults.epoch_id = "cand_0007"
    result = sync(env)
    assert result.status.value == "partial" and result.rejected == 1
    ((_, rid, error, _),) = rejects(env)
    assert rid == "cand_0007" and "created_at" in error and "ISO 8601" in error


def test_an_empty_record_id_is_rejected(env: Env, hostile: HostileProvider) -> None:
    hostile.faults.empty_id_at = 3
    result = sync(env)
    assert result.status.value == "partial" and result.rejected == 1
    assert "" not in stored_candidates(env)
    ((_, rid, error, _),) = rejects(env)
    assert rid is None and "id" in error and "empty" in error
    assert owed(env) == []  # an empty id cannot be fetched again


# ---- issue 12 item 4: a quarantined record was seen; it is never deleted -----------------------

@pytest.mark.both_backends
def test_a_quarantined_record_in_a_full_sync_is_not_marked_deleted(env: Env, hostile: HostileProvider) -> None:
    assert sync(env, "packages").status.value == "success"
    hostile.faults.broken_packages = {"pkg_03"}
    result = sync(env, "packages")
    assert result.status.value == "partial" and result.rejected == 1
    assert result.deleted == 0
    live = env.rows(f"SELECT id FROM checkr.packages WHERE connection_id = '{CONN}' AND _deleted_at IS NULL")
    assert len(live) == 12  # the last good version of pkg_03 stays, not deleted
    hostile.faults.broken_packages = set()
    fixed = sync(env, "packages")
    assert fixed.status.value == "success" and owed(env) == []


def test_an_unidentifiable_item_in_a_full_sync_skips_deletes(env: Env, hostile: HostileProvider) -> None:
    assert sync(env, "packages").ok
    hostile.n_packages = 11  # pkg_11 is gone at the provider ...
    hostile.faults.non_object_package = True  # ... or is it this item without an id?
    result = sync(env, "packages")
    assert result.status.value == "partial" and result.deleted == 0
    hostile.faults.non_object_package = False
    assert sync(env, "packages").deleted == 1  # a clean full run deletes it


# ---- an incremental sync that cannot fetch by id holds its cursor instead ----------------------

NO_REFETCH = """
name: checkr-no-refetch
extends: checkr
syncs:
  - name: candidates
    model: Candidate
    table: candidates
    endpoint: /candidates
    mode: incremental
    cursor: {field: created_at, param: created_after, lookback: 60}
    frequency: every 15m
"""


@pytest.fixture
def no_refetch(env: Env, hostile: HostileProvider, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from integrations.engine import registry

    folder = tmp_path / "integrations" / "checkr_no_refetch"
    folder.mkdir(parents=True)
    (folder / "definition.yaml").write_text(NO_REFETCH)
    monkeypatch.setenv(registry.PATH_ENV, str(folder.parent))
    registry.reload()
    add_connection(env.store, hostile.base, integration="checkr-no-refetch")
    yield "checkr-no-refetch"
    monkeypatch.delenv(registry.PATH_ENV)
    registry.reload()


def test_without_a_by_id_endpoint_the_cursor_waits_for_what_was_quarantined(
    env: Env, hostile: HostileProvider, no_refetch: str
) -> None:
    hostile.faults.epoch_id = "cand_0299"  # the newest candidate, on the first page
    first = env.sync(no_refetch, CONN, "candidates")
    assert first.status.value == "partial" and first.owed == 1
    (cursor,) = env.rows("SELECT cursor::VARCHAR FROM _screensync.sync_state WHERE integration = 'checkr-no-refetch'")[0]
    assert orjson.loads(cursor) < "2024-03-01T03:20:00"  # held before page 1 (cand_0200 onwards), not at cand_0299

    hostile.faults.epoch_id = None
    second = env.sync(no_refetch, CONN, "candidates")
    assert second.status.value == "success" and second.owed == 0 and second.refetched == 0
    assert second.pages == 2  # only what the hold kept unread: cand_0199 onwards, not the whole list
    assert "cand_0299" in env.raws("checkr_no_refetch", "candidates", CONN)
    (cursor,) = env.rows("SELECT cursor::VARCHAR FROM _screensync.sync_state WHERE integration = 'checkr-no-refetch'")[0]
    assert orjson.loads(cursor).startswith("2024-03-01T04:59:00")  # cand_0299: the cursor moves on
