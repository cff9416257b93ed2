"""docs/scale-out.md, "How analysts connect": its Python snippets, run as written.

Each snippet is taken from the doc (the fenced block whose first line names this file), its
placeholders (`DBHOST ...`, `/srv/lake/`, `warehouse.duckdb`) replaced by a real warehouse that a
sandbox sync filled, and executed: the analyst's own DuckDB session (no screensync code) must
answer from a unified view exactly what the writer stored, and refuse to write.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
from cryptography.fernet import Fernet

from tests.engine.conftest import Env

if TYPE_CHECKING:
    from tests.support.postgres import PgDatabase

pytest_plugins = ["tests.support.postgres"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "scale-out.md"
LAKE_PLACEHOLDERS = ("host=DBHOST port=5432 dbname=lake user=analyst", "/srv/lake/")


def doc_snippet(marker: str) -> str:
    """The ```python block of docs/scale-out.md whose first line is `# <marker>`."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    found = [b for b in blocks if b.startswith(f"# {marker}")]
    assert len(found) == 1, f"docs/scale-out.md should have one python block starting '# {marker}'"
    return found[0]


def _run(snippet: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(snippet, str(DOC), "exec"), namespace)  # the doc's code, as an analyst would paste it
    return namespace


def _synced(db: Path | str, tmp_path: Path, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Env:
    from connections.store import open_store

    monkeypatch.setenv("SCREENSYNC_CONNECTIONS", str(tmp_path / "connections.sqlite"))
    monkeypatch.setenv("SCREENSYNC_SECRET_KEY", Fernet.generate_key().decode())
    env = Env(store=open_store(), db=db)  # type: ignore[arg-type]
    env.connect(sandbox, "clearchecks", "cc-1")
    for sync in ("account", "reports"):
        result = env.sync("clearchecks", "cc-1", sync)
        assert result.ok, result.error
    return env


def _assert_answers_like_the_writer(con: duckdb.DuckDBPyConnection, env: Env) -> None:
    sql = "SELECT provider, connection_id, check_id, status FROM unified.background_checks ORDER BY ALL"
    rows = con.execute(sql).fetchall()
    assert rows and rows == env.rows(sql)
    with pytest.raises(duckdb.Error, match=r"(?i)read.only"):
        con.execute("DELETE FROM clearchecks.reports")


def test_the_docs_python_snippet_reads_a_ducklake_read_only(
    postgres_db: PgDatabase, tmp_path: Path, fresh_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "lake"
    env = _synced(f"ducklake:postgres://{postgres_db.user}@{postgres_db.host}:{postgres_db.port}/{postgres_db.name}"
                  f"?data={data}", tmp_path, fresh_sandbox, monkeypatch)  # fmt: skip
    libpq = f"host={postgres_db.host} port={postgres_db.port} dbname={postgres_db.name} user={postgres_db.user}"
    snippet = doc_snippet("Python on a DuckLake")
    for placeholder in LAKE_PLACEHOLDERS:
        assert placeholder in snippet, placeholder
    snippet = snippet.replace(LAKE_PLACEHOLDERS[0], libpq).replace(LAKE_PLACEHOLDERS[1], f"{data}/")
    con = _run(snippet)["con"]
    try:
        _assert_answers_like_the_writer(con, env)
    finally:
        con.close()


def test_the_docs_python_snippet_reads_the_embedded_file_and_lets_go_of_it(
    tmp_path: Path, fresh_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "warehouse.duckdb"
    env = _synced(db, tmp_path, fresh_sandbox, monkeypatch)
    snippet = doc_snippet("Python on the embedded file")
    assert "'warehouse.duckdb'" in snippet
    namespace = _run(snippet.replace("'warehouse.duckdb'", repr(str(db))))
    rows = namespace["rows"]
    assert rows and rows == env.rows("SELECT provider, status, count(*) FROM unified.background_checks GROUP BY ALL "
                                     "ORDER BY ALL")  # fmt: skip
    # the snippet closed the file: a writer gets it at once
    with duckdb.connect(str(db)) as writer:
        assert writer.execute("SELECT count(*) FROM clearchecks.reports").fetchone()[0] > 0
