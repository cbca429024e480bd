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


def _line_starts(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts of lines (non-CR/LF byte after a CR/LF or at 0) and the terminator mask."""
    import numpy as np

    term = (b == _CR) | (b == _LF)
    prev = np.empty_like(term)
    if len(term):
        prev[0] = True
        prev[1:] = term[:-1]
    return np.flatnonzero(~term & prev), term


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


def _next_term(term_pos: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    import numpy as np

    k = np.searchsorted(term_pos, starts)
    return np.where(k < len(term_pos), term_pos[np.minimum(k, len(term_pos) - 1)], n)


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
    import pyarrow.compute as pc

    plus = np.flatnonzero(b[starts] == ord("+")) if len(starts) else np.zeros(0, np.int64)
    if not len(plus):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    sub = texts.take(plus)
    hdr_idx, b_start, b_len = [], [], []
    for name, spec in PAYLOAD_HEADERS.items():
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


def _split(b: np.ndarray, extra_cuts: list[tuple[np.ndarray, np.ndarray]]) -> Any:
    """Segment boundaries: line starts outside the cut intervals plus the interval edges."""
    import numpy as np

    starts, term = _line_starts(b)
    cut_s = np.concatenate([c[0] for c in extra_cuts]) if extra_cuts else np.zeros(0, np.int64)
    cut_e = np.concatenate([c[1] for c in extra_cuts]) if extra_cuts else np.zeros(0, np.int64)
    if len(cut_s):
        o = np.argsort(cut_s, kind="stable")
        cut_s, cut_e = cut_s[o], cut_e[o]
        k = np.searchsorted(cut_s, starts, side="right") - 1
        inside = (k >= 0) & (starts < np.where(k >= 0, cut_e[np.maximum(k, 0)], 0))
        starts = starts[~inside]
        ends_ok = cut_e < len(b)
        tail = cut_e[ends_ok]
        tail = tail[~term[tail]]
        bounds = np.sort(np.concatenate([starts, cut_s, tail]))
        if len(bounds):
            bounds = bounds[np.r_[True, bounds[1:] != bounds[:-1]]]
        k = np.minimum(np.searchsorted(cut_s, bounds), len(cut_s) - 1)
        is_body = cut_s[k] == bounds
    else:
        bounds = starts
        is_body = np.zeros(len(bounds), bool)
    bounds = bounds[bounds < len(b)] if len(b) else bounds[:0]
    is_body = is_body[: len(bounds)]
    return bounds, is_body, term


def _end_positions(
    b: np.ndarray,
    bounds: np.ndarray,
    term: np.ndarray,
    is_body: np.ndarray,
    cut_s: np.ndarray,
    cut_e: np.ndarray,
) -> np.ndarray:
    """Stream offset at which each segment's event is complete (its terminator or body end)."""
    import numpy as np

    term_pos = np.flatnonzero(term)
    end = _next_term(term_pos, bounds, len(b))
    nxt = np.r_[bounds[1:], len(b)] if len(bounds) else bounds
    end = np.minimum(end, nxt)
    if is_body.any():
        k = np.searchsorted(cut_s, bounds[is_body])
        end[is_body] = np.maximum(cut_e[k] - 1, bounds[is_body])
    return end


def lex_records(df: pd.DataFrame) -> Lexed:
    """The pairing's inputs from a records DataFrame (``direction``, ``mono``, ``time``,
    ``text``, optionally ``kind``), vectorised.  Raises :class:`Unsupported` when the
    capture needs the event parser."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from airlab.at.parser import split_args

    if "kind" in df.columns and (df["kind"].astype(str) != "data").any():
        raise Unsupported("marker or unparsed records")
    n_rec = len(df)
    sent_mask = (df["direction"].astype(str) == "sent").to_numpy()
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
    s_starts, s_term = _line_starts(sb)
    s_text_all = _segments(sb, s_starts)
    s_lines = pc.utf8_rtrim(s_text_all, characters="\r\n")
    # data phases: AT+HTTPDATA=<len>,… → the next <len> bytes are data
    dp_names = [n for n, sp in DATA_PHASE_COMMANDS.items() if sp.prompt == ">"]
    gt_re = "(?i)AT\\s*\\+(?:" + "|".join(n[1:] for n in dp_names) + ")"
    if pc.any(pc.match_substring_regex(s_lines, gt_re)).as_py():
        raise Unsupported("a '>' data phase")
    m = pc.extract_regex(s_lines, r"(?i)^\s*AT\s*\+HTTPDATA\s*=\s*(?P<n>\d+)\s*(?:,[^,]*)?\s*$")
    dp_ok = np.asarray(m.is_valid())
    cuts_s: list[np.ndarray] = []
    if dp_ok.any():
        # process data phases one after another: a phase may swallow a later command line
        idx = np.flatnonzero(dp_ok)
        lens = np.asarray(pc.cast(pc.struct_field(m.filter(dp_ok), "n"), "int64"))
        s_term_pos = np.flatnonzero(s_term)
        line_end = _next_term(s_term_pos, s_starts[idx], len(sb))
        ds_list, de_list = [], []
        last_end = -1
        for i, le, ln in zip(idx.tolist(), line_end.tolist(), lens.tolist(), strict=True):
            if s_starts[i] < last_end or ln <= 0 or ln > MAX_BODY or le >= len(sb):
                continue
            start = le + 1 + (sb[le] == _CR and le + 1 < len(sb) and sb[le + 1] == _LF)
            ds_list.append(start)
            de_list.append(min(start + ln, len(sb)))
            last_end = de_list[-1]
        cuts_s = [np.asarray(ds_list, np.int64), np.asarray(de_list, np.int64)]
    if cuts_s and len(cuts_s[0]):
        bounds, is_data, _ = _split(sb, [(cuts_s[0], cuts_s[1])])
        s_seg = _segments(sb, bounds)
        s_ends = _end_positions(sb, bounds, s_term, is_data, cuts_s[0], cuts_s[1])
    else:
        bounds, is_data = s_starts, np.zeros(len(s_starts), bool)
        s_seg = s_text_all
        s_ends = _end_positions(sb, bounds, s_term, is_data, np.zeros(0), np.zeros(0))
    s_line = pc.utf8_rtrim(s_seg, characters="\r\n")
    s_nonempty = np.asarray(pc.greater(pc.binary_length(s_line), 0))
    s_rec_first = s_rows[np.searchsorted(s_offs, bounds, side="right") - 1]
    s_rec_end = s_rows[np.searchsorted(s_offs, s_ends, side="right") - 1]
    s_pos = s_rec_end.astype(np.int64) * _SHIFT + s_ends
    cmd_mask = s_nonempty & ~is_data
    cmd_rows = np.flatnonzero(cmd_mask)
    cmd_line = pc.utf8_trim_whitespace(s_line.take(pa.array(cmd_rows)))
    cmd_pos = s_pos[cmd_rows]
    cmd_rec = s_rec_first[cmd_rows]
    n_cmd = len(cmd_rows)
    # data phase that the module cancelled (error before data) is modelled by the parser only
    data_pos = s_pos[is_data]

    # ---------------------------------------------------------------- received side
    r_rows, rb, r_offs = side(~sent_mask)
    if len(rb) and bool((((rb < 32) & (rb != _CR) & (rb != _LF)) | (rb == 127)).any()):
        raise Unsupported("control bytes")
    r_starts, r_term = _line_starts(rb)
    r_first = _segments(rb, r_starts)
    r_term_pos = np.flatnonzero(r_term)
    r_line_end = _next_term(r_term_pos, r_starts, len(rb))
    _hi, bs, be = _received_bodies(rb, r_starts, r_line_end, r_first)
    if len(bs):
        bounds_r, is_body, _ = _split(rb, [(bs, be)])
        r_ends = _end_positions(rb, bounds_r, r_term, is_body, np.sort(bs), be[np.argsort(bs)])
        r_seg = _segments(rb, bounds_r)
    else:
        bounds_r, is_body = r_starts, np.zeros(len(r_starts), bool)
        r_ends = _end_positions(rb, bounds_r, r_term, is_body, np.zeros(0), np.zeros(0))
        r_seg = r_first
    r_t = pc.utf8_trim_whitespace(pc.utf8_rtrim(r_seg, characters="\r\n"))
    r_rec_first = r_rows[np.searchsorted(r_offs, bounds_r, side="right") - 1]
    r_rec_end = r_rows[np.searchsorted(r_offs, r_ends, side="right") - 1]
    r_pos = r_rec_end.astype(np.int64) * _SHIFT + r_ends
    r_event = is_body | np.asarray(pc.greater(pc.binary_length(r_t), 0))

    # classify received lines (bodies are never lines)
    final_word = pc.index_in(r_t, value_set=pa.array(list(FINAL_RESULTS)))
    is_final = np.asarray(final_word.is_valid()) & ~is_body
    results = np.full(len(bounds_r), None, dtype=object)
    codes = np.full(len(bounds_r), math.nan)
    details = np.full(len(bounds_r), None, dtype=object)
    words = list(FINAL_RESULTS.values())
    if is_final.any():
        fw = np.asarray(final_word.fill_null(0))
        results[is_final] = np.asarray(words, dtype=object)[fw[is_final]]
    err = np.asarray(pc.starts_with(r_t, "+CME ERROR")) | np.asarray(
        pc.starts_with(r_t, "+CMS ERROR")
    )
    err &= ~is_body
    for i in np.flatnonzero(err):
        s = r_t[int(i)].as_py()
        res = "+CME ERROR" if s.startswith("+CME") else "+CMS ERROR"
        rest = s[len(res) :].lstrip(" :").strip()
        results[i] = res
        if rest.isdigit() and rest.isascii():
            codes[i] = int(rest)
        else:
            details[i] = rest or None
    is_final |= err
    acc = np.asarray(pc.starts_with(r_t, "DATA ACCEPT")) & ~is_body
    for i in np.flatnonzero(acc):
        import re

        nums = re.findall(r"\d+", r_t[int(i)].as_py())
        results[i], codes[i] = "DATA ACCEPT", (int(nums[-1]) if nums else math.nan)
    is_final |= acc
    first_b = rb[bounds_r] if len(bounds_r) else np.zeros(0, np.uint8)
    digit = (first_b >= 48) & (first_b <= 57) & ~is_body
    ml_word = np.full(len(bounds_r), None, dtype=object)
    if digit.any():
        d_idx = np.flatnonzero(digit)
        ml = pc.extract_regex(
            r_t.take(pa.array(d_idx)), r"^(?P<n>\d+)\s*,\s*(?P<w>[A-Z][A-Z ]*[A-Z])\s*$"
        )
        for j, i in enumerate(d_idx.tolist()):
            if not ml[j].is_valid:
                continue
            w = ml[j]["w"].as_py()
            if w in MULTILINK_WORDS:
                ml_word[i] = w
                if MULTILINK_WORDS[w]:
                    results[i] = w
                    is_final[i] = True
    is_at = (
        np.asarray(pc.starts_with(pc.utf8_upper(pc.utf8_slice_codeunits(r_t, 0, 2)), "AT"))
        & ~is_body
        & ~is_final
    )

    # token lines: completion URCs, CLOSED, +HTTPACTION (URC or answer)
    fixed_names = [nm for nm in COMPLETION_NAMES if not nm.startswith("+")] + ["CLOSED"]
    tok_fixed = np.asarray(pc.is_in(r_t, value_set=pa.array(fixed_names))) & ~is_body
    named = [nm for nm in COMPLETION_NAMES if nm.startswith("+")]
    tok_named = np.zeros(len(bounds_r), bool)
    for nm in named:
        tok_named |= np.asarray(pc.starts_with(r_t, nm))
    tok_named &= ~is_body

    # ---------------------------------------------------------------- per command
    cmd_of = np.searchsorted(cmd_pos, r_pos, side="left") - 1  # last command before the line
    fin_idx = np.flatnonzero(is_final & r_event)
    first_final = np.full(n_cmd, -1, np.int64)
    fc = cmd_of[fin_idx]
    has_c = fc >= 0
    fc_c, fi_c = fc[has_c], fin_idx[has_c]
    first = np.r_[True, fc_c[1:] != fc_c[:-1]] if len(fc_c) else np.zeros(0, bool)
    first_final[fc_c[first]] = fi_c[first]
    is_first = np.zeros(len(fin_idx), bool)
    is_first[np.flatnonzero(has_c)[first]] = True
    orphan = fin_idx[~is_first]
    at_idx = np.flatnonzero(is_at & r_event)
    ac = cmd_of[at_idx]
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

    nf_re = "(?i)AT\\s*\\+(?:" + "|".join(n[1:] for n in NO_FINAL_COMMANDS) + ")"
    if pc.any(pc.match_substring_regex(cmd_line, nf_re)).as_py():
        raise Unsupported("a command without a final result")
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
        lx.final_result = np.where(has_final, results[ff], None)
        lx.final_code = np.where(has_final, codes[ff], math.nan)
        lx.final_detail = np.where(has_final, details[ff], None)
    else:
        lx.final_pos = np.full(n_cmd, -1, np.int64)
        lx.final_s = np.full(n_cmd, math.nan)
        lx.final_result = np.full(n_cmd, None, dtype=object)
        lx.final_code = np.full(n_cmd, math.nan)
        lx.final_detail = np.full(n_cmd, None, dtype=object)
    lx.info_s = np.full(n_cmd, math.nan)

    # tokens in position order
    err_orphans = orphan[np.isin(results[orphan], ["ERROR", "+CME ERROR", "+CMS ERROR"])]
    tok = np.union1d(np.flatnonzero((tok_fixed | tok_named) & r_event), err_orphans)
    ml_tok = np.flatnonzero(np.asarray([w is not None and not MULTILINK_WORDS[w] for w in ml_word]))
    ml_tok = ml_tok[np.isin(ml_word[ml_tok], [*list(COMPLETION_NAMES), "CLOSED"])]
    tok = np.union1d(tok, ml_tok)
    tok = tok[np.argsort(r_pos[tok], kind="stable")]
    is_err_tok = is_final[tok] & (results[tok] != None)  # noqa: E711
    tname = np.where(is_err_tok, results[tok], None)
    is_ml = ~is_err_tok & (ml_word[tok] != None)  # noqa: E711
    tname[is_ml] = ml_word[tok][is_ml]
    rest = np.flatnonzero(~is_err_tok & ~is_ml)
    targs: list[tuple[str, ...]] = [()] * len(tok)
    if len(rest):
        rest_text = np.asarray(r_t.take(pa.array(tok[rest])).to_pylist(), dtype=object)
        fixed = tok_fixed[tok[rest]]
        tname[rest[fixed]] = rest_text[fixed]
        for j in np.flatnonzero(~fixed).tolist():
            text_j = rest_text[j]
            colon = text_j.find(":")
            name = text_j[:colon].rstrip() if colon >= 0 else text_j
            tname[rest[j]] = name
            targs[rest[j]] = split_args(text_j[colon + 1 :]) if colon >= 0 else ()
    for j in np.flatnonzero(is_ml).tolist():
        targs[j] = (str(r_t[int(tok[j])].as_py()).split(",")[0].strip(),)
    keep = np.isin(tname, [*COMPLETION_NAMES, "CLOSED", "ERROR", "+CME ERROR", "+CMS ERROR"])
    lx.tok_pos = r_pos[tok][keep].tolist()
    lx.tok_s = r_mono[tok][keep].tolist()
    lx.tok_name = tname[keep].tolist()
    lx.tok_args = [a for a, k in zip(targs, keep.tolist(), strict=True) if k]
    lx.tok_code = np.where(is_err_tok, codes[tok], math.nan)[keep].tolist()

    # the last event's stamp (lex_events: mono of the last event with a time)
    ev_pos = np.concatenate([s_pos[s_nonempty | is_data], r_pos[r_event]])
    ev_mono = np.concatenate([mono[s_rec_first[s_nonempty | is_data]], r_mono[r_event]])
    ok = ~np.isnan(ev_mono)
    if ok.any():
        lx.end_s = float(ev_mono[ok][np.argmax(ev_pos[ok])])
    return lx


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
