"""Untimestamped console logs pasted from documentation (no direction markers).

Reading rules (a heuristic: the text has lost which side wrote each line):

* The preamble (``SOURCE: ...`` and ``#`` lines before the first data line) is metadata.
* A line starting with ``AT`` (any case, after whitespace) is a command the host sent
  *and* its echo (echo is on): a sent record ``<line>\\r\\n`` and a received record
  ``<line>\\r\\n``.
* Every other line is received text; consecutive received lines form one record, each
  newline becoming CR LF.
* After a ``>`` prompt line, the following lines up to a final result (``OK``,
  ``ERROR``, ``+CME ERROR: n``, ``SEND OK`` ...), the next ``AT`` line or a ``#`` line
  are data the host sent (certificates written with ``AT+FSWRITE``, ``AT+CIPSEND``
  data): one sent record, LF line endings plus a final LF (that is what makes the
  FSWRITE lengths of the captures add up); blank lines right after ``>`` are skipped.
* ``#`` lines after the preamble (``# ----- next block -----`` separators, markdown
  headings) become marker records: not data, but they split the log into blocks that
  :meth:`Transcript.events` parses separately.
* There is no time: ``wall`` and ``mono`` are NaN.

Example:
    >>> t = parse_console("AT\\n\\nOK\\n")
    >>> [(r.direction.value, r.data) for r in t]
    [('sent', b'AT\\r\\n'), ('received', b'AT\\r\\n'), ('received', b'\\r\\nOK\\r\\n')]
"""

from __future__ import annotations

import os

from airlab.at.events import Direction
from airlab.at.formats._common import is_header_line, read_log_text
from airlab.at.transcript import Record, RecordKind, Transcript

__all__ = ["parse_console", "read_console"]

_FINALS = ("OK", "ERROR", "SEND OK", "SEND FAIL", "CLOSE OK", "SHUT OK")
_FINAL_PREFIXES = ("+CME ERROR", "+CMS ERROR", "DATA ACCEPT")


def _is_final(s: str) -> bool:
    return s in _FINALS or s.startswith(_FINAL_PREFIXES)


def _is_command(s: str) -> bool:
    return s[:2].upper() == "AT"


def parse_console(text: str, source: str | None = None) -> Transcript:
    """Parse a console log (see the module doc)."""
    t = Transcript(source=source, format="console")
    recs = t.records
    header: list[str] = []
    received: list[str] = []
    received_line = 0
    data: list[str] | None = None  # lines after a '>' prompt (None: not in a data phase)
    data_line = 0
    in_header = True

    def flush_received() -> None:
        nonlocal received
        if received:
            blob = "\r\n".join(received) + "\r\n"
            recs.append(Record(Direction.RECEIVED, blob.encode("utf-8"), line_no=received_line))
            received = []

    def flush_data() -> None:
        nonlocal data
        if data:
            while data and not data[-1].strip():
                data.pop()
            blob = "\n".join(data) + "\n"
            recs.append(Record(Direction.SENT, blob.encode("utf-8"), line_no=data_line))
        data = None

    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for i, line in enumerate(lines, start=1):
        line = line.removesuffix("\r")
        s = line.strip()
        if in_header:
            if not s or is_header_line(line):
                if s:
                    header.append(line)
                continue
            in_header = False
        if data is not None:
            if not s.startswith("#") and not _is_command(s) and not _is_final(s):
                if s or data:
                    if not data:
                        data_line = i
                    data.append(line)
                continue
            flush_data()
        if s.startswith("#"):
            flush_received()
            recs.append(
                Record(Direction.RECEIVED, line.encode("utf-8"), line_no=i, kind=RecordKind.MARKER)
            )
        elif _is_command(s):
            flush_received()
            wire = (s + "\r\n").encode("utf-8")
            recs.append(Record(Direction.SENT, wire, line_no=i))
            recs.append(Record(Direction.RECEIVED, wire, line_no=i))
        else:
            if not received:
                received_line = i
            received.append(line)
            if s == ">":
                flush_received()
                data = []
    flush_data()
    flush_received()
    if header:
        t.meta["header"] = header
    return t


def read_console(path: str | os.PathLike[str]) -> Transcript:
    """Read a console log file into a :class:`Transcript`."""
    return parse_console(read_log_text(path), source=str(path))
