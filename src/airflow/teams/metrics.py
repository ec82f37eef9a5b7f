#
# Licensed to the Apache Software Foundation (ASF) under one
# or more contributor license agreements.  See the NOTICE file
# distributed with this work for additional information
# regarding copyright ownership.  The ASF licenses this file
# to you under the Apache License, Version 2.0 (the
# "License"); you may not use this file except in compliance
# with the License.  You may obtain a copy of the License at
#
#   http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing,
# software distributed under the License is distributed on an
# "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
# KIND, either express or implied.  See the License for the
# specific language governing permissions and limitations
# under the License.
"""
Metrics of team DAGs.

Metric names may not contain ``:`` (the stat-name validators drop such metrics), so in multi-team
mode the ``<team>:`` separator inside a metric name is written as ``__``:
``dagrun.duration.success.team_a:etl`` is emitted as ``dagrun.duration.success.team_a__etl``. Every
metric tagged with a team's ``dag_id`` also gets a ``team`` tag (tags keep the real dag_id).
"""

from __future__ import annotations

import functools
from typing import Any

from airflow.teams import ids, multi_team_enabled

METRIC_SEPARATOR = "__"
_METRIC_METHODS = frozenset({"incr", "decr", "gauge", "timing", "timer"})


def metric_name(stat: str | None) -> str | None:
    return ids.replace_separator(stat, METRIC_SEPARATOR) if stat else stat


def team_tags(tags: dict[str, Any] | None, names_embed_tags: bool = False) -> dict[str, Any] | None:
    """Add the ``team`` tag for a team's dag_id; map every value too where tags become part of the name."""
    if not tags:
        return tags
    if isinstance(dag_id := tags.get("dag_id"), str) and (team := ids.team_of(dag_id)) is not None:
        tags = {**tags, "team": team}
    if names_embed_tags:  # any value may name a team DAG (a trigger's consumer, ...)
        tags = {key: metric_name(value) if isinstance(value, str) else value for key, value in tags.items()}
    return tags


class TeamMetrics:
    """Wraps the configured stats logger; only installed in multi-team mode."""

    def __init__(self, logger: Any):
        self._logger = logger
        # InfluxDB-style statsd tags are appended to the metric name, so they must pass its validator.
        self._names_embed_tags = bool(getattr(logger, "influxdb_tags_enabled", False))

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._logger, name)
        if name not in _METRIC_METHODS:
            return attribute

        @functools.wraps(attribute)
        def emit(stat: str | None = None, *args, tags: dict[str, Any] | None = None, **kwargs):
            return attribute(metric_name(stat), *args, tags=team_tags(tags, self._names_embed_tags), **kwargs)

        setattr(self, name, emit)  # built once: later calls do not reach __getattr__
        return emit


def for_teams(logger: Any) -> Any:
    from airflow.metrics.base_stats_logger import NoStatsLogger

    if isinstance(logger, NoStatsLogger) or not multi_team_enabled():
        return logger
    return TeamMetrics(logger)
