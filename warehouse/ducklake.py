"""Open a DuckLake warehouse (catalog in PostgreSQL, data files in a directory or S3) offline.

DuckLake lets several processes on several machines write one warehouse: the catalog (which
files make up which table at which snapshot) is PostgreSQL, the rows are Parquet files. The
extensions it needs come from the `duckdb-extension-*` packages and are LOADed from the files
those packages ship: nothing is downloaded at run time (autoinstall/autoload are off).

The warehouse is named by one URL (docs/scale-out-notes.md):

    ducklake:postgres://USER@HOST[:PORT]/DBNAME?data=DATA_PATH[&option=value...]

- `data` (required): an absolute directory (`/srv/lake`) or `s3://bucket/prefix`, URL-encoded.
- `inline`: DuckLake's data-inlining row limit: a write of at most this many rows of a table goes
  into the catalog instead of a new Parquet file (DuckLake's default is 10).
- `metadata_schema`: the PostgreSQL schema holding DuckLake's tables (default `public`).
- `sslmode`, `connect_timeout`, `application_name`: passed on to libpq.
- `s3_endpoint`, `s3_region`, `s3_url_style` (`path`|`vhost`), `s3_use_ssl` (`true`|`false`): where
  an S3-compatible store is (MinIO, a local moto server); the keys come from `AWS_ACCESS_KEY_ID`,
  `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) in the environment.

No password in the URL (it ends up in logs and process lists): libpq reads `PGPASSWORD` or
`~/.pgpass`, as psql does.
"""

from __future__ import annotations

import importlib
import os
import random
import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import duckdb
from pydantic import BaseModel, ConfigDict, field_validator

from warehouse.temp_dir import session_config

SCHEME = "ducklake:"
ALIAS = "lake"  # the attached catalog's name; USEd, so `schema.table` resolves in it

# DuckDB must never fetch an extension at run time: every one we use is LOADed from its package.
OFFLINE_CONFIG: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
_EXTENSION_PACKAGES = {
    "ducklake": "duckdb_extension_ducklake",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "httpfs": "duckdb_extension_httpfs",
}
# DuckLake retries a commit that lost the race for the next snapshot id (no logical conflict) this
# many times. Its default, 10, ran out with 8 writers on 2 cores (1 commit in ~250 failed with
# "Exceeded the maximum retry count of 10"); the retries are cheap, so allow many more.
COMMIT_RETRIES = 100
INIT_RACE = "Failed to initialize DuckLake"  # an attach that lost the race to create a new catalog
INIT_ATTEMPTS = 5
_LIBPQ_PASSTHROUGH = ("sslmode", "connect_timeout", "application_name")
_S3_KEYS = ("s3_endpoint", "s3_region", "s3_url_style", "s3_use_ssl")


class DuckLakeURLError(ValueError):
    """The warehouse URL cannot be used; the message says which part and why."""


class S3Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    endpoint: str | None = None  # host:port of an S3-compatible server; None = AWS
    region: str = "us-east-1"
    url_style: Literal["path", "vhost"] = "vhost"
    use_ssl: bool = True


class DuckLakeTarget(BaseModel):
    """A parsed `ducklake:postgres://...` URL."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int = 5432
    user: str | None = None
    dbname: str
    data_path: str
    libpq_options: dict[str, str] = {}
    metadata_schema: str | None = None
    inline_rows: int | None = None
    s3: S3Settings | None = None

    @field_validator("data_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if value.startswith("s3://"):
            if len(value) <= len("s3://") or value[5] == "/":
                raise ValueError(f"data={value!r} names no bucket: use s3://bucket/prefix")
            return value.rstrip("/") + "/"
        if not Path(value).is_absolute():
            raise ValueError(f"data={value!r} must be an absolute directory or s3://bucket/prefix")
        return str(Path(value)) + "/"

    @property
    def libpq(self) -> str:
        """The catalog as a libpq key=value string (what DuckDB's postgres extension takes)."""
        parts = {"host": self.host, "port": str(self.port), "dbname": self.dbname}
        if self.user:
            parts["user"] = self.user
        parts.update(self.libpq_options)
        return " ".join(f"{k}={_libpq_quote(v)}" for k, v in parts.items())

    @property
    def on_s3(self) -> bool:
        return self.data_path.startswith("s3://")


def _libpq_quote(value: str) -> str:
    if value and not any(c in value for c in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def is_ducklake_url(value: str) -> bool:
    return value.startswith(SCHEME)


def parse_url(url: str) -> DuckLakeTarget:
    """`ducklake:postgres://user@host:port/db?data=...` -> DuckLakeTarget; raises DuckLakeURLError."""
    if not is_ducklake_url(url):
        raise DuckLakeURLError(f"not a DuckLake URL (it must start with {SCHEME!r}): {_redact(url)}")
    parts = urlsplit(url[len(SCHEME):])
    if parts.scheme not in ("postgres", "postgresql"):
        raise DuckLakeURLError(
            f"DuckLake catalog {parts.scheme or '(none)'!r} is not supported: use ducklake:postgres://... "
            "(a SQLite or DuckDB-file catalog does not take several writers)"
        )
    if parts.password is not None:
        raise DuckLakeURLError(
            "the warehouse URL must not carry a password (it would end up in logs): set PGPASSWORD or use ~/.pgpass"
        )
    if not parts.hostname:
        raise DuckLakeURLError(f"the warehouse URL names no PostgreSQL host: {_redact(url)}")
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        raise DuckLakeURLError(f"the warehouse URL names no PostgreSQL database: {_redact(url)}")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(query) - {"data", "inline", "metadata_schema", *_LIBPQ_PASSTHROUGH, *_S3_KEYS}
    if unknown:
        raise DuckLakeURLError(f"unknown option(s) in the warehouse URL: {sorted(unknown)}")
    if not query.get("data"):
        raise DuckLakeURLError("the warehouse URL needs data=<absolute directory or s3://bucket/prefix>")
    try:
        port = parts.port or 5432
        inline = int(query["inline"]) if "inline" in query else None
        s3 = _s3_settings(query) if query["data"].startswith("s3://") else None
        return DuckLakeTarget(
            host=parts.hostname,
            port=port,
            user=unquote(parts.username) if parts.username else None,
            dbname=dbname,
            data_path=query["data"],
            libpq_options={k: query[k] for k in _LIBPQ_PASSTHROUGH if k in query},
            metadata_schema=query.get("metadata_schema") or None,
            inline_rows=inline,
            s3=s3,
        )
    except ValueError as exc:  # pydantic's ValidationError is one too
        raise DuckLakeURLError(f"bad warehouse URL {_redact(url)}: {exc}") from None


def _s3_settings(query: dict[str, str]) -> S3Settings:
    values: dict[str, Any] = {k.removeprefix("s3_"): v for k, v in query.items() if k in _S3_KEYS}
    if "use_ssl" in values:
        values["use_ssl"] = values["use_ssl"].lower() in ("1", "true", "yes")
    return S3Settings(**values)


def _redact(url: str) -> str:
    """The URL without any password, for messages."""
    parts = urlsplit(url[len(SCHEME):] if is_ducklake_url(url) else url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return url.replace(parts.netloc, netloc)


def extension_path(name: str) -> Path:
    """The `.duckdb_extension` file the `duckdb-extension-<name>` package ships for this DuckDB."""
    package = _EXTENSION_PACKAGES.get(name)
    if package is None:
        raise ValueError(f"no package is known for the DuckDB extension {name!r}")
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise FileNotFoundError(
            f"the DuckDB extension {name!r} needs the package {package.replace('_', '-')}=={duckdb.__version__}"
        ) from None
    path = Path(module.__file__ or "").parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.exists():
        shipped = sorted(p.parent.name for p in path.parent.parent.glob(f"*/{name}.duckdb_extension"))
        raise FileNotFoundError(
            f"{package} ships the {name} extension for DuckDB {shipped or 'no version'}, "
            f"not for this DuckDB {duckdb.__version__}: install {package.replace('_', '-')}=={duckdb.__version__}"
        )
    return path


def load_extensions(con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    for name in names:
        con.execute(f"LOAD '{_sql_text(str(extension_path(name)))}'")


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def _s3_secret(con: duckdb.DuckDBPyConnection, s3: S3Settings) -> None:
    """A temporary (in-memory, never persisted) S3 secret from the AWS_* environment variables."""
    key_id, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not key_id or not secret:
        raise DuckLakeURLError("data on S3 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
    options = {"KEY_ID": key_id, "SECRET": secret, "REGION": s3.region, "URL_STYLE": s3.url_style}
    if os.environ.get("AWS_SESSION_TOKEN"):
        options["SESSION_TOKEN"] = os.environ["AWS_SESSION_TOKEN"]
    if s3.endpoint:
        options["ENDPOINT"] = s3.endpoint
    body = ", ".join(f"{k} '{_sql_text(v)}'" for k, v in options.items())
    con.execute(f"CREATE OR REPLACE TEMPORARY SECRET screensync_s3 (TYPE s3, {body}, USE_SSL {str(s3.use_ssl).lower()})")


def attach(con: duckdb.DuckDBPyConnection, target: DuckLakeTarget, *, read_only: bool = False) -> None:
    """LOAD the extensions, ATTACH the DuckLake catalog as `lake` and USE it.

    The first writer to attach an empty PostgreSQL database creates DuckLake's tables in it;
    `data` is recorded in the catalog then, and later attaches must name the same path."""
    load_extensions(con, ["postgres_scanner", "ducklake", *(["httpfs"] if target.on_s3 else [])])
    con.execute(f"SET ducklake_max_retry_count = {COMMIT_RETRIES}")
    if target.s3 is not None:
        _s3_secret(con, target.s3)
    options = [f"DATA_PATH '{_sql_text(target.data_path)}'"]
    if target.metadata_schema:
        options.append(f"METADATA_SCHEMA '{_sql_text(target.metadata_schema)}'")
    if target.inline_rows is not None:
        options.append(f"DATA_INLINING_ROW_LIMIT {int(target.inline_rows)}")
    if read_only:
        options.append("READ_ONLY")
    statement = f"ATTACH 'ducklake:postgres:{_sql_text(target.libpq)}' AS {ALIAS} ({', '.join(options)})"
    for attempt in range(1, INIT_ATTEMPTS + 1):
        try:
            con.execute(statement)
            break
        except duckdb.Error as exc:
            # several writers attaching an empty catalog at once all try to create DuckLake's tables;
            # the losers' CREATE TABLE fails once the winner's commits: attach what it created
            if INIT_RACE not in str(exc) or attempt == INIT_ATTEMPTS:
                raise
            time.sleep(random.uniform(0.05, 0.2) * attempt)
    con.execute(f"USE {ALIAS}")


def connect(url: str, *, read_only: bool = False, config: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB session with the DuckLake warehouse of `url` attached and USEd.

    A local data directory is created (owner-only) when missing; `config` adds DuckDB settings."""
    target = parse_url(url)
    if not target.on_s3 and not read_only:
        Path(target.data_path).mkdir(mode=0o700, parents=True, exist_ok=True)
    spill = {} if read_only else session_config()  # a writer spills to this process's own directory
    con = duckdb.connect(config={**spill, **(config or {}), **OFFLINE_CONFIG})
    try:
        con.execute("SET enable_progress_bar = false")  # writers and workers log; they draw no bars
        attach(con, target, read_only=read_only)
    except BaseException:
        con.close()
        raise
    return con
