"""An isolated team's task processes are forks of a credential-less task fork server
(airflow.teams.task_fork_server): the server starts once per LocalExecutor worker, not once per task."""

from __future__ import annotations

import os

import psutil
import pytest

from airflow.teams.task_fork_server import ForkServerClient


@pytest.fixture
def env(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "_AIRFLOW"))}
    env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="none://",
               AIRFLOW__CORE__INTERNAL_API_URL="http://127.0.0.1:9")  # not called by these commands
    return env


@pytest.fixture
def client():
    client = ForkServerClient()
    yield client
    client.close()


def test_each_command_runs_in_a_fork_of_one_server_and_reports_its_exit_code(client, env, capfd):
    assert client.run(["airflow", "config", "get-value", "database", "sql_alchemy_conn"], env) == 0
    server = client.process.pid
    assert client.run(["airflow", "config", "get-value", "core", "parallelism"],
                      env | {"AIRFLOW__CORE__PARALLELISM": "7"}) == 0  # e.g. a task's parsing context
    assert client.run(["airflow", "tasks", "run"], env) == 2  # argparse: the arguments are missing

    assert client.process.pid == server  # no new interpreter for the later commands
    assert psutil.Process(server).children() == []  # each fork was reaped
    out, err = capfd.readouterr()
    assert "none://\n7\n" in out  # each command ran with its own environment
    assert "the following arguments are required" in err


def test_a_command_that_exits_with_a_message_prints_it_and_fails(client, env, capfd):
    # `airflow` refuses an isolated component whose internal API URL is not http(s), with one line
    assert client.run(["airflow", "version"], env) == 0  # the server, started with a valid environment
    isolated = env | {"AIRFLOW__CORE__DATABASE_ACCESS_ISOLATION": "True", "AIRFLOW__CORE__INTERNAL_API_URL": "ftp://x"}
    assert client.run(["airflow", "triggerer"], isolated) == 1

    assert "[core] internal_api_url is 'ftp://x'; it must be an http:// or https:// URL" in capfd.readouterr().err


def test_a_server_that_died_fails_no_later_task(client, env):
    assert client.run(["airflow", "version"], env) == 0
    first = client.process
    first.kill()
    first.wait()

    assert client.run(["airflow", "version"], env) == 0  # a new server
    assert client.process.pid != first.pid


def test_closing_the_client_stops_the_server(client, env):
    client.run(["airflow", "version"], env)
    server = client.process

    client.close()

    assert server.returncode == 0  # it read the end of its command pipe and returned
