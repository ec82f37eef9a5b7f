"""Scheduler routing of team tasks to their team's executors (patch teams-executors)."""

from __future__ import annotations

import re

import pendulum
import pytest

from airflow.executors.base_executor import BaseExecutor
from airflow.jobs.job import Job
from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
from airflow.models.dag import DAG
from airflow.models.taskinstance import TaskInstance
from airflow.operators.empty import EmptyOperator
from airflow.teams import parsing
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, State, TaskInstanceState
from airflow.utils.types import DagRunType
from tests.test_utils.deployment import local_executors

TEAMS = {
    "team_a": [{"name": "a_one", "class": "LocalExecutor"}, {"name": "a_two", "class": "LocalExecutor"}],
    "team_b": [{"name": "b_local", "class": "LocalExecutor"}],
}


def scheduled_tis(team: str | None, executors: dict[str, str | None]) -> list[TaskInstance]:
    with parsing.parsing_for(team):
        dag = DAG("routing", schedule=None, start_date=pendulum.datetime(2024, 1, 1))
        for task_id, executor in executors.items():
            EmptyOperator(task_id=task_id, executor=executor, dag=dag)
    dag.sync_to_db()
    run = dag.create_dagrun(run_type=DagRunType.MANUAL, state=DagRunState.RUNNING,
                            execution_date=pendulum.datetime(2024, 1, 1), run_id=f"run_{team}")
    with create_session() as session:
        tis = run.get_task_instances(session=session)
        for ti in tis:
            ti.state = TaskInstanceState.SCHEDULED
            session.merge(ti)
    return tis


@pytest.mark.db_test
@pytest.mark.usefixtures("_clean_dags")
def test_tasks_go_to_their_own_teams_executors_and_unroutable_tasks_fail(multi_team):
    multi_team(TEAMS)
    scheduled_tis("team_a", {"default": None, "second": "a_two", "by_class_ambiguous": "LocalExecutor",
                             "foreign": "b_local"})
    scheduled_tis("team_b", {"default": None, "by_class": "LocalExecutor"})
    scheduled_tis(None, {"left_over_from_single_team": None})  # a DAG row from before multi-team mode
    runner = SchedulerJobRunner(job=Job())

    with create_session() as session:
        queued = runner._executable_task_instances_to_queued(max_tis=32, session=session)
        routed = {(ti.dag_id, ti.task_id): executor.name.alias for executor, tis in
                  runner._executor_to_tis(queued).items() for ti in tis}
        states = {(ti.dag_id, ti.task_id): ti.state for ti in session.query(TaskInstance)}

    assert routed == {
        ("team_a:routing", "default"): "a_one",
        ("team_a:routing", "second"): "a_two",
        ("team_b:routing", "default"): "b_local",
        ("team_b:routing", "by_class"): "b_local",
    }
    assert states[("team_a:routing", "foreign")] == State.FAILED
    assert states[("team_a:routing", "by_class_ambiguous")] == State.FAILED
    assert states[("routing", "left_over_from_single_team")] == State.FAILED



@pytest.mark.db_test
@pytest.mark.usefixtures("_clean_dags")
def test_events_of_all_team_executors_are_processed_with_one_query(multi_team):
    """Patch teams-executor-events: one TI query per loop, not one per executor with events."""
    from sqlalchemy import event

    from airflow import settings
    from airflow.executors.executor_loader import ExecutorLoader
    from airflow.teams import executor_events

    multi_team(TEAMS)
    tis = scheduled_tis("team_a", {"one": "a_one", "two": "a_two"}) + scheduled_tis("team_b", {"three": None})
    executors = ExecutorLoader.init_executors()
    by_name = {executor.name.alias: executor for executor in executors}
    with create_session() as session:
        for ti in tis:
            ti.state = TaskInstanceState.SUCCESS
            session.merge(ti)
    owner = {"one": "a_one", "two": "a_two", "three": "b_local"}
    for ti in tis:
        by_name[owner[ti.task_id]].event_buffer[ti.key] = (TaskInstanceState.SUCCESS, None)
    runner = SchedulerJobRunner(job=Job(executors=executors))
    runner._standalone_dag_processor = True

    sources = executor_events.event_sources(executors)
    ti_queries = []
    listener = lambda *args: ti_queries.append(args[2]) if "FROM task_instance" in args[2] else None  # noqa: E731
    event.listen(settings.engine, "before_cursor_execute", listener)
    try:
        with create_session() as session:
            processed = sum(runner._process_executor_events(executor=s, session=session) for s in sources)
    finally:
        event.remove(settings.engine, "before_cursor_execute", listener)

    assert len(sources) == 1
    assert processed == 0  # upstream returns the events it found no task instance for
    assert len(ti_queries) == 1
    assert all(not executor.event_buffer for executor in executors)
    merged = executor_events.TeamExecutorEvents(executors)
    by_name["b_local"].event_buffer[tis[2].key] = (TaskInstanceState.SUCCESS, None)
    merged.get_event_buffer().pop(tis[2].key)
    assert str(merged) == str(by_name["b_local"])  # log lines name the executor that reported the task


@pytest.mark.db_test
@pytest.mark.usefixtures("_clean_dags")
@pytest.mark.parametrize("database", ["sqlite", "postgres"])  # the team prefix is SQL of each dialect
def test_teams_take_turns_in_each_batch_of_task_instances_to_queue(multi_team, database, request):
    """Patch teams-fair-share: team_a's higher-priority backlog does not fill the whole batch."""
    multi_team(TEAMS)
    if database == "postgres":
        request.getfixturevalue("postgres_metadata_db")
    backlog = scheduled_tis("team_a", {f"backlog_{i}": None for i in range(40)})
    with create_session() as session:
        for ti in backlog:
            ti.priority_weight = 10
            session.merge(ti)
    scheduled_tis("team_b", {"small_1": None, "small_2": None})
    runner = SchedulerJobRunner(job=Job())

    with create_session() as session:
        queued = runner._executable_task_instances_to_queued(max_tis=8, session=session)

    assert sorted(ti.task_id for ti in queued if ti.dag_id == "team_b:routing") == ["small_1", "small_2"]
    assert len(queued) == 8


@pytest.mark.db_test
@pytest.mark.usefixtures("_clean_dags")
@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_teams_take_turns_in_the_dag_runs_examined_per_loop(multi_team, database, request):
    """Patch teams-fair-share: team_b's run is examined in the first loop despite team_a's older runs."""
    from airflow.models.dagrun import DagRun

    multi_team(TEAMS)
    if database == "postgres":
        request.getfixturevalue("postgres_metadata_db")
    with parsing.parsing_for("team_a"):
        busy = DAG("busy", schedule=None, start_date=pendulum.datetime(2024, 1, 1))
    with parsing.parsing_for("team_b"):
        quiet = DAG("quiet", schedule=None, start_date=pendulum.datetime(2024, 1, 1))
    for dag in (busy, quiet):
        EmptyOperator(task_id="t", dag=dag)
        dag.sync_to_db()
    for day in range(1, 6):
        busy.create_dagrun(run_type=DagRunType.MANUAL, state=DagRunState.RUNNING, run_id=f"busy_{day}",
                           execution_date=pendulum.datetime(2024, 1, day))
    quiet.create_dagrun(run_type=DagRunType.MANUAL, state=DagRunState.RUNNING, run_id="quiet",
                        execution_date=pendulum.datetime(2024, 2, 1))

    with create_session() as session:
        examined = DagRun.next_dagruns_to_examine(DagRunState.RUNNING, session, max_number=2).all()
        assert [(run.dag_id, run.run_id) for run in examined] == [("team_a:busy", "busy_1"), ("team_b:quiet", "quiet")]


def window_loops(plan: dict) -> list[int]:
    """How often each window function of an EXPLAIN (ANALYZE, FORMAT JSON) plan was computed."""
    loops = [plan["Actual Loops"]] if plan["Node Type"] == "WindowAgg" else []
    return loops + [n for child in plan.get("Plans", []) for n in window_loops(child)]


@pytest.mark.db_test
@pytest.mark.usefixtures("_clean_dags")
def test_postgres_computes_the_turns_once_per_query_not_once_per_candidate(multi_team, request):
    """Patch teams-fair-share: the turns of the runs and task instances are computed once per query."""
    from sqlalchemy import event

    from airflow import settings
    from airflow.models.dagrun import DagRun

    multi_team(TEAMS)
    request.getfixturevalue("postgres_metadata_db")  # fresh tables, no statistics: as after a busy minute
    for team in ("team_a", "team_b"):
        with parsing.parsing_for(team):
            dag = DAG("turns", schedule=None, start_date=pendulum.datetime(2024, 1, 1))
            for task in range(3):
                EmptyOperator(task_id=f"t{task}", dag=dag)
        dag.sync_to_db()
        for day in range(1, 5):
            run = dag.create_dagrun(run_type=DagRunType.MANUAL, state=DagRunState.RUNNING,
                                    execution_date=pendulum.datetime(2024, 1, day), run_id=f"run_{day}")
            with create_session() as session:
                for ti in run.get_task_instances(session=session):
                    ti.state = TaskInstanceState.SCHEDULED
                    session.merge(ti)
    statements = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if "team_turns" in statement:
            statements.append((statement, parameters))

    event.listen(settings.engine, "before_cursor_execute", keep)
    try:
        with create_session() as session:
            DagRun.next_dagruns_to_examine(DagRunState.RUNNING, session, max_number=4).all()
            SchedulerJobRunner(job=Job())._executable_task_instances_to_queued(max_tis=4, session=session)
            session.rollback()
    finally:
        event.remove(settings.engine, "before_cursor_execute", keep)

    assert len({statement for statement, _ in statements}) == 2  # the runs' query and the task instances'
    connection = settings.engine.raw_connection()
    try:
        cursor = connection.cursor()
        for statement, parameters in statements:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
            assert window_loops(cursor.fetchone()[0][0]["Plan"]) == [1], statement
        connection.rollback()
    finally:
        connection.close()


@pytest.mark.db_test
@pytest.mark.usefixtures("_clean_dags")
def test_a_team_using_all_its_slots_leaves_the_other_teams_theirs(multi_team, monkeypatch):
    """Patch teams-fair-share: [core] parallelism is each executor's limit, not one for all teams."""
    from airflow.executors.executor_loader import ExecutorLoader

    monkeypatch.setenv("AIRFLOW__CORE__PARALLELISM", "2")
    multi_team({"team_a": [{"name": "a_local", "class": "LocalExecutor"}],
                "team_b": [{"name": "b_local", "class": "LocalExecutor"}]})
    executors = ExecutorLoader.init_executors()
    by_name = {executor.name.alias: executor for executor in executors}
    long_running = scheduled_tis("team_a", {"long_1": None, "long_2": None, "waiting": None})
    by_name["a_local"].running.update(ti.key for ti in long_running[:2])
    scheduled_tis("team_b", {"b_task": None})
    runner = SchedulerJobRunner(job=Job(executors=executors))

    with create_session() as session:
        runner._critical_section_enqueue_task_instances(session=session)

    assert [key.dag_id for key in by_name["b_local"].queued_tasks] == ["team_b:routing"]
    assert not by_name["a_local"].queued_tasks  # team_a's own limit still holds


@pytest.mark.db_test
def test_without_multi_team_each_executor_keeps_its_own_event_processing():
    from airflow.executors.local_executor import LocalExecutor
    from airflow.teams import executor_events

    executors = [LocalExecutor(), LocalExecutor()]
    assert executor_events.event_sources(executors) is executors


class CountingExecutor(BaseExecutor):
    """An executor that counts its heartbeats."""

    def __init__(self, *args, **kwargs):
        from airflow.executors.executor_utils import ExecutorName

        super().__init__(*args, **kwargs)
        self.heartbeats = 0
        if self.team_name:
            self.name = ExecutorName(f"{__name__}.CountingExecutor", f"ex_{self.team_name}", self.team_name)

    def heartbeat(self):
        self.heartbeats += 1
        super().heartbeat()

    def trigger_tasks(self, open_slots):
        pass  # a queued task stays queued

    def execute_async(self, key, command, queue=None, executor_config=None):
        pass

    def sync(self):
        pass


def test_an_idle_team_executor_is_heartbeaten_every_few_seconds_a_busy_one_in_every_loop(monkeypatch):
    """An idle team executor is heartbeaten at most every IDLE_HEARTBEAT_SECONDS, not in every loop."""
    from airflow.models.taskinstancekey import TaskInstanceKey
    from airflow.teams import routing

    clock = [1000.0]
    monkeypatch.setattr(routing.time, "monotonic", lambda: clock[0])
    idle, busy, running = (CountingExecutor(team_name=f"team_{n}") for n in "abc")
    teamless = CountingExecutor()  # single-team mode: upstream's pace
    key = TaskInstanceKey("team_b:etl", "t", "run", 1)
    busy.queued_tasks[key] = (["airflow", "tasks", "run"], 1, None, None)  # waits for a slot of its own
    running.running.add(key._replace(dag_id="team_c:etl"))  # e.g. adopted after a scheduler restart
    executors = (idle, busy, running, teamless)

    def loops(count: int) -> None:
        for _ in range(count):
            for executor in executors:
                routing.heartbeat(executor)
            clock[0] += 0.5

    loops(4)  # 2 seconds
    assert [e.heartbeats for e in executors] == [1, 4, 4, 4]
    loops(7)  # at 5 seconds the idle one's next heartbeat is due
    assert [e.heartbeats for e in executors] == [2, 11, 11, 11]

    running.running.clear()  # its last task finished: heartbeaten once more (its gauges say idle), then idle
    loops(4)
    assert [e.heartbeats for e in executors] == [2, 15, 12, 15]


def test_an_idle_team_executor_whose_start_failed_retries_its_start_in_every_loop(monkeypatch):
    from airflow.teams import routing

    class NotStarting(CountingExecutor):
        starts = 0

        def start(self):
            NotStarting.starts += 1
            raise RuntimeError("its broker is down")

    executor = NotStarting(team_name="team_a")
    routing.start(executor)
    for _ in range(3):
        routing.heartbeat(executor)
    assert (NotStarting.starts, executor.heartbeats) == (4, 0)


def test_a_team_executor_failing_while_the_scheduler_exits_does_not_stop_the_exit():
    """The scheduler's SIGTERM handler raises SystemExit inside an executor's sync; the sync's cleanup then
    fails (its manager process got the signal too). That is the scheduler leaving, not a failure to isolate."""
    from airflow.teams import routing

    class ExitingInSync(CountingExecutor):
        def sync(self):
            try:
                raise SystemExit(0)  # what SchedulerJobRunner._exit_gracefully raises
            finally:
                raise EOFError("the result queue's manager is gone")

    with pytest.raises(SystemExit):
        routing.heartbeat(ExitingInSync(team_name="team_a"))


def test_only_team_executors_with_task_event_logs_open_a_session(multi_team):
    """Patch teams-executor-events: the scheduler saves task event logs of the executors that have some."""
    from airflow.teams import executor_events

    quiet, logging_one = CountingExecutor(team_name="team_a"), CountingExecutor(team_name="team_b")
    logging_one._task_event_logs.append("a log row")
    executors = [quiet, logging_one]
    assert executor_events.with_task_event_logs(executors) is executors  # multi_team off: upstream's loop
    multi_team(TEAMS)
    assert executor_events.with_task_event_logs(executors) == [logging_one]


@pytest.mark.e2e
def test_a_real_scheduler_runs_each_teams_dags_and_same_team_triggers(make_deployment):
    deployment = make_deployment(local_executors("team_a", "team_b"))
    for team in ("team_a", "team_b"):
        deployment.write_dag(team, "etl.py", """
            import pendulum
            from airflow import DAG
            from airflow.operators.bash import BashOperator
            from airflow.operators.trigger_dagrun import TriggerDagRunOperator

            with DAG("etl", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
                BashOperator(task_id="hello", bash_command="echo $AIRFLOW_CTX_DAG_ID") >> TriggerDagRunOperator(
                    task_id="trigger", trigger_dag_id="downstream")

            with DAG("downstream", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
                BashOperator(task_id="done", bash_command="echo done")
        """)
    # team pools (patch teams-pools): team_a has a default pool of its own; its DAG that takes team_b's
    # pool is an import error
    deployment.env["AIRFLOW__TEAM_A___CORE__DEFAULT_POOL"] = "team_a:default"
    greedy = deployment.write_dag("team_a", "greedy.py", """
        import pendulum
        from airflow import DAG
        from airflow.operators.empty import EmptyOperator

        with DAG("greedy", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
            EmptyOperator(task_id="fill", pool="team_b:reserved")
    """)
    deployment.migrate()
    for pool in ("team_a:default", "team_b:reserved"):
        deployment.airflow("pools", "set", pool, "4", f"{pool} for the test")
    deployment.start("dag-processor-a", "dag-processor", "--team", "team_a")
    deployment.start("dag-processor-b", "dag-processor", "--team", "team_b")
    deployment.start("scheduler", "scheduler")
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM dag WHERE is_active") == 4, "4 DAGs")

    deployment.airflow("dags", "trigger", "team_a:etl")
    deployment.airflow("dags", "trigger", "team_b:etl")

    for dag_id in ("team_a:etl", "team_b:etl", "team_a:downstream", "team_b:downstream"):
        assert deployment.wait_for_dag_run(dag_id) == "success", dag_id
    # Without isolation each team's dag-processor records its job's team itself: `teams doctor` finds them
    # live, and misses only the triggerers this deployment never started.
    doctor = deployment.airflow("teams", "doctor", check=False)
    assert doctor.returncode == 1 and [line.split(" (")[0] for line in doctor.stdout.splitlines()
                                       if not line.startswith("[20")] == [
        "team_a: No live triggerer of team 'team_a'", "team_b: No live triggerer of team 'team_b'"], doctor.stdout
    log = next((deployment.home / "logs" / "dag_id=team_b:etl").glob("run_id=*/task_id=hello/attempt=1.log"))
    assert "team_b:etl" in log.read_text()
    runs = deployment.rows("SELECT dag_id, run_type FROM dag_run ORDER BY dag_id")
    assert runs == [("team_a:downstream", "manual"), ("team_a:etl", "manual"),
                    ("team_b:downstream", "manual"), ("team_b:etl", "manual")]
    pools = deployment.rows("SELECT DISTINCT dag_id, pool FROM task_instance ORDER BY dag_id")
    assert pools == [("team_a:downstream", "team_a:default"), ("team_a:etl", "team_a:default"),
                     ("team_b:downstream", "default_pool"), ("team_b:etl", "default_pool")]
    error = deployment.wait_for(lambda: deployment.scalar("SELECT stacktrace FROM import_error WHERE filename = :f",
                                                          f=str(greedy)), "the import error of greedy.py")
    assert error == ("TeamPoolError: Task 'fill' of DAG 'team_a:greedy' (team 'team_a') may not use pool "
                     "'team_b:reserved' of team 'team_b': a team's tasks use only its own pools ('team_a:<name>') "
                     "and shared pools (no team prefix).")

    # A task instance put into team_b's pool in the database: the scheduler fails it instead of running it.
    deployment.rows("UPDATE task_instance SET state = 'scheduled', pool = 'team_b:reserved' "
                    "WHERE dag_id = 'team_a:downstream' RETURNING task_id")
    deployment.rows("UPDATE dag_run SET state = 'running' WHERE dag_id = 'team_a:downstream' RETURNING run_id")
    deployment.wait_for(lambda: deployment.scalar(
        "SELECT state FROM task_instance WHERE dag_id = 'team_a:downstream'") == "failed", "the task to fail")
    assert "its pool 'team_b:reserved' is a pool of team 'team_b'" in deployment.log_of("scheduler")
    ((extra,),) = deployment.rows("SELECT extra FROM log WHERE event = 'teams.pool_denied' AND dag_id = :d",
                                  d="team_a:downstream")
    assert '"team": "team_a", "target_team": "team_b", "object": "pool team_b:reserved for task' in extra, extra


BROKEN_EXECUTOR = '''
from airflow.executors.local_executor import LocalExecutor


class BrokenExecutor(LocalExecutor):
    """A team executor whose heartbeat always fails (think: its broker is gone)."""

    def sync(self):
        raise RuntimeError("broken on purpose")
'''


@pytest.mark.e2e
def test_a_team_executor_failing_its_heartbeat_does_not_stop_the_other_teams(make_deployment, tmp_path):
    (tmp_path / "plugins_path").mkdir()
    (tmp_path / "plugins_path" / "broken_executor.py").write_text(BROKEN_EXECUTOR)
    deployment = make_deployment({
        "team_a": [{"name": "a_broken", "class": "broken_executor.BrokenExecutor"}],
        "team_b": [{"name": "b_local", "class": "LocalExecutor"}],
    })
    deployment.env["PYTHONPATH"] = str(tmp_path / "plugins_path")
    for team in ("team_a", "team_b"):
        deployment.write_dag(team, "etl.py", """
            import pendulum
            from airflow import DAG
            from airflow.operators.empty import EmptyOperator

            with DAG("etl", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
                EmptyOperator(task_id="noop")
        """)
    deployment.migrate()
    deployment.start_scheduler_and_processors(("team_a", "team_b"), active_dags=2)

    deployment.airflow("dags", "trigger", "team_a:etl")
    deployment.airflow("dags", "trigger", "team_b:etl")

    assert deployment.wait_for_dag_run("team_b:etl") == "success"
    deployment.assert_running()
    log = deployment.log_of("scheduler")
    assert "Executor a_broken of team team_a failed in heartbeat; the other teams' executors carry on." in log
    assert "RuntimeError: broken on purpose" in log
    # ... and `airflow teams doctor`, another process, reads it from the scheduler's audit log row
    doctor = deployment.airflow("teams", "doctor", check=False)
    assert doctor.returncode == 1
    assert re.search(r"^team_a: Executor 'a_broken' of team 'team_a' failed in heartbeat \(\d+ time\(s\) in the last "
                     r"10 minutes, not working since: RuntimeError: broken on purpose\)", doctor.stdout, re.M), doctor.stdout


FAN_OUT_DAG = """
    import time
    import pendulum
    from airflow import DAG
    from airflow.operators.python import PythonOperator

    with DAG("fan", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        for i in range(3):
            PythonOperator(task_id=f"t{i}", python_callable=lambda: time.sleep(8))
"""


def most_at_once(intervals: list[tuple]) -> int:
    return max(sum(1 for start, end in intervals if start <= moment < end) for moment, _ in intervals)


@pytest.mark.e2e
def test_each_executor_has_its_own_slots(make_deployment):
    deployment = make_deployment({
        "team_a": [{"name": "a_local", "class": "LocalExecutor", "config": {"core": {"parallelism": "1"}}}],
        "team_b": [{"name": "b_local", "class": "LocalExecutor"}],
    })
    for team in ("team_a", "team_b"):
        deployment.write_dag(team, "fan.py", FAN_OUT_DAG)
    deployment.migrate()
    deployment.start_scheduler_and_processors(("team_a", "team_b"), active_dags=2)

    deployment.airflow("dags", "trigger", "team_a:fan")
    deployment.airflow("dags", "trigger", "team_b:fan")

    def running(dag_id: str) -> int:
        return deployment.scalar("SELECT count(*) FROM task_instance WHERE dag_id = :d AND state = 'running'",
                                 d=dag_id)

    # team_b's own slots are not taken by team_a's queue: all three of its tasks run beside team_a's one.
    deployment.wait_for(lambda: running("team_b:fan") == 3 and running("team_a:fan") == 1,
                        "team_b's three tasks running while team_a runs one")
    assert deployment.wait_for_dag_run("team_a:fan", timeout=240) == "success"
    assert deployment.wait_for_dag_run("team_b:fan") == "success"
    ran_a = deployment.rows("SELECT start_date, end_date FROM task_instance WHERE dag_id = 'team_a:fan'")
    assert most_at_once(ran_a) == 1  # team_a's executor has one slot
