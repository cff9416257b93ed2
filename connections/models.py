"""The connection record and its secret, as pydantic models: the boundary every caller sees."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

CredentialKind = Literal["api_key", "oauth", "widget"]
Status = Literal["active", "invalid", "revoked"]
STATUSES: tuple[str, ...] = ("active", "invalid", "revoked")
CONNECTION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Credentials(BaseModel):
    """The one secret a connection holds; SecretStr keeps it out of reprs, logs and tracebacks."""

    model_config = ConfigDict(frozen=True)

    token: SecretStr

    @field_validator("token")
    @classmethod
    def _not_blank(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().strip():
            raise ValueError("the credential is empty")
        if v.get_secret_value() != v.get_secret_value().strip():
            return SecretStr(v.get_secret_value().strip())
        return v


class ConnectionMetadata(BaseModel):
    """Non-secret facts about a connection; safe to print and to show in `list`/`show`."""

    model_config = ConfigDict(extra="forbid")

    provider_account_id: str | None = None  # the provider's id for the connected account
    credentialed: bool = False
    environment: str | None = None  # None: the definition's default_environment
    base_url: str | None = None  # replaces scheme/host/port of every provider URL (sandbox, proxy)
    tags: dict[str, str] = Field(default_factory=dict)


class Connection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection_id: str = Field(min_length=1, max_length=200, pattern=CONNECTION_ID_PATTERN)
    integration: str = Field(min_length=1)
    credential_kind: CredentialKind = "api_key"
    metadata: ConnectionMetadata = Field(default_factory=ConnectionMetadata)
    status: Status = "active"
    status_reason: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ConnectSession(BaseModel):
    """What one connect link authorises: one flow, for one connection id, until `expires_at`.

    Minted by the platform's backend (`connections.connect_sessions`) and signed, so the web app
    can trust every field; `reconnect` and `allow_account_change` say what the platform asked for.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    session_id: str = Field(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    integration: str = Field(min_length=1, max_length=100)
    connection_id: str = Field(min_length=1, max_length=200, pattern=CONNECTION_ID_PATTERN)
    reconnect: bool = False  # may replace an active connection with this id
    allow_account_change: bool = False  # ... even when the provider account differs
    expires_at: int  # unix seconds: the link cannot be opened after this
