"""Malformed REST API input gets a 400 with a clear detail, never a 500 (patches api-*-400, api-*-requires-*:
each case id is named by the Tests: trailer of the patch that fixes it).
Each case is one that upstream 2.11.2 answers with a 500 and a traceback in the webserver log (found by
a schemathesis pass). On a real webserver and PostgreSQL, outside multi-team mode: these are upstream bugs."""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.e2e

DAG = """
    import pendulum
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator

    with DAG("etl", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        EmptyOperator(task_id="noop")
"""
HUGE = str(2**70)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres_server):
    from tests.test_utils.deployment import Deployment

    root = tmp_path_factory.mktemp("malformed")
    database = postgres_server.create_database(f"e2e_malformed_{root.name.replace('-', '_')}")
    deployment = Deployment(root, database, None, api__auth_backends="airflow.api.auth.backend.basic_auth",
                            webserver__workers="1")
    deployment.write_dag(None, "etl.py", DAG)
    deployment.migrate()
    deployment.airflow("dags", "reserialize")
    deployment.create_user("admin", "Admin")
    deployment.airflow("dags", "trigger", "etl", "--run-id", "run1")
    deployment.start_webserver()
    deployment.wait_for_webserver()
    yield deployment
    deployment.stop_all()


CASES = {
    "patch-dag-empty-body": ("PATCH", "/dags/etl", {}, {"json": {}}),
    "patch-dags-empty-body": ("PATCH", "/dags", {"dag_id_pattern": "etl"}, {"json": {}}),
    "patch-dag-run-empty-body": ("PATCH", "/dags/etl/dagRuns/run1", {}, {"json": {}}),
    "set-dag-run-note-empty-body": ("PATCH", "/dags/etl/dagRuns/run1/setNote", {}, {"json": {}}),
    "task-instances-invalid-state": ("GET", "/dags/etl/dagRuns/run1/taskInstances", {"state": "no_such_state"}, {}),
    "task-instances-batch-invalid-state": ("POST", "/dags/~/dagRuns/~/taskInstances/list", {},
                                           {"json": {"state": ["no_such_state"]}}),
    "huge-offset": ("GET", "/dags", {"offset": HUGE}, {}),
    "nul-in-query": ("GET", "/dags", {"dag_id_pattern": "a\x00b"}, {}),
    "nul-in-repeated-query": ("GET", "/dags", {"tags": ["ok", "a\x00b"]}, {}),
    "nul-in-path": ("GET", "/dags/a%00b", {}, {}),
    "nul-in-body": ("POST", "/dags/etl/dagRuns", {}, {"json": {"dag_run_id": "a\x00b"}}),
    "fields-not-a-field": ("GET", "/dags/etl", {"fields": "0.5"}, {}),
}


@pytest.mark.parametrize(("method", "path", "params", "kwargs"), CASES.values(), ids=CASES.keys())
def test_malformed_input_is_a_400_with_a_detail(deployment, method, path, params, kwargs):
    response = requests.request(method, f"{deployment.url}/api/v1{path}", params=params, auth=("admin", "admin"),
                                timeout=30, **kwargs)

    assert response.status_code == 400, response.text[:1000]
    assert response.json()["detail"], response.text


def test_no_traceback_in_the_webserver_log(deployment):
    for method, path, params, kwargs in CASES.values():
        requests.request(method, f"{deployment.url}/api/v1{path}", params=params, auth=("admin", "admin"),
                         timeout=30, **kwargs)

    assert "Traceback" not in deployment.log_of("webserver")
