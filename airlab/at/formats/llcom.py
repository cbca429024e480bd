r"""LLCOM (Luat's serial tool) logs: import and export.

LLCOM logs through Serilog (default file template
``{Timestamp:yyyy-MM-dd HH:mm:ss.fff zzz} [{Level:u3}] {Message:lj}{NewLine}``) to
``logs/log.txt`` (``logs/log_<instance>.txt`` in newer versions), rolled daily.  From
its source (github.com/chenxuuu/llcom, ``llcom/Tools/Global.cs``)::

    Logger.AddUartLogInfo($"<-{Byte2Readable((byte[])sender)}");     // Uart_UartDataSent
    Logger.AddUartLogDebug($"[HEX]{Byte2Hex((byte[])sender, " ")}");
    Logger.AddUartLogInfo($"Raw<-{Byte2Readable((byte[])sender)}");  // Uart_UartDataRawSent
    Logger.AddUartLogDebug($"[Raw HEX]{Byte2Hex((byte[])sender, " ")}");
    Logger.AddUartLogInfo($"->{Byte2Readable((byte[])sender)}");     // Uart_UartDataRecived
    Logger.AddUartLogDebug($"[HEX]{Byte2Hex((byte[])sender, " ")}");

so a record is an ``[INF]`` data entry followed by a ``[DBG] [HEX]`` entry with its
exact bytes (``41 54 0D 0A``)::

    2024-08-22 10:20:36.670 +08:00 [INF] <-AT\r\n
    <empty line>
    2024-08-22 10:20:36.670 +08:00 [DBG] [HEX]41 54 0D 0A

``<-`` is data sent by the host, ``->`` data received from the module.  The data text
spans several lines: ``Byte2Readable`` writes CR LF as the escape ``\r\n`` *followed
by a real CR LF*, a lone CR / LF / TAB as its escape followed by the character, other
controls as ``\0 \a \b \v \f \e`` or ``\xHH``; it escapes nothing else (not even
``\``).  Older versions wrote control pictures instead (``␍␊`` + CR LF, ``␀``..``␟``,
``␡``), and with the symbol option off (or a non-UTF-8 encoding) the raw text (NUL
bytes dropped).  Serilog also renders ``{{``/``}}`` in the text as ``{``/``}``.  So
the ``[HEX]`` entry wins whenever present; without it the text is unescaped by the
rules above (all three styles; a bare line break counts as CR LF), which is exact for
LLCOM's escaped style except for ``\`` ambiguities.

``Raw<-`` entries (the data before LLCOM's send-processing script, not the wire bytes)
and their ``[Raw HEX]`` entries, ``[START]Logs by LLCOM ...`` (``[SRART]`` in older
versions), ``[openPort]...`` and any other tool entry become marker records holding
the entry's text.  Lines before the first entry are metadata (``#``/``SOURCE:``) or
unparsed; an entry whose stamp is not a date becomes an unparsed record.  The
``+zz:zz`` offset is optional (missing: UTC), fractions may have 1-7 digits.

(No real LLCOM sample was available: the layout is taken from LLCOM's source.)

Example:
    >>> t = parse_llcom("2024-08-22 10:20:36.670 +08:00 [INF] <-AT\\r\\n\n\n")
    >>> t[0].direction.value, t[0].data, t[0].wall
    ('sent', b'AT\r\n', 1724293236.67)
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
# one token of LLCOM's readable text (Byte2Readable, llcom/Tools/Global.cs): an escape
# with the real character LLCOM writes after it, a control picture (older versions),
# a bare line break (raw text), or a plain escape.
_ESC = re.compile(
    r"\\r\\n(?:\r?\n)?|\\r\r?|\\n\n?|\\t\t?|\\x([0-9A-Fa-f]{2})|\\([0abvfe\\])"
    r"|␍␊(?:\r?\n)?|␍\r?|␊\n?|␉\t?|([\u2400-\u241f\u2421])|\r?\n"
)
_ESC_MAP = {
    "0": b"\0", "a": b"\a", "b": b"\b", "v": b"\v", "f": b"\f", "e": b"\x1b", "\\": b"\\",
}  # fmt: skip
_FIXED = {
    "\\r\\n": b"\r\n", "\\r": b"\r", "\\n": b"\n", "\\t": b"\t",
    "␍␊": b"\r\n", "␍": b"\r", "␊": b"\n", "␉": b"\t", "\n": b"\r\n",
}  # fmt: skip
_DIRS = {"<-": Direction.SENT, "->": Direction.RECEIVED}
_VISIBLE = {0: "\\0", 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r"}
_VISIBLE[0x1B] = "\\e"


def unescape_llcom(text: str) -> bytes:
    r"""Bytes of an LLCOM data text (see the module doc for the three styles).

    >>> unescape_llcom("AT\\r\\n\r\n\\x1A")
    b'AT\r\n\x1a'
    >>> unescape_llcom("OK␍␊\r\n")
    b'OK\r\n'
    """
    out = bytearray()
    pos = 0
    for m in _ESC.finditer(text):
        out += text[pos : m.start()].encode("utf-8")
        tok = m.group(0)
        if m.group(1):
            out.append(int(m.group(1), 16))
        elif m.group(2):
            out += _ESC_MAP[m.group(2)]
        elif m.group(3):
            out.append(0x7F if m.group(3) == "\u2421" else ord(m.group(3)) - 0x2400)
        else:
            out += _FIXED[tok.rstrip("\r\n\t") or "\n"]
        pos = m.end()
    out += text[pos:].encode("utf-8")
    return bytes(out)


def _needs_hex_escape(o: int) -> bool:
    """A control character, a line separator, or a control picture (read back as one)."""
    return (
        o < 0x20
        or o == 0x7F
        or 0x80 <= o < 0xA0
        or o in (0x2028, 0x2029, 0x85)
        or 0x2400 <= o <= 0x241F
        or o == 0x2421
    )


def escape_llcom(data: bytes) -> str:
    r"""LLCOM's readable text of ``data`` (``Byte2Readable``: an escape, then the real
    CR LF / CR / LF / TAB after it).  Two additions keep it exact without the ``[HEX]``
    line: ``\`` is written ``\\`` and a byte that is not UTF-8 is written ``\xHH``.

    >>> escape_llcom(b'AT\r\n\xff')
    'AT\\r\\n\r\n\\xFF'
    """
    out: list[str] = []
    text = data.decode("utf-8", "surrogateescape")
    i = 0
    while i < len(text):
        ch = text[i]
        o = ord(ch)
        if ch == "\r" and text[i + 1 : i + 2] == "\n":
            out.append("\\r\\n\r\n")
            i += 2
            continue
        if ch == "\\":
            out.append("\\\\")
        elif ch in "\r\n\t":
            out.append(_VISIBLE[o] + ch)
        elif 0xDC80 <= o <= 0xDCFF:  # an undecodable byte
            out.append(f"\\x{o - 0xDC00:02X}")
        elif o in _VISIBLE:
            out.append(_VISIBLE[o])
        elif _needs_hex_escape(o):
            out.extend(f"\\x{b:02X}" for b in ch.encode("utf-8"))
        else:
            out.append(ch)
        i += 1
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
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the file
    # group physical lines into entries: a stamped line and the lines that follow it
    # (a data text keeps its line breaks, see the module doc)
    entries: list[tuple[int, re.Match[str], list[str]]] = []
    for i, line in enumerate(lines, start=1):
        line = line.removesuffix("\r")
        m = _LINE.match(line)
        if m is not None:
            entries.append((i, m, []))
        elif entries:
            entries[-1][2].append(line)
        elif not line.strip():
            continue
        elif not recs and is_header_line(line):
            header.append(line)
        else:
            recs.append(
                Record(
                    Direction.RECEIVED, line.encode("utf-8"), line_no=i, kind=RecordKind.UNPARSED
                )
            )
    pending: int | None = None  # index of the data record a [HEX] entry may complete
    for line_no, m, more in entries:
        whole = "\n".join([m.group(0), *more])
        try:
            wall = _wall(m["date"], m["time"], m["tz"])
        except ValueError:
            recs.append(
                Record(Direction.RECEIVED, whole.encode("utf-8"), line_no=line_no,
                       kind=RecordKind.UNPARSED)
            )  # fmt: skip
            pending = None
            continue
        if math.isnan(first_wall):
            first_wall = wall
        mono = round(wall - first_wall, 6)
        msg = "\n".join([m["msg"], *more])
        hx = _HEX.match(msg.strip())
        if hx is not None and pending is not None:
            old = recs[pending]
            recs[pending] = Record(
                old.direction, bytes.fromhex(hx.group(1)), old.wall, old.mono, old.line_no
            )
            pending = None
            continue
        pending = None
        arrow = msg[:2]
        if arrow in _DIRS and hx is None:
            recs.append(Record(_DIRS[arrow], unescape_llcom(msg[2:]), wall, mono, line_no))
            pending = len(recs) - 1
        else:  # Raw<- / [Raw HEX] / [START] / [openPort] ... or a HEX entry with no data
            recs.append(
                Record(Direction.RECEIVED, whole.encode("utf-8"), wall, mono, line_no,
                       RecordKind.MARKER)
            )  # fmt: skip
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
