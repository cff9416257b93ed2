"""The DuckDB warehouse: typed per-integration tables, history, sync state and `unified` views.

Plain Python (no Prefect). The sync engine writes through `warehouse.loader.Warehouse`;
analysts read through `warehouse.query` or read-only DuckDB opens between runs.
"""

from warehouse.pandas_absent import install as _pandas_absent

_pandas_absent()  # before any DuckDB statement: see warehouse/pandas_absent.py
