"""A team's DAG that uses its team's own plugin: copied by ``./breeze start-airflow --teams`` into every team.

``{{ macros.team_tools.motto() }}`` is the macro of the team's plugin
(``AIRFLOW_HOME/plugins/<team>/example_team_tools.py``): every team renders its own, since a team's
plugins are loaded by the team's processes only. A team without such a plugin fails to render it.
"""

from __future__ import annotations

import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG(
    dag_id="example_teams_plugin",
    description="Renders the macro of this team's own plugin",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["example", "teams", "plugins"],
) as dag:
    BashOperator(task_id="motto", bash_command='echo "motto: {{ macros.team_tools.motto() }}"')
