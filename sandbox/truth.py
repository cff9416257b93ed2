"""Ground truth of one sandbox account, normalized per table and keyed by id, for comparing a warehouse.

    from sandbox.truth import fetch_truth
    truth = fetch_truth(info["control_url"], "checkr", account_id)
    truth.tables["reports"]["4722c07d..."]["status"]      # what the provider serves now
    truth.removed["candidates"]                            # ids it no longer lists, with when

`Truth` fields:
- `provider`, `account_id`: which sandbox provider and account (ClearChecks: the owner team's id).
- `at`: the sandbox clock when the snapshot was taken (ISO 8601, UTC).
- `tables`: table -> record id -> the record exactly as the provider's API serves it now. Checkr:
  `accounts`, `candidates`, `reports`, `packages`, `invitations`, `invoices` (ids are the `id`
  field). ClearChecks: `accounts` (keyed by `account_id`: its account body has no id), `reports`
  (`report_key`), `packages` (`sku`), `invoices` (`id`, as a string). Every id is a string.
- `removed`: table -> record id -> when the provider stopped listing it (ISO 8601). Vanished
  candidates, reports and invitations (`GET` by id answers 404); deleted invitations and retired
  packages (Checkr's `GET` by id still answers, with `deleted_at`). A record in `removed` must not
  be live in a warehouse that has caught up.
Which export key and id field make each table is declared by each provider (`truth_tables`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import BaseModel

# table -> (key in the provider's export, id field; None: the account id)
TableSpec = Mapping[str, tuple[str, str | None]]


class Truth(BaseModel):
    provider: str
    account_id: str
    at: str
    tables: dict[str, dict[str, dict[str, Any]]]
    removed: dict[str, dict[str, str]]

    def ids(self, table: str) -> set[str]:
        return set(self.tables.get(table, {}))


def normalize(
    provider: str,
    account_id: str,
    at: str,
    exported: Mapping[str, Any],
    removed: Mapping[str, Mapping[str, str]],
    spec: TableSpec,
) -> Truth:
    """One account's export (`{"candidates": [...], "account": {...}, ...}`) as tables keyed by id."""
    tables: dict[str, dict[str, dict[str, Any]]] = {}
    for table, (key, id_field) in spec.items():
        value = exported[key]
        rows = value if isinstance(value, list) else [value]
        tables[table] = {account_id if id_field is None else str(row[id_field]): row for row in rows}
    return Truth(
        provider=provider,
        account_id=account_id,
        at=at,
        tables=tables,
        removed={t: dict(ids) for t, ids in removed.items()},
    )


def fetch_truth(control_url: str, provider: str, account_id: str, *, timeout: float = 60.0) -> Truth:
    """Over HTTP from the control API (`GET {control_url}/truth/{provider}/{account_id}`)."""
    response = httpx.get(f"{control_url.rstrip('/')}/truth/{provider}/{account_id}", timeout=timeout)
    if response.status_code != 200:
        raise ValueError(f"sandbox truth for {provider} {account_id}: HTTP {response.status_code} {response.text}")
    return Truth.model_validate_json(response.content)
