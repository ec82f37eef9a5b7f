"""Loading and looking up executors per team (patch teams-executors)."""

from __future__ import annotations

import pendulum
import pytest

from airflow.exceptions import AirflowConfigException, UnknownExecutorException
from airflow.executors.base_executor import ExecutorConf
from airflow.executors.executor_loader import ExecutorLoader
from airflow.executors.local_executor import LocalExecutor
from airflow.models.dag import DAG
from airflow.operators.empty import EmptyOperator
from airflow.teams import parsing, process_team, reload_configuration

LOCAL = "airflow.executors.local_executor.LocalExecutor"
TEAMS = {
    "team_a": [
        {"name": "a_small", "class": "LocalExecutor", "config": {"core": {"parallelism": "2"}}},
        {"name": "a_big", "class": LOCAL, "config": {"core": {"parallelism": "7"}}},
    ],
    "team_b": [{"name": "b_local", "class": "LocalExecutor"}],
}


@pytest.fixture
def teams(multi_team, monkeypatch):
    monkeypatch.setenv("AIRFLOW__TEAM_B___CORE__PARALLELISM", "5")
    multi_team(TEAMS)


def test_every_teams_executors_are_loaded_with_their_own_configuration(teams):
    names = ExecutorLoader.get_executor_names()
    executors = ExecutorLoader.init_executors()

    assert [(n.alias, n.team_name, n.module_path) for n in names] == [
        ("a_small", "team_a", LOCAL), ("a_big", "team_a", LOCAL), ("b_local", "team_b", LOCAL),
    ]
    assert [type(e) for e in executors] == [LocalExecutor] * 3
    assert [(e.team_name, e.name.alias, e.parallelism) for e in executors] == [
        ("team_a", "a_small", 2), ("team_a", "a_big", 7), ("team_b", "b_local", 5),
    ]
    assert isinstance(executors[0].conf, ExecutorConf)
    assert executors[0].conf.executor_name == "a_small"
    assert len(set(names)) == 3  # two executors of one class do not collide in the loader's caches


def test_the_default_executor_is_the_teams_first(teams, monkeypatch):
    assert ExecutorLoader.load_executor(None, team_name="team_b").name.alias == "b_local"
    assert ExecutorLoader.load_executor(None, team_name="team_a").name.alias == "a_small"
    process_team.serve("team_b")  # as `airflow tasks run` of a team_b DAG

    assert ExecutorLoader.get_default_executor().name.alias == "b_local"
    assert ExecutorLoader.lookup_executor_name_by_str("LocalExecutor").alias == "b_local"


def test_a_process_serving_no_team_names_the_team_or_gets_the_schedulers_default(teams):
    # the scheduler (serving no team) asks for upstream's default executor only to send callbacks
    assert ExecutorLoader.get_default_executor_name().alias == "a_small"
    with pytest.raises(UnknownExecutorException, match="'b_local' of no team: .* this process serves none"):
        ExecutorLoader.lookup_executor_name_by_str("b_local")  # no guess among the teams' executors
    assert ExecutorLoader.lookup_executor_name_by_str("b_local", team_name="team_b").team_name == "team_b"


def test_the_webserver_reads_a_tasks_executor_logs_through_its_teams_executor(teams):
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.log.file_task_handler import FileTaskHandler

    handler = FileTaskHandler(base_log_folder="/tmp")
    of_team_b = TaskInstance(EmptyOperator(task_id="t", dag=DAG("team_b:d", schedule=None)))
    assert of_team_b.executor is None  # the team's default: not the first team's, as upstream's default is
    assert handler._get_executor_get_task_log(of_team_b).__self__.team_name == "team_b"
    of_team_a = TaskInstance(EmptyOperator(task_id="t", executor="a_big", dag=DAG("team_a:d", schedule=None)))
    assert handler._get_executor_get_task_log(of_team_a).__self__.name.alias == "a_big"


@pytest.mark.db_test
def test_a_backfill_serves_its_dags_team(teams):
    from airflow.cli import cli_parser
    from airflow.cli.commands import dag_command

    args = cli_parser.get_parser().parse_args(
        ["dags", "backfill", "team_b:d", "--start-date", "2024-01-01", "--dry-run"]
    )
    dag = DAG("team_b:d", schedule=None, start_date=pendulum.datetime(2024, 1, 1))
    EmptyOperator(task_id="t", dag=dag)
    dag_command.dag_backfill(args, dag=dag)

    assert process_team.serving_team() == "team_b"  # so the backfill's executor is team_b's default
    assert ExecutorLoader.get_default_executor_name().alias == "b_local"


def test_a_process_serves_one_team_and_cannot_be_switched_to_another(monkeypatch):
    process_team.stop_serving()
    process_team.serve("team_a")
    process_team.serve("team_a")  # the same team again is fine

    with pytest.raises(process_team.ForeignTeamError, match="serves team 'team_a'; it cannot serve team 'team_b'"):
        process_team.serve("team_b")
    assert process_team.serving_team() == "team_a"


class OnlyTeamName(LocalExecutor):
    """An executor written for upstream 3.2: its constructor takes team_name, not executor_conf."""

    def __init__(self, parallelism: int = 32, team_name: str | None = None):
        super().__init__(parallelism=parallelism, team_name=team_name)


def test_team_and_configuration_are_constructor_arguments(teams, monkeypatch):
    received = {}
    original = LocalExecutor.__init__

    def recording_init(self, *args, **kwargs):
        received[kwargs["team_name"]] = kwargs["executor_conf"]
        original(self, *args, **kwargs)

    monkeypatch.setattr(LocalExecutor, "__init__", recording_init)
    ExecutorLoader.init_executors()

    assert {team: conf.executor_name for team, conf in received.items()} == {"team_a": "a_big", "team_b": "b_local"}


def test_an_executor_without_executor_conf_argument_gets_its_teams_configuration(multi_team, monkeypatch):
    monkeypatch.setattr(OnlyTeamName, "supports_multi_team", True)
    monkeypatch.setenv("AIRFLOW__TEAM_A___CORE__PARALLELISM", "3")
    multi_team({"team_a": [{"name": "a", "class": f"{__name__}.OnlyTeamName"}]})

    (executor,) = ExecutorLoader.init_executors()
    assert (executor.team_name, executor.parallelism) == ("team_a", 3)


def test_an_executor_config_for_a_class_without_executor_conf_argument_is_refused(multi_team, monkeypatch):
    monkeypatch.setattr(OnlyTeamName, "supports_multi_team", True)
    multi_team({"team_a": [{"name": "a", "class": f"{__name__}.OnlyTeamName", "config": {"core": {"parallelism": 3}}}]})

    with pytest.raises(AirflowConfigException, match="executor 'a' of team 'team_a' has a 'config', but OnlyTeamName takes no executor_conf"):
        ExecutorLoader.init_executors()


def test_lookup_is_scoped_to_the_team(teams):
    assert ExecutorLoader.lookup_executor_name_by_str("a_big", team_name="team_a").alias == "a_big"
    assert ExecutorLoader.lookup_executor_name_by_str("LocalExecutor", team_name="team_b").alias == "b_local"

    with pytest.raises(UnknownExecutorException, match="ambiguous in team 'team_a'.*a_small, a_big"):
        ExecutorLoader.lookup_executor_name_by_str("LocalExecutor", team_name="team_a")
    with pytest.raises(UnknownExecutorException, match="'b_local' belongs to team 'team_b', not to team 'team_a'"):
        ExecutorLoader.load_executor("b_local", team_name="team_a")
    with pytest.raises(UnknownExecutorException, match="Unknown executor 'nope' for team 'team_a'"):
        ExecutorLoader.load_executor("nope", team_name="team_a")


def test_a_task_naming_another_teams_executor_fails_dag_validation(teams):
    with parsing.parsing_for("team_a"):
        dag = DAG("etl", schedule=None, start_date=pendulum.datetime(2024, 1, 1))
        EmptyOperator(task_id="mine", executor="a_big", dag=dag)
        EmptyOperator(task_id="theirs", executor="b_local", dag=dag)

    with pytest.raises(UnknownExecutorException, match="Task theirs: Executor 'b_local' belongs to team 'team_b'"):
        dag.validate()


def test_executors_without_multi_team_support_are_refused(multi_team):
    multi_team({"team_a": [{"name": "a_seq", "class": "SequentialExecutor"}]})

    with pytest.raises(AirflowConfigException, match="'a_seq' of team 'team_a' is a SequentialExecutor, which does not support"):
        ExecutorLoader.init_executors()


def test_combined_executors_must_be_split_into_two_entries(multi_team):
    multi_team({"team_a": [{"name": "a_ck", "class": "CeleryKubernetesExecutor"}]})

    with pytest.raises(AirflowConfigException, match="CeleryKubernetesExecutor cannot be used in multi-team mode"):
        ExecutorLoader.get_executor_names()


def test_executor_metrics_of_two_executors_of_one_class_do_not_collide(teams, monkeypatch):
    from airflow.executors import base_executor

    gauges = []
    monkeypatch.setattr(base_executor.Stats, "gauge", lambda name, value, **kw: gauges.append(name), raising=False)
    for executor in ExecutorLoader.init_executors():
        executor._emit_metrics(open_slots=1, num_running_tasks=0, num_queued_tasks=0)

    assert {"executor.open_slots.a_small", "executor.open_slots.a_big", "executor.open_slots.b_local"} <= set(gauges)


class TestSingleTeamUnchanged:
    @pytest.fixture(autouse=True)
    def single_team(self, multi_team, monkeypatch):
        multi_team({})  # clears the loader caches
        monkeypatch.setenv("AIRFLOW__CORE__MULTI_TEAM", "False")
        monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
        reload_configuration()

    def test_names_and_executors_are_upstreams(self):
        (name,) = ExecutorLoader.get_executor_names()
        executor = ExecutorLoader.get_default_executor()

        assert (name.alias, name.module_path, name.team_name, repr(name)) == ("LocalExecutor", LOCAL, None, "LocalExecutor")
        assert executor.team_name is None
        assert repr(executor) == f"LocalExecutor(parallelism={executor.parallelism})"

    def test_a_multi_team_dict_is_refused_naming_the_option(self, monkeypatch):
        monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", '{"team_a": []}')
        reload_configuration()

        with pytest.raises(AirflowConfigException, match=r"multi_team is False"):
            ExecutorLoader.get_executor_names()
