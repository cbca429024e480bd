"""Vectorised pairing for large captures: records DataFrame in, the pairing table out.

:func:`lex_records` does what :func:`airlab.analysis.pairing.lex_events` does, with
numpy/pyarrow over the bytes of each direction instead of one Python object per event:
lines are split across records as the parser joins them, length-framed bodies
(``+HTTPREAD: n``, ``+MSUB: "t",n byte,…``) and ``AT+HTTPDATA`` data are cut out by
length, and finals / echoes / completing URCs are found by prefix and given to their
command by position.  The matching and the table are shared with the event path
(:func:`~airlab.analysis.pairing.match_and_assemble`), so the tables are equal.

What it does not model falls back to the event path (same table, slower): control
bytes, ``>`` data phases (MPUBEX, CIPSEND …), an echo with no command pending,
``AT+CIFSR``-like commands without a final result, marker records, a failed
``AT+HTTPDATA`` whose data never went out.

Example:
    >>> from airlab.at.formats import read_sscom_dataframe
    >>> df = read_sscom_dataframe("data/captures/seed_publish_subscribe.log")  # doctest: +SKIP
    >>> pair_records(df).echo_to_urc_s.round(3).tolist()[1]  # doctest: +SKIP
    0.297
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from airlab.analysis.kinds import COMPLETION_NAMES, NO_FINAL_COMMANDS
from airlab.analysis.pairing import Lexed, match_and_assemble, pair_commands
from airlab.at.urcs import (
    DATA_PHASE_COMMANDS,
    FINAL_RESULTS,
    MAX_BODY,
    MULTILINK_WORDS,
    PAYLOAD_HEADERS,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["Unsupported", "lex_records", "pair_file", "pair_records"]

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

    from airlab.analysis.pairing import _to_int
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


def lex_records(df: pd.DataFrame) -> Lexed:
    """The pairing's inputs from a records DataFrame (``direction``, ``mono``, ``time``,
    ``text``, optionally ``kind``), vectorised.  Raises :class:`Unsupported` when the
    capture needs the event parser."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from airlab.analysis.pairing import _TOK_NAMES

    if "kind" in df.columns and not _category_is(df["kind"], "data").all():
        raise Unsupported("marker or unparsed records")
    n_rec = len(df)
    sent_mask = _category_is(df["direction"], "sent")
    mono = df["mono"].to_numpy(float)
    t = df["time"]
    wall = np.where(
        t.isna().to_numpy(),
        np.nan,
        (t.dt.tz_convert(None) if t.dt.tz is not None else t)
        .to_numpy("datetime64[us]")
        .view(np.int64)
        / 1e6,
    )
    text = pa.array(df["text"].array) if hasattr(df["text"].array, "__arrow_array__") else None
    if text is None:
        text = pa.array(df["text"].tolist(), type=pa.large_string())
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    rec_idx = np.arange(n_rec)
    lx = Lexed()

    def side(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = rec_idx[mask]
        b, offs = _stream(text.filter(pa.array(mask)))
        return rows, b, offs

    # ---------------------------------------------------------------- sent side
    s_rows, sb, s_offs = side(sent_mask)
    s_starts, s_lend, s_term = _lines(sb)
    s_text_all = _segments(sb, s_starts)
    s_plus = _Plus(sb)
    # '>' data phases (MPUBEX, CIPSEND …) only the parser models; looked for only when
    # one of the names occurs at all
    dp_names = [n for n, sp in DATA_PHASE_COMMANDS.items() if sp.prompt == ">"]
    hits = s_plus.after(dp_names)
    if hits is None or len(hits):
        gt_re = "(?i)AT\\s*\\+(?:" + "|".join(n[1:] for n in dp_names) + ")"
        if pc.any(pc.match_substring_regex(s_text_all, gt_re)).as_py():
            raise Unsupported("a '>' data phase")
    # data phases: AT+HTTPDATA=<len>,… → the next <len> bytes are data
    ds, de = _data_phases(sb, s_starts, s_lend, s_text_all, s_plus)
    bounds, is_data, s_ends = _bounds(sb, s_starts, s_lend, s_term, ds, de)
    s_seg = _segments(sb, bounds) if len(ds) else s_text_all
    # a segment is a line start, a data phase or the rest of a line after one: only data
    # can be empty once its line break is cut off (and data counts as an event anyway)
    s_nonempty = ~s_term[bounds] if len(sb) else np.zeros(0, bool)
    s_rec_first, s_rec_end = _records_of(s_rows, s_offs, bounds, s_ends)
    s_pos = s_rec_end.astype(np.int64) * _SHIFT + s_ends
    cmd_mask = s_nonempty & ~is_data
    cmd_rows = np.flatnonzero(cmd_mask)
    cmd_line = _trim(s_seg.take(pa.array(cmd_rows)))
    cmd_pos = s_pos[cmd_rows]
    cmd_rec = s_rec_first[cmd_rows]
    n_cmd = len(cmd_rows)
    # data phase that the module cancelled (error before data) is modelled by the parser only
    data_pos = s_pos[is_data]
    hits = s_plus.after(NO_FINAL_COMMANDS)
    if hits is None or len(hits):
        nf_re = "(?i)AT\\s*\\+(?:" + "|".join(n[1:] for n in NO_FINAL_COMMANDS) + ")"
        if pc.any(pc.match_substring_regex(cmd_line, nf_re)).as_py():
            raise Unsupported("a command without a final result")
    del s_plus, s_text_all, s_seg, s_term

    # ---------------------------------------------------------------- received side
    r_rows, rb, r_offs = side(~sent_mask)
    r_starts, r_lend, r_term = _lines(rb, strict=True)
    r_first = _segments(rb, r_starts)
    _hi, bs, be = _received_bodies(rb, r_starts, r_lend, r_first)
    bounds_r, is_body, r_ends = _bounds(rb, r_starts, r_lend, r_term, bs, be)
    r_seg = _segments(rb, bounds_r) if len(bs) else r_first
    del r_first, r_term, r_lend
    r_t = _trim(r_seg)  # = utf8_trim_whitespace(utf8_rtrim(r_seg, "\r\n"))
    del r_seg
    n_r = len(bounds_r)
    r_len = np.asarray(pc.binary_length(r_t)) if n_r else np.zeros(0, np.int64)
    r_rec_first, r_rec_end = _records_of(r_rows, r_offs, bounds_r, r_ends)
    r_pos = r_rec_end.astype(np.int64) * _SHIFT + r_ends
    r_event = is_body | (r_len > 0)
    # first two bytes of each trimmed line (0 past its end)
    if n_r:
        t_offs = np.frombuffer(r_t.buffers()[1], np.int64)[r_t.offset : r_t.offset + n_r + 1]
        t_data = r_t.buffers()[2]
        tb = np.frombuffer(t_data, np.uint8) if t_data is not None else np.zeros(0, np.uint8)
        top = max(len(tb) - 1, 0)
        tb = tb if len(tb) else np.zeros(1, np.uint8)
        zero = np.uint8(0)
        b0 = np.where(r_len > 0, tb[np.minimum(t_offs[:-1], top)], zero)
        b1 = np.where(r_len > 1, tb[np.minimum(t_offs[:-1] + 1, top)], zero)
    else:
        b0 = b1 = np.zeros(0, np.uint8)
    line = ~is_body

    # classify received lines (bodies are never lines): result word codes into ``words``
    words = [*dict.fromkeys(FINAL_RESULTS.values())]
    extra = ["+CME ERROR", "+CMS ERROR", "DATA ACCEPT", *MULTILINK_WORDS]
    words += [w for w in dict.fromkeys(extra) if w not in words]
    wid = {w: k for k, w in enumerate(words)}
    res = np.full(n_r, -1, np.int64)
    codes = np.full(n_r, math.nan)
    details: dict[int, str] = {}
    final_word = pc.index_in(r_t, value_set=pa.array(list(FINAL_RESULTS), type=r_t.type))
    is_final = np.asarray(final_word.is_valid()) & line
    if is_final.any():
        fw = np.asarray(final_word.fill_null(0))
        fmap = np.asarray([wid[FINAL_RESULTS[k]] for k in FINAL_RESULTS], np.int64)
        res[is_final] = fmap[fw[is_final]]
    plus = np.flatnonzero(line & (b0 == ord("+")))  # prefix tests run on these only
    p_t = r_t.take(pa.array(plus))

    def plus_starting(prefix: str) -> np.ndarray:
        return plus[np.asarray(pc.starts_with(p_t, prefix))]

    err = np.zeros(n_r, bool)
    err[plus_starting("+CME ERROR")] = True
    err[plus_starting("+CMS ERROR")] = True
    for i in np.flatnonzero(err).tolist():
        s = r_t[i].as_py()
        word = "+CME ERROR" if s.startswith("+CME") else "+CMS ERROR"
        rest = s[len(word) :].lstrip(" :").strip()
        res[i] = wid[word]
        if rest.isdigit() and rest.isascii():
            codes[i] = int(rest)
        else:
            details[i] = rest or None  # type: ignore[assignment]
    is_final |= err
    d_lines = np.flatnonzero(line & (b0 == ord("D")))
    if len(d_lines):
        import re

        acc = np.zeros(n_r, bool)
        acc[d_lines[np.asarray(pc.starts_with(r_t.take(pa.array(d_lines)), "DATA ACCEPT"))]] = 1
        for i in np.flatnonzero(acc).tolist():
            nums = re.findall(r"\d+", r_t[i].as_py())
            res[i], codes[i] = wid["DATA ACCEPT"], (int(nums[-1]) if nums else math.nan)
        is_final |= acc
    digit = (b0 >= 48) & (b0 <= 57) & line
    ml_word = np.full(n_r, -1, np.int64)
    if digit.any():
        d_idx = np.flatnonzero(digit)
        ml = pc.extract_regex(
            r_t.take(pa.array(d_idx)), r"^(?P<n>\d+)\s*,\s*(?P<w>[A-Z][A-Z ]*[A-Z])\s*$"
        )
        ok = np.asarray(ml.is_valid())
        if ok.any():
            ws = pc.struct_field(ml.filter(pa.array(ok)), "w").to_pylist()
            for i, w in zip(d_idx[ok].tolist(), ws, strict=True):
                if w in MULTILINK_WORDS:
                    ml_word[i] = wid[w]
                    if MULTILINK_WORDS[w]:
                        res[i] = wid[w]
                        is_final[i] = True
    is_at = ((b0 | 0x20) == ord("a")) & ((b1 | 0x20) == ord("t")) & line & ~is_final

    # token lines: completion URCs, CLOSED, +HTTPACTION (URC or answer)
    fixed_names = [nm for nm in COMPLETION_NAMES if not nm.startswith("+")] + ["CLOSED"]
    tok_fixed = np.asarray(pc.is_in(r_t, value_set=pa.array(fixed_names, type=r_t.type))) & line
    named = sorted(nm for nm in COMPLETION_NAMES if nm.startswith("+"))
    tok_named = np.zeros(n_r, bool)
    for nm in named:
        tok_named[plus_starting(nm)] = True

    # ---------------------------------------------------------------- per command
    fin_idx = np.flatnonzero(is_final & r_event)
    first_final = np.full(n_cmd, -1, np.int64)
    fc = _cmd_of(cmd_pos, r_pos[fin_idx])
    has_c = fc >= 0
    fc_c, fi_c = fc[has_c], fin_idx[has_c]
    first = np.r_[True, fc_c[1:] != fc_c[:-1]] if len(fc_c) else np.zeros(0, bool)
    first_final[fc_c[first]] = fi_c[first]
    is_first = np.zeros(len(fin_idx), bool)
    is_first[np.flatnonzero(has_c)[first]] = True
    orphan = fin_idx[~is_first]
    at_idx = np.flatnonzero(is_at & r_event)
    ac = _cmd_of(cmd_pos, r_pos[at_idx])
    fin_pos_of_cmd = np.where(
        first_final >= 0, r_pos[np.maximum(first_final, 0)], np.iinfo(np.int64).max
    )
    bad = (ac < 0) | (r_pos[at_idx] > fin_pos_of_cmd[np.maximum(ac, 0)])
    if bad.any():
        raise Unsupported("an echo with no command pending")
    echo_line = np.full(n_cmd, -1, np.int64)
    if len(at_idx):
        first = np.r_[True, ac[1:] != ac[:-1]]
        echo_line[ac[first]] = at_idx[first]

    # a failed AT+HTTPDATA: its final came before its data went out
    if len(data_pos):
        dcmd = np.searchsorted(cmd_pos, data_pos) - 1
        ff = first_final[dcmd]
        if ((ff >= 0) & (r_pos[np.maximum(ff, 0)] < data_pos)).any():
            raise Unsupported("AT+HTTPDATA cancelled")

    r_mono = mono[r_rec_first]
    r_wall = wall[r_rec_first]
    lx.line = cmd_line
    lx.pos = cmd_pos
    lx.sent_s = mono[cmd_rec]
    lx.sent_wall = wall[cmd_rec]
    has_echo = echo_line >= 0
    el = np.maximum(echo_line, 0)
    lx.echoed = has_echo
    lx.echo_s = np.where(has_echo, r_mono[el] if len(r_mono) else math.nan, math.nan)
    lx.echo_wall = np.where(has_echo, r_wall[el] if len(r_wall) else math.nan, math.nan)
    has_final = first_final >= 0
    ff = np.maximum(first_final, 0)
    if len(r_pos):
        lx.final_pos = np.where(has_final, r_pos[ff], -1)
        lx.final_s = np.where(has_final, r_mono[ff], math.nan)
        lx.final_result = pa.array([*words, None], pa.large_string()).take(
            pa.array(np.where(has_final, res[ff], len(words)))
        )
        lx.final_code = np.where(has_final, codes[ff], math.nan)
        detail = np.full(n_cmd, None, dtype=object)
        if details:
            for c in np.flatnonzero(has_final & np.isin(ff, list(details))).tolist():
                detail[c] = details[int(ff[c])]
        lx.final_detail = detail
    else:
        lx.final_pos = np.full(n_cmd, -1, np.int64)
        lx.final_s = np.full(n_cmd, math.nan)
        lx.final_result = np.full(n_cmd, None, dtype=object)
        lx.final_code = np.full(n_cmd, math.nan)
        lx.final_detail = np.full(n_cmd, None, dtype=object)
    lx.info_s = np.full(n_cmd, math.nan)

    # tokens in position order, named by their id in the matcher's vocabulary
    vocab = {nm: k for k, nm in enumerate(_TOK_NAMES)}
    err_words = [wid[w] for w in ("ERROR", "+CME ERROR", "+CMS ERROR") if w in wid]
    err_orphans = orphan[np.isin(res[orphan], err_words)]
    ml_tok = np.flatnonzero(ml_word >= 0)
    ml_tok = ml_tok[[not MULTILINK_WORDS[words[w]] for w in ml_word[ml_tok].tolist()]]
    tok_mask = tok_fixed | tok_named
    tok_mask &= r_event
    tok_mask[err_orphans] = True
    tok_mask[ml_tok] = True
    tok = np.flatnonzero(tok_mask)
    tp = r_pos[tok]
    if len(tp) > 1 and not (tp[1:] >= tp[:-1]).all():  # usually in order already
        tok = tok[np.argsort(tp, kind="stable")]
    n_tok = len(tok)
    tid = np.full(n_tok, -1, np.int64)
    is_err_tok = is_final[tok] & (res[tok] >= 0)
    word_vocab = np.asarray([vocab.get(w, -1) for w in words], np.int64)
    tid[is_err_tok] = word_vocab[res[tok[is_err_tok]]]
    is_ml = ~is_err_tok & (ml_word[tok] >= 0)
    tid[is_ml] = word_vocab[ml_word[tok[is_ml]]]
    rest = ~is_err_tok & ~is_ml
    fixed = rest & tok_fixed[tok]
    if fixed.any():
        idx = pc.index_in(
            r_t.take(pa.array(tok[fixed])), value_set=pa.array(_TOK_NAMES, type=r_t.type)
        )
        tid[fixed] = np.asarray(idx.fill_null(-1), np.int64)
    nm_k = np.flatnonzero(rest & ~fixed)
    tok_http = np.full((n_tok, 3), math.nan)
    if len(nm_k):
        _named_tokens(r_t.take(pa.array(tok[nm_k])), named, vocab, nm_k, tid, tok_http)
    keep = tid >= 0
    tokk = tok[keep]
    lx.tok_pos = r_pos[tokk]
    lx.tok_s = r_mono[tokk]
    lx.tok_name = pa.array(_TOK_NAMES, pa.large_string()).take(pa.array(tid[keep]))
    arg_kind = np.where(is_ml, 2, np.where(rest & ~fixed, 1, 0))[keep]
    lx.tok_args = _LazyArgs(r_t.take(pa.array(tokk)), arg_kind)  # type: ignore[assignment]
    lx.tok_code = np.where(is_err_tok, codes[tok], math.nan)[keep]
    lx.tok_http = tok_http[keep]

    # the last event's stamp (lex_events: mono of the last event with a time)
    last = [
        _last_stamp(s_pos, s_nonempty | is_data, mono[s_rec_first]),
        _last_stamp(r_pos, r_event, r_mono),
    ]
    last = [x for x in last if x is not None]
    if last:  # the first of the latest (the sent side first, as concatenated)
        lx.end_s = max(last, key=lambda x: x[0])[1]
    return lx


def _last_stamp(pos: np.ndarray, ev: np.ndarray, m: np.ndarray) -> tuple[int, float] | None:
    """(position, stamp) of the first event at the highest position with a stamp."""
    import numpy as np

    ok = ~np.isnan(m)
    ok &= ev
    if not ok.any():
        return None
    k = int(np.argmax(np.where(ok, pos, -1)))
    return int(pos[k]), float(m[k])


def pair_records(df: pd.DataFrame) -> pd.DataFrame:
    """The pairing table of a records DataFrame; falls back to the event path when needed.

    >>> from airlab.at import Transcript
    >>> t = Transcript(); t.add("sent", b"AT\\r\\n", 1.0, 0.0)
    >>> t.add("received", b"AT\\r\\n\\r\\nOK\\r\\n", 1.002, 0.002)
    >>> pair_records(t.to_dataframe("records")).outcome.tolist()
    ['ok']
    """
    try:
        return match_and_assemble(lex_records(df))
    except Unsupported:
        return pair_commands(_transcript_of(df))


def _transcript_of(df: pd.DataFrame) -> Any:
    import numpy as np

    from airlab.at.transcript import Record, RecordKind, Transcript

    t = Transcript()
    times = df["time"]
    wall = np.where(
        times.isna().to_numpy(),
        np.nan,
        times.dt.tz_convert(None).to_numpy("datetime64[us]").view(np.int64) / 1e6,
    )
    kinds = df["kind"].astype(str).tolist() if "kind" in df.columns else ["data"] * len(df)
    for d, txt, w, m, k in zip(
        df["direction"].astype(str).tolist(),
        df["text"].tolist(),
        wall.tolist(),
        df["mono"].tolist(),
        kinds,
        strict=True,
    ):
        t.records.append(Record(d, str(txt).encode("utf-8"), w, m, None, RecordKind(k)))
    return t


def pair_file(
    path: str | os.PathLike[str], fmt: str | None = None, date: str | None = None
) -> pd.DataFrame:
    """Pair a capture file through the vectorised path (sscom read without Python objects).

    >>> pair_file("data/captures/seed_direct_mqtt.log").kind.tolist()  # doctest: +SKIP
    ['mqtt_config', 'mqtt_open', 'mqtt_connect']
    """
    from airlab.at.formats import detect_format, read_capture, read_sscom_dataframe

    fmt = fmt or detect_format(path)
    if fmt == "sscom":
        df = read_sscom_dataframe(path, date=date)
    else:
        df = read_capture(path, fmt=fmt, date=date).to_dataframe("records")
    return pair_records(df)
