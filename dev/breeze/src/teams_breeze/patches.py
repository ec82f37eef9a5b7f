"""Work trees materialised from the pins and series, and their export back to byte-exact patch files.

A work tree is a git repository per distribution: the unpacked sdist as the ``base`` commit (fixed
identity and date, so its sha is the same on every machine), then one commit per patch applied with a
strict ``git am``. Export runs ``git format-patch`` with pinned flags and neutralised config, so a
fresh apply followed by an export reproduces every patch file byte for byte.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from teams_breeze import artifacts
from teams_breeze.console import BreezeError, info
from teams_breeze.gitutil import (
    APPLY_COMMITTER,
    BASE_DATE,
    FORMAT_PATCH_FLAGS,
    UPSTREAM_IDENTITY,
    git,
    git_text,
    identity_env,
)
from teams_breeze.project import SERIES_FILE, Dist, Project

BASE_TAG = "base"
APPLIED_RECORD = "breeze-applied"
REQUIRED_TRAILERS = ("Patch-Name", "Upstream-Status", "Origin", "Forwarded")
PATCH_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
UPSTREAM_STATUS = re.compile(
    r"^(Pending|Submitted \[\S+\]|Backport \[.+\]|Accepted \[.+\]|Inappropriate \[.+\])$"
)
FORWARDED = re.compile(r"^(no|not-needed|https?://\S+)$")


class TreeState(Enum):
    MISSING = "missing"
    CURRENT = "current"  # the tree is exactly the patch files
    AHEAD = "ahead"  # the tree holds work that is not in the patch files yet
    STALE = "stale"  # the patch files changed since the tree was made, and the tree holds no work
    DIVERGED = "diverged"  # both changed


@dataclass(frozen=True)
class Series:
    """The patch files of one distribution, in application order."""

    patches: dict[str, bytes]

    @property
    def digest(self) -> str:
        digest = hashlib.sha256()
        for name, data in self.patches.items():
            digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        return digest.hexdigest()


# --- the patch files -------------------------------------------------------------------------------


def series_names(project: Project, dist: Dist) -> list[str]:
    path = project.series_dir(dist) / SERIES_FILE
    if not path.exists():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def lint_series(project: Project, dist: Dist) -> list[str]:
    """Problems of the series file against the patch files beside it."""
    directory = project.series_dir(dist)
    names = series_names(project, dist)
    problems = []
    if not (directory / SERIES_FILE).exists():
        problems.append(f"{dist.series}/{SERIES_FILE} is missing")
    seen = set()
    for name in names:
        if name in seen:
            problems.append(f"{dist.series}/{SERIES_FILE} lists {name} twice")
        seen.add(name)
        if not PATCH_NAME.match(name):
            problems.append(f"{dist.series}: patch name {name!r} must be lowercase words joined by '-', no number prefix")
        if not (directory / f"{name}.patch").is_file():
            problems.append(f"{dist.series}/{SERIES_FILE} lists {name}, but {name}.patch does not exist")
    for path in sorted(directory.glob("*.patch")):
        if path.stem not in seen:
            problems.append(f"{dist.series}/{path.name} is not listed in {SERIES_FILE}")
    return problems


def read_series(project: Project, dist: Dist) -> Series:
    problems = lint_series(project, dist)
    if problems:
        raise BreezeError("\n".join(problems))
    directory = project.series_dir(dist)
    return Series({name: (directory / f"{name}.patch").read_bytes() for name in series_names(project, dist)})


def write_series(project: Project, dist: Dist, series: Series) -> list[str]:
    """Write the patch files and the series file; return the names whose bytes changed."""
    directory = project.series_dir(dist)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.patch"):
        if stale.stem not in series.patches:
            stale.unlink()
    changed = []
    for name, data in series.patches.items():
        path = directory / f"{name}.patch"
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
            changed.append(name)
    header = (
        f"# Patches on {dist.name} {dist.version}, in application order.\n"
        "# Written by `./breeze patches export`; reorder with `git rebase -i base` in the work tree.\n"
    )
    (directory / SERIES_FILE).write_text(header + "".join(f"{name}\n" for name in series.patches))
    return changed


# --- materialising --------------------------------------------------------------------------------


def _unpack(sdist: Path, dest: Path) -> None:
    """Unpack ``sdist`` into ``dest`` without its top-level directory."""
    with tarfile.open(sdist) as tar:
        members = []
        for member in tar.getmembers():
            _, _, inner = member.name.partition("/")
            if not inner:
                continue
            member.name = inner
            members.append(member)
        tar.extractall(dest, members=members, filter="data")


def materialise(project: Project, dist: Dist, dest: Path, series: Series, *, limit: int | None = None) -> None:
    """Build ``dest`` as base commit + one commit per patch (the first ``limit`` ones if given)."""
    sdist = artifacts.fetch(project, dist)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    _unpack(sdist, dest)
    git(dest, "init", "--quiet", "--initial-branch=series")
    (dest / ".git" / "info" / "attributes").write_text("* -text\n")
    git(dest, "add", "--all", "--force")
    message = f"Upstream {dist.name} {dist.version}\n\nUnpacked from {dist.sdist} (sha256 {dist.sha256}).\n"
    git(dest, "commit", "--quiet", "--no-verify", "-m", message, env=identity_env(UPSTREAM_IDENTITY, BASE_DATE))
    git(dest, "tag", BASE_TAG)
    for name, data in list(series.patches.items())[:limit]:
        apply_patch(dest, dist, name, data)
    if limit is None:
        _record_applied(dest, series)


def apply_patch(tree: Path, dist: Dist, name: str, data: bytes) -> None:
    result = git(
        tree, "am", "--quiet", "--keep-cr", "--keep", "--no-3way", "--whitespace=nowarn",
        "--committer-date-is-author-date",
        stdin=data, env=identity_env(APPLY_COMMITTER, author=False), check=False,
    )
    if result.returncode != 0:
        git(tree, "am", "--abort", check=False)
        output = (result.stdout + result.stderr).decode(errors="replace").strip()
        raise BreezeError(
            f"{dist.series}/{name}.patch does not apply strictly to {dist.name} {dist.version} "
            f"(no fuzz, no 3-way):\n{output}\n"
            "Rebuild it from a work tree where it applies: `./breeze patches apply`, fix, `./breeze patches export`."
        )


def _record_applied(tree: Path, series: Series) -> None:
    (tree / ".git" / APPLIED_RECORD).write_text(series.digest + "\n")


def _recorded(tree: Path) -> str | None:
    path = tree / ".git" / APPLIED_RECORD
    return path.read_text().strip() if path.exists() else None


# --- exporting --------------------------------------------------------------------------------------


def trailers_of(tree: Path, commit: str) -> dict[str, str]:
    text = git_text(tree, "log", "-1", "--format=%(trailers:only,unfold)", commit)
    trailers: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            trailers.setdefault(key.strip(), value.strip())
    return trailers


def lint_trailers(subject: str, trailers: dict[str, str]) -> list[str]:
    problems = [f"{subject!r}: missing trailer {key}:" for key in REQUIRED_TRAILERS if key not in trailers]
    name = trailers.get("Patch-Name")
    if name is not None and not PATCH_NAME.match(name):
        problems.append(f"{subject!r}: Patch-Name {name!r} must be lowercase words joined by '-'")
    status = trailers.get("Upstream-Status")
    if status is not None and not UPSTREAM_STATUS.match(status):
        problems.append(
            f"{subject!r}: Upstream-Status {status!r} must be Pending, Submitted [url], Backport [ref], "
            "Accepted [version] or Inappropriate [reason]"
        )
    forwarded = trailers.get("Forwarded")
    if forwarded is not None and not FORWARDED.match(forwarded):
        problems.append(f"{subject!r}: Forwarded {forwarded!r} must be no, not-needed or a URL")
    elif forwarded is not None and (status or "").startswith("Inappropriate") and forwarded != "not-needed":
        problems.append(f"{subject!r}: an Inappropriate patch is not forwarded: Forwarded must be not-needed")
    return problems


def export_tree(tree: Path) -> Series:
    """Format every commit after ``base`` as a patch, named by its Patch-Name trailer."""
    if git(tree, "merge-base", "--is-ancestor", BASE_TAG, "HEAD", check=False).returncode != 0:
        raise BreezeError(f"{tree}: HEAD does not descend from the {BASE_TAG} tag")
    if git_text(tree, "rev-list", "--merges", f"{BASE_TAG}..HEAD"):
        raise BreezeError(f"{tree}: merge commits cannot be exported; rebase them away")
    patches: dict[str, bytes] = {}
    problems = []
    for commit in git_text(tree, "rev-list", "--reverse", f"{BASE_TAG}..HEAD").split():
        subject = git_text(tree, "log", "-1", "--format=%s", commit)
        trailers = trailers_of(tree, commit)
        problems += lint_trailers(subject, trailers)
        name = trailers.get("Patch-Name")
        if name in patches:
            problems.append(f"{subject!r}: Patch-Name {name} is used by an earlier commit too")
        if name and not problems:
            patches[name] = git(tree, "format-patch", *FORMAT_PATCH_FLAGS, "--stdout", "-1", commit).stdout
    if problems:
        raise BreezeError(f"{tree}: cannot export:\n" + "\n".join(problems))
    return Series(patches)


def is_dirty(tree: Path) -> bool:
    return bool(git_text(tree, "status", "--porcelain", "--untracked-files=all"))


def tree_state(project: Project, dist: Dist) -> TreeState:
    tree = project.work_tree(dist)
    if not (tree / ".git").is_dir():
        return TreeState.MISSING
    series = read_series(project, dist)
    files = series.digest
    recorded = _recorded(tree)
    try:
        exported = export_tree(tree).digest
    except BreezeError:
        exported = None  # commits that cannot be exported yet are work too
    dirty = is_dirty(tree)
    if exported == files and not dirty:
        if recorded != files:
            _record_applied(tree, series)
        return TreeState.CURRENT
    if recorded == files:
        return TreeState.AHEAD
    if exported == recorded and not dirty:
        return TreeState.STALE
    return TreeState.DIVERGED


# --- commands ----------------------------------------------------------------------------------------


def apply(project: Project, dist: Dist, *, force: bool = False) -> bool:
    """Materialise the work tree unless it already matches (then return False); never drop work unless ``force``."""
    state = tree_state(project, dist)
    tree = project.work_tree(dist)
    if state in (TreeState.AHEAD, TreeState.DIVERGED) and not force:
        raise BreezeError(
            f"{tree.relative_to(project.root)} holds work that is not in {dist.series}/*.patch. "
            "Save it with `./breeze patches export`, or discard it with `./breeze patches apply --force`."
        )
    if state is TreeState.CURRENT and not force:
        return False
    series = read_series(project, dist)
    materialise(project, dist, tree, series)
    info(f"    {tree.relative_to(project.root)}: {dist.name} {dist.version} + {len(series.patches)} patches")
    return True


def export(project: Project, dist: Dist) -> list[str]:
    tree = project.work_tree(dist)
    state = tree_state(project, dist)
    if state is TreeState.MISSING:
        return []
    if is_dirty(tree):
        raise BreezeError(
            f"{tree.relative_to(project.root)} has uncommitted changes; commit them as a patch "
            "(`./breeze patches new NAME ...` or `./breeze patches fixup NAME`) before exporting."
        )
    if state in (TreeState.STALE, TreeState.DIVERGED):
        raise BreezeError(
            f"{dist.series}/*.patch changed since {tree.relative_to(project.root)} was materialised "
            "(a pull or a checkout?). Exporting would overwrite them. Run `./breeze patches apply` "
            "(`--force` drops the tree's own commits) and redo the work there."
        )
    series = export_tree(tree)
    changed = write_series(project, dist, series)
    _record_applied(tree, series)
    return changed


def check(project: Project, dist: Dist) -> list[str]:
    """Every reason the committed series and the work tree are not in sync."""
    problems = lint_series(project, dist)
    if problems:
        return problems
    series = read_series(project, dist)
    with tempfile.TemporaryDirectory(prefix="breeze-check-") as tmp:
        fresh = Path(tmp) / "tree"
        try:
            materialise(project, dist, fresh, series)
            again = export_tree(fresh)
        except BreezeError as err:
            return [str(err)]
    for name, data in series.patches.items():
        if again.patches.get(name) != data:
            problems.append(f"{dist.series}/{name}.patch: a fresh apply + export changes its bytes")
    state = tree_state(project, dist)
    tree = project.work_tree(dist).relative_to(project.root)
    if state in (TreeState.AHEAD, TreeState.DIVERGED):
        problems.append(
            f"{tree} holds work not in the patches (uncommitted changes or commits not exported); "
            "commit it in the tree and run `./breeze patches export`"
        )
    elif state is TreeState.STALE:
        info(f"    note: {tree} is older than the patch files; `./breeze patches apply` refreshes it")
    for path in ignored_work(project.work_tree(dist)):
        problems.append(
            f"{tree}/{path} is ignored by git there (the sdist's .gitignore; `git -C {tree} check-ignore -v "
            f"{path}` names the rule), so no patch can hold it: rename it"
        )
    return problems


def ignored_work(tree: Path) -> list[str]:
    """Files git ignores in a work tree that look like work, not caches or bytecode."""
    if not (tree / ".git").is_dir():
        return []
    ignored = git_text(tree, "ls-files", "--others", "--ignored", "--exclude-standard").splitlines()
    return [
        path for path in ignored
        if not path.endswith((".pyc", ".pyo"))
        and not any(part.startswith(".") or part == "__pycache__" for part in Path(path).parts)
    ]


def _author_env() -> dict[str, str]:
    import subprocess

    def user(key: str) -> str:
        result = subprocess.run(["git", "config", "--get", key], capture_output=True, text=True)
        return result.stdout.strip()

    name = user("user.name") or "Airflow teams fork"
    email = user("user.email") or "teams-fork@invalid"
    return identity_env((name, email))


def new(project: Project, dist: Dist, name: str, subject: str, why: str, upstream_status: str) -> None:
    """Commit the tree's uncommitted changes as a new patch at the end of the series."""
    tree = project.work_tree(dist)
    _require_workable(project, dist)
    if not PATCH_NAME.match(name):
        raise BreezeError(f"patch name {name!r} must be lowercase words joined by '-', no number prefix")
    if name in export_tree(tree).patches:
        raise BreezeError(f"{dist.series} already has a patch named {name}; use `./breeze patches fixup {name}`")
    git(tree, "add", "--all")
    if not git_text(tree, "diff", "--cached", "--name-only"):
        raise BreezeError(f"{tree.relative_to(project.root)} has no changes to commit as {name}")
    trailers = {
        "Patch-Name": name,
        "Upstream-Status": upstream_status,
        "Origin": "vendor",
        "Forwarded": "no",
    }
    problems = lint_trailers(subject, trailers)
    if problems:
        raise BreezeError("\n".join(problems))
    body = "\n".join(f"{key}: {value}" for key, value in trailers.items())
    git(tree, "commit", "--quiet", "--no-verify", "-m", f"{subject}\n\n{why.strip()}\n\n{body}\n", env=_author_env())
    export(project, dist)


def fixup(project: Project, dist: Dist, name: str) -> None:
    """Fold the tree's uncommitted changes into the commit of patch ``name`` and re-export."""
    tree = project.work_tree(dist)
    _require_workable(project, dist)
    commits = git_text(tree, "rev-list", "--reverse", f"{BASE_TAG}..HEAD").split()
    target = next((c for c in commits if trailers_of(tree, c).get("Patch-Name") == name), None)
    if target is None:
        raise BreezeError(f"{dist.series} has no patch named {name}")
    git(tree, "add", "--all")
    if not git_text(tree, "diff", "--cached", "--name-only"):
        raise BreezeError(f"{tree.relative_to(project.root)} has no changes to fold into {name}")
    env = _author_env()
    git(tree, "commit", "--quiet", "--no-verify", f"--fixup={target}", env=env)
    result = git(tree, "rebase", "--quiet", "--interactive", "--autosquash", BASE_TAG,
                 env=env | {"GIT_SEQUENCE_EDITOR": ":", "GIT_EDITOR": ":"}, check=False)
    if result.returncode != 0:
        raise BreezeError(
            f"folding into {name} conflicts with a later patch:\n{result.stderr.decode(errors='replace')}\n"
            f"Resolve it in {tree} (`git status`, then `git rebase --continue`) and run `./breeze patches export`."
        )
    export(project, dist)


def _require_workable(project: Project, dist: Dist) -> None:
    state = tree_state(project, dist)
    if state is TreeState.MISSING:
        raise BreezeError(f"no work tree for {dist.series}; run `./breeze patches apply` first")
    if state in (TreeState.STALE, TreeState.DIVERGED):
        raise BreezeError(f"{dist.series}/*.patch changed since the work tree was made; run `./breeze patches apply`")
