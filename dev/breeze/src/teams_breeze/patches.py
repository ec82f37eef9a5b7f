"""Work trees materialised from the pins, the own tree and the series, and their export back.

A work tree is a git repository per distribution: the unpacked sdist as the ``base`` commit (fixed
identity and date, so its sha is the same on every machine), the fork's own tree laid onto it as the
``own`` commit, then one commit per patch applied with a strict ``git am``. Export routes every change:
the own tree's files (files below ``own_tree_at`` that the sdist does not have) go back to the own tree,
edits to upstream files to their patch, written by ``git format-patch`` with pinned flags and
neutralised config, so a fresh apply followed by an export reproduces every file byte for byte.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
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
OWN_TAG = "own"
OWN_DATE = "2000-01-01T00:00:01+0000"
APPLIED_RECORD = "breeze-applied"
REQUIRED_TRAILERS = ("Patch-Name", "Upstream-Status", "Origin", "Forwarded", "Tests")
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
    """The patch files of one distribution, in application order, and its own tree's files."""

    patches: dict[str, bytes]
    own: dict[str, bytes] = field(default_factory=dict)  # path in the work tree -> content

    @property
    def digest(self) -> str:
        digest = hashlib.sha256()
        for name, data in self.patches.items():
            digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        for path, data in sorted(self.own.items()):
            digest.update(b"own\0" + path.encode() + b"\0" + hashlib.sha256(data).digest())
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
    patches = {name: (directory / f"{name}.patch").read_bytes() for name in series_names(project, dist)}
    return Series(patches, read_own(project, dist))


def _is_cache(relative: Path) -> bool:
    return relative.suffix in (".pyc", ".pyo") or "__pycache__" in relative.parts


def read_own(project: Project, dist: Dist) -> dict[str, bytes]:
    """The own tree's files, by their path in the work tree."""
    root = project.own_tree(dist)
    if root is None or not root.is_dir():
        return {}
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not _is_cache(relative):
            files[f"{dist.own_tree_at}/{relative.as_posix()}"] = path.read_bytes()
    return files


def write_own(project: Project, dist: Dist, own: dict[str, bytes]) -> list[str]:
    """Make the own tree hold exactly ``own``; return the work-tree paths whose bytes changed."""
    root = project.own_tree(dist)
    if root is None:
        if own:
            raise BreezeError(f"{dist.series}: new files {sorted(own)} need an own_tree in fork.toml")
        return []
    prefix = f"{dist.own_tree_at}/"
    wanted = {root / path.removeprefix(prefix): data for path, data in own.items()}
    changed = []
    for path in sorted(root.rglob("*"), reverse=True) if root.is_dir() else []:  # children first
        if path.is_file() and path not in wanted and not _is_cache(path.relative_to(root)):
            path.unlink()
            changed.append(f"{prefix}{path.relative_to(root).as_posix()}")
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    for path, data in wanted.items():
        if not path.exists() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            changed.append(f"{prefix}{path.relative_to(root).as_posix()}")
    return changed


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
    _commit_own_tree(dest, dist, series.own)
    for name, data in list(series.patches.items())[:limit]:
        apply_patch(dest, dist, name, data)
    if limit is None:
        record_applied(dest, series)


def _commit_own_tree(tree: Path, dist: Dist, own: dict[str, bytes]) -> None:
    """Lay the own tree onto the sdist as the ``own`` commit (the ``base`` commit itself when there is none)."""
    if own:
        shadowed = _upstream_paths(tree, own)
        if shadowed:
            raise BreezeError(
                f"{dist.own_tree} holds files that {dist.name} {dist.version} already has: "
                f"{', '.join(shadowed)}. The own tree only adds files; an edit of an upstream file is a patch."
            )
        for path, data in own.items():
            (tree / path).parent.mkdir(parents=True, exist_ok=True)
            (tree / path).write_bytes(data)
        git(tree, "add", "--force", "--", *own)
        message = f"The fork's own tree\n\n{len(own)} files from {dist.own_tree}, laid onto {dist.own_tree_at}.\n"
        git(tree, "commit", "--quiet", "--no-verify", "-m", message, env=identity_env(UPSTREAM_IDENTITY, OWN_DATE))
    git(tree, "tag", OWN_TAG)


def _upstream_paths(tree: Path, paths) -> list[str]:
    """Those of ``paths`` that the sdist (the ``base`` commit) has."""
    listed = git_text(tree, "ls-tree", "-r", "--name-only", "-z", BASE_TAG, "--", *paths) if paths else ""
    return sorted(p for p in listed.split("\0") if p)


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


def record_applied(tree: Path, series: Series) -> None:
    """Remember that ``tree`` was made from ``series`` (its patch files and own tree): see :func:`tree_state`."""
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


def own_paths(tree: Path, dist: Dist) -> tuple[list[str], set[str]]:
    """The paths below ``own_tree_at`` the sdist does not have that a commit after ``base`` touched or that
    HEAD has (deleted own files included), and those of them HEAD has."""
    if not dist.own_tree_at:
        return [], set()
    at = dist.own_tree_at
    present = {p for p in git_text(tree, "ls-tree", "-r", "--name-only", "-z", "HEAD", "--", at).split("\0") if p}
    touched = git_text(tree, "log", "--format=", "--name-only", "--no-renames", "-z", f"{BASE_TAG}..HEAD", "--", at)
    candidates = present | {p.strip("\n") for p in touched.split("\0") if p.strip("\n")}
    own = sorted(candidates - set(_upstream_paths(tree, sorted(candidates))))
    return own, present.intersection(own)


def _read_blobs(tree: Path, rev: str, paths: list[str]) -> dict[str, bytes]:
    if not paths:
        return {}
    request = "".join(f"{rev}:{path}\n" for path in paths).encode()
    output = git(tree, "cat-file", "--batch", stdin=request).stdout
    blobs, offset = {}, 0
    for path in paths:
        header_end = output.index(b"\n", offset)
        size = int(output[offset:header_end].split()[2])
        blobs[path] = output[header_end + 1:header_end + 1 + size]
        offset = header_end + 1 + size + 1
    return blobs


def export_tree(tree: Path, dist: Dist) -> Series:
    """The own tree's files as HEAD has them, and every commit after ``own`` as a patch of its edits to
    upstream files, named by its Patch-Name trailer. A commit that only changes the own tree has no patch."""
    start = OWN_TAG if git(tree, "rev-parse", "--verify", "--quiet", f"{OWN_TAG}^{{commit}}", check=False).returncode == 0 \
        else BASE_TAG  # a tree materialised before the own tree existed
    if git(tree, "merge-base", "--is-ancestor", start, "HEAD", check=False).returncode != 0:
        raise BreezeError(f"{tree}: HEAD does not descend from the {start} tag")
    if git_text(tree, "rev-list", "--merges", f"{start}..HEAD"):
        raise BreezeError(f"{tree}: merge commits cannot be exported; rebase them away")
    own, present = own_paths(tree, dist)
    excluded = [f":(top,literal,exclude){path}" for path in own]
    patches: dict[str, bytes] = {}
    problems = []
    for commit in git_text(tree, "rev-list", "--reverse", f"{start}..HEAD").split():
        data = git(tree, "format-patch", *FORMAT_PATCH_FLAGS, "--stdout", f"{commit}^..{commit}",
                   "--", ".", *excluded).stdout
        if not data:
            continue
        subject = git_text(tree, "log", "-1", "--format=%s", commit)
        trailers = trailers_of(tree, commit)
        problems += lint_trailers(subject, trailers)
        name = trailers.get("Patch-Name")
        if name in patches:
            problems.append(f"{subject!r}: Patch-Name {name} is used by an earlier commit too")
        if name and not problems:
            patches[name] = data
    if problems:
        raise BreezeError(f"{tree}: cannot export:\n" + "\n".join(problems))
    return Series(patches, _read_blobs(tree, "HEAD", [path for path in own if path in present]))


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
        exported = export_tree(tree, dist).digest
    except BreezeError:
        exported = None  # commits that cannot be exported yet are work too
    dirty = is_dirty(tree)
    if exported == files and not dirty:
        if recorded != files:
            record_applied(tree, series)
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
    """Write the tree's patches and own files back; return the repository paths whose bytes changed."""
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
    series = export_tree(tree, dist)
    changed = [f"{dist.series}/{name}.patch" for name in write_series(project, dist, series)]
    prefix = f"{dist.own_tree_at}/"
    changed += [f"{dist.own_tree}/{path.removeprefix(prefix)}" for path in write_own(project, dist, series.own)]
    record_applied(tree, series)
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
            again = export_tree(fresh, dist)
            problems += _patches_touching_own_tree(fresh, dist, series)
            problems += rewritten_lines(fresh, dist)
        except BreezeError as err:
            return [str(err)]
    for name, data in series.patches.items():
        if again.patches.get(name) != data:
            problems.append(f"{dist.series}/{name}.patch: a fresh apply + export changes its bytes")
        if missing := missing_tests(project.root, tests_named(data)):
            problems.append(f"{dist.series}/{name}.patch names tests that do not exist: {', '.join(missing)}")
    if again.own != series.own:
        problems.append(f"{dist.own_tree}: a fresh apply + export changes the own tree")
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


def tests_named(data: bytes) -> list[str]:
    """The test files and ids a patch's ``Tests:`` trailers name (several per line, comma or space separated)."""
    header = data.split(b"\ndiff --git ", 1)[0].decode(errors="replace")
    entries = []
    for line in header.splitlines():
        if line.startswith("Tests:"):
            entries += line.removeprefix("Tests:").replace(",", " ").split()
    return entries


def missing_tests(root: Path, entries: list[str]) -> list[str]:
    """Those of ``entries`` (``path``, ``path::test``, ``path::Class::test``) that do not exist below ``root``."""
    missing = []
    for entry in entries:
        path, *names = entry.split("::")
        test_file = root / path
        if not path.startswith("tests/") or not path.endswith(".py") or not test_file.is_file():
            missing.append(entry)
            continue
        text = test_file.read_text()
        for index, name in enumerate(names):
            name = name.split("[", 1)[0]
            kind = "class" if index < len(names) - 1 else "def"
            if not re.search(rf"^\s*(async )?{kind} {re.escape(name)}\b", text, re.MULTILINE):
                missing.append(entry)
                break
    return missing


def _patches_touching_own_tree(tree: Path, dist: Dist, series: Series) -> list[str]:
    """A path is either the own tree's or a patch's: a patch must not create or edit a non-upstream file."""
    problems = []
    for commit in git_text(tree, "rev-list", "--reverse", f"{OWN_TAG}..HEAD").split():
        touched = git_text(tree, "diff-tree", "--no-commit-id", "--name-only", "-r", "-z", "--no-renames",
                           commit).split("\0")
        touched = [path for path in touched if path]
        foreign = sorted(set(touched) - set(_upstream_paths(tree, touched)))
        if foreign:
            name = trailers_of(tree, commit).get("Patch-Name", commit)
            where = f"belong in {dist.own_tree}" if dist.own_tree else "need an own_tree in fork.toml"
            problems.append(f"{dist.series}/{name}.patch adds or edits files the sdist does not have "
                            f"({', '.join(foreign)}): they {where}")
    return problems


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+")
_BLAMED_LINE = re.compile(r"^([0-9a-f]{40}) \d+ \d+")


def _removed_ranges(tree: Path, commit: str) -> list[tuple[str, int, int]]:
    """(path, first line, count) of every run of lines ``commit`` deletes or changes in its parent's files."""
    ranges, path = [], None
    for line in git_text(tree, "diff", "-U0", "--no-renames", "--no-color", f"{commit}^", commit).splitlines():
        if line.startswith("--- "):
            path = line[len("--- a/"):] if line != "--- /dev/null" else None
        elif (hunk := _HUNK.match(line)) and path is not None:
            first, count = int(hunk.group(1)), int(hunk.group(2) or 1)
            if count:
                ranges.append((path, first, count))
    return ranges


def rewritten_lines(tree: Path, dist: Dist) -> list[str]:
    """Every patch that deletes or changes lines an earlier patch added.

    Such a patch undoes or reworks an earlier PR: the two are one change (fold them), or the earlier one
    should have been written the way the later one needs (a hook that calls the own tree, one import
    block with a line per patch). Adding lines next to an earlier patch's lines is fine.
    """
    commits = git_text(tree, "rev-list", "--reverse", f"{OWN_TAG}..HEAD").split()
    names = {commit: trailers_of(tree, commit).get("Patch-Name", commit[:12]) for commit in commits}
    problems = []
    for commit in commits:
        rewritten: dict[tuple[str, str], int] = {}
        for path, first, count in _removed_ranges(tree, commit):
            blame = git_text(tree, "blame", "--porcelain", "-L", f"{first},{first + count - 1}", f"{commit}^", "--", path)
            for line in blame.splitlines():
                if (match := _BLAMED_LINE.match(line)) and match.group(1) in names:
                    key = (names[match.group(1)], path)
                    rewritten[key] = rewritten.get(key, 0) + 1
        for (earlier, path), count in sorted(rewritten.items()):
            problems.append(f"{dist.series}/{names[commit]}.patch changes {count} line(s) that {earlier} added "
                            f"({path}): fold the two, or write {earlier} the way {names[commit]} needs it")
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


def new(project: Project, dist: Dist, name: str, subject: str, why: str, upstream_status: str,
        tests: list[str]) -> None:
    """Commit the tree's uncommitted changes as a new patch at the end of the series."""
    tree = project.work_tree(dist)
    _require_workable(project, dist)
    if not PATCH_NAME.match(name):
        raise BreezeError(f"patch name {name!r} must be lowercase words joined by '-', no number prefix")
    if name in export_tree(tree, dist).patches:
        raise BreezeError(f"{dist.series} already has a patch named {name}; use `./breeze patches fixup {name}`")
    git(tree, "add", "--all")
    if not git_text(tree, "diff", "--cached", "--name-only"):
        raise BreezeError(f"{tree.relative_to(project.root)} has no changes to commit as {name}")
    trailers = {
        "Patch-Name": name,
        "Upstream-Status": upstream_status,
        "Origin": "vendor",
        "Forwarded": "no",
        "Tests": " ".join(tests),
    }
    problems = lint_trailers(subject, trailers)
    if missing := missing_tests(project.root, tests):
        problems.append(f"no such tests: {', '.join(missing)} (give test files or ids below tests/)")
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
