"""A team's own environment: the fork's wheels and constraints plus the team's requirements, as a venv.

A team declares its extra requirements (libraries, providers) in a requirements file. A requirement that
would change a package Airflow pins (the fork's own dists and every line of the constraints) is refused
with one line before anything is installed; anything else the resolver cannot fit beside the pins is
refused with uv's conclusion, also one line. The environment is a full one: the same patched wheels and
runtime requirements as ``.build/venv``, under the same constraints, plus the team's packages; as a team
image is the fork's image plus the team's packages. Built environments are kept by the hash of what
went in, so a second start (or a second deployment) with the same requirements reuses them.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from teams_breeze import environment
from teams_breeze.console import BreezeError
from teams_breeze.project import Project

# A team's requirements file, at the top of its DAG folder in ./breeze start-airflow.
REQUIREMENTS_FILE = "requirements.txt"
RUNTIME_REQUIREMENTS = "dev/requirements/runtime.txt"
DONE = ".team-environment"


def wheels(project: Project) -> list[Path]:
    built = sorted(project.dist_dir.glob("*.whl"))
    if not built:
        raise BreezeError("dist/ has no wheels of the fork; run ./breeze setup first")
    return built


def fork_pins(project: Project) -> dict[str, str]:
    """The fork's own distributions and their versions, from the names of the built wheels (not on PyPI)."""
    return dict(wheel.name.split("-")[:2] for wheel in wheels(project))


def fork_pin_lines(project: Project) -> str:
    """Constraints pinning the fork's own distributions to the built wheels."""
    return "".join(f"{name}=={version}\n" for name, version in fork_pins(project).items())


def airflow_pins(project: Project) -> dict[str, str]:
    """Every package Airflow pins, by canonical name: the fork's wheels and the constraints."""
    pins = {}
    for line in (project.root / project.fork.constraints).read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split(";")[0].split("==", 1)
            pins[canonicalize_name(name.strip())] = version.strip()
    for name, version in fork_pins(project).items():
        pins[canonicalize_name(name)] = version
    return pins


def read_requirements(team: str, path: Path) -> list[Requirement]:
    """The requirements of ``path``, one per line; a line that is not one is refused with its number."""
    requirements = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as err:
            raise BreezeError(f"team {team}: {path}:{number}: not a requirement ({str(err).splitlines()[0]})")
        if requirement.url:
            raise BreezeError(f"team {team}: {path}:{number}: {requirement.name} names a URL; name a version")
        requirements.append(requirement)
    return requirements


def check(team: str, path: Path, pins: dict[str, str]) -> list[Requirement]:
    """Refuse, with one line naming the package, a requirement that would change a package Airflow pins."""
    requirements = read_requirements(team, path)
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        if name in pins and not requirement.specifier.contains(pins[name], prereleases=True):
            raise BreezeError(
                f"team {team}: {path} asks for {requirement}, but Airflow pins {name}=={pins[name]}; "
                "a team's requirements cannot change a package Airflow pins"
            )
    return requirements


def build(project: Project, team: str, requirements: Path | None, root: Path, python: Path | None = None) -> Path:
    """Build (or reuse) ``team``'s environment below ``root``; return its folder.

    ``requirements`` None: the fork alone. ``python``: the interpreter to base it on (default: the one of
    ``.build/venv``)."""
    python = python or project.python
    inputs = [project.root / project.fork.constraints, project.root / RUNTIME_REQUIREMENTS, *wheels(project)]
    if requirements is not None:
        check(team, requirements, airflow_pins(project))
        inputs.append(requirements)
    key = hashlib.sha256(str(python).encode())
    for path in inputs:
        key.update(path.name.encode() + hashlib.sha256(path.read_bytes()).digest())
    target = root / f"{team}-{key.hexdigest()[:16]}"
    root.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another launcher may be building the same environment
        if not (target / DONE).exists():
            _install(project, team, requirements, target, python)
    return target


def _install(project: Project, team: str, requirements: Path | None, target: Path, python: Path) -> None:
    constraints = project.root / project.fork.constraints
    shutil.rmtree(target, ignore_errors=True)
    fork_pins = target.with_name(target.name + ".pins.txt")
    fork_pins.write_text(fork_pin_lines(project))
    try:
        _uv(team, ["venv", "--quiet", "--python", str(python), str(target)])
        _uv(team, ["pip", "install", "--quiet", "--compile-bytecode", "--python", str(target / "bin" / "python"),
                   "--constraints", str(constraints), "--constraints", str(fork_pins),
                   "--find-links", str(project.dist_dir), *map(str, wheels(project)),
                   "--requirement", str(project.root / RUNTIME_REQUIREMENTS),
                   *(["--requirement", str(requirements)] if requirements else [])])
    finally:
        fork_pins.unlink(missing_ok=True)
    (target / DONE).write_text(requirements.read_text() if requirements else "")


def _uv(team: str, args: list[str]) -> None:
    result = subprocess.run([environment.uv(), *args], capture_output=True, text=True)
    if result.returncode != 0:
        # uv: "error: <what>", then its reasons, wrapped to the terminal's width: joined to one line
        lines = [re.sub(r"^[\s×╰─▶│]+", "", line).strip() for line in result.stderr.splitlines()]
        lines = [line for line in lines if line and not line.startswith("hint")] or ["uv failed"]
        reason = re.sub(r"^(error|cause): ", "", " ".join(lines[1:]) or lines[0])
        raise BreezeError(f"team {team}: its requirements cannot be installed beside Airflow's pins: {reason}")
