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
Whether a CLI call needs the commands of the executors and the auth manager, or only Airflow's own.

Loading them imports the auth manager (with FAB: Flask-AppBuilder, connexion and about 470 modules,
26 MB) and every configured executor. A call that runs one of Airflow's own commands, such as
``airflow scheduler``, ``dag-processor``, ``triggerer`` or ``tasks run``, cannot run theirs, so its
parser does without them. ``airflow --help``, a command of theirs, ``webserver`` (which needs the auth
manager) and ``cheat-sheet`` (which lists every command) still load them all.
"""

from __future__ import annotations

import sys
from typing import Sequence

COMMANDS_NEEDING_ALL = frozenset({"webserver", "cheat-sheet"})


def core_commands_suffice(argv: Sequence[str] | None = None) -> bool:
    """Whether ``argv`` (default ``sys.argv``) runs one of Airflow's own commands that needs no others."""
    from airflow.cli.cli_config import core_commands

    argv = sys.argv if argv is None else argv
    if len(argv) < 2 or argv[1] in COMMANDS_NEEDING_ALL:
        return False
    return any(command.name == argv[1] for command in core_commands)


def auth_manager_cli_commands() -> list:
    """Return the auth manager's commands, or none when the call does not need them."""
    if core_commands_suffice():
        return []
    from airflow.www.extensions.init_auth_manager import get_auth_manager_cls

    return get_auth_manager_cls().get_cli_commands()
