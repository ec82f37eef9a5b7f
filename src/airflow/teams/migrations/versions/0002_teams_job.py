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
Add the team of the jobs that a team's internal API creates (AIP-67).

Revision ID: 2b8d4f6a1c93
Revises: 7c1e5a9d2f40
Create Date: 2026-12-03 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2b8d4f6a1c93"
down_revision = "7c1e5a9d2f40"
branch_labels = None
depends_on = None


def upgrade():
    """Create teams_job."""
    op.create_table(
        "teams_job",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(50), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name="teams_job_pkey"),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name="teams_job_job_fkey", ondelete="CASCADE"),
    )


def downgrade():
    """Drop teams_job."""
    op.drop_table("teams_job")
