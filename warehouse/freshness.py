"""What "fresh" means per connection, beyond the last successful run: webhooks arriving, and open
records overdue.

- **Webhook arrivals**: the applier's writes carry when their events were received
  (`ObjectWrite.received_at`); each write moves `_screensync.webhook_arrivals` for its connection in
  the same transaction. A connection whose webhooks went quiet while its reports are open is only
  as fresh as its re-poll.
- **Overdue open records**: each integration declares, as a `unified.open_records` view part in its
  definition.yaml, its open records and when each is due (Checkr: a report's own
  `estimated_completion_time`). A record past its due time and still open is overdue; the age of the
  oldest says how far behind the provider (or our view of it) is.

`unified.sync_freshness` shows both per connection beside each sync's last success.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

ARRIVALS_DDL = """
CREATE TABLE IF NOT EXISTS _screensync.webhook_arrivals (
    integration VARCHAR, connection_id VARCHAR, last_received_at TIMESTAMPTZ, last_applied_at TIMESTAMPTZ,
    events BIGINT
);
"""

# per connection: the records still open, and when each should be done (NULL: no due time known)

SYNC_FRESHNESS = """
CREATE OR REPLACE VIEW unified.sync_freshness AS
WITH runs AS (
    SELECT integration, connection_id, model,
           max(finished_at) FILTER (WHERE status IN ('success', 'partial')) AS last_success_at,
           arg_max(run_id, finished_at) FILTER (WHERE status IN ('success', 'partial')) AS last_success_run_id,
           round(epoch(current_timestamp - max(finished_at) FILTER (WHERE status IN ('success', 'partial'))) / 3600.0, 2)
               AS age_hours,
           arg_max(status, started_at) AS last_status,
           max(started_at) AS last_run_started_at,
           arg_max(error, started_at) AS last_error
    FROM _screensync.sync_runs
    GROUP BY integration, connection_id, model
), overdue AS (
    SELECT integration, connection_id, count(*) AS overdue_records,
           round(max(epoch(current_timestamp - due_at)) / 3600.0, 2) AS oldest_overdue_hours
    FROM unified.open_records WHERE due_at < current_timestamp
    GROUP BY integration, connection_id
)
SELECT r.*, w.last_received_at AS last_webhook_at,
       round(epoch(current_timestamp - w.last_received_at) / 3600.0, 2) AS webhook_age_hours,
       coalesce(o.overdue_records, 0) AS overdue_records, o.oldest_overdue_hours
FROM runs r
LEFT JOIN _screensync.webhook_arrivals w ON w.integration = r.integration AND w.connection_id = r.connection_id
LEFT JOIN overdue o ON o.integration = r.integration AND o.connection_id = r.connection_id
"""

CONNECTION_SQL = """
SELECT coalesce(w.integration, o.integration), coalesce(w.connection_id, o.connection_id), w.last_received_at,
       coalesce(o.overdue_records, 0), o.oldest_due_at
FROM _screensync.webhook_arrivals w
FULL JOIN (SELECT integration, connection_id, count(*) AS overdue_records, min(due_at) AS oldest_due_at
           FROM unified.open_records WHERE due_at < current_timestamp GROUP BY ALL) o
  ON o.integration = w.integration AND o.connection_id = w.connection_id
"""


def note_arrivals(con: duckdb.DuckDBPyConnection, *, integration: str, connection_id: str, received_at: datetime,
                  events: int) -> None:
    """Webhook events of a connection received up to `received_at` were just applied (caller's transaction)."""
    params = {"integ": integration, "conn": connection_id, "at": received_at, "n": events}
    key = {"integ": integration, "conn": connection_id}
    # a SELECT first, not UPDATE ... RETURNING: DuckLake tables refuse RETURNING on an UPDATE
    known = con.execute("SELECT 1 FROM _screensync.webhook_arrivals WHERE integration = $integ "
                        "AND connection_id = $conn LIMIT 1", key).fetchone()
    if known:
        con.execute(
            """UPDATE _screensync.webhook_arrivals SET last_received_at = greatest(last_received_at, $at::TIMESTAMPTZ),
                last_applied_at = current_timestamp, events = events + $n
            WHERE integration = $integ AND connection_id = $conn""",
            params,
        )
    else:
        con.execute("INSERT INTO _screensync.webhook_arrivals VALUES ($integ, $conn, $at, current_timestamp, $n)",
                    params)


def connection_freshness(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], tuple[datetime | None, int,
                                                                                          datetime | None]]:
    """(integration, connection) -> (last webhook received, overdue open records, the oldest one's due time)."""
    try:
        rows = con.execute(CONNECTION_SQL).fetchall()
    except duckdb.CatalogException:  # a warehouse no writer of this version has prepared
        return {}
    return {(i, c): (last, int(n), oldest) for i, c, last, n, oldest in rows}
