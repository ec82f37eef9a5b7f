"""A team component's keys cannot forge a webserver session, and log-server tokens are per team.

Upstream signs the webserver's log requests with ``[webserver] secret_key``, the key that signs every UI
session: a worker or triggerer that serves logs must hold it, and code running there can forge an
Admin's session. Patch ``teams-log-server-keys`` signs them with ``[logging] log_server_secret_key``, per
team in multi-team mode; the chart (``webserver.fetchLogsFromTeamPods``) gives team pods only their team's.

- every value a team pod of the chart holds (its environment, Secrets resolved, and every Secret it
  references: internal API key, log-server key, broker, secrets backend, Fernet key of triggerers...) is
  tried as the key of a forged Admin session cookie against the webserver (securecookie sessions, where
  the key alone makes a session): all refused, while the same forgery with the webserver's key logs in;
- a log-server token signed with team_a's key is refused by team_b's log server;
- the webserver still fetches a team's log from that team's log server, which holds only its own key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# Imported at collection: importing it configures logging, which would drop caplog's handler mid-test.
from airflow.utils.log.file_task_handler import FileTaskHandler
from tests.test_utils.deployment import free_port

TEAMS = {team: [{"name": f"{team}_local", "class": "LocalExecutor"}] for team in ("team_a", "team_b")}
KEYS = {"team_a": "team_a-log-key-" + "a" * 40, "team_b": "team_b-log-key-" + "b" * 40}
WEBSERVER_KEY = "the-webservers-own-secret-key-" + "w" * 34
REL = {team: f"dag_id={team}:etl/run_id=manual/task_id=t/attempt=1.log" for team in TEAMS}


def log_key_variable(team: str) -> str:
    return f"AIRFLOW__{team.upper()}___LOGGING__LOG_SERVER_SECRET_KEY"


@pytest.fixture
def teams_with_logs(multi_team, monkeypatch, tmp_path):
    """The webserver's view: both teams, every team's log key and its own secret_key; a log of each team."""
    multi_team(TEAMS)
    base = tmp_path / "logs"
    for team, rel in REL.items():
        (base / rel).parent.mkdir(parents=True)
        (base / rel).write_text(f"[2024-01-01T00:00:00.000+0000] {{x.py:1}} INFO - a log line of {team}\n")
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(base))
    monkeypatch.setenv("AIRFLOW__WEBSERVER__SECRET_KEY", WEBSERVER_KEY)
    for team, key in KEYS.items():
        monkeypatch.setenv(log_key_variable(team), key)
    return base


def token(key: str, filename: str) -> str:
    from airflow.utils.jwt_signer import JWTSigner

    return JWTSigner(secret_key=key, expiration_time_in_seconds=30,
                     audience="task-instance-logs").generate_signed_token({"filename": filename})


def test_a_token_signed_with_team_a_key_is_refused_by_team_b_log_server(teams_with_logs, monkeypatch, caplog):
    from airflow.teams import process_team
    from airflow.utils.serve_logs import create_app

    process_team.serve("team_b")  # as `triggerer --team team_b` / `celery worker --team`
    monkeypatch.delenv(log_key_variable("team_a"))  # team_b's host holds only team_b's key
    monkeypatch.delenv("AIRFLOW__WEBSERVER__SECRET_KEY")
    client = create_app().test_client()

    def get(key: str, team: str = "team_b"):
        return client.get(f"/log/{REL[team]}", headers={"Authorization": token(key, REL[team])})

    assert get(KEYS["team_a"]).status_code == 403
    assert get(WEBSERVER_KEY).status_code == 403
    assert get(KEYS["team_b"], team="team_a").status_code == 403  # team_b's key, a file of team_a
    ok = get(KEYS["team_b"])  # the control: team_b's own key, team_b's file
    assert ok.status_code == 200 and "a log line of team_b" in ok.text


def test_the_webserver_fetches_a_teams_log_from_that_teams_log_server(teams_with_logs, tmp_path):
    from unittest import mock

    from airflow.utils.state import TaskInstanceState

    port = free_port()
    # team_a's log server: a process serving team_a, with team_a's key only (no webserver key, nothing of team_b)
    env = {k: v for k, v in os.environ.items()
           if k not in ("AIRFLOW__WEBSERVER__SECRET_KEY", log_key_variable("team_b"))}
    script = (
        "import sys\n"
        "from airflow.teams import process_team\n"
        "process_team.serve('team_a')\n"
        "from werkzeug.serving import make_server\n"
        "from airflow.utils.serve_logs import create_app\n"
        "server = make_server('127.0.0.1', int(sys.argv[1]), create_app())\n"
        "print('ready', flush=True)\n"
        "server.serve_forever()\n"
    )
    server = subprocess.Popen([sys.executable, "-c", script, str(port)], env=env, stdout=subprocess.PIPE,
                              stderr=(tmp_path / "log-server.log").open("w"), text=True, start_new_session=True)
    try:
        assert server.stdout.readline().strip() == "ready", (tmp_path / "log-server.log").read_text()[-3000:]
        os.environ["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(port)
        handler = FileTaskHandler(base_log_folder=str(tmp_path / "webserver-has-no-logs"))
        ti = mock.MagicMock(state=TaskInstanceState.SUCCESS, hostname="127.0.0.1", triggerer_job=None,
                            dag_id="team_a:etl")
        messages, logs = handler._read_from_logs_server(ti, REL["team_a"])
    finally:
        os.environ.pop("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", None)
        server.terminate()
        server.wait(timeout=30)

    assert any("Found logs served from host" in m for m in messages), messages
    assert "a log line of team_a" in "".join(logs)


# ---- forged sessions ---------------------------------------------------------------------------------

def values_team_components_hold() -> tuple[str, set[str]]:
    """The chart's webserver key, and every value a team's pod holds (environment and referenced Secrets),
    with the webserver fetching logs from team pods (the setting that used to give them the webserver key)."""
    from tests.chart.chart_objects import NAMESPACE, PREFIX, render, team_values

    rendered = render({"teams": team_values(2), "webserver": {"fetchLogsFromTeamPods": True}})
    webserver_key = rendered.secret_data(f"{PREFIX}-webserver", NAMESPACE)["secret-key"]
    held = set()
    for pod in (p for p in rendered.pods if p.team is not None):  # team pods, task pods, internal APIs, Redis
        for container in pod.containers:
            held.update(v for v in pod.env(rendered, container).values() if v)
        for name in pod.secret_refs():
            held.update(v for v in (rendered.secret_data(name, pod.namespace) or {}).values() if v)
    return webserver_key, held


FORGER_HEADERS = {"User-Agent": "forger/1.0", "X-Forwarded-For": "192.0.2.1"}


def forged_admin_cookie(key: str, user_id: int) -> str:
    """An Admin's session cookie as the holder of ``key`` would make it, with Flask-Login's session identifier
    for the forger's own request headers (so its session protection accepts it)."""
    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface
    from flask_login.utils import _create_identifier

    forger = Flask("forger")
    forger.secret_key = key
    with forger.test_request_context("/", headers=FORGER_HEADERS):
        identifier = _create_identifier()
    return SecureCookieSessionInterface().get_signing_serializer(forger).dumps(
        {"_user_id": str(user_id), "_fresh": True, "_id": identifier, "_permanent": True})


@pytest.mark.db_test
def test_no_key_a_team_component_holds_forges_an_admin_session(monkeypatch):
    from airflow.www.app import create_app

    webserver_key, held = values_team_components_hold()
    assert any("LOG_SERVER" in v or len(v) >= 32 for v in held)  # the pods' keys are in the set
    assert webserver_key not in held
    monkeypatch.setenv("AIRFLOW__WEBSERVER__SECRET_KEY", webserver_key)
    monkeypatch.setenv("AIRFLOW__WEBSERVER__SESSION_BACKEND", "securecookie")
    monkeypatch.setenv("AIRFLOW__API__AUTH_BACKENDS", "airflow.api.auth.backend.session")
    app = create_app(testing=True)
    security_manager = app.appbuilder.sm
    admin = security_manager.find_user(username="forged-admin") or security_manager.add_user(
        "forged-admin", "Forged", "Admin", "forged-admin@example.com", security_manager.find_role("Admin"),
        "not-used")
    cookie_name = app.config["SESSION_COOKIE_NAME"]

    def as_forged(key: str) -> tuple[int, int]:
        client = app.test_client()
        client.set_cookie(cookie_name, forged_admin_cookie(key, admin.id), domain="localhost")
        home = client.get("/home", headers=FORGER_HEADERS).status_code
        client.set_cookie(cookie_name, forged_admin_cookie(key, admin.id), domain="localhost")
        return home, client.get("/api/v1/pools", headers=FORGER_HEADERS).status_code

    # the control: the forgery works with the webserver's own key (so a refusal below is the key's doing)
    assert as_forged(webserver_key) == (200, 200)
    # refused: the UI sends the forger to the login page, the REST API answers 401/403 (not logged in)
    accepted = {value[:12] + "...": codes for value in sorted(held)
                if (codes := as_forged(value))[0] != 302 or codes[1] not in (401, 403)}
    assert accepted == {}, json.dumps(accepted)


def test_a_log_server_of_no_team_verifies_each_file_with_its_teams_key(teams_with_logs):
    """The scheduler's log server (LocalExecutor tasks of every team) serves no team: each file's team key."""
    from airflow.utils.serve_logs import create_app

    client = create_app().test_client()

    def status(key: str, team: str) -> int:
        return client.get(f"/log/{REL[team]}", headers={"Authorization": token(key, REL[team])}).status_code

    assert status(KEYS["team_a"], "team_a") == 200
    assert status(KEYS["team_b"], "team_b") == 200
    assert status(KEYS["team_a"], "team_b") == 403
    assert status(KEYS["team_b"], "team_a") == 403
    assert status(WEBSERVER_KEY, "team_a") == 403  # a team with its own key: the global key is not enough
