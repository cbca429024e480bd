"""The ``airlab`` command line (also ``python -m airlab``).

Each command group lives in its own module with a ``register(subparsers)`` function
that adds its parser and sets ``func`` (called with the parsed namespace, returns an
exit code).

Example:
    >>> main(["sign", "direct", "--product-key", "pk", "--device-name", "device",
    ...       "--device-secret", "secret", "--client-id", "12345"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from airlab import __version__
from airlab.errors import AirlabError, UsageError

__all__ = ["main"]

_GROUPS = (
    "airlab.cli.sign",
    "airlab.cli.capture",
    "airlab.cli.lab",
    "airlab.cli.sim",
    "airlab.cli.cloud",
    "airlab.cli.classroom",
    "airlab.cli.timing",
    "airlab.cli.fleet",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="airlab",
        description="Air780EP + Alibaba Cloud IoT lab: signing, captures, simulator, cloud.",
    )
    parser.add_argument("--version", action="version", version=f"airlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _GROUPS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"airlab: error: {exc.option}: {exc.message}", file=sys.stderr)
        return 2
    except AirlabError as exc:
        print(f"airlab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `airlab … | head`: the reader left; end quietly, like SIGPIPE
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # the exit's flush must not fail again
        return 128 + 13
