"""Part 2 in SQL: each integration's app secrets (one encrypted JSON object) and settings."""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import SecretStr

from connections.parts.sql_base import SqlStoreBase, now_iso
from connections.parts.sql_credentials import check_integration
from integrations.engine.auth import remember_secret


class SqlAppSecrets(SqlStoreBase):
    def set_app_secrets(
        self,
        integration: str,
        secrets: Mapping[str, str],
        *,
        base_url: str | None = None,
        environment: str | None = None,
    ) -> None:
        """Merge `secrets` into the integration's app secrets (a partial update keeps the rest)."""
        check_integration(integration)
        self._cipher  # noqa: B018  (NoSecretKey before anything is written)
        for name, value in secrets.items():
            if not name or not str(value).strip():
                raise ValueError(f"app secret {name!r} is empty")
        remember_secret(*(str(v).strip() for v in secrets.values()))
        with self._write() as con:
            self._lock(con, f"app secrets {integration}")
            cipher = self._check_key(con)
            row = con.execute("SELECT * FROM app_secrets WHERE integration = ?", (integration,)).fetchone()
            merged: dict[str, str] = json.loads(self._decrypt(bytes(row["secret"]))) if row else {}
            merged.update({k: str(v).strip() for k, v in secrets.items()})
            con.execute(
                "INSERT INTO app_secrets (integration, secret, base_url, environment, updated_at) "
                "VALUES (?,?,?,?,?) ON CONFLICT (integration) DO UPDATE SET secret = excluded.secret, "
                "base_url = excluded.base_url, environment = excluded.environment, updated_at = excluded.updated_at",
                (
                    integration,
                    cipher.encrypt(json.dumps(merged)),
                    base_url if base_url is not None else (row["base_url"] if row else None),
                    environment if environment is not None else (row["environment"] if row else None),
                    now_iso(),
                ),
            )

    def app_secrets(self, integration: str) -> dict[str, SecretStr]:
        with self._read() as con:
            row = con.execute("SELECT secret FROM app_secrets WHERE integration = ?", (integration,)).fetchone()
        if row is None:
            return {}
        values: dict[str, str] = json.loads(self._decrypt(bytes(row["secret"])))
        remember_secret(*values.values())
        return {k: SecretStr(v) for k, v in values.items()}

    def app_settings(self, integration: str) -> dict[str, str | None]:
        """Non-secret app settings: the base-URL override and environment used for connect flows."""
        with self._read() as con:
            row = con.execute(
                "SELECT base_url, environment FROM app_secrets WHERE integration = ?", (integration,)
            ).fetchone()
        if row is None:
            return {"base_url": None, "environment": None}
        return {"base_url": row["base_url"], "environment": row["environment"]}
