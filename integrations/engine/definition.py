"""The schema of an integration definition (`integrations/<name>/definition.yaml`).

A definition is data: everything the engine needs to talk to a provider and land its
records — hosts, auth, rate limit, pagination, syncs, actions — is declared here and
validated up front, so a typo fails at load time with the field named, not mid-sync.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from integrations.engine.webhook_config import WebhooksConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderInfo(_Strict):
    name: str
    docs: list[str] = []
    # environment name -> named URLs. `api` is required in each; others (authorize, token,
    # deauthorize, widget, decrypt, ...) are used by connect flows. A connection's base-URL
    # override replaces the scheme, host and port of every one of them.
    environments: dict[str, dict[str, str]]
    default_environment: str = "production"

    @model_validator(mode="after")
    def _check_envs(self) -> ProviderInfo:
        for env, urls in self.environments.items():
            if "api" not in urls:
                raise ValueError(f"environment {env!r} has no 'api' URL")
        if self.default_environment not in self.environments:
            raise ValueError(f"default_environment {self.default_environment!r} is not one of {list(self.environments)}")
        return self


class OAuthConfig(_Strict):
    """Partner OAuth: authorize / token / deauthorize URLs are named in the environment."""

    authorize_url: str = "authorize"  # key into the environment's URLs
    token_url: str = "token"
    deauthorize_url: str = "deauthorize"
    token_metadata: list[str] = []  # fields of the token response kept as connection metadata
    account_id_field: str | None = None  # field of the token response naming the provider account
    app_secrets: list[str] = ["client_id", "client_secret"]


class WidgetConfig(_Strict):
    """A provider's account-creation widget (connect flow `widget`); the page is `page` in its folder."""

    script_url: str = "widget"  # key into the environment's URLs
    decrypt_url: str = "decrypt"  # key into the environment's URLs
    page: str = "connect.html"  # template in the integration's folder
    page_secret: str  # app secret the page hands to the widget (meant to be public)
    decrypt_token_field: str  # request field carrying the widget's token
    decrypt_secrets: list[str]  # app secrets sent along with it
    result_field: str  # response field holding the customer's credential


class AuthCommon(_Strict):
    """What every auth type shares: how users obtain the credential. Where the credential goes on
    a request is the job of each `type` below (one class per type, only its own fields)."""

    # how users obtain the credential: a direct API key, partner OAuth, or a provider widget
    connect: list[Literal["api_key", "oauth", "widget"]] = ["api_key"]
    oauth: OAuthConfig | None = None
    # app-level (platform) secrets for the widget flow, e.g. ClearChecks' source_token/private_key
    widget_app_secrets: list[str] = []
    widget: WidgetConfig | None = None

    @model_validator(mode="after")
    def _oauth_needs_config(self) -> AuthCommon:
        if "oauth" in self.connect and self.oauth is None:
            raise ValueError("auth.connect includes 'oauth' but auth.oauth is not configured")
        return self


class BasicAuth(AuthCommon):
    """HTTP Basic with the token as username and an empty password (Checkr)."""

    type: Literal["basic"]


class QueryAuth(AuthCommon):
    """The token as a query parameter on every call (ClearChecks' `?api_token=`)."""

    type: Literal["query"]
    query_param: str = "api_token"


class BearerAuth(AuthCommon):
    """`Authorization: Bearer <token>` (OAuth access tokens, most modern APIs)."""

    type: Literal["bearer"]


class HeaderAuth(AuthCommon):
    """An API key in a named header, e.g. `X-Api-Key: <token>`; `prefix` goes before the token."""

    type: Literal["header"]
    header: str = Field(min_length=1)
    prefix: str = ""


# Adding an auth type: one class above, one entry here, one builder in auth.py's AUTH_BUILDERS.
AUTH_TYPES: dict[str, type[AuthCommon]] = {"basic": BasicAuth, "query": QueryAuth, "bearer": BearerAuth,
                                           "header": HeaderAuth}
AuthConfig = Annotated[Union[tuple(AUTH_TYPES.values())], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007


class ConcurrencyConfig(_Strict):
    """How many requests of one credential may be in flight at once (docs/engine.md, "Concurrency").

    The adaptive window grows from 1 up to `max` while latency stays flat and the rate budget has
    room, and halves on 429, 5xx or rising latency. 1 (the default) sends one request at a time."""

    max: int = Field(1, ge=1, le=64, description="ceiling of the adaptive window; 1 = one request at a time")
    initial: int = Field(1, ge=1, le=64, description="the window a process starts with (at most `max`); "
                         "it doubles from there until the first 429, 5xx or latency rise")
    syncs_side_by_side: bool = Field(
        True, description="run a connection's syncs side by side (each after its `after`); false: one after "
        "another in declared order, for a provider whose rate budget, not latency, bounds every sync "
        "anyway (side by side then costs memory for no speed)")


class RateLimitConfig(_Strict):
    requests: int = Field(gt=0)
    per_seconds: float = Field(60, gt=0)
    limit_header: str | None = None
    remaining_header: str | None = None
    reset_header: str | None = None
    reset_format: Literal["iso8601", "epoch_seconds", "delta_seconds"] = "iso8601"
    # fraction of the declared limit we aim for, so concurrent users of one credential keep headroom
    target_share: float = Field(0.95, gt=0, le=1)
    # requests of one credential in flight at once (by-id fetches, numbered pages): at most this
    concurrency: ConcurrencyConfig = ConcurrencyConfig()


class PaginationCommon(_Strict):
    """What every pagination type shares: where the records and the declared total sit."""

    data_path: str | None = "data"  # None: the body itself is the list (or the single object)
    count_path: str | None = None  # total number of records, for the runaway-pagination guard

    def expected_page_size(self) -> int | None:
        """Records a full page holds, for the runaway guard; None when the type does not say."""
        return None


class _Sized(PaginationCommon):
    page_size_param: str | None = "per_page"
    page_size: int = Field(100, gt=0)

    def expected_page_size(self) -> int | None:
        return self.page_size


class NextLinkPagination(_Sized):
    """The next page's absolute URL sits in the body at `next_path` (Checkr's `next_href`)."""

    type: Literal["next_link"]
    next_path: str
    # the query parameter the next link numbers its pages with (Checkr: `page`): declared, pages
    # after the next one are fetched ahead once the total (`count_path`) is known
    page_param: str | None = None


class PageNumberPagination(_Sized):
    """?page=N; stops at `last_page_path`, on an empty page, or when a declared `next_path` is empty."""

    type: Literal["page_number"]
    page_param: str = "page"
    next_path: str | None = None
    last_page_path: str | None = None


class OffsetPagination(_Sized):
    """?offset=N&limit=M; stops on a short page or when the offset reaches the declared total."""

    type: Literal["offset"]
    offset_param: str = "offset"
    page_size_param: str | None = "limit"


class CursorPagination(_Sized):
    """An opaque cursor from the body (`cursor_path`) sent back as `cursor_param`; stops when the
    body has no cursor, or when a declared `has_more_path` is false."""

    type: Literal["cursor"]
    cursor_path: str
    cursor_param: str = "cursor"
    has_more_path: str | None = None
    page_size_param: str | None = "limit"


class NoPagination(PaginationCommon):
    """One request: the whole list, or the single object."""

    type: Literal["none"]


# Adding a pagination type: one class above, one entry here, one paginator in paginators.py's PAGINATORS.
PAGINATION_TYPES: dict[str, type[PaginationCommon]] = {
    "next_link": NextLinkPagination,
    "page_number": PageNumberPagination,
    "offset": OffsetPagination,
    "cursor": CursorPagination,
    "none": NoPagination,
}
PaginationConfig = Annotated[  # type: ignore[valid-type]
    Union[tuple(PAGINATION_TYPES.values())], Field(discriminator="type")  # noqa: UP007
]


class CursorConfig(_Strict):
    field: str  # record field whose max value becomes the next cursor
    param: str  # request parameter the cursor is sent as
    # re-read a little before the cursor to catch late writes (seconds, or an ISO 8601 duration)
    lookback: Annotated[
        timedelta, WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "format": "duration"}]})
    ] = timedelta(0)


class RefetchConfig(_Strict):
    """Where one record can be fetched by its id: how a quarantined record is fetched again."""

    endpoint: str  # with {id}, e.g. /candidates/{id}
    params: dict[str, str | int | bool] = {}

    @model_validator(mode="after")
    def _has_id(self) -> RefetchConfig:
        if "{id}" not in self.endpoint:
            raise ValueError(f"refetch endpoint {self.endpoint!r} must hold {{id}}")
        return self


class EmbeddedConfig(_Strict):
    """Child records that arrive inside a parent (Checkr reports inside candidates)."""

    path: str  # field of the parent holding a list of children
    model: str
    table: str
    primary_key: str = "id"
    # keep the children out of the parent's stored row (they land in their own table)
    strip_from_parent: bool = True
    refetch: RefetchConfig | None = None  # a quarantined child is fetched again here
    # a run that reads the parents' whole list marks children no parent carried any more deleted
    track_deletes: bool = False


class ReferenceConfig(_Strict):
    """A field of this sync's records that names a record of another table of the integration
    (Checkr: an invitation's `report_id`). After each run, named records not stored yet are
    fetched by id, where the table's own sync says (its `refetch:`), and land in that table."""

    field: str
    table: str
    max_per_run: int = Field(200, gt=0)  # the rest wait for the next run (a first run can name thousands)


class DueConfig(_Strict):
    """Re-poll only the open records that are due, most overdue first (integrations/engine/due.py)."""

    after: str | None = None  # a column with the provider's own estimate: not asked before it (+ after_plus)
    after_plus: str = "0s"
    intervals: list[str] = ["1h", "2h", "4h", "8h", "24h"]  # after a change or a check; the last repeats
    webhook_stretch: float = Field(4.0, ge=1)  # intervals x this while the connection's webhooks flow
    webhooks_quiet_after: str = "1h"  # no webhook for this long: treated as having none
    budget_share: float = Field(0.2, gt=0, le=1)  # of the rate budget over the sync's interval, at most


class RepollConfig(_Strict):
    """Re-fetch stored records one by one until they reach a terminal state."""

    table: str  # the table holding the records to re-poll
    state_field: str
    terminal_states: list[str]
    endpoint: str  # with {id}
    merge: bool = False  # the endpoint answers part of the record (a status): laid over the stored one
    due: DueConfig | None = None  # None: every open record, every run


class SyncConfig(_Strict):
    name: str
    model: str  # "Candidate" (from the integration's models.py) or "pkg.module:Name"
    table: str
    endpoint: str = ""
    params: dict[str, str | int | bool] = {}
    mode: Literal["full", "incremental", "repoll"] = "full"
    cursor: CursorConfig | None = None
    repoll: RepollConfig | None = None
    primary_key: str = "id"
    frequency: str  # "every 15m", "every 1h", or a cron expression "0 * * * *"
    # an incremental sync's full re-read on its own schedule (the safety net for what its cursor
    # cannot see: children added to old parents, records that vanished): runs with full_refresh
    sweep: str | None = None
    # records not seen by a run that read the whole list are marked deleted (a full sync: every
    # complete run; an incremental one: its sweeps and full refreshes)
    track_deletes: bool = False
    # a field whose value, when set, says the provider deleted or cancelled the record (Checkr's
    # `deleted_at` on an `invitation.deleted` event): such a version is stored soft-deleted
    deleted_field: str | None = None
    embedded: list[EmbeddedConfig] = []
    single: bool = False  # the endpoint returns one object, not a list (e.g. the account)
    transform: str | None = None  # "module:function" mapping a raw provider record to the model's input
    pagination: PaginationConfig | None = None  # overrides the integration default
    # where one record is fetched by id, so a quarantined one is fetched again until it lands;
    # without it an incremental sync holds its cursor before the records it quarantined
    refetch: RefetchConfig | None = None
    references: list[ReferenceConfig] = []  # fields naming records of other tables, fetched when missing
    # syncs of the same connection whose output this one reads (a re-poll of what a list landed):
    # it starts once they finished; the others run side by side (docs/engine.md, "Concurrency")
    after: list[str] = []
    # syncs of the same connection that land the tables this one's `references` name: it starts at
    # once, side by side with them, and resolves its references once they finished (so the records
    # they land are not fetched one by one); one-at-a-time callers treat it as `after`
    references_after: list[str] = []

    def refetch_for(self, table: str) -> RefetchConfig | None:
        """How an owed record of `table` (this sync's own, or an embedded child's) is fetched again."""
        if table == self.table:
            if self.refetch is None and self.repoll is not None:
                return RefetchConfig(endpoint=self.repoll.endpoint)
            return self.refetch
        return next((e.refetch for e in self.embedded if e.table == table), None)

    @model_validator(mode="after")
    def _mode_fields(self) -> SyncConfig:
        if self.mode == "incremental" and self.cursor is None:
            raise ValueError(f"sync {self.name!r}: mode 'incremental' needs a cursor")
        if self.mode == "repoll" and self.repoll is None:
            raise ValueError(f"sync {self.name!r}: mode 'repoll' needs a repoll section")
        if (self.track_deletes or any(e.track_deletes for e in self.embedded)) and self.mode == "repoll":
            raise ValueError(f"sync {self.name!r}: deletes are tracked by syncs that read a whole list, not a repoll")
        if self.sweep is not None and self.mode != "incremental":
            raise ValueError(f"sync {self.name!r}: a sweep re-reads an incremental sync; a {self.mode} sync has none")
        if self.mode != "repoll" and not self.endpoint:
            raise ValueError(f"sync {self.name!r}: endpoint is required")
        return self


class ActionConfig(_Strict):
    name: str
    description: str = ""
    input: str  # model reference
    output: str  # model reference
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    endpoint: str  # may hold {placeholders} filled from the input
    body: Literal["json", "form", "none"] = "json"
    idempotent: bool = False  # send an Idempotency-Key so a retried action never acts twice
    handler: str | None = None  # "module:function" for actions that are more than one request


class ViewPart(_Strict):
    """This integration's SELECT for one cross-provider `unified` view.

    `{schema}` is replaced by the integration's schema, so an `extends` child (checkr-partner-staging)
    contributes the same SELECT over its own tables. The warehouse UNIONs the parts whose
    `requires` tables exist.
    """

    view: str  # background_checks, invoices, packages, accounts
    requires: list[str]  # tables of this integration the SELECT reads
    sql: str


class ErrorsConfig(_Strict):
    message_path: str | None = "error"  # where the human message sits in an error body


class IntegrationDefinition(_Strict):
    name: str  # "checkr", "checkr-partner-staging"
    extends: str | None = None
    provider: ProviderInfo
    auth: AuthConfig
    rate_limit: RateLimitConfig
    pagination: PaginationConfig
    errors: ErrorsConfig = ErrorsConfig()
    test_endpoint: str  # cheapest authenticated call, used by `connections test`
    syncs: list[SyncConfig] = []
    actions: list[ActionConfig] = []
    webhooks: WebhooksConfig | None = None  # signature, event paths, lifecycle and object events
    views: list[ViewPart] = []

    @property
    def schema_name(self) -> str:
        """DuckDB schema for this integration's tables."""
        return self.name.replace("-", "_")

    def sync(self, name: str) -> SyncConfig:
        for s in self.syncs:
            if s.name == name:
                return s
        raise KeyError(f"integration {self.name!r} has no sync {name!r}; it has {[s.name for s in self.syncs]}")

    def action(self, name: str) -> ActionConfig:
        for a in self.actions:
            if a.name == name:
                return a
        raise KeyError(f"integration {self.name!r} has no action {name!r}; it has {[a.name for a in self.actions]}")

    def pagination_for(self, sync: SyncConfig) -> PaginationCommon:
        return sync.pagination or self.pagination

    def fetcher_for(self, table: str) -> tuple[SyncConfig, RefetchConfig] | None:
        """The sync whose records land in `table` and where one of them is fetched by id: the
        table's own sync first, else one that embeds it. None when nothing can fetch it by id."""
        owners = [s for s in self.syncs if s.table == table] + [
            s for s in self.syncs if any(e.table == table for e in s.embedded)
        ]
        return next(((s, how) for s in owners if (how := s.refetch_for(table)) is not None), None)

    @model_validator(mode="after")
    def _unique_names(self) -> IntegrationDefinition:
        for kind, names in (("sync", [s.name for s in self.syncs]), ("action", [a.name for a in self.actions])):
            dupes = {n for n in names if names.count(n) > 1}
            if dupes:
                raise ValueError(f"duplicate {kind} names: {sorted(dupes)}")
        declared: list[str] = []
        for s in self.syncs:
            for field, names in (("after", s.after), ("references_after", s.references_after)):
                later = [n for n in names if n not in declared]
                if later:  # earlier ones only: the declared order stays one that honours every `after`
                    raise ValueError(f"sync {s.name!r}: `{field}` names {later}, which are not syncs declared "
                                     f"before it (declared before it: {declared})")
            declared.append(s.name)
            for ref in s.references:
                if self.fetcher_for(ref.table) is None:
                    raise ValueError(f"sync {s.name!r}: reference {ref.field!r} names table {ref.table!r}, which no "
                                     "sync can fetch by id (declare `refetch:` on the sync that lands it)")
        return self


def merge_extends(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """A child definition inherits every top-level section it does not declare itself."""
    merged = {k: v for k, v in base.items() if k not in {"name", "extends"}}
    merged.update(child)
    return merged
