"""The connection store's four parts, each a Protocol of its own, and the SQL that implements them.

`credentials` (connections, their encrypted credentials, the keys and their rotation),
`app_secrets` (per-integration platform secrets), `connect_sessions` (connect links and their
single-use OAuth/widget states) and `webhook_inbox` (the durable webhook inbox). A caller that
needs one part depends on that Protocol only; `connections.store.ConnectionStore` is all four.

The `sql_*` modules implement each part once, in SQL that SQLite and PostgreSQL both run; the
backends (`connections/sqlite_store.py`, `connections/postgres_store.py`) supply connections,
transactions and locks (`connections/parts/sql_base.py` says what each must provide).
"""
