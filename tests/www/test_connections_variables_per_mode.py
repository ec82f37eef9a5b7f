"""Connections and Variables in the UI, REST API and CLI, with multi-team mode on and off (patch teams-secrets).

Two real webservers run side by side on PostgreSQL: one deployment in multi-team mode, one without.
"""

from __future__ import annotations

import re

import pytest
import requests

from tests.test_utils.deployment import Deployment, local_executors

pytestmark = pytest.mark.e2e

DISABLED = "Connections and Variables are not stored in the metadata database"


@pytest.fixture(scope="module")
def deployments(tmp_path_factory, postgres_server):
    made = {}
    for mode, teams in (("multi", local_executors("team_a")), ("single", None)):
        root = tmp_path_factory.mktemp(f"secrets-{mode}")
        database = postgres_server.create_database(f"e2e_secrets_{mode}_{root.name.replace('-', '_')}")
        deployment = Deployment(root, database, teams, webserver__workers="1",
                                api__auth_backends="airflow.api.auth.backend.basic_auth")
        deployment.migrate()
        deployment.create_user("admin")
        deployment.start_webserver()
        made[mode] = deployment
    for deployment in made.values():
        deployment.wait_for_webserver()
    yield made
    for deployment in made.values():
        deployment.stop_all()


def counts(deployment) -> tuple[int, int]:
    return deployment.scalar("SELECT count(*) FROM connection"), deployment.scalar("SELECT count(*) FROM variable")


def test_admin_menu_has_no_connections_or_variables_in_multi_team_mode(deployments):
    multi = deployments["multi"].login().get(f"{deployments['multi'].url}/home").text
    single = deployments["single"].login().get(f"{deployments['single'].url}/home").text

    assert 'href="/connection/list/"' not in multi and 'href="/variable/list/"' not in multi
    assert 'href="/pool/list/"' in multi and 'href="/xcom/list/"' in multi  # the rest of Admin stays
    assert 'href="/connection/list/"' in single and 'href="/variable/list/"' in single


@pytest.mark.parametrize("path", ["/connection/list/", "/connection/add", "/variable/list/", "/variable/add",
                                  "/connection/edit/1"])
def test_direct_urls_answer_403_with_an_explanation_for_admins(deployments, path):
    deployment = deployments["multi"]

    page = deployment.login().get(f"{deployment.url}{path}", allow_redirects=False)

    assert page.status_code == 403
    assert "disabled in multi-team mode" in page.text and DISABLED in page.text
    assert 'class="navbar' in page.text and 'href="/home"' in page.text  # inside the UI's layout, navbar included


def test_the_views_work_without_multi_team(deployments):
    deployment = deployments["single"]
    session = deployment.login()

    assert session.get(f"{deployment.url}/connection/list/").status_code == 200
    assert session.get(f"{deployment.url}/variable/list/").status_code == 200


def test_a_refused_ui_form_post_writes_nothing(deployments):
    deployment = deployments["multi"]
    session = deployment.login()
    before = counts(deployment)

    token = re.search(r"var csrfToken = '([^']+)'", session.get(f"{deployment.url}/home").text).group(1)

    added = session.post(f"{deployment.url}/variable/add", data={"key": "k", "val": "v", "csrf_token": token},
                         allow_redirects=False)
    imported = session.post(f"{deployment.url}/variable/varimport", data={"csrf_token": token},
                            files={"file": ("v.json", b'{"k": "v"}')}, allow_redirects=False)

    assert (added.status_code, imported.status_code) == (403, 403)
    assert counts(deployment) == before


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/connections", None),
        ("GET", "/connections/conn_x", None),
        ("POST", "/connections", {"connection_id": "conn_x", "conn_type": "http"}),
        ("PATCH", "/connections/conn_x", {"connection_id": "conn_x", "conn_type": "http"}),
        ("DELETE", "/connections/conn_x", None),
        ("POST", "/connections/test", {"connection_id": "conn_x", "conn_type": "http"}),
        ("GET", "/variables", None),
        ("GET", "/variables/var_y", None),
        ("POST", "/variables", {"key": "var_y", "value": "v"}),
        ("PATCH", "/variables/var_y", {"key": "var_y", "value": "v"}),
        ("DELETE", "/variables/var_y", None),
    ],
)
def test_rest_api_answers_403_problem_json_and_writes_nothing(deployments, method, path, body):
    deployment = deployments["multi"]
    before = counts(deployment)

    response = requests.request(method, f"{deployment.url}/api/v1{path}", json=body, auth=("admin", "admin"), timeout=30)

    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 403
    assert problem["title"] in ("Connections are disabled in multi-team mode", "Variables are disabled in multi-team mode")
    assert DISABLED in problem["detail"]
    assert counts(deployment) == before


def test_rest_api_works_without_multi_team(deployments):
    deployment = deployments["single"]
    auth = ("admin", "admin")

    created = requests.post(f"{deployment.url}/api/v1/variables", json={"key": "var_y", "value": "v"}, auth=auth)
    listed = requests.get(f"{deployment.url}/api/v1/variables", auth=auth)

    assert created.status_code == 200
    assert [v["key"] for v in listed.json()["variables"]] == ["var_y"]


@pytest.mark.parametrize(
    "args",
    [("connections", "list"), ("connections", "add", "conn_x", "--conn-uri", "http://h"),
     ("connections", "delete", "conn_x"), ("connections", "import", "/dev/null"),
     ("connections", "export", "-"), ("connections", "create-default-connections"),
     ("variables", "list"), ("variables", "set", "var_y", "v"), ("variables", "delete", "var_y"),
     ("variables", "import", "/dev/null"), ("variables", "export", "-")],
)
def test_cli_commands_that_touch_the_database_refuse(deployments, args):
    deployment = deployments["multi"]
    before = counts(deployment)

    result = deployment.airflow(*args, check=False, timeout=60)

    assert result.returncode == 1
    assert f"`airflow {args[0]} {args[1]}` is not available." in result.stderr
    assert DISABLED in result.stderr
    assert counts(deployment) == before


def test_cli_reads_through_the_secrets_backends_keep_working(deployments):
    deployment = deployments["multi"]
    env = {"AIRFLOW_VAR_VAR_Y": "from-env", "AIRFLOW_CONN_CONN_X": "http://user@example.invalid:8080"}

    variable = deployment.airflow("variables", "get", "var_y", env=env)
    connection = deployment.airflow("connections", "get", "conn_x", "-o", "json", env=env)

    assert variable.stdout.strip().splitlines()[-1] == "from-env"
    assert "example.invalid" in connection.stdout


def test_a_variable_only_in_the_database_is_not_readable_in_multi_team_mode(deployments):
    deployment = deployments["multi"]
    with deployment._engine.begin() as connection:  # written behind Airflow's back, as by an old version
        connection.exec_driver_sql("INSERT INTO variable (key, val, is_encrypted) VALUES ('db_only', 'x', false)")

    result = deployment.airflow("variables", "get", "db_only", check=False)

    assert result.returncode != 0
    assert "Variable db_only does not exist" in result.stderr + result.stdout
