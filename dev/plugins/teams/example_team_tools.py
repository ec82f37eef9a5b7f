"""A team's own plugin: ``./breeze start-airflow --teams`` copies it into every new team's plugins folder.

Its place makes it the team's: ``AIRFLOW_HOME/plugins/<team>/``, the team's ``[core] plugins_folder`` by
default. Only the team's processes (its dag-processor, triggerer, workers and tasks) import it; the
scheduler, the webserver, the internal APIs and the other teams' processes never do. Every team's copy
has the same plugin name and macro, so the template ``{{ macros.team_tools.motto() }}`` (in
``example_teams_plugin``) renders each team's own. A team plugin's web views would be ignored with one
warning in the team's logs: serving them would run the team's code in the shared webserver.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

TEAM = "team_a"  # start-airflow --teams writes the team here


def motto() -> str:
    """Return the team's motto (rendered by the team's tasks only)."""
    return f"{TEAM} renders {TEAM}'s own macro"


class TeamTools(AirflowPlugin):
    """The team's macros: ``{{ macros.team_tools.motto() }}``."""

    name = "team_tools"
    macros = [motto]
