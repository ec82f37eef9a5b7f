"""Pins of the build environments: every build backend and what it pulls, one file per build.

Each pinned sdist gets ``constraints/build/<dist>.txt``, resolved from its own ``[build-system]
requires`` (read from the archive, nothing built). ``install.txt`` pins what the venv install builds
from source: ``teams_breeze`` itself and the runtime dependencies that PyPI has only as sdists, which
uv builds with setuptools' legacy backend.
"""

from __future__ import annotations

import tarfile
import tempfile
import tomllib
from pathlib import Path

from teams_breeze import artifacts
from teams_breeze.console import BreezeError, step
from teams_breeze.project import Dist, Project

DIRECTORY = "constraints/build"
INSTALL = "install"
# What pip and uv use for an sdist without a [build-system] table (PEP 517's legacy fallback).
LEGACY_REQUIRES = ["setuptools>=40.8.0", "wheel"]


def path(project: Project, name: str) -> Path:
    pinned = project.root / DIRECTORY / f"{name}.txt"
    if not pinned.exists():
        raise BreezeError(f"{DIRECTORY}/{name}.txt is missing; run `./breeze generate-constraints`")
    return pinned


def for_dist(project: Project, dist: Dist) -> Path:
    return path(project, dist.name)


def sdist_build_requires(sdist: Path) -> list[str]:
    """``[build-system] requires`` of the sdist's top-level pyproject.toml."""
    with tarfile.open(sdist) as archive:
        member = next((m for m in archive.getmembers() if m.name.count("/") == 1 and
                       m.name.endswith("/pyproject.toml")), None)
        if member is None:
            return list(LEGACY_REQUIRES)
        data = tomllib.loads(archive.extractfile(member).read().decode())
    return data.get("build-system", {}).get("requires", list(LEGACY_REQUIRES))


def _compile(project: Project, name: str, requires: list[str], resolve) -> Path:
    target = project.root / DIRECTORY / f"{name}.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "requirements.in"
        source.write_text("\n".join(requires) + "\n")
        resolved = Path(tmp) / "resolved.txt"
        if target.exists():  # keep the pins that still fit, as for the runtime constraints
            resolved.write_text(target.read_text())
        resolve(source, resolved)
        pins = [line for line in resolved.read_text().splitlines() if line and not line.startswith("#")]
    what = "the venv install's source builds" if name == INSTALL else f"{name}'s wheel"
    header = [
        f"# Build environment of {what}: its build requirements and everything they pull.",
        "# Regenerate with `./breeze generate-constraints` (docs/reproducibility.md).",
    ]
    target.write_text("\n".join(header + pins) + "\n")
    return target


def generate(project: Project, resolve) -> list[Path]:
    """Re-resolve every build constraints file; ``resolve(source, output)`` runs the resolver."""
    written = []
    with step(f"Resolving {DIRECTORY}/"):
        for dist in project.fork.dists:
            requires = sdist_build_requires(artifacts.fetch(project, dist))
            written.append(_compile(project, dist.name, requires, resolve))
        breeze_pyproject = tomllib.loads((project.root / "dev/breeze/pyproject.toml").read_text())
        install_requires = sorted({*breeze_pyproject["build-system"]["requires"], *LEGACY_REQUIRES})
        written.append(_compile(project, INSTALL, install_requires, resolve))
    return written
