"""Errors callers can catch by kind; messages name what was wrong and never carry a secret."""

from __future__ import annotations

from common import settings


class ConnectionsError(Exception):
    """Base class for everything this package raises on purpose."""


class NoSecretKey(ConnectionsError):
    """No encryption key is configured, so nothing secret can be written or read."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(
            (f"{detail}. " if detail else "")
            + "No encryption key for the connection store. Create one with:\n"
            + "  mkdir -p ~/.screensync && screensync connections generate-key > ~/.screensync/secret.key"
            + " && chmod 600 ~/.screensync/secret.key\n"
            + f"then set {settings.SECRET_KEY_FILE_ENV}=~/.screensync/secret.key"
            + f" (or put the key itself in {settings.SECRET_KEY_ENV})."
        )


class BadSecretKey(ConnectionsError):
    """The configured key is malformed or cannot decrypt what is stored."""


class ConnectionNotFound(ConnectionsError, KeyError):
    def __init__(self, integration: str, connection_id: str) -> None:
        self.integration = integration
        self.connection_id = connection_id
        super().__init__(f"no {integration} connection with id {connection_id!r}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class ConnectionExists(ConnectionsError):
    def __init__(self, integration: str, connection_id: str) -> None:
        super().__init__(
            f"a {integration} connection with id {connection_id!r} already exists; remove it first or replace it"
        )


class AppSecretsMissing(ConnectionsError):
    """The platform (app) secrets a connect flow needs were never stored with `set-app`."""

    def __init__(self, integration: str, missing: list[str]) -> None:
        super().__init__(
            f"{integration}: app secret(s) {missing} are not set; store them with "
            f"`screensync connections set-app {integration}` (name=value lines on stdin)"
        )


class ProviderCallFailed(ConnectionsError):
    """A provider endpoint used by a connect/revoke flow answered with an error."""


class ConnectNotAuthorised(ConnectionsError):
    """A connect request the platform did not authorise; nothing was written. `status_code` for HTTP."""

    status_code = 403


class InvalidConnectLink(ConnectNotAuthorised):
    """No connect link, a forged or expired one, or one for another integration."""

    status_code = 401


class InvalidState(ConnectNotAuthorised):
    """An OAuth/widget state that is unknown, already used, expired, or for another flow."""


class WrongBrowser(ConnectNotAuthorised):
    """The flow was started in another browser (its connect cookie is missing or different)."""


class ReplaceRefused(ConnectionsError):
    """A connect flow would replace a connection the platform did not ask to replace."""


class BadStoreLocation(ConnectionsError):
    """SCREENSYNC_CONNECTIONS names a store the way it must not (a password in a URL)."""


class StoreUnavailable(ConnectionsError):
    """The store's server could not be reached or refused us; the message names it, never a password."""
