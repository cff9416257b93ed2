"""Column mapping, schema evolution, bad input, `unified` views and sync freshness."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from tests.support.warehouse_target import WarehouseTarget
from tests.warehouse.whelpers import REPORTS, batch, page, rec
from warehouse.columns import model_columns
from warehouse.loader import RunRecord, TableTarget, Warehouse, WriteCounts
from warehouse.query import run_query
from warehouse.views import ViewPart

pytestmark = pytest.mark.both_backends  # every test here runs on the DuckDB file and on a DuckLake (but file_only ones)


class Color(enum.StrEnum):
    RED = "red"


class Inner(BaseModel):
    a: int


class Everything(BaseModel):
    id: str = Field(alias="ID")
    n: int | None = None
    f: float
    b: bool
    ts: datetime
    d: date
    money: Decimal
    names: list[str]
    nums: list[int]
    obj: dict[str, Any]
    inner: Inner | None
    inners: list[Inner]
    anything: Any
    color: Color
    kind: Literal["a", "b"]


def test_model_fields_map_to_duckdb_types() -> None:
    types = {c.name: c.duckdb_type for c in model_columns(Everything)}
    assert types == {
        "id": "VARCHAR", "n": "BIGINT", "f": "DOUBLE", "b": "BOOLEAN", "ts": "TIMESTAMPTZ", "d": "DATE",
        "money": "DECIMAL(18,4)", "names": "VARCHAR[]", "nums": "BIGINT[]", "obj": "JSON", "inner": "JSON",
        "inners": "JSON", "anything": "JSON", "color": "VARCHAR", "kind": "VARCHAR",
    }  # fmt: skip


def test_every_type_round_trips(db: WarehouseTarget) -> None:
    target = TableTarget("demo", "everything", Everything)
    data = {"ID": "e1", "f": 1.5, "b": True, "ts": "2024-01-02T03:04:05Z", "d": "2024-01-02", "money": "9.99",
            "names": ["x"], "nums": [1, 2], "obj": {"k": [1]}, "inner": {"a": 1}, "inners": [{"a": 2}],
            "anything": None, "color": "red", "kind": "b"}  # fmt: skip
    with Warehouse(db) as wh:
        wh.ensure_tables([target])
        assert wh.write_page(page([batch([data], Everything, target)])) == WriteCounts(added=1)
        row = wh.execute(
            "SELECT id, n, f, b, ts, d, money, names, nums, obj->'k'->>0, \"inner\"->>'a', inners->0->>'a', anything, "
            "color, kind FROM demo.everything"
        ).fetchone()
    assert row == ("e1", None, 1.5, True, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC).astimezone(row[4].tzinfo),
                   date(2024, 1, 2), Decimal("9.9900"), ["x"], [1, 2], "1", "1", "2", None, "red", "b")  # fmt: skip


def test_a_new_model_field_becomes_a_column_and_keeps_old_rows(db: WarehouseTarget) -> None:
    with Warehouse(db) as wh:
        wh.ensure_tables([REPORTS])
        wh.write_page(page([batch([rec("r1"), rec("r2")])]))

    class ReportV2(REPORTS.model):  # type: ignore[misc,valid-type]
        package: str | None = None

    v2 = TableTarget("checkr", "reports", ReportV2)
    with Warehouse(db) as wh:
        wh.ensure_tables([v2])
        cols = {r[0] for r in wh.execute("DESCRIBE checkr.reports_history").fetchall()}
        assert "package" in cols
        assert wh.execute("SELECT id, package FROM checkr.reports ORDER BY id").fetchall() == [
            ("r1", None),
            ("r2", None),
        ]
        counts = wh.write_page(page([batch([rec("r1", package="basic"), rec("r3", package="pro")], ReportV2, v2)]))
        assert counts == WriteCounts(added=1, updated=1)  # r1 is rewritten once to fill the new column
        assert wh.execute("SELECT id, package FROM checkr.reports ORDER BY id").fetchall() == [
            ("r1", "basic"),
            ("r2", None),
            ("r3", "pro"),
        ]


def test_bad_input_gets_a_clear_error(tmp_path: Path, wh: Warehouse) -> None:
    class NoKey(BaseModel):
        name: str

    with pytest.raises(ValueError, match="primary key 'id' is not a field of NoKey"):
        wh.ensure_tables([TableTarget("checkr", "nokey", NoKey)])
    with pytest.raises(ValueError, match="invalid schema name 'bad-schema'"):
        wh.ensure_tables([TableTarget("bad-schema", "reports", REPORTS.model)])
    bad = batch([rec("r1"), rec("r2")])
    bad.rows[0]["created_at"] = "yesterday"
    with pytest.raises(ValueError, match=r"checkr.reports.created_at: cannot store str as TIMESTAMPTZ"):
        wh.stage(bad)
    # in a write, that record is quarantined with the same error and the others land
    assert wh.write_page(page([bad])).rejected == 1
    assert wh.execute("SELECT id FROM checkr.reports").fetchall() == [("r2",)]
    ((rid, error),) = wh.execute("SELECT record_id, error FROM _screensync.rejected_records").fetchall()
    assert rid == "r1" and "checkr.reports.created_at: cannot store str as TIMESTAMPTZ" in error
    short = batch([rec("r1"), rec("r2")])
    short.raws.pop()
    with pytest.raises(ValueError, match="2 rows but 1 raw JSON"):
        wh.write_page(page([short]))
    # a file named after a schema (the lake has no file name; the clash is the file's own)
    with Warehouse(tmp_path / "checkr.duckdb") as clash, pytest.raises(ValueError, match="another name"):
        clash.ensure_tables([REPORTS])


@pytest.fixture
def parts(wh: Warehouse) -> Any:
    wh.use_view_parts([ViewPart.of(
        "background_checks",
        "SELECT 'checkr' AS provider, connection_id, id AS check_id, candidate_id, NULL::VARCHAR AS candidate_email, "
        "NULL::VARCHAR AS package, status, result, created_at, NULL::TIMESTAMPTZ AS completed_at, NULL::DOUBLE AS "
        "turnaround_hours FROM checkr.reports WHERE _deleted_at IS NULL",
        ["checkr.reports"],
    ), ViewPart.of(
        "background_checks",
        "SELECT 'clearchecks' AS provider, connection_id, id AS check_id FROM clearchecks.reports",
        ["clearchecks.reports"],
    )])


def test_unified_views_use_only_parts_whose_tables_exist(parts: Any, wh: Warehouse) -> None:
    wh.write_page(page([batch([rec("r1", "complete", result="clear"), rec("r2")])]))
    used = wh.create_views()
    assert used["background_checks"] == 1 and used["invoices"] == 0
    rows = wh.execute("SELECT provider, check_id, status FROM unified.background_checks ORDER BY 2").fetchall()
    assert rows == [("checkr", "r1", "complete"), ("checkr", "r2", "pending")]
    assert wh.execute("SELECT count(*) FROM unified.invoices").fetchone() == (0,)  # empty but queryable
    with pytest.raises(ValueError, match="requires 'reports'"):
        ViewPart.of("invoices", "SELECT 1", ["reports"])


_FULL_PART = (
    "SELECT 'checkr' AS provider, connection_id, id AS check_id, candidate_id, NULL::VARCHAR AS candidate_email, "
    "NULL::VARCHAR AS package, status, result, created_at, NULL::TIMESTAMPTZ AS completed_at, "
    "NULL::DOUBLE AS turnaround_hours FROM checkr.reports"
)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (_FULL_PART.replace(" result,", ""), "lacks column 'result'"),
        (_FULL_PART.replace(" result,", " result, 1 AS score,"), "has column 'score', which the contract"),
        (_FULL_PART.replace("NULL::TIMESTAMPTZ AS completed_at", "true AS completed_at"),
         "returns column 'completed_at' as BOOLEAN; the contract says TIMESTAMPTZ"),
    ],
)
def test_a_part_that_breaks_its_views_column_contract_fails_naming_the_column(
    wh: Warehouse, sql: str, message: str
) -> None:
    wh.write_page(page([batch([rec("r1")])]))
    assert wh.create_views([ViewPart.of("background_checks", _FULL_PART, ["checkr.reports"])])["background_checks"] == 1
    with pytest.raises(ValueError, match=message):
        wh.create_views([ViewPart.of("background_checks", sql, ["checkr.reports"], source="acme")])


def test_view_columns_are_the_contracts_whatever_the_parts_return(wh: Warehouse) -> None:
    """Declared once (warehouse/unified_views.yaml): the view has exactly those columns, in order, typed."""
    from warehouse.views import view_contracts

    wh.write_page(page([batch([rec("r1")])]))
    wh.create_views([ViewPart.of("background_checks", _FULL_PART, ["checkr.reports"])])
    for view, contract in view_contracts().items():
        described = wh.execute(f"DESCRIBE unified.{view}").fetchall()
        assert [(r[0], r[1].replace("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")) for r in described] == list(contract)


def test_an_integrations_part_that_breaks_the_contract_fails_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from integrations.engine import registry

    folder = tmp_path / "acme_views"
    folder.mkdir()
    (folder / "definition.yaml").write_text(
        "name: acme-views\nextends: checkr\nviews:\n  - view: accounts\n    requires: [accounts]\n"
        "    sql: SELECT '{integration}' AS provider, connection_id, id AS account_id, name, created_at "
        "FROM {schema}.accounts\n"
    )
    monkeypatch.setenv(registry.PATH_ENV, str(tmp_path))
    registry.reload()
    try:
        with pytest.raises(registry.DefinitionError, match=r"unified\.accounts: the part from acme-views lacks "
                                                          r"column 'authorized'"):
            registry.get_integration("acme-views")
    finally:
        monkeypatch.delenv(registry.PATH_ENV)
        registry.reload()


def test_sync_freshness_shows_last_success_and_age(wh: Warehouse) -> None:
    now = datetime.now(UTC)

    def run(run_id: str, status: str, hours_ago: float, model: str = "Report") -> RunRecord:
        t = now - timedelta(hours=hours_ago)
        return RunRecord(
            run_id=run_id,
            integration="checkr",
            connection_id="conn-1",
            sync="reports",
            model=model,
            mode="full",
            status=status,
            started_at=t,
            finished_at=t,
            added=1,
        )  # type: ignore[arg-type]

    wh.record_run(run("old", "success", 30))
    wh.record_run(run("new", "success", 5))
    wh.record_run(run("failed", "failed", 1))
    wh.record_run(run("new", "success", 5))  # recording a run again replaces its row
    wh.create_views()
    row = wh.execute(
        "SELECT last_success_run_id, round(age_hours), last_status FROM unified.sync_freshness WHERE model = 'Report'"
    ).fetchone()
    assert row == ("new", 5, "failed")
    assert wh.execute("SELECT count(*) FROM _screensync.sync_runs").fetchone() == (3,)


def test_run_query_is_read_only(db: WarehouseTarget, wh: Warehouse, tmp_path: Path) -> None:
    wh.write_page(page([batch([rec("r1")])]))
    wh.close()
    columns, rows = run_query(db, "SELECT id, status FROM checkr.reports", limit=5)
    assert (columns, rows) == (["id", "status"], [("r1", "pending")])
    with pytest.raises(Exception, match="read-only"):
        run_query(db, "DELETE FROM checkr.reports")
    with pytest.raises(Exception, match="does not exist yet"):
        run_query(tmp_path / "missing.duckdb", "SELECT 1")


@pytest.mark.file_only("about the names of DuckDB files")
@pytest.mark.parametrize("name", ["memory", "temp", "main", "it's a warehouse"])
def test_any_file_name_opens_for_writing_and_reading(tmp_path: Path, name: str) -> None:
    """The writer attaches the file under its own name; DuckDB's reserved names get a suffix."""
    db = tmp_path / f"{name}.duckdb"
    with Warehouse(db) as wh:
        wh.ensure_tables([REPORTS])
        wh.write_page(page([batch([rec("r1")])]))
    _, rows = run_query(db, "SELECT id FROM checkr.reports")
    assert rows == [("r1",)]
