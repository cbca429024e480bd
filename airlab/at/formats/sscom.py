"""sscom serial-tool logs (the tutorial's captures): import, fast DataFrame import, export.

A record starts with ``[hh:mm:ss.mmm]发→◇`` (bytes sent by the host) or
``[hh:mm:ss.mmm]收←◆`` (bytes received), optionally indented (the indent of the header
line is removed from the record's continuation lines).  Text before the first record
(``SOURCE:`` / ``#`` lines) is metadata.

Byte reconstruction rule (derived from the tutorial's captures):

* the newline right before a record header is sscom's record separator, not data;
* every other newline inside a record's text is a CR LF on the wire;
* a ``□`` line closing a sent record is the CR LF sscom appended, so
  ``发→◇AT+CGATT?\\n□\\n[...`` → ``AT+CGATT?\\r\\n``; without the ``□`` line (seed
  logs) the blank line after the sent text is that CR LF:
  ``发→◇AT+CGATT?\\n\\n[...`` → ``AT+CGATT?\\r\\n``;
* the last record runs to the end of the file (no separator follows it), so a file
  ending in ``CONNACK OK\\n`` gives ``...CONNACK OK\\r\\n``.
* ``□`` is sscom's end-of-send mark: with CR LF appended the CR LF shows as the line
  break before it; without, it follows the text on the same line (``发→◇AT□`` → ``AT``).

HEX display mode ("HEX显示"): sscom writes each chunk as hex pairs, a space after
each, e.g. ``[10:48:58.563]发→◇41 54 2B 53 54 41 52 54 0A □ `` (sent; the ``□`` on
the same line) and ``[17:10:11.957]收←◆03 03 1E ... AD D9 `` (received), long
chunks possibly wrapped.  A hex body is the exact bytes: no CR LF is reconstructed
and the ``□`` adds nothing -- Modbus frames logged as ``01 03 00 00 00 01 84 0A □``
were answered, so no CR LF went out after them.  Which records are hex is decided
per file, then per record (:func:`_decide_hex`): so a text record ``AB CD`` stays
text unless the whole file is hex.

Variants also read (all seen in public logs / tools' source):

* stamps with a date (``[2024-07-22 10:20:36.670]``, ``[2024/07/22 10:20:36:670]``),
  or without milliseconds (``[10:20:36]``); a dated stamp's own date wins over the
  date rule below, and undated stamps in such a file take the date of the dated
  stamp before them;
* a space between the stamp and the marker (``[13:41:12.027] 收←◆``);
* bare markers at the start of a line (sscom with its time stamps switched off):
  ``收←◆5``; such records have no time (NaN);
* UartAssist-style headers ``[2019-07-13 11:21:44.870]# SEND ASCII>`` /
  ``# RECV ASCII>`` / ``# SEND HEX>`` / ``# RECV HEX>``: the data starts on the next
  line (the newline after ``>`` is not data); HEX records are decoded as hex.

The file is decoded as UTF-8 (GB18030 when that fails: sscom on Chinese Windows).
sscom is a display format: lone CR or LF bytes, and bytes that are not text, cannot
be told apart from CR LF after a round trip; use JSONL for exact bytes.

Plain stamps carry no date.  Date rule (:func:`~airlab.at.formats._common.resolve_date`):
``date=`` if given, else a ``YYYY-MM-DD``/``YYYYMMDD`` date in the file name, else
2000-01-01.  The clock is read as UTC.  A stamp more than 12 h earlier than the previous
one is taken as a midnight rollover (next day).  A header whose stamp cannot be read
becomes an unparsed record holding the whole record's text.

Example:
    >>> t = parse_sscom("[03:10:18.025]收←◆\\n+HTTPACTION: 1,200,124\\n", date="2024-07-22")
    >>> t[0].data
    b'\\r\\n+HTTPACTION: 1,200,124\\r\\n'
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from typing import TYPE_CHECKING, Any

from airlab.at.events import Direction
from airlab.at.formats._common import (
    decode_log,
    epoch_of_date,
    is_header_line,
    read_log_text,
    resolve_date,
)
from airlab.at.transcript import Record, RecordKind, Transcript
from airlab.errors import CaptureFormatError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "RECEIVED_MARK",
    "SENT_MARK",
    "parse_sscom",
    "read_sscom",
    "read_sscom_dataframe",
    "write_sscom",
]

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


#: bytes of the file read at a time by the fast path (a record longer than that grows
#: the window); the tests shrink it to put records across window boundaries.
_WINDOW = 1 << 22
#: line starts closer than this to the end of a window are left to the next window (a
#: header, with its indent, must be whole to be classified; the longest non-indent part
#: :data:`_HEADER_B` matches is under 200 bytes).
_MARGIN = 256
_HDR_LEN = 23  # '[hh:mm:ss.mmm]' + marker
# _HEADER over bytes, for the lines the fast path cannot classify by itself: a match is
# a header it does not handle (indent, other stamp, space, bare marker, UartAssist), so
# the per-record path must read the file.  The stamp allows 4 bytes per character, so it
# matches wherever _HEADER does (and a little more: giving up is always safe).
_HEADER_B = re.compile(
    rb"[ \t]*(?:\[[^\]\n]{0,160}\][ \t]?(?:%s|%s|#[ \t]?(?:SEND|RECV)[ \t]?(?:ASCII|HEX)>)"
    rb"|%s|%s)" % ((re.escape(_SENT_B), re.escape(_RECV_B)) * 2)
)


class _GiveUp(Exception):
    """The log is not regular: the per-record path reads it."""


def _read_more(fh: Any, buf: bytearray, fill: int) -> tuple[int, bool]:
    """Read into ``buf[fill:]``; returns (bytes added, end of file reached).

    CR LF is turned into LF here, once per byte read (as ``raw.replace(b"\\r\\n", b"\\n")``
    over the whole file would): a CR ending the read is left for the next read.
    """
    mv = memoryview(buf)
    want = len(buf) - fill
    got = 0
    eof = False
    while got < want:
        n = fh.readinto(mv[fill + got :])
        if not n:
            eof = True
            break
        got += n
    if got and buf.find(b"\r", fill, fill + got) >= 0:
        chunk = bytes(mv[fill : fill + got])
        if not eof and chunk.endswith(b"\r"):
            chunk = chunk[:-1]
            fh.seek(-1, os.SEEK_CUR)
        chunk = chunk.replace(b"\r\n", b"\n")
        mv[fill : fill + len(chunk)] = chunk
        got = len(chunk)
    mv.release()
    return got, eof


def _skip_bytes(v: np.ndarray, pos: np.ndarray, end: Any, chars: tuple[int, ...]) -> np.ndarray:
    """``pos`` advanced past any run of ``chars`` (not beyond ``end``), vectorised."""
    import numpy as np

    pos = pos.copy()
    end = np.broadcast_to(end, pos.shape)
    act = np.flatnonzero(pos < end)
    while act.size:
        c = v[pos[act]]
        hit = c == chars[0]
        for ch in chars[1:]:
            hit |= c == ch
        act = act[hit]
        pos[act] += 1
        act = act[pos[act] < end[act]]
    return pos


def _matches_at(v: np.ndarray, pos: np.ndarray, pattern: bytes) -> np.ndarray:
    """Whether ``v[p : p + len(pattern)] == pattern`` for each ``p`` (False past the end)."""
    import numpy as np

    ok = pos + len(pattern) <= v.size
    for j, byte in enumerate(pattern):
        ok &= v[np.minimum(pos + j, v.size - 1)] == byte
    return ok


def _regular_headers(v: np.ndarray, pos: np.ndarray) -> tuple[Any, Any, Any, Any]:
    """For line starts ``pos`` beginning with ``[``: (the ones with 23 bytes left, whether
    each is a regular sscom header, sent, seconds since midnight).

    Regular: ``[hh:mm:ss.mmm]`` (a valid time) right before ``发→◇`` / ``收←◆``.
    """
    import numpy as np

    pos = pos[pos + _HDR_LEN <= v.size]
    win = np.lib.stride_tricks.as_strided(
        v, shape=(max(v.size - _HDR_LEN + 1, 0), _HDR_LEN), strides=(1, 1), writeable=False
    )
    block = win[pos]
    marks = np.ascontiguousarray(block[:, 14:]).view("S9")[:, 0]
    sent = marks == _SENT_B
    regular = sent | (marks == _RECV_B)
    regular &= (block[:, 3] == 0x3A) & (block[:, 6] == 0x3A) & (block[:, 9] == 0x2E)
    regular &= block[:, 13] == 0x5D
    # digits as uint8: a non-digit wraps around to a value > 9
    x = [block[:, k] - np.uint8(48) for k in (1, 2, 4, 5, 7, 8, 10, 11, 12)]
    for d in x:
        regular &= d <= 9
    h = x[0] * np.uint8(10) + x[1]
    mi = x[2] * np.uint8(10) + x[3]
    s = x[4] * np.uint8(10) + x[5]
    regular &= (h <= 23) & (mi <= 59) & (s <= 59)
    secs = h * 3600.0 + mi * 60.0 + s + (x[6] * 100.0 + x[7] * 10.0 + x[8]) / 1000.0
    return pos, regular, sent, secs


class _Window:
    """What one window of the log gave: its rows, and where the next window starts."""

    __slots__ = ("cut", "cut_line", "header", "lines", "nbytes", "secs", "sent", "texts")

    cut: int  # where the next window starts (a byte offset in this window)
    cut_line: int  # how many lines that skips
    header: list[str]
    sent: Any  # bool per row (numpy)
    secs: Any  # seconds since midnight per row (numpy)
    lines: Any  # 1-based line of each record header (numpy)
    nbytes: Any  # wire bytes of each row (numpy)
    texts: Any  # the rows' wire texts (a pyarrow string array), or None


def _scan_window(buf: bytearray, fill: int, eof: bool, line0: int, first: bool) -> Any:
    """Scan ``buf[:fill]`` (it starts at a line start: the file's or a record header's).

    Returns ``None`` when more bytes are needed (no record ends in the window), else a
    :class:`_Window` with the rows of the records that end in it (all of them at the end
    of the file); the record cut at the window's end is read again with the next window.
    Raises :class:`_GiveUp` when the log is not regular.  ``first``: the window holds the
    start of the file (its preamble: comment lines only).  ``line0``: line of ``buf[0]``.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    v = np.frombuffer(buf, np.uint8, fill)
    lf = np.flatnonzero(v == 0x0A)
    ls = np.empty(lf.size + 1, np.int64)  # line starts; ls[k] is line line0 + k
    ls[0] = 0
    np.add(lf, 1, out=ls[1:])
    limit = fill if eof else fill - _MARGIN
    nls = int(np.searchsorted(ls, limit))
    fb = v[ls[:nls]]
    # indented lines: an indent then '[' or a marker may be a header (not handled here)
    ind = np.flatnonzero((fb == 0x20) | (fb == 0x09))
    suspects = []
    if ind.size:
        p = _skip_bytes(v, ls[ind], fill, (0x20, 0x09))
        late = np.flatnonzero(p >= limit)
        if late.size and not eof:
            nls = int(ind[late[0]])  # the rest of the indent is in the next window
            fb = fb[:nls]
            keep = ind < nls
            ind, p = ind[keep], p[keep]
        c = v[np.minimum(p, fill - 1)]
        lead = (p < fill) & ((c == 0x5B) | (c == 0xE5) | (c == 0xE6))
        suspects.append(ls[ind[lead]])
    # bare markers at the start of a line ('收←◆5'): headers without a stamp
    lead = np.flatnonzero((fb == 0xE5) | (fb == 0xE6))
    if lead.size:
        at = ls[lead]
        if (_matches_at(v, at, _SENT_B) | _matches_at(v, at, _RECV_B)).any():
            raise _GiveUp
    br = np.flatnonzero(fb == 0x5B)
    pos, regular, sent, secs = _regular_headers(v, ls[br])
    if pos.size < br.size:  # '[' too close to the end of the file for a regular header
        suspects.append(ls[br[pos.size :]])
    if not regular.all():
        suspects.append(pos[~regular])
        kh, sent, secs = br[: pos.size][regular], sent[regular], secs[regular]
    else:
        kh = br[: pos.size]
    for arr in suspects:
        for q in arr.tolist():
            if _HEADER_B.match(buf, q, fill):
                raise _GiveUp
    hs = ls[kh]  # header starts
    header: list[str] = []
    if first:
        pre_end = int(hs[0]) if hs.size else int(ls[nls - 1]) if nls else 0
        try:
            pre = bytes(buf[:pre_end]).decode("utf-8")
        except UnicodeDecodeError:
            raise _GiveUp from None  # GB18030 (or not text): the per-record path decodes
        header = pre.split("\n")[:-1]
        if any(line.strip() and not is_header_line(line) for line in header):
            raise _GiveUp
        if not hs.size:
            if eof:
                raise _GiveUp
            return None
    elif not hs.size and not eof:
        return None  # the window is all margin
    elif not hs.size or hs[0] != 0:
        raise _GiveUp  # cannot happen: buf[0] is the header cut at the last window's end
    # the records ending in this window: all at the end of the file, else all but the
    # last (cut: it is read again with the next window)
    m = hs.size if eof else hs.size - 1
    if m == 0 and not (first and hs[0] > 0):
        return None  # a record longer than the window
    # bodies (offsets in buf) and the newlines before their starts / ends
    bs = hs[:m] + _HDR_LEN
    s_nl = kh[:m]
    be = np.empty(m, np.int64)
    e_nl = np.empty(m, np.int64)
    be[: hs.size - 1] = hs[1:] - 1  # the newline before the next header is no data
    e_nl[: hs.size - 1] = kh[1:] - 1
    if eof:
        be[-1] = fill  # the last record runs to the end of the file
        e_nl[-1] = lf.size
    # a body that opens (after blanks) like a hex pair ('41 54 ...', '41\n'): sscom's
    # HEX display mode, or a text record looking like it; the per-record path decides.
    p = _skip_bytes(v, bs, be, (0x20, 0x09, 0x0A))
    c0, c1, c2 = (v[np.minimum(p + j, fill - 1)] for j in range(3))
    looks_hex = (p + 1 < be) & _is_hex_digit(c0) & _is_hex_digit(c1)
    looks_hex &= (c2 == 0x20) | (c2 == 0x0A) | (p + 2 >= be)
    if looks_hex.any():
        raise _GiveUp
    sent, secs = sent[:m], secs[:m]
    # sent records closed by sscom's end-of-send mark '□' ('...\n□' or 'AT□'): drop
    # the '□', keep the newline before it (the CR LF the tool appended).
    sq = sent & (be - bs >= 3) & _matches_at(v, be - 3, _SQUARE)
    be -= 3 * sq
    if m and eof and sent[-1] and buf.endswith(_SQUARE + b"\n", 0, fill):
        be[-1] = fill - 4
        e_nl[-1] = lf.size - 1
    w = _Window()
    w.cut = fill if eof else int(hs[m])
    w.cut_line = 0 if eof else int(kh[m])
    w.header = header
    w.sent, w.secs = sent, secs
    w.lines = line0 + s_nl
    # the wire texts: every newline in a body is a CR LF; one replace over the window,
    # then the bodies are cut out of it (their offsets moved by the newlines before).
    offsets = np.empty(2 * m, np.int64)
    offsets[0::2] = bs + s_nl
    offsets[1::2] = be + e_nl
    w.nbytes = offsets[1::2] - offsets[0::2]
    if not m:
        w.texts = None
        return w
    end = int(be[-1])
    # (a copy of the part used only when it is small: the bytes after it are unused)
    wire = (buf if 2 * end > len(buf) else buf[:end]).replace(b"\n", b"\r\n")
    pieces = pa.LargeStringArray.from_buffers(2 * m - 1, pa.py_buffer(offsets), pa.py_buffer(wire))
    part = pc.take(
        pieces, pa.array(np.arange(0, 2 * m - 1, 2)), memory_pool=pa.system_memory_pool()
    )
    try:
        part.validate(full=True)
    except pa.ArrowInvalid:
        raise _GiveUp from None
    w.texts = part
    return w


def _scan_bytes_fast(fh: Any) -> tuple[_Scan, np.ndarray] | None:
    """Vectorised scanner for regular logs (UTF-8, no indents, every stamp readable).

    Reads the open binary file ``fh`` a window (:data:`_WINDOW` bytes) at a time into one
    reused buffer; a record cut at a window's end is carried to the next one.  Returns
    the scan (texts: a pyarrow ``ChunkedArray`` of the wire texts, one chunk per window)
    and each record's byte count, or ``None`` when the log is not regular (the caller
    then reads the file again for :func:`_scan_text`).
    """
    import numpy as np
    import pyarrow as pa

    size = os.fstat(fh.fileno()).st_size
    buf = bytearray(max(min(_WINDOW, size + 1), 2 * _MARGIN))
    fill, eof, line0, first = 0, False, 1, True
    windows: list[_Window] = []
    header: list[str] = []
    try:
        while True:
            if not eof:
                n, eof = _read_more(fh, buf, fill)
                fill += n
            w = _scan_window(buf, fill, eof, line0, first)
            if w is None:  # no record ends in the window: a bigger one
                grown = bytearray(2 * len(buf))
                grown[:fill] = memoryview(buf)[:fill]
                buf = grown
                continue
            if first:
                header, first = w.header, False
            if w.texts is not None:
                windows.append(w)
            if eof:
                break
            line0 += w.cut_line
            buf[: fill - w.cut] = buf[w.cut : fill]
            fill -= w.cut
    except _GiveUp:
        return None
    scan = _Scan()
    scan.header = header
    scan.sent = np.concatenate([w.sent for w in windows])
    scan.secs = np.concatenate([w.secs for w in windows])
    scan.lines = np.concatenate([w.lines for w in windows])
    scan.texts = pa.chunked_array([w.texts for w in windows], pa.large_string())
    scan.kinds = None
    return scan, np.concatenate([w.nbytes for w in windows])


def _clock(secs: np.ndarray, day: dt.date, days: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """``wall`` and ``mono`` of each row: date + stamp, +1 day at each midnight rollover.

    ``days`` (epoch seconds of each row's own stamp date, NaN for none) wins over
    ``day`` where given.  ``mono`` counts from the first readable stamp (rounded to the
    microsecond).
    """
    import numpy as np

    wall = np.full(secs.shape, np.nan)
    mono = np.full(secs.shape, np.nan)
    ok = ~np.isnan(secs)
    dated = None
    if days is not None:
        days = np.asarray(days, dtype=float)
        dated = ok & ~np.isnan(days)
        ok &= ~dated
    v = secs[ok]
    if v.size:
        back = np.zeros(v.size, np.int64)
        back[1:] = np.diff(v) < -_ROLLOVER
        v = v + np.cumsum(back) * 86400.0
        wall[ok] = epoch_of_date(day) + v
        mono[ok] = np.round(v - v[0], 6)
    if dated is not None and dated.any():
        wall[dated] = days[dated] + secs[dated]
        have = ~np.isnan(wall)
        w = wall[have]
        mono[have] = np.round(w - w[0], 6)
    return wall, mono


# --------------------------------------------------------------------------- public API


def _first_stamp_day(scan: _Scan) -> dt.date | None:
    """The date of the first stamp that carries one (``[2024-07-22 10:20:36.670]``)."""
    if scan.days is None:
        return None
    for d in scan.days:
        if not math.isnan(d):
            return dt.date(1970, 1, 1) + dt.timedelta(days=int(d // 86400))
    return None


def parse_sscom(
    text: str, date: str | dt.date | None = None, source: str | None = None
) -> Transcript:
    """Parse the text of an sscom log into a :class:`Transcript` (see the module doc)."""
    import numpy as np

    day, date_source = resolve_date(date, source)
    scan = _scan_text(text)
    secs = np.asarray(scan.secs, dtype=float)
    wall, mono = _clock(secs, day, scan.days)
    stamp_day = _first_stamp_day(scan)
    if stamp_day is not None:
        day, date_source = stamp_day, "stamp"
    t = Transcript(source=source, format="sscom", date=day.isoformat())
    t.meta["date_source"] = date_source
    if scan.header:
        t.meta["header"] = scan.header
    assert scan.kinds is not None
    recs = t.records
    for i, text_i in enumerate(scan.texts):
        direction = Direction.SENT if scan.sent[i] else Direction.RECEIVED
        recs.append(
            Record(
                direction,
                scan.raw[i] if i in scan.raw else text_i.encode("utf-8"),
                float(wall[i]),
                float(mono[i]),
                int(scan.lines[i]),
                scan.kinds[i],
            )
        )
    return t


def read_sscom(path: str | os.PathLike[str], date: str | dt.date | None = None) -> Transcript:
    """Read an sscom log file into a :class:`Transcript`.

    >>> t = read_sscom("data/captures/seed_direct_mqtt.log")  # doctest: +SKIP
    """
    text = read_log_text(path)
    if _HEADER.search(text) is None:
        raise CaptureFormatError(str(path), "no sscom record ([hh:mm:ss.mmm]发→◇ / 收←◆) found")
    return parse_sscom(text, date=date, source=str(path))


def read_sscom_dataframe(
    path: str | os.PathLike[str], date: str | dt.date | None = None
) -> pd.DataFrame:
    """Read an sscom log straight into a records DataFrame (fast, vectorised).

    Same rows and columns as ``read_sscom(path, date).to_dataframe("records")``, but
    without building a Python object per record: use it for large logs.

    >>> df = read_sscom_dataframe("data/captures/seed_direct_mqtt.log")  # doctest: +SKIP
    >>> df.columns.tolist()  # doctest: +SKIP
    ['time', 'mono', 'direction', 'kind', 'text', 'nbytes', 'line_no', 'unparsed']
    """
    import numpy as np
    import pandas as pd

    from airlab.at.formats import tables

    day, _ = resolve_date(date, path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        raise CaptureFormatError(str(path), "no such file") from None
    with fh:
        try:
            fast = _scan_bytes_fast(fh)
        except ImportError:  # no pyarrow: the per-record scanner does the job
            fast = None
        if fast is None:
            fh.seek(0)
            raw = fh.read()
    if fast is None:
        text = decode_log(raw)
        del raw
        if _HEADER.search(text) is None:
            raise CaptureFormatError(str(path), "no sscom record found")
        return _frame_of(_scan_text(text), day)
    scan, nbytes = fast
    wall, mono = _clock(scan.secs, day)
    text = pd.Series(
        pd.arrays.ArrowStringArray(scan.texts, dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    )
    return tables.assemble_records_frame(
        wall=wall,
        mono=mono,
        sent=scan.sent,
        kind_codes=np.zeros(len(wall), np.int8),
        text=text,
        nbytes=nbytes,
        line_no=scan.lines,
    )


def _frame_of(scan: _Scan, day: dt.date) -> pd.DataFrame:
    import numpy as np

    from airlab.at.formats import tables

    secs = np.asarray(scan.secs, dtype=float)
    wall, mono = _clock(secs, day, scan.days)
    assert scan.kinds is not None
    data = [k is RecordKind.DATA for k in scan.kinds]
    texts = scan.texts
    nbytes = [len(t) if t.isascii() else len(t.encode()) for t in texts]
    if scan.raw:
        texts = list(texts)
        for i, b in scan.raw.items():
            texts[i] = b.decode("utf-8", "replace")
            nbytes[i] = len(b)
    return tables.assemble_records_frame(
        wall=wall,
        mono=mono,
        sent=np.asarray(scan.sent, bool),
        kind_codes=np.asarray([tables.KIND_CODES[k] for k in scan.kinds], np.int8),
        text=texts,
        nbytes=np.asarray(nbytes, np.int64),
        line_no=np.asarray(scan.lines, np.int64),
        data_rows=np.asarray(data, bool),
    )


def _stamp(wall: float) -> str:
    if math.isnan(wall):
        return "00:00:00.000"
    ms_total = round(wall * 1000) % 86_400_000
    h, rest = divmod(ms_total, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def format_sscom(transcript: Transcript, *, crlf_mark: bool = True) -> str:
    """The transcript as sscom log text.

    ``crlf_mark=True`` writes the tutorial's layout (a ``□`` line for the CR LF that
    ends a sent record); ``False`` writes the seed logs' layout (a blank line).
    Metadata header lines are written first; unparsed and marker records are left
    out (sscom has no place for them).  A record without a time gets the previous
    record's stamp.

    >>> from airlab.at.transcript import Transcript
    >>> t = Transcript(); t.add("sent", b"AT\\r\\n", wall=3600.0)
    >>> format_sscom(t)
    '[01:00:00.000]发→◇AT\\n□'
    """
    out: list[str] = [line + "\n" for line in transcript.meta.get("header", [])]
    first = True
    last_wall = math.nan
    for rec in transcript.records:
        if not rec.is_data:
            continue
        wall = rec.wall if not math.isnan(rec.wall) else last_wall
        last_wall = wall
        text = rec.data.decode("utf-8", "replace").replace("\r\n", "\n")
        sent = rec.direction is Direction.SENT
        if sent and crlf_mark and text.endswith("\n"):
            text += CRLF_MARK
        mark = SENT_MARK if sent else RECEIVED_MARK
        out.append(("" if first else "\n") + f"[{_stamp(wall)}]{mark}{text}")
        first = False
    return "".join(out)


def write_sscom(
    transcript: Transcript, path: str | os.PathLike[str], *, crlf_mark: bool = True
) -> None:
    """Write the transcript as an sscom log (UTF-8); see :func:`format_sscom`."""
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(format_sscom(transcript, crlf_mark=crlf_mark))
