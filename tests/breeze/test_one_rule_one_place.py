"""Each rule of the fork is written once and called: a search of the own tree, the hooks in the patch files,
breeze and the tests finds none of the old hand-written forms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
OWN_AND_TOOLS = [*REPO_ROOT.glob("src/**/*.py"), *REPO_ROOT.glob("dev/breeze/src/**/*.py")]


def added_hook_lines():
    for patch in sorted(REPO_ROOT.glob("airflow/*.patch")) + sorted(REPO_ROOT.glob("providers/*/*.patch")):
        for number, line in enumerate(patch.read_text().splitlines(), 1):
            if line.startswith("+") and not line.startswith("+++"):
                yield f"{patch.relative_to(REPO_ROOT)}:{number}", line


def occurrences(pattern: str, files, allowed: dict[str, str], hooks: bool = True) -> list[str]:
    found = []
    for path in files:
        relative = str(path.relative_to(REPO_ROOT))
        if relative in allowed:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(pattern, line):
                found.append(f"{relative}:{number}: {line.strip()}")
    if hooks:
        found += [f"{where}: {line}" for where, line in added_hook_lines() if re.search(pattern, line)]
    return found


RULES = {
    # A path below a folder: airflow.teams.paths (below, within, sql_below).
    "folder containment": (r"rstrip\(os\.sep\) \+ os\.sep", {
        "src/airflow/teams/paths.py": "the rule itself",
        "src/airflow/utils/log/log_file_paths.py": "the log-file-symlinks backport's own check, not a team folder",
    }),
    # The team separator of ids: airflow.teams.ids (split, team_of, qualify, sql_of_team, team_prefix ...).
    "team separator": (r"\bSEPARATOR\b(?!!r\})", {"src/airflow/teams/ids.py": "the rule itself"}),
    # A team's variable name: airflow.teams.config.team_env_var / team_env_prefix.
    "team variable spelling": (r"AIRFLOW__\{", {"src/airflow/teams/config.py": "team_env_prefix itself"}),
    # The team a process serves is set by process_team.serve_team_of_flag / serve_team_of_dag only.
    "the team of a process": (r"(?<!def )\bserve\(|SERVED_TEAM_ENV", {
        "src/airflow/teams/process_team.py": "the rule itself",
    }),
}


@pytest.mark.parametrize("rule", RULES)
def test_the_rule_is_written_once(rule):
    pattern, allowed = RULES[rule]

    assert occurrences(pattern, OWN_AND_TOOLS, allowed) == []


def test_no_test_sets_the_private_team_state_of_a_process():
    tests = [path for path in REPO_ROOT.glob("tests/**/*.py") if path != Path(__file__)]
    pattern = r"_serving_team|getattr\(executor_loader|executor_loader\._"

    assert occurrences(pattern, tests, {}, hooks=False) == []
