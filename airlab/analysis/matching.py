"""The pairing's second half, shared by the event path and the vectorised one:
:func:`match_and_assemble` matches each command of a :class:`~airlab.analysis.lexing.Lexed`
with its echo, final result and completing URC and builds the pairing table;
:func:`pair_commands` runs both halves over parsed events.

Example:
    >>> from airlab.at import Transcript
    >>> from airlab.analysis.matching import pair_commands
    >>> pair_commands(Transcript()).empty
    True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airlab.analysis.kinds import (
    COMPLETION_NAMES,
    COMPLETIONS,
    HTTP_MODULE_ERRORS,
    KINDS,
    NO_FINAL_COMMANDS,
    PUBLISH_COMMANDS,
    PUBLISH_COMPLETIONS,
    Completion,
)
from airlab.analysis.lexing import (
    _ERROR_WORDS,
    COLUMNS,
    NAN,
    OUTCOMES,
    Lexed,
    lex_events,
)
from airlab.at.events import (
    _SUCCESS_RESULTS,
    Event,
    cme_meaning,
)
from airlab.at.formats.tables import time_column

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from airlab.at.transcript import Transcript

# ---------------------------------------------------------------------------- matching

_WAITING, _MATCHED, _CLOSED, _LATE_ERROR, _EXPIRED, _STOPPED = 1, 2, 3, 4, 5, 6

_COMP_LIST: list[Completion | None] = [None, *COMPLETIONS.values(), *PUBLISH_COMPLETIONS.values()]
_COMP_NAMES = list(COMPLETIONS)
_PUB_BASE = 1 + len(COMPLETIONS)
_PUB_QOS = list(PUBLISH_COMPLETIONS)
#: Token names the matching knows (an unknown name never ends a wait): index = name id.
_TOK_NAMES: list[str] = sorted({*COMPLETION_NAMES, "CLOSED", *_ERROR_WORDS})
_TOK_ID = {nm: k for k, nm in enumerate(_TOK_NAMES)}


def _completion_ids(names: Any, qos: np.ndarray) -> np.ndarray:
    """Index into ``_COMP_LIST`` of each command's completion (0: none)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    idx = pc.index_in(names, value_set=pa.array(_COMP_NAMES, type=names.type))
    cid = np.array(idx.fill_null(-1), np.int64) + 1
    is_pub = np.asarray(
        pc.is_in(names, value_set=pa.array(sorted(PUBLISH_COMMANDS), type=names.type)).fill_null(
            False
        ),
        bool,
    )
    for k, q in enumerate(_PUB_QOS):
        cid[is_pub & (qos == q)] = _PUB_BASE + k
    return cid


def _to_int(value: str) -> float:
    try:
        return float(int(value.strip()))
    except ValueError:
        return NAN


def _token_ids(names: Any) -> np.ndarray:
    """Name id (into ``_TOK_NAMES``, -1: unknown) of each token."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(names, pa.Array | pa.ChunkedArray):
        idx = pc.index_in(names, value_set=pa.array(_TOK_NAMES, type=names.type))
        return np.asarray(idx.fill_null(-1), np.int64)
    get = _TOK_ID.get
    return np.fromiter((get(x, -1) for x in names), np.int64, len(names))


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per completion id: ends-the-wait / is-a-failure by token name id (last column:
    unknown names), closable, late_error, timeout."""
    import numpy as np

    nc, nt = len(_COMP_LIST), len(_TOK_NAMES)
    ends = np.zeros((nc, nt + 1), bool)
    fails = np.zeros((nc, nt + 1), bool)
    closable = np.zeros(nc, bool)
    late = np.zeros(nc, bool)
    timeout = np.full(nc, NAN)
    for c, comp in enumerate(_COMP_LIST):
        if comp is None:
            continue
        for nm in comp.ok + comp.fail:
            if nm in _TOK_ID:
                ends[c, _TOK_ID[nm]] = True
        for nm in comp.fail:
            if nm in _TOK_ID:
                fails[c, _TOK_ID[nm]] = True
        closable[c], late[c], timeout[c] = comp.closable, comp.late_error, comp.timeout
    return ends, fails, closable, late, timeout


def _http_of(lx: Lexed, t: int) -> list[float]:
    """``+HTTPACTION`` method, status and length of token ``t`` (NaN where missing)."""
    if lx.tok_http is not None:
        return [float(v) for v in lx.tok_http[t]]
    args = lx.tok_args[t]
    return [_to_int(args[j]) if j < len(args) else NAN for j in range(3)]


def _match(
    lx: Lexed, cid: np.ndarray, final_ok: np.ndarray, final_pos: np.ndarray
) -> dict[str, np.ndarray]:
    """Give each URC token to the oldest command waiting for it.

    Vectorised where at most one command waits at a time (each wait ends before the
    next two-phase command is sent): token ``k`` then only concerns the last waiting
    command sent before it.  Where waits overlap, a small Python loop (the reference
    rule) takes over until no command waits any more.
    """
    import numpy as np

    n = len(cid)
    state = np.zeros(n, np.int8)
    urc_s = np.full(n, NAN)
    urc_id = np.full(n, -1, np.int64)  # name id of the token that ended the wait
    urc_code = np.full(n, NAN)
    failed = np.zeros(n, bool)
    http = np.full((n, 3), NAN)
    ends_t, fails_t, closable_t, late_t, timeout_t = _tables()
    sent_s = np.asarray(lx.sent_s, float)
    start = np.where(np.isnan(sent_s), np.asarray(lx.echo_s, float), sent_s)
    deadline = start + timeout_t[cid]
    waiters = np.flatnonzero(cid > 0)
    state[waiters] = _WAITING
    cmd_pos = np.asarray(lx.pos, np.int64)
    w_pos = cmd_pos[waiters]
    big = np.iinfo(np.int64).max
    final_stop = np.where(final_ok | (final_pos < 0), big, final_pos)

    tok_pos = np.asarray(lx.tok_pos, np.int64)
    order = np.argsort(tok_pos, kind="stable")
    t_pos = tok_pos[order]
    t_s = np.asarray(lx.tok_s, float)[order]
    t_id = _token_ids(lx.tok_name)[order]
    t_code = np.asarray(lx.tok_code, float)[order]
    n_tok, n_w = len(order), len(waiters)
    closed_id = _TOK_ID["CLOSED"]
    late_ids = [_TOK_ID[w] for w in _ERROR_WORDS]

    # interval of each token: the last waiter sent before it (-1: none yet)
    j = np.searchsorted(w_pos, t_pos, side="left") - 1
    if n_tok and n_w:
        jj = np.maximum(j, 0)
        wi_ = waiters[jj]
        c = cid[wi_]
        kill_stop = final_stop[wi_] < t_pos
        with np.errstate(invalid="ignore"):
            kill_exp = t_s > deadline[wi_]
        is_closed = t_id == closed_id
        is_late = np.isin(t_id, late_ids)
        resolve = np.where(is_closed, closable_t[c], np.where(is_late, late_t[c], ends_t[c, t_id]))
        event = (kill_stop | kill_exp | resolve) & (j >= 0)
        ev = np.flatnonzero(event)
        ev_j = j[ev]
        first = np.r_[True, ev_j[1:] != ev_j[:-1]] if len(ev) else np.zeros(0, bool)
        res_tok = np.full(n_w, -1, np.int64)  # the token that ends interval j's wait
        res_tok[ev_j[first]] = ev[first]
    else:
        jj = np.zeros(n_tok, np.int64)
        kill_stop = kill_exp = is_closed = is_late = np.zeros(n_tok, bool)
        res_tok = np.full(n_w, -1, np.int64)
    # last token index of each interval (+1); an unresolved wait with tokens after its
    # interval overlaps the next ones: the loop handles those stretches
    tok_end = np.searchsorted(j, np.arange(n_w), side="right")
    spill = (res_tok < 0) & (tok_end < n_tok)
    clean = np.ones(n_w, bool)

    def finish(i: int, k: int) -> None:
        """Waiter ``i`` ended by sorted token ``k`` (not a kill)."""
        tid = int(t_id[k])
        urc_s[i], urc_id[i] = t_s[k], tid
        if tid == closed_id:
            state[i] = _CLOSED
        elif tid in late_ids:
            state[i], urc_code[i] = _LATE_ERROR, t_code[k]
        else:
            state[i] = _MATCHED
            failed[i] = fails_t[cid[i], tid]
            if _TOK_NAMES[tid] == "+HTTPACTION":
                http[i] = _http_of(lx, int(order[k]))

    def loop(w0: int) -> int:
        """The reference rule from waiter ``w0`` on, until no command waits at the start
        of an interval; returns that interval (``n_w`` when the tokens run out)."""
        k = int(np.searchsorted(j, w0, side="left"))
        active: list[int] = []
        wi = w0
        while k < n_tok:
            tpos, ts, tid = int(t_pos[k]), float(t_s[k]), int(t_id[k])
            if not active and wi == j[k] and (k == 0 or j[k - 1] < j[k]) and wi > w0:
                return wi
            while wi < n_w and w_pos[wi] < tpos:
                clean[wi] = False
                active.append(int(waiters[wi]))
                wi += 1
            k += 1
            if active:
                keep = []
                for i in active:
                    if final_stop[i] < tpos:
                        state[i] = _STOPPED
                    elif ts > deadline[i]:  # False when either is NaN
                        state[i] = _EXPIRED
                    else:
                        keep.append(i)
                active = keep
            if not active:
                continue
            if tid == closed_id:
                keep = []
                for i in active:
                    if closable_t[cid[i]]:
                        state[i], urc_s[i], urc_id[i] = _CLOSED, ts, tid
                    else:
                        keep.append(i)
                active = keep
                continue
            late = tid in late_ids
            for q, i in enumerate(active):
                ci = cid[i]
                if late:
                    if not late_t[ci]:
                        continue
                elif tid < 0 or not ends_t[ci, tid]:
                    continue
                finish(i, k - 1)
                del active[q]
                break
        return n_w

    w = 0
    while True:
        nxt = np.flatnonzero(spill[w:])
        if not len(nxt):
            break
        w = loop(w + int(nxt[0]))
        if w >= n_w:
            break
    # the intervals where one command waited alone
    done = np.flatnonzero(clean & (res_tok >= 0))
    k = res_tok[done]
    i = waiters[done]
    st = kill_stop[k]
    ex = ~st & kill_exp[k]
    state[i[st]] = _STOPPED
    state[i[ex]] = _EXPIRED
    ok = ~st & ~ex
    i, k = i[ok], k[ok]
    urc_s[i], urc_id[i] = t_s[k], t_id[k]
    cl, lt = is_closed[k], is_late[k]
    state[i[cl]] = _CLOSED
    state[i[lt]] = _LATE_ERROR
    urc_code[i[lt]] = t_code[k[lt]]
    mt = ~cl & ~lt
    state[i[mt]] = _MATCHED
    failed[i[mt]] = fails_t[cid[i[mt]], t_id[k[mt]]]
    if "+HTTPACTION" in _TOK_ID:
        hk = mt & (t_id[k] == _TOK_ID["+HTTPACTION"])
        if lx.tok_http is not None:
            http[i[hk]] = np.asarray(lx.tok_http, float)[order[k[hk]]]
        else:
            for ii, kk in zip(i[hk].tolist(), order[k[hk]].tolist(), strict=True):
                http[ii] = _http_of(lx, kk)

    still = waiters[state[waiters] == _WAITING]
    stop = ~final_ok[still] & (final_pos[still] >= 0)
    state[still[stop]] = _STOPPED
    rest = still[~stop]
    state[rest[lx.end_s > deadline[rest]]] = _EXPIRED
    return {
        "state": state,
        "urc_s": urc_s,
        "urc_id": urc_id,
        "urc_code": urc_code,
        "failed": failed,
        "http": http,
    }


def _str_col(values: Any) -> pd.Series:
    import pandas as pd
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray | pa.Array):
        values = values.cast(pa.large_string())
        if isinstance(values, pa.Array):
            values = pa.chunked_array([values], type=pa.large_string())
        dtype = pd.StringDtype("pyarrow", na_value=float("nan"))
        return pd.Series(pd.arrays.ArrowStringArray(values, dtype=dtype))
    try:  # str / None values straight to arrow (pandas' own conversion is much slower)
        arr = pa.array(values, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.Series(values, dtype="str")
    return _str_col(arr)


def _vocab_col(vocab: Sequence[str | None], codes: np.ndarray) -> pd.Series:
    """String column ``vocab[codes]`` (-1 and ``None`` entries: missing)."""
    import numpy as np
    import pyarrow as pa

    words = pa.array(list(vocab), type=pa.large_string())
    codes = np.asarray(codes, np.int64)
    return _str_col(words.take(pa.array(codes, mask=codes < 0)))


def _int_col(values: np.ndarray) -> Any:
    import numpy as np
    import pandas as pd

    values = np.asarray(values, float)
    mask = np.isnan(values)
    return pd.arrays.IntegerArray(np.where(mask, 0, values).astype(np.int64), mask)


class _ArrowItems:
    """``arr[i]`` as a Python value (for the few rows that need one)."""

    def __init__(self, arr: Any) -> None:
        self.arr = arr

    def __getitem__(self, i: int) -> Any:
        return self.arr[i].as_py()


def match_and_assemble(lx: Lexed) -> pd.DataFrame:
    """Match the tokens to the waiting commands and build the table (see the module doc)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from airlab.analysis.kinds import classify_arrays

    lines = lx.line if isinstance(lx.line, pa.Array) else pa.array(lx.line, pa.large_string())
    n = len(lines)
    names, kind_codes, qos = classify_arrays(lines)
    cid = _completion_ids(names, qos)
    final_pos = np.asarray(lx.final_pos, np.int64)
    has_final = final_pos >= 0
    if isinstance(lx.final_result, pa.Array):  # the vectorised lexer's strings
        import pyarrow.compute as pc

        final_arr = lx.final_result
        final_result: Any = _ArrowItems(final_arr)
        ok_set = pa.array(sorted(_SUCCESS_RESULTS), type=final_arr.type)
        final_ok = np.asarray(pc.is_in(final_arr, value_set=ok_set).fill_null(False), bool)
        final_ok &= has_final
    else:
        final_result = final_arr = np.asarray(lx.final_result, dtype=object)
        final_ok = np.isin(final_result, list(_SUCCESS_RESULTS)) & has_final
    m = _match(lx, cid, final_ok, final_pos)
    state, urc_s, urc_id = m["state"], m["urc_s"], m["urc_id"]
    urc_name = np.asarray([*_TOK_NAMES, None], dtype=object)[urc_id]

    sent_s = np.asarray(lx.sent_s, float)
    echo_s = np.asarray(lx.echo_s, float)
    final_s = np.asarray(lx.final_s, float)
    info_s = np.asarray(lx.info_s, float)
    final_code = np.asarray(lx.final_code, float)
    waits = cid > 0
    awaits_of = np.asarray([c.ok[0] if c else None for c in _COMP_LIST], dtype=object)
    awaits = awaits_of[cid]
    http = m["http"]
    http_status = http[:, 1]
    with np.errstate(invalid="ignore"):
        http_err = (state == _MATCHED) & (http_status >= 600)
    no_final = np.zeros(n, bool)
    if NO_FINAL_COMMANDS:
        import pyarrow.compute as pc

        no_final = np.asarray(
            pc.is_in(
                names, value_set=pa.array(sorted(NO_FINAL_COMMANDS), type=names.type)
            ).fill_null(False),
            bool,
        )
    no_final_ok = ~has_final & no_final & ~np.isnan(info_s)
    is_last = np.arange(n) == n - 1

    final_err = has_final & ~final_ok
    conds = [
        final_err,
        waits & (state == _MATCHED) & (m["failed"] | http_err),
        waits & (state == _MATCHED),
        waits & (state == _CLOSED),
        waits & (state == _LATE_ERROR),
        waits & (state == _EXPIRED),
        waits & (state == _WAITING),
        ~waits & (final_ok | no_final_ok),
        ~waits & ~has_final & ~is_last,
    ]
    codes = [1, 1, 0, 3, 1, 2, 4, 0, 2]  # indexes into OUTCOMES
    outcome = np.select(conds, codes, default=4).astype(np.int8)

    done_s = np.select(
        [
            final_err,
            waits & np.isin(state, [_MATCHED, _CLOSED, _LATE_ERROR]),
            ~waits & final_ok,
            ~waits & no_final_ok,
        ],
        [final_s, urc_s, final_s, info_s],
        default=NAN,
    )

    late = state == _LATE_ERROR
    code = np.where(final_err, final_code, NAN)
    code = np.where(late & ~final_err, m["urc_code"], code)
    code = np.where(http_err & ~final_err, http_status, code)
    detail = np.full(n, None, dtype=object)
    for i in np.flatnonzero(outcome != 0).tolist():
        detail[i] = _detail(
            OUTCOMES[outcome[i]],
            bool(final_err[i]),
            final_result[i] if final_err[i] else urc_name[i],
            float(code[i]),
            lx.final_detail[i] if final_err[i] else None,
            awaits[i],
            _COMP_LIST[cid[i]],
            bool(http_err[i]),
            bool(has_final[i]),
        )

    wall = np.where(
        np.isnan(sent_s), np.asarray(lx.echo_wall, float), np.asarray(lx.sent_wall, float)
    )
    with np.errstate(invalid="ignore"):
        df = pd.DataFrame(
            {
                "seq": np.arange(n, dtype=np.int64),
                "time": time_column(wall),
                "command": _str_col(lines),
                "name": _str_col(names),
                "kind": pd.Categorical.from_codes(kind_codes, categories=KINDS),
                "qos": _int_col(qos),
                "awaits": _vocab_col(awaits_of.tolist(), cid),
                "sent_s": sent_s,
                "echo_s": echo_s,
                "final_s": final_s,
                "urc_s": urc_s,
                "done_s": done_s,
                "sent_to_echo_s": echo_s - sent_s,
                "sent_to_final_s": final_s - sent_s,
                "echo_to_final_s": final_s - echo_s,
                "sent_to_urc_s": urc_s - sent_s,
                "echo_to_urc_s": urc_s - echo_s,
                "final_to_urc_s": urc_s - final_s,
                "sent_to_done_s": done_s - sent_s,
                "echo_to_done_s": done_s - echo_s,
                "final": _str_col(final_arr),
                "urc": _vocab_col(_TOK_NAMES, urc_id),
                "outcome": pd.Categorical.from_codes(outcome, categories=OUTCOMES),
                "code": _int_col(code),
                "detail": _str_col(detail),
                "http_method": _int_col(http[:, 0]),
                "http_status": _int_col(http[:, 1]),
                "http_len": _int_col(http[:, 2]),
            },
            columns=COLUMNS,
        )
    return df


def _detail(
    outcome: str,
    final_err: bool,
    word: str | None,
    code: float,
    verbose: str | None,
    awaits: str | None,
    comp: Completion | None,
    http_err: bool,
    has_final: bool,
) -> str | None:
    """A short human explanation of a non-ok outcome."""
    if outcome == "error":
        if http_err:
            return HTTP_MODULE_ERRORS.get(int(code), "HTTP module error")
        if verbose:
            return verbose
        if word == "+CME ERROR" and not math.isnan(code):
            return cme_meaning(int(code)) or f"+CME ERROR {int(code)}"
        return word
    if outcome == "closed":
        return f"CLOSED while waiting for {awaits}"
    what = awaits if comp is not None and has_final else "a final result"
    if outcome == "timeout":
        if comp is not None and has_final:
            return f"no {what} within {comp.timeout:g} s"
        return "no final result before the next command"
    if outcome == "incomplete":
        return f"capture ended while waiting for {what}"
    return None


# ---------------------------------------------------------------------------- entry points


def pair_commands(source: Transcript | Sequence[Event] | Iterable[Event]) -> pd.DataFrame:
    """The pairing table of a transcript or of parsed events (a live session's list).

    >>> from airlab.at import Transcript
    >>> pair_commands(Transcript()).shape[1] == len(COLUMNS)
    True
    """
    from airlab.at.transcript import Transcript

    events = source.events() if isinstance(source, Transcript) else source
    return match_and_assemble(lex_events(events))
