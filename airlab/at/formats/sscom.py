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
_HEADER_PREFIX = re.compile(rb"[ \t]*\[[^\]\n]{0,40}")
_STAMP = re.compile(
    r"(?:(?P<y>\d{4})[-/](?P<mo>\d{1,2})[-/](?P<d>\d{1,2})[ T]+)?"
    r"(?P<h>\d{1,2}):(?P<mi>\d\d):(?P<s>\d\d)(?:\.(?P<frac>\d{1,6})|[:,](?P<ms>\d{3}))?"
)
_HEX_BODY = re.compile(r"[0-9A-Fa-f]{2}(?:(?: ?\n| )[0-9A-Fa-f]{2})*")
_ROLLOVER = 12 * 3600.0

_SENT_B = SENT_MARK.encode()
_RECV_B = RECEIVED_MARK.encode()
_SQUARE = CRLF_MARK.encode()  # b"\xe2\x96\xa1"
# markers the fast path does not place (UartAssist-style headers)
_OTHER_MARKS = (b"# SEND ", b"# RECV ", b"#SEND", b"#RECV")


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


def _uartassist_headers(arr: np.ndarray, brackets: np.ndarray) -> bool:
    """Whether a ``]`` is followed by ``#`` (or `` #``): a UartAssist ``# SEND``/``# RECV``
    header (any of :data:`_OTHER_MARKS`), which only the per-record path reads.  Looking
    only after the ``]`` positions already found is much cheaper than four searches of
    the whole file."""
    import numpy as np

    after = brackets[brackets + 2 < arr.size] + 1
    nxt = arr[after]
    return bool(np.any((nxt == 0x23) | ((nxt == 0x20) & (arr[after + 1] == 0x23))))


def _scan_bytes_fast(holder: list[bytes]) -> _Scan | None:
    """Vectorised scanner for regular logs (UTF-8, no indents, every stamp readable).

    ``holder`` is a one-item list with the file's bytes; the scanner takes them out so
    they can be freed as soon as the record texts are copied (peak memory).  Returns
    ``None`` (the bytes put back) when the file is not regular; the caller then uses
    :func:`_scan_text`.  Headers are found with numpy over the bytes (every ``]``
    followed by a marker, stamps checked and decoded in bulk); texts are cut out by
    :func:`_slice_texts`.
    """
    import numpy as np

    raw = holder.pop()
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n")
    arr = np.frombuffer(raw, dtype=np.uint8)
    size = arr.size

    def give_up() -> None:
        holder.append(raw)

    chunk = 1 << 22
    brackets = [np.flatnonzero(arr[i : i + chunk] == 0x5D) + i for i in range(0, size, chunk)]
    cand = np.concatenate(brackets) if brackets else np.zeros(0, np.int64)
    del brackets
    # header window: '[' hh:mm:ss.mmm ']' marker (23 bytes from the '['), one gather.
    edge = (cand < 13) | (cand + 10 > size)
    odd = list(cand[edge])
    cand = cand[~edge]
    win = np.lib.stride_tricks.as_strided(arr, shape=(max(size - 22, 0), 23), strides=(1, 1))
    block = win[cand - 13]
    marks = np.ascontiguousarray(block[:, 14:]).view("S9")[:, 0]
    is_sent = marks == _SENT_B
    keep = is_sent | (marks == _RECV_B)
    # every marker must sit right after a ']' the scan saw: a bare marker (no stamp),
    # '] 收←◆' or a marker inside text is left to the per-record path.
    n_marks = int(np.count_nonzero(keep)) + sum(
        1 for p in odd if raw[int(p) + 1 : int(p) + 10] in (_SENT_B, _RECV_B)
    )
    if raw.count(_SENT_B) + raw.count(_RECV_B) != n_marks or _uartassist_headers(arr, cand):
        give_up()
        return None
    c, block, is_sent = cand[keep], block[keep], is_sent[keep]
    del cand, keep, win, marks
    start = c - 13
    regular = (block[:, 0] == 0x5B) & (block[:, 3] == 0x3A) & (block[:, 6] == 0x3A)
    regular &= block[:, 9] == 0x2E
    regular &= (start == 0) | (arr[np.maximum(start - 1, 0)] == 0x0A)
    # digits as uint8: a non-digit wraps around to a value > 9
    x = [block[:, k] - np.uint8(48) for k in (1, 2, 4, 5, 7, 8, 10, 11, 12)]
    del block
    for v in x:
        regular &= v <= 9
    h = x[0] * np.uint8(10) + x[1]
    mi = x[2] * np.uint8(10) + x[3]
    s = x[4] * np.uint8(10) + x[5]
    regular &= (h <= 23) & (mi <= 59) & (s <= 59)
    ms = x[6] * 100.0 + x[7] * 10.0 + x[8]
    secs = h * 3600.0 + mi * 60.0 + s + ms / 1000.0
    del x, h, mi, s, ms
    odd.extend(c[~regular])
    if odd:
        # an odd candidate is either a real header the fast path does not handle
        # (indent, bad stamp: use the per-record scanner) or ']发→◇' inside text.
        for pos in odd:
            pos = int(pos)
            line_start = raw.rfind(b"\n", 0, pos) + 1
            if raw[pos + 1 : pos + 10] in (_SENT_B, _RECV_B) and _HEADER_PREFIX.fullmatch(
                raw, line_start, pos
            ):
                give_up()
                return None
        c, is_sent, start, secs = c[regular], is_sent[regular], start[regular], secs[regular]
    n = c.size
    if n == 0:
        give_up()
        return None
    # preamble: only comment lines allowed on the fast path.
    pre = raw[: start[0]].decode("utf-8", "replace")
    header = pre.split("\n")[:-1] if pre else []
    if any(line.strip() and not is_header_line(line) for line in header):
        give_up()
        return None
    body_start = c + 10
    body_end = np.empty(n, np.int64)
    body_end[:-1] = start[1:] - 1
    body_end[-1] = size
    # sent records closed by a '□' line: drop the '□', keep the newline before it.
    # a body that opens like a hex pair ('41 54 ...'): sscom's HEX display mode (or a
    # text record that looks like it); the per-record path decides.
    b0, b1, b2 = (arr[np.clip(body_start + j, 0, size - 1)] for j in range(3))
    looks_hex = _is_hex_digit(b0) & _is_hex_digit(b1)
    looks_hex &= (b2 == 0x20) | (b2 == 0x0A) | (body_end - body_start <= 2)
    looks_hex &= body_end - body_start >= 2
    if looks_hex.any():
        give_up()
        return None
    del b0, b1, b2, looks_hex
    # sent records closed by sscom's end-of-send mark '□' ('...\n□' or 'AT□'): drop
    # the '□', keep the newline before it (the CR LF the tool appended).
    sq = is_sent & (body_end - body_start >= 3)
    for j, byte in enumerate(_SQUARE):
        sq &= arr[np.clip(body_end - 3 + j, 0, size - 1)] == byte
    body_end -= 3 * sq
    if is_sent[-1] and raw.endswith(_SQUARE + b"\n"):
        body_end[-1] = size - 4
    del c, start, sq, arr
    texts, lines = _slice_texts(raw, body_start, body_end)
    if texts is None:
        give_up()
        return None
    scan = _Scan()
    scan.header = header
    scan.sent = is_sent
    scan.secs = secs
    scan.texts = texts
    scan.lines = lines
    scan.kinds = None
    return scan


_CHUNK_ROWS = 1 << 16


def _slice_texts(raw: bytes, body_start: np.ndarray, body_end: np.ndarray) -> tuple[Any, Any]:
    """Cut the record bodies out of ``raw`` and restore CR LF, ``_CHUNK_ROWS`` at a time.

    Returns a pyarrow ``ChunkedArray`` of the wire texts and the 1-based line of each
    record header, or ``(None, None)`` when the bytes are not valid UTF-8.  Working by
    chunks keeps the peak at about file + texts.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = body_start.size
    # the system allocator: with the default (mimalloc) pool, this loop of short-lived
    # chunk buffers ran 2x slower and held more memory (measured, pyarrow 26).
    pool = pa.system_memory_pool()
    chunks = []
    lines = np.empty(n, np.int64)
    nl_before = raw.count(b"\n", 0, int(body_start[0]))
    prev_end = int(body_start[0])
    for k0 in range(0, n, _CHUNK_ROWS):
        k1 = min(n, k0 + _CHUNK_ROWS)
        s, e = int(body_start[k0]), int(body_end[k1 - 1])
        nl_before += raw.count(b"\n", prev_end, s)
        prev_end = e
        sub = raw[s:e]
        nlpos = np.flatnonzero(np.frombuffer(sub, np.uint8) == 0x0A)
        m = k1 - k0
        local = np.empty(2 * m, np.int64)
        local[0::2] = body_start[k0:k1] - s
        local[1::2] = body_end[k0:k1] - s
        shift = np.searchsorted(nlpos, local)  # newlines before each boundary
        lines[k0:k1] = nl_before + shift[0::2] + 1
        nl_before += nlpos.size
        wire = sub.replace(b"\n", b"\r\n")
        del sub, nlpos
        pieces = pa.LargeStringArray.from_buffers(
            2 * m - 1, pa.py_buffer(local + shift), pa.py_buffer(wire)
        )
        part = pc.take(pieces, pa.array(np.arange(0, 2 * m - 1, 2)), memory_pool=pool)
        try:
            part.validate(full=True)
        except pa.ArrowInvalid:
            return None, None
        chunks.append(part)
    return pa.chunked_array(chunks, pa.large_string()), lines


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
        with open(path, "rb") as fh:
            holder = [fh.read()]
    except FileNotFoundError:
        raise CaptureFormatError(str(path), "no such file") from None
    try:
        scan = _scan_bytes_fast(holder)
    except ImportError:  # no pyarrow: the per-record scanner does the job
        scan = None
    if scan is None:
        text = decode_log(holder.pop())
        if _HEADER.search(text) is None:
            raise CaptureFormatError(str(path), "no sscom record found")
        return _frame_of(_scan_text(text), day)
    wall, mono = _clock(scan.secs, day)
    n = len(wall)
    import pyarrow.compute as pc

    nbytes = np.concatenate([pc.binary_length(ch).to_numpy() for ch in scan.texts.chunks]).astype(
        np.int64
    )
    text = pd.Series(
        pd.arrays.ArrowStringArray(scan.texts, dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    )
    return tables.assemble_records_frame(
        wall=wall,
        mono=mono,
        sent=scan.sent,
        kind_codes=np.zeros(n, np.int8),
        text=text,
        nbytes=nbytes,
        line_no=np.asarray(scan.lines, np.int64),
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
