"""One internal API per team, on real processes: team_a's internal API refuses every call that names
team_b's objects, whatever the token or body, and still serves team_a (patches teams-internal-api,
teams-internal-api-policies). The calls are hand-made HTTP requests and PyJWT tokens, as an attacker
holding team_a's key would send them; the tasks of both teams run through their own internal APIs."""

from __future__ import annotations

import inspect
import json
import re
import time

import jwt
import pytest
import requests

from airflow.models.taskinstancekey import TaskInstanceKey
from tests.test_utils.deployment import Deployment, local_executors

pytestmark = pytest.mark.e2e

VICTIM = """
    import pendulum
    from airflow import DAG
    from airflow.operators.python import PythonOperator
    from airflow.sensors.date_time import DateTimeSensorAsync

    with DAG("victim", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        PythonOperator(task_id="push", python_callable=lambda: "secret of {team}")
        in_an_hour = "{{{{ (macros.datetime.utcnow() + macros.timedelta(hours=1)).isoformat() }}}}"
        DateTimeSensorAsync(task_id="wait", target_time=in_an_hour)
"""
# A team_a task that tries what team code could do while it held the database credentials.
ATTACKER = """
    import os
    import subprocess

    import pendulum
    from airflow import DAG
    from airflow.operators.python import PythonOperator

    def attempt(name, action):
        try:
            print(f"ATTEMPT {{name}}: allowed {{action()!r}}")
        except BaseException as err:
            print(f"ATTEMPT {{name}}: refused {{type(err).__name__}}: {{str(err)[:300]}}")

    def orm_rows(model):
        from airflow.utils.session import create_session

        with create_session() as session:
            return session.query(model).all()

    def team_b_run():
        from airflow.models.serialized_dag import SerializedDagModel

        return SerializedDagModel.get_dag("team_b:victim").create_dagrun(run_id="forged", state="queued")

    def forged_event():
        from airflow.datasets import Dataset
        from airflow.datasets.manager import DatasetManager

        return DatasetManager().register_dataset_change(
            task_instance=None, dataset=Dataset("s3://shared/x"), source_teams=["team_b"])

    def switch_team():
        from airflow.teams import context

        context.serve("team_b")

    def team_b_settings():
        found = [key for key in os.environ if key.startswith("AIRFLOW__TEAM_B___")]
        if not found:
            raise LookupError("no team_b variable in this process")
        return found

    def team_b_task():
        result = subprocess.run(["airflow", "tasks", "test", "team_b:victim", "push", "--subdir", "{folder}"],
                                capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise RuntimeError(result.stderr.strip().splitlines()[-1])
        return result.stdout[-200:]

    def attack(ti):
        from airflow.models import Connection, Variable

        attempt("own xcom", lambda: ti.xcom_pull(task_ids="push"))
        attempt("xcom of team_b", lambda: ti.xcom_pull(dag_id="team_b:victim", task_ids="push"))
        attempt("connection rows", lambda: orm_rows(Connection))
        attempt("variable rows", lambda: orm_rows(Variable))
        attempt("team_b run", team_b_run)
        attempt("forged dataset event", forged_event)
        attempt("switch team", switch_team)
        attempt("team_b settings", team_b_settings)
        attempt("team_b task", team_b_task)

    def cross(ti):  # does not catch the refusal: the task fails with it
        ti.xcom_pull(dag_id="team_b:victim", task_ids="push")

    with DAG("attacker", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        PythonOperator(task_id="push", python_callable=lambda: "mine") >> PythonOperator(
            task_id="attack", python_callable=attack)
        PythonOperator(task_id="cross", python_callable=cross)
"""
RPC = "/internal_api/v1/rpcapi"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres_server, statsd):
    root = tmp_path_factory.mktemp("team-internal-apis")
    database = postgres_server.create_database(f"e2e_team_apis_{root.name.replace('-', '_')}")
    deployment = Deployment(root, database, local_executors("team_a", "team_b"), isolated=True,
                            metrics__statsd_on="True", metrics__statsd_influxdb_enabled="True",
                            metrics__statsd_host="127.0.0.1", metrics__statsd_port=str(statsd.port))
    for team in ("team_a", "team_b"):
        deployment.write_dag(team, "victim.py", VICTIM.format(team=team))
    deployment.write_dag("team_a", "attacker.py", ATTACKER.format(folder=deployment.team_folder("team_a")))
    deployment.direct_access_expected.add("team_a:attacker")  # its ORM attempts fail, as they must
    deployment.migrate()
    try:
        deployment.start_scheduler_and_processors(("team_a", "team_b"), active_dags=3)
        for dag_id in ("team_a:victim", "team_b:victim", "team_a:attacker"):
            deployment.airflow("dags", "trigger", dag_id)
        for team in ("team_a", "team_b"):
            deployment.wait_for(lambda team=team: deployment.scalar(
                "SELECT count(*) FROM task_instance WHERE dag_id = :d AND ((task_id = 'push' AND state = 'success') "
                "OR (task_id = 'wait' AND state = 'deferred'))", d=f"{team}:victim") == 2, f"{team}'s tasks")
        assert deployment.wait_for_dag_run("team_a:attacker") == "failed"  # its task "cross" fails
        deployment.stop("scheduler")  # nothing changes team_b's rows from now on but the calls under test
        deployment.start("triggerer-team_a", "triggerer", "--team", "team_a")
        yield deployment
    finally:
        deployment.stop_all()


def url(deployment: Deployment, team: str) -> str:
    return deployment.env[f"AIRFLOW__{team.upper()}___CORE__INTERNAL_API_URL"] + RPC


def key(deployment: Deployment, team: str) -> str:
    return deployment.env[f"AIRFLOW__{team.upper()}___CORE__INTERNAL_API_SECRET_KEY"]


def token(secret: str, **claims) -> str:
    now = int(time.time())
    return jwt.encode({"aud": "api", "iat": now, "nbf": now, "exp": now + 30} | claims, secret, algorithm="HS512")


def post(target: str, body, authorization: str) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(target, data=data, timeout=60, headers={
        "Content-Type": "application/json", "Accept": "application/json", "Authorization": authorization})


def call(deployment: Deployment, method: str, params, team: str = "team_a", **claims) -> requests.Response:
    """Call ``method`` through ``team``'s internal API with a token of ``team`` (or ``claims``)."""
    signed = token(key(deployment, team), **({"method": method, "team": team} | claims))
    return post(url(deployment, team), {"jsonrpc": "2.0", "method": method, "params": params}, signed)


class TeamObjects:
    """The rows of one team as the internal API's parameters name them (serialized as Airflow's client does)."""

    def __init__(self, deployment: Deployment, team: str):
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from airflow.jobs.job import Job
        from airflow.models.taskinstance import TaskInstance
        from airflow.serialization.pydantic.dag_run import DagRunPydantic
        from airflow.serialization.pydantic.job import JobPydantic
        from airflow.serialization.pydantic.taskinstance import TaskInstancePydantic

        self.team = team
        self.dag_id = f"{team}:victim"
        self.folder = str(deployment.team_folder(team))
        with Session(deployment._engine) as session:
            push = session.scalar(select(TaskInstance).where(TaskInstance.dag_id == self.dag_id,
                                                             TaskInstance.task_id == "push"))
            self.ti = TaskInstancePydantic.model_validate(push)
            self.dag_run = DagRunPydantic.model_validate(push.dag_run)
            self.trigger_id = session.scalar(select(TaskInstance.trigger_id).where(
                TaskInstance.dag_id == self.dag_id, TaskInstance.task_id == "wait"))
            # the team's dag-processor job (recorded as the team's by its internal API)
            self.job = JobPydantic.model_validate(session.get(Job, deployment_job_id(deployment, team)))

    def value(self, name: str):
        """The value of parameter ``name`` that names this team's object, or None if it names none."""
        values = {
            "dag_id": self.dag_id, "external_dag_id": self.dag_id, "dag_ids": [self.dag_id],
            "ti": self.ti, "task_instance": self.ti, "ti_key": TaskInstanceKey(self.dag_id, "push", self.ti.run_id, self.ti.try_number, -1), "context": {"ti": self.ti},
            "dag_run": self.dag_run, "dag_run_id": self.dag_run.id,
            "dag_directory": self.folder, "dag_folder": self.folder, "processor_subdir": self.folder,
            "alive_dag_filelocs": [f"{self.folder}/victim.py"], "file_paths": [f"{self.folder}/victim.py"],
            "file_last_changed": {f"{self.folder}/victim.py": None}, "last_parsed": {f"{self.folder}/victim.py": None},
            "import_errors": {f"{self.folder}/victim.py": "x"},
            "trigger_id": self.trigger_id, "ids": [self.trigger_id],
            "job": self.job, "job_id": self.job.id, "triggerer_id": self.job.id,
        }
        return values.get(name)


def deployment_job_id(deployment: Deployment, team: str) -> int:
    return deployment.scalar("SELECT j.id FROM job j JOIN teams_job t ON t.job_id = j.id "
                             "WHERE t.team = :t AND j.job_type = 'DagProcessorJob' ORDER BY j.id DESC LIMIT 1", t=team)


def serialize(params: dict):
    from airflow.serialization.serialized_objects import BaseSerialization

    return BaseSerialization.serialize(params, use_pydantic_models=True)


# Methods whose only team parameters are DAG objects (dag, task, dags), which the test process cannot build
# outside multi-team mode; tests/api_internal/test_rpc_policies.py checks those parameters.
NEEDS_DAG_OBJECTS = {"airflow.cli.commands.task_command._get_ti_db_access"}


def attacks(objects: TeamObjects) -> dict[str, dict]:
    """For each method that can name team data: a call naming ``objects``' team's (refused methods: any call)."""
    from airflow.api_internal.endpoints.rpc_api_endpoint import initialize_method_map
    from airflow.teams.rpc_policies import PARAMETER_CHECKS, POLICIES

    found = {}
    for method, handler in sorted(initialize_method_map().items()):
        params = {name: objects.value(name) for name in inspect.signature(handler).parameters
                  if name in PARAMETER_CHECKS and name not in POLICIES[method].gated
                  and objects.value(name) is not None}
        if params or POLICIES[method].refused:
            found[method] = params
    return found


def team_b_state(deployment: Deployment) -> list[tuple]:
    """What an accepted cross-team call would change: team_b's task instances, runs, XComs, triggers, jobs."""
    return [
        *deployment.rows("SELECT task_id, state, trigger_id, try_number, end_date FROM task_instance "
                         "WHERE dag_id = 'team_b:victim' ORDER BY 1"),
        *deployment.rows("SELECT run_id, state, end_date FROM dag_run WHERE dag_id = 'team_b:victim'"),
        *deployment.rows("SELECT task_id, key, value FROM xcom WHERE dag_id = 'team_b:victim'"),
        *deployment.rows("SELECT t.id, t.kwargs, t.triggerer_id FROM trigger t JOIN task_instance ti "
                         "ON ti.trigger_id = t.id WHERE ti.dag_id = 'team_b:victim'"),
        *deployment.rows("SELECT j.id, j.state, j.end_date FROM job j JOIN teams_job t ON t.job_id = j.id "
                         "WHERE t.team = 'team_b' AND j.state <> 'running'"),
        *deployment.rows("SELECT count(*) FROM log WHERE dag_id = 'team_b:victim'"),
    ]


def test_every_method_naming_team_b_is_refused_through_team_a_and_nothing_changes(deployment, statsd):
    team_b = TeamObjects(deployment, "team_b")
    before = team_b_state(deployment)
    calls = attacks(team_b)
    refused = {method: call(deployment, method, serialize(params)) for method, params in calls.items()}

    assert len(refused) >= 60 and not NEEDS_DAG_OBJECTS & set(refused)
    assert {method: response.status_code for method, response in refused.items()} == dict.fromkeys(refused, 403)
    assert all(response.json()["detail"].startswith("Refused: ") for response in refused.values())
    reasons = {method: response.json()["detail"] for method, response in refused.items()}
    assert reasons["airflow.models.xcom.BaseXCom.get_one"] == (
        "Refused: DAG 'team_b:victim' is not a DAG of team 'team_a'.")
    assert reasons["airflow.jobs.job.Job._kill"] == (
        f"Refused: job {team_b.job.id} is not a job of team 'team_a' (team 'team_b').")
    assert reasons["airflow.models.trigger.Trigger.submit_event"] == (
        f"Refused: trigger {team_b.trigger_id} runs a task of DAG 'team_b:victim', not of team 'team_a'.")
    assert reasons["airflow.dag_processing.manager.DagFileProcessorManager.deactivate_stale_dags"].startswith(
        f"Refused: {team_b.folder}/victim.py is not in the DAG folders of team 'team_a'")
    assert team_b_state(deployment) == before
    log = deployment.log_of(deployment.internal_api("team_a"))
    for method in refused:
        assert f"Refused internal API call {method} for team team_a" in log, method
    deployment.wait_for(lambda: {p.split(",method=")[1].split(",")[0] for p in statsd.packets
                                 if p.startswith("airflow.teams.rpc_denied,") and "team=team_a" in p} >= set(refused),
                        "a teams.rpc_denied metric of every refused method")


def test_the_same_calls_on_team_a_s_own_objects_are_served(deployment):
    team_a = TeamObjects(deployment, "team_a")
    reads = {
        "airflow.models.dag.DagModel.get_current": {"dag_id": team_a.dag_id},
        "airflow.models.xcom.BaseXCom.get_one": {"dag_id": team_a.dag_id, "task_id": "push", "run_id": team_a.ti.run_id,
                                                 "key": "return_value"},
        "airflow.models.taskinstance.TaskInstance.get_task_instance": {
            "dag_id": team_a.dag_id, "task_id": "push", "run_id": team_a.ti.run_id, "map_index": -1},
        "airflow.models.dag.DagModel.get_paused_dag_ids": {"dag_ids": [team_a.dag_id]},
        "airflow.models.trigger.Trigger.bulk_fetch": {"ids": [team_a.trigger_id]},
        "airflow.jobs.job.Job._fetch_from_db": {"job": team_a.job},
        "airflow.models.taskinstance._xcom_pull": {"ti": team_a.ti, "task_ids": "push", "key": "return_value"},
    }
    answers = {method: call(deployment, method, serialize(params)) for method, params in reads.items()}

    assert {method: response.status_code for method, response in answers.items()} == dict.fromkeys(reads, 200)
    assert "secret of team_a" in answers["airflow.models.xcom.BaseXCom.get_one"].text
    assert "secret of team_a" in answers["airflow.models.taskinstance._xcom_pull"].text
    assert str(team_a.trigger_id) in answers["airflow.models.trigger.Trigger.bulk_fetch"].text


def test_a_team_a_task_reaches_nothing_of_team_b(deployment):
    log = deployment.task_logs("team_a:attacker", "attack")
    outcomes = dict(re.findall(r"ATTEMPT ([^:]+): (allowed|refused)", log))

    assert outcomes == {"own xcom": "allowed"} | dict.fromkeys(
        ("xcom of team_b", "connection rows", "variable rows", "team_b run", "forged dataset event", "switch team",
         "team_b settings", "team_b task"), "refused"), log[-5000:]
    assert "ATTEMPT own xcom: allowed 'mine'" in log
    assert "Refused: DAG 'team_b:victim' is not a DAG of team 'team_a'" in log
    assert "Refused: parameter 'task_instance' is required for a team" in log  # the forged dataset event
    assert "ForeignTeamError: This process serves team 'team_a'; it cannot serve team 'team_b' as well." in log
    assert deployment.scalar("SELECT count(*) FROM dag_run WHERE run_id = 'forged'") == 0


def test_a_task_whose_call_is_refused_fails_with_the_reason(deployment):
    states = dict(deployment.rows("SELECT task_id, state FROM task_instance WHERE dag_id = 'team_a:attacker'"))
    log = deployment.task_logs("team_a:attacker", "cross")

    assert states == {"push": "success", "attack": "success", "cross": "failed"}
    assert re.search(r"AirflowHttpException: Got 403:FORBIDDEN when sending the internal api request: .*"
                     r"Refused: DAG 'team_b:victim' is not a DAG of team 'team_a'", log)
    assert "Marking task as FAILED. dag_id=team_a:attacker, task_id=cross" in log


def test_team_a_s_triggerer_takes_team_a_s_trigger_and_never_team_b_s(deployment):
    def trigger_of(team: str):
        return deployment.scalar("SELECT t.triggerer_id FROM trigger t JOIN task_instance ti ON ti.trigger_id = t.id "
                                 "WHERE ti.dag_id = :d", d=f"{team}:victim")

    triggerer = deployment.wait_for(lambda: trigger_of("team_a"), "team_a's triggerer to take team_a's trigger")
    assert deployment.scalar("SELECT team FROM teams_job WHERE job_id = :j", j=triggerer) == "team_a"
    assert trigger_of("team_b") is None  # it was assigned team_a's in the same query that left team_b's


# What the real caller also sends, and the policy checks (not team data).
OWN_CALL_OPTIONS = {
    "airflow.dag_processing.manager.DagFileProcessorManager._fetch_callbacks": {"standalone_dag_processor": True},
}


def test_every_method_naming_team_a_s_own_objects_passes_the_team_checks(deployment, monkeypatch):
    """The same calls as the attack, on team_a's own rows, checked (not run: they would change team_a's
    state) by team_a's policies, on the deployment's database, as the server deserializes them."""
    from sqlalchemy.orm import Session

    from airflow.api_internal.endpoints.rpc_api_endpoint import initialize_method_map
    from airflow.serialization.serialized_objects import BaseSerialization
    from airflow.teams import reload_configuration, rpc_policies

    for key in ("AIRFLOW__CORE__MULTI_TEAM", "AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CORE__DAGS_FOLDER"):
        monkeypatch.setenv(key, deployment.env[key])
    reload_configuration()
    try:
        calls = attacks(TeamObjects(deployment, "team_a"))
        refused = {}
        with Session(deployment._engine) as session:
            for method, params in calls.items():
                if rpc_policies.POLICIES[method].refused:
                    continue
                params |= OWN_CALL_OPTIONS.get(method, {})
                as_received = BaseSerialization.deserialize(serialize(params), use_pydantic_models=True)
                try:
                    rpc_policies._check(method, initialize_method_map()[method], as_received, "team_a", session)
                except rpc_policies.Refused as err:
                    refused[method] = str(err)
    finally:
        monkeypatch.undo()
        reload_configuration()

    assert len(calls) >= 60
    assert refused == {}


def test_team_a_can_neither_pose_as_a_scheduler_nor_point_its_task_at_team_b_s_trigger(deployment):
    team_a, team_b = TeamObjects(deployment, "team_a"), TeamObjects(deployment, "team_b")
    scheduler = team_a.job.model_copy(update={"id": None, "job_type": "SchedulerJob"})
    hijacking = team_a.ti.model_copy(update={"trigger_id": team_b.trigger_id, "state": "deferred"})
    before = team_b_state(deployment)

    posed = call(deployment, "airflow.jobs.job.Job._add_to_db", serialize({"job": scheduler}))
    pointed = call(deployment, "airflow.models.taskinstance.TaskInstance.save_to_db", serialize({"ti": hijacking}))

    assert (posed.status_code, posed.json()["detail"]) == (
        403, "Refused: a team's components run no job of type 'SchedulerJob'.")
    assert (pointed.status_code, pointed.json()["detail"]) == (
        403, f"Refused: trigger {team_b.trigger_id} runs a task of DAG 'team_b:victim', not of team 'team_a'.")
    assert deployment.scalar("SELECT count(*) FROM job WHERE job_type = 'SchedulerJob' AND id IN "
                             "(SELECT job_id FROM teams_job)") == 0
    assert team_b_state(deployment) == before


def test_a_serialized_class_that_is_no_exception_is_not_built(deployment, tmp_path):
    ran = tmp_path / "ran"
    not_an_exception = {"__type": "airflow_exc_ser", "__var": {"__type": "dict", "__var": {
        "exc_cls_name": "os.system", "args": [f"touch {ran}"], "kwargs": {"__type": "dict", "__var": {}}}}}

    response = call(deployment, GET_CURRENT, {"__type": "dict", "__var": {"dag_id": not_an_exception}})

    assert response.status_code == 400
    assert "os.system is not a BaseException" in deployment.log_of(deployment.internal_api("team_a"))
    assert not ran.exists()


def test_rows_of_all_teams_come_back_as_team_a_s_only(deployment):
    if "dag-processor-team_b" in deployment.processes:  # it would take team_b's request itself
        deployment.stop("dag-processor-team_b")
    team_b_file = f"{deployment.team_folder('team_b')}/victim.py"
    deployment.rows("INSERT INTO dag_priority_parsing_request (id, fileloc) VALUES ('b-request', :f) RETURNING id",
                    f=team_b_file)
    taken = call(deployment, "airflow.dag_processing.manager.DagFileProcessorManager._get_priority_filelocs",
                 serialize({}))
    recent = call(deployment, "airflow.jobs.job.most_recent_job", serialize({"job_type": "DagProcessorJob"}))

    assert taken.status_code == 200 and team_b_file not in taken.text
    assert deployment.scalar("SELECT fileloc FROM dag_priority_parsing_request WHERE id = 'b-request'") == team_b_file
    assert recent.status_code == 200
    assert f'"id": {deployment_job_id(deployment, "team_a")}' in recent.text


@pytest.mark.parametrize(("target", "signer", "claims", "reason"), [
    ("team_b", "team_a", {"team": "team_a"}, "the token is not one signed with the key of team 'team_b'"),
    ("team_b", "team_b", {"team": "team_a"}, "the token is of team 'team_a', this internal API serves team 'team_b'"),
    ("team_a", "team_a", {"team": None}, "the token names no team"),
    ("team_a", "forged", {"team": "team_a"}, "the token is not one signed with the key of team 'team_a'"),
    ("team_a", "team_a", {"team": "team_a", "method": "airflow.jobs.job.Job._kill"},
     "the token was signed for method 'airflow.jobs.job.Job._kill', not for 'airflow.models.dag.DagModel.get_current'"),
    ("team_a", "team_a", {"team": "team_a", "exp": int(time.time()) - 3600}, "the token has expired"),
    ("team_a", "team_a", {"team": "team_a", "iat": int(time.time()) + 3600, "nbf": int(time.time()) + 3600},
     "the token was issued in the future"),
], ids=["other-teams-token", "wrong-team-claim", "no-team", "forged", "other-method", "expired", "future"])
def test_a_token_that_is_not_the_teams_own_for_this_call_is_refused(deployment, target, signer, claims, reason):
    method = "airflow.models.dag.DagModel.get_current"
    secret = key(deployment, signer) if signer != "forged" else "not-the-key"
    payload = {"method": method} | {name: value for name, value in claims.items() if value is not None}
    body = {"jsonrpc": "2.0", "method": method, "params": {"dag_id": f"{target}:victim"}}

    response = post(url(deployment, target), body, token(secret, **payload))

    assert response.status_code == 403
    assert reason in response.json()["detail"]
    assert re.search(rf"Refused internal API call {re.escape(method)} for team {target}: {re.escape(reason)}",
                     deployment.log_of(deployment.internal_api(target)))


GET_CURRENT = "airflow.models.dag.DagModel.get_current"


@pytest.mark.parametrize(("body", "status"), [
    ({"jsonrpc": "2.0", "method": GET_CURRENT, "params": ["team_a:victim"]}, 400),
    ({"jsonrpc": "2.0", "method": GET_CURRENT, "params": None}, 400),
    ({"jsonrpc": "2.0", "method": GET_CURRENT, "params": {"dag_id": "team_a:victim"}}, 400),  # not serialized
    ({"jsonrpc": "2.0", "method": GET_CURRENT, "params": {"__type": "dict", "__var": {"dag_id": 1}}}, 403),
    ({"jsonrpc": "2.0", "method": GET_CURRENT, "params": {"__type": "dict", "__var": ["team_a:victim"]}}, 400),
    ({"jsonrpc": "2.0", "method": GET_CURRENT,
      "params": {"__type": "dict", "__var": {"dag_id": {"__type": "set", "__var": ["team_b:victim"]}}}}, 403),
    ({"jsonrpc": "2.0", "method": "os.system", "params": {"command": "id"}}, 400),
    ({"jsonrpc": "2.0", "method": GET_CURRENT,
      "params": {"__type": "dict", "__var": {"dag_id": "team_a:" + "x" * 5_000_000}}}, 200),
    ({"jsonrpc": "1.0", "method": GET_CURRENT, "params": {}}, 400),
    ({"jsonrpc": "2.0", "method": GET_CURRENT, "params": {"__type": "nope"}}, 400),
], ids=["params-list", "params-null", "params-not-serialized", "dag-id-int", "params-var-list", "dag-id-set",
        "unknown-method", "huge", "jsonrpc-1", "bad-serialization"])
def test_hand_made_bodies_get_a_clear_answer_and_never_a_500(deployment, body, status):
    signed = token(key(deployment, "team_a"), method=body["method"], team="team_a")

    response = post(url(deployment, "team_a"), body, signed)

    assert response.status_code == status, response.text[:500]


def test_team_a_s_own_folder_cannot_clear_import_errors_by_prefix(deployment):
    folder = str(deployment.team_folder("team_a"))  # a string prefix of, e.g., a folder "team_a_eu"
    method = "airflow.dag_processing.processor.DagFileProcessor.update_import_errors"

    response = call(deployment, method, serialize(
        {"file_last_changed": {folder: None}, "import_errors": {}, "processor_subdir": folder}))

    assert (response.status_code, response.json()["detail"]) == (403, (
        f"Refused: {folder} is not a file below the DAG folders of team 'team_a' (import errors are cleared "
        "for every path that starts with it)."))


def test_a_dataset_comes_back_with_team_a_s_consumers_and_producers_only(deployment):
    team_a = TeamObjects(deployment, "team_a")
    dataset_id = deployment.scalar(
        "INSERT INTO dataset (uri, extra, created_at, updated_at, is_orphaned) "
        "VALUES ('s3://shared/lineage', '{}', now(), now(), false) RETURNING id")
    for dag_id in ("team_a:victim", "team_b:victim"):
        deployment.rows("INSERT INTO dag_schedule_dataset_reference (dataset_id, dag_id, created_at, updated_at) "
                        "VALUES (:d, :g, now(), now()) RETURNING dag_id", d=dataset_id, g=dag_id)
        deployment.rows("INSERT INTO task_outlet_dataset_reference (dataset_id, dag_id, task_id, created_at, "
                        "updated_at) VALUES (:d, :g, 'push', now(), now()) RETURNING dag_id", d=dataset_id, g=dag_id)

    event = deployment.scalar(
        "INSERT INTO dataset_event (dataset_id, extra, source_dag_id, timestamp) "
        "VALUES (:d, '{}', 'team_a:victim', now()) RETURNING id", d=dataset_id)
    deployment.rows("INSERT INTO dagrun_dataset_event (dag_run_id, event_id) VALUES (:r, :e) RETURNING event_id",
                    r=team_a.dag_run.id, e=event)

    response = call(deployment, "airflow.models.dag.DAG.fetch_dagrun", serialize(
        {"dag_id": team_a.dag_id, "run_id": team_a.dag_run.run_id}))

    assert response.status_code == 200, response.text[:500]
    assert "s3://shared/lineage" in response.text  # the run's consumed event, with its dataset
    assert response.text.count('"dag_id": "team_a:victim"') >= 2  # the dataset's consumer and producer
    assert "team_b" not in response.text
