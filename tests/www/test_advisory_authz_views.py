"""Authorization advisories of apache-airflow 2.11.2 in the webserver's views, outside multi-team mode.

CVE-2026-40690 / CVE-2026-48891 (patch dependency-graphs-readable-dags): the datasets page's dependency
graph (/object/dataset_dependencies) and the DAG Dependencies view (/dag-dependencies) showed every DAG id
to any user allowed to open them. A user with per-DAG permissions now sees the DAGs it may read, and the
datasets linked to them; a user who may read every DAG sees the whole graph, as before.

One Flask app of the installed webserver (``create_app(testing=True)``), users logged in through the
login form, on the worker's SQLite metadata DB; the DAGs, serialized DAGs and users are created here.
"""

from __future__ import annotations

import uuid

import pendulum
import pytest

from tests.test_utils.db import delete_dags

pytestmark = pytest.mark.db_test

SUFFIX = uuid.uuid4().hex[:8]
OWN, HIDDEN, HIDDEN_ONLY = f"own_{SUFFIX}", f"hidden_{SUFFIX}", f"hidden_only_{SUFFIX}"
SHARED_URI = f"s3://advisory-views-{SUFFIX}/shared"
HIDDEN_URI = f"s3://advisory-views-{SUFFIX}/hidden_only"
START = pendulum.datetime(2024, 1, 1)


@pytest.fixture(scope="module")
def app(own_session_interface):
    """The app, made after the worker's DB exists (a module fixture is set up before the autouse DB one)."""
    from airflow.www import app as application

    flask_app = application.create_app(testing=True)
    flask_app.config["WTF_CSRF_ENABLED"] = False
    _make_dags()
    yield flask_app
    delete_dags()  # the worker's next database tests start without them


def _make_dags() -> None:
    """OWN produces the shared dataset that HIDDEN consumes; HIDDEN_ONLY consumes a dataset of its own."""
    from airflow.datasets import Dataset
    from airflow.models.dag import DAG
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.operators.empty import EmptyOperator

    own = DAG(OWN, schedule=None, start_date=START)
    EmptyOperator(task_id="produce", outlets=[Dataset(SHARED_URI)], dag=own)
    hidden = DAG(HIDDEN, schedule=[Dataset(SHARED_URI)], start_date=START)
    EmptyOperator(task_id="consume", dag=hidden)
    hidden_only = DAG(HIDDEN_ONLY, schedule=[Dataset(HIDDEN_URI)], start_date=START)
    EmptyOperator(task_id="consume", dag=hidden_only)
    dags = [own, hidden, hidden_only]
    DAG.bulk_write_to_db(dags)
    for dag in dags:
        SerializedDagModel.write_dag(dag)


def login(app, name: str, permissions: list[tuple[str, str]] | None):
    """A test client logged in as a new user holding exactly ``permissions`` (None: an Admin)."""
    sm = app.appbuilder.sm
    name = f"{name}_{SUFFIX}"
    if not sm.find_user(username=name):
        if permissions is None:
            role = sm.find_role("Admin")
        else:
            role = sm.add_role(f"role_{name}")
            for action, resource in permissions:
                sm.add_permission_to_role(role, sm.create_permission(action, resource))
        sm.add_user(name, name, name, f"{name}@example.com", role, password=name)
    client = app.test_client()
    response = client.post("/login/", data={"username": name, "password": name})
    assert response.status_code == 302, response.text
    return client


def per_dag_user(app):
    from airflow.security import permissions as p

    return login(app, "graph_reader", [
        (p.ACTION_CAN_READ, p.RESOURCE_WEBSITE), (p.ACTION_CAN_READ, p.RESOURCE_DATASET),
        (p.ACTION_CAN_READ, p.RESOURCE_DAG_DEPENDENCIES), (p.ACTION_CAN_READ, f"DAG:{OWN}"),
    ])


def test_cve_2026_40690_the_dataset_graph_shows_only_readable_dags(app):
    response = per_dag_user(app).get("/object/dataset_dependencies")
    everything = login(app, "graph_admin", None).get("/object/dataset_dependencies")

    assert response.status_code == 200, response.text
    graph = response.json
    node_ids = {node["id"] for node in graph["nodes"]}
    assert f"dag:{OWN}" in node_ids and f"dataset:{SHARED_URI}" in node_ids  # the shared dataset it produces
    assert HIDDEN not in response.text and HIDDEN_ONLY not in response.text
    assert HIDDEN_URI not in response.text  # linked to no DAG the user sees
    assert all(edge["source"] in node_ids and edge["target"] in node_ids for edge in graph["edges"])
    assert {f"dag:{OWN}", f"dag:{HIDDEN}", f"dag:{HIDDEN_ONLY}", f"dataset:{HIDDEN_URI}"} <= {
        node["id"] for node in everything.json["nodes"]}


def test_cve_2026_48891_the_dag_dependencies_view_shows_only_readable_dags(app):
    response = per_dag_user(app).get("/dag-dependencies")
    everything = login(app, "graph_admin", None).get("/dag-dependencies")

    assert response.status_code == 200, response.text
    assert f"dag:{OWN}" in response.text
    assert HIDDEN not in response.text and HIDDEN_ONLY not in response.text and HIDDEN_URI not in response.text
    assert everything.status_code == 200
    assert HIDDEN in everything.text and HIDDEN_ONLY in everything.text
