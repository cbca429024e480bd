"""Vectorised pairing for large captures: records DataFrame in, the pairing table out.

:func:`lex_records` does what :func:`airlab.analysis.lexing.lex_events` does, with
numpy/pyarrow over the bytes of each direction instead of one Python object per event:
lines are split across records as the parser joins them, length-framed bodies
(``+HTTPREAD: n``, ``+MSUB: "t",n byte,…``) and ``AT+HTTPDATA`` data are cut out by
length, and finals / echoes / completing URCs are found by prefix and given to their
command by position.  The matching and the table are shared with the event path
(:func:`~airlab.analysis.matching.match_and_assemble`), so the tables are equal.

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

from airlab.analysis.fast_bytes import (
    _SHIFT,
    Unsupported,
    _bounds,
    _category_is,
    _cmd_of,
    _data_phases,
    _LazyArgs,
    _lines,
    _named_tokens,
    _Plus,
    _received_bodies,
    _records_of,
    _segments,
    _stream,
    _trim,
)
from airlab.analysis.kinds import COMPLETION_NAMES, NO_FINAL_COMMANDS
from airlab.analysis.lexing import Lexed
from airlab.analysis.matching import match_and_assemble, pair_commands
from airlab.at.urcs import (
    DATA_PHASE_COMMANDS,
    FINAL_RESULTS,
    MULTILINK_WORDS,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["Unsupported", "lex_records", "pair_file", "pair_records"]


def lex_records(df: pd.DataFrame) -> Lexed:
    """The pairing's inputs from a records DataFrame (``direction``, ``mono``, ``time``,
    ``text``, optionally ``kind``), vectorised.  Raises :class:`Unsupported` when the
    capture needs the event parser."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from airlab.analysis.matching import _TOK_NAMES

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
