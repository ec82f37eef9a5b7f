"""Download the pinned sdists once and refuse any byte that does not match its sha256 pin."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from teams_breeze.console import BreezeError, step
from teams_breeze.project import Dist, Project


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(dist: Dist, path: Path) -> Path:
    actual = sha256_of(path)
    if actual != dist.sha256:
        raise BreezeError(
            f"sha256 mismatch for {dist.sdist}: fork.toml pins {dist.sha256}, "
            f"but {path} has {actual}. Refusing to use it. If the pin is right, delete the file "
            f"and run again; if upstream re-released the artifact, review it before changing the pin."
        )
    return path


def fetch(project: Project, dist: Dist) -> Path:
    """Return the verified sdist of ``dist``, downloading it into the cache the first time."""
    cached = project.cache / dist.sdist
    if not cached.exists():
        project.cache.mkdir(parents=True, exist_ok=True)
        with step(f"Downloading {dist.name}=={dist.version} (sdist)"), tempfile.TemporaryDirectory() as tmp:
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                 "--no-deps", "--no-binary", ":all:", "--dest", tmp, f"{dist.name}=={dist.version}"],
                capture_output=True, text=True,
            )
            downloaded = Path(tmp) / dist.sdist
            if result.returncode != 0 or not downloaded.exists():
                raise BreezeError(
                    f"could not download {dist.sdist} for {dist.name}=={dist.version}:\n{result.stderr.strip()}"
                )
            verify(dist, downloaded)
            shutil.move(downloaded, cached)
    return verify(dist, cached)
