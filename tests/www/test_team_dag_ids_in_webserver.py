"""Team-qualified dag ids in a real webserver, REST API, CLI, task logs (local and served) and metrics.

One multi-team deployment runs a DAG of team_a to success with a real scheduler and dag-processor,
while a UDP socket receives its StatsD metrics (InfluxDB-style tags); a real webserver then serves it. The webserver
has its own log folder, so task logs must come from the scheduler's log server over HTTP.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
import requests

from tests.test_utils.deployment import Deployment, local_executors

pytestmark = pytest.mark.e2e

DAG_ID = "team_a:etl"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres_server, statsd):
    root = tmp_path_factory.mktemp("webserver")
    database = postgres_server.create_database(f"e2e_webserver_{root.name.replace('-', '_')}")
    deployment = Deployment(
        root, database, local_executors("team_a", "team_b"),
        core__hostname_callable="airflow.utils.net.get_host_ip_address",
        metrics__statsd_on="True",
        metrics__statsd_influxdb_enabled="True",
        metrics__statsd_host="127.0.0.1",
        metrics__statsd_port=str(statsd.port),
        webserver__workers="1",
        api__auth_backends="airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session",
    )
    deployment.write_dag("team_a", "etl.py", """
        import pendulum
        from airflow import DAG
        from airflow.operators.bash import BashOperator

        with DAG("etl", schedule=None, start_date=pendulum.datetime(2024, 1, 1), tags=["team"]):
            BashOperator(task_id="hello", bash_command="echo hello from the team task")
    """)
    deployment.write_dag("team_b", "etl.py", """
        import pendulum
        from airflow import DAG
        from airflow.operators.empty import EmptyOperator

        with DAG("etl", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
            EmptyOperator(task_id="noop")
    """)
    deployment.migrate()
    deployment.create_user("admin")
    deployment.start("dag-processor-a", "dag-processor", "--team", "team_a")
    deployment.start("dag-processor-b", "dag-processor", "--team", "team_b")
    deployment.start("scheduler", "scheduler")
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM dag WHERE is_active") == 2, "the DAGs")
    deployment.airflow("dags", "trigger", DAG_ID, "--run-id", "manual_1")
    assert deployment.wait_for_dag_run(DAG_ID) == "success"
    deployment.wait_for(lambda: any(p.startswith("airflow.dagrun.duration.success.team_a__etl") for p in statsd.packets),
                        "the run's metrics")
    deployment.metrics = list(statsd.packets)
    deployment.start_webserver(AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(root / "webserver-logs"))
    deployment.wait_for_webserver()
    yield deployment
    deployment.stop_all()


@pytest.fixture(scope="module")
def browser(deployment) -> requests.Session:
    return deployment.login()


def api(deployment, path: str, method: str = "GET", **kwargs) -> requests.Response:
    return requests.request(method, f"{deployment.url}/api/v1{path}", auth=("admin", "admin"), timeout=30, **kwargs)


def test_rest_api_lists_gets_and_triggers_team_dags(deployment):
    listed = api(deployment, "/dags").json()["dags"]
    dag = api(deployment, f"/dags/{DAG_ID}")
    encoded = api(deployment, f"/dags/{quote(DAG_ID, safe='')}/dagRuns")
    tasks = api(deployment, f"/dags/{DAG_ID}/tasks")
    triggered = api(deployment, f"/dags/{DAG_ID}/dagRuns", "POST", json={"dag_run_id": "from_api"})

    assert sorted(d["dag_id"] for d in listed) == ["team_a:etl", "team_b:etl"]
    assert dag.status_code == 200 and dag.json()["fileloc"].endswith("/team_a/etl.py")
    assert [r["dag_run_id"] for r in encoded.json()["dag_runs"]] == ["manual_1"]
    assert [t["task_id"] for t in tasks.json()["tasks"]] == ["hello"]
    assert triggered.status_code == 200, triggered.text
    assert deployment.scalar("SELECT dag_id FROM dag_run WHERE run_id = 'from_api'") == DAG_ID


@pytest.mark.parametrize(
    "path",
    [f"/dags/{DAG_ID}/grid", f"/dags/{DAG_ID}/graph", f"/dag_details?dag_id={DAG_ID}", f"/code?dag_id={DAG_ID}",
     "/home", f"/dags/{DAG_ID}/grid?tab=logs&dag_run_id=manual_1&task_id=hello"],
)
def test_ui_pages_of_a_team_dag(deployment, browser, path):
    page = browser.get(f"{deployment.url}{path}")

    assert page.status_code == 200
    assert DAG_ID in page.text


def test_grid_and_graph_data_of_a_team_dag(deployment, browser):
    grid = browser.get(f"{deployment.url}/object/grid_data", params={"dag_id": DAG_ID}).json()
    graph = browser.get(f"{deployment.url}/object/graph_data", params={"dag_id": DAG_ID}).json()

    assert [run["run_id"] for run in grid["dag_runs"]][:1] == ["manual_1"]
    assert grid["groups"]["children"][0]["id"] == "hello"
    assert "hello" in str(graph["nodes"])


def test_task_log_with_a_colon_in_its_path_is_served_by_the_schedulers_log_server(deployment):
    local_logs = list((deployment.home / "logs").glob("dag_id=team_a:etl/run_id=manual_1/task_id=hello/attempt=1.log"))
    path = f"/dags/{DAG_ID}/dagRuns/manual_1/taskInstances/hello/logs/1"
    # (the scheduler serves the log; another test of this module restarts it)
    response = deployment.wait_for(lambda: (r := api(deployment, path)).status_code == 200
                                   and "hello from the team task" in r.text and r, "the served task log", timeout=60)

    assert len(local_logs) == 1
    assert response.status_code == 200
    assert "hello from the team task" in response.text
    assert "Found logs served from host http://" in response.text
    assert "dag_id=team_a:etl/run_id=manual_1/task_id=hello/attempt=1.log" in response.text


def test_cli_lists_and_tests_team_dags(deployment):
    deployment.stop("scheduler")  # `tasks test` deletes its temporary run, which deadlocks with a scheduler
    try:
        listed = deployment.airflow("dags", "list", "-o", "plain")
        tested = deployment.airflow("tasks", "test", DAG_ID, "hello", "2024-01-02")
        without_team = deployment.airflow("tasks", "test", "etl", "hello", "2024-01-02", check=False)
    finally:
        deployment.start("scheduler", "scheduler")

    assert {"team_a:etl", "team_b:etl"} <= set(listed.stdout.split())
    assert "hello from the team task" in tested.stdout
    assert without_team.returncode != 0
    assert "DAG id 'etl' has no team" in without_team.stderr


def test_metrics_of_team_dags_keep_their_names_valid_and_carry_the_team_tag(deployment):
    names = [packet.rsplit(":", 1)[0] for packet in deployment.metrics]

    assert any(n.startswith("airflow.dagrun.duration.success.team_a__etl") for n in names), names
    assert any(n.startswith("airflow.dag.team_a__etl.hello.duration") for n in names), names
    tagged = [n for n in names if "dag_id=team_a__etl" in n]
    assert tagged and all("team=team_a" in n for n in tagged)
    assert not [n for n in names if ":" in n]
