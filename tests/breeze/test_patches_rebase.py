"""`./breeze patches rebase`: moving a series to a new upstream release, on synthetic fab releases.

Each test makes a new fab "release" from the pinned fab sdist with one line of override.py changed, in a
download cache of its own, so nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from teams_breeze import artifacts, patches, rebase
from teams_breeze.console import BreezeError
from teams_breeze.gitutil import git, git_text
from teams_breeze.patches import TreeState
from teams_breeze.project import Project

FAB = "apache-airflow-providers-fab"
CELERY = "apache-airflow-providers-celery"
OVERRIDE = "airflow/providers/fab/auth_manager/security_manager/override.py"
# Two lines above the line ldap-escape-search-filter-username adds: in its context, not in its change.
NEXT_TO_A_HOOK = (
    OVERRIDE,
    'raise ValueError("AUTH_LDAP_SEARCH must be set")\n\n        # build the filter string',
    'raise ValueError("AUTH_LDAP_SEARCH must be set (new upstream)")\n\n        # build the filter string',
)
# A line authentik-oauth-check-id-token-issuer-audience replaces (patch 2 of 5).
IN_A_HOOK = (
    OVERRIDE,
    "return self._validate_jwt(id_token, jwks)",
    'return self._validate_jwt(id_token, jwks, "authentik")',
)
# A line celery's adopt-tasks-with-the-executors-celery-app replaces (patch 1 of 2).
IN_A_CELERY_HOOK = (
    "src/airflow/providers/celery/executors/celery_executor.py",
    "celery_tasks[ti.external_executor_id] = (AsyncResult(ti.external_executor_id), ti)",
    "celery_tasks[ti.external_executor_id] = (AsyncResult(ti.external_executor_id), ti)  # new upstream",
)


@pytest.fixture
def project(project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The checkout copy with a download cache of its own: the pinned fab and celery sdists, the synthetic releases."""
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in (FAB, CELERY):
        pinned = artifacts.fetch(project, project.fork.dist(name))
        (cache / pinned.name).symlink_to(pinned)
    monkeypatch.setenv("BREEZE_CACHE", str(cache))
    return Project(project.root)


def breeze(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"BREEZE_ROOT": str(project.root)}
    return subprocess.run([sys.executable, "-m", "teams_breeze", *args], capture_output=True, text=True, env=env)


def new_release(project: Project, name: str, version: str, change: tuple[str, str, str] | None) -> str:
    """Re-pack the pinned sdist of ``name`` as ``version`` with ``change`` (path, old text, new text) made;
    return its [[dist]] table."""
    pinned = project.fork.dist(name)
    top = f"{pinned.sdist.removesuffix(f'-{pinned.version}.tar.gz')}-{version}"
    sdist = project.cache / f"{top}.tar.gz"
    with tarfile.open(project.cache / pinned.sdist) as source, tarfile.open(sdist, "w:gz") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else None
            inner = member.name.partition("/")[2]
            if change and inner == change[0]:
                text = data.decode()
                assert text.count(change[1]) == 1
                data = text.replace(*change[1:]).encode()
                member.size = len(data)
            member.name = f"{top}/{inner}" if inner else top
            target.addfile(member, io.BytesIO(data) if data is not None else None)
    sha256 = hashlib.sha256(sdist.read_bytes()).hexdigest()
    return f'[[dist]]\nname = "{name}"\nversion = "{version}"\nsdist = "{sdist.name}"\nsha256 = "{sha256}"\n'


def pins_file(project: Project, *tables: str) -> Path:
    pins = project.root / "pins.toml"
    pins.write_text("\n".join(tables))
    return pins


def series_files(project: Project, name: str = FAB) -> dict[str, bytes]:
    directory = project.series_dir(project.fork.dist(name))
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def changed_lines(old: bytes, new: bytes) -> list[bytes]:
    old_lines, new_lines = old.split(b"\n"), new.split(b"\n")
    assert len(old_lines) == len(new_lines)
    return [line for before, line in zip(old_lines, new_lines) if before != line]


def take_the_patch_side(text: str) -> str:
    """Resolve every conflict of a file in favour of the patch."""
    return re.sub(r"<<<<<<< [^\n]*\n.*?=======\n(.*?)>>>>>>> [^\n]*\n", r"\1", text, flags=re.DOTALL)


def stop_at_a_conflict(project: Project) -> str:
    pins = pins_file(project, new_release(project, FAB, "1.5.4.post2", IN_A_HOOK))
    with pytest.raises(rebase.Conflict) as stopped:
        rebase.start(project, pins)
    return str(stopped.value)


def test_a_change_next_to_a_hook_rebases_by_merge(project, tmp_path):
    fork_toml = (project.root / "fork.toml").read_text().splitlines()
    before = series_files(project)
    pins = pins_file(project, new_release(project, FAB, "1.5.4.post1", NEXT_TO_A_HOOK))
    [target] = rebase.load_pins(pins, project.fork)
    old_series = patches.read_series(project, project.fork.dist(FAB))
    # The strict apply of the old patch files on the new sdist fails: only the 3-way merge gets it through.
    with pytest.raises(BreezeError, match="ldap-escape-search-filter-username.patch does not apply strictly"):
        patches.materialise(project, target, tmp_path / "strict", old_series)

    rebase.start(project, pins)

    repinned = Project(project.root)
    dist = repinned.fork.dist(FAB)
    assert (dist.version, dist.sdist, dist.sha256) == (target.version, target.sdist, target.sha256)
    now = (project.root / "fork.toml").read_text().splitlines()
    assert [(a, b) for a, b in zip(fork_toml, now) if a != b] == [
        ('version = "1.5.4"', 'version = "1.5.4.post1"'),
        ('sdist = "apache_airflow_providers_fab-1.5.4.tar.gz"', f'sdist = "{target.sdist}"'),
        (f'sha256 = "{project.fork.dist(FAB).sha256}"', f'sha256 = "{target.sha256}"'),
    ]
    after = series_files(repinned)
    assert after.keys() == before.keys()
    assert changed_lines(before["series"], after["series"]) == [
        b"# Patches on apache-airflow-providers-fab 1.5.4.post1, in application order."
    ]
    for name in set(before) - {"series"}:
        changed = changed_lines(before[name], after[name])
        assert all(line.startswith((b"index ", b"@@ ", b" ")) for line in changed), (name, changed)
    ldap = changed_lines(before["ldap-escape-search-filter-username.patch"],
                         after["ldap-escape-search-filter-username.patch"])
    assert b'             raise ValueError("AUTH_LDAP_SEARCH must be set (new upstream)")' in ldap
    untouched = "api-password-change-ends-user-sessions.patch"  # user_endpoint.py: the same blobs
    assert after[untouched] == before[untouched]
    assert patches.check(repinned, dist) == []
    assert patches.tree_state(repinned, dist) is TreeState.CURRENT
    assert not rebase.in_progress(repinned)


def test_a_change_inside_a_hook_stops_at_its_patch_until_resolved(project):
    fork_toml = (project.root / "fork.toml").read_bytes()

    message = stop_at_a_conflict(project)

    assert ("stopped at patch 2 of 5, providers/fab/authentik-oauth-check-id-token-issuer-audience.patch: "
            f"it conflicts in\n  {OVERRIDE}\n") in message
    assert "./breeze patches rebase --continue" in message and "git -C work/providers/fab add" in message
    tree = project.work_tree(project.fork.dist(FAB))
    assert (tree / ".git" / "rebase-apply").is_dir()
    assert git_text(tree, "diff", "--name-only", "--diff-filter=U") == OVERRIDE
    assert (project.root / "fork.toml").read_bytes() == fork_toml
    refused = breeze(project, "patches", "check", "--dist", "providers/fab")
    assert refused.returncode == 1 and "rebase onto new pins is in progress" in refused.stderr
    with pytest.raises(rebase.Conflict, match="stopped at patch 2 of 5"):
        rebase.continue_rebase(project)  # nothing resolved yet

    (tree / OVERRIDE).write_text(take_the_patch_side((tree / OVERRIDE).read_text()))
    git(tree, "add", OVERRIDE)
    result = breeze(project, "patches", "rebase", "--continue")

    assert result.returncode == 0, result.stderr
    assert "ok   providers/fab: 5 patches apply strictly" in result.stderr
    repinned = Project(project.root)
    dist = repinned.fork.dist(FAB)
    assert dist.version == "1.5.4.post2"
    patch = (repinned.series_dir(dist) / "authentik-oauth-check-id-token-issuer-audience.patch").read_text()
    assert '-                    return self._validate_jwt(id_token, jwks, "authentik")\n' in patch
    assert patches.check(repinned, dist) == []
    assert not rebase.in_progress(repinned)


def test_abort_goes_back_to_the_old_pins(project):
    fork_toml = (project.root / "fork.toml").read_bytes()
    before = series_files(project)
    stop_at_a_conflict(project)

    result = breeze(project, "patches", "rebase", "--abort")

    assert result.returncode == 0, result.stderr
    assert "work/providers/fab is back at apache-airflow-providers-fab 1.5.4" in result.stderr
    assert (project.root / "fork.toml").read_bytes() == fork_toml
    assert series_files(project) == before
    dist = project.fork.dist(FAB)
    tree = project.work_tree(dist)
    assert patches.tree_state(project, dist) is TreeState.CURRENT
    assert git_text(tree, "log", "-1", "--format=%s", "base") == f"Upstream {FAB} 1.5.4"
    assert not (tree / ".git" / "rebase-apply").exists() and not rebase.in_progress(project)
    with pytest.raises(BreezeError, match="no rebase is in progress"):
        rebase.abort(project)


def test_continue_moves_the_dists_the_run_has_not_reached_yet(project):
    pins = pins_file(project, new_release(project, FAB, "1.5.4.post1", NEXT_TO_A_HOOK),
                     new_release(project, CELERY, "3.26.0.post1", IN_A_CELERY_HOOK))
    with pytest.raises(rebase.Conflict, match="stopped at patch 1 of 2, providers/celery/adopt-tasks"):
        rebase.start(project, pins)  # celery first, as in fork.toml
    assert rebase.in_progress(project) == ["providers/celery"]
    tree = project.work_tree(project.fork.dist(CELERY))
    [path] = git_text(tree, "diff", "--name-only", "--diff-filter=U").splitlines()
    (tree / path).write_text(take_the_patch_side((tree / path).read_text()))
    git(tree, "add", path)

    rebase.continue_rebase(project)

    repinned = Project(project.root)
    assert [repinned.fork.dist(name).version for name in (CELERY, FAB)] == ["3.26.0.post1", "1.5.4.post1"]
    for name in (CELERY, FAB):
        assert patches.check(repinned, repinned.fork.dist(name)) == []
    assert not rebase.in_progress(repinned)


def test_abort_restores_every_tree_the_run_moved(project):
    fork_toml = (project.root / "fork.toml").read_bytes()
    pins = pins_file(project, new_release(project, CELERY, "3.26.0.post1", None),
                     new_release(project, FAB, "1.5.4.post2", IN_A_HOOK))
    with pytest.raises(rebase.Conflict, match="stopped at patch 2 of 5"):
        rebase.start(project, pins)
    assert rebase.in_progress(project) == ["providers/celery", "providers/fab"]  # celery moved, fab stopped

    assert [dist.name for dist in rebase.abort(project)] == [CELERY, FAB]

    assert (project.root / "fork.toml").read_bytes() == fork_toml
    for name in (CELERY, FAB):
        dist = project.fork.dist(name)
        assert patches.tree_state(project, dist) is TreeState.CURRENT
        base = git_text(project.work_tree(dist), "log", "-1", "--format=%s", "base")
        assert base == f"Upstream {name} {dist.version}"


def test_rebase_refuses_a_tree_with_unexported_work(project):
    dist = project.fork.dist(FAB)
    patches.apply(project, dist)
    tree = project.work_tree(dist)
    (tree / "README.rst").write_text("changed\n")
    git(tree, "commit", "-qam", "Change\n\nPatch-Name: fab-change", env={"GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@invalid", "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@invalid"})
    pins = project.root / "pins.toml"
    pins.write_text(f'[[dist]]\nname = "{FAB}"\nversion = "9"\nsdist = "fab-9.tar.gz"\nsha256 = "{"0" * 64}"\n')

    with pytest.raises(BreezeError, match=r"work/providers/fab holds work that is not in providers/fab/\*\.patch"):
        rebase.start(project, pins)
    assert patches.tree_state(project, dist) is TreeState.AHEAD


@pytest.mark.parametrize(
    ("pin", "error"),
    [
        ({"name": "apache-airflow-providers-nope"}, "[[dist]] apache-airflow-providers-nope: unknown distribution"),
        ({"sha256": "ABC"}, f"[[dist]] {FAB}: sha256 must be 64 lowercase hex digits"),
        ({"sdist": None}, "[[dist]] #1: missing keys ['sdist'], unknown keys []"),
        ({"series": "providers/fab"}, "[[dist]] #1: missing keys [], unknown keys ['series']"),
    ],
)
def test_a_malformed_pins_file_is_a_one_line_error(project, pin, error):
    fields = {"name": FAB, "version": "1.5.5", "sdist": "apache_airflow_providers_fab-1.5.5.tar.gz",
              "sha256": "a" * 64} | pin
    pins = project.root / "pins.toml"
    pins.write_text("[[dist]]\n" + "".join(f'{key} = "{value}"\n' for key, value in fields.items() if value))

    result = breeze(project, "patches", "rebase", "--to", str(pins))

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("breeze: error: ")
    assert f"{pins}: {error}" in result.stderr
