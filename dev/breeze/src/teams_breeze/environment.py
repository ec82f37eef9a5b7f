"""The Python environment that runs the patched build: ``.build/venv``, installed from ``dist/`` + constraints."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from pathlib import Path

from teams_breeze import build_constraints
from teams_breeze.console import BreezeError, info, step
from teams_breeze.project import Project

REQUIREMENTS = ("dev/requirements/runtime.txt", "dev/requirements/test.txt")


def uv() -> str:
    """The uv that ./breeze runs with (BREEZE_UV), else the pinned copy it installed, else uv on PATH."""
    if "BREEZE_UV" in os.environ:
        return os.environ["BREEZE_UV"]
    own = sorted((Path(__file__).resolve().parents[4] / ".build").glob("uv-*/bin/uv"))
    return str(own[-1]) if own else "uv"


def _run(args: list[str], what: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise BreezeError(f"{what} failed:\n{result.stdout}\n{result.stderr}")


def _pinned_names(project: Project) -> set[str]:
    return {dist.name for dist in project.fork.dists}


def install(project: Project, wheels: list[Path]) -> None:
    """Install the wheels, the runtime and test requirements and teams_breeze, all under the constraints."""
    constraints = project.root / project.fork.constraints
    if not constraints.exists():
        raise BreezeError(f"{project.fork.constraints} is missing; run `./breeze generate-constraints`")
    install_builds = build_constraints.path(project, build_constraints.INSTALL)
    inputs = [constraints, install_builds, *(project.root / r for r in REQUIREMENTS),
              project.root / "dev/breeze/pyproject.toml"]
    key = hashlib.sha256(b"compile-bytecode\n")
    for path in [*inputs, *wheels]:
        key.update(path.name.encode() + hashlib.sha256(path.read_bytes()).digest())
    stamp = project.venv / ".breeze-installed"
    if stamp.exists() and stamp.read_text() == key.hexdigest():
        return
    if not project.python.exists():
        with step(f"Creating {project.venv.relative_to(project.root)} (Python {project.fork.python})"):
            _run([uv(), "venv", "--quiet", "--python", project.fork.python, str(project.venv)], "uv venv")
    with step("Installing the patched wheels with the constraints and test dependencies"):
        # Bytecode compiled now: with PYTHONDONTWRITEBYTECODE=1 (common in images) nothing caches it later.
        args = [uv(), "pip", "install", "--quiet", "--compile-bytecode", "--python", str(project.python),
                "--constraints", str(constraints), "--build-constraints", str(install_builds)]
        for name in sorted(_pinned_names(project)):
            args += ["--reinstall-package", name]
        args += [str(w) for w in wheels]
        for requirement in REQUIREMENTS:
            args += ["--requirement", str(project.root / requirement)]
        args += ["--editable", str(project.root / "dev" / "breeze")]
        _run(args, "installing the patched build")
    stamp.write_text(key.hexdigest())


def resolve(project: Project, source: Path, output: Path) -> None:
    """Pin ``source``'s requirements into ``output`` for the fork's Python on Linux x86_64."""
    _run([uv(), "pip", "compile", "--quiet", "--no-header", "--no-annotate", "--python-version",
          project.fork.python, "--python-platform", "x86_64-unknown-linux-gnu", "-o", str(output),
          str(source)], "uv pip compile")


def generate_constraints(project: Project) -> Path:
    """Resolve every dependency of the pinned dists and our requirements for the fork's Python.

    Existing pins are kept where they still fit, so adding a requirement changes only what it needs.
    """
    target = project.root / project.fork.constraints
    pinned = _pinned_names(project)
    with tempfile.TemporaryDirectory() as tmp, step(f"Resolving {target.relative_to(project.root)}"):
        source = Path(tmp) / "requirements.in"
        lines = [f"{dist.name}=={dist.version}" for dist in project.fork.dists]
        lines += [f"-r {project.root / r}" for r in REQUIREMENTS]
        source.write_text("\n".join(lines) + "\n")
        resolved = Path(tmp) / "resolved.txt"
        if target.exists():  # uv keeps the pins of an existing output file where they still resolve
            resolved.write_text(target.read_text())
        resolve(project, source, resolved)
        kept = []
        for line in resolved.read_text().splitlines():
            name = re.split(r"[=<>\[ ;]", line, maxsplit=1)[0]
            if line and not line.startswith("#") and name not in pinned:
                kept.append(line)
    header = [
        f"# Constraints for Python {project.fork.python}: every dependency of the fork except the dists it",
        "# builds itself (fork.toml). Regenerate with `./breeze generate-constraints`.",
    ]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(header + kept) + "\n")
    info(f"    {len(kept)} pins")
    for written in build_constraints.generate(project, lambda source, output: resolve(project, source, output)):
        info(f"    {written.relative_to(project.root)}")
    return target
