"""A team's own libraries: ``./breeze start-airflow --teams`` gives the first two teams this DAG and a
``requirements.txt`` pinning different, conflicting versions of one library (``semver``).

Each team's dag-processor, triggerer and tasks run from the team's own environment, built from the fork's
wheels and constraints plus the team's requirements (``docs/teams.md``, "Team environments"). The
task prints, and returns as its XCom, the version it imported and the environment it ran in: side by
side in the UI, ``team_a`` shows semver 2, ``team_b`` semver 3. The DAG file imports ``semver`` at the
top: it parses only in an environment that has it.
"""

from __future__ import annotations

import datetime
import sys

import semver

from airflow import DAG
from airflow.operators.python import PythonOperator


def _show_environment(**context) -> str:
    line = f"{context['dag'].dag_id}: semver {semver.__version__} from {sys.prefix}"
    print(line)
    return line


with DAG(
    dag_id="example_teams_environment",
    description="Prints the version of the team's own library (semver) and the environment it ran in",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["example", "teams"],
) as dag:
    PythonOperator(task_id="show_environment", python_callable=_show_environment)
