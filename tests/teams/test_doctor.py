"""airflow teams doctor (airflow.teams.doctor): each check, broken on purpose, says what is wrong in one line."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

LOCAL = [{"name": "a", "class": "LocalExecutor"}]
TEAMS = {"team_a": LOCAL, "team_b": [{"name": "b", "class": "LocalExecutor"}]}


@pytest.fixture
def live_teams(multi_team):
    """Two teams whose folders exist, with a live dag-processor and triggerer each; returns their jobs."""
    from sqlalchemy import text

    from airflow.jobs.job import Job
    from airflow.teams import tables
    from airflow.utils import timezone
    from airflow.utils.session import create_session
    from airflow.utils.state import JobState

    multi_team(TEAMS)
    jobs = {}
    with create_session() as session:
        session.query(Job).delete()
        # what other tests of this worker's database may have left that these checks would report
        session.execute(text("DELETE FROM dag WHERE dag_id NOT LIKE 'team\\_a:%' ESCAPE '\\' "
                             "AND dag_id NOT LIKE 'team\\_b:%' ESCAPE '\\'"))
        session.execute(text("DELETE FROM log WHERE event LIKE 'teams.executor\\_%' ESCAPE '\\'"))
        session.execute(text("DELETE FROM slot_pool WHERE pool LIKE '%:%' AND pool NOT LIKE 'team\\_a:%' "
                             "ESCAPE '\\' AND pool NOT LIKE 'team\\_b:%' ESCAPE '\\'"))
        for team in TEAMS:
            for job_type in ("DagProcessorJob", "TriggererJob"):
                job = Job(job_type=job_type, state=JobState.RUNNING, latest_heartbeat=timezone.utcnow())
                session.add(job)
                session.flush()
                tables.record_job_team(job.id, team, session)
                jobs[(team, job_type)] = job.id
    yield jobs
    with create_session() as session:
        session.query(Job).delete()


def diagnose() -> list[tuple[str, str | None, str]]:
    from airflow.teams import doctor

    return [(p.check, p.team, p.message) for p in doctor.diagnose()]


@pytest.mark.db_test
def test_a_healthy_deployment_has_no_problem(live_teams):
    assert diagnose() == []


def _sql(statement: str, **params) -> None:
    from sqlalchemy import text

    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(text(statement), params)


@pytest.mark.db_test
@pytest.mark.parametrize(("breakage", "check", "team", "message"), [
    ("triggerer_gone", "live_components", "team_b",
     "No live triggerer of team 'team_b' (no running TriggererJob of the team with a recent heartbeat): start "
     "`airflow triggerer --team team_b`, or see why it stopped in its log."),
    ("dag_processor_silent", "live_components", "team_a", "No live dag-processor of team 'team_a'"),
    ("folder_moved", "team_folders", "team_b", "of team 'team_b' does not exist: its dag-processor will not start"),
    ("typo_in_team_setting", "team_settings", None,
     "Settings of no configured team (team_a, team_b) are ignored: AIRFLOW__TEAM_Z___CORE__DEFAULT_POOL."),
    ("dag_of_removed_team", "dag_teams", None,
     "1 active DAG(s) of team 'team_z', which is not configured (team_z:etl): add the team to [core] executor"),
    ("dag_from_single_team_mode", "dag_teams", None,
     "1 active DAG(s) without a team, left from single-team mode (legacy_etl): no team's component runs them."),
    ("pool_of_removed_team", "team_pools", None, "Pool 'team_z:big' names team 'team_z', which is not configured"),
    ("plugins_of_removed_team", "plugin_folders", None,
     "holds the plugins of team 'team_z', which is not configured: every component (scheduler, webserver, "
     "internal APIs, every team) loads them as shared plugins."),
    ("executor_class_gone", "executors_import", "team_b",
     "team 'team_b', executor 'b': class 'my_company.executors.Gone' cannot be imported (ModuleNotFoundError"),
    ("fork_tables_behind", "fork_tables", None, "The multi-team fork's tables are not migrated"),
    ("reference_to_a_renamed_dag", "dag_references", "team_a",
     "Task 'trigger' of team_a:mark triggers 'team_a:renamed', which is no active DAG (renamed, moved to a team, "
     "or deleted): fix the id in the DAG file."),
    ("executor_failing", "executor_failures", "team_b",
     "Executor 'b' of team 'team_b' failed in heartbeat (2 time(s) in the last 10 minutes, not working since: "
     "ConnectionError: broker down); its tasks wait queued."),
])
def test_each_check_says_what_breaks_it_in_one_line(live_teams, multi_team, monkeypatch, tmp_path, breakage, check,
                                                     team, message):
    from airflow.teams import reload_configuration, tables

    if breakage == "triggerer_gone":
        _sql("UPDATE job SET state = 'success' WHERE id = :i", i=live_teams[("team_b", "TriggererJob")])
    elif breakage == "dag_processor_silent":
        _sql("UPDATE job SET latest_heartbeat = :t WHERE id = :i", t=datetime(2000, 1, 1, tzinfo=timezone.utc),
             i=live_teams[("team_a", "DagProcessorJob")])
    elif breakage == "folder_moved":
        monkeypatch.setenv("AIRFLOW__TEAM_B___CORE__DAGS_FOLDER", str(tmp_path / "moved"))
        reload_configuration()
    elif breakage == "typo_in_team_setting":
        monkeypatch.setenv("AIRFLOW__TEAM_Z___CORE__DEFAULT_POOL", "team_z:default")
    elif breakage in ("dag_of_removed_team", "dag_from_single_team_mode"):
        dag_id = "team_z:etl" if breakage == "dag_of_removed_team" else "legacy_etl"
        from airflow.models.dag import DagModel
        from airflow.utils.session import create_session

        with create_session() as session:
            session.add(DagModel(dag_id=dag_id, is_active=True, is_paused=False))
    elif breakage == "plugins_of_removed_team":  # its (inactive) DAG remains, and its plugins folder
        (tmp_path / "plugins" / "team_z" / "tools").mkdir(parents=True)
        (tmp_path / "plugins" / "team_z" / "tools" / "macros.py").write_text("")
        (tmp_path / "plugins" / "team_a").mkdir()  # a configured team's folder: not reported
        (tmp_path / "plugins" / "team_a" / "macros.py").write_text("")
        monkeypatch.setattr("airflow.settings.PLUGINS_FOLDER", str(tmp_path / "plugins"))
        _sql("INSERT INTO dag (dag_id, is_paused, is_subdag, is_active, has_task_concurrency_limits, max_active_tasks, "
             "max_consecutive_failed_dag_runs) VALUES ('team_z:etl', false, false, false, false, 16, 0)")
    elif breakage == "pool_of_removed_team":
        _sql("INSERT INTO slot_pool (pool, slots, description, include_deferred) VALUES ('team_z:big', 1, '', false)")
    elif breakage == "executor_class_gone":
        multi_team({**TEAMS, "team_b": [{"name": "b", "class": "my_company.executors.Gone"}]})
    elif breakage == "fork_tables_behind":
        tables.downgrade()
    elif breakage == "reference_to_a_renamed_dag":
        _write_dag_that_triggers("team_a:mark", "team_a:renamed")
    elif breakage == "executor_failing":
        executor = FakeExecutor("team_b", "b")
        _fail(executor, "heartbeat")
        _fail(executor, "heartbeat", after_a_minute=True)
    try:
        problems = diagnose()
    finally:
        _sql("DELETE FROM serialized_dag WHERE dag_id = 'team_a:mark'")
        _sql("DELETE FROM log WHERE event LIKE 'teams.executor_%'")
        _sql("DELETE FROM dag WHERE dag_id IN ('team_z:etl', 'legacy_etl', 'team_a:mark')")
        _sql("DELETE FROM slot_pool WHERE pool = 'team_z:big'")
        if breakage == "fork_tables_behind":
            from airflow.utils.session import create_session

            with create_session() as session:
                tables.migrate(session)

    assert [(c, t) for c, t, _ in problems] == [(check, team)], problems
    assert message in problems[0][2]
    assert "\n" not in problems[0][2]


class FakeExecutor:
    """What the scheduler's routing knows of a team executor: its team and name."""

    def __init__(self, team: str, alias: str):
        from airflow.executors.executor_loader import ExecutorName

        self.team_name = team
        self.name = ExecutorName(alias=alias, module_path="my_company.Executor")


def _fail(executor, stage: str, after_a_minute: bool = False) -> None:
    """A failure of ``executor`` in ``stage`` as the scheduler's routing records it (a row a minute at most)."""
    from airflow.teams import routing

    if after_a_minute:
        routing.health(executor).last_traceback.clear()
    try:
        raise ConnectionError("broker down\nmore lines")
    except ConnectionError:
        routing.log_failure_or_raise(executor, stage)


def _write_dag_that_triggers(dag_id: str, target: str) -> None:
    import pendulum

    from airflow.models.dag import DAG, DagModel
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.operators.trigger_dagrun import TriggerDagRunOperator
    from airflow.utils.session import create_session

    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
        TriggerDagRunOperator(task_id="trigger", trigger_dag_id=target)
    with create_session() as session:
        session.add(DagModel(dag_id=dag_id, is_active=True, is_paused=False))
        session.flush()
        SerializedDagModel.write_dag(dag, session=session)


@pytest.mark.db_test
def test_an_executor_that_works_again_is_no_longer_reported(live_teams):
    from airflow.teams import routing

    executor = FakeExecutor("team_a", "a")
    try:
        _fail(executor, "heartbeat")
        assert [(c, t) for c, t, _ in diagnose()] == [("executor_failures", "team_a")]
        routing._recovered(executor, "heartbeat")
        assert diagnose() == []
    finally:
        _sql("DELETE FROM log WHERE event LIKE 'teams.executor_%'")


@pytest.mark.db_test
def test_references_to_active_dags_and_templated_ids_are_not_reported(live_teams):
    try:
        _write_dag_that_triggers("team_a:mark", "team_a:mark")  # itself: an active DAG
        _write_dag_that_triggers("team_a:templated", "{{ params.target }}")
        _write_dag_that_triggers("team_a:old", "team_a:gone")  # an inactive DAG's references do not matter
        _sql("UPDATE dag SET is_active = false WHERE dag_id = 'team_a:old'")
        assert diagnose() == []
    finally:
        _sql("DELETE FROM serialized_dag WHERE dag_id IN ('team_a:mark', 'team_a:templated', 'team_a:old')")
        _sql("DELETE FROM dag WHERE dag_id IN ('team_a:mark', 'team_a:templated', 'team_a:old')")
