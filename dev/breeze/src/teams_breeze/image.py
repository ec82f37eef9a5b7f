"""``./breeze build-image``: the production image from ``dist/`` with docker, buildah or podman."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from teams_breeze import build, build_constraints
from teams_breeze.console import BreezeError, info, step
from teams_breeze.project import Project

ENGINES = ("docker", "buildah", "podman")
TEAM_DOCKERFILE = "dev/images/team.Dockerfile"
_INSTALL_HINT = (
    "install one, e.g. `apt-get install buildah` (daemonless; where containers cannot nest, "
    "export BUILDAH_ISOLATION=chroot) or start the Docker daemon"
)


def default_tag(project: Project) -> str:
    # Image tags cannot contain '+': 2.11.2+teams.1 becomes 2.11.2-teams.1.
    return f"airflow-teams:{project.fork.dists[0].version}-{project.fork.local_version}"


def _probe(engine: str) -> str | None:
    """Why ``engine`` cannot build here, or None if it can (``<engine> info`` answers)."""
    if shutil.which(engine) is None:
        return "not installed"
    try:
        result = subprocess.run([engine, "info"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "`info` timed out"
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return f"`{engine} info` failed: {lines[-1] if lines else f'exit {result.returncode}'}"
    return None


def select_engine(engine: str | None) -> str:
    if engine is not None:
        if shutil.which(engine) is None:
            raise BreezeError(f"{engine} is not installed; {_INSTALL_HINT}")
        return engine
    tried = []
    for candidate in ENGINES:
        problem = _probe(candidate)
        if problem is None:
            return candidate
        tried.append(f"{candidate}: {problem}")
    raise BreezeError("no container engine can build here (tried " + "; ".join(tried) + f"); {_INSTALL_HINT}")


def build_command(engine: str, project: Project, tag: str, base_image: str | None) -> list[str]:
    command = [engine, "bud" if engine == "buildah" else "build", "--file", str(project.root / "Dockerfile"),
               "--tag", tag, "--build-arg", f"UV_VERSION={project.fork.uv}"]
    if base_image:
        command += ["--build-arg", f"BASE_IMAGE={base_image}"]
    return [*command, str(project.root)]


def _check_inputs(project: Project) -> None:
    install_builds = f"{build_constraints.DIRECTORY}/{build_constraints.INSTALL}.txt"
    for relative in ("Dockerfile", project.fork.constraints, install_builds, "dev/requirements/runtime.txt"):
        if not (project.root / relative).is_file():
            raise BreezeError(f"{relative} is missing")
    wheels = {path.name for path in project.dist_dir.glob("*.whl")}
    for dist in project.fork.dists:
        prefix = f"{build.wheel_prefix(dist)}{build.local_version(project, dist)}-"
        if not any(name.startswith(prefix) for name in wheels):
            raise BreezeError(f"dist/ has no {prefix}*.whl; run `./breeze setup`")


def team_tag(project: Project, team: str) -> str:
    return default_tag(project).replace("airflow-teams:", f"airflow-teams-{team.lower()}:", 1)  # no capitals in names


def team_build_context(project: Project, team: str, requirements: Path, context: Path) -> None:
    """The build context of a team's image; a requirement changing an Airflow pin is refused first."""
    from teams_breeze import team_envs  # needs packaging: in .build/venv (teams_breeze.team_image)

    team_envs.check(team, requirements, team_envs.airflow_pins(project))
    shutil.copy(project.root / TEAM_DOCKERFILE, context / "Dockerfile")
    shutil.copy(requirements, context / "team-requirements.txt")
    (context / "fork-pins.txt").write_text(team_envs.fork_pin_lines(project))


def build_team_image(project: Project, team: str, requirements: Path, tag: str | None, engine: str | None,
                     base_image: str | None) -> int:
    """A team's image: ``base_image`` (default: the fork's image) plus the team's requirements."""
    with tempfile.TemporaryDirectory() as scratch:
        context = Path(scratch)
        team_build_context(project, team, requirements, context)
        tag = tag or team_tag(project, team)
        engine = select_engine(engine)
        command = [engine, "bud" if engine == "buildah" else "build", "--file", str(context / "Dockerfile"),
                   "--tag", tag, "--build-arg", f"BASE_IMAGE={base_image or default_tag(project)}", str(context)]
        return _run_build(engine, command, tag, project.root)


def build_image(project: Project, tag: str | None, engine: str | None, base_image: str | None) -> int:
    _check_inputs(project)
    tag = tag or default_tag(project)
    engine = select_engine(engine)
    command = build_command(engine, project, tag, base_image)
    return _run_build(engine, command, tag, project.root)


def _run_build(engine: str, command: list[str], tag: str, cwd: Path) -> int:
    info("    " + " ".join(command))
    with step(f"Building image {tag} with {engine}"):
        returncode = subprocess.run(command, cwd=cwd).returncode
        if returncode != 0:
            message = f"`{engine} {command[1]}` exited with {returncode}; its output is above"
            if engine == "buildah" and os.environ.get("BUILDAH_ISOLATION") != "chroot":
                message += ("\nhint: where containers cannot nest (e.g. `cgroups in hybrid mode not supported`), "
                            "retry with BUILDAH_ISOLATION=chroot; see docs/image.md")
            raise BreezeError(message)
    runner = "docker" if engine == "docker" else "podman"
    info(f"Built {tag}; try `{runner} run --rm {tag} version`")
    return 0
