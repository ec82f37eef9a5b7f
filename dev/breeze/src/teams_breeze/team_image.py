"""``./breeze build-image --team T --requirements FILE``, run in ``.build/venv`` (the requirements check
parses requirements with ``packaging`` and team names with the fork's own rule)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from teams_breeze import image
from teams_breeze.console import BreezeError
from teams_breeze.project import Project
from teams_breeze.start_airflow import team_names


def one_team(value: str) -> str:
    teams = team_names(value)
    if len(teams) != 1:
        raise argparse.ArgumentTypeError("give one team")
    return teams[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="breeze build-image --team")
    parser.add_argument("--team", type=one_team, required=True)
    parser.add_argument("--requirements", type=Path, required=True)
    parser.add_argument("--tag")
    parser.add_argument("--engine", choices=image.ENGINES)
    parser.add_argument("--base-image")
    args = parser.parse_args(argv)
    try:
        if not args.requirements.is_file():
            raise BreezeError(f"--requirements {args.requirements}: no such file")
        return image.build_team_image(Project.from_env(), args.team, args.requirements, tag=args.tag,
                                      engine=args.engine, base_image=args.base_image)
    except BreezeError as err:
        print(f"breeze build-image: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
