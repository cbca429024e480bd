"""``airlab capture``: convert capture files; check them for the tutorial's pitfalls.

``airlab capture convert IN OUT [--from FMT] [--to FMT] [--date YYYY-MM-DD]
[--level records|events]``

``airlab capture check FILE [--from FMT] [--window SECONDS] [--no-fix]``: the tutorial's
warnings found in a capture (:mod:`airlab.at.pitfalls`), one block each, secrets
masked; exit status 1 when there is any, 0 when none, 2 for a usage error.

Formats are guessed from the file names / contents when not given (see
:mod:`airlab.at.formats`).  Errors (unknown format, missing file, bad date) raise
:class:`~airlab.errors.UsageError` / :class:`~airlab.errors.CaptureFormatError`; the
dispatcher prints them as one line and exits non-zero.

Example:
    >>> main_convert(["data/captures/seed_direct_mqtt.log", "/tmp/direct.jsonl"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from airlab.cli.parsers import add_from_option, command_group
from airlab.errors import CaptureFormatError, UsageError

__all__ = ["check", "convert", "main_check", "main_convert", "register"]

_INPUT_FORMATS = "input format: sscom, llcom, jsonl, console, bytes, csv, parquet"


def convert(
    src: str,
    dst: str,
    *,
    from_fmt: str | None = None,
    to_fmt: str | None = None,
    date: str | None = None,
    level: str = "records",
    redact: bool = False,
    secrets: Sequence[str] = (),
) -> str:
    """Convert ``src`` to ``dst``; returns a one-line summary.

    >>> convert("in.log", "out.jsonl")  # doctest: +SKIP
    'in.log (sscom) -> out.jsonl (jsonl): 31 records, 0 unparsed'
    """
    from airlab.at.formats import (
        EXPORT_FORMATS,
        IMPORT_FORMATS,
        _check_format,
        export_format_for,
        read_capture,
        write_capture,
    )
    from airlab.at.formats._common import resolve_date

    from_fmt = _check_format(from_fmt, IMPORT_FORMATS, "from")
    to_fmt = _check_format(to_fmt, EXPORT_FORMATS, "to") or export_format_for(dst)
    day = resolve_date(date)[0] if date is not None else None
    if not Path(src).exists():
        raise CaptureFormatError(src, "no such file")
    if Path(dst).resolve() == Path(src).resolve():
        raise UsageError("out", "output file must differ from the input file")
    transcript = read_capture(src, fmt=from_fmt, date=day)
    if redact or secrets:
        from airlab.at.redact import redact_transcript

        transcript = redact_transcript(transcript, secrets, auto=redact or bool(secrets))
    out_dir = Path(dst).parent
    if not out_dir.is_dir():
        raise CaptureFormatError(dst, f"output directory {str(out_dir)!r} does not exist")
    write_capture(transcript, dst, to_fmt, level=level)
    n_bad = len(transcript.unparsed())
    return (
        f"{src} ({transcript.format}) -> {dst} ({to_fmt}): "
        f"{len(transcript)} records, {n_bad} unparsed"
    )


def check(
    src: str, *, from_fmt: str | None = None, window: float | None = None, fixes: bool = True
) -> tuple[str, int]:
    """The report of ``airlab capture check`` and how many findings it has.

    >>> text, n = check("data/broken_captures/mconnect_late.log")  # doctest: +SKIP
    >>> n  # doctest: +SKIP
    1
    """
    from airlab.at.formats import IMPORT_FORMATS, _check_format, read_capture
    from airlab.at.pitfalls import MCONNECT_WINDOW, check_transcript, format_findings

    from_fmt = _check_format(from_fmt, IMPORT_FORMATS, "from")
    if not Path(src).is_file():  # exit status 2 (usage), not 1 (= warnings found)
        raise UsageError("input", f"no such capture file: {src}")
    if window is not None and not window > 0:
        raise UsageError("window", "must be a positive number of seconds")
    transcript = read_capture(src, fmt=from_fmt)
    findings = check_transcript(
        transcript, window=MCONNECT_WINDOW if window is None else float(window)
    )
    head = f"{src} ({transcript.format}): "
    if not findings:
        head += "no warning of the tutorial found"
        return head, 0
    head += f"{len(findings)} warning(s) of the tutorial"
    return head + "\n" + format_findings(findings, fixes=fixes), len(findings)


def _run_check(args: argparse.Namespace) -> int:
    text, n = check(args.input, from_fmt=args.from_fmt, window=args.window, fixes=not args.no_fix)
    print(text)
    return 1 if n else 0


def _run_convert(args: argparse.Namespace) -> int:
    summary = convert(
        args.input,
        args.output,
        from_fmt=args.from_fmt,
        to_fmt=args.to_fmt,
        date=args.date,
        level=args.level,
        redact=args.redact,
        secrets=args.secret or (),
    )
    print(summary)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``capture`` command group to the ``airlab`` parser."""
    sub = command_group(
        subparsers,
        "capture",
        help="import and convert serial captures",
        dest="capture_command",
        metavar="SUBCOMMAND",
    )
    conv = sub.add_parser(
        "convert",
        help="convert a capture (sscom, llcom, console, bytes, jsonl, csv, parquet)",
        description="Convert a capture file. Formats are guessed from names/contents.",
    )
    conv.add_argument("input", help="capture file to read")
    conv.add_argument("output", help="file to write")
    add_from_option(conv, _INPUT_FORMATS)
    conv.add_argument(
        "--to",
        dest="to_fmt",
        metavar="FMT",
        help="output format: jsonl, csv, parquet, sscom, llcom",
    )
    conv.add_argument(
        "--date", help="day of sscom stamps (YYYY-MM-DD); default: from file name, else 2000-01-01"
    )
    conv.add_argument(
        "--level", default="records", help="records (default) or events (csv/parquet only)"
    )
    conv.add_argument(
        "--redact",
        action="store_true",
        help="mask MQTT passwords, HTTP signs and tokens/secrets in replies (same lengths)",
    )
    conv.add_argument(
        "--secret",
        action="append",
        metavar="VALUE",
        help="also mask this value wherever it appears (repeatable; implies --redact)",
    )
    conv.set_defaults(func=_run_convert)
    chk = sub.add_parser(
        "check",
        help="find the tutorial's pitfalls in a capture (exit 1 when any)",
        description="Check a capture (any supported format) for the tutorial's warnings: "
        "HTTPDATA length, typed characters, the Content-type space, a late MCONNECT, "
        "QoS1 in flight, CGATT before SAPBR, the MCONFIG order, the MQTT host, "
        "HTTPACTION not 200. Exit status 1 when any is found.",
    )
    chk.add_argument("input", help="capture file to check")
    add_from_option(chk, _INPUT_FORMATS)
    chk.add_argument(
        "--window",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds MCONNECT may follow CONNECT OK (default 5)",
    )
    chk.add_argument("--no-fix", action="store_true", help="leave out the fix lines")
    chk.set_defaults(func=_run_check)


def main_convert(argv: Sequence[str]) -> int:
    """Run ``airlab capture convert`` with ``argv`` in-process (errors printed as one line)."""
    from airlab.cli import main

    return main(["capture", "convert", *argv])


def main_check(argv: Sequence[str]) -> int:
    """Run ``airlab capture check`` with ``argv`` in-process."""
    from airlab.cli import main

    return main(["capture", "check", *argv])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_convert(sys.argv[1:]))
