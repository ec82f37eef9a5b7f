"""The dag-processor, triggerer and internal API commands import neither the auth manager nor the executors
(patch components-cli-without-auth-manager); every other call still does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from airflow.cli.command_sources import plugin_commands_unneeded

AIRFLOW = str(Path(sys.executable).parent / "airflow")

# Build the parser as `airflow <argv>` would, then say which heavy modules that imported.
PROBE = """
import json, sys
sys.argv = ["airflow", *json.loads(sys.argv[1])]
from airflow.cli import cli_parser
parser = cli_parser.get_parser()
print(json.dumps({
    "fab": "flask_appbuilder" in sys.modules,
    "commands": sorted(cli_parser.ALL_COMMANDS_DICT),
}))
"""


def parser_of(*argv: str, tmp_path: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("argv", [["dag-processor", "--help"], ["triggerer"], ["internal-api"]])
def test_a_component_loads_no_auth_manager(argv, tmp_path):
    loaded = parser_of(*argv, tmp_path=tmp_path)

    assert loaded["fab"] is False
    assert "users" not in loaded["commands"]
    assert {"dag-processor", "triggerer", "internal-api", "tasks"} <= set(loaded["commands"])


# `tasks test` deletes its DAG run: the ORM needs the user table the FAB auth manager maps (dag_run_note.user_id).
@pytest.mark.parametrize(
    "argv", [[], ["--help"], ["users", "list"], ["webserver"], ["cheat-sheet"], ["tasks", "test"], ["scheduler"]]
)
def test_help_other_commands_and_the_webserver_load_them_all(argv, tmp_path):
    loaded = parser_of(*argv, tmp_path=tmp_path)

    assert loaded["fab"] is True
    assert {"users", "roles", "scheduler"} <= set(loaded["commands"])


def test_rules():
    assert plugin_commands_unneeded(["airflow", "triggerer", "--team", "a"])
    assert not plugin_commands_unneeded(["airflow", "dags", "list"])
    assert not plugin_commands_unneeded(["airflow"])
    assert not plugin_commands_unneeded(["airflow", "users"])
    assert not plugin_commands_unneeded(["airflow", "-h"])


def test_the_auth_manager_s_commands_still_run():
    result = subprocess.run([AIRFLOW, "users", "--help"], capture_output=True, text=True, check=True)
    assert "create" in result.stdout and "list" in result.stdout
    cheat_sheet = subprocess.run([AIRFLOW, "cheat-sheet"], capture_output=True, text=True, check=True)
    assert "airflow users list" in cheat_sheet.stdout
