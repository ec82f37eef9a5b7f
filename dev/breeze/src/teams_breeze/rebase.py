"""Move distributions to new upstream pins: ``./breeze patches rebase --to PINS``.

For each distribution the work tree is rebuilt on the new sdist (``base``) and the own tree (``own``), and
every patch is applied again with a three-way ``git am``. The patch files carry full blob ids, and the
tree at the old pins is fetched into the same repository first (``OLD_REF``), so a patch whose context
changed upstream still applies by merge. At the first conflict the rebase stops with ``git am`` in
progress; ``--continue`` goes on after the developer resolved it, ``--abort`` re-materialises the old pins.
When every patch is applied, the new pins are written into ``fork.toml`` (only their lines) and the
trees are exported: the patch files get their new context and index lines.

The state of a run is a JSON record in each moved tree's ``.git``: the target pins of the whole run, the
series it started from, and the next patch to apply.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
import tomllib
from pathlib import Path

from teams_breeze import artifacts, patches
from teams_breeze.console import BreezeError, info, step
from teams_breeze.gitutil import APPLY_COMMITTER, git, git_text, identity_env
from teams_breeze.patches import TreeState
from teams_breeze.project import Dist, Fork, Project, load_fork

RECORD = "breeze-rebase.json"
OLD_REF = "refs/breeze/rebase-old"  # the tree at the old pins: the blobs the patches' index lines name
PIN_KEYS = ("name", "version", "sdist", "sha256")
MOVED_KEYS = PIN_KEYS[1:]  # the keys a rebase changes in fork.toml
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+!_-]*$")
_SDIST = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]*\.tar\.gz$")
_GIT_SAYS = ("CONFLICT", "error:", "fatal:", "No changes")  # the lines of git am's output a stop repeats
_CONTINUE = "./breeze patches rebase --continue"
_ABORT = "./breeze patches rebase --abort"


class Conflict(BreezeError):
    """The rebase stopped at a patch: the developer resolves it in the tree, then continues."""


# --- the pins file ------------------------------------------------------------------------------------


def load_pins(path: Path, fork: Fork) -> list[Dist]:
    """The dists of ``path`` moved to their new pins, in fork.toml's order; one-line errors like fork.toml's."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise BreezeError(f"{path}: {err}") from err
    entries = data.get("dist")
    if set(data) - {"dist"} or not isinstance(entries, list) or not entries \
            or not all(isinstance(entry, dict) for entry in entries):
        raise BreezeError(f"{path}: expected only [[dist]] tables, each with {', '.join(PIN_KEYS)}")
    moved = {}
    for index, entry in enumerate(entries):
        dist = _pin(path, index, entry, fork)
        if dist.name in moved:
            raise BreezeError(f"{path}: [[dist]] {dist.name} is listed twice")
        moved[dist.name] = dist
    return [moved[dist.name] for dist in fork.dists if dist.name in moved]


def _pin(path: Path, index: int, entry: dict, fork: Fork) -> Dist:
    missing, unknown = set(PIN_KEYS) - entry.keys(), entry.keys() - set(PIN_KEYS)
    if missing or unknown:
        raise BreezeError(f"{path}: [[dist]] #{index + 1}: missing keys {sorted(missing)}, unknown keys "
                          f"{sorted(unknown)} (a pin has {', '.join(PIN_KEYS)}; the rest comes from fork.toml)")
    where = f"{path}: [[dist]] {entry['name']}"
    for key in PIN_KEYS:
        if not isinstance(entry[key], str):
            raise BreezeError(f"{where}: {key} must be a string")
    old = next((dist for dist in fork.dists if dist.name == entry["name"]), None)
    if old is None:
        raise BreezeError(f"{where}: unknown distribution; fork.toml pins {', '.join(d.name for d in fork.dists)}")
    if not _SHA256.match(entry["sha256"]):
        raise BreezeError(f"{where}: sha256 must be 64 lowercase hex digits")
    if not _VERSION.match(entry["version"]):
        raise BreezeError(f"{where}: version {entry['version']!r} is not a version")
    if not _SDIST.match(entry["sdist"]):
        raise BreezeError(f"{where}: sdist must be the file name of a .tar.gz sdist")
    new = _moved(old, entry)
    if (new.version, new.sdist, new.sha256) == (old.version, old.sdist, old.sha256):
        raise BreezeError(f"{where}: fork.toml already pins {old.version} ({old.sdist}, same sha256)")
    return new


def _moved(dist: Dist, pin: dict) -> Dist:
    return dataclasses.replace(dist, **{key: pin[key] for key in MOVED_KEYS})


def _pin_of(dist: Dist) -> dict[str, str]:
    return {key: getattr(dist, key) for key in PIN_KEYS}


# --- fork.toml: edit the pin lines, keep everything else ---------------------------------------------

_TABLE = re.compile(r"^\s*\[")
_DIST_TABLE = re.compile(r"^\s*\[\[\s*dist\s*\]\]\s*(#.*)?$")
_KEY_LINE = re.compile(
    r"""^(?P<head>\s*(?P<key>\w+)\s*=\s*)(?P<quote>["'])(?P<value>[^"'\\]*)(?P=quote)(?P<tail>.*)$"""
)


def write_pins(path: Path, moved: list[Dist]) -> None:
    """Set version, sdist and sha256 of the ``moved`` dists in fork.toml by editing their lines."""
    lines = path.read_text().splitlines(keepends=True)
    blocks = _dist_blocks(lines)
    for dist in moved:
        keys = blocks.get(dist.name, {})
        if set(MOVED_KEYS) - keys.keys():
            raise BreezeError(f"{path}: the [[dist]] of {dist.name} has no one-line {', '.join(MOVED_KEYS)} to edit")
        for key in MOVED_KEYS:
            lines[keys[key]] = _with_value(lines[keys[key]], getattr(dist, key))
    temporary = path.with_name(f".{path.name}.rebase")
    temporary.write_text("".join(lines))
    written = {dist.name: dist for dist in load_fork(temporary).dists}
    if any(_pin_of(written[dist.name]) != _pin_of(dist) for dist in moved):
        temporary.unlink()
        raise BreezeError(f"{path}: could not edit the pins of {', '.join(d.name for d in moved)}")
    os.replace(temporary, path)


def _dist_blocks(lines: list[str]) -> dict[str, dict[str, int]]:
    """Dist name -> {key: line index} of the string keys of each [[dist]] table."""
    blocks, current = {}, None
    for number, line in enumerate(lines):
        if _TABLE.match(line):
            current = {} if _DIST_TABLE.match(line) else None
        elif current is not None and (match := _KEY_LINE.match(line.rstrip("\r\n"))):
            current[match["key"]] = number
            if match["key"] == "name":
                blocks[match["value"]] = current
    return blocks


def _with_value(line: str, value: str) -> str:
    body = line.rstrip("\r\n")
    match = _KEY_LINE.match(body)
    return f'{match["head"]}"{value}"{match["tail"]}{line[len(body):]}'


# --- the run's record ---------------------------------------------------------------------------------


def _record_path(project: Project, dist: Dist) -> Path:
    return project.work_tree(dist) / ".git" / RECORD


def _records(project: Project) -> dict[str, dict]:
    """Dist name -> the rebase record of its tree, for every tree a rebase is moving."""
    paths = {dist.name: _record_path(project, dist) for dist in project.fork.dists}
    return {name: json.loads(path.read_text()) for name, path in paths.items() if path.is_file()}


def _write_record(project: Project, dist: Dist, record: dict) -> None:
    _record_path(project, dist).write_text(json.dumps(record, indent=1) + "\n")


def in_progress(project: Project) -> list[str]:
    """The series a rebase is moving."""
    return [dist.series for dist in project.fork.dists if _record_path(project, dist).is_file()]


def refuse_during_rebase(project: Project) -> None:
    moving = in_progress(project)
    if moving:
        raise BreezeError(
            f"a rebase onto new pins is in progress in {', '.join(f'work/{s}' for s in moving)}: finish it "
            f"(`{_CONTINUE}`) or give it up (`{_ABORT}`) first"
        )


# --- commands -----------------------------------------------------------------------------------------


def start(project: Project, pins_file: Path) -> list[Dist]:
    """Move the dists of ``pins_file`` to their new pins; return them as moved (raises Conflict on a conflict)."""
    moved = load_pins(pins_file, project.fork)
    refuse_during_rebase(project)
    for dist in moved:  # refused before any tree changes
        _refuse_unexported_work(project, project.fork.dist(dist.name))
    for dist in moved:
        artifacts.fetch(project, dist)  # every new sdist verified before any tree changes
    for dist in moved:
        _start_dist(project, dist, moved)
    return _finish(project, moved)


def continue_rebase(project: Project) -> list[Dist]:
    """Go on after a resolved conflict: finish the stopped patch, apply the rest, move the remaining dists."""
    records = _records(project)
    if not records:
        raise BreezeError("no rebase is in progress")
    moved = [_moved(project.fork.dist(pin["name"]), pin) for pin in next(iter(records.values()))["pins"]]
    for dist in moved:
        record = records.get(dist.name)
        if record is None:
            _start_dist(project, dist, moved)
        elif record["next"] < len(record["patches"]):
            _resolve_stopped(project, dist, record)
            _apply_from(project, dist, record, record["next"] + 1)
    return _finish(project, moved)


def abort(project: Project) -> list[Dist]:
    """Give the rebase up: re-materialise every tree it moved at the old pins of fork.toml."""
    records = _records(project)
    if not records:
        raise BreezeError("no rebase is in progress")
    restored = [dist for dist in project.fork.dists if dist.name in records]
    for dist in restored:
        tree = project.work_tree(dist)
        with step(f"Restoring {tree.relative_to(project.root)} at {dist.name} {dist.version}"):
            patches.materialise(project, dist, tree, patches.read_series(project, dist))
    return restored


# --- one dist -----------------------------------------------------------------------------------------


def _refuse_unexported_work(project: Project, dist: Dist) -> None:
    if patches.tree_state(project, dist) in (TreeState.AHEAD, TreeState.DIVERGED):
        tree = project.work_tree(dist).relative_to(project.root)
        raise BreezeError(
            f"{tree} holds work that is not in {dist.series}/*.patch. Save it with `./breeze patches export` "
            "(or discard it with `./breeze patches apply --force`) before rebasing."
        )


def _start_dist(project: Project, new: Dist, moved: list[Dist]) -> None:
    """Rebuild the tree as the new sdist + own tree, with the old tree's objects, then apply the series."""
    old = project.fork.dist(new.name)
    _refuse_unexported_work(project, old)  # again: --continue may start it long after the run began
    series = patches.read_series(project, old)
    tree = project.work_tree(old)
    info(f"==> Rebasing {old.series} from {old.version} onto {new.name} {new.version}")
    _rebuild_with_old_objects(project, old, new, series)
    patches.record_applied(tree, series)  # made from these patch files: export may rewrite them at the end
    record = {"pins": [_pin_of(dist) for dist in moved], "series": series.digest,
              "patches": list(series.patches), "next": 0, "head": None}
    _apply_from(project, new, record, 0)


def _rebuild_with_old_objects(project: Project, old: Dist, new: Dist, series: patches.Series) -> None:
    tree = project.work_tree(old)
    tree.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".rebase-", dir=tree.parent) as tmp:
        previous = Path(tmp) / "previous"
        if patches.tree_state(project, old) is TreeState.CURRENT:
            tree.rename(previous)  # exactly the old pins + series: no need to build it again
        else:
            patches.materialise(project, old, previous, series)
        try:
            patches.materialise(project, new, tree, series, limit=0)
            git(tree, "fetch", "--quiet", "--no-tags", str(previous), f"+HEAD:{OLD_REF}")
        except BreezeError:
            shutil.rmtree(tree, ignore_errors=True)
            previous.rename(tree)
            raise


def _apply_from(project: Project, dist: Dist, record: dict, first: int) -> None:
    """Apply the patches from index ``first`` on with a 3-way ``git am``; stop at a conflict."""
    tree = project.work_tree(dist)
    data = patches.read_series(project, project.fork.dist(dist.name)).patches
    for index in range(first, len(record["patches"])):
        name = record["patches"][index]
        _write_record(project, dist, record | {"next": index, "head": git_text(tree, "rev-parse", "HEAD")})
        result = git(tree, "am", "--keep-cr", "--keep", "--3way", "--whitespace=nowarn",
                     "--committer-date-is-author-date",
                     stdin=data[name], env=identity_env(APPLY_COMMITTER, author=False), check=False)
        output = (result.stdout + result.stderr).decode(errors="replace")
        if result.returncode != 0:
            raise Conflict(_stopped_message(project, dist, record, index, output))
        info(f"    {name}: " + ("merged (3-way), review it" if "3-way merge" in output else "applied"))
    _write_record(project, dist, record | {"next": len(record["patches"]), "head": None})


def _resolve_stopped(project: Project, dist: Dist, record: dict) -> None:
    """Commit the resolved patch (``git am --continue``), or note that the developer skipped it."""
    old = project.fork.dist(dist.name)
    if patches.read_series(project, old).digest != record["series"]:
        raise BreezeError(f"the patch files or the own tree of {old.series} changed during the rebase: "
                          f"`{_ABORT}` and start again")
    tree = project.work_tree(dist)
    name = record["patches"][record["next"]]
    if not _am_in_progress(tree):
        if git_text(tree, "rev-parse", "HEAD") == record["head"]:
            info(f"    note: {name} was not applied (`git am --skip`?): it leaves the series")
        return
    result = git(tree, "am", "--continue", "--committer-date-is-author-date",
                 env=identity_env(APPLY_COMMITTER, author=False), check=False)
    if result.returncode != 0:
        raise Conflict(_stopped_message(project, dist, record, record["next"],
                                        (result.stdout + result.stderr).decode(errors="replace")))
    info(f"    {name}: resolved")


def _am_in_progress(tree: Path) -> bool:
    return (tree / ".git" / "rebase-apply").is_dir()


def _stopped_message(project: Project, dist: Dist, record: dict, index: int, output: str) -> str:
    tree = project.work_tree(dist).relative_to(project.root)
    name = record["patches"][index]
    files = git_text(project.work_tree(dist), "diff", "--name-only", "--diff-filter=U").splitlines()
    said = [line.strip() for line in output.splitlines() if line.startswith(_GIT_SAYS)]
    if files:
        problem = "it conflicts in" + "".join(f"\n  {path}" for path in files)
    else:
        problem = "it does not apply, and git could not merge it:" + "".join(f"\n  {line}" for line in said)
    old = project.fork.dist(dist.name)
    return (
        f"rebasing {dist.series} onto {dist.name} {dist.version} stopped at patch {index + 1} of "
        f"{len(record['patches'])}, {dist.series}/{name}.patch: {problem}\n"
        f"Resolve it in {tree} (`git -C {tree} am --show-current-patch=diff` shows the patch): edit the files, "
        f"`git -C {tree} add <file>` (or `git -C {tree} am --skip` if upstream already has the change), then run "
        f"`{_CONTINUE}`. `{_ABORT}` goes back to {old.version}."
    )


# --- the end of a run ---------------------------------------------------------------------------------


def _finish(project: Project, moved: list[Dist]) -> list[Dist]:
    """Every patch is applied: write the new pins into fork.toml and export the trees."""
    for dist in moved:  # what would stop the export, before anything is written
        tree = project.work_tree(dist)
        if patches.is_dirty(tree):
            raise BreezeError(f"{tree.relative_to(project.root)} has uncommitted changes: commit or drop them, "
                              f"then `{_CONTINUE}`")
        patches.export_tree(tree, dist)
    write_pins(project.root / "fork.toml", moved)
    repinned = Project(project.root)
    for dist in moved:
        tree = project.work_tree(dist)
        for path in patches.export(repinned, repinned.fork.dist(dist.name)):
            info(f"    wrote {path}")
        git(tree, "update-ref", "-d", OLD_REF)
        _record_path(project, dist).unlink()
        info(f"    fork.toml: {dist.name} {dist.version} ({dist.sdist})")
    return moved
