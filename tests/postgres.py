"""A throwaway PostgreSQL cluster for the tests: ``initdb`` into a temporary folder, ``postgres`` on loopback.

PostgreSQL refuses to run as root, so under root both run as the ``postgres`` OS user (the Debian
package creates it) through ``runuser``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BIN_DIRS = [Path("/usr/lib/postgresql/15/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]


def server_bin() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``, if PostgreSQL is installed."""
    for folder in BIN_DIRS:
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """A running PostgreSQL server in a temporary folder; :meth:`new_database` gives each test its own."""

    def __init__(self, bindir: Path, crash_safe: bool = False) -> None:
        """Start a cluster. The tests' default writes nothing durably (``fsync=off``, ``full_page_writes=off``).

        ``crash_safe`` keeps ``fsync`` and ``full_page_writes`` on, with ``synchronous_commit=off``: a crash
        of PostgreSQL loses at most the last commits and never corrupts the cluster, but a commit does not
        wait for its WAL flush (as SQLite's WAL with ``synchronous=NORMAL``). The benchmarks measure this.
        """
        self.root = Path(tempfile.mkdtemp(prefix="chutes-pg-"))
        self.port = _free_port()
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._prefix = ["runuser", "-u", "postgres", "--"]
        data = self.root / "data"
        durable = "on" if crash_safe else "off"
        subprocess.run(
            [*self._prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "--no-sync", "-E", "UTF8", "--locale=C"],
            check=True, capture_output=True,
        )  # fmt: skip
        self.log = self.root / "server.log"
        self.proc = subprocess.Popen(
            [*self._prefix, str(bindir / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(self.root),
             "-c", "listen_addresses=127.0.0.1", "-c", f"fsync={durable}", "-c", "synchronous_commit=off",
             "-c", f"full_page_writes={durable}", "-c", "max_connections=300"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._names = itertools.count()
        self._wait()

    def url(self, database: str = "postgres") -> str:
        """A connection URL to ``database``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _wait(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start (exit {self.proc.poll()})") from None
                time.sleep(0.1)

    def new_database(self) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        name = f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        if self.proc.poll() is None:
            # SIGINT to the postmaster itself (runuser does not forward it): a fast shutdown.
            with contextlib.suppress(OSError, ValueError):
                pid = int((self.root / "data" / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)
