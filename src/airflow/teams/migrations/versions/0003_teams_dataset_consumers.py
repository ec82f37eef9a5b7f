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
Add producer-side consent of dataset events (AIP-67).

A DAG's allow_consuming_by_teams, and the teams each dataset event may reach. The events recorded
before reach their producing teams only (those recorded, else the producing DAG's), any team if none.

Revision ID: 5e0a7c3b9d14
Revises: 2b8d4f6a1c93
Create Date: 2026-12-07 11:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy_jsonfield
from alembic import op

from airflow.models.base import StringID
from airflow.settings import json

revision = "5e0a7c3b9d14"
down_revision = "2b8d4f6a1c93"
branch_labels = None
depends_on = None


def upgrade():
    """Create teams_dag_consumers and teams_dataset_event_consumer."""
    op.create_table(
        "teams_dag_consumers",
        sa.Column("dag_id", StringID(), nullable=False),
        sa.Column("allow_consuming_by_teams", sqlalchemy_jsonfield.JSONField(json=json), nullable=False),
        sa.PrimaryKeyConstraint("dag_id", name="teams_dag_consumers_pkey"),
        sa.ForeignKeyConstraint(
            ["dag_id"], ["dag.dag_id"], name="teams_dag_consumers_dag_fkey", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "teams_dataset_event_consumer",
        sa.Column("dataset_event_id", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(50), nullable=False),
        sa.PrimaryKeyConstraint("dataset_event_id", "team", name="teams_dataset_event_consumer_pkey"),
        sa.ForeignKeyConstraint(
            ["dataset_event_id"],
            ["dataset_event.id"],
            name="teams_dataset_event_consumer_event_fkey",
            ondelete="CASCADE",
        ),
    )

    _existing_events_reach_their_producers()


BACKFILL_BATCH = 5000  # events read and written at a time: the memory stays bounded however many there are


def _existing_events_reach_their_producers() -> None:
    from airflow.teams import ids

    bind = op.get_bind()
    consumers = sa.table("teams_dataset_event_consumer", sa.column("dataset_event_id"), sa.column("team"))
    after = -1
    while True:
        events = bind.execute(
            sa.text(
                "SELECT e.id, e.source_dag_id, s.source_teams FROM dataset_event e "
                "LEFT JOIN teams_dataset_event_source s ON s.dataset_event_id = e.id "
                "WHERE e.id > :after ORDER BY e.id LIMIT :batch"
            ),
            {"after": after, "batch": BACKFILL_BATCH},
        ).fetchall()
        if not events:
            return
        rows = []
        for event_id, source_dag_id, source_teams in events:
            if isinstance(source_teams, str):
                source_teams = json.loads(source_teams)
            if source_teams is None:
                team = ids.team_of(source_dag_id) if source_dag_id else None
                source_teams = [team] if team else []
            rows += [
                {"dataset_event_id": event_id, "team": team} for team in sorted(set(source_teams)) or ["*"]
            ]
        op.bulk_insert(consumers, rows)
        after = events[-1][0]


def downgrade():
    """Drop the tables of producer-side consent."""
    op.drop_table("teams_dataset_event_consumer")
    op.drop_table("teams_dag_consumers")
