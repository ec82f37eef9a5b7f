"""Run with a component's environment: the start checks of ``airflow <args>``, then ``airflow teams list``.

``python start_check.py '<json list of the component's airflow arguments>'`` does what the installed
``airflow`` command does before it runs the component (``airflow/__main__.py``: parse the arguments,
the configuration check of every command, the isolation checks, the internal API client or server
set-up of the team) without running it, then runs the installed ``airflow teams list -o json`` command
function in the same process, and prints one JSON object: the teams, the executor option, the database
URL the process ended up with, the team it serves and what its internal API set-up resolved. A refused
configuration exits non-zero with Airflow's own message, as the component would.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys


def main() -> None:
    argv = json.loads(sys.argv[1])
    sys.argv = ["airflow", *argv]
    from airflow.__main__ import configure_internal_api
    from airflow.api_internal.isolation import check_configuration
    from airflow.cli import cli_parser
    from airflow.configuration import conf
    from airflow.teams import internal_api, process_team
    from airflow.teams.cli import check_configuration_at_start, refuse_metadata_db_secrets_commands

    parser = cli_parser.get_parser()
    args = parser.parse_args(argv)
    check_configuration_at_start()
    refuse_metadata_db_secrets_commands()
    check_configuration(args.subcommand)
    configure_internal_api(args, conf)
    internal_api.prepare_command(args)

    team = process_team.serving_team()
    report = {
        "subcommand": args.subcommand,
        "executor": conf.get("core", "executor"),
        "sql_alchemy_conn": conf.get("database", "sql_alchemy_conn"),
        "serving": team,
        "internal_api_server_team": os.environ.get(process_team.SERVED_TEAM_ENV),
    }
    if team is not None and args.subcommand != "internal-api":
        report["endpoint"] = internal_api.endpoint(team)
        report["signing_key"] = internal_api.api_key(team)
    if args.subcommand == "internal-api":
        report["verifying_keys"] = internal_api.verifying_keys(team)

    listed = io.StringIO()
    with contextlib.redirect_stdout(listed):
        teams_args = parser.parse_args(["teams", "list", "--output", "json"])
        teams_args.func(teams_args)
    report["teams"] = json.loads(listed.getvalue())
    print("START-CHECK " + json.dumps(report))


if __name__ == "__main__":
    main()
