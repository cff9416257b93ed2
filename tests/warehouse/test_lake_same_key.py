"""On a DuckLake, writers of one connection take turns and writers of different connections do not
(warehouse/lake_turns.py): two processes inserting the same new key of one connection at the same
instant leave one current row (INSERT-only commits do not conflict in DuckLake, so without the turn
both rows landed), while two connections' transactions still run at the same time.

Real parts: a throwaway PostgreSQL catalog, spawned writer processes, the loader's own page writes.
"""

from __future__ import annotations

import multiprocessing
from typing import TYPE_CHECKING, Any

import pytest

from tests.warehouse.lake_fixtures import fresh_lake_sessions, lake_url_fixture  # noqa: F401 (fixtures)
from tests.warehouse.lake_race_workers import write_one_report_meeting_inside
from tests.warehouse.whelpers import REPORTS
from warehouse.loader import Warehouse
from warehouse.read import query

if TYPE_CHECKING:
    from tests.support.postgres import PgDatabase

pytest_plugins = ["tests.support.postgres"]

HOLD_S = 4.0  # how long a writer waits, inside its transaction, for the other one to be inside too



def _race(url: str, writers: list[tuple[str, str]]) -> list[tuple[str, str, bool | None, float, float, str | None]]:
    """Each (connection, status) writes report r1 from its own process, all starting at once."""
    Warehouse(url).ensure_tables([REPORTS])  # DDL first, as `screensync warehouse migrate` does
    ctx = multiprocessing.get_context("spawn")
    start, inside, results = ctx.Barrier(len(writers)), ctx.Barrier(len(writers)), ctx.Queue()
    procs = [ctx.Process(target=write_one_report_meeting_inside, args=(url, conn, status, start, inside, HOLD_S,
                                                                        results)) for conn, status in writers]
    for p in procs:
        p.start()
    try:
        outcomes: list[Any] = [results.get(timeout=240) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    assert [o[-1] for o in outcomes] == [None] * len(writers), outcomes
    return outcomes


def test_two_processes_inserting_the_same_new_key_of_one_connection_leave_one_current_row(url: str) -> None:
    outcomes = _race(url, [("conn-1", "pending"), ("conn-1", "complete")])
    rows = query("SELECT connection_id, id, status FROM checkr.reports", path=url)
    assert len(rows) == 1, f"the key landed {len(rows)} times: {rows}"
    (first, second) = sorted(outcomes, key=lambda o: o[4])  # by commit time
    # they took turns: neither met the other inside its transaction, and the second began after the
    # first had committed, so it saw the first one's row and updated it instead of inserting again
    assert (first[2], second[2]) == (False, False), outcomes
    assert second[3] >= first[4] - 0.05, outcomes
    assert rows[0][2] == second[1]  # the later commit's version is the current one
    (versions,) = query("SELECT count(*) FROM checkr.reports_history", path=url)
    assert versions == (2,)  # the first version is history, not a second current row


def test_writers_of_different_connections_are_inside_their_transactions_at_once(url: str) -> None:
    outcomes = _race(url, [("conn-a", "pending"), ("conn-b", "pending")])
    assert [o[2] for o in outcomes] == [True, True], "the two connections' writes were serialized"
    assert query("SELECT connection_id, id FROM checkr.reports ORDER BY ALL", path=url) == [
        ("conn-a", "r1"), ("conn-b", "r1")]


def test_a_writer_waits_for_its_connections_turn_at_most_its_timeout_and_a_dead_holder_frees_it(
    url: str, postgres_db: PgDatabase
) -> None:
    import psycopg

    from tests.warehouse.whelpers import batch, page, rec
    from warehouse.lake_turns import TurnTimeout, lock_name

    wh = Warehouse(url, lock_timeout=1.0)
    wh.ensure_tables([REPORTS])
    holder = psycopg.connect(postgres_db.libpq, autocommit=True)  # another process, in conn-1's turn
    try:
        holder.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (lock_name("checkr", "conn-1"),))
        with pytest.raises(TurnTimeout, match=r"checkr/conn-1/reports: another writer of the same connection"):
            wh.write_page(page([batch([rec("r1")])], conn="conn-1"))
        wh.write_page(page([batch([rec("r2")])], conn="conn-2"))  # another connection does not wait
    finally:
        holder.close()  # as a killed process's session ends: its locks go with it
    wh.write_page(page([batch([rec("r1")])], conn="conn-1"))
    assert query("SELECT connection_id, id FROM checkr.reports ORDER BY ALL", path=url) == [
        ("conn-1", "r1"), ("conn-2", "r2")]  # the timed-out page wrote nothing (r1 once, by the retry)
