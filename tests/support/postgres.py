"""A throwaway PostgreSQL cluster for tests: Debian's `initdb`/`pg_ctl` in a temp directory.

The cluster listens on a free loopback port (and a unix socket in its own directory), trusts
every local connection (it holds nothing but test data and dies with the test session), and
runs with fsync off: a crash of the machine loses nothing a test needs. PostgreSQL refuses to
run as root, so when the tests run as root (as here and in CI) the server runs as the
`postgres` OS user that Debian's package creates, through `runuser`.

Fixtures (registered for the whole suite by `pytest_plugins` in tests/conftest.py):

- `postgres_server` (session): the running cluster, a `ThrowawayPostgres`;
- `postgres_db` (test): a fresh, empty database on it, dropped after the test (`PgDatabase`).

Without PostgreSQL the fixtures skip, naming the package to install; `.ci/run` installs it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.asgi_server import free_port

INSTALL_HINT = "PostgreSQL is not installed: `apt-get install postgresql` (Debian; .ci/run installs it)"
SERVER_USER = "postgres"  # the OS user that runs the server when we are root
SUPERUSER = "postgres"  # the database superuser initdb creates


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here (or no OS user to run them as root)."""


def find_bin_dir() -> Path:
    """The directory holding `initdb`, `pg_ctl` and `psql`: `SCREENSYNC_PG_BIN`, else the newest
    `/usr/lib/postgresql/<version>/bin` (Debian keeps them off PATH), else PATH."""
    configured = os.environ.get("SCREENSYNC_PG_BIN")
    if configured:
        return Path(configured)
    versions = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if versions:
        newest = max(versions, key=lambda p: [int(n) for n in re.findall(r"\d+", Path(p).parent.parent.name)])
        return Path(newest).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PostgresUnavailable(INSTALL_HINT)


@dataclass(frozen=True)
class PgDatabase:
    """One database of the throwaway cluster, with the ways clients name it."""

    name: str
    host: str
    port: int
    user: str

    @property
    def url(self) -> str:
        """`postgresql://user@host:port/name` (SQLAlchemy, asyncpg, psql)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.name}"

    @property
    def libpq(self) -> str:
        """The libpq key=value form DuckDB's postgres extension takes."""
        return f"host={self.host} port={self.port} user={self.user} dbname={self.name}"


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temp directory, started on `start()` and deleted on `stop()`.

    `listen_addresses` may add addresses beyond loopback (a veth address, for tests that put
    clients in other network namespaces); `trust_networks` are CIDRs allowed in without a password.
    """

    def __init__(
        self,
        *,
        listen_addresses: Sequence[str] = ("127.0.0.1",),
        trust_networks: Sequence[str] = (),
        max_connections: int = 200,
    ) -> None:
        self.bin = find_bin_dir()
        for tool in ("initdb", "pg_ctl", "psql"):
            if not (self.bin / tool).exists():
                raise PostgresUnavailable(f"{self.bin / tool} is missing. {INSTALL_HINT}")
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root needs the {SERVER_USER!r} OS user to run the server. {INSTALL_HINT}"
                ) from None
        self.listen_addresses = list(listen_addresses)
        self.trust_networks = list(trust_networks)
        self.max_connections = max_connections
        self.host = "127.0.0.1"
        self.port = 0
        self.root: Path | None = None

    # -- paths -----------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self._root / "data"

    @property
    def postmaster_pid(self) -> int:
        """The server's PID (`pg_ctl` daemonizes it: no child of this process), for CPU accounting."""
        return int((self.data_dir / "postmaster.pid").read_text().split()[0])

    @property
    def socket_dir(self) -> Path:
        return self._root / "sock"

    @property
    def log_file(self) -> Path:
        return self._root / "server.log"

    @property
    def _root(self) -> Path:
        if self.root is None:
            raise RuntimeError("the cluster is not started")
        return self.root

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> ThrowawayPostgres:
        """initdb a new cluster and start it; retries a port another process took meanwhile."""
        # /tmp itself, not pytest's tmp_path: the server user must be able to reach the directory
        self.root = Path(tempfile.mkdtemp(prefix="screensync-pg-"))
        self.socket_dir.mkdir()
        if self.as_root:
            user = pwd.getpwnam(SERVER_USER)
            for path in (self.root, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        try:
            self._server_cmd(
                "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                "--locale=C", "--no-sync", "--no-instructions",
            )
            self._trust(self.trust_networks)
            for attempt in range(3):
                self.port = free_port()
                try:
                    self._pg_ctl_start()
                    break
                except subprocess.CalledProcessError:
                    if attempt == 2 or "could not bind" not in self._log_tail():
                        raise
        except subprocess.CalledProcessError as exc:
            detail = f"{exc.stderr or ''}\n{self._log_tail()}".strip()
            self.stop()
            raise RuntimeError(f"could not start the throwaway PostgreSQL ({exc.cmd[0:3]}): {detail}") from exc
        except BaseException:
            self.stop()
            raise
        return self

    def _pg_ctl_start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.socket_dir}",
                f"-c listen_addresses={','.join(self.listen_addresses)}",
                f"-c max_connections={self.max_connections}",
                # a cluster that dies with the test run: no durability work
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            ]
        )
        self._server_cmd(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60", "-o", options, "start"
        )

    def _trust(self, networks: Sequence[str]) -> None:
        if not networks:
            return
        with (self.data_dir / "pg_hba.conf").open("a") as hba:
            for cidr in networks:
                hba.write(f"host all all {cidr} trust\n")

    def stop(self) -> None:
        """Stop the server (immediately: nothing in it is worth a clean shutdown) and delete it all."""
        if self.root is None:
            return
        if (self.data_dir / "postmaster.pid").exists():
            try:
                self._server_cmd("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", "30", "stop")
            except subprocess.CalledProcessError:
                self._kill_postmaster()
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def _kill_postmaster(self) -> None:
        """pg_ctl could not stop it: end the postmaster by the pid it wrote (its children follow)."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, 9)
            time.sleep(0.5)

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- commands --------------------------------------------------------------------------
    def _server_cmd(self, tool: str, *args: str) -> str:
        """A server-side tool, as the `postgres` OS user when we are root."""
        cmd = [str(self.bin / tool), *args]
        if self.as_root:
            cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=self._root, check=True, timeout=120)
        return done.stdout

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        """Run SQL with psql over TCP as the superuser; returns its unaligned output. Raises on error."""
        cmd = [
            str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", self.host, "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed on {sql[:80]!r}: {done.stderr.strip()}")
        return done.stdout

    def database(self, name: str) -> PgDatabase:
        return PgDatabase(name=name, host=self.host, port=self.port, user=SUPERUSER)

    def create_database(self, name: str | None = None) -> PgDatabase:
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.database(name)

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ThrowawayPostgres]:
    """One cluster for the session (initdb + start take ~2 s); tests isolate by database."""
    try:
        server = ThrowawayPostgres()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    with server:
        yield server


@pytest.fixture
def postgres_db(postgres_server: ThrowawayPostgres) -> Iterator[PgDatabase]:
    """A new empty database for one test, dropped (connections and all) afterwards."""
    db = postgres_server.create_database()
    try:
        yield db
    finally:
        postgres_server.drop_database(db.name)
