"""A throwaway PostgreSQL cluster on loopback for tests and benchmarks: initdb, pg_ctl, a free port, then removal.

It runs the real server (Debian's `postgresql` package), never an imitation. PostgreSQL refuses to run as root
(`postgres` exits with "root execution of the PostgreSQL server is not permitted", src/backend/main/main.c), so
when this process is root the cluster is created and started as the unprivileged OS user `postgres` (which Debian's
package creates) through `runuser`. The data directory, its Unix socket and its log live in one temporary directory
owned by that user; `stop()` shuts the server down (`pg_ctl stop -m immediate`) and removes the directory.

Durability is switched off (`fsync`, `synchronous_commit`, `full_page_writes`): a throwaway cluster only needs
speed. The superuser gets a password and TCP connections need it (scram-sha-256), so URLs carry one, as in
production.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT = 60.0
RUN_AS = "postgres"
"""The OS user the server runs as when this process is root (created by Debian's `postgresql` package)."""


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries (initdb, pg_ctl) are not installed here, or cannot run."""


def find_bindir() -> Path | None:
    """The directory holding `initdb` and `pg_ctl`: on PATH, else Debian's /usr/lib/postgresql/<newest>/bin."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name or 0)
    )
    return Path(candidates[-1]).parent if candidates else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresCluster:
    """One running throwaway cluster: `url(dbname)` connects to it as its superuser."""

    bindir: Path
    root: Path
    port: int
    user: str
    password: str

    @property
    def datadir(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    def url(self, dbname: str = "postgres") -> str:
        """A postgresql:// URL (with the password) for one database of this cluster."""
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run one SQL command with psql over TCP and return its unaligned output."""
        env = {**os.environ, "PGPASSWORD": self.password}
        result = subprocess.run(  # noqa: S603 - our own binary and arguments
            [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, self.url(dbname)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database (from template0, UTF-8, C collation); returns its URL."""
        name = f"{prefix}_{secrets.token_hex(6)}"
        self.psql(f"create database {name} template template0 encoding 'UTF8' lc_collate 'C' lc_ctype 'C'")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by `create_database` (its connections are ended first)."""
        name = url.rsplit("/", 1)[-1]
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a database name: {name!r}")
        self.psql(f"drop database if exists {name} with (force)")

    def stop(self) -> None:
        """Stop the server at once and remove every file of the cluster."""
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            _run_as_owner(
                [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"], timeout=60
            )
        shutil.rmtree(self.root, ignore_errors=True)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _run_as_owner(argv: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    command = ["runuser", "-u", RUN_AS, "--", *argv] if _is_root() else argv
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=timeout)  # noqa: S603


def start_cluster(bindir: Path | None = None) -> PostgresCluster:
    """Create and start a cluster on a free loopback port; raise PostgresUnavailable when it cannot run here."""
    bindir = bindir or find_bindir()
    if bindir is None:
        raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="accessbot-pg-"))
    password = secrets.token_urlsafe(16)
    try:
        if _is_root():
            try:
                import pwd  # noqa: PLC0415 - POSIX only

                owner = pwd.getpwnam(RUN_AS)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root and there is no {RUN_AS!r} user to run PostgreSQL as (PostgreSQL refuses root)"
                ) from None
            os.chown(root, owner.pw_uid, owner.pw_gid)
        pwfile = root / "pwfile"
        pwfile.write_text(password + "\n")
        if _is_root():
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        pwfile.chmod(0o600)
        user = "accessbot"
        _run_as_owner(
            [
                str(bindir / "initdb"),
                "-D",
                str(root / "data"),
                "-U",
                user,
                "--pwfile",
                str(pwfile),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            timeout=120,
        )
        pwfile.unlink()
        port = free_port()
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        _run_as_owner(
            [str(bindir / "pg_ctl"), "-D", str(root / "data"), "-o", options, "-l", str(root / "log"), "-w", "start"],
            timeout=START_TIMEOUT,
        )
    except subprocess.CalledProcessError as err:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailable(f"PostgreSQL did not start: {err.stderr.strip() or log[-2000:]}") from None
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    cluster = PostgresCluster(bindir=bindir, root=root, port=port, user=user, password=password)
    _wait_ready(cluster)
    return cluster


def _wait_ready(cluster: PostgresCluster) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            cluster.psql("select 1")
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                cluster.stop()
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def running_cluster(bindir: Path | None = None) -> Iterator[PostgresCluster]:
    """`with running_cluster() as pg:` a started cluster, stopped and removed afterwards."""
    cluster = start_cluster(bindir)
    try:
        yield cluster
    finally:
        cluster.stop()
