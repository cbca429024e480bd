"""LLCOM (Luat's serial tool) logs: import and export.

LLCOM logs through Serilog, one line per event::

    2024-08-22 10:20:36.670 +08:00 [INF] <-AT\\r\\n
    2024-08-22 10:20:36.670 +08:00 [DBG] [HEX]41 54 0D 0A
    2024-08-22 10:20:36.686 +08:00 [INF] ->AT\\r\\n\\r\\nOK\\r\\n
    2024-08-22 10:20:36.686 +08:00 [DBG] [HEX]41 54 0D 0A 0D 0A 4F 4B 0D 0A

``<-`` is data sent by the host, ``->`` data received from the module.  The ``[HEX]``
line following a data line holds its exact bytes and wins over the text; without it
the text is unescaped (``\\r``, ``\\n``, ``\\t``, ``\\0``, ``\\\\``, ``\\xHH``).  The
``+zz:zz`` offset is optional (missing: UTC), fractions may have 1-7 digits.  Other
log lines of the tool (port opened ...) become marker records; lines that do not start
with a stamp, or whose stamp is not a date, become unparsed records.

(No real LLCOM sample was available: the layout is taken from LLCOM's source; the
reader is lenient about spacing, level names and the offset.)

Example:
    >>> t = parse_llcom("2024-08-22 10:20:36.670 +08:00 [INF] <-AT\\\\r\\\\n\\n")
    >>> t[0].direction.value, t[0].data, t[0].wall
    ('sent', b'AT\\r\\n', 1724293236.67)
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re

from airlab.at.events import Direction
from airlab.at.formats._common import is_header_line, read_log_text
from airlab.at.transcript import Record, RecordKind, Transcript
from airlab.errors import CaptureFormatError

__all__ = [
    "escape_llcom",
    "format_llcom",
    "parse_llcom",
    "read_llcom",
    "unescape_llcom",
    "write_llcom",
]

_LINE = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[ T](?P<time>\d{2}:\d{2}:\d{2}(?:[.,]\d{1,7})?)"
    r"\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?\s*\[(?P<level>[A-Za-z]{3,11})\]\s?(?P<msg>.*)$"
)
_LOOSE = re.compile(r"^\S+[ T]\S+.*\[[A-Za-z]{3,11}\]")
_HEX = re.compile(r"^\[HEX\]\s*((?:[0-9A-Fa-f]{2}\s*)*)$")
_ESC = re.compile(r"\\(x[0-9A-Fa-f]{2}|[rnt0\\])")
_ESC_MAP = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}
_DIRS = {"<-": Direction.SENT, "->": Direction.RECEIVED}


def unescape_llcom(text: str) -> bytes:
    """Bytes of an escaped LLCOM data text.

    >>> unescape_llcom(r"AT\\r\\n\\x1A")
    b'AT\\r\\n\\x1a'
    """
    out = bytearray()
    pos = 0
    for m in _ESC.finditer(text):
        out += text[pos : m.start()].encode("utf-8")
        code = m.group(1)
        out += bytes([int(code[1:], 16)]) if code[0] == "x" else _ESC_MAP[code]
        pos = m.end()
    out += text[pos:].encode("utf-8")
    return bytes(out)


def escape_llcom(data: bytes) -> str:
    """Escape bytes for an LLCOM data line (printable text kept, UTF-8 kept).

    >>> escape_llcom(b'AT\\r\\n\\xff')
    'AT\\\\r\\\\n\\\\xFF'
    """
    out: list[str] = []
    for ch in data.decode("utf-8", "surrogateescape"):
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif 0xDC80 <= o <= 0xDCFF:  # an undecodable byte
            out.append(f"\\x{o - 0xDC00:02X}")
        elif o < 0x20 or o == 0x7F or (0x80 <= o < 0xA0) or o in (0x2028, 0x2029, 0x85):
            out.extend(f"\\x{b:02X}" for b in ch.encode("utf-8"))
        else:
            out.append(ch)
    return "".join(out)


def _wall(date: str, time: str, tz: str | None) -> float:
    naive = dt.datetime.fromisoformat(f"{date}T{time.replace(',', '.')[:15]}")
    offset = dt.timedelta(0)
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return (naive - offset).replace(tzinfo=dt.UTC).timestamp()


def parse_llcom(text: str, source: str | None = None) -> Transcript:
    """Parse the text of an LLCOM log (see the module doc)."""
    t = Transcript(source=source, format="llcom")
    header: list[str] = []
    recs = t.records
    first_wall = math.nan
    pending: tuple[int, Direction, int] | None = None  # (index, direction, line) of last data

    def unparsed(line: str, line_no: int) -> None:
        recs.append(
            Record(
                Direction.RECEIVED, line.encode("utf-8"), line_no=line_no, kind=RecordKind.UNPARSED
            )
        )

    for i, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        m = _LINE.match(line)
        if m is None:
            if not recs and is_header_line(line):
                header.append(line)
            else:
                unparsed(line, i)
            continue
        try:
            wall = _wall(m["date"], m["time"], m["tz"])
        except ValueError:
            unparsed(line, i)
            continue
        if math.isnan(first_wall):
            first_wall = wall
        mono = round(wall - first_wall, 6)
        msg = m["msg"]
        hx = _HEX.match(msg.strip())
        if hx is not None:
            if pending is not None:
                idx, direction, pline = pending
                old = recs[idx]
                recs[idx] = Record(direction, bytes.fromhex(hx.group(1)), old.wall, old.mono, pline)
                pending = None
            else:  # a HEX line with no data line: still exact bytes, direction unknown
                unparsed(line, i)
            continue
        arrow = msg[:2]
        if arrow in _DIRS:
            direction = _DIRS[arrow]
            recs.append(Record(direction, unescape_llcom(msg[2:]), wall, mono, i))
            pending = (len(recs) - 1, direction, i)
        else:
            recs.append(
                Record(Direction.RECEIVED, line.encode("utf-8"), wall, mono, i, RecordKind.MARKER)
            )
            pending = None
    if header:
        t.meta["header"] = header
    return t


def read_llcom(path: str | os.PathLike[str]) -> Transcript:
    """Read an LLCOM log file into a :class:`Transcript`."""
    text = read_log_text(path)
    if not any(_LINE.match(line) or _LOOSE.match(line) for line in text.splitlines()[:200]):
        raise CaptureFormatError(
            str(path), "no LLCOM line (yyyy-MM-dd HH:mm:ss.fff [INF] ...) found"
        )
    return parse_llcom(text, source=str(path))


def _stamp(wall: float, offset: dt.timedelta) -> str:
    if math.isnan(wall):
        wall = 0.0
    tz = dt.timezone(offset)
    d = dt.datetime.fromtimestamp(round(wall, 3), tz)
    sign = "-" if offset < dt.timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    zone = f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return f"{d:%Y-%m-%d %H:%M:%S}.{d.microsecond // 1000:03d} {zone}"


def format_llcom(
    transcript: Transcript, *, hex_lines: bool = True, utc_offset_hours: float = 8.0
) -> str:
    """The data records of ``transcript`` as LLCOM log text (with ``[HEX]`` lines).

    ``utc_offset_hours`` is the zone the stamps are written in (LLCOM writes local
    time; 8 = China).  Marker and unparsed records are left out.
    """
    offset = dt.timedelta(hours=utc_offset_hours)
    out: list[str] = []
    for rec in transcript.records:
        if not rec.is_data:
            continue
        stamp = _stamp(rec.wall, offset)
        arrow = "<-" if rec.direction is Direction.SENT else "->"
        out.append(f"{stamp} [INF] {arrow}{escape_llcom(rec.data)}\n")
        if hex_lines:
            out.append(f"{stamp} [DBG] [HEX]{rec.data.hex(' ').upper()}\n")
    return "".join(out)


def write_llcom(transcript: Transcript, path: str | os.PathLike[str], **kw: object) -> None:
    """Write ``transcript`` as an LLCOM log; see :func:`format_llcom`."""
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(format_llcom(transcript, **kw))  # type: ignore[arg-type]
