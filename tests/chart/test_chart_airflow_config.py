"""The fork itself accepts the configuration the chart generates, component by component.

Each component's environment is taken from the rendered objects (values, the rendered Secrets' values,
``$(VAR)`` references), with its paths moved to a temporary AIRFLOW_HOME (the rendered airflow.cfg and
webserver_config.py written there). With it the installed fork runs its start checks for the component's
real arguments (``start_check.py``: configuration check, isolation checks, the team's internal API
client or server set-up) and ``airflow teams list``; the scheduler's environment also runs the real
``airflow teams list`` and ``airflow config get-value core executor`` commands. No database is reached:
none of these connects to one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.chart.chart_objects import PREFIX, Pod, Rendered, render, team_values

AIRFLOW = str(Path(sys.executable).parent / "airflow")
START_CHECK = str(Path(__file__).with_name("start_check.py"))
CONFIG_DIR = "/opt/airflow/config"


def local_env(pod: Pod, rendered: Rendered, home: Path) -> dict[str, str]:
    """The pod's Airflow environment, runnable here: its configuration files below ``home``."""
    config = rendered.get("ConfigMap", f"{PREFIX}-config", pod.namespace)["data"]
    home.mkdir(parents=True, exist_ok=True)
    for name, text in config.items():
        (home / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
    for key, value in pod.env(rendered).items():
        env[key] = value.replace(CONFIG_DIR, str(home)) if key in ("AIRFLOW_CONFIG", "AIRFLOW__WEBSERVER__CONFIG_FILE") else value
    env["AIRFLOW_HOME"] = str(home)
    return env


def airflow_args(pod: Pod) -> list[str]:
    """The arguments the container gives ``airflow`` (a task pod's come from the executor: a task of its team)."""
    container = pod.main
    if container.get("command") == ["bash", "-c"]:
        return ["users", "list"]  # the create-user job's script runs airflow users/roles commands
    if container["name"] == "base":
        return ["tasks", "run", f"{pod.team}:etl", "extract", "manual__2026-01-01", "--local"]
    return list(container["args"])


def start_check(pod: Pod, rendered: Rendered, home: Path) -> dict:
    result = subprocess.run([sys.executable, START_CHECK, json.dumps(airflow_args(pod))], capture_output=True,
                            text=True, timeout=120, env=local_env(pod, rendered, home), cwd=home)
    assert result.returncode == 0, f"{pod.name} {airflow_args(pod)}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    line = next(line for line in result.stdout.splitlines() if line.startswith("START-CHECK "))
    return json.loads(line.removeprefix("START-CHECK "))


def expected_teams(values_teams: list[dict]) -> list[dict]:
    return [{"team": t["name"],
             "executors": [{"name": f"{t['name']}_{t['executor']}",
                            "class": "CeleryExecutor" if t["executor"] == "celery" else "KubernetesExecutor",
                            "config": {}}],
             "dags_folders": [f"/opt/airflow/dags/{t['name']}"],
             "environment": "airflow's own"} for t in values_teams]  # in an image, the image is the environment


def check_all(pods: list[Pod], rendered: Rendered, tmp_path: Path) -> dict[str, dict]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = pool.map(lambda item: start_check(item[1], rendered, tmp_path / f"home-{item[0]}"), enumerate(pods))
        return {pod.name: report for pod, report in zip(pods, reports)}


def test_every_component_of_two_teams_starts_with_its_generated_configuration(tmp_path):
    teams = team_values(2)
    rendered = render({"teams": teams})
    pods = [p for p in rendered.pods if p.component not in ("postgresql", "redis")]
    assert {p.component for p in pods} == {"scheduler", "webserver", "migrate-database", "create-user",
                                           "internal-api", "dag-processor", "triggerer", "worker"}
    reports = check_all(pods, rendered, tmp_path)
    for pod in pods:
        report = reports[pod.name]
        assert report["teams"] == expected_teams(teams), pod.name
        assert json.loads(report["executor"]) == json.loads(pod.env(rendered)["AIRFLOW__CORE__EXECUTOR"])
        if pod.perimeter:
            # a team's code: no database, its own team, its own internal API and key
            slug = pod.team.replace("_", "-")
            assert report["sql_alchemy_conn"] == "none://", pod.name
            assert report["serving"] == pod.team
            assert report["endpoint"] == f"http://{PREFIX}-{slug}-internal-api.airflow.svc:9080/internal_api/v1/rpcapi"
            assert report["signing_key"] == rendered.secret_data(f"{PREFIX}-{slug}-keys", pod.namespace)["internal-api-secret-key"]
        elif pod.component == "internal-api":
            assert report["internal_api_server_team"] == pod.team == report["serving"]
            assert report["sql_alchemy_conn"].startswith("postgresql://")
            assert report["verifying_keys"] == [rendered.secret_data(
                f"{PREFIX}-{pod.team.replace('_', '-')}-keys", "airflow")["internal-api-secret-key"]]
        else:
            assert report["serving"] is None and report["sql_alchemy_conn"].startswith("postgresql://"), pod.name


def test_an_internal_api_accepts_both_keys_during_a_rotation(tmp_path):
    teams = team_values(2)
    teams[0]["internalApi"] = {"secretKey": "n" * 40, "previousSecretKey": "o" * 40}
    rendered = render({"teams": teams})
    api, worker = rendered.pod("internal-api", "team_01"), rendered.pod("worker", "team_01")
    reports = check_all([api, worker], rendered, tmp_path)
    assert reports[api.name]["verifying_keys"] == ["n" * 40, "o" * 40]
    assert reports[worker.name]["signing_key"] == "n" * 40


def test_the_fork_refuses_a_team_component_without_its_internal_api_key(tmp_path):
    """The check is real: the same start check fails with the fork's message when the key is missing."""
    rendered = render({"teams": team_values(1)})
    worker = rendered.pod("worker", "team_01")
    env = local_env(worker, rendered, tmp_path)
    del env["AIRFLOW__TEAM_01___CORE__INTERNAL_API_SECRET_KEY"]
    result = subprocess.run([sys.executable, START_CHECK, json.dumps(airflow_args(worker))], capture_output=True,
                            text=True, timeout=120, env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert "Invalid configuration: team 'team_01' has no [core] internal_api_secret_key of its own" in result.stderr


@pytest.mark.parametrize("count", [1, 10])
def test_the_installed_cli_lists_the_generated_teams(tmp_path, count):
    teams = team_values(count)
    rendered = render({"teams": teams})
    env = local_env(rendered.pod("scheduler"), rendered, tmp_path)
    listed = subprocess.run([AIRFLOW, "teams", "list", "--output", "json"], capture_output=True, text=True,
                            timeout=120, env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    printed = "\n".join(line for line in listed.stdout.splitlines() if not line.startswith("[20"))
    assert json.loads(printed) == expected_teams(teams)
    executor = subprocess.run([AIRFLOW, "config", "get-value", "core", "executor"], capture_output=True, text=True,
                              timeout=120, env=env, cwd=tmp_path)
    assert executor.returncode == 0, executor.stderr
    assert json.loads(executor.stdout.strip().splitlines()[-1]) == {t["name"]: [{"name": f"{t['name']}_{t['executor']}", "class": (
        "CeleryExecutor" if t["executor"] == "celery" else "KubernetesExecutor")}] for t in teams}
    if count == 10:
        # the last team's task pod starts as well among ten teams
        report = start_check(rendered.pod("worker", "team_10"), rendered, tmp_path / "task-pod")
        assert report["serving"] == "team_10" and report["teams"] == expected_teams(teams)
