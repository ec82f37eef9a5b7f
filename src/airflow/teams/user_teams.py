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
"""Which teams a UI/API user belongs to, as answered by the auth manager."""

from __future__ import annotations

from airflow.teams import multi_team_enabled


def current_user_teams() -> list[str]:
    from airflow.www.extensions.init_auth_manager import get_auth_manager

    return sorted(get_auth_manager().get_user_teams())


def dataset_event_kwargs() -> dict:
    """Extra arguments of register_dataset_change() for an event posted through the API."""
    return {"source_teams": current_user_teams()} if multi_team_enabled() else {}
