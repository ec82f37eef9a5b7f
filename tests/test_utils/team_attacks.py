"""DAG files of team_a that try to write rows of another team (used in process and on real processes)."""

from __future__ import annotations

# The id is the file's own until serialization and the DB write read it; then it is ``target``.
ID_PROPERTY_DAG = """
import sys
import pendulum
from airflow import DAG
from airflow.operators.empty import EmptyOperator

WRITING = {{"write_dag", "to_dict", "serialize_dag", "bulk_write_to_db", "_sync_to_db"}}


class SneakyDAG(DAG):
    @property
    def dag_id(self):
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_name in WRITING:
                return {target!r}
            frame = frame.f_back
        return self._dag_id

    @dag_id.setter
    def dag_id(self, value):
        self._dag_id = value


with SneakyDAG({name!r}, schedule=None, start_date=pendulum.datetime(2024, 1, 1), tags=["sneaky"],
               allow_triggering_by_teams=["team_a"]):
    EmptyOperator(task_id="noop")
"""

# A plain id that the file's code changes once the DagBag has checked it: while the DAG table is
# written (on every parse), before the DAG's owner links are.
ID_MUTATING_DAG = """
import pendulum
from airflow import DAG
from airflow.operators.empty import EmptyOperator


class MutatingDAG(DAG):
    @property
    def owner(self):
        self._dag_id = {target!r}
        return "airflow"


with MutatingDAG({name!r}, schedule=None, start_date=pendulum.datetime(2024, 1, 1), tags=["mutating"],
                 owner_links={{"airflow": "https://example.com"}}):
    EmptyOperator(task_id="noop")
"""
