"""The policy of every internal API method for a team's internal API, checked in process (patch
teams-internal-api-policies); tests/api_internal/test_team_internal_apis.py attacks real processes."""

from __future__ import annotations

import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest

from airflow.api_internal.endpoints.rpc_api_endpoint import initialize_method_map
from airflow.models.taskinstancekey import TaskInstanceKey
from airflow.teams import rpc_policies
from airflow.teams.rpc_policies import PARAMETER_CHECKS, POLICIES, UNSCOPED_PARAMETERS, Refused
from airflow.utils.context import Context

METHODS = initialize_method_map()


def test_every_method_of_the_method_map_has_a_policy_and_no_policy_names_an_unknown_method():
    assert sorted(set(METHODS) - set(POLICIES)) == []
    assert sorted(set(POLICIES) - set(METHODS)) == []


@pytest.mark.parametrize("method", sorted(name for name in METHODS if not POLICIES[name].refused))
def test_every_parameter_is_checked_or_declared_to_name_no_team_data(method):
    names = set(inspect.signature(METHODS[method]).parameters) - {"session", "cls"}

    assert sorted(names - set(PARAMETER_CHECKS) - UNSCOPED_PARAMETERS) == []
    policy = POLICIES[method]
    assert set(policy.required) | set(policy.gated) <= names


def test_the_policy_table_in_the_docs_is_the_code():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "teams.md").read_text()
    table = docs.split("| method | what the team's internal API checks |\n|---|---|\n", 1)[1].split("\n\n", 1)[0]
    rows = table.splitlines()

    assert rows == [policy_row(method, POLICIES[method]) for method in sorted(POLICIES)]


def policy_row(method: str, policy: rpc_policies.Policy) -> str:
    required = f"; required: {', '.join(policy.required)}" if policy.required else ""
    return f"| `{method.removeprefix('airflow.')}` | {policy.rule}{required} |"


@pytest.fixture
def check(multi_team):
    dags = multi_team({"team_a": [{"name": "a", "class": "LocalExecutor"}],
                       "team_b": [{"name": "b", "class": "LocalExecutor"}]})

    def check(method: str, session=None, **params):
        rpc_policies._check(method, METHODS.get(method, lambda session: None), params, "team_a", session)

    check.dags = dags
    return check


XCOM_GET_ONE = "airflow.models.xcom.BaseXCom.get_one"
XCOM_PULL = "airflow.models.taskinstance._xcom_pull"
HANDLE_FAILURE = "airflow.models.taskinstance._handle_failure"


def ti(dag_id: str, **carried) -> SimpleNamespace:
    return SimpleNamespace(dag_id=dag_id, task_id="t", run_id="r", map_index=-1, **carried)


@pytest.mark.parametrize(("method", "params", "reason"), [
    ("airflow.nope.not_mapped", {}, "the method has no policy for team internal APIs (default deny)"),
    ("airflow.models.variable.Variable._set", {"key": "k", "value": "v"},
     "refused: a team's variables live in its secrets backend"),
    ("airflow.secrets.metastore.MetastoreBackend._fetch_connection", {"conn_id": "c"},
     "refused: a team's connections come from its secrets backend"),
    (XCOM_GET_ONE, {"key": "k", "task_id": "t", "dag_id": "team_b:d", "run_id": "r"},
     "DAG 'team_b:d' is not a DAG of team 'team_a'"),
    (XCOM_GET_ONE, {"key": "k", "task_id": "t", "run_id": "r"},
     "parameter 'dag_id' is required for a team (without it the call spans all teams)"),
    (XCOM_GET_ONE, {"key": "k", "dag_id": 7}, "int is not a DAG id"),
    (XCOM_GET_ONE, {"dag_id": "team_a:d", "sql": "1"}, "unknown parameter(s) ['sql']"),
    (XCOM_PULL, {"ti": ti("team_a:d"), "task_ids": "t", "dag_id": "team_b:d", "key": "k",
                 "include_prior_dates": False, "map_indexes": None, "default": None},
     "DAG 'team_b:d' is not a DAG of team 'team_a'"),
    # an object whose dag_id is team_a's but that carries team_b's DAG run
    (XCOM_PULL, {"ti": ti("team_a:d", dag_run=SimpleNamespace(dag_id="team_b:d"))},
     "DAG 'team_b:d' is not a DAG of team 'team_a'"),
    (XCOM_PULL, {"ti": SimpleNamespace(task_id="t")}, "SimpleNamespace names no DAG"),
    (HANDLE_FAILURE, {"task_instance": ti("team_a:d"), "error": "e",
                      "context": {"ti": ti("team_b:d"), "params": {}}},
     "DAG 'team_b:d' is not a DAG of team 'team_a'"),
    (HANDLE_FAILURE, {"task_instance": ti("team_a:d"), "context": Context({"dag_run": ti("team_b:d")})},
     "DAG 'team_b:d' is not a DAG of team 'team_a'"),
    (HANDLE_FAILURE, {"task_instance": ti("team_a:d"), "context": ["team_a:d"]}, "list is not a task's context"),
    ("airflow.models.xcom.BaseXCom.get_value",
     {"ti_key": TaskInstanceKey("team_b:d", "t", "r", 1, -1), "key": "k"},
     "DAG 'team_b:d' is not a DAG of team 'team_a'"),
    ("airflow.models.dag.DagModel.get_paused_dag_ids", {"dag_ids": ["team_a:d", "team_b:d"]},
     "DAG 'team_b:d' is not a DAG of team 'team_a'"),
    ("airflow.api.common.trigger_dag.trigger_dag", {"dag_id": "team_b:d", "sql": 1}, "unknown parameter(s)"),
    ("airflow.dag_processing.manager.DagFileProcessorManager._fetch_callbacks",
     {"max_callbacks": 5, "standalone_dag_processor": False, "dag_directory": "{dags}/team_a"},
     "a team's dag-processor fetches only the callbacks of its own folder (standalone)"),
    ("airflow.dag_processing.manager.DagFileProcessorManager.deactivate_stale_dags",
     {"last_parsed": {"{dags}/team_b/x.py": None}, "dag_directory": "{dags}/team_a"},
     "{dags}/team_b/x.py is not in the DAG folders of team 'team_a'"),
    ("airflow.models.dagcode.DagCode.remove_deleted_code", {"alive_dag_filelocs": []},
     "parameter 'processor_subdir' is required"),
    ("airflow.models.trigger.Trigger.bulk_fetch", {"ids": ["1"]}, "trigger ids must be integers"),
    ("airflow.jobs.job.Job._kill", {"job_id": "1; drop"}, "str is not a job id"),
    ("airflow.jobs.job.Job._add_to_db", {"job": SimpleNamespace(id=None, dag_id=None, job_type="SchedulerJob")},
     "a team's components run no job of type 'SchedulerJob'"),
], ids=lambda value: value if isinstance(value, str) and value.startswith("airflow.") else None)
def test_a_call_outside_the_team_is_refused_with_its_reason(check, method, params, reason):
    with pytest.raises(Refused) as refused:
        check(method, **in_folders(params, str(check.dags)))

    assert in_folders(reason, str(check.dags)) in str(refused.value)


def in_folders(value, dags: str):
    """``value`` with ``{dags}`` (in strings and dict keys) replaced by the DAGs folder."""
    if isinstance(value, str):
        return value.replace("{dags}", dags)
    if isinstance(value, dict):
        return {in_folders(key, dags): in_folders(item, dags) for key, item in value.items()}
    return value


@pytest.mark.parametrize(("method", "params"), [
    (XCOM_GET_ONE, {"key": "k", "task_id": "t", "dag_id": "team_a:d", "run_id": "r"}),
    (XCOM_PULL, {"ti": ti("team_a:d", dag_run=SimpleNamespace(dag_id="team_a:d")), "dag_id": None}),
    (HANDLE_FAILURE, {"task_instance": ti("team_a:d"), "error": "e", "context": {"ti": ti("team_a:d"), "ds": "x"}}),
    (HANDLE_FAILURE, {"task_instance": ti("team_a:d"), "context": Context({"ti": ti("team_a:d"), "ds": "x"})}),
    (HANDLE_FAILURE, {"task_instance": ti("team_a:d"), "context": None}),
    ("airflow.api.common.trigger_dag.trigger_dag", {"dag_id": "team_b:d"}),  # the direct-triggering gate decides
    ("airflow.datasets.expand_alias_to_datasets", {"alias": "shared"}),
    # its dag_run_id is the run id (text) of the checked DAG, not a DAG run's row id
    ("airflow.models.dagrun.DagRun.fetch_task_instance", {"dag_id": "team_a:d", "dag_run_id": "manual__1",
                                                          "task_id": "t"}),
    ("airflow.models.trigger.Trigger.bulk_fetch", {"ids": [1, 2]}),  # filtered to the team's afterwards
], ids=lambda value: value if isinstance(value, str) else None)
def test_a_call_within_the_team_passes(check, method, params):
    check(method, **params)
