"""Task-level DAG references resolved at run time (templated ids) mean the owner's team."""

from __future__ import annotations

from airflow.teams import parsing, references


def test_references_at_run_time_get_the_owner_dags_team():
    assert references.at_run("team_a:etl", "downstream") == "team_a:downstream"
    assert references.at_run("team_a:etl", "team_b:downstream") == "team_b:downstream"
    assert references.at_run("etl", "downstream") == "downstream"
    assert references.at_run("team_a:etl", None) is None
    assert references.at_run("team_a:etl", "{{ params.x }}") == "{{ params.x }}"


def test_references_at_parse_time_use_the_file_team_and_leave_templates_for_run_time():
    assert references.at_parse("downstream") == "downstream"
    with parsing.parsing_for("team_a"):
        assert references.at_parse("downstream") == "team_a:downstream"
        assert references.at_parse("{{ params.x }}") == "{{ params.x }}"
