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
Whether a CLI call needs the commands of the executors and the auth manager.

Loading them imports the auth manager (with FAB: Flask-AppBuilder, connexion and about 470 modules,
26 MB) and every configured executor. The long-running components that never use the auth manager, the
dag-processor, the triggerer and the internal API, do without them. Every other call keeps loading
them: besides adding commands, loading the FAB auth manager maps its user table, which the ORM needs to
delete a DAG run or task instance with a note (``airflow tasks test`` does).
"""

from __future__ import annotations

import sys
from typing import Sequence

COMPONENTS_WITHOUT_AUTH_MANAGER = frozenset({"dag-processor", "triggerer", "internal-api"})


def plugin_commands_unneeded(argv: Sequence[str] | None = None) -> bool:
    """Whether ``argv`` (default ``sys.argv``) runs a component that needs no executor's or auth manager's command."""
    argv = sys.argv if argv is None else argv
    return len(argv) > 1 and argv[1] in COMPONENTS_WITHOUT_AUTH_MANAGER


def auth_manager_cli_commands() -> list:
    """Return the auth manager's commands, or none when the call does not need them."""
    if plugin_commands_unneeded():
        return []
    from airflow.www.extensions.init_auth_manager import get_auth_manager_cls

    return get_auth_manager_cls().get_cli_commands()
