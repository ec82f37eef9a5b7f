"""`airflow teams list` and the configuration check at component start (patch teams-registry)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

AIRFLOW = str(Path(sys.executable).parent / "airflow")
TEAMS = {
    "team_a": [
        {"name": "a_celery", "class": "CeleryExecutor",
         "config": {"celery": {"broker_url": "redis://:s3cret@redis-a:6379/0"}}},
        {"name": "a_local", "class": "LocalExecutor"},
    ],
    "team_b": [{"name": "b_local", "class": "LocalExecutor"}],
}


def airflow(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AIRFLOW, *args], capture_output=True, text=True, timeout=120, env=os.environ | env)


def multi_team_env(tmp_path, executor) -> dict[str, str]:
    return {
        "AIRFLOW__CORE__MULTI_TEAM": "True",
        "AIRFLOW__CORE__EXECUTOR": executor if isinstance(executor, str) else json.dumps(executor),
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
        "AIRFLOW__TEAM_B___CORE__DAGS_FOLDER": str(tmp_path / "b1") + "," + str(tmp_path / "b2"),
    }


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_teams_list_shows_executors_overrides_masked_and_folders(tmp_path, output):
    environment = {"AIRFLOW__TEAM_B___CORE__TEAM_ENVIRONMENT": str(tmp_path / "team_b-env")}
    result = airflow("teams", "list", "--output", output, **multi_team_env(tmp_path, TEAMS), **environment)

    assert result.returncode == 0, result.stderr
    printed = "\n".join(line for line in result.stdout.splitlines() if not line.startswith("[20"))  # log lines
    rows = json.loads(printed) if output == "json" else yaml.safe_load(printed)
    assert rows == [
        {"team": "team_a", "dags_folders": [str(tmp_path / "dags" / "team_a")], "executors": [
            {"name": "a_celery", "class": "CeleryExecutor", "config": {"celery.broker_url": "***"}},
            {"name": "a_local", "class": "LocalExecutor", "config": {}},
        ], "environment": "airflow's own"},
        {"team": "team_b", "dags_folders": [str(tmp_path / "b1"), str(tmp_path / "b2")],
         "executors": [{"name": "b_local", "class": "LocalExecutor", "config": {}}],
         "environment": f"{tmp_path / 'team_b-env'} (missing: no bin/python)"},
    ]
    assert "s3cret" not in result.stdout


def test_teams_list_as_a_table(tmp_path):
    result = airflow("teams", "list", "--output", "table", **multi_team_env(tmp_path, TEAMS))

    assert result.returncode == 0, result.stderr
    assert "a_celery (CeleryExecutor; celery.broker_url=***), a_local (LocalExecutor)" in result.stdout
    assert "airflow's own" in result.stdout  # the teams' environment
    assert "s3cret" not in result.stdout


def test_teams_list_without_multi_team():
    result = airflow("teams", "list")

    assert result.returncode == 0
    assert "multi_team is False: this deployment has no teams" in result.stderr


@pytest.mark.parametrize(
    "executor, message",
    [
        ("LocalExecutor", "a single-team executor list, but [core] multi_team is True"),
        ('{"team_a": [', "[core] executor is not valid JSON"),
        ({"x": [{"name": "a", "class": "LocalExecutor"}]}, "invalid team name 'x'"),
        ({"team_a": []}, "team 'team_a' needs a non-empty list of executors"),
        ({"team_a": [{"name": "a", "class": "LocalExecutor", "extra": 1}]}, "unknown key(s) 'extra'"),
        ({"team_a": [{"name": "a", "class": "LocalExecuter"}]}, "class 'LocalExecuter' is neither a core executor"),
    ],
)
@pytest.mark.parametrize("command", [("scheduler",), ("teams", "list"), ("dags", "list")])
def test_a_broken_configuration_stops_components_with_one_message(tmp_path, executor, message, command):
    result = airflow(*command, **multi_team_env(tmp_path, executor))

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("Invalid configuration: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


MISTYPED_CLASS = {"team_a": [{"name": "a", "class": "airflow.executors.local_executor.LocalExecuter"}],
                  "team_b": [{"name": "b", "class": "LocalExecutor"}]}
MISTYPED_LINE = ("team 'team_a', executor 'a': class 'airflow.executors.local_executor.LocalExecuter' cannot be "
                 "imported (ImportError: Module \"airflow.executors.local_executor\" does not define a \"LocalExecuter\" "
                 "attribute/class); fix its 'class' in [core] executor, or install it.")


def test_an_executor_class_that_does_not_import_stops_the_scheduler_in_one_line(tmp_path):
    result = airflow("scheduler", **multi_team_env(tmp_path, MISTYPED_CLASS))

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"Invalid configuration: [core] executor: {MISTYPED_LINE}"
    assert "Traceback" not in result.stderr and "Failed to load CLI commands" not in result.stderr


@pytest.mark.parametrize("command", [("dags", "list", "-o", "json"), ("teams", "list")])
def test_other_commands_warn_in_one_line_of_an_executor_class_that_does_not_import(tmp_path, command):
    result = airflow(*command, **multi_team_env(tmp_path, MISTYPED_CLASS))

    assert f"Warning: [core] executor: {MISTYPED_LINE}" in result.stderr.splitlines()
    assert "Traceback" not in result.stderr and "Failed to load CLI commands" not in result.stderr


def test_teams_doctor_lists_an_executor_class_that_does_not_import(tmp_path):
    result = airflow("teams", "doctor", "-o", "json", **multi_team_env(tmp_path, MISTYPED_CLASS))

    assert result.returncode == 1
    problems = json.loads("\n".join(line for line in result.stdout.splitlines() if not line.startswith("[20")))
    assert {"check": "executors_import", "team": "team_a", "message": MISTYPED_LINE} in problems


def test_a_multi_team_dict_while_multi_team_is_off_stops_components(tmp_path):
    result = airflow("scheduler", AIRFLOW__CORE__EXECUTOR=json.dumps(TEAMS))

    assert result.returncode == 1
    assert "JSON object (the multi-team format), but [core] multi_team is False" in result.stderr


def test_config_commands_still_work_with_a_broken_configuration(tmp_path):
    result = airflow("config", "get-value", "core", "executor", **multi_team_env(tmp_path, "LocalExecutor"))

    assert result.returncode == 0
    assert result.stdout.strip() == "LocalExecutor"


def test_config_list_and_info_hide_sensitive_executor_values(tmp_path):
    env = multi_team_env(tmp_path, TEAMS)

    listed = airflow("config", "list", "--section", "core", "--color", "off", **env)
    info = airflow("info", **env)

    assert listed.returncode == 0 and info.returncode == 0, listed.stderr + info.stderr
    assert '"broker_url": "< hidden >"' in listed.stdout
    assert '"broker_url": "< hidden >"' in info.stdout
    assert "s3cret" not in listed.stdout + info.stdout


def test_team_variables_are_listed_under_their_team_section_with_secrets_hidden(tmp_path):
    script = (
        "from airflow.providers_manager import ProvidersManager; "
        "ProvidersManager().initialize_providers_configuration(); "
        "from airflow.configuration import conf; import json; "
        "print(json.dumps({k: v for k, v in conf.as_dict(display_source=True).items() if 'team' in k}))"
    )
    env = multi_team_env(tmp_path, TEAMS) | {
        "AIRFLOW__TEAM_A___CELERY__BROKER_URL": "redis://:s3cret@team-a/0",
        "AIRFLOW__TEAM_A___CORE__PARALLELISM": "3",
    }

    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ | env)

    sections = json.loads(result.stdout.strip().splitlines()[-1])
    assert sections["team_a=celery"] == {"broker_url": ["< hidden >", "env var"]}
    assert sections["team_a=core"] == {"parallelism": ["3", "env var"]}
    assert set(sections) == {"team_a=celery", "team_a=core", "team_b=core"}  # no bogus section "team_a"
    assert "s3cret" not in result.stdout


def test_teams_doctor_says_each_problem_in_one_line_and_exits_1(tmp_path):
    (tmp_path / "dags" / "team_a").mkdir(parents=True)  # team_b's two folders are missing
    result = airflow("teams", "doctor", "-o", "json", **multi_team_env(tmp_path, TEAMS))

    assert result.returncode == 1, result.stderr
    problems = json.loads("\n".join(line for line in result.stdout.splitlines() if not line.startswith("[20")))
    assert {"check": "team_folders", "team": "team_b", "message": f"The DAG folder {tmp_path / 'b1'} "
            "of team 'team_b' does not exist: its dag-processor will not start. Create it, or set "
            "AIRFLOW__TEAM_B___CORE__DAGS_FOLDER."} in problems
    assert all("\n" not in problem["message"] for problem in problems)
    assert "Traceback (most recent call last)" not in result.stderr


def test_teams_doctor_without_multi_team():
    result = airflow("teams", "doctor")

    assert result.returncode == 0
    assert "multi_team is False: this deployment has no teams" in result.stderr
