"""Team plugins (patch teams-plugins, airflow.teams.plugins): a team's plugin runs in its team's processes only.

The plugins folder holds a shared plugin and, in ``plugins/team_a``, a plugin of team_a; each writes a probe
line (its name, pid, the team the process serves, its command line) when its module is imported, and has a
macro and a web blueprint. The shared probe's lines are the positive signal that a process loaded plugins:
in each such shared process (scheduler, webserver, internal API) and team_b process, team_a's probe is
absent. Direct mode loads plugins when ``airflow`` is imported (``[core] lazy_load_plugins = False``: a team's
plugins are added when the process learns its team); isolated mode loads them lazily, as by default.
"""

from __future__ import annotations

import pytest
import requests
from teams_breeze.services import free_port

from tests.test_utils.deployment import local_executors

pytestmark = [pytest.mark.e2e, pytest.mark.db_isolation]

PROBE = """
import os
import sys

from flask import Blueprint

from airflow.plugins_manager import AirflowPlugin

served = os.environ.get("_AIRFLOW_TEAMS_SERVED_TEAM", "-")
if os.environ.get("_AIRFLOW_TEAMS_NO_TEAM_CODE"):  # a team's internal API
    served += "(internal-api)"
with open({log!r}, "a") as probe_log:
    probe_log.write(f"{plugin} {{os.getpid()}} {{served}} {{' '.join(sys.argv)[:300]}}\\n")

views = Blueprint("{plugin}", __name__, url_prefix="/{plugin}")
views.add_url_rule("/", "hello", lambda: "{plugin} view")


def greet():
    return "{plugin} macro says hello"


class Probe(AirflowPlugin):
    name = "{plugin}"
    macros = [greet]
    flask_blueprints = [views]
"""

USES_MACRO = """
    import pendulum
    from airflow import DAG
    from airflow.operators.bash import BashOperator

    with DAG("uses_{plugin}", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        BashOperator(task_id="greet", bash_command="echo GREETING {{{{ macros.{plugin}.greet() }}}}")
"""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres_server, db_access):
    from tests.test_utils.deployment import Deployment

    root = tmp_path_factory.mktemp("plugins")
    database = postgres_server.create_database(f"e2e_plugins_{root.name.replace('-', '_')}")
    deployment = Deployment(root, database, local_executors("team_a", "team_b"), isolated=db_access == "isolated",
                            core__lazy_load_plugins=str(db_access == "isolated"), webserver__workers="1")
    deployment.probe_log = root / "imports.log"
    plugins = deployment.home / "plugins"
    (plugins / "team_a").mkdir(parents=True)
    (plugins / "shared_probe.py").write_text(PROBE.format(log=str(deployment.probe_log), plugin="shared_tools"))
    (plugins / "team_a" / "team_a_probe.py").write_text(PROBE.format(log=str(deployment.probe_log),
                                                                      plugin="team_a_tools"))
    for team, plugin in (("team_a", "team_a_tools"), ("team_a", "shared_tools"), ("team_b", "team_a_tools"),
                         ("team_b", "shared_tools")):
        deployment.write_dag(team, f"uses_{plugin}.py", USES_MACRO.format(plugin=plugin))
    deployment.migrate()
    deployment.start_scheduler_and_processors(("team_a", "team_b"), active_dags=4)
    for team in ("team_a", "team_b"):
        deployment.start(f"triggerer-{team}", "triggerer", "--team", team,
                         env={"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())})
    deployment.start_webserver()
    deployment.wait_for_webserver()
    yield deployment
    deployment.stop_all()


def imports(deployment) -> list[tuple[str, int, str, str]]:
    """(plugin, pid, served team, command line) of each import of a probe module."""
    lines = deployment.probe_log.read_text().splitlines() if deployment.probe_log.exists() else []
    return [(plugin, int(pid), team, argv) for plugin, pid, team, argv in (line.split(" ", 3) for line in lines)]


def test_a_teams_macro_works_in_its_teams_templates_only(deployment):
    for dag_id in ("team_a:uses_team_a_tools", "team_a:uses_shared_tools", "team_b:uses_team_a_tools",
                   "team_b:uses_shared_tools"):
        deployment.airflow("dags", "trigger", dag_id)

    assert deployment.wait_for_dag_run("team_a:uses_team_a_tools") == "success"
    assert "GREETING team_a_tools macro says hello" in deployment.task_logs("team_a:uses_team_a_tools")
    for team in ("team_a", "team_b"):  # a shared plugin's macro works in every team
        assert deployment.wait_for_dag_run(f"{team}:uses_shared_tools") == "success"
        assert "GREETING shared_tools macro says hello" in deployment.task_logs(f"{team}:uses_shared_tools")
    assert deployment.wait_for_dag_run("team_b:uses_team_a_tools") == "failed"
    log = deployment.task_logs("team_b:uses_team_a_tools")
    assert "UndefinedError" in log and "team_a_tools" in log and "macro says hello" not in log


def test_a_teams_plugin_module_is_imported_by_its_teams_processes_only(deployment):
    # Runs of both teams' DAGs (tasks, and the scheduler's listener hooks as the runs finish) load plugins.
    for dag_id in ("team_a:uses_team_a_tools", "team_b:uses_shared_tools"):
        deployment.airflow("dags", "trigger", dag_id)
        deployment.wait_for_dag_run(dag_id)
    scheduler, webserver = deployment.processes["scheduler"].pid, deployment.processes["webserver"].pid
    assert requests.get(f"{deployment.url}/shared_tools/", timeout=30).text == "shared_tools view"

    def loaded_by(predicate) -> set[str]:
        return {plugin for plugin, pid, team, argv in imports(deployment) if predicate(pid, team, argv)}

    # the positive signals: these processes loaded plugins (the shared one; the webserver serves its view) ...
    deployment.wait_for(lambda: "shared_tools" in loaded_by(lambda pid, team, argv: pid == scheduler),
                        "the scheduler to load the plugins")
    assert "shared_tools" in loaded_by(lambda pid, team, argv: "dag-processor --team team_b" in argv), (
        imports(deployment))
    if not deployment.isolated:  # plugins loaded at import: each triggerer loaded them, team_a's its own too
        for team, expected in (("team_a", {"shared_tools", "team_a_tools"}), ("team_b", {"shared_tools"})):
            deployment.wait_for(lambda team=team, expected=expected: loaded_by(
                lambda pid, _, argv: f"triggerer --team {team}" in argv) == expected, f"{team}'s triggerer plugins")
    if deployment.isolated:  # team_a's internal API loaded plugins: the shared ones
        assert "shared_tools" in loaded_by(lambda pid, team, argv: team == "team_a(internal-api)"), imports(deployment)
    # ... team_a's dag-processor loaded team_a's plugin (and its task used the macro: the test above) ...
    assert "team_a_tools" in loaded_by(lambda pid, team, argv: team == "team_a" and "dag-processor" in argv)
    # ... and no other process did: not the scheduler, the webserver, team_a's internal API or team_b's processes
    for plugin, pid, team, argv in imports(deployment):
        if plugin == "team_a_tools":
            assert team == "team_a" and pid not in (scheduler, webserver), (pid, team, argv)
            assert "webserver" not in argv and "gunicorn" not in argv, argv
    # The webserver does not serve team_a's blueprint; team_a's processes say in one line that they dropped it.
    assert requests.get(f"{deployment.url}/team_a_tools/", timeout=30).status_code == 404
    assert ("Plugin team_a_tools of team team_a: ignoring flask_blueprints: shared components (scheduler, "
            "webserver) never run a team's plugin code") in deployment.log_of("dag-processor-team_a")
