"""Progress output and the one error type every command reports cleanly."""

from __future__ import annotations

import contextlib
import sys
import time


class BreezeError(Exception):
    """A failure with a message meant for the developer; printed without a traceback."""


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def step(title: str):
    """Print ``title`` before a slow step and its duration after it."""
    info(f"==> {title}")
    started = time.monotonic()
    yield
    info(f"    done in {time.monotonic() - started:.1f}s")
