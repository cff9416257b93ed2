"""All four parts in SQL, for a backend to put its connections, transactions and locks under."""

from __future__ import annotations

from connections.parts.sql_app_secrets import SqlAppSecrets
from connections.parts.sql_connect_sessions import SqlConnectSessions
from connections.parts.sql_rotation import SqlKeyRotation
from connections.parts.sql_webhook_inbox import SqlWebhookInbox


class SqlConnectionStore(SqlConnectSessions, SqlAppSecrets, SqlWebhookInbox, SqlKeyRotation):
    """Credentials (via connect sessions), app secrets, the webhook inbox and key rotation."""
