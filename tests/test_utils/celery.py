"""Celery pieces of multi-team end-to-end tests: executor entries and real `airflow celery worker --team`."""

from __future__ import annotations

from teams_breeze.services import free_port


def celery_executor(name: str, **celery_config: str) -> dict:
    """An entry of the multi-team ``[core] executor`` dict, optionally with its own ``[celery]`` options."""
    entry: dict = {"name": name, "class": "CeleryExecutor"}
    if celery_config:
        entry["config"] = {"celery": celery_config}
    return entry


def use_team_redis(deployment, team: str, server) -> None:
    """Give ``team`` its own broker (db 0) and result backend (db 1) on ``server``."""
    deployment.env[f"AIRFLOW__{team.upper()}___CELERY__BROKER_URL"] = server.url(0)
    deployment.env[f"AIRFLOW__{team.upper()}___CELERY__RESULT_BACKEND"] = server.url(1)


def start_worker(deployment, name: str, team: str, env: dict | None = None) -> None:
    """Start a real worker for ``team`` (``WORKER`` in its environment is ``name``) and wait until it is ready."""
    worker_env = {"WORKER": name, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()), **(env or {})}
    deployment.start(name, "celery", "worker", "--team", team, "--concurrency", "2",
                     "--celery-hostname", f"{name}@%h", env=worker_env)
    deployment.wait_for(lambda: "ready." in deployment.log_of(name), f"celery worker {name}", timeout=90)
