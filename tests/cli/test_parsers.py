"""airlab.cli.parsers: the shared pieces of the command groups' parsers."""

from __future__ import annotations

import argparse
import doctest

import pytest

import airlab.cli.parsers as parsers


def test_docstring_examples() -> None:
    result = doctest.testmod(parsers, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_command_group_requires_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="airlab")
    group = parsers.command_group(
        parser.add_subparsers(), "demo", help="a demo", dest="demo_command", metavar="METHOD"
    )
    group.add_parser("run")
    assert parser.parse_args(["demo", "run"]).demo_command == "run"
    with pytest.raises(SystemExit):
        parser.parse_args(["demo"])
    assert "usage: airlab demo [-h] METHOD" in capsys.readouterr().err
