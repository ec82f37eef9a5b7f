"""Authorization advisories of apache-airflow 2.11.2 in the REST API, outside multi-team mode (vanilla).

One Flask app of the installed webserver per module (``create_app(testing=True)``, basic auth), on the
worker's SQLite metadata DB. The users have per-DAG permissions only, created here: what they may not
read must neither be listed, nor counted, nor readable by id, nor deletable.

- CVE-2026-59245 (patch dag-id-global-resource-names): a DAG id never is, nor maps to, a global resource.
- CVE-2026-75157 (patch dataset-queued-events-delete-requires-dag-edit): deleting queued events needs DAG edit.
- CVE-2026-75158 (patch dataset-events-readable-dags): dataset events are listed for readable source DAGs.
- CVE-2026-46764 (patch event-logs-readable-dags): the audit log is scoped to readable DAGs.
- CVE-2026-45192 (patch connection-extra-redaction): a Connection's extra is redacted, unstructured or deep.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from urllib.parse import quote

import pendulum
import pytest

from tests.test_utils.db import delete_dags

pytestmark = pytest.mark.db_test

SUFFIX = uuid.uuid4().hex[:8]
OWN, HIDDEN = f"own_{SUFFIX}", f"hidden_{SUFFIX}"
SHARED_URI = f"s3://advisory-{SUFFIX}/shared"
START = pendulum.datetime(2024, 1, 1)


def _headers(user: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{user}".encode()).decode()}


@pytest.fixture(scope="module")
def app(own_session_interface):
    """The app, made after the worker's DB exists (a module fixture is set up before the autouse DB one)."""
    saved = os.environ.get("AIRFLOW__API__AUTH_BACKENDS")
    os.environ["AIRFLOW__API__AUTH_BACKENDS"] = "airflow.api.auth.backend.basic_auth"
    from airflow.www import app as application

    flask_app = application.create_app(testing=True)
    _make_dags()
    yield flask_app
    delete_dags()  # the worker's next database tests start without them
    if saved is None:
        os.environ.pop("AIRFLOW__API__AUTH_BACKENDS", None)
    else:
        os.environ["AIRFLOW__API__AUTH_BACKENDS"] = saved


def _make_dags() -> None:
    """Two DAGs that both consume and produce the shared dataset."""
    from airflow.datasets import Dataset
    from airflow.models.dag import DAG
    from airflow.operators.empty import EmptyOperator

    dags = []
    for dag_id in (OWN, HIDDEN):
        dag = DAG(dag_id, schedule=[Dataset(SHARED_URI)], start_date=START)
        EmptyOperator(task_id="produce", outlets=[Dataset(f"{SHARED_URI}/{dag_id}")], dag=dag)
        dags.append(dag)
    DAG.bulk_write_to_db(dags)


def make_user(app, name: str, permissions: list[tuple[str, str]]) -> str:
    """A user whose only role holds exactly ``permissions`` ((action, resource) pairs)."""
    sm = app.appbuilder.sm
    name = f"{name}_{SUFFIX}"
    if sm.find_user(username=name):
        return name
    role = sm.add_role(f"role_{name}")
    for action, resource in permissions:
        sm.add_permission_to_role(role, sm.create_permission(action, resource))
    sm.add_user(name, name, name, f"{name}@example.com", role, password=name)
    return name


def call(app, user: str, method: str, path: str, **kwargs):
    with app.test_client() as client:
        return client.open(f"/api/v1{path}", method=method, headers=_headers(user), **kwargs)


def admin(app) -> str:
    sm = app.appbuilder.sm
    name = f"admin_{SUFFIX}"
    if not sm.find_user(username=name):
        sm.add_user(name, name, name, f"{name}@example.com", sm.find_role("Admin"), password=name)
    return name


def dataset_id(uri: str) -> int:
    from sqlalchemy import select

    from airflow.models.dataset import DatasetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.scalar(select(DatasetModel.id).where(DatasetModel.uri == uri))


# ---- CVE-2026-59245: a DAG named like a global FAB resource --------------------------------------


@pytest.mark.parametrize("dag_id", ["DAGs", "dags", "Dags"])
def test_cve_2026_59245_a_dag_id_that_is_a_global_resource_name_is_refused_at_validation(dag_id):
    from airflow.exceptions import AirflowException
    from airflow.models.dag import DAG

    dag = DAG(dag_id, schedule=None, start_date=START)  # a stored one still loads, and maps to its own resource

    with pytest.raises(AirflowException, match=f"DAG id '{dag_id}' is the name of the global 'DAGs'"):
        dag.validate()  # as the DagBag validates every DAG of a file before bagging it


def test_cve_2026_59245_the_refusal_is_an_import_error_naming_the_id(tmp_path):
    from airflow.models.dagbag import DagBag

    (tmp_path / "takeover.py").write_text(
        "import pendulum\nfrom airflow import DAG\n\n"
        "dag = DAG('DAGs', schedule=None, start_date=pendulum.datetime(2024, 1, 1))\n"
    )

    bag = DagBag(str(tmp_path), include_examples=False)

    assert bag.dags == {}
    (error,) = bag.import_errors.values()
    assert error.startswith("AirflowException: DAG id 'DAGs' is the name of the global 'DAGs' permission resource")
    assert "\n" not in error  # one line


def test_cve_2026_59245_resource_name_never_returns_a_global_resource():
    from airflow.security import permissions

    assert permissions.resource_name("DAGs", permissions.RESOURCE_DAG) == "DAG:DAGs"
    assert permissions.resource_name("DAG Runs", permissions.RESOURCE_DAG_RUN) == "DAG Run:DAG Runs"
    assert permissions.resource_name("DAGs", permissions.RESOURCE_DAG_RUN) == "DAG Run:DAGs"
    assert permissions.resource_name_for_dag("DAGs") == "DAG:DAGs"
    assert permissions.resource_name("etl", permissions.RESOURCE_DAG) == "DAG:etl"  # unchanged
    assert permissions.resource_name("DAG:etl", permissions.RESOURCE_DAG) == "DAG:etl"  # already a resource


def test_cve_2026_59245_access_control_of_a_dag_named_dags_grants_and_revokes_nothing_global(app):
    """A DAG named ``DAGs`` that was stored before the fix: its access_control stays on its own resource."""
    from airflow.security import permissions

    sm = app.appbuilder.sm
    user = make_user(app, "takeover", [(permissions.ACTION_CAN_READ, f"DAG:{OWN}")])
    role = sm.find_role(f"role_{user}")

    sm.sync_perm_for_dag("DAGs", {role.name: {permissions.ACTION_CAN_READ, permissions.ACTION_CAN_EDIT}})
    sm.sync_perm_for_dag("DAGs", {})  # stale-permission sweep of the same DAG, with no access_control

    granted = {(p.action.name, p.resource.name) for p in sm.find_role(role.name).permissions}
    assert (permissions.ACTION_CAN_READ, permissions.RESOURCE_DAG) not in granted
    assert (permissions.ACTION_CAN_EDIT, permissions.RESOURCE_DAG) not in granted
    viewer = {(p.action.name, p.resource.name) for p in sm.find_role("Viewer").permissions}
    assert (permissions.ACTION_CAN_READ, permissions.RESOURCE_DAG) in viewer  # not swept off the Viewer
    assert call(app, user, "GET", f"/dags/{HIDDEN}").status_code == 403
    assert call(app, user, "GET", f"/dags/{OWN}").status_code == 200


def test_cve_2026_59245_team_dag_ids_are_still_valid_in_multi_team_mode(multi_team):
    from airflow.models.dag import DAG
    from airflow.security import permissions
    from airflow.teams import parsing

    multi_team({"team_a": [{"name": "a", "class": "LocalExecutor"}]})

    with parsing.parsing_for("team_a"):
        dag = DAG("DAGs", schedule=None, start_date=START)

    assert dag.dag_id == "team_a:DAGs"
    assert permissions.resource_name(dag.dag_id, permissions.RESOURCE_DAG) == "DAG:team_a:DAGs"


# ---- CVE-2026-75157: deleting queued dataset events ------------------------------------------------


def _queue(dag_ids: list[str]) -> int:
    from airflow.models.dataset import DatasetDagRunQueue
    from airflow.utils.session import create_session

    target = dataset_id(SHARED_URI)
    with create_session() as session:
        for dag_id in dag_ids:
            session.merge(DatasetDagRunQueue(dataset_id=target, target_dag_id=dag_id))
    return target


def _queued() -> set[str]:
    from sqlalchemy import select

    from airflow.models.dataset import DatasetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as session:
        return set(session.scalars(select(DatasetDagRunQueue.target_dag_id)))


def test_cve_2026_75157_deleting_queued_events_needs_dag_edit_not_read(app):
    from airflow.security import permissions as p

    datasets = [(p.ACTION_CAN_READ, p.RESOURCE_DATASET), (p.ACTION_CAN_DELETE, p.RESOURCE_DATASET)]
    reader = make_user(app, "queue_reader", [*datasets, (p.ACTION_CAN_READ, f"DAG:{OWN}"),
                                             (p.ACTION_CAN_READ, f"DAG:{HIDDEN}")])
    editor = make_user(app, "queue_editor", [*datasets, (p.ACTION_CAN_READ, f"DAG:{OWN}"),
                                             (p.ACTION_CAN_EDIT, f"DAG:{OWN}"), (p.ACTION_CAN_READ, f"DAG:{HIDDEN}")])
    uri = quote(SHARED_URI, safe="")
    _queue([OWN, HIDDEN])

    one = call(app, reader, "DELETE", f"/dags/{OWN}/datasets/queuedEvent/{uri}")
    all_of_dag = call(app, reader, "DELETE", f"/dags/{OWN}/datasets/queuedEvent")
    of_dataset = call(app, reader, "DELETE", f"/datasets/queuedEvent/{uri}")

    assert (one.status_code, all_of_dag.status_code) == (403, 403), (one.data, all_of_dag.data)
    assert of_dataset.status_code == 404, of_dataset.data  # none of its queue rows is the reader's to delete
    assert _queued() >= {OWN, HIDDEN}
    # the editor of one DAG deletes that DAG's rows only, also through the dataset-level endpoint
    assert call(app, editor, "GET", f"/datasets/queuedEvent/{uri}").json["total_entries"] == 2
    assert call(app, editor, "DELETE", f"/datasets/queuedEvent/{uri}").status_code == 204
    assert OWN not in _queued() and HIDDEN in _queued()
    _queue([OWN])
    assert call(app, editor, "DELETE", f"/dags/{OWN}/datasets/queuedEvent/{uri}").status_code == 204
    assert OWN not in _queued()


# ---- CVE-2026-75158: the dataset event list ---------------------------------------------------------


def _events() -> None:
    from sqlalchemy import select

    from airflow.models.dataset import DatasetEvent
    from airflow.utils.session import create_session

    target = dataset_id(SHARED_URI)
    with create_session() as session:
        if session.scalar(select(DatasetEvent.id).where(DatasetEvent.dataset_id == target)):
            return
        for source, extra in ((OWN, {"own": 1}), (HIDDEN, {"hidden_secret": 1}), (None, {"posted": 1})):
            session.add(DatasetEvent(dataset_id=target, extra=extra, source_dag_id=source,
                                     source_task_id="produce" if source else None,
                                     source_run_id=f"run_{source}" if source else None, source_map_index=-1))


def test_cve_2026_75158_dataset_events_of_unreadable_dags_are_neither_listed_nor_counted(app):
    from airflow.security import permissions as p

    user = make_user(app, "event_reader", [(p.ACTION_CAN_READ, p.RESOURCE_DATASET),
                                           (p.ACTION_CAN_READ, f"DAG:{OWN}")])
    _events()
    params = {"dataset_id": dataset_id(SHARED_URI)}

    listed = call(app, user, "GET", "/datasets/events", query_string=params)
    targeted = call(app, user, "GET", "/datasets/events", query_string={**params, "source_dag_id": HIDDEN})
    everything = call(app, admin(app), "GET", "/datasets/events", query_string=params)

    assert listed.status_code == 200, listed.json
    assert HIDDEN not in listed.text and "hidden_secret" not in listed.text
    # the own DAG's event, and the event that names no DAG (posted through the API: the dataset is shared)
    assert sorted(json.dumps(e["extra"]) for e in listed.json["dataset_events"]) == ['{"own": 1}', '{"posted": 1}']
    assert listed.json["total_entries"] == 2
    assert targeted.json == {"dataset_events": [], "total_entries": 0}
    assert everything.json["total_entries"] == 3 and HIDDEN in everything.text


# ---- CVE-2026-46764: the audit log -------------------------------------------------------------------


def _log(dag_id: str | None, event: str) -> int:
    from airflow.models.log import Log
    from airflow.utils.session import create_session

    with create_session() as session:
        log = Log(event=event, dag_id=dag_id, extra=f"secret of {event}")
        session.add(log)
        session.flush()
        return log.id


def test_cve_2026_46764_audit_log_rows_of_unreadable_dags_are_hidden_by_id_and_in_the_list(app):
    from airflow.security import permissions as p

    user = make_user(app, "audit_reader", [(p.ACTION_CAN_READ, p.RESOURCE_AUDIT_LOG),
                                           (p.ACTION_CAN_READ, f"DAG:{OWN}")])
    own, hidden, no_dag = (_log(OWN, f"own_event_{SUFFIX}"), _log(HIDDEN, f"hidden_event_{SUFFIX}"),
                           _log(None, f"cli_event_{SUFFIX}"))

    assert call(app, user, "GET", f"/eventLogs/{own}").status_code == 200
    assert call(app, user, "GET", f"/eventLogs/{hidden}").status_code == 403
    assert call(app, user, "GET", f"/eventLogs/{no_dag}").status_code == 403  # only for readers of every DAG
    assert call(app, admin(app), "GET", f"/eventLogs/{hidden}").status_code == 200
    assert call(app, admin(app), "GET", f"/eventLogs/{no_dag}").status_code == 200
    listed = call(app, user, "GET", "/eventLogs", query_string={"limit": 1000})
    assert listed.status_code == 200, listed.json
    assert {event["dag_id"] for event in listed.json["event_logs"]} == {OWN}
    assert listed.json["total_entries"] == len(listed.json["event_logs"])
    assert f"hidden_event_{SUFFIX}" not in listed.text and f"cli_event_{SUFFIX}" not in listed.text
    everything = call(app, admin(app), "GET", "/eventLogs", query_string={"limit": 1000})
    assert f"hidden_event_{SUFFIX}" in everything.text and f"cli_event_{SUFFIX}" in everything.text


# ---- CVE-2026-45192: Connection extra ------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, shown",
    [
        ("user=svc;pwd=s3cr3t-unstructured", "***"),  # not JSON: nothing can be told apart, all of it goes
        ('"s3cr3t-json-string"', "***"),  # JSON, but not an object of fields
        ('["s3cr3t-in-a-list"]', "***"),
        ('{"a": {"b": {"c": {"d": {"e": {"f": {"password": "s3cr3t-deep"}}}}}}, "region": "eu"}',
         '{"a": {"b": {"c": {"d": {"e": {"f": "***"}}}}}, "region": "eu"}'),  # deeper than looked at: masked
        ('{"token": "s3cr3t-token", "nested": {"api_key": "s3cr3t-key"}, "region": "eu"}',
         '{"token": "***", "nested": {"api_key": "***"}, "region": "eu"}'),  # as before
    ],
)
def test_cve_2026_45192_connection_extra_never_returns_an_unredacted_secret(app, extra, shown):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    conn_id = f"conn_{uuid.uuid4().hex[:8]}"
    with create_session() as session:
        session.add(Connection(conn_id=conn_id, conn_type="http", extra=extra))

    response = call(app, admin(app), "GET", f"/connections/{conn_id}")

    assert response.status_code == 200, response.json
    assert "s3cr3t" not in response.text
    assert response.json["extra"] == shown
