"""A team's own environment (``teams_breeze.team_envs``): a requirement that would change a package Airflow
pins is refused in one line before anything is installed; what uv cannot fit is refused in one line too."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from teams_breeze import team_envs
from teams_breeze.console import BreezeError
from teams_breeze.project import Project
from teams_breeze.start_airflow import Launcher, parser

BREEZE_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pins() -> dict[str, str]:
    return team_envs.airflow_pins(Project(BREEZE_ROOT))


def refusal(team: str, path: Path, pins: dict[str, str]) -> str:
    with pytest.raises(BreezeError) as raised:
        team_envs.check(team, path, pins)
    message = str(raised.value)
    assert "\n" not in message, message
    return message


def test_airflow_pins_are_the_constraints_and_the_forks_own_wheels(pins):
    assert pins["apache-airflow"].startswith("2.11.2+teams.")
    assert pins["requests"] == next(
        line.split("==")[1] for line in (BREEZE_ROOT / "constraints" / "constraints-3.11.txt").read_text().splitlines()
        if line.startswith("requests==")
    )


@pytest.mark.parametrize("requirement, package", [
    ("requests==1.0.0", "requests"),
    ("apache-airflow<2.11", "apache-airflow"),
    ("Flask_AppBuilder>=99", "flask-appbuilder"),
])
def test_a_requirement_changing_an_airflow_pin_is_refused_naming_the_package(tmp_path, pins, requirement, package):
    path = tmp_path / "requirements.txt"
    path.write_text(f"# team_a's libraries\nsemver==3.0.4\n{requirement}  # too old\n")
    message = refusal("team_a", path, pins)
    assert message.startswith(f"team team_a: {path} asks for ")
    assert f"Airflow pins {package}=={pins[package]}" in message


def test_requirements_that_keep_the_pins_pass(tmp_path, pins):
    path = tmp_path / "requirements.txt"
    path.write_text(f"semver==2.13.0\nrequests>=2\napache-airflow-providers-http\nrequests=={pins['requests']}\n")
    assert [str(r) for r in team_envs.check("team_a", path, pins)] == [
        "semver==2.13.0", "requests>=2", "apache-airflow-providers-http", f"requests=={pins['requests']}"]


@pytest.mark.parametrize("line, reason", [
    ("semver 3.0.4", "not a requirement"),
    ("--index-url https://example.invalid/simple", "not a requirement"),
    ("semver @ https://example.invalid/semver.whl", "names a URL"),
])
def test_a_line_that_is_not_a_plain_requirement_is_refused_with_its_number(tmp_path, pins, line, reason):
    path = tmp_path / "requirements.txt"
    path.write_text(f"semver==3.0.4\n{line}\n")
    message = refusal("team_b", path, pins)
    assert message.startswith(f"team team_b: {path}:2: ")
    assert reason in message


def test_what_uv_cannot_install_is_refused_in_one_line(tmp_path):
    """A package the index does not have: uv's conclusion, one line, before the team's components start."""
    path = tmp_path / "requirements.txt"
    path.write_text("teams-fork-no-such-package-anywhere==1.0\n")
    with pytest.raises(BreezeError) as raised:
        team_envs.build(Project(BREEZE_ROOT), "team_a", path, tmp_path / "envs")
    message = str(raised.value)
    assert "\n" not in message, message
    assert message.startswith("team team_a: its requirements cannot be installed beside Airflow's pins: ")
    assert "teams-fork-no-such-package-anywhere" in message
    assert not list((tmp_path / "envs").glob("team_a-*/" + team_envs.DONE))


def test_start_airflow_refuses_a_conflicting_team_requirement_before_starting_anything(tmp_path):
    dags = tmp_path / "dags"
    for team in ("team_a", "team_b"):
        (dags / team).mkdir(parents=True)
    (dags / "team_b" / "requirements.txt").write_text("pendulum<3\n")
    args = parser(Project(BREEZE_ROOT)).parse_args(
        ["--airflow-home", str(tmp_path / "home"), "--dags-folder", str(dags), "--teams", "team_a,team_b"])
    launcher = Launcher(Project(BREEZE_ROOT), args)
    launcher.prepare_home()
    with pytest.raises(BreezeError, match=r"^team team_b: .* asks for pendulum<3, but Airflow pins pendulum==3\."):
        launcher.build_team_environments()
    assert launcher.team_environments == {}


def test_a_team_image_is_refused_before_any_engine_runs(tmp_path, monkeypatch):
    from teams_breeze import image

    monkeypatch.setattr(image, "select_engine", lambda engine: pytest.fail("an engine was chosen"))
    path = tmp_path / "requirements.txt"
    path.write_text("pendulum<3\n")
    with pytest.raises(BreezeError, match=r"^team team_b: .* asks for pendulum<3, but Airflow pins pendulum==3\.") as raised:
        image.build_team_image(Project(BREEZE_ROOT), "team_b", path, tag=None, engine=None, base_image=None)
    assert "\n" not in str(raised.value)


def test_a_team_image_is_the_forks_image_plus_the_teams_requirements_under_the_pins(tmp_path, monkeypatch):
    """The build: the team Dockerfile FROM the fork's image, the team's requirements, the fork's own pins."""
    from teams_breeze import image

    project = Project(BREEZE_ROOT)
    path = tmp_path / "requirements.txt"
    path.write_text("semver==3.0.4\n")
    built = {}

    def fake_run(command, cwd):
        context = Path(command[-1])
        built.update(command=command, files={p.name: p.read_text() for p in context.iterdir()})
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(image, "select_engine", lambda engine: "buildah")
    monkeypatch.setattr(image.subprocess, "run", fake_run)
    assert image.build_team_image(project, "Team_B", path, tag=None, engine=None, base_image=None) == 0

    fork_tag = image.default_tag(project)
    assert built["command"][:2] == ["buildah", "bud"]
    assert built["command"][built["command"].index("--tag") + 1] == fork_tag.replace("airflow-teams:",
                                                                                    "airflow-teams-team_b:")
    assert f"BASE_IMAGE={fork_tag}" in built["command"]
    assert built["files"]["team-requirements.txt"] == "semver==3.0.4\n"
    assert built["files"]["fork-pins.txt"] == team_envs.fork_pin_lines(project)
    assert f"apache_airflow=={team_envs.airflow_pins(project)['apache-airflow']}\n" in built["files"]["fork-pins.txt"]
    dockerfile = built["files"]["Dockerfile"]
    assert "FROM ${BASE_IMAGE}" in dockerfile
    assert "--constraint /tmp/constraints-3.11.txt --constraint /tmp/fork-pins.txt" in dockerfile
