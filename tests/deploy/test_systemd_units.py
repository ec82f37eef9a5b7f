"""The systemd layout of a multi-team deployment on one VM (deploy/systemd, docs/teams.md): a team's
components run as its own user, from its own environment, without the shared secrets, in a sandbox that
hides the other users' processes; the shared components run as ``airflow``."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
TEAM_UNITS = ("airflow-dag-processor@.service", "airflow-triggerer@.service")
SHARED_UNITS = ("airflow-scheduler.service", "airflow-webserver.service", "airflow-internal-api@.service")
SANDBOX = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
           "ProtectProc": "invisible", "ProcSubset": "pid", "RestrictSUIDSGID": "yes", "UMask": "0077"}


def parse(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file: section -> key -> values (a key may repeat, as EnvironmentFile= does)."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = None
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if match := re.fullmatch(r"\[(\w+)\]", line):
            section = match[1]
            continue
        key, value = line.split("=", 1)
        sections[section][key].append(value)
    return sections


def service(name: str) -> dict[str, list[str]]:
    return parse(UNITS / name)["Service"]


def one(unit: dict[str, list[str]], key: str) -> str:
    values = unit[key]
    assert len(values) == 1, (key, values)
    return values[0]


@pytest.mark.parametrize("name", TEAM_UNITS)
def test_a_team_component_runs_as_the_team_from_its_environment_without_the_shared_secrets(name):
    unit = service(name)
    assert one(unit, "User") == "airflow-%i"
    assert one(unit, "Group") == "airflow-%i"
    command = one(unit, "ExecStart").split()
    assert command[:3] == ["/opt/airflow/teams/%i/venv/bin/python", "-m", "airflow"]
    assert command[-2:] == ["--team", "%i"]
    # Only the common settings and the team's own file: not airflow.env (database URL, keys), no inline value.
    assert unit["EnvironmentFile"] == ["/etc/airflow/common.env", "/etc/airflow/teams/%i.env"]
    assert unit["Environment"] == ["HOME=/var/lib/airflow/teams/%i"]
    assert "-/etc/airflow/airflow.env" in unit["InaccessiblePaths"]
    assert one(unit, "CapabilityBoundingSet") == ""
    assert "AmbientCapabilities" not in unit
    # It writes only its home and its log folder, and reads its own DAG folder.
    assert one(unit, "ReadWritePaths").split() == ["/var/lib/airflow/teams/%i", "/var/log/airflow/team=%i"]
    assert one(unit, "ReadOnlyPaths") == "/srv/airflow/dags/%i"
    assert {key: one(unit, key) for key in SANDBOX} == SANDBOX


@pytest.mark.parametrize("name", SHARED_UNITS)
def test_a_shared_component_runs_as_airflow_from_airflows_environment(name):
    unit = service(name)
    assert one(unit, "User") == "airflow"
    assert one(unit, "ExecStart").startswith("/opt/airflow/venv/bin/python -m airflow ")
    assert "/etc/airflow/airflow.env" in unit["EnvironmentFile"]
    assert {key: one(unit, key) for key in SANDBOX} == SANDBOX
    if name == "airflow-scheduler.service":  # it starts each team's tasks as the team's user
        assert one(unit, "AmbientCapabilities").split() == ["CAP_SETUID", "CAP_SETGID"]
        assert one(unit, "CapabilityBoundingSet").split() == ["CAP_SETUID", "CAP_SETGID"]
    else:
        assert one(unit, "CapabilityBoundingSet") == ""
        assert "AmbientCapabilities" not in unit


def test_a_teams_target_starts_its_three_components():
    target = parse(UNITS / "airflow-team@.target")["Unit"]
    assert one(target, "Wants").split() == [
        "airflow-internal-api@%i.service", "airflow-dag-processor@%i.service", "airflow-triggerer@%i.service"]
    for name in (*TEAM_UNITS, "airflow-internal-api@.service"):
        assert parse(UNITS / name)["Install"]["WantedBy"] == ["airflow-team@%i.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_knows_every_directive(tmp_path):
    """systemd-analyze verify on an instance of each unit: only the missing /opt/airflow interpreters."""
    for path in UNITS.iterdir():
        shutil.copy(path, tmp_path / path.name.replace("@.", "@team_a."))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *sorted(map(str, tmp_path.iterdir()))],
                            capture_output=True, text=True, timeout=120)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if line and not re.search(r"Command /opt/airflow/\S+/bin/python is not executable", line)]
    assert problems == []
