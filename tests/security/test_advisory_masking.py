"""Security backports of the masking and hardening advisories of apache-airflow 2.11.2.

One test (at least) per advisory, each failing on a build without its patch:

- CVE-2026-25219 (patch ``sensitive-names-access-key-connection-string``)
- CVE-2026-49487 (patch ``redact-trigger-kwargs-in-api``)
- CVE-2026-42360 (patch ``redact-truncated-template-fields``)
- CVE-2026-49267 (patch ``smtp-starttls-default-ssl-context``)
- Flask CVE-2026-27205 (patch ``session-vary-cookie``)
- CVE-2026-25917 (patch ``narrow-deserialization-allowlist``)

Unit tests against the installed build: no Airflow process is started.
"""

from __future__ import annotations

import datetime
import json
import smtplib
import ssl
from email.mime.multipart import MIMEMultipart

import pytest

SECRET = "hunter2-s3cr3t"
NESTED_SECRET = "k3y-n3st3d"


# --- CVE-2026-25219: access_key and connection_string are sensitive names ---------------------------------


def test_access_key_and_connection_string_are_sensitive_names():
    from airflow.utils.log.secrets_masker import redact, should_hide_value_for_key

    assert should_hide_value_for_key("access_key")
    assert should_hide_value_for_key("extra__wasb__connection_string")
    extra = {
        "connection_string": f"DefaultEndpointsProtocol=https;AccountKey={SECRET}",
        "shared_access_key": NESTED_SECRET,
        "account_name": "myaccount",
    }

    assert redact(extra) == {"connection_string": "***", "shared_access_key": "***", "account_name": "myaccount"}


# --- CVE-2026-49487: trigger kwargs in the task-instance API are redacted ---------------------------------


def test_trigger_kwargs_in_the_api_schema_are_redacted_nested_keys_too():
    from airflow.api_connexion.schemas.task_instance_schema import TaskInstanceSchema
    from airflow.api_connexion.schemas.trigger_schema import TriggerSchema
    from airflow.models.trigger import Trigger

    trigger = Trigger(
        classpath="airflow.triggers.temporal.TimeDeltaTrigger",
        kwargs={
            "password": SECRET,
            "hook_params": {"extra": {"api_key": NESTED_SECRET}, "endpoint": "https://example.invalid/x"},
            "poll_interval": 30,
        },
    )
    # The schema the task-instance API nests for a deferred task instance
    assert TaskInstanceSchema().fields["trigger"].nested is TriggerSchema

    kwargs = TriggerSchema().dump(trigger)["kwargs"]

    assert isinstance(kwargs, str)
    assert SECRET not in kwargs
    assert NESTED_SECRET not in kwargs
    assert "'password': '***'" in kwargs
    assert "'api_key': '***'" in kwargs
    assert "https://example.invalid/x" in kwargs and "30" in kwargs
    # the trigger itself still runs with the real values
    assert trigger.kwargs["password"] == SECRET


# --- CVE-2026-42360: truncated rendered fields keep nested-key masking ------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        pytest.param({"conn": {"password": SECRET}, "api_key": NESTED_SECRET, "rows": "x" * 300}, id="jsonable"),
        pytest.param({"conn": {"password": SECRET}, "api_key": NESTED_SECRET, "rows": {"x" * 300}},
                     id="not-jsonable"),
    ],
)
def test_truncated_template_field_keeps_nested_key_masking(monkeypatch, field):
    from airflow.serialization.helpers import serialize_template_field

    monkeypatch.setenv("AIRFLOW__CORE__MAX_TEMPLATED_FIELD_LENGTH", "160")

    rendered = serialize_template_field(field, "op_kwargs")

    assert rendered.startswith("Truncated. You can change this behaviour")
    assert SECRET not in rendered
    assert NESTED_SECRET not in rendered
    assert "'password': '***'" in rendered


def test_short_template_field_is_returned_unchanged():
    from airflow.serialization.helpers import serialize_template_field

    assert serialize_template_field({"a": [1, 2]}, "op_kwargs") == {"a": [1, 2]}


# --- CVE-2026-49267: core SMTP STARTTLS validates the server certificate ----------------------------------


class _RecordingSMTP:
    """Stands in for smtplib.SMTP and records what send_mime_email does with it."""

    calls: list[tuple[str, dict]] = []

    def __init__(self, host=None, port=None, timeout=None, **kwargs):
        self.calls.append(("connect", {"host": host, "port": port, **kwargs}))

    def starttls(self, *args, **kwargs):
        self.calls.append(("starttls", {"args": args, **kwargs}))

    def login(self, user, password):
        self.calls.append(("login", {"user": user}))

    def sendmail(self, e_from, e_to, msg):
        self.calls.append(("sendmail", {"to": e_to}))

    def quit(self):
        self.calls.append(("quit", {}))


@pytest.fixture
def recording_smtp(monkeypatch):
    _RecordingSMTP.calls = []
    monkeypatch.setattr(smtplib, "SMTP", _RecordingSMTP)
    monkeypatch.setenv("AIRFLOW__SMTP__SMTP_STARTTLS", "True")
    monkeypatch.setenv("AIRFLOW__SMTP__SMTP_SSL", "False")
    return _RecordingSMTP.calls


def _starttls_context(calls):
    (starttls,) = [kwargs for name, kwargs in calls if name == "starttls"]
    assert not starttls["args"], starttls
    return starttls.get("context")


def test_smtp_starttls_uses_a_certificate_validating_context(recording_smtp):
    from airflow.utils.email import send_mime_email

    send_mime_email("airflow@example.com", ["ops@example.com"], MIMEMultipart(), conn_id=None)

    context = _starttls_context(recording_smtp)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    # STARTTLS comes before the credentials are sent
    names = [name for name, _ in recording_smtp]
    assert names.index("starttls") < names.index("login") < names.index("sendmail")


def test_smtp_starttls_follows_the_email_ssl_context_opt_out(recording_smtp, monkeypatch):
    from airflow.utils.email import send_mime_email

    monkeypatch.setenv("AIRFLOW__EMAIL__SSL_CONTEXT", "none")
    send_mime_email("airflow@example.com", ["ops@example.com"], MIMEMultipart(), conn_id=None)

    assert _starttls_context(recording_smtp) is None


# --- Flask CVE-2026-27205: Vary: Cookie whenever the session was accessed ---------------------------------


def _session_app(backend: str, monkeypatch):
    from flask import Blueprint, Flask, session

    from airflow.www.extensions.init_session import init_airflow_session_interface

    monkeypatch.setenv("AIRFLOW__WEBSERVER__SESSION_BACKEND", backend)
    app = Flask(__name__)
    app.secret_key = "not-a-secret-for-this-test"
    app.config["SESSION_PERMANENT"] = False

    @app.route("/probe")
    def probe():
        return "member" if "user_id" in session else "anonymous"

    @app.route("/static-like")
    def static_like():
        return "same for everybody"

    # The REST API's blueprint: its responses never save the session (SessionExemptMixin)
    api = Blueprint("/api/v1", __name__)

    @api.route("/api/v1/me")
    def me():
        return {"user": session.get("user_id")}

    app.register_blueprint(api)
    init_airflow_session_interface(app, None)
    return app


def _vary(response) -> set[str]:
    return {v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()}


def test_session_read_with_in_adds_vary_cookie(monkeypatch):
    client = _session_app("securecookie", monkeypatch).test_client()

    response = client.get("/probe")

    assert response.status_code == 200 and response.text == "anonymous"
    assert "Cookie" in _vary(response)


def test_session_read_in_the_rest_api_adds_vary_cookie(monkeypatch):
    client = _session_app("securecookie", monkeypatch).test_client()

    response = client.get("/api/v1/me")

    assert response.status_code == 200 and response.json == {"user": None}
    assert "Cookie" in _vary(response)


def test_response_that_did_not_touch_the_session_has_no_vary_cookie(monkeypatch):
    client = _session_app("securecookie", monkeypatch).test_client()

    response = client.get("/static-like")

    assert response.status_code == 200
    assert "Cookie" not in _vary(response)


# --- CVE-2026-25917: the XCom serde allowlist no longer admits airflow.serialization gadgets ----------------

GADGET = "airflow.serialization.serialized_objects.BaseSerialization"
# serde hands __data__ to BaseSerialization.deserialize, which here builds a timedelta: the return value
# proves that the gadget ran.
GADGET_PAYLOAD = {
    "__classname__": GADGET,
    "__version__": 0,
    "__data__": {"__type": "dict", "__var": {"__type": "timedelta", "__var": 5.0}},
}


@pytest.fixture
def shipped_allowlist(monkeypatch):
    """The shipped default of [core] allowed_deserialization_classes (unit-test mode has its own)."""
    from airflow.configuration import retrieve_configuration_description
    from airflow.serialization import serde

    default = retrieve_configuration_description()["core"]["options"]["allowed_deserialization_classes"]["default"]
    monkeypatch.setenv("AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES", default)
    for cached in (serde._get_patterns, serde._match_glob, serde._match_regexp):
        cached.cache_clear()
    yield default
    monkeypatch.delenv("AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES")
    for cached in (serde._get_patterns, serde._match_glob, serde._match_regexp):
        cached.cache_clear()


def test_serde_refuses_the_base_serialization_gadget(shipped_allowlist):
    from airflow.serialization import serde

    with pytest.raises(ImportError, match=f"{GADGET} was not found in allow list"):
        serde.deserialize(json.loads(json.dumps(GADGET_PAYLOAD)))  # without the patch: timedelta(seconds=5)
    assert "airflow.*" not in shipped_allowlist.split()


@pytest.mark.parametrize(
    "classname",
    [
        "airflow.serialization.serialized_objects.SerializedDAG",
        "airflow.serialization.serialized_objects.SerializedBaseOperator",
        "airflow.models.mappedoperator.MappedOperator",
        "airflow.models.xcom.LazyXComSelectSequence",
        "airflow.ti_deps.dep_context.DepContext",
        "airflow.serialization.pydantic.taskinstance.TaskInstancePydantic",
    ],
)
def test_serde_refuses_other_airflow_gadget_classes(shipped_allowlist, classname):
    from airflow.serialization import serde

    with pytest.raises(ImportError, match="not found in allow list"):
        serde.deserialize({"__classname__": classname, "__version__": 0, "__data__": {}})


def _legitimate_values():
    from airflow.datasets import Dataset, DatasetAlias
    from airflow.io.path import ObjectStoragePath
    from airflow.lineage.entities import File, Table
    from airflow.models.param import Param
    from airflow.providers.common.compat.lineage.entities import File as CompatFile

    return {
        "dataset": Dataset("s3://bucket/key", extra={"a": 1}),
        "dataset-alias": DatasetAlias("alias"),
        "lineage-file": File(url="s3://bucket/key"),
        "lineage-table": Table(database="db", cluster="c", name="t"),
        "compat-lineage-file": CompatFile(url="s3://bucket/other"),
        "object-storage-path": ObjectStoragePath("file:///tmp/masking-roundtrip.txt"),
        "param": Param(5, type="integer"),
        "datetime": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        "timedelta": datetime.timedelta(minutes=3),
        "tuple": (1, "a"),
        "set": {1, 2},
        "frozenset": frozenset({"x"}),
    }


@pytest.mark.parametrize("name", list(_legitimate_values()))
def test_legitimate_values_still_round_trip(shipped_allowlist, name):
    from airflow.serialization import serde

    value = _legitimate_values()[name]

    restored = serde.deserialize(json.loads(json.dumps(serde.serialize(value))))

    assert type(restored) is type(value)
    if name == "param":
        assert restored.serialize() == value.serialize()
    else:
        assert restored == value


def _dag_run_with_gadget_xcom(dag_id: str, start: datetime.datetime, *, serialize: bool = False):
    """A DAG with a TriggerDagRunOperator, a run, and the XCom its link reads crafted to name the gadget."""
    from airflow.models.dag import DAG
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.xcom import XCom
    from airflow.operators.trigger_dagrun import XCOM_RUN_ID, TriggerDagRunOperator
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    with DAG(dag_id, schedule=None, start_date=start) as dag:
        TriggerDagRunOperator(task_id="trigger", trigger_dag_id="downstream")
    if serialize:
        dag.sync_to_db()
        SerializedDagModel.write_dag(dag)
    dag.create_dagrun(run_id="masking-run", run_type=DagRunType.MANUAL, state=DagRunState.SUCCESS,
                      execution_date=start, data_interval=(start, start))
    XCom.set(XCOM_RUN_ID, "placeholder", dag_id=dag.dag_id, task_id="trigger", run_id="masking-run")
    with create_session() as session:
        row = session.query(XCom).filter_by(dag_id=dag.dag_id, key=XCOM_RUN_ID).one()
        # read through XComDecoder (an object hook, innermost first): a primitive payload reaches the gadget
        row.value = json.dumps({"__classname__": GADGET, "__version__": 0, "__data__": "reached"}).encode()
        ti_key = dag.get_dagrun(run_id="masking-run", session=session).get_task_instance(
            "trigger", session=session).key
    return dag, ti_key


@pytest.mark.db_test
@pytest.mark.usefixtures("_clean_dags")
def test_xcom_read_for_an_extra_link_refuses_the_gadget(shipped_allowlist):
    """The chain of the advisory: a DAG author's XCom read by an operator link in the webserver."""
    from airflow.operators.trigger_dagrun import TriggerDagRunOperator

    dag, ti_key = _dag_run_with_gadget_xcom("masking_links", datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    operator = dag.get_task("trigger")
    link = TriggerDagRunOperator.operator_extra_links[0]

    with pytest.raises(ImportError, match=f"{GADGET} was not found in allow list"):
        link.get_link(operator, ti_key=ti_key)


# --- the same chain through the webserver: REST extra links, the UI's extra_links view, and Vary: Cookie ---


@pytest.fixture
def webserver_with_gadget_xcom(own_session_interface, shipped_allowlist, monkeypatch, request, _clean_dags):
    """An in-process webserver app whose DAG has a TriggerDagRunOperator and a crafted XCom for its link.

    Its DAG, run and XCom leave the worker's database after the test (``_clean_dags``).
    """
    from airflow.www.app import create_app

    monkeypatch.setenv("AIRFLOW__API__AUTH_BACKENDS", "airflow.providers.fab.auth_manager.api.auth.backend.basic_auth")
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    dag, _ = _dag_run_with_gadget_xcom(f"masking_{request.node.name[5:40]}", start, serialize=True)

    app = create_app(config={"WTF_CSRF_ENABLED": False}, testing=True)
    security_manager = app.appbuilder.sm
    if not security_manager.find_user(username="masking-admin"):
        security_manager.add_user("masking-admin", "Masking", "Admin", "masking-admin@example.com",
                                  security_manager.find_role("Admin"), password="masking-admin")
    return app, dag.dag_id, start


@pytest.mark.db_test
def test_rest_extra_links_answer_200_without_the_gadgets_link(webserver_with_gadget_xcom, caplog):
    app, dag_id, _ = webserver_with_gadget_xcom
    client = app.test_client()

    response = client.get(f"/api/v1/dags/{dag_id}/dagRuns/masking-run/taskInstances/trigger/links",
                          auth=("masking-admin", "masking-admin"))

    assert response.status_code == 200, response.text
    assert response.json == {"Triggered DAG": None}
    assert f"{GADGET} was not found in allow list" in caplog.text
    # CVE-2026-27205: the REST API answer depended on the session (basic auth logs the user in)
    assert "Cookie" in _vary(response)


@pytest.mark.db_test
def test_ui_extra_links_answer_404_naming_the_refused_class(webserver_with_gadget_xcom):
    app, dag_id, start = webserver_with_gadget_xcom
    client = app.test_client()
    login = client.post("/login/", data={"username": "masking-admin", "password": "masking-admin"})
    assert login.status_code == 302, login.text

    response = client.get("/extra_links", query_string={
        "dag_id": dag_id, "task_id": "trigger", "execution_date": start.isoformat(), "link_name": "Triggered DAG",
    })

    assert response.status_code == 404, response.text
    assert response.json["url"] is None
    assert f"{GADGET} was not found in allow list" in response.json["error"]


@pytest.mark.db_test
def test_rest_xcom_deserialize_refuses_the_gadget_with_a_400(webserver_with_gadget_xcom, monkeypatch):
    """CVE-2026-59242's endpoint (off by default) deserializes through the same allowlist."""
    app, dag_id, _ = webserver_with_gadget_xcom
    monkeypatch.setenv("AIRFLOW__API__ENABLE_XCOM_DESERIALIZE_SUPPORT", "True")
    client = app.test_client()

    response = client.get(f"/api/v1/dags/{dag_id}/dagRuns/masking-run/taskInstances/trigger/xcomEntries/"
                          "trigger_run_id", query_string={"deserialize": "true"},
                          auth=("masking-admin", "masking-admin"))

    assert response.status_code == 400, response.text
    assert f"{GADGET} was not found in allow list" in response.json["detail"]
