"""The repository layout and the pins of ``fork.toml``."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from teams_breeze.console import BreezeError

SERIES_FILE = "series"


@dataclass(frozen=True)
class Dist:
    """One pinned upstream distribution and the patch series that applies to it."""

    name: str
    version: str
    series: str
    sdist: str
    sha256: str
    # The fork's own files of this distribution: ``own_tree`` (a folder of this repository) is laid onto the
    # work tree at ``own_tree_at`` (a folder of the sdist) as one commit before the patches apply.
    own_tree: str | None = None
    own_tree_at: str | None = None

    @property
    def is_core(self) -> bool:
        return self.name == "apache-airflow"


@dataclass(frozen=True)
class Fork:
    local_version: str
    python: str
    constraints: str
    dists: tuple[Dist, ...]
    uv: str

    def dist(self, series: str) -> Dist:
        for dist in self.dists:
            if series in (dist.series, dist.name):
                return dist
        known = ", ".join(d.series for d in self.dists)
        raise BreezeError(f"unknown distribution {series!r}; fork.toml pins: {known}")


class Project:
    """Paths of one checkout. ``BREEZE_CACHE`` may point several checkouts at one download cache."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.build = self.root / ".build"
        self.cache = Path(os.environ.get("BREEZE_CACHE") or self.build / "cache")
        self.work = self.root / "work"
        self.dist_dir = self.root / "dist"
        self.venv = self.build / "venv"

    @classmethod
    def from_env(cls) -> Project:
        root = os.environ.get("BREEZE_ROOT")
        if root:
            return cls(Path(root))
        here = Path.cwd()
        for candidate in (here, *here.parents):
            if (candidate / "fork.toml").is_file():
                return cls(candidate)
        raise BreezeError("fork.toml not found: run breeze from a checkout of the fork")

    @cached_property
    def fork(self) -> Fork:
        return load_fork(self.root / "fork.toml")

    def series_dir(self, dist: Dist) -> Path:
        return self.root / dist.series

    def own_tree(self, dist: Dist) -> Path | None:
        return self.root / dist.own_tree if dist.own_tree else None

    def work_tree(self, dist: Dist) -> Path:
        return self.work / dist.series

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


_DIST_KEYS = {"name", "version", "series", "sdist", "sha256"}
_OWN_TREE_KEYS = {"own_tree", "own_tree_at"}


def load_fork(path: Path) -> Fork:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise BreezeError(f"{path}: {err}") from err
    section = data.get("fork")
    if not isinstance(section, dict):
        raise BreezeError(f"{path}: missing [fork] table")
    for key in ("local_version", "python", "constraints"):
        if not isinstance(section.get(key), str):
            raise BreezeError(f"{path}: [fork] {key} must be a string")
    if not section["local_version"].startswith("teams."):
        raise BreezeError(f"{path}: [fork] local_version must look like 'teams.N'")
    dists = []
    for index, entry in enumerate(data.get("dist", [])):
        missing = _DIST_KEYS - entry.keys()
        unknown = entry.keys() - _DIST_KEYS - _OWN_TREE_KEYS
        if _OWN_TREE_KEYS & entry.keys():
            missing |= _OWN_TREE_KEYS - entry.keys()
        if missing or unknown:
            raise BreezeError(
                f"{path}: [[dist]] #{index + 1}: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}"
            )
        sha = entry["sha256"]
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise BreezeError(f"{path}: [[dist]] {entry['name']}: sha256 must be 64 lowercase hex digits")
        dists.append(Dist(**entry))
    if not dists or not dists[0].is_core:
        raise BreezeError(f"{path}: the first [[dist]] must be apache-airflow")
    uv = data.get("tools", {}).get("uv")
    if not isinstance(uv, str) or not uv:
        raise BreezeError(f"{path}: [tools] uv must pin the uv version ./breeze bootstraps")
    return Fork(section["local_version"], section["python"], section["constraints"], tuple(dists), uv)
