"""A real Airflow deployment for end-to-end tests: its own AIRFLOW_HOME, DAG folders, a PostgreSQL
database, and real ``airflow`` processes started with a clean environment (no unit-test settings)."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import requests
import sqlalchemy

from teams_breeze import services
from teams_breeze.services import free_port

AIRFLOW = str(Path(sys.executable).parent / "airflow")
FERNET_KEY = "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="
# The components that run DAG code; with isolation they hold no database URL (LocalExecutor tasks get
# theirs removed by the executor itself).
ISOLATED_COMMANDS = ("dag-processor", "triggerer", "celery")
# What an isolated process logs when its code opens a database session or connection itself.
DIRECT_ACCESS = re.compile(r"TracebackSession object was used|Can't load plugin: sqlalchemy\.dialects:none"
                           r"|Could not parse SQLAlchemy URL")


def local_executors(*teams: str) -> dict[str, list[dict]]:
    """One LocalExecutor per team, named ``<team>_local`` (as ``./breeze start-airflow --teams`` runs them)."""
    return services.local_executors(teams)


_MADE: list[Deployment] = []  # every deployment of this test process, for stop_leftover_processes


def stop_leftover_processes() -> None:
    """Stop what every deployment made so far still runs (a fixture whose start failed never reached its
    teardown); called at the end of each test module (tests/conftest.py)."""
    while _MADE:
        _MADE.pop().stop_processes()


class Deployment:
    """Everything lives below ``root``; processes are stopped by :meth:`stop_all`."""

    def __init__(self, root: Path, database_url: str, teams: dict[str, list[dict]] | None = None,
                 isolated: bool = False, **config: str):
        """``isolated``: :meth:`migrate` also starts the internal API (:meth:`isolate`)."""
        self.root = root
        self.home = root / "home"
        self.dags = root / "dags"
        self.logs = root / "process-logs"
        for directory in (self.home, self.dags, self.logs):
            directory.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self.teams = teams
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = self._environment(config)
        self.isolate_after_migrate = isolated
        self.isolated = False
        self.isolated_processes: set[str] = set()
        self.direct_access_expected: set[str] = set()  # DAGs whose tasks try the database on purpose
        self._engine = sqlalchemy.create_engine(database_url, poolclass=sqlalchemy.pool.NullPool)
        _MADE.append(self)

    def _environment(self, config: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
        env.update(
            AIRFLOW_HOME=str(self.home),
            PATH=str(Path(AIRFLOW).parent) + os.pathsep + env.get("PATH", ""),
            PYTHONUNBUFFERED="1",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=self.database_url,
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__FERNET_KEY=FERNET_KEY,
            AIRFLOW__WEBSERVER__SECRET_KEY="e2e-tests",
            AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR="True",
            AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL="5",
            AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL="3",
            AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
            AIRFLOW__SCHEDULER__PARSING_CLEANUP_INTERVAL="5",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY="True",
            # The tests log in far more often than people do (FAB allows 5 logins per 40 s by default).
            AIRFLOW__FAB__AUTH_RATE_LIMITED="False",
        )
        if self.teams is not None:
            env.update(AIRFLOW__CORE__MULTI_TEAM="True", AIRFLOW__CORE__EXECUTOR=json.dumps(self.teams))
        else:
            env.update(AIRFLOW__CORE__EXECUTOR="LocalExecutor")
        env.update({f"AIRFLOW__{key.upper()}": value for key, value in config.items()})
        return env

    # ---- files ----------------------------------------------------------------------------------

    def team_folder(self, team: str) -> Path:
        folder = self.dags / team
        folder.mkdir(exist_ok=True)
        return folder

    def write_dag(self, team: str | None, filename: str, source: str) -> Path:
        folder = self.team_folder(team) if team else self.dags
        path = folder / filename
        path.write_text(textwrap.dedent(source))
        return path

    # ---- processes ------------------------------------------------------------------------------

    def airflow(self, *args: str, check: bool = True, timeout: float = 180, env: dict | None = None):
        result = subprocess.run([AIRFLOW, *args], env=self.env | (env or {}), capture_output=True, text=True,
                                timeout=timeout, cwd=self.home)
        if check and result.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} exited {result.returncode}:\n{result.stderr[-4000:]}")
        return result

    def migrate(self) -> None:
        self.airflow("db", "migrate")
        if self.isolate_after_migrate:
            self.isolate()

    def isolate(self, shared: bool = False) -> None:
        """Database access isolation: start the internal API (after :meth:`migrate`), in multi-team mode one
        ``internal-api --team T`` per team with the team's own URL and key (``shared``: one ``internal-api
        --teams`` forking them, each logging to its own file as well); from now on the components that run
        DAG code (dag-processor, triggerer, celery worker) start without the database URL."""
        self.env.update(AIRFLOW__CORE__DATABASE_ACCESS_ISOLATION="True")
        ports = {}
        for team in self.teams or [None]:
            ports[team] = port = free_port()
            prefix = f"AIRFLOW__{team.upper()}___CORE__" if team else "AIRFLOW__CORE__"
            self.env.update({f"{prefix}INTERNAL_API_URL": f"http://127.0.0.1:{port}",
                             f"{prefix}INTERNAL_API_SECRET_KEY": secrets.token_hex(32)})
            if not shared:
                self.start(self.internal_api(team), "internal-api", "--port", str(port), "--hostname", "127.0.0.1",
                           "--workers", "1" if team else "2", *(["--team", team] if team else []))
        if shared:
            self.start(self.internal_api(), "internal-api", "--teams", ",".join(self.teams), "--teams-log-dir",
                       str(self.logs), "--hostname", "127.0.0.1", "--workers", "1")
        for team, port in ports.items():
            self.wait_for(lambda port=port: services.http_ok(f"http://127.0.0.1:{port}/internal_api/v1/health"),
                          f"the internal API {self.internal_api(team)}")
        self.isolated = True

    @staticmethod
    def internal_api(team: str | None = None) -> str:
        """The process name of the (team's) internal API."""
        return f"internal-api-{team}" if team else "internal-api"

    def isolated_env(self) -> dict[str, str]:
        """The environment of a process that runs DAG code in isolation mode: no database URL."""
        return self.env | {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "none://"}

    def start(self, name: str, *args: str, env: dict | None = None) -> subprocess.Popen:
        if self.isolated and args[0] in ISOLATED_COMMANDS:
            env = (env or {}) | {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "none://"}
            self.isolated_processes.add(name)
        with (self.logs / f"{name}.log").open("a") as log:  # a restarted process appends to its log
            process = subprocess.Popen([AIRFLOW, *args], env=self.env | (env or {}), stdout=log,
                                       stderr=subprocess.STDOUT, cwd=self.home, start_new_session=True)
        self.processes[name] = process
        return process

    def start_scheduler_and_processors(self, teams: tuple[str, ...], active_dags: int) -> None:
        """Start one ``dag-processor --team`` per team and the scheduler; wait for the active DAGs."""
        for team in teams:
            self.start(f"dag-processor-{team}", "dag-processor", "--team", team)
        self.start("scheduler", "scheduler")
        self.wait_for(lambda: self.scalar("SELECT count(*) FROM dag WHERE is_active") == active_dags,
                      f"{active_dags} active DAGs")

    def log_of(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def task_logs(self, dag_id: str, task_id: str = "*", attempt: str = "*") -> str:
        """The task logs of ``dag_id`` (all runs and map indexes), optionally of one task and attempt."""
        return "\n".join(path.read_text(errors="replace") for path in sorted(
            (self.home / "logs" / f"dag_id={dag_id}").rglob(f"attempt={attempt}.log"))
            if task_id == "*" or f"/task_id={task_id}/" in str(path))

    def stop(self, name: str) -> None:
        services.stop_process_group(self.processes.pop(name), grace=30)

    def stop_processes(self) -> None:
        for name in reversed(list(self.processes)):  # the internal API, started first, stops last
            self.stop(name)

    def stop_all(self) -> None:
        self.stop_processes()
        self._engine.dispose()
        if self.isolated:
            self.assert_no_direct_database_access()

    def assert_no_direct_database_access(self) -> None:
        """The guard of isolation mode: no isolated component or task tried to use a database session of
        its own (the TracebackSession raises) or to connect with the ``none://`` URL it was given."""
        logs = [self.logs / f"{name}.log" for name in sorted(self.isolated_processes)]
        logs += [path for path in (self.home / "logs").rglob("*.log")
                 if not any(f"dag_id={dag_id}" in str(path) for dag_id in self.direct_access_expected)]
        found = [f"{path}: {line.strip()[:300]}" for path in logs
                 for line in path.read_text(errors="replace").splitlines() if DIRECT_ACCESS.search(line)]
        if found:
            raise AssertionError("isolated components accessed the database themselves:\n" + "\n".join(found[:20]))

    def start_webserver(self, **env: str) -> str:
        """Start a webserver on a free port, wait until it is healthy and return (and keep) its URL."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.start("webserver", "webserver", "--port", str(port), "--hostname", "127.0.0.1", env=env)
        return self.url

    def wait_for_webserver(self) -> None:
        self.wait_for(lambda: services.http_ok(f"{self.url}/health"), "the webserver", timeout=180)

    def login(self, username: str = "admin", password: str = "admin") -> requests.Session:
        """A browser session logged in to the webserver's UI."""
        session = requests.Session()
        page = session.get(f"{self.url}/login/")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
        response = session.post(f"{self.url}/login/",
                                data={"username": username, "password": password, "csrf_token": token})
        if not response.ok or response.url.rstrip("/").endswith("/login"):
            raise AssertionError(f"Logging in as {username!r} failed ({response.status_code} at {response.url})")
        return session

    def create_user(self, username: str = "admin", role: str = "Admin") -> None:
        self.airflow("users", "create", "--username", username, "--password", username, "--role", role,
                     "--firstname", username, "--lastname", username, "--email", f"{username}@example.invalid")

    def assert_running(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                summary = f"{name} exited with {process.returncode}"
                raise AssertionError(f"{summary}:\n{self.log_of(name)[-4000:]}\n--- {summary}")

    # ---- database -------------------------------------------------------------------------------

    def rows(self, query: str, **params: Any) -> list[tuple]:
        with self._engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sqlalchemy.text(query), params)]

    def scalar(self, query: str, **params: Any) -> Any:
        rows = self.rows(query, **params)
        return rows[0][0] if rows else None

    def wait_for(self, condition: Callable[[], Any], what: str, timeout: float = 120) -> Any:
        """Poll ``condition`` until it returns something truthy; fail with the processes' logs."""
        def running_and(condition_result: Callable[[], Any]) -> Any:
            self.assert_running()
            return condition_result()

        if result := services.poll(lambda: running_and(condition), timeout, interval=1):
            return result
        summary = f"timed out after {timeout}s waiting for {what}"
        logs = "\n".join(f"--- {name} ---\n{self.log_of(name)[-3000:]}" for name in self.processes)
        raise AssertionError(f"{summary}\n{logs}\n--- {summary}")  # last too: CI output is often cut

    def wait_for_dag_run(self, dag_id: str, states=("success", "failed"), timeout: float = 150) -> str:
        return self.wait_for(
            lambda: self.scalar(
                "SELECT state FROM dag_run WHERE dag_id = :dag_id AND state = ANY(:states) LIMIT 1",
                dag_id=dag_id, states=list(states),
            ),
            f"a dag run of {dag_id} in {states}",
            timeout,
        )
