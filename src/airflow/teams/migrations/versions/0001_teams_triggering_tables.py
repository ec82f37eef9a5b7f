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
"""
Add the multi-team fork's triggering tables (AIP-67).

Revision ID: 7c1e5a9d2f40
Revises:
Create Date: 2026-12-02 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy_jsonfield
from alembic import op

from airflow.models.base import StringID
from airflow.settings import json

revision = "7c1e5a9d2f40"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    """Create the tables of allow_triggering_by_teams and of dataset events' producing teams."""
    op.create_table(
        "teams_dag_triggering",
        sa.Column("dag_id", StringID(), nullable=False),
        sa.Column("allow_triggering_by_teams", sqlalchemy_jsonfield.JSONField(json=json), nullable=False),
        sa.PrimaryKeyConstraint("dag_id", name="teams_dag_triggering_pkey"),
        sa.ForeignKeyConstraint(
            ["dag_id"], ["dag.dag_id"], name="teams_dag_triggering_dag_fkey", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "teams_dataset_event_source",
        sa.Column("dataset_event_id", sa.Integer(), nullable=False),
        sa.Column("source_teams", sqlalchemy_jsonfield.JSONField(json=json), nullable=False),
        sa.PrimaryKeyConstraint("dataset_event_id", name="teams_dataset_event_source_pkey"),
        sa.ForeignKeyConstraint(
            ["dataset_event_id"],
            ["dataset_event.id"],
            name="teams_dataset_event_source_event_fkey",
            ondelete="CASCADE",
        ),
    )


def downgrade():
    """Drop the fork's triggering tables."""
    op.drop_table("teams_dataset_event_source")
    op.drop_table("teams_dag_triggering")
