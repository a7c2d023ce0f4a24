"""The test PostgreSQL server itself, to restart, stop, freeze and thaw it under a history store.

Its cluster folder comes from CHATBOT_TEST_POSTGRES_DATA, which `bash .ci/postgres.sh run …` exports
next to CHATBOT_TEST_POSTGRES_URL. Unset fails the test, never skips it. The `postgres_server`
fixture leaves the server thawed and running whatever the test did to it.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

DATA_ENV = "CHATBOT_TEST_POSTGRES_DATA"


class PostgresServer:
    """pg_ctl and signals for one cluster, run as its owner (PostgreSQL refuses to run as root)."""

    def __init__(self, cluster: Path) -> None:
        self.cluster = cluster
        postgres = shlex.split((cluster / "postmaster.opts").read_text())[0]
        self.pg_ctl = str(Path(postgres).with_name("pg_ctl"))
        self.log = cluster.parent / "server.log"
        self._frozen: list[int] = []

    def _ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [self.pg_ctl, "-D", str(self.cluster), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def running(self) -> bool:
        return self._ctl("status", check=False).returncode == 0

    def restart(self) -> None:
        self._ctl("-l", str(self.log), "-m", "fast", "-w", "-t", "60", "restart")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "-t", "60", "stop")

    def start(self) -> None:
        self._ctl("-l", str(self.log), "-w", "-t", "60", "start")

    def _pids(self) -> list[int]:
        """The postmaster first, then every process it started."""
        postmaster = int((self.cluster / "postmaster.pid").read_text().split()[0])
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            if int(fields[1]) == postmaster:
                children.append(int(entry.name))
        return [postmaster, *children]

    def freeze(self) -> None:
        """SIGSTOP the server: its kernel still accepts connections and data, but nothing answers."""
        for pid in self._pids():
            os.kill(pid, signal.SIGSTOP)
            self._frozen.append(pid)

    def thaw(self) -> None:
        for pid in reversed(self._frozen):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                continue
        self._frozen.clear()


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """The running test server; thawed and started again after the test, whatever it did."""
    cluster = os.environ.get(DATA_ENV, "").strip()
    if not cluster:
        pytest.fail(
            f"{DATA_ENV} is not set: run `bash .ci/postgres.sh run .venv/bin/python -m pytest …` (or "
            "`make test`), or after `bash .ci/postgres.sh start`, "
            f'export {DATA_ENV}="$(bash .ci/postgres.sh data)"'
        )
    server = PostgresServer(Path(cluster))
    assert server.running(), f"the test server in {cluster} is not running"
    try:
        yield server
    finally:
        server.thaw()
        if not server.running():
            server.start()
