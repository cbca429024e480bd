"""Reading an sscom log's text: record headers and stamps, the per-record scan
(:func:`_scan_text`), the dates of dated stamps and the hex-or-text decision per file
and record (:func:`_decide_hex`).  The rules are described in
:mod:`airlab.at.formats.sscom`.

Example:
    >>> from airlab.at.formats.sscom_scan import _stamp_parts
    >>> _stamp_parts("10:20:36.670")
    (37236.67, nan)
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import TYPE_CHECKING, Any

from airlab.at.formats._common import (
    epoch_of_date,
    is_header_line,
)
from airlab.at.transcript import RecordKind

if TYPE_CHECKING:
    pass


SENT_MARK = "发→◇"
RECEIVED_MARK = "收←◆"
CRLF_MARK = "□"

#: A record header: an optional indent, a ``[stamp]`` (optionally followed by one space)
#: and a marker; or a bare marker at the start of a line (sscom with its time stamps
#: switched off).  UartAssist-style ``# SEND ASCII>`` markers need the stamp (a bare
#: ``# ...`` line is a comment).
_HEADER = re.compile(
    r"^(?P<indent>[ \t]*)(?:\[(?P<stamp>[^\]\n]{0,40})\][ \t]?"
    r"(?P<mark>发→◇|收←◆|#[ \t]?(?:SEND|RECV)[ \t]?(?:ASCII|HEX)>)|(?P<bare>发→◇|收←◆))",
    re.M,
)
_STAMP = re.compile(
    r"(?:(?P<y>\d{4})[-/](?P<mo>\d{1,2})[-/](?P<d>\d{1,2})[ T]+)?"
    r"(?P<h>\d{1,2}):(?P<mi>\d\d):(?P<s>\d\d)(?:\.(?P<frac>\d{1,6})|[:,](?P<ms>\d{3}))?"
)
_HEX_BODY = re.compile(r"[0-9A-Fa-f]{2}(?:(?: ?\n| )[0-9A-Fa-f]{2})*")
_ROLLOVER = 12 * 3600.0

_SENT_B = SENT_MARK.encode()
_RECV_B = RECEIVED_MARK.encode()
_SQUARE = CRLF_MARK.encode()  # b"\xe2\x96\xa1"


def _is_hex_digit(v: Any) -> Any:
    low = v | 0x20
    return ((v >= 0x30) & (v <= 0x39)) | ((low >= 0x61) & (low <= 0x66))


# --------------------------------------------------------------------------- scanning


class _Scan:
    """Column-wise result of scanning a log (shared by the Transcript and DataFrame paths)."""

    __slots__ = ("days", "header", "kinds", "lines", "raw", "secs", "sent", "texts")

    def __init__(self) -> None:
        self.header: list[str] = []
        self.sent: Any = []  # bool per row
        self.secs: Any = []  # seconds since midnight (NaN when not read)
        self.days: Any = None  # epoch seconds of the stamp's own date (NaN: none), or None
        self.texts: Any = []  # list[str] or a pyarrow string array (wire text, CR LF)
        self.raw: dict[int, bytes] = {}  # exact bytes of hex-mode rows (texts[i] unused)
        self.lines: Any = []  # 1-based line of the record header
        self.kinds: list[RecordKind] | None = []  # None = all data (fast path)


def _stamp_parts(stamp: str) -> tuple[float, float]:
    """(seconds since midnight, epoch seconds of the stamp's date or NaN); NaN, NaN if bad."""
    m = _STAMP.fullmatch(stamp.strip())
    if not m:
        return math.nan, math.nan
    h, mi, s = int(m["h"]), int(m["mi"]), int(m["s"])
    if h > 23 or mi > 59 or s > 59:
        return math.nan, math.nan
    frac = m["frac"]
    sub = int(frac) / 10 ** len(frac) if frac else (int(m["ms"]) / 1000.0 if m["ms"] else 0.0)
    day = math.nan
    if m["y"]:
        try:
            day = epoch_of_date(dt.date(int(m["y"]), int(m["mo"]), int(m["d"])))
        except ValueError:
            return math.nan, math.nan
    return h * 3600 + mi * 60 + s + sub, day


def _hex_tokens(body: str) -> list[str] | None:
    """The hex pairs of a record body in sscom's HEX display mode, else ``None``.

    The body is stripped of surrounding whitespace and of a ``□`` end-of-send mark
    (sscom writes ``41 54 0D 0A □``: pairs, a space after each, then the mark).
    """
    s = body.strip(" \t\n")
    if s.endswith(CRLF_MARK):
        s = s[:-1].rstrip(" \t\n")
    if not s or not _HEX_BODY.fullmatch(s):
        return None
    return s.split()


def _scan_text(text: str) -> _Scan:
    """Per-record scanner over decoded text: handles every layout (indents, bad stamps,
    dated stamps, bare markers, HEX display)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    matches = list(_HEADER.finditer(text))
    scan = _Scan()
    kinds: list[RecordKind] = []
    scan.kinds = kinds
    days: list[float] = []
    line = 1
    pre_lines = text[: matches[0].start() if matches else len(text)].split("\n")
    if matches:
        pre_lines.pop()  # the empty tail before the first header
    for pre_line in pre_lines:
        if is_header_line(pre_line):
            scan.header.append(pre_line)
        elif pre_line.strip():
            scan.sent.append(False)
            scan.secs.append(math.nan)
            days.append(math.nan)
            scan.texts.append(pre_line)
            scan.lines.append(line)
            kinds.append(RecordKind.UNPARSED)
        line += 1
    n = len(matches)
    # (row, hex pairs or None, marker says HEX) of each data row, for the HEX decision
    hex_rows: list[tuple[int, list[str] | None, bool]] = []
    for k, m in enumerate(matches):
        indent, stamp = m["indent"], m["stamp"]
        mark = m["mark"] or m["bare"]
        last = k == n - 1
        body = text[m.end() : matches[k + 1].start() if not last else len(text)]
        raw_body = body if last else body[:-1]
        body = raw_body.replace("\n" + indent, "\n") if indent else raw_body
        sent = mark == SENT_MARK or "SEND" in mark
        if mark[0] == "#" and body.startswith("\n"):
            body = body[1:]  # UartAssist: the data starts on the line after the header
        hex_body = _hex_tokens(body)
        if sent:
            # '□' is sscom's end-of-send mark: '...\n□' (the newline is the CR LF the
            # tool appended), 'AT□' (nothing appended).
            if body.endswith(CRLF_MARK):
                body = body[:-1]
            elif last and body.endswith(CRLF_MARK + "\n"):
                body = body[:-2]
        if stamp is None:
            secs, day = math.nan, math.nan
        else:
            secs, day = _stamp_parts(stamp)
        row = len(scan.texts)
        scan.sent.append(sent)
        scan.secs.append(secs)
        days.append(day)
        scan.lines.append(line)
        if stamp is not None and math.isnan(secs):
            scan.texts.append(text[m.start() : m.end()] + raw_body)
            kinds.append(RecordKind.UNPARSED)
        else:
            scan.texts.append(body.replace("\n", "\r\n"))
            kinds.append(RecordKind.DATA)
            hex_rows.append((row, hex_body, "HEX" in mark))
        line += raw_body.count("\n") + (0 if last else 1)
    _decide_hex(scan, hex_rows)
    if any(not math.isnan(d) for d in days):
        scan.days = _fill_days(scan.secs, days)
    return scan


def _fill_days(secs: list[float], days: list[float]) -> list[float]:
    """Give undated stamps in a file with dated ones the date of the nearest dated stamp
    before them (after them for the leading ones), +1 day at each midnight rollover."""
    out = list(days)
    carry = next(d for d in days if not math.isnan(d))
    prev = math.nan
    for i, (s, d) in enumerate(zip(secs, days, strict=True)):
        if math.isnan(s):
            continue
        if not math.isnan(d):
            carry = d
        else:
            if not math.isnan(prev) and s < prev - _ROLLOVER:
                carry += 86400.0
            out[i] = carry
        prev = s
    return out


def _decide_hex(scan: _Scan, rows: list[tuple[int, list[str] | None, bool]]) -> None:
    """Decode the records sscom displayed in HEX mode (``scan.raw``).

    Rule (a text record such as ``AB CD`` must stay text):

    * a record under an explicit HEX marker (``# RECV HEX>``) is hex when its body is;
    * **file level**: when every data record with a non-blank body is in the hex-pair
      form (2-digit tokens separated by single spaces / line breaks, an optional trailing
      space and ``□``) and at least one has 2 pairs or more, all of them are hex;
    * **mixed files** (the display mode switched mid-session): a record is hex when it
      has 3 pairs or more and one of them is ``0D`` or ``0A``.

    A hex body is the exact bytes: no CR LF is added, and a ``□`` adds nothing.
    """
    textual = [r for r in rows if not r[2]]
    bodies = [(i, toks) for i, toks, _ in textual if toks is not None or scan.texts[i].strip()]
    file_hex = bool(bodies) and all(toks is not None for _, toks in bodies)
    file_hex = file_hex and any(len(toks) >= 2 for _, toks in bodies if toks is not None)
    for i, toks, explicit in rows:
        if toks is None:
            continue
        if (
            explicit
            or file_hex
            or (len(toks) >= 3 and any(t.upper() in ("0D", "0A") for t in toks))
        ):
            scan.raw[i] = bytes.fromhex("".join(toks))
