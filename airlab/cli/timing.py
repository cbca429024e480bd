"""``airlab timing``: the pairing table of a capture (one row per command, times in seconds).

``airlab timing CAPTURE [--from FMT] [--date YYYY-MM-DD] [--csv] [--out FILE] [--kind K]``

Without ``--csv`` it prints a readable table (command, kind, result, URC, outcome and
the main latencies); with ``--csv`` the whole table as CSV on stdout (or in ``--out``,
``.parquet`` too).

Example:
    >>> main_timing(["data/captures/seed_publish_subscribe.log"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from airlab.cli.parsers import add_from_option
from airlab.errors import CaptureFormatError, UsageError

__all__ = ["format_table", "main_timing", "register"]

_FORMATS = ("jsonl", "sscom", "llcom", "console", "bytes", "csv", "parquet")
_SHOWN = [
    ("seq", "#"),
    ("time", "sent (hh:mm:ss.mmm)"),
    ("kind", "kind"),
    ("command", "command"),
    ("final", "result"),
    ("urc", "URC"),
    ("outcome", "outcome"),
    ("sent_to_final_s", "sent→result s"),
    ("echo_to_urc_s", "echo→URC s"),
    ("sent_to_done_s", "sent→done s"),
]


def format_table(table, width: int = 48) -> str:  # type: ignore[no-untyped-def]
    """The table as aligned text (commands cut to ``width`` characters)."""
    import math

    def cell(col: str, v: object) -> str:
        if (
            v is None
            or (isinstance(v, float) and math.isnan(v))
            or str(v) in ("<NA>", "NaT", "nan")
        ):
            return "-"
        if col == "time":
            return v.strftime("%H:%M:%S.%f")[:-3]  # type: ignore[attr-defined]
        if col.endswith("_s"):
            return f"{float(v):.3f}"  # type: ignore[arg-type]
        s = str(v)
        return s if len(s) <= width else s[: width - 1] + "…"

    rows = [[h for _, h in _SHOWN]]
    cols = [c for c, _ in _SHOWN]
    for rec in table[cols].itertuples(index=False):
        rows.append([cell(c, v) for c, v in zip(cols, rec, strict=True)])
    for i, r in enumerate(rows[1:], start=0):
        det = table["detail"].iat[i]
        if isinstance(det, str):
            r[6] = f"{r[6]} ({det})"
    widths = [max(len(r[k]) for r in rows) for k in range(len(cols))]
    right = {k for k, c in enumerate(cols) if c.endswith("_s") or c == "seq"}
    lines = []
    for r in rows:
        lines.append(
            "  ".join(
                (v.rjust(widths[k]) if k in right else v.ljust(widths[k])) for k, v in enumerate(r)
            ).rstrip()
        )
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from airlab.analysis.pairing import pair_capture
    from airlab.analysis.stats import export_table
    from airlab.at.formats._common import resolve_date

    if args.from_fmt is not None and args.from_fmt not in _FORMATS:
        raise UsageError("from", f"expected one of {', '.join(_FORMATS)}, got {args.from_fmt!r}")
    date = resolve_date(args.date)[0] if args.date is not None else None
    if not Path(args.capture).exists():
        raise CaptureFormatError(args.capture, "no such file")
    table = pair_capture(args.capture, fmt=args.from_fmt, date=date)
    if args.kind:
        kinds = set(args.kind.split(","))
        from airlab.analysis.kinds import KINDS

        unknown = kinds - set(KINDS)
        if unknown:
            raise UsageError(
                "kind", f"unknown kind {sorted(unknown)[0]!r}; one of {', '.join(KINDS)}"
            )
        table = table[table["kind"].astype(str).isin(kinds)]
    if args.out:
        if Path(args.out).suffix.lower() not in (".csv", ".parquet", ".pq"):
            raise UsageError("out", "give a .csv or .parquet file name")
        fmt = export_table(table.reset_index(drop=True), args.out)
        print(f"{args.capture}: {len(table)} commands -> {args.out} ({fmt})")
        return 0
    if args.csv:
        secs = [c for c in table.columns if c.endswith("_s")]
        table.assign(**{c: table[c].round(6) for c in secs}).to_csv(
            sys.stdout, index=False, lineterminator="\n"
        )
        return 0
    print(format_table(table) if len(table) else "(no commands)")
    counts = table["outcome"].astype(str).value_counts()
    print(f"\n{len(table)} commands: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``timing`` to the ``airlab`` command."""
    p = subparsers.add_parser(
        "timing",
        help="pair each command of a capture with its result and URC (latencies in seconds)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("capture", help="capture file (sscom, LLCOM, JSONL transcript, ...)")
    add_from_option(p, "input format: " + "|".join(_FORMATS))
    p.add_argument("--date", help="day of undated stamps (sscom), YYYY-MM-DD")
    p.add_argument("--csv", action="store_true", help="write the whole table as CSV on stdout")
    p.add_argument("--out", help="write the table to a .csv or .parquet file")
    p.add_argument("--kind", help="only these command kinds (comma-separated)")
    p.set_defaults(func=_run)


def main_timing(argv: Sequence[str]) -> int:
    """Run ``airlab timing`` with ``argv`` (for tests and notebooks)."""
    from airlab.cli import main

    return main(["timing", *argv])
