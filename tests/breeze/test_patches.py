"""The patch-series tooling: strict apply, byte-identical export, and everything `check` must catch."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from teams_breeze import artifacts, patches
from teams_breeze.console import BreezeError
from teams_breeze.gitutil import git, git_text
from teams_breeze.patches import TreeState
from teams_breeze.project import Project

AUTHOR = {"GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@invalid",
          "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@invalid"}
TRAILERS = ("Patch-Name: {name}\nUpstream-Status: Pending\nOrigin: vendor\nForwarded: no\n"
            "Tests: tests/breeze/test_patches.py::test_new_patch_round_trips_through_export_and_check\n")


def commit_change(tree, path: str, text: str, subject: str, trailers: str | None) -> None:
    target = tree / path
    target.write_text(target.read_text() + text)
    git(tree, "add", path)
    message = f"{subject}\n\nWhy it exists.\n" + (f"\n{trailers}" if trailers else "")
    git(tree, "commit", "-q", "-m", message, env=AUTHOR)


def breeze(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"BREEZE_ROOT": str(project.root)}
    return subprocess.run([sys.executable, "-m", "teams_breeze", *args], capture_output=True, text=True, env=env)


def fab(project: Project):
    """The fab provider (a small dist) with its series emptied in this temporary copy, for tests that build one."""
    dist = project.fork.dist("providers/fab")
    directory = project.series_dir(dist)
    for patch in directory.glob("*.patch"):
        patch.unlink()
    (directory / "series").write_text("")
    return dist


def test_fresh_apply_and_export_reproduce_every_core_patch_byte_for_byte(project, tmp_path):
    dist = project.fork.dist("airflow")
    series = patches.read_series(project, dist)
    assert series.patches, "the core series must not be empty"
    patches.materialise(project, dist, tmp_path / "a", series)
    patches.materialise(project, dist, tmp_path / "b", series)

    exported = patches.export_tree(tmp_path / "a", dist)

    assert exported.patches == series.patches
    assert exported.own == series.own and series.own, "the own tree comes back as it went in"
    # Deterministic base and commits: the same pins and series give the same shas everywhere.
    assert git_text(tmp_path / "a", "rev-parse", "base", "HEAD") == git_text(tmp_path / "b", "rev-parse", "base", "HEAD")


def test_new_patch_round_trips_through_export_and_check(project):
    dist = fab(project)
    patches.apply(project, dist)
    tree = project.work_tree(dist)
    (tree / "README.rst").write_text((tree / "README.rst").read_text() + "\nA line with a trailing space \n")

    patches.new(project, dist, "fab-readme-note", "Note in the README", "Because the test says so.", "Pending",
                ["tests/breeze/test_patches.py::test_new_patch_round_trips_through_export_and_check"])

    written = (project.series_dir(dist) / "fab-readme-note.patch").read_bytes()
    assert b"Patch-Name: fab-readme-note" in written
    assert b"+A line with a trailing space \n" in written
    assert patches.series_names(project, dist) == ["fab-readme-note"]
    assert patches.check(project, dist) == []


def test_check_reports_uncommitted_work_in_the_tree(project):
    dist = fab(project)
    patches.apply(project, dist)
    (project.work_tree(dist) / "README.rst").write_text("changed\n")

    problems = patches.check(project, dist)

    assert any("holds work not in the patches" in p for p in problems)
    result = breeze(project, "patches", "check", "--dist", "providers/fab")
    assert result.returncode == 1
    assert "holds work not in the patches" in result.stderr


def test_check_reports_new_files_the_trees_gitignore_would_drop(project):
    dist = fab(project)
    patches.apply(project, dist)
    tree = project.work_tree(dist)
    (tree / ".git" / "info" / "exclude").write_text("secrets.py\n__pycache__/\n")  # as core's .gitignore
    (tree / "airflow" / "providers" / "fab" / "secrets.py").write_text("X = 1\n")
    (tree / "airflow" / "providers" / "fab" / "__pycache__").mkdir(exist_ok=True)
    (tree / "airflow" / "providers" / "fab" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"")

    problems = patches.check(project, dist)

    assert problems == [
        "work/providers/fab/airflow/providers/fab/secrets.py is ignored by git there (the sdist's .gitignore; "
        "`git -C work/providers/fab check-ignore -v airflow/providers/fab/secrets.py` names the rule), so no patch "
        "can hold it: rename it"
    ]


def test_check_reports_commits_not_exported(project):
    dist = fab(project)
    patches.apply(project, dist)
    commit_change(project.work_tree(dist), "README.rst", "x\n", "Change", TRAILERS.format(name="fab-change"))

    assert patches.tree_state(project, dist) is TreeState.AHEAD
    assert any("holds work not in the patches" in p for p in patches.check(project, dist))
    patches.export(project, dist)
    assert patches.check(project, dist) == []


def test_apply_refuses_to_drop_unexported_work(project):
    dist = fab(project)
    patches.apply(project, dist)
    commit_change(project.work_tree(dist), "README.rst", "x\n", "Change", TRAILERS.format(name="fab-change"))

    with pytest.raises(BreezeError, match="holds work that is not in"):
        patches.apply(project, dist)
    assert patches.apply(project, dist, force=True)
    assert patches.tree_state(project, dist) is TreeState.CURRENT


def test_export_refuses_to_overwrite_patch_files_changed_since_apply(project):
    dist = fab(project)
    patches.apply(project, dist)
    # A pull brings a new patch while the tree still has the old series.
    other = project.work / "other"
    patches.materialise(project, dist, other, patches.read_series(project, dist))
    commit_change(other, "README.rst", "pulled\n", "Pulled change", TRAILERS.format(name="fab-pulled"))
    patches.write_series(project, dist, patches.export_tree(other, dist))

    assert patches.tree_state(project, dist) is TreeState.STALE
    with pytest.raises(BreezeError, match="changed since"):
        patches.export(project, dist)
    assert patches.apply(project, dist)
    assert patches.export_tree(project.work_tree(dist), dist).patches == patches.read_series(project, dist).patches


def test_commit_without_trailers_cannot_be_exported(project):
    dist = fab(project)
    patches.apply(project, dist)
    commit_change(project.work_tree(dist), "README.rst", "x\n", "No trailers", None)

    with pytest.raises(BreezeError) as err:
        patches.export(project, dist)
    for trailer in patches.REQUIRED_TRAILERS:
        assert f"missing trailer {trailer}:" in str(err.value)


@pytest.mark.parametrize(
    ("status", "refusal"),
    [
        ("Maybe", "Upstream-Status 'Maybe'"),
        ("Inappropriate [fork only]", "an Inappropriate patch is not forwarded: Forwarded must be not-needed"),
    ],
)
def test_bad_trailers_are_refused(project, status, refusal):
    dist = fab(project)
    patches.apply(project, dist)
    trailers = TRAILERS.format(name="fab-x").replace("Pending", status)
    commit_change(project.work_tree(dist), "README.rst", "x\n", "Bad trailers", trailers)

    with pytest.raises(BreezeError, match=re.escape(refusal)):
        patches.export(project, dist)


def test_patch_that_does_not_apply_strictly_is_named(project, tmp_path):
    dist = fab(project)
    tree = tmp_path / "tree"
    patches.materialise(project, dist, tree, patches.read_series(project, dist))
    commit_change(tree, "README.rst", "x\n", "Change", TRAILERS.format(name="fab-change"))
    data = patches.export_tree(tree, dist).patches["fab-change"]
    # Corrupt one context line: a strict apply must refuse instead of fuzzing.
    lines = data.split(b"\n")
    index = next(i for i, line in enumerate(lines) if line.startswith(b"@@")) + 1
    lines[index] = b" something upstream never had"
    (project.series_dir(dist) / "fab-change.patch").write_bytes(b"\n".join(lines))
    (project.series_dir(dist) / "series").write_text("fab-change\n")

    problems = patches.check(project, dist)

    assert len(problems) == 1
    assert "fab-change.patch does not apply strictly" in problems[0]


def test_series_lint_catches_unlisted_missing_and_numbered_patches(project):
    dist = fab(project)
    directory = project.series_dir(dist)
    (directory / "stray.patch").write_bytes(b"")
    (directory / "series").write_text("0001-numbered\nmissing-one\nmissing-one\n")

    problems = patches.lint_series(project, dist)

    assert "providers/fab/stray.patch is not listed in series" in problems
    assert "providers/fab/series lists missing-one twice" in problems
    assert any("'0001-numbered' must be lowercase words" in p for p in problems)
    assert any("lists missing-one, but missing-one.patch does not exist" in p for p in problems)


def test_bad_sha256_pin_is_refused_with_a_clear_error(project):
    fork_toml = project.root / "fork.toml"
    good = project.fork.dist("providers/fab").sha256
    fork_toml.write_text(fork_toml.read_text().replace(good, "0" * 64))
    tampered = Project(project.root)
    dist = tampered.fork.dist("providers/fab")

    with pytest.raises(BreezeError) as err:
        artifacts.fetch(tampered, dist)

    message = str(err.value)
    assert f"sha256 mismatch for {dist.sdist}" in message
    assert "0" * 64 in message and good in message
    result = breeze(tampered, "patches", "apply", "--dist", "providers/fab")
    assert result.returncode == 1
    assert "sha256 mismatch" in result.stderr
    assert not tampered.work_tree(dist).exists()


def test_malformed_fork_toml_names_the_key(project):
    fork_toml = project.root / "fork.toml"
    fork_toml.write_text(fork_toml.read_text().replace('local_version = "teams.1"', 'local_version = "1"'))

    result = breeze(Project(project.root), "patches", "check")

    assert result.returncode == 1
    assert "[fork] local_version must look like 'teams.N'" in result.stderr


def test_fixup_folds_changes_into_the_owning_patch(project):
    dist = fab(project)
    patches.apply(project, dist)
    tree = project.work_tree(dist)
    commit_change(tree, "README.rst", "first\n", "First", TRAILERS.format(name="fab-first"))
    commit_change(tree, "pyproject.toml", "# second\n", "Second", TRAILERS.format(name="fab-second"))
    patches.export(project, dist)
    (tree / "README.rst").write_text((tree / "README.rst").read_text() + "amended\n")

    patches.fixup(project, dist, "fab-first")

    series = patches.read_series(project, dist)
    assert list(series.patches) == ["fab-first", "fab-second"]
    assert b"+amended" in series.patches["fab-first"]
    assert b"amended" not in series.patches["fab-second"]
    assert patches.check(project, dist) == []


OWN_MODULE = "airflow/providers/fab/auth_manager/security_manager/ldap_filter.py"


def test_export_routes_own_files_to_the_own_tree_and_upstream_edits_to_their_patch(project):
    dist = fab(project)
    patches.apply(project, dist)
    tree = project.work_tree(dist)
    (tree / OWN_MODULE).write_text((tree / OWN_MODULE).read_text() + "\nEDITED_IN_THE_TREE = 1\n")
    (tree / "airflow/providers/fab/new_module.py").write_text("NEW = 1\n")
    git(tree, "add", "--all")
    commit_change(tree, "README.rst", "x\n", "Change", TRAILERS.format(name="fab-change"))  # commits all three
    commit_change(tree, OWN_MODULE, "ONLY_OWN = 1\n", "Own only", None)  # no trailers needed: no patch

    written = patches.export(project, dist)

    own = project.own_tree(dist)
    assert sorted(written) == ["providers/fab/fab-change.patch", "src/providers/fab/auth_manager/security_manager/ldap_filter.py",
                               "src/providers/fab/new_module.py"]
    assert (own / "new_module.py").read_text() == "NEW = 1\n"
    assert (own / "auth_manager/security_manager/ldap_filter.py").read_text().endswith("EDITED_IN_THE_TREE = 1\nONLY_OWN = 1\n")
    patch = (project.series_dir(dist) / "fab-change.patch").read_text()
    assert "README.rst" in patch and "new_module" not in patch and "ldap_filter" not in patch
    assert patches.series_names(project, dist) == ["fab-change"]
    assert patches.check(project, dist) == []
    # Removing an own file in the tree removes it from the own tree.
    git(tree, "rm", "-q", "airflow/providers/fab/new_module.py")
    git(tree, "commit", "-q", "-m", "Drop it", env=AUTHOR)
    assert patches.export(project, dist) == ["src/providers/fab/new_module.py"]
    assert not (own / "new_module.py").exists()


def test_an_edit_of_the_own_tree_re_materialises_a_tree_without_work(project):
    dist = fab(project)
    patches.apply(project, dist)
    own_file = project.own_tree(dist) / "auth_manager/security_manager/ldap_filter.py"
    own_file.write_text(own_file.read_text() + "EDITED_IN_SRC = 1\n")

    assert patches.tree_state(project, dist) is TreeState.STALE
    assert patches.apply(project, dist)
    assert (project.work_tree(dist) / OWN_MODULE).read_text().endswith("EDITED_IN_SRC = 1\n")
    assert git_text(project.work_tree(dist), "log", "-1", "--format=%s", "own") == "The fork's own tree"


def test_check_refuses_a_patch_that_adds_a_file_the_sdist_does_not_have(project):
    dist = fab(project)
    patches.apply(project, dist)
    tree = project.work_tree(dist)
    (tree / "airflow/providers/fab/new_module.py").write_text("NEW = 1\n")
    git(tree, "add", "--all")
    commit_change(tree, "README.rst", "x\n", "Change", TRAILERS.format(name="fab-change"))
    # A patch file made by hand (or by an older breeze) that carries the new module itself.
    data = git(tree, "format-patch", *patches.FORMAT_PATCH_FLAGS, "--stdout", "-1", "HEAD").stdout
    (project.series_dir(dist) / "fab-change.patch").write_bytes(data)
    (project.series_dir(dist) / "series").write_text("fab-change\n")

    problems = patches.check(project, dist)

    assert any("fab-change.patch adds or edits files the sdist does not have (airflow/providers/fab/new_module.py)"
               " belong in src/providers/fab" in p.replace(": they", "") for p in problems), problems


def test_an_own_file_that_shadows_an_upstream_file_is_refused(project, tmp_path):
    dist = fab(project)
    (project.own_tree(dist) / "__init__.py").write_text("# replaces upstream's file\n")

    with pytest.raises(BreezeError, match=r"src/providers/fab holds files that apache-airflow-providers-fab 1.5.4 "
                                          r"already has: airflow/providers/fab/__init__.py"):
        patches.materialise(project, dist, tmp_path / "tree", patches.read_series(project, dist))


def test_check_fails_for_a_patch_that_changes_lines_an_earlier_patch_added(project):
    dist = fab(project)
    patches.apply(project, dist)
    tree = project.work_tree(dist)
    commit_change(tree, "README.rst", "first line of fab-first\n", "First", TRAILERS.format(name="fab-first"))
    commit_change(tree, "README.rst", "next to it: fine\n", "Second", TRAILERS.format(name="fab-adds-next-to-it"))
    readme = tree / "README.rst"
    readme.write_text(readme.read_text().replace("first line of fab-first", "reworked by fab-rework"))
    commit_change(tree, "README.rst", "", "Third", TRAILERS.format(name="fab-rework"))
    patches.export(project, dist)

    problems = patches.check(project, dist)

    assert problems == [
        "providers/fab/fab-rework.patch changes 1 line(s) that fab-first added (README.rst): "
        "fold the two, or write fab-first the way fab-rework needs it"
    ]


@pytest.mark.parametrize("named", ["tests/breeze/test_no_such_file.py", "tests/breeze/test_patches.py::test_no_such_test",
                                   "tests/breeze/test_patches.py::NoSuchClass::test_new_patch_round_trips_through_export_and_check"])
def test_check_fails_for_a_patch_whose_tests_do_not_exist(project, named):
    dist = fab(project)
    patches.apply(project, dist)
    trailers = TRAILERS.format(name="fab-change").replace(
        "Tests: tests/breeze/test_patches.py::test_new_patch_round_trips_through_export_and_check", f"Tests: {named}")
    commit_change(project.work_tree(dist), "README.rst", "x\n", "Change", trailers)
    patches.export(project, dist)

    assert patches.check(project, dist) == [f"providers/fab/fab-change.patch names tests that do not exist: {named}"]


def test_a_patch_names_its_tests_and_one_without_them_has_none_to_run(project):
    dist = fab(project)
    patches.apply(project, dist)
    named = "tests/breeze/test_patches.py::test_new_patch_round_trips_through_export_and_check"
    commit_change(project.work_tree(dist), "README.rst", "x\n", "Change", TRAILERS.format(name="fab-change"))
    patches.export(project, dist)

    assert patches.tests_named(patches.read_series(project, dist).patches["fab-change"]) == [named]
    patch_file = project.series_dir(dist) / "fab-change.patch"
    patch_file.write_text(patch_file.read_text().replace(f"Tests: {named}\n", ""))
    from teams_breeze import cli

    with pytest.raises(BreezeError, match="names no tests"):
        cli.cmd_testing_patch(project, cli.parser().parse_args(["testing", "patch", "fab-change", "--dist", "providers/fab"]))
