"""Engine errors: retryable trouble is handled inside the client; these are what is left."""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error a sync run reports."""


class AuthFailed(EngineError):
    """401/403: the credential is invalid or revoked. Never retried."""

    def __init__(self, integration: str, connection_id: str, status_code: int, message: str) -> None:
        self.integration, self.connection_id, self.status_code = integration, connection_id, status_code
        super().__init__(
            f"{integration} connection {connection_id!r}: the provider answered {status_code}"
            f" ({message or 'no message'}): the credential is invalid or revoked."
            " Reconnect the account, then run `screensync connections test`."
        )


class ProviderError(EngineError):
    """A non-retryable answer (4xx other than 401/403/429)."""

    def __init__(self, integration: str, connection_id: str, status_code: int, message: str, url: str,
                 date: str | None = None) -> None:
        self.integration, self.connection_id = integration, connection_id
        self.status_code, self.message, self.url = status_code, message, url
        self.date = date  # the answer's `Date` header: when the provider said so, by its clock
        super().__init__(
            f"{integration} connection {connection_id!r}: {status_code} from {url}: {message or 'no message'}"
        )


class RetriesExhausted(EngineError):
    """Retryable trouble that outlasted the policy's attempts or total-wait cap."""

    def __init__(self, what: str, attempts: int, waited: float, last_error: str) -> None:
        self.last_error = last_error
        super().__init__(
            f"{what}: gave up after {attempts} attempts and {waited:.1f}s of waiting; last error: {last_error}"
        )


class MalformedResponse(EngineError):
    """The body is not JSON, or not the shape the definition declares."""


class PaginationError(EngineError):
    """The provider's paging cannot be trusted; the run stops rather than page forever."""


class ForeignHostError(PaginationError):
    """A next link pointing off the integration's API origin: nothing is sent to it."""


class PaginationLoopError(PaginationError):
    """A page URL requested twice in one run, or a page repeating an earlier page's ids."""


class RunawayPaginationError(PaginationError):
    """Far more pages than the declared total allows."""
