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
"""``airflow teams`` commands, the ``--team`` flag of components, and the configuration check at start."""

from __future__ import annotations

import dataclasses
import functools
import sys
from typing import TYPE_CHECKING

from airflow.teams import config, environments, multi_team_enabled, paths, process_team

if TYPE_CHECKING:
    from argparse import Namespace

# Commands that must work with a broken multi-team configuration, so it can be inspected and fixed.
COMMANDS_WITHOUT_CHECK = frozenset({"version", "config", "info", "cheat-sheet"})
MASK = "***"


def check_configuration_at_start() -> None:
    """Exit with one clear message when the executor/teams configuration does not fit the mode."""
    if sys.argv[1:2] and sys.argv[1] in COMMANDS_WITHOUT_CHECK:
        return
    from airflow.configuration import conf

    try:
        if multi_team_enabled():
            config.load()
        else:
            config.check_single_team_executor_value(conf.get("core", "executor"))
    except config.TeamsConfigError as err:
        raise SystemExit(f"Invalid configuration: {err}")
    _check_executors_import()


# The command that loads every team's executors: one that does not import stops it.
COMMANDS_LOADING_EVERY_EXECUTOR = frozenset({"scheduler"})


def _check_executors_import() -> None:
    """
    Say in one line which configured executor class does not import.

    It stops the scheduler, which loads every team's executors, and warns the other commands that have
    executor commands (``teams doctor`` lists it as a problem; a team's own components load no other
    team's executors, which need not be installed in their environment).
    """
    from airflow.cli.command_sources import plugin_commands_unneeded

    if not multi_team_enabled() or plugin_commands_unneeded():
        return
    problems = [message for _, _, message in unimportable_executors()]
    if problems and sys.argv[1:2] and sys.argv[1] in COMMANDS_LOADING_EVERY_EXECUTOR:
        raise SystemExit(f"Invalid configuration: [core] executor: {problems[0]}")
    for message in problems:
        print(f"Warning: [core] executor: {message}", file=sys.stderr)


def at_command_start() -> None:
    """Run the checks of multi-team mode before any command (the one hook in ``airflow/__main__.py``)."""
    check_configuration_at_start()
    refuse_metadata_db_secrets_commands()


def _executor_row(executor: config.ExecutorSpec) -> dict:
    return {
        "name": executor.name,
        "class": executor.class_name,
        "config": {f"{section}.{key}": MASK for section, keys in executor.config.items() for key in keys},
    }


def teams_list(args: Namespace) -> None:
    """List the configured teams with their executors and DAG folders."""
    from airflow.cli.simple_table import AirflowConsole

    if not multi_team_enabled():
        print("[core] multi_team is False: this deployment has no teams.", file=sys.stderr)
        return
    teams = config.load().teams.values()
    if args.output in ("json", "yaml"):
        rows = [
            {
                "team": team.name,
                "executors": [_executor_row(e) for e in team.executors],
                "dags_folders": list(team.dags_folders),
                "environment": environments.describe(team.name),
            }
            for team in teams
        ]
    else:
        rows = [
            {
                "team": team.name,
                "executors": ", ".join(_describe(e) for e in team.executors),
                "dags_folders": ", ".join(team.dags_folders),
                "environment": environments.describe(team.name),
            }
            for team in teams
        ]
    AirflowConsole().print_as(data=rows, output=args.output)


def _describe(executor: config.ExecutorSpec) -> str:
    overrides = " ".join(f"{key}={MASK}" for key in _executor_row(executor)["config"])
    return f"{executor.name} ({executor.class_name}{'; ' + overrides if overrides else ''})"


def executor_names_for_cli() -> list:
    """Return the configured executors, one per class; none when the configuration is broken or not needed."""
    from airflow.cli.command_sources import plugin_commands_unneeded
    from airflow.executors.executor_loader import ExecutorLoader

    if plugin_commands_unneeded():
        return []
    try:
        names = ExecutorLoader.get_executor_names()
    except config.TeamsConfigError:
        return []
    unique = {}
    for name in names:
        unique.setdefault(name.module_path, name)
    if multi_team_enabled():  # a class that does not import is said in one line at start, not here
        broken = {path for _, path, _ in unimportable_executors()}
        return [name for name in unique.values() if name.module_path not in broken]
    return list(unique.values())


def unimportable_executors() -> list[tuple[str, str, str]]:
    """Return (team, module path, one-line message) of each configured executor whose class does not import."""
    return _import_problems(tuple((e.team, e.name, e.class_name) for e in config.load().executors()))


@functools.lru_cache(maxsize=4)
def _import_problems(executors: tuple[tuple[str, str, str], ...]) -> list[tuple[str, str, str]]:
    from airflow.executors.executor_loader import ExecutorLoader
    from airflow.utils.module_loading import import_string

    problems = []
    for team, name, class_name in executors:
        path = ExecutorLoader.executors.get(class_name, class_name)
        try:
            import_string(path)
        except Exception as err:
            problems.append(
                (
                    team,
                    path,
                    f"team {team!r}, executor {name!r}: class {class_name!r} cannot be imported "
                    f"({type(err).__name__}: {err}); fix its 'class' in [core] executor, or install it.",
                )
            )
    return problems


def dag_processor_directory(args: Namespace) -> str:
    """
    Return the folder a ``dag-processor`` processes: in multi-team mode one folder of its ``--team``.

    Without ``--subdir`` it is the team's DAG folder; ``--subdir`` may pick one of the team's folders
    (or a folder inside one) when the team has several.
    """
    import os

    from airflow import settings
    from airflow.utils.cli import process_subdir

    team = process_team.serve_team_of_flag(args, "dag-processor")
    if team is None:
        return args.subdir
    from airflow.teams import tables

    tables.check_migrated()
    folders = config.load().team(team).dags_folders
    requested = process_subdir(args.subdir)
    if requested == os.path.abspath(settings.DAGS_FOLDER) and requested not in folders:
        if len(folders) > 1:
            raise SystemExit(
                f"Team {team!r} has several DAG folders ({', '.join(folders)}): start one dag-processor per "
                "folder with --subdir <folder>."
            )
        requested = folders[0]
    elif not any(paths.within(requested, folder) for folder in folders):
        raise SystemExit(
            f"--subdir {requested} is not a DAG folder of team {team!r} ({', '.join(folders)}); a team's "
            "dag-processor only processes that team's folders."
        )
    if not os.path.isdir(requested):
        raise SystemExit(config.missing_folder_problem(team, requested))
    return requested


def check_scheduler_can_start() -> None:
    """In multi-team mode DAG files are parsed only by each team's standalone dag-processor."""
    from airflow.configuration import conf

    if multi_team_enabled() and not conf.getboolean("scheduler", "standalone_dag_processor"):
        raise SystemExit(
            "In multi-team mode the scheduler does not parse DAG files: set [scheduler] "
            "standalone_dag_processor = True and run one `airflow dag-processor --team <team>` per team."
        )
    from airflow.teams import tables

    tables.check_migrated()
    if multi_team_enabled():
        warn_about_team_settings()


def warn_about_team_settings() -> None:
    """At the scheduler's start: say which settings name no configured team, and which team folder is missing."""
    import logging

    from airflow.teams import doctor

    for problem in (*doctor.team_settings(), *doctor.team_folders()):
        logging.getLogger(__name__).warning("%s", problem.message)


def teams_doctor(args: Namespace) -> None:
    """Check the whole deployment from the scheduler's side: one line per problem, exit 1 if any."""
    import json

    from airflow.teams import doctor

    if not multi_team_enabled():
        print("[core] multi_team is False: this deployment has no teams.", file=sys.stderr)
        return
    problems = doctor.diagnose()
    if args.output == "json":
        print(json.dumps([problem.as_dict() for problem in problems], indent=2))
    else:
        for problem in problems:
            print(problem.line())
        print(f"{len(problems) or 'No'} problem(s) found by {len(doctor.CHECKS)} checks.", file=sys.stderr)
    if problems:
        raise SystemExit(1)


def teams_migrate(args: Namespace) -> None:
    """Move existing DAGs and their history into teams (or back): a dry run unless ``--apply``."""
    import json

    from airflow.teams import migrate

    if not multi_team_enabled():
        raise SystemExit("[core] multi_team is False: configure the teams first, then move DAGs into them.")
    if bool(args.plan) == bool(args.by_folder):
        raise SystemExit("airflow teams migrate takes --plan FILE or --by-folder (one of them).")
    try:
        plan = migrate.read_plan(args.plan) if args.plan else None
        migration = migrate.migrate(plan, apply_it=args.apply, reverse=args.reverse)
    except migrate.MigrationError as err:
        raise SystemExit(str(err))
    if args.output == "json":
        print(json.dumps(dataclasses.asdict(migration) | {"applied": bool(args.apply)}, indent=2))
        return
    for old, new in sorted(migration.renames.items()):
        print(f"{old} -> {new}")
    for column, rows in sorted(migration.rows.items()):
        print(f"  {column}: {rows} row(s)")
    print(f"  DAG permissions (ab_view_menu): {migration.permissions}")
    for reference in migration.references:
        print(reference)
    done = "renamed in one transaction" if args.apply else "would be renamed (dry run: add --apply)"
    print(f"{len(migration.renames)} DAG(s) {done}.", file=sys.stderr)


# Connections/Variables commands that only read through the secrets backends keep working.
SECRETS_BACKEND_READ_COMMANDS = {"connections": {"get", "test"}, "variables": {"get"}}


def refuse_metadata_db_secrets_commands() -> None:
    """In multi-team mode, refuse the connections/variables commands that read or write the metadata DB."""
    group, command = (sys.argv[1:3] + [None, None])[:2]
    if group not in SECRETS_BACKEND_READ_COMMANDS or not multi_team_enabled():
        return
    if command in SECRETS_BACKEND_READ_COMMANDS[group] or command in (None, "-h", "--help"):
        return
    from airflow.teams.secrets_backends import DISABLED_REASON

    allowed = ", ".join(f"`airflow {group} {c}`" for c in sorted(SECRETS_BACKEND_READ_COMMANDS[group]))
    raise SystemExit(
        f"`airflow {group} {command}` is not available. {DISABLED_REASON} Reading through the secrets "
        f"backends still works: {allowed}."
    )
