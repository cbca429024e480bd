"""Pieces of argparse the command groups share: a group of subcommands, and the
``--from FMT`` option of the commands that read a capture.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="airlab")
    >>> group = command_group(parser.add_subparsers(), "demo", help="a demo group",
    ...                       dest="demo_command")
    >>> run = group.add_parser("run")
    >>> add_from_option(run, "input format: sscom, llcom")
    >>> parser.parse_args(["demo", "run", "--from", "sscom"]).from_fmt
    'sscom'
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_from_option", "command_group"]


def command_group(
    subparsers: Any,
    name: str,
    *,
    help: str,
    dest: str,
    description: str | None = None,
    metavar: str = "COMMAND",
) -> Any:
    """Add the command ``name`` to ``subparsers`` and return its own subparsers, of
    which one must be given (``dest`` names the one chosen)."""
    parser = subparsers.add_parser(name, help=help, description=description)
    group = parser.add_subparsers(dest=dest, metavar=metavar)
    group.required = True
    return group


def add_from_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--from FMT``: the format of the capture read (``args.from_fmt``, default: guessed)."""
    parser.add_argument("--from", dest="from_fmt", metavar="FMT", help=help)
