"""DuckDB's per-statement `import pandas` is answered without a walk of sys.path when pandas is absent."""

from __future__ import annotations

import importlib.machinery
import sys
from collections import Counter
from typing import Any

import duckdb
import pyarrow as pa
import pytest

import warehouse  # noqa: F401  (installs the finder)
from warehouse.pandas_absent import AbsentModules, install

# asked of the path finder itself (ours stands in front of it in sys.meta_path)
pytestmark = pytest.mark.skipif(importlib.machinery.PathFinder.find_spec("pandas") is not None,
                                reason="pandas is installed here: the finder is (rightly) not in place")


class Spy:
    """A finder behind ours: sees every lookup ours lets through."""

    def __init__(self) -> None:
        self.asked: Counter[str] = Counter()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        self.asked[fullname] += 1
        return None


def test_duckdb_statements_never_look_for_pandas_on_disk() -> None:
    assert install() is True
    finder = next(f for f in sys.meta_path if isinstance(f, AbsentModules))
    spy = Spy()
    sys.meta_path.insert(sys.meta_path.index(finder) + 1, spy)
    try:
        con = duckdb.connect()
        con.execute("CREATE TABLE t (a INTEGER)")
        for i in range(20):
            con.execute("INSERT INTO t VALUES (?)", [i])
        assert con.execute("SELECT sum(a) FROM t").fetchone() == (190,)
        con.register("arrow_rows", pa.table({"a": [1, 2]}))
        assert con.execute("SELECT count(*) FROM arrow_rows").fetchone() == (2,)
    finally:
        sys.meta_path.remove(spy)
    assert spy.asked["pandas"] == 0  # without our finder DuckDB asks once per statement
    assert "pandas" not in sys.modules  # pyarrow's shim looks there: nothing recorded


def test_pandas_is_refused_as_not_installed_and_arrow_says_so() -> None:
    with pytest.raises(ModuleNotFoundError, match="pandas"):
        import pandas  # noqa: F401
    with pytest.raises(ImportError):
        pa.table({"a": [1]}).to_pandas()


def test_the_finder_refuses_only_its_names() -> None:
    finder = AbsentModules(["pandas"])
    assert finder.find_spec("duckdb") is None
    assert finder.find_spec("pandasx") is None
    with pytest.raises(ModuleNotFoundError):
        finder.find_spec("pandas.core")
