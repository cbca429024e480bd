"""The byte-level steps of the vectorised pairing (:mod:`airlab.analysis.fast`): numpy and
pyarrow over the concatenated bytes of each direction.

* :func:`_stream`, :func:`_lines`, :func:`_segments` - the bytes of a direction, its
  lines (as the parser joins them across records) and their text;
* :func:`_received_bodies`, :func:`_data_phases` - length-framed bodies from the
  module (``+HTTPREAD: n``, ``+MSUB: "t",n byte,…``) and ``AT+HTTPDATA`` data from the
  host, cut out by length;
* :class:`_Side`, :func:`_bounds`, :func:`_records_of` - a direction's positions and the
  record each byte came in;
* :func:`_named_tokens`, :class:`_Plus`, :class:`_LazyArgs` - the completing URCs
  (``+HTTPACTION: …``, ``CONNECT OK`` …) found by prefix.

A position is ``record index * _SHIFT + byte offset``, so one integer orders bytes of
both directions.  Anything these steps do not model raises :class:`Unsupported` (the
caller falls back to the event parser).

Example:
    >>> import numpy as np
    >>> b, starts = _stream(["AT\\r\\n", "OK\\r\\n"])
    >>> bytes(b), starts.tolist()
    (b'AT\\r\\nOK\\r\\n', [0, 4, 8])
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from airlab.at.urcs import (
    MAX_BODY,
    PAYLOAD_HEADERS,
)

if TYPE_CHECKING:
    import numpy as np


_SHIFT = 1 << 32  # pos = record index * _SHIFT + byte offset in the stream
_CR, _LF = 13, 10


class Unsupported(Exception):
    """The records hold something only the event parser models; use it instead."""


def _stream(texts: Any) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated UTF-8 bytes of ``texts`` and the start offset of each text."""
    import numpy as np
    import pyarrow as pa

    arr = pa.array(texts, type=pa.large_string()) if not isinstance(texts, pa.Array) else texts
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    if arr.null_count:
        arr = arr.fill_null("")
    offsets = np.frombuffer(arr.buffers()[1], np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    b = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    b = b[offsets[0] : offsets[-1]]
    return b, (offsets - offsets[0])


def _lines(b: np.ndarray, strict: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starts and ends of the lines of ``b`` (runs of non-CR/LF bytes) and the CR/LF mask.
    ``strict``: raise :class:`Unsupported` on other control bytes (one pass for both)."""
    import numpy as np

    n = len(b)
    if not n:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
    # control bytes are (nearly) all CR / LF: find them all in one pass, check the few
    term = np.less(b, 32)
    p = np.flatnonzero(term)
    cb = b[p]
    is_t = (cb == _CR) | (cb == _LF)
    if not is_t.all():
        if strict:
            raise Unsupported("control bytes")
        term[p[~is_t]] = False
        p = p[is_t]
    if strict and int(b.max()) >= 127 and bool(np.equal(b, 127).any()):
        raise Unsupported("control bytes")
    if not len(p):
        return np.zeros(1, np.int64), np.full(1, n, np.int64), term
    gap = np.flatnonzero(p[1:] - p[:-1] > 1)
    starts = p[gap] + 1
    ends = p[gap + 1]
    if p[0] > 0:
        starts = np.r_[0, starts]
        ends = np.r_[p[0], ends]
    if p[-1] < n - 1:
        starts = np.r_[starts, p[-1] + 1]
        ends = np.r_[ends, n]
    return starts, ends, term


def _segments(b: np.ndarray, bounds: np.ndarray) -> Any:
    """pyarrow strings ``b[bounds[k]:bounds[k+1]]`` (last to the end), zero copy."""
    import numpy as np
    import pyarrow as pa

    offs = np.empty(len(bounds) + 1, np.int64)
    offs[:-1] = bounds
    offs[-1] = len(b)
    return pa.LargeStringArray.from_buffers(
        len(bounds), pa.py_buffer(offs), pa.py_buffer(b), null_count=0
    )


def _drop_nested(starts: np.ndarray, ends: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Keep bodies whose header does not lie inside an earlier kept body."""
    import numpy as np

    keep = np.ones(len(starts), bool)
    for _ in range(len(starts) + 1):
        e = np.where(keep, ends, -1)
        prev_end = np.maximum.accumulate(np.r_[-1, e[:-1]]) if len(e) else e
        new = keep & ~(owner < prev_end)
        if (new == keep).all():
            return keep
        keep = new
    return keep  # pragma: no cover


def _received_bodies(b: np.ndarray, starts: np.ndarray, ends: np.ndarray, texts: Any) -> Any:
    """Body intervals (start, end) framed by payload headers and +MSUB inline headers."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    plus_all = np.flatnonzero(b[starts] == ord("+")) if len(starts) else np.zeros(0, np.int64)
    if not len(plus_all):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    sub_all = texts.take(pa.array(plus_all))
    hdr_idx, b_start, b_len = [], [], []
    for name, spec in PAYLOAD_HEADERS.items():
        sw = np.asarray(pc.starts_with(sub_all, name))  # the regexes are anchored there
        if not sw.any():
            continue
        plus, sub = plus_all[sw], sub_all.filter(pa.array(sw))
        if spec.only_answering:
            if pc.any(pc.starts_with(sub, name)).as_py():
                raise Unsupported(name)
            continue
        if spec.nargs == 1:
            pat = "^" + name.replace("+", r"\+") + r"\s*:\s*(?P<n>\d+)\s*[\r\n]"
        else:
            pat = (
                "^"
                + name.replace("+", r"\+")
                + r"\s*:\s*"
                + spec.first_arg
                + r"\s*,\s*(?P<n>\d+)\s*[\r\n]"
            )
        m = pc.extract_regex(sub, pat)
        ok = np.asarray(m.is_valid())
        if ok.any():
            idx = np.flatnonzero(ok)
            n = np.asarray(pc.cast(pc.struct_field(m.filter(ok), "n"), "int64"))
            line_end = ends[plus[idx]]
            skip = (b[line_end] == _CR) & (b[np.minimum(line_end + 1, len(b) - 1)] == _LF)
            skip &= line_end + 1 < len(b)
            hdr_idx.append(plus[idx])
            b_start.append(line_end + 1 + skip)
            b_len.append(n)
    sw = np.asarray(pc.starts_with(sub_all, "+MSUB"))
    plus, sub = plus_all[sw], sub_all.filter(pa.array(sw))
    m = pc.extract_regex(sub, r'^(?P<h>\+MSUB: ?(?:"[^"\r\n]*"|[^\r\n]*?),(?P<n>\d{1,9}) byte,)')
    ok = np.asarray(m.is_valid())
    if ok.any():
        idx = np.flatnonzero(ok)
        good = m.filter(ok)
        hlen = np.asarray(pc.binary_length(pc.struct_field(good, "h")))
        if (hlen > 1000).any():  # the parser bounds topics at 1024 characters
            raise Unsupported("long +MSUB header")
        hdr_idx.append(plus[idx])
        b_start.append(starts[plus[idx]] + hlen)
        b_len.append(np.asarray(pc.cast(pc.struct_field(good, "n"), "int64")))
    if not hdr_idx:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    hi = np.concatenate(hdr_idx)
    bs = np.concatenate(b_start).astype(np.int64)
    bl = np.concatenate(b_len).astype(np.int64)
    order = np.argsort(hi, kind="stable")
    hi, bs, bl = hi[order], bs[order], bl[order]
    if (bl > MAX_BODY).any():
        raise Unsupported("oversized body")
    be = np.minimum(bs + bl, len(b))
    keep = _drop_nested(starts[hi], be, starts[hi])
    return hi[keep], bs[keep], be[keep]


class _Side:
    """Lines (segments) of one direction with their stamps and positions."""

    def __init__(self, seg_start: np.ndarray, text: Any, is_body: np.ndarray) -> None:
        self.seg_start = seg_start
        self.text = text
        self.is_body = is_body


def _bounds(
    b: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    term: np.ndarray,
    cut_s: np.ndarray,
    cut_e: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments of a stream cut by bodies / data (``cut_s``..``cut_e``): line starts
    outside the cuts, the cut starts and the places right after a cut in the middle of a
    line.  Returns their starts, which are cuts, and the stream offset at which each
    segment's event is complete (its line's end, the next segment or the cut's end)."""
    import numpy as np

    n = len(b)
    if not len(cut_s):
        return starts, np.zeros(len(starts), bool), ends
    o = np.argsort(cut_s, kind="stable")
    cut_s, cut_e = cut_s[o], cut_e[o]
    if (cut_s[1:] >= cut_e[:-1]).all():  # disjoint cuts: mark the line starts in each
        lo = np.searchsorted(starts, cut_s, side="left")
        hi = np.searchsorted(starts, cut_e, side="left")
        depth = np.bincount(lo, minlength=len(starts) + 1)
        depth -= np.bincount(hi, minlength=len(starts) + 1)
        inside = np.cumsum(depth[:-1]) > 0
    else:
        k = np.searchsorted(cut_s, starts, side="right") - 1
        inside = (k >= 0) & (starts < np.where(k >= 0, cut_e[np.maximum(k, 0)], 0))
    st, en = starts[~inside], ends[~inside]
    tail = cut_e[cut_e < n]
    tail = tail[~term[tail]]
    tail_end = ends[np.searchsorted(starts, tail, side="right") - 1]
    pos = np.concatenate([st, cut_s, tail])
    endc = np.concatenate([en, np.maximum(cut_e - 1, cut_s), tail_end])
    body = np.zeros(len(pos), bool)
    body[len(st) : len(st) + len(cut_s)] = True
    o = np.argsort(pos * 2 + ~body, kind="stable")  # a cut first where a line starts
    pos, endc, body = pos[o], endc[o], body[o]
    keep = np.r_[True, pos[1:] != pos[:-1]] & (pos < n)
    pos, endc, body = pos[keep], endc[keep], body[keep]
    nxt = np.r_[pos[1:], n]
    return pos, body, np.where(body, endc, np.minimum(endc, nxt))


def _records_of(
    rows: np.ndarray, offs: np.ndarray, first: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Records holding stream offsets ``first`` and ``end`` (``first <= end``, sorted):
    one search for the ends; a first offset searched again only when it lies in an
    earlier record than its end (a line or body split across records)."""
    import numpy as np

    ke = np.searchsorted(offs, end, side="right") - 1
    earlier = offs[ke] > first
    if earlier.any():
        kf = ke.copy()
        kf[earlier] = np.searchsorted(offs, first[earlier], side="right") - 1
    else:
        kf = ke
    return rows[kf], rows[ke]


def _cmd_of(cmd_pos: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Index of the last command sent before each position (-1: none)."""
    import numpy as np

    return np.searchsorted(cmd_pos, pos, side="left") - 1


def _category_is(col: Any, value: str) -> np.ndarray:
    """``col == value`` as a numpy bool array, through the codes of a categorical."""
    import numpy as np

    if hasattr(col, "cat"):
        cats = list(col.cat.categories)
        codes = col.cat.codes.to_numpy()
        return codes == cats.index(value) if value in cats else np.zeros(len(col), bool)
    return (col.astype(str) == value).to_numpy()


def _trim(arr: Any) -> Any:
    """``utf8_trim_whitespace`` without its one-off Unicode table set-up: ASCII trimming
    gives the same strings unless a trimmed string starts or ends with a byte outside
    printable ASCII (rare: then the Unicode kernel runs)."""
    import numpy as np
    import pyarrow.compute as pc

    out = pc.ascii_trim_whitespace(arr)
    if not len(out):
        return out
    out = out.cast(arr.type)
    offs = np.frombuffer(out.buffers()[1], np.int64)[out.offset : out.offset + len(out) + 1]
    data = out.buffers()[2]
    if data is None:
        return out
    b = np.frombuffer(data, np.uint8)
    nonempty = offs[1:] > offs[:-1]
    first = b[offs[:-1][nonempty]]
    last = b[offs[1:][nonempty] - 1]
    odd = ((first < 33) | (first > 126)) | ((last < 33) | (last > 126))
    if odd.any():
        return pc.utf8_trim_whitespace(arr)
    return out


class _Plus:
    """Where ``+<NAME>`` occurs in a stream, ASCII case-insensitively: a cheap filter
    before a case-insensitive regex ``AT\\s*\\+(?:NAME|…)`` (``None``: cannot tell,
    the stream is not ASCII and the regex folds U+017F to ``s``, U+212A to ``k``)."""

    def __init__(self, b: np.ndarray) -> None:
        import numpy as np

        self.b = b
        self.ascii = not len(b) or int(b.max()) < 0x80
        self.plus = np.flatnonzero(b == ord("+"))

    def after(self, words: Any) -> np.ndarray | None:
        """Positions of the ``+`` followed by one of ``words``."""
        import numpy as np

        if not self.ascii:
            return None
        found = []
        for w in words:
            w = w.lstrip("+").upper().encode()
            idx = self.plus[self.plus + len(w) < len(self.b)]
            for j, ch in enumerate(w):
                c = self.b[idx + 1 + j]
                ok = c == ch
                if ord("A") <= ch <= ord("Z"):
                    ok |= c == ch + 32
                idx = idx[ok]
            found.append(idx)
        return np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)


_HTTPDATA_RE = r"(?i)^\s*AT\s*\+HTTPDATA\s*=\s*(?P<n>\d+)\s*(?:,[^,]*)?\s*$"


def _data_phases(
    sb: np.ndarray, s_starts: np.ndarray, s_lend: np.ndarray, s_text: Any, plus: _Plus
) -> tuple[Any, Any]:
    """``AT+HTTPDATA=<len>`` data phases on the sent side: (starts, ends) of the data.

    Processed one after another in the parser: a phase may swallow a later command line,
    and a command may follow the data on the same line (no line break after the data).
    Vectorised when phases neither overlap nor run into a command; exact loop otherwise.
    """
    import re

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    empty = np.zeros(0, np.int64), np.zeros(0, np.int64)
    hits = plus.after(["HTTPDATA"])
    if hits is None:
        cand = np.arange(len(s_starts))
    elif not len(hits):
        return empty
    else:  # only the lines that mention it
        cand = np.unique(np.searchsorted(s_starts, hits, side="right") - 1)
        cand = cand[cand >= 0]
    lines = pc.utf8_rtrim(s_text.take(pa.array(cand)), characters="\r\n")
    m = pc.extract_regex(lines, _HTTPDATA_RE)
    ok = np.asarray(m.is_valid())
    idx = cand[ok]
    n = len(sb)
    if len(idx):
        lens = np.asarray(pc.cast(pc.struct_field(m.filter(pa.array(ok)), "n"), "int64"))
        line_start = s_starts[idx]
        line_end = s_lend[idx]
    else:
        lens = line_start = line_end = np.zeros(0, np.int64)
    good = (lens > 0) & (lens <= MAX_BODY) & (line_end < n)
    le = line_end[good]
    ds = (
        le
        + 1
        + (
            (sb[np.minimum(le, n - 1)] == _CR)
            & (le + 1 < n)
            & (sb[np.minimum(le + 1, n - 1)] == _LF)
        )
    )
    de = np.minimum(ds + lens[good], n)
    starts = line_start[good]
    prev_end = np.maximum.accumulate(np.r_[-1, de[:-1]]) if len(de) else de
    tail_mid = (de < n) & (de > 0)
    tail_mid[tail_mid] = (sb[de[tail_mid] - 1] != _CR) & (sb[de[tail_mid] - 1] != _LF)
    tail_mid[tail_mid] &= (sb[de[tail_mid]] != _CR) & (sb[de[tail_mid]] != _LF)
    tails = de[tail_mid]
    tail_end = s_lend[np.searchsorted(s_starts, tails, side="right") - 1]
    if not (starts < prev_end).any() and not any(
        b"HTTPDATA" in bytes(sb[t:e]).upper() for t, e in zip(tails, tail_end, strict=True)
    ):
        return ds.astype(np.int64), de.astype(np.int64)

    # exact sequential scan (rare)
    rx = re.compile(
        rb"[\t\n\f\r ]*AT[\t\n\f\r ]*\+HTTPDATA[\t\n\f\r ]*=[\t\n\f\r ]*([0-9]+)"
        rb"[\t\n\f\r ]*(?:,[^,]*)?[\t\n\f\r ]*\Z",
        re.IGNORECASE,
    )
    cands = [(int(a), int(b_), int(c)) for a, b_, c in zip(line_start, line_end, lens, strict=True)]
    raw = bytes(sb)
    out_s: list[int] = []
    out_e: list[int] = []
    last_end = -1
    k = 0
    pending: list[tuple[int, int, int]] = []
    while k < len(cands) or pending:
        if pending:
            st, en, ln = pending.pop()
        else:
            st, en, ln = cands[k]
            k += 1
        if st < last_end or ln <= 0 or ln > MAX_BODY or en >= n:
            continue
        start = en + 1 + (raw[en] == _CR and en + 1 < n and raw[en + 1] == _LF)
        out_s.append(start)
        out_e.append(min(start + ln, n))
        last_end = out_e[-1]
        if 0 < last_end < n and raw[last_end - 1] not in b"\r\n" and raw[last_end] not in b"\r\n":
            stop = last_end
            while stop < n and raw[stop] not in b"\r\n":
                stop += 1
            mt = rx.match(raw, last_end, stop)
            if mt is not None and mt.end() == stop:
                pending.append((last_end, stop, int(mt.group(1))))
    return np.asarray(out_s, np.int64), np.asarray(out_e, np.int64)


class _LazyArgs:
    """``tok_args`` computed on access (the matcher reads ``tok_http`` instead): kind 1
    ``<name>: <args>``, 2 a multi-link ``<n>,<word>``, 0 none."""

    def __init__(self, texts: Any, kind: np.ndarray) -> None:
        self._texts = texts
        self._kind = kind

    def __len__(self) -> int:
        return len(self._kind)

    def __getitem__(self, k: int) -> tuple[str, ...]:
        from airlab.at.parser import split_args

        kind = int(self._kind[k])
        if kind == 0:
            return ()
        text = str(self._texts[k].as_py())
        if kind == 2:
            return (text.split(",")[0].strip(),)
        colon = text.find(":")
        return split_args(text[colon + 1 :]) if colon >= 0 else ()

    def __iter__(self) -> Any:
        return (self[k] for k in range(len(self)))


def _named_tokens(
    texts: Any,
    named: list[str],
    vocab: dict[str, int],
    at: np.ndarray,
    tid: np.ndarray,
    http: np.ndarray,
) -> None:
    """Name ids (``<name>`` of ``<name>: <args>``) and the first three integer arguments
    of the token lines ``texts`` (at ``at`` in ``tid`` / ``http``).  Plain forms are
    read vectorised; anything else the way the event path reads it."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from airlab.analysis.matching import _to_int
    from airlab.at.parser import split_args

    local = np.full(len(texts), -1, np.int64)
    plain = np.zeros(len(texts), bool)
    for nm in named:
        if nm not in vocab:
            continue
        esc = "".join("\\" + ch if not ch.isalnum() else ch for ch in nm)
        sure = np.asarray(pc.match_substring_regex(texts, "^" + esc + r"(?:[ \t]*:.*)?$"))
        local[sure] = vocab[nm]
        num = r"[ \t]*(?P<%s>[0-9]{1,15})[ \t]*"
        m = pc.extract_regex(texts, "^" + esc + r"[ \t]*:" + ",".join(num % g for g in "xyz") + "$")
        ok = np.asarray(m.is_valid()) & sure
        if ok.any():
            good = m.filter(pa.array(ok))
            for col, g in enumerate("xyz"):
                v = pc.cast(pc.struct_field(good, g), pa.float64())
                http[at[ok], col] = np.asarray(v)
        plain |= ok
    for j in np.flatnonzero(~plain).tolist():
        s = texts[j].as_py()
        colon = s.find(":")
        if local[j] < 0:
            local[j] = vocab.get(s[:colon].rstrip() if colon >= 0 else s, -1)
        if local[j] >= 0:
            args = split_args(s[colon + 1 :]) if colon >= 0 else ()
            http[at[j]] = [_to_int(args[c]) if c < len(args) else math.nan for c in range(3)]
    tid[at] = local
