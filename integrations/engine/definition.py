"""The schema of an integration definition (`integrations/<name>/definition.yaml`).

A definition is data: everything the engine needs to talk to a provider and land its
records — hosts, auth, rate limit, pagination, syncs, actions — is declared here and
validated up front, so a typo fails at load time with the field named, not mid-sync.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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


class AuthConfig(_Strict):
    # basic: token as username, empty password. query: token as a query parameter.
    type: Literal["basic", "query"]
    query_param: str = "api_token"
    # how users obtain the credential: a direct API key, partner OAuth, or a provider widget
    connect: list[Literal["api_key", "oauth", "widget"]] = ["api_key"]
    oauth: OAuthConfig | None = None
    # app-level (platform) secrets for the widget flow, e.g. ClearChecks' source_token/private_key
    widget_app_secrets: list[str] = []
    widget: WidgetConfig | None = None
    # which secret signs this provider's webhooks for each connect kind (app secret name or "token")
    webhook_signing: dict[str, str] = {}

    @model_validator(mode="after")
    def _oauth_needs_config(self) -> AuthConfig:
        if "oauth" in self.connect and self.oauth is None:
            raise ValueError("auth.connect includes 'oauth' but auth.oauth is not configured")
        return self


class RateLimitConfig(_Strict):
    requests: int = Field(gt=0)
    per_seconds: float = Field(60, gt=0)
    limit_header: str | None = None
    remaining_header: str | None = None
    reset_header: str | None = None
    reset_format: Literal["iso8601", "epoch_seconds", "delta_seconds"] = "iso8601"
    # fraction of the declared limit we aim for, so concurrent users of one credential keep headroom
    target_share: float = Field(0.95, gt=0, le=1)


class PaginationConfig(_Strict):
    """How lists page. `next_link`: absolute next URL in the body; `page_number`: ?page=N."""

    type: Literal["next_link", "page_number", "none"]
    data_path: str | None = "data"  # None: the body itself is the list (or the single object)
    next_path: str | None = None  # next_link: where the next URL sits; page_number: optional next URL
    count_path: str | None = None  # total number of records, for the runaway-pagination guard
    last_page_path: str | None = None
    page_param: str = "page"
    page_size_param: str | None = "per_page"
    page_size: int = Field(100, gt=0)


class CursorConfig(_Strict):
    field: str  # record field whose max value becomes the next cursor
    param: str  # request parameter the cursor is sent as
    lookback: timedelta = timedelta(0)  # re-read a little before the cursor to catch late writes


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
    embedded: list[EmbeddedConfig] = []
    single: bool = False  # the endpoint returns one object, not a list (e.g. the account)
    transform: str | None = None  # "module:function" mapping a raw provider record to the model's input
    pagination: PaginationConfig | None = None  # overrides the integration default
    # where one record is fetched by id, so a quarantined one is fetched again until it lands;
    # without it an incremental sync holds its cursor before the records it quarantined
    refetch: RefetchConfig | None = None
    references: list[ReferenceConfig] = []  # fields naming records of other tables, fetched when missing

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
    webhook_handler: str | None = None  # "module:function" turning a webhook event into records
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

    def pagination_for(self, sync: SyncConfig) -> PaginationConfig:
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
        for s in self.syncs:
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
