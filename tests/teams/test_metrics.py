"""Metric names and tags of team DAGs (patch teams-metrics)."""

from __future__ import annotations

from airflow.metrics.base_stats_logger import NoStatsLogger
from airflow.teams import metrics


class RecordingLogger:
    def __init__(self, influxdb_tags_enabled=False):
        self.influxdb_tags_enabled = influxdb_tags_enabled
        self.calls = []

    def incr(self, stat, count=1, rate=1, *, tags=None):
        self.calls.append(("incr", stat, count, tags))

    def timer(self, stat=None, *args, tags=None, **kwargs):
        self.calls.append(("timer", stat, args, tags))


def test_names_lose_the_colon_and_team_dag_tags_gain_the_team():
    logger = RecordingLogger()
    wrapped = metrics.TeamMetrics(logger)

    wrapped.incr("dagrun.duration.success.team_a:etl", 2, tags={"dag_id": "team_a:etl", "run_type": "manual"})
    wrapped.incr("scheduler.heartbeat")
    wrapped.timer("dag.team_a:etl.t.duration", tags={"dag_id": "team_a:etl"})

    assert logger.calls == [
        ("incr", "dagrun.duration.success.team_a__etl", 2, {"dag_id": "team_a:etl", "run_type": "manual", "team": "team_a"}),
        ("incr", "scheduler.heartbeat", 1, None),
        ("timer", "dag.team_a__etl.t.duration", (), {"dag_id": "team_a:etl", "team": "team_a"}),
    ]


def test_tag_values_are_mapped_where_tags_become_part_of_the_name():
    logger = RecordingLogger(influxdb_tags_enabled=True)

    metrics.TeamMetrics(logger).incr("ti.finish", tags={"dag_id": "team_a:etl", "task_id": "t"})

    assert logger.calls == [("incr", "ti.finish", 1, {"dag_id": "team_a__etl", "task_id": "t", "team": "team_a"})]


def test_every_tag_value_that_names_a_team_dag_is_mapped_where_tags_become_part_of_the_name():
    """teams.trigger_denied names its DAG in a 'consumer' tag: with InfluxDB-style tags it was dropped."""
    logger = RecordingLogger(influxdb_tags_enabled=True)

    metrics.TeamMetrics(logger).incr("teams.trigger_denied", tags={"consumer": "team_b:consume", "kind": "dataset"})

    assert logger.calls == [("incr", "teams.trigger_denied", 1, {"consumer": "team_b__consume", "kind": "dataset"})]


def test_the_logger_is_wrapped_only_in_multi_team_mode_with_metrics_on(multi_team):
    logger = RecordingLogger()
    assert metrics.for_teams(logger) is logger

    multi_team({"team_a": [{"name": "a", "class": "LocalExecutor"}]})

    assert isinstance(metrics.for_teams(logger), metrics.TeamMetrics)
    assert isinstance(metrics.for_teams(NoStatsLogger()), NoStatsLogger)
