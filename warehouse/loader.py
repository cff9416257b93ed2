"""`Warehouse`: the one object the sync engine, the webhook applier and actions write through.

Every call is one short write session on the warehouse's backend (warehouse/backend.py): for the
embedded file, the process's writer attaches it for the call and lets go afterwards, so readers and
other processes get their turn between any two writes; for a DuckLake, the process's session on it.
A page is one transaction: records, history, seen keys, rejects and the checkpoint commit together
or not at all. Every write transaction is a function of the connection, run again whole when its
commit conflicts with another writer's (DuckLake; warehouse/retry.py): the staged Arrow tables it
writes are kept, so the retry writes exactly the same page against what the other writer committed.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import duckdb
import orjson
import pyarrow as pa

from warehouse import changes, due, freshness, gone, listed_since, owed, references
from warehouse import state as st
from warehouse.access import ROW_GROUP_SIZE
from warehouse.backend import Turn, is_lake, open_backend
from warehouse.columns import Column
from warehouse.connection import WarehouseError, WarehouseLocked
from warehouse.deletes import delete_marked, mark_rejects_seen, soft_delete_unseen
from warehouse.out_of_memory import WarehouseOutOfMemory, is_out_of_memory, write_in_parts
from warehouse.records import (
    ObjectWrite,
    PageWrite,
    RecordBatch,
    RejectedRecord,
    StagedBatch,
    TableTarget,
    WriteCounts,
)
from warehouse.retry import WarehouseConflict, retrying, rollback_quietly, short_error
from warehouse.staging import UnstorableValue, bounded_chunks, build_stage, dedupe_table, latest_per_key, per_row
from warehouse.state import RunRecord, SyncState
from warehouse.tables import ensure_model_tables, ident, table_ref, target_columns
from warehouse.upsert import upsert_stage
from warehouse.views import ViewPartLike, create_meta_views, create_views

log = logging.getLogger("screensync.warehouse")

__all__ = [
    "ROW_GROUP_SIZE",
    "ObjectWrite",
    "PageWrite",
    "RecordBatch",
    "RejectedRecord",
    "Rows",
    "RunRecord",
    "StagedBatch",
    "SyncState",
    "TableTarget",
    "Warehouse",
    "WarehouseConflict",
    "WarehouseError",
    "WarehouseLocked",
    "WarehouseOutOfMemory",
    "WriteCounts",
]


# The writer's buffer pool: what it has written stays cached up to this, then is evicted. With
# more, a sync's peak memory grew with the amount it had written (128 MB: 373 MB at 100,000
# candidates against 322 MB at 20,000). Once writes went straight to the file as whole row
# groups, 48 MB was as fast as 64 MB and ~15 MB lighter; wide records are safe because staged
# tables reach DuckDB in chunks of at most 4 MB (staging.MAX_CHUNK_BYTES), and a write that still
# does not fit is split, down to quarantining one record too large alone (out_of_memory.py).
# Raise it with SCREENSYNC_WAREHOUSE_MEMORY: the errors say so.
MEMORY_LIMIT = os.environ.get("SCREENSYNC_WAREHOUSE_MEMORY", "48MB")

BULK_ROWS = ROW_GROUP_SIZE // 8  # a write this large into one table never vacuums (warehouse/backend.py)
LAKE_SPILL = Path.home() / ".screensync" / "lake-rejected"  # raws too large to quarantine, lake warehouses
T = TypeVar("T")
# per warehouse (backend identity): the tables this process has created/evolved, with their columns.
# Warehouse objects are made per sync (flows, benchmarks): ensuring a sync's tables again was ~10%
# of a small connection's sync (bench/connection_overhead.py).
_ENSURED: dict[tuple[Any, ...], dict[TableTarget, tuple[Column, ...]]] = {}


def _purpose() -> str:
    """What this process is, for the message of whoever waits for its write."""
    words = [os.path.basename(sys.argv[0] or "python"), *sys.argv[1:4]]
    return " ".join(words)[:100]


@dataclass
class Rows:
    """A query's result, fetched before the write session ended."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None


class Warehouse:
    def __init__(
        self,
        path: str | Path,
        *,
        lock_timeout: float = 30.0,
        threads: int = 1,
        memory_limit: str = MEMORY_LIMIT,
        purpose: str | None = None,
    ) -> None:
        """`path`: a warehouse file, or a `ducklake:postgres://...` URL (warehouse/ducklake.py).
        `lock_timeout`: the longest one write waits for the file (WarehouseLocked after it).
        `threads=1` because the writer runs many ~100-row statements: DuckDB's thread
        scheduling costs more than it saves on those (a page write took half the time in
        measurements). `purpose` names this writer to whoever waits for it.

        The warehouse and its meta tables are created here: a bad path or URL or a held file fails now."""
        self.lake = is_lake(path)
        self.path: Path = LAKE_SPILL if self.lake else Path(path)  # the file (lake: where spilled raws go)
        self.lock_timeout = lock_timeout
        self.memory_limit = memory_limit
        self.purpose = purpose or _purpose()
        self._backend = open_backend(path)
        self.name = self._backend.name  # for messages
        self._view_parts: list[ViewPartLike] | None = None
        self._settings = {
            "threads": str(int(threads)),
            "memory_limit": f"'{memory_limit}'",
            # Trying dictionary compression on every string column of every row group was ~15% of a
            # first load's write time and ~17 MB of its peak memory; without it the strings go to
            # FSST and the file was 5% larger (docs/benchmarks.md). Readers are unaffected.
            "disabled_compression_methods": "'dictionary'",
            # A checkpoint's vacuum merged each write's tail row group into its neighbours, re-compressing
            # most of a first load (+15-40% CPU in bench/sync_full.py, files 5-20% larger); and it is
            # global: a vacuum at any checkpoint merges every table's small row groups. So no vacuum...
            "max_vacuum_tasks": "0",  # ...except at one small write's checkpoint now and then (backend.py)
        }
        self._owing: set[tuple[str, str, str]] | None = None  # (integration, connection, table) owing records
        self._seen_generation = -1
        self._columns: dict[TableTarget, tuple[Column, ...]] = {}
        self._found_existing: dict[TableTarget, bool] = {}  # last write of the table met known keys
        # fresh attempts whose position the next write transaction of their connection appends
        self._begun: dict[tuple[str, str, str], st.Begun] = {}
        self._begun_lock = threading.Lock()
        with self._session():
            pass
        identity = getattr(self._backend, "identity", (self.name,))  # a lake: its URL
        self._columns = _ENSURED.setdefault(identity, {})

    # -- sessions ------------------------------------------------------------------------------
    @contextmanager
    def _session(self, *, bulk: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        backend = self._backend
        with backend.session(timeout=self.lock_timeout, what=self.purpose, settings=self._settings,
                             bulk=bulk) as con:
            if backend.generation != self._seen_generation:  # others may have written since
                self._seen_generation = backend.generation
                self._owing = None
            yield con

    @contextmanager
    def transaction(self, *, bulk: bool = False, turns: Iterable[Turn] = (),
                    what: str = "a write") -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction (the file is this thread's until it commits or rolls back), tried
        once: on a DuckLake its COMMIT can fail with a conflict; `write()` retries it.
        `bulk`: it writes whole row groups (no vacuum at its checkpoint). `turns`: the (integration,
        connection)s whose records it writes: on a DuckLake it begins once it is their writers' turn
        and ends theirs with its COMMIT (warehouse/lake_turns.py)."""
        turns = tuple(turns)
        with self._session(bulk=bulk) as con, self._turns(turns, what):
            con.execute("BEGIN TRANSACTION")
            try:
                begun = self._write_begun(con, turns)
                yield con
            except BaseException:
                self._forget()
                rollback_quietly(con)
                raise
            try:
                con.execute("COMMIT")  # a failed COMMIT has ended the transaction: nothing to roll back
            except BaseException:
                self._forget()
                raise
            with self._begun_lock:  # still in the session: no other write of this process can start between
                for b in begun:
                    if self._begun.get(b.key) is b:
                        del self._begun[b.key]

    def _write_begun(self, con: duckdb.DuckDBPyConnection, turns: tuple[Turn, ...]) -> list[st.Begun]:
        """Append the deferred attempt positions of the connections this transaction writes."""
        with self._begun_lock:
            begun = [b for b in self._begun.values() if b.key[:2] in turns]
        for b in begun:
            st.write_begun(con, b, self._newest())
        return begun

    _transaction = transaction

    def _newest(self) -> st.Newest | None:
        """The newest positions this process wrote, where it may build on them unread (state._append)."""
        memo = self._backend.memo
        return None if memo is None else memo.setdefault("positions", {})

    def _forget(self) -> None:
        """After a failed write: what it noted as written may not be (its transaction rolled back)."""
        memo = self._backend.memo
        if memo is not None:
            memo.clear()

    def holding(self) -> AbstractContextManager[None]:
        """For a run of several writes (one sync): the embedded file stays attached between them
        while nobody else waits (one attach and checkpoint instead of one per write,
        warehouse/access.py). A lake keeps its session open anyway: nothing to do."""
        if os.environ.get("SCREENSYNC_WAREHOUSE_HOLD", "1") == "0":  # 0: one attach per write (A/B)
            return nullcontext()
        return self._backend.hold()

    def _turns(self, turns: Iterable[Turn], what: str) -> AbstractContextManager[None]:
        return self._backend.turns(turns, timeout=self.lock_timeout, what=what)

    def write(self, work: Callable[[duckdb.DuckDBPyConnection], T], *, what: str, bulk: bool = False,
              turns: Iterable[Turn] = ()) -> T:
        """`work(con)` in one write transaction, run again whole (after a jittered pause) while its
        commit conflicts with another writer's; WarehouseConflict after the bound (warehouse/retry.py).
        `work` must do all its writing through `con` and keep nothing of a failed attempt. `turns`:
        every (integration, connection) whose records `work` writes (`transaction`)."""
        turns = tuple(turns)

        def once() -> T:
            with self._transaction(bulk=bulk, turns=turns, what=what) as con:
                return work(con)

        try:
            return retrying(once, what=f"{what} to {self.name}")
        except duckdb.TransactionException as exc:  # a failed COMMIT: DuckLake's goes on with the rows
            if is_out_of_memory(exc):
                raise
            raise WarehouseError(f"could not write {what} to {self.name}: {short_error(exc)}") from None

    def _retried(self, work: Callable[[duckdb.DuckDBPyConnection], T], *, what: str, turn: Turn | None = None) -> T:
        """`work(con)` in a write session, where `work` runs its own transaction: retried whole on a
        conflict; in `turn`'s writers' turn, when given (`transaction`)."""
        def once() -> T:
            with self._session() as con, self._turns([turn] if turn else [], what):
                try:
                    return work(con)
                except BaseException:
                    self._forget()
                    raise

        return retrying(once, what=f"{what} to {self.name}")

    def execute(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> Rows:
        """Run one statement in a write session and return its rows (fetched before the file is let go).
        It may change any table: what this process knew of the tables is forgotten."""
        self._columns.clear()  # the process's cache for this warehouse (_ENSURED): ensured again on use
        self._forget()
        def run(con: duckdb.DuckDBPyConnection) -> Rows:
            cur = con.execute(sql, params)
            if cur.description is None:
                return Rows([], [])
            return Rows([d[0] for d in cur.description], cur.fetchall())

        return self._retried(run, what="a statement")

    def close(self) -> None:
        """Nothing stays open between calls; kept so `with Warehouse(...)` reads naturally."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- tables ----------------------------------------------------------------------------
    def ensure_tables(self, targets: Iterable[TableTarget]) -> None:
        """Create/evolve tables (idempotent; cheap after the first call per target)."""
        todo = [t for t in targets if t not in self._columns]
        if not todo:
            return
        def evolve(con: duckdb.DuckDBPyConnection) -> bool:
            created_any = False
            for target in todo:
                created, _added = ensure_model_tables(con, target)
                changes.note_primary_key(con, target)
                created_any = created_any or created
            # a file written before the change feed: its views (sync_freshness too) are from then
            return created_any or changes.feed_view_missing(con)

        with self._session():
            created_any = self.write(evolve, what="tables")
            if created_any and self._view_parts is not None:
                self.create_views()
            elif created_any:  # no integration parts given: leave their views, make screensync's own
                self.write(create_meta_views, what="views")
        for target in todo:
            self._columns[target] = target_columns(target)

    def use_view_parts(self, parts: Iterable[ViewPartLike]) -> Warehouse:
        """The integrations' parts of the `unified` views: recreated from them whenever a table is
        created. A warehouse given none leaves existing views alone."""
        self._view_parts = list(parts)
        return self

    def create_views(self, parts: Iterable[ViewPartLike] | None = None) -> dict[str, int]:
        """(Re)create the `unified` views from `parts` (default: those given to `use_view_parts`)."""
        chosen = parts if parts is not None else self._view_parts
        return self.write(lambda con: create_views(con, chosen), what="the unified views")

    def _cols(self, target: TableTarget) -> tuple[Column, ...]:
        if target not in self._columns:
            self.ensure_tables([target])
        return self._columns[target]

    # -- writes ----------------------------------------------------------------------------
    def stage(self, batch: RecordBatch, rejects: list[RejectedRecord] | None = None) -> StagedBatch:
        """Convert validated rows to Arrow now, so they can wait for a later, larger write.

        A row with a value its column cannot hold (an integer beyond 64 bits, say) raises
        ValueError naming the column; given `rejects`, it is left out and quarantined there instead."""
        target = batch.target
        cols = self._cols(target)
        rows, raws = batch.rows, batch.raws
        if len(rows) != len(raws):
            raise ValueError(f"{target.qualified}: {len(rows)} rows but {len(raws)} raw JSON strings; "
                             "they must match one to one")
        observed = per_row(batch.observed_at, len(rows))
        run_ids = batch.run_ids
        keep = latest_per_key(target.primary_key, rows, observed)
        if keep is not None:
            rows, raws, observed = [rows[i] for i in keep], [raws[i] for i in keep], [observed[i] for i in keep]
            run_ids = None if run_ids is None else [run_ids[i] for i in keep]

        def build(at: list[int] | None) -> pa.Table:
            pick = range(len(rows)) if at is None else at
            return build_stage(cols, target.primary_key, [rows[i] for i in pick], [raws[i] for i in pick],
                               target.qualified, observed=[observed[i] for i in pick],
                               run_ids=None if run_ids is None else [run_ids[i] for i in pick])

        try:
            table = build(None)
        except UnstorableValue:
            if rejects is None:
                raise
            good = []
            for i, row in enumerate(rows):
                try:
                    build([i])
                    good.append(i)
                except UnstorableValue as exc:
                    key = row.get(target.primary_key)
                    rejects.append(RejectedRecord(target.table, None if key is None else str(key), str(exc), raws[i]))
            table = build(good)
        return StagedBatch(target, [bounded_chunks(table)], track_seen=batch.track_seen)

    def _write_batches(
        self,
        con: duckdb.DuckDBPyConnection,
        batches: Iterable[RecordBatch | StagedBatch],
        *,
        integration: str,
        connection_id: str,
        run_id: str,
        attempt_id: str | None,
    ) -> WriteCounts:
        total = WriteCounts()
        for batch in batches:
            staged = self.stage(batch) if isinstance(batch, RecordBatch) else batch
            if not staged.num_rows:
                continue
            tables = staged.tables
            stage = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
            deduped = dedupe_table(staged.target.primary_key, stage)
            stage = stage if deduped is stage else bounded_chunks(deduped)
            counts = upsert_stage(
                con,
                staged.target,
                self._columns[staged.target],
                stage,
                connection_id=connection_id,
                run_id=run_id,
                seen_attempt=attempt_id if staged.track_seen else None,
                expect_existing=self._found_existing.get(staged.target, False),
                lake=self.lake,
            )
            self._found_existing[staged.target] = counts.added < stage.num_rows
            if staged.target.deleted_field:
                delete_marked(con, staged.target, connection_id=connection_id, run_id=run_id)
            self._settle_owed(con, integration, connection_id, staged.target, stage)
            total = total + counts
        return total

    def _settle_owed(
        self, con: duckdb.DuckDBPyConnection, integration: str, connection_id: str, target: TableTarget, stage: pa.Table
    ) -> None:
        """Owed records of `target` that this write landed are owed no more (nothing to do, and no
        statement, when the table owes nothing: the usual case)."""
        if self._owing is None:
            self._owing = owed.owing_tables(con)
        if (integration, connection_id, target.table) not in self._owing:
            return
        con.register("_screensync_landed", stage)
        try:
            owed.settle_landed(con, integration=integration, connection_id=connection_id, table=target.table,
                               stage="_screensync_landed", key=ident(target.primary_key), main=table_ref(target))
        finally:
            con.unregister("_screensync_landed")

    def write_page(self, page: PageWrite) -> WriteCounts:
        """Upsert every batch, store rejects, seen keys and checkpoint/cursor — one transaction.

        A write too large for the writer's memory is written again in smaller parts before the
        transaction that moves the checkpoint; a record too large alone is quarantined."""
        rejects = list(page.rejects)
        staged = [b if isinstance(b, StagedBatch) else self.stage(b, rejects) for b in page.batches]
        page = replace(page, batches=staged, rejects=rejects)
        try:
            counts = self._commit(page)
        except WarehouseOutOfMemory as exc:
            log.warning("%s Writing its records in smaller parts.", exc)
            spill = self.path / "rejected" if self.lake else self.path.parent / f".{self.path.name}.rejected"
            counts = write_in_parts(self._commit, page, self.memory_limit, spill)
        counts.rejected += len(rejects)
        return counts

    def _commit(self, page: PageWrite) -> WriteCounts:
        what = f"{page.integration}/{page.connection_id}/{page.sync}"
        bulk = any(isinstance(b, StagedBatch) and b.num_rows >= BULK_ROWS for b in page.batches)
        try:
            return self.write(lambda con: self._write_page(con, page), what=what, bulk=bulk,
                              turns=[(page.integration, page.connection_id)])
        except duckdb.Error as exc:  # name what was being written, and the setting when it is memory
            if is_out_of_memory(exc):
                raise WarehouseOutOfMemory(what, self.path, self.memory_limit, exc) from exc
            # a DuckLake commit error goes on with the rows it tried to write: its first lines only
            raise WarehouseError(f"could not write {what} to {self.name}: {short_error(exc)}") from None

    def _write_page(self, con: duckdb.DuckDBPyConnection, page: PageWrite) -> WriteCounts:
        # rejects first: a record rejected and landed in the same write has landed
        self._quarantine(con, page)
        counts = self._write_batches(
            con, page.batches, integration=page.integration, connection_id=page.connection_id,
            run_id=page.run_id, attempt_id=page.attempt_id,
        )
        st.save_position(
            con,
            page.integration,
            page.connection_id,
            page.sync,
            checkpoint=page.checkpoint,
            cursor=page.cursor,
            attempt_id=page.attempt_id,
            list_from=page.list_from,
            newest=self._newest(),
        )
        return counts

    def _quarantine(self, con: duckdb.DuckDBPyConnection, page: PageWrite) -> None:
        """Store the rejects, owe the identified ones, and count them as seen by a delete-tracking attempt."""
        if not page.rejects:
            return
        st.insert_rejects(
            con,
            page.rejects,
            run_id=page.run_id,
            integration=page.integration,
            connection_id=page.connection_id,
            sync=page.sync,
        )
        tables = owed.owe(con, page.rejects, integration=page.integration, connection_id=page.connection_id,
                          sync=page.sync, run_id=page.run_id)
        if self._owing is not None:
            self._owing |= {(page.integration, page.connection_id, t) for t in tables}
        tracked = {b.target.table: b.target for b in page.batches if b.track_seen}
        for table, target in tracked.items():
            ids = [r.record_id if r.record_id and r.record_id.strip() else None for r in page.rejects if r.model == table]
            mark_rejects_seen(con, target, connection_id=page.connection_id, attempt_id=page.attempt_id, ids=ids)

    def write_objects(self, writes: list[ObjectWrite]) -> list[WriteCounts]:
        """Upsert objects outside a sync run (webhooks), for any number of connections, in ONE
        transaction: never touches seen keys or sync state. Rejects are stored (not owed: the
        event that carried them is what fails). Counts per write, in order."""
        staged: list[tuple[ObjectWrite, list[StagedBatch], list[RejectedRecord]]] = []
        for w in writes:
            rejects = list(w.rejects)
            staged.append((w, [self.stage(b, rejects) for b in w.batches if b.rows], rejects))

        def work(con: duckdb.DuckDBPyConnection) -> list[WriteCounts]:
            results = []
            for w, batches, rejects in staged:
                counts = self._write_batches(con, batches, integration=w.integration, connection_id=w.connection_id,
                                             run_id=w.run_id, attempt_id=None)
                for b in batches:
                    listed_since.delete_unlisted_arrivals(con, b.target, integration=w.integration,
                                                          connection_id=w.connection_id, run_id=w.run_id)
                st.insert_rejects(con, rejects, run_id=w.run_id, integration=w.integration,
                                  connection_id=w.connection_id, sync=w.sync)
                counts.rejected += len(rejects)
                results.append(counts)
                if w.received_at is not None:
                    freshness.note_arrivals(con, integration=w.integration, connection_id=w.connection_id,
                                            received_at=w.received_at, events=w.events)
            return results

        return self.write(work, what=f"{len(writes)} webhook write(s)",
                          turns=[(w.integration, w.connection_id) for w in writes])

    # -- sync state ----------------------------------------------------------------------------
    def get_state(self, integration: str, connection_id: str, sync: str) -> SyncState | None:
        with self._session() as con:
            return st.get_state(con, integration, connection_id, sync)

    def begin_attempt(self, integration: str, connection_id: str, sync: str, *, fresh: bool = False,
                      stored: SyncState | st.Unread | None = st.UNREAD, defer: bool = False) -> SyncState:
        """Resume the key's attempt or start a fresh one (state.start_attempt).

        `stored`: what `get_state` just returned for the key, under its sync lock (not read again).
        `defer`: a fresh attempt's position is appended by the next write transaction of its
        connection (a page, the attempt's end, a failure noted) instead of a transaction of its own,
        a session and a commit a run fewer; a run that writes nothing leaves no trace of it."""
        key = (integration, connection_id, sync)
        with self._begun_lock:
            self._begun.pop(key, None)  # an earlier run's that never wrote (its replaced attempt is not ours to drop)
        if defer:
            if isinstance(stored, st.Unread):
                stored = self.get_state(integration, connection_id, sync)
            state, begun = st.start_attempt(stored, integration, connection_id, sync, fresh=fresh)
            if begun is not None:
                with self._begun_lock:
                    self._begun[key] = begun
            return state
        return self._retried(lambda con: st.begin_attempt(con, integration, connection_id, sync, fresh=fresh,
                                                          newest=self._newest(), stored=stored),
                             what=f"{integration}/{connection_id}/{sync}'s attempt", turn=(integration, connection_id))

    def note_failure(self, integration: str, connection_id: str, sync: str, how: str) -> int:
        if (integration, connection_id, sync) in self._begun:  # counted against the attempt it began
            self.write(lambda con: None, what=f"{integration}/{connection_id}/{sync}'s attempt",
                       turns=[(integration, connection_id)])
        return self._retried(lambda con: st.note_failure(con, integration, connection_id, sync, how,
                                                         newest=self._newest()),
                             what=f"{integration}/{connection_id}/{sync}'s failure", turn=(integration, connection_id))

    def complete_attempt(
        self,
        integration: str,
        connection_id: str,
        sync: str,
        attempt_id: str,
        *,
        deletes: list[TableTarget],
        run_id: str,
        observed_at: datetime | None = None,
        run_row: Callable[[int], RunRecord] | None = None,
    ) -> int:
        """Soft-delete unseen rows of `deletes`, clear the checkpoint, drop seen keys — one transaction.
        `observed_at` (provider clock) is when the run last heard from the provider. `run_row(deleted)`:
        the run's row of `sync_runs`, appended in the same transaction (a commit a run fewer)."""
        for t in deletes:
            self._cols(t)

        def finish(con: duckdb.DuckDBPyConnection) -> int:
            deleted = sum(
                soft_delete_unseen(con, t, connection_id=connection_id, attempt_id=attempt_id, run_id=run_id,
                                   observed_at=observed_at)
                for t in deletes
            )
            listed_since.note_list_read(con, integration, connection_id, sync, deletes)
            st.finish_attempt(con, integration, connection_id, sync, attempt_id, self._newest())
            if run_row is not None:
                st.record_run(con, run_row(deleted))
            return deleted

        deleted = self.write(finish, what=f"the end of {integration}/{connection_id}/{sync}",
                             turns=[(integration, connection_id)])
        if deleted:
            log.info(
                "%s/%s/%s: %d record(s) gone from the provider marked deleted",
                integration,
                connection_id,
                sync,
                deleted,
            )
        return deleted

    def record_run(self, run: RunRecord) -> None:
        self._retried(lambda con: st.record_run(con, run), what=f"run {run.run_id}")

    # -- owed records ------------------------------------------------------------------------
    def owed_records(
        self, *, integration: str | None = None, connection_id: str | None = None, sync: str | None = None
    ) -> list[owed.OwedRecord]:
        with self._session() as con:
            if integration is not None and connection_id is not None and not self._owes(con, integration, connection_id):
                return []
            return owed.owed_records(con, integration=integration, connection_id=connection_id, sync=sync)

    def count_owed(self, integration: str, connection_id: str, sync: str) -> int:
        with self._session() as con:
            if not self._owes(con, integration, connection_id):
                return 0
            return owed.count_owed(con, integration, connection_id, sync)

    def _owes(self, con: duckdb.DuckDBPyConnection, integration: str, connection_id: str) -> bool:
        """Might the connection owe anything? From the (integration, connection, table)s that owe,
        read once per session generation and added to by this object's quarantines: a sync's owed
        records are only ever written by that sync's own runs, so no query when it owes nothing
        (two a run, the usual case)."""
        if self._owing is None:
            self._owing = owed.owing_tables(con)
        return any(i == integration and c == connection_id for i, c, _ in self._owing)

    def mark_gone(self, target: TableTarget, *, integration: str, connection_id: str, ids: list[str], reason: str,
                  run_id: str, observed_at: datetime | None = None) -> None:
        """The provider no longer has these records: soft-delete them with `reason`, owe them no more.
        `observed_at`: the provider's time of the answer that said so."""
        self._cols(target)
        self.write(lambda con: gone.mark_gone(con, target, integration=integration, connection_id=connection_id,
                                              ids=ids, reason=reason, run_id=run_id, observed_at=observed_at),
                   what=f"{len(ids)} gone record(s)", turns=[(integration, connection_id)])

    def prune_changes(self, before: int) -> int:
        """Drop change-feed rows with a cursor below `before` (warehouse/changes.py); returns how many."""
        return self.write(lambda con: changes.prune(con, before=before), what="a change feed prune")

    # -- reads the engine needs --------------------------------------------------------------
    def missing_references(self, source: TableTarget, field: str, target: TableTarget, *, integration: str,
                           connection_id: str, limit: int) -> list[str]:
        """Ids `source.field` names that `target` does not hold, owe or know to be gone (references.py)."""
        self._cols(source)
        self._cols(target)
        with self._session() as con:
            return references.missing_references(con, source, field, target, integration=integration,
                                                 connection_id=connection_id, limit=limit)

    def due_record_ids(self, target: TableTarget, **kw: Any) -> list[str]:
        """Open records due for a re-check, most overdue first (warehouse/due.py)."""
        self._cols(target)
        with self._session() as con:
            return due.due_ids(con, target, **kw)

    def note_checked(self, target: TableTarget, *, integration: str, connection_id: str, ids: list[str]) -> None:
        self.write(lambda con: due.note_checked(con, target, integration=integration, connection_id=connection_id,
                                                ids=ids), what="re-check times", turns=[(integration, connection_id)])

    def stored_raws(self, target: TableTarget, connection_id: str, ids: list[str]) -> dict[str, Any]:
        """id -> the stored record (`_raw`, parsed) of these live ids: what a partial answer is laid over."""
        if not ids:
            return {}
        pk = ident(target.primary_key)
        self._cols(target)
        with self._session() as con:
            rows = con.execute(
                f"""SELECT CAST({pk} AS VARCHAR), _raw FROM {table_ref(target)}
                WHERE connection_id = $conn AND _deleted_at IS NULL AND CAST({pk} AS VARCHAR) IN (SELECT unnest($ids))""",
                {"conn": connection_id, "ids": ids},
            ).fetchall()
        return {rid: orjson.loads(raw) for rid, raw in rows}

    def open_record_ids(
        self, target: TableTarget, connection_id: str, state_field: str, terminal_states: Iterable[Any]
    ) -> list[str]:
        """Ids of live records whose `state_field` is not terminal, or that are due for a re-check
        (two versions observed at the same time, upsert.py): what a repoll sync re-fetches."""
        cols = {c.name for c in self._cols(target)}
        if state_field not in cols:
            raise ValueError(f"{target.qualified} has no column {state_field!r} to repoll on")
        pk, field = ident(target.primary_key), ident(state_field)
        terminal = [str(s) for s in terminal_states]
        with self._session() as con:
            rows = con.execute(
                f"""SELECT CAST({pk} AS VARCHAR) FROM {table_ref(target)}
                WHERE connection_id = $conn AND _deleted_at IS NULL
                  AND ({field} IS NULL OR CAST({field} AS VARCHAR) <> ALL($terminal::VARCHAR[])
                       OR _recheck_at IS NOT NULL)
                ORDER BY 1""",
                {"conn": connection_id, "terminal": terminal},
            ).fetchall()
        return [r[0] for r in rows]
