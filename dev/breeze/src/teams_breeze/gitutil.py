"""Git with the user's configuration neutralised, so every machine produces the same bytes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from teams_breeze.console import BreezeError

UPSTREAM_IDENTITY = ("upstream", "upstream@invalid")
BASE_DATE = "2000-01-01T00:00:00+0000"
APPLY_COMMITTER = ("breeze", "breeze@invalid")

# Flags that make `git format-patch` output independent of git config and version.
FORMAT_PATCH_FLAGS = (
    "--zero-commit",
    "--full-index",
    "--no-signature",
    "--no-stat",
    "--keep-subject",
    "--no-numbered",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--unified=3",
    "--diff-algorithm=myers",
    "--find-renames",
)

_NEUTRAL_CONFIG = (
    "-c", "core.autocrlf=false",
    "-c", "core.safecrlf=false",
    "-c", "diff.noprefix=false",
    "-c", "commit.gpgsign=false",
    "-c", "rerere.enabled=false",
    "-c", "am.threeWay=false",
)


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_GLOBAL="/dev/null",
        GIT_CONFIG_SYSTEM="/dev/null",
        GIT_CONFIG_NOSYSTEM="1",
        LC_ALL="C",
        TZ="UTC",
    )
    env.update(extra or {})
    return env


def git(repo: Path, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None,
        check: bool = True) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(
        ["git", *_NEUTRAL_CONFIG, *args],
        cwd=repo,
        env=git_env(env),
        input=stdin,
        capture_output=True,
    )
    if check and result.returncode != 0:
        raise BreezeError(
            f"git {' '.join(args)} failed in {repo}:\n{result.stderr.decode(errors='replace').strip()}"
        )
    return result


def git_text(repo: Path, *args: str, **kwargs) -> str:
    return git(repo, *args, **kwargs).stdout.decode().strip()


def identity_env(name_email: tuple[str, str], date: str | None = None, author: bool = True) -> dict[str, str]:
    name, email = name_email
    env = {"GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}
    if author:
        env |= {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email}
    if date:
        env |= {"GIT_COMMITTER_DATE": date}
        if author:
            env["GIT_AUTHOR_DATE"] = date
    return env
