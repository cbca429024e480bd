"""The fast path of :func:`~airlab.at.formats.sscom.read_sscom_dataframe`: the file
is read in windows of bytes (:data:`_WINDOW`) and its regular headers
(``[hh:mm:ss.mmm]`` and a marker) found with numpy; a line it cannot classify makes it
give up, and the per-record path (:mod:`airlab.at.formats.sscom_scan`) reads the file.

Example:
    >>> from airlab.at.formats.sscom_fast import _HEADER_B
    >>> bool(_HEADER_B.match("[03:10:18.025]收←◆".encode()))
    True
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import TYPE_CHECKING, Any

from airlab.at.formats._common import (
    epoch_of_date,
    is_header_line,
)
from airlab.at.formats.sscom_scan import (
    _RECV_B,
    _ROLLOVER,
    _SENT_B,
    _SQUARE,
    _is_hex_digit,
    _Scan,
)

if TYPE_CHECKING:
    import numpy as np

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
