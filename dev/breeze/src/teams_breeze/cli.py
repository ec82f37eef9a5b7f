"""``./breeze``: command line of the fork's developer tooling."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from teams_breeze import build, environment, patches, rebase
from teams_breeze.console import BreezeError, info, step
from teams_breeze.project import Project


def _dists(project: Project, selected: str | None):
    return [project.fork.dist(selected)] if selected else list(project.fork.dists)


def cmd_setup(project: Project, args: argparse.Namespace) -> int:
    setup(project)
    info(f"Ready: {project.python.relative_to(project.root)} runs apache-airflow "
         f"{build.local_version(project, project.fork.dists[0])}")
    return 0


def setup(project: Project) -> None:
    """Materialise what is missing or stale, build changed wheels, install changed ones."""
    rebase.refuse_during_rebase(project)
    for dist in project.fork.dists:
        state = patches.tree_state(project, dist)
        if state is patches.TreeState.DIVERGED:
            raise BreezeError(
                f"work/{dist.series} has its own commits and the patch files changed too; "
                "export or drop the tree's work (`./breeze patches apply --force`) first"
            )
        if state in (patches.TreeState.MISSING, patches.TreeState.STALE):
            with step(f"Materialising work/{dist.series}"):
                patches.apply(project, dist)
        elif state is patches.TreeState.AHEAD:
            info(f"    note: building work/{dist.series} with work not exported to {dist.series}/ yet")
    # Every tree first: the core wheel's git_version names the sources of all of them.
    wheels = [build.build_wheel(project, dist) for dist in project.fork.dists]
    environment.install(project, wheels)


def cmd_patches_apply(project: Project, args: argparse.Namespace) -> int:
    rebase.refuse_during_rebase(project)
    for dist in _dists(project, args.dist):
        with step(f"Applying {dist.series}"):
            if not patches.apply(project, dist, force=args.force):
                info(f"    work/{dist.series} already matches the patch files")
    return 0


def cmd_patches_export(project: Project, args: argparse.Namespace) -> int:
    rebase.refuse_during_rebase(project)
    for dist in _dists(project, args.dist):
        for path in patches.export(project, dist):
            info(f"    wrote {path}")
    info("Patch files and own trees are in sync with the work trees; commit them.")
    return 0


def cmd_patches_check(project: Project, args: argparse.Namespace) -> int:
    rebase.refuse_during_rebase(project)
    return report_check(project, _dists(project, args.dist))


def report_check(project: Project, dists) -> int:
    failed = False
    for dist in dists:
        problems = patches.check(project, dist)
        names = patches.series_names(project, dist)
        if problems:
            failed = True
            info(f"FAIL {dist.series} ({len(names)} patches):")
            for problem in problems:
                info(f"  - {problem}")
        else:
            info(f"ok   {dist.series}: {len(names)} patches apply strictly and re-export byte-identically")
    return 1 if failed else 0


def cmd_patches_new(project: Project, args: argparse.Namespace) -> int:
    rebase.refuse_during_rebase(project)
    dist = project.fork.dist(args.dist)
    patches.new(project, dist, args.name, args.subject, args.why, args.upstream_status, args.tests)
    if args.name in patches.series_names(project, dist):
        info(f"Committed and exported {dist.series}/{args.name}.patch")
    else:
        info(f"The change only touched the fork's own files: exported to {dist.own_tree}/, no patch {args.name}")
    return 0


def cmd_patches_fixup(project: Project, args: argparse.Namespace) -> int:
    rebase.refuse_during_rebase(project)
    dist = project.fork.dist(args.dist)
    patches.fixup(project, dist, args.name)
    info(f"Folded the changes into {dist.series}/{args.name}.patch and re-exported")
    return 0


def cmd_patches_rebase(project: Project, args: argparse.Namespace) -> int:
    if args.abort:
        for dist in rebase.abort(project):
            info(f"Rebase aborted: work/{dist.series} is back at {dist.name} {dist.version}")
        return 0
    moved = rebase.continue_rebase(project) if args.continue_rebase else rebase.start(project, Path(args.to))
    repinned = Project(project.root)
    info("Moved to the new pins in fork.toml; checking the series:")
    return report_check(repinned, [repinned.fork.dist(dist.name) for dist in moved])


def cmd_patches_check_prefixes(project: Project, args: argparse.Namespace) -> int:
    from teams_breeze import prefixes

    setup(project)
    return prefixes.check_all(project)


def cmd_testing_tests(project: Project, args: argparse.Namespace) -> int:
    setup(project)
    pytest_args = list(args.pytest_args)
    if not any(Path(project.root / a.split("::")[0]).exists() for a in pytest_args if not a.startswith("-")):
        pytest_args.append("tests")
    if not any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in pytest_args):
        pytest_args = ["-n", "auto", *pytest_args]
    command = [str(project.python), "-m", "pytest", *pytest_args]
    info("==> " + " ".join(command[1:]))
    os.chdir(project.root)
    os.execv(command[0], command)


def cmd_testing_patch(project: Project, args: argparse.Namespace) -> int:
    dist = project.fork.dist(args.dist)
    series = patches.read_series(project, dist)
    if args.name not in series.patches:
        raise BreezeError(f"{dist.series} has no patch named {args.name}")
    named = patches.tests_named(series.patches[args.name])
    if not named:
        raise BreezeError(f"{dist.series}/{args.name}.patch names no tests (a Tests: trailer)")
    return cmd_testing_tests(project, argparse.Namespace(pytest_args=[*named, *args.pytest_args]))


def cmd_start_airflow(project: Project, args: argparse.Namespace) -> int:
    setup(project)
    command = [str(project.python), "-m", "teams_breeze.start_airflow", *args.start_args]
    os.chdir(project.root)
    os.execv(command[0], command)


def cmd_airflow(project: Project, args: argparse.Namespace) -> int:
    """The airflow CLI against a deployment of start-airflow, with the environment it runs with."""
    import shlex

    home = Path(args.airflow_home or project.root / ".build" / "airflow-home").resolve()
    env_file = home / "airflow-cli.env"  # start_airflow.CLI_ENV_FILE
    if not env_file.is_file():
        raise BreezeError(f"no deployment has started on {home}: run ./breeze start-airflow"
                          + (f" --airflow-home {home}" if args.airflow_home else "") + " first")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "_AIRFLOW"))}
    for line in env_file.read_text().splitlines():
        _, assignment = shlex.split(line)  # export KEY=value
        key, value = assignment.split("=", 1)
        env[key] = value
    # the build the deployment runs (no setup: rebuilding under a running deployment would not change it)
    command = [str(project.python), "-m", "airflow", *args.airflow_args]
    os.chdir(home)
    os.execve(command[0], command, env)


def cmd_build_image(project: Project, args: argparse.Namespace) -> int:
    from teams_breeze import image

    setup(project)
    if args.team is not None:  # checked and built from .build/venv, which has the fork's team name rule
        if args.requirements is None:
            raise BreezeError("--team needs --requirements FILE: the team's extra requirements")
        command = [str(project.python), "-m", "teams_breeze.team_image", "--team", args.team,
                   "--requirements", str(Path(args.requirements).resolve())]
        for option in ("tag", "engine", "base_image"):
            if getattr(args, option):
                command += [f"--{option.replace('_', '-')}", getattr(args, option)]
        os.chdir(project.root)
        os.execv(command[0], command)
    return image.build_image(project, tag=args.tag, engine=args.engine, base_image=args.base_image)


def cmd_generate_constraints(project: Project, args: argparse.Namespace) -> int:
    environment.generate_constraints(project)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="breeze",
        description="Developer CLI of the Airflow multi-team fork: pinned upstream + patch series -> "
        "patched wheels -> tests and a running Airflow.",
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    setup_parser = commands.add_parser(
        "setup", help="download + verify pins, materialise, build patched wheels into dist/, install .build/venv"
    )
    setup_parser.set_defaults(func=cmd_setup)

    patches_parser = commands.add_parser("patches", help="the patch series: apply, export, check, new, fixup, rebase")
    patch_commands = patches_parser.add_subparsers(dest="patches_command", required=True, metavar="COMMAND")

    def with_dist(sub: argparse.ArgumentParser, required_default: str | None = None) -> None:
        sub.add_argument(
            "--dist", default=required_default,
            help="series to act on, e.g. airflow or providers/celery"
            + (f" (default: {required_default})" if required_default else " (default: all)"),
        )

    apply_parser = patch_commands.add_parser("apply", help="materialise work/<series> as base commit + one commit per patch")
    with_dist(apply_parser)
    apply_parser.add_argument("--force", action="store_true", help="rebuild even if the tree holds unexported work")
    apply_parser.set_defaults(func=cmd_patches_apply)

    export_parser = patch_commands.add_parser("export", help="rewrite the patch files and series from the work trees")
    with_dist(export_parser)
    export_parser.set_defaults(func=cmd_patches_export)

    check_parser = patch_commands.add_parser(
        "check", help="fail if a series does not apply strictly, re-exports differently, or the tree holds unexported work"
    )
    with_dist(check_parser)
    check_parser.set_defaults(func=cmd_patches_check)

    new_parser = patch_commands.add_parser("new", help="commit the tree's changes as a new patch at the end of a series")
    new_parser.add_argument("name", help="Patch-Name: lowercase words joined by '-' (also the file name)")
    new_parser.add_argument("-m", "--subject", required=True, help="one-line subject, as for an upstream PR")
    new_parser.add_argument("--why", required=True, help="body: why the patch exists, what upstream needs to take it")
    new_parser.add_argument("--upstream-status", default="Pending", help="Upstream-Status trailer (default: Pending)")
    new_parser.add_argument("--tests", nargs="+", required=True, metavar="TEST",
                            help="Tests trailer: the test files or ids that exercise the patch (tests/x.py::test_y)")
    with_dist(new_parser, "airflow")
    new_parser.set_defaults(func=cmd_patches_new)

    fixup_parser = patch_commands.add_parser("fixup", help="fold the tree's changes into an existing patch")
    fixup_parser.add_argument("name", help="Patch-Name of the patch that owns the change")
    with_dist(fixup_parser, "airflow")
    fixup_parser.set_defaults(func=cmd_patches_fixup)

    rebase_parser = patch_commands.add_parser(
        "rebase", help="move distributions to new upstream pins, re-applying their series with a 3-way merge",
        description="Rebuild each work tree on the new sdist and re-apply its patches (3-way); at a conflict, "
        "resolve it in the tree, `git add`, then --continue. At the end fork.toml gets the new pins and the patches "
        "are exported and checked.",
    )
    rebase_action = rebase_parser.add_mutually_exclusive_group(required=True)
    rebase_action.add_argument("--to", metavar="PINS",
                               help="TOML file of [[dist]] tables: name, version, sdist, sha256")
    rebase_action.add_argument("--continue", dest="continue_rebase", action="store_true",
                               help="go on after resolving a conflict (runs `git am --continue`)")
    rebase_action.add_argument("--abort", action="store_true", help="give up: re-materialise the old pins")
    rebase_parser.set_defaults(func=cmd_patches_rebase)

    prefixes_parser = patch_commands.add_parser(
        "check-prefixes", help="import airflow (and each patched provider) after every patch of each series"
    )
    prefixes_parser.set_defaults(func=cmd_patches_check_prefixes)

    testing_parser = commands.add_parser("testing", help="run the test suite")
    testing_commands = testing_parser.add_subparsers(dest="testing_command", required=True, metavar="COMMAND")
    tests_parser = testing_commands.add_parser(
        "tests", help="set up, then run pytest (-n auto) on tests/ against the installed patched build",
        description="Extra arguments go to pytest, e.g. `./breeze testing tests tests/breeze -k apply`.",
    )
    tests_parser.set_defaults(func=cmd_testing_tests, passthrough="pytest_args")
    patch_tests_parser = testing_commands.add_parser(
        "patch", help="set up, then run the tests a patch names in its Tests: trailer",
        description="Extra arguments go to pytest, e.g. `./breeze testing patch teams-pools -n 0`.",
    )
    patch_tests_parser.add_argument("name", help="Patch-Name")
    with_dist(patch_tests_parser, "airflow")
    patch_tests_parser.set_defaults(func=cmd_testing_patch, passthrough="pytest_args")

    start_parser = commands.add_parser(
        "start-airflow",
        help="embedded PostgreSQL + scheduler, dag-processor, triggerer and webserver on localhost",
        description="Arguments after the command go to the launcher; see `./breeze start-airflow --help`.",
        add_help=False,
    )
    start_parser.set_defaults(func=cmd_start_airflow, passthrough="start_args")

    airflow_parser = commands.add_parser(
        "airflow", help="the airflow CLI against the deployment start-airflow runs (its environment)",
        description="./breeze airflow [--airflow-home DIR] <airflow arguments>, e.g. `./breeze airflow dags list`.",
    )
    airflow_parser.add_argument("--airflow-home", default=None,
                                help="the deployment's AIRFLOW_HOME (default: .build/airflow-home)")
    airflow_parser.set_defaults(func=cmd_airflow, passthrough="airflow_args")

    image_parser = commands.add_parser("build-image", help="build the production image from dist/ (docker, buildah or podman)")
    image_parser.add_argument("--tag", default=None, help="image tag (default: airflow-teams:<version>)")
    image_parser.add_argument("--engine", choices=("docker", "buildah", "podman"), help="default: first that works")
    image_parser.add_argument("--base-image", default=None, help="override the Dockerfile's BASE_IMAGE build arg "
                              "(with --team: the fork's image to build on, default airflow-teams:<version>)")
    image_parser.add_argument("--team", default=None, help="build a team's image: the fork's image plus --requirements "
                              "(tag airflow-teams-<team>:<version>)")
    image_parser.add_argument("--requirements", default=None, help="with --team: the team's requirements file")
    image_parser.set_defaults(func=cmd_build_image)

    constraints_parser = commands.add_parser(
        "generate-constraints", help="re-resolve the committed constraints file for the fork's Python"
    )
    constraints_parser.set_defaults(func=cmd_generate_constraints)
    return root


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args, extra = cli.parse_known_args(argv)
    passthrough = getattr(args, "passthrough", None)
    if passthrough is None:
        if extra:
            cli.error("unrecognized arguments: " + " ".join(extra))
    else:
        # argparse.REMAINDER drops leading options, so pass-through commands take whatever is left.
        setattr(args, passthrough, extra[1:] if extra[:1] == ["--"] else extra)
    try:
        return args.func(Project.from_env(), args)
    except BreezeError as err:
        print(f"breeze: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
