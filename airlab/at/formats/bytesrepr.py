"""Logs of Python bytes reprs, one per line (``b'AT+CGMI\\r\\r\\n'``, e.g. MicroPython
``uart.readline()`` output).

Each ``b'...'`` line is read with :func:`ast.literal_eval` and becomes a received
record (the printed bytes came from the module).  A line starting with ``AT`` is the
module's echo, which proves what the host sent: a sent record is synthesised before
it, holding the line up to and including its first CR (``AT+CGMI\\r\\r\\n`` → sent
``AT+CGMI\\r``; no CR → the line without its line ending plus CR).  ``SOURCE:``/``#``
lines before the first data line are metadata; later ``#`` lines are markers; any
other line is kept as an unparsed record.  No time: ``wall``/``mono`` are NaN.

Example:
    >>> t = parse_bytesrepr("b'AT+CGMI\\\\r\\\\r\\\\n'\\n")
    >>> [(r.direction.value, r.data) for r in t]
    [('sent', b'AT+CGMI\\r'), ('received', b'AT+CGMI\\r\\r\\n')]
"""

from __future__ import annotations

import ast
import os
import re

from airlab.at.events import Direction
from airlab.at.formats._common import is_header_line, read_log_text
from airlab.at.transcript import Record, RecordKind, Transcript

__all__ = ["BYTES_LINE", "parse_bytesrepr", "read_bytesrepr"]

#: A line holding a bytes literal.
BYTES_LINE = re.compile(r"""^\s*[bB][rR]?(['"]).*\1\s*$""")


def parse_bytesrepr(text: str, source: str | None = None) -> Transcript:
    """Parse a bytes-repr log (see the module doc)."""
    t = Transcript(source=source, format="bytes")
    recs = t.records
    header: list[str] = []
    for i, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        s = line.strip()
        if not s:
            continue
        if not recs and is_header_line(line):
            header.append(line)
            continue
        data: object = None
        if BYTES_LINE.match(line):
            try:
                data = ast.literal_eval(s)
            except (ValueError, SyntaxError):
                data = None
        if isinstance(data, bytes):
            if data[:2].upper() == b"AT":
                cr = data.find(b"\r")
                sent = data[: cr + 1] if cr >= 0 else data.rstrip(b"\r\n") + b"\r"
                recs.append(Record(Direction.SENT, sent, line_no=i))
            recs.append(Record(Direction.RECEIVED, data, line_no=i))
        elif s.startswith("#"):
            recs.append(
                Record(Direction.RECEIVED, line.encode("utf-8"), line_no=i, kind=RecordKind.MARKER)
            )
        else:
            recs.append(
                Record(
                    Direction.RECEIVED, line.encode("utf-8"), line_no=i, kind=RecordKind.UNPARSED
                )
            )
    if header:
        t.meta["header"] = header
    return t


def read_bytesrepr(path: str | os.PathLike[str]) -> Transcript:
    """Read a bytes-repr log file into a :class:`Transcript`."""
    return parse_bytesrepr(read_log_text(path), source=str(path))
