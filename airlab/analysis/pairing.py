"""Pair every AT command with its echo, final result and completing URC: one row per command.

Works from a live session's events (a list of :class:`~airlab.at.events.Event`), a
:class:`~airlab.at.transcript.Transcript` (loaded, imported or being recorded) or a
capture file.  The same rules in vectorised form (:mod:`airlab.analysis.fast`) pair
million-line logs; both feed :func:`match_and_assemble`, so they give the same table.
The shared halves live in :mod:`airlab.analysis.lexing` (:class:`Lexed`,
:func:`lex_events`) and :mod:`airlab.analysis.matching` (:func:`match_and_assemble`,
:func:`pair_commands`); this module adds :func:`pair_capture` and re-exports them.

Rules (the command vocabulary is data: :mod:`airlab.analysis.kinds`):

* a command's **echo** is the first echo after it; its **final result** the first
  ``OK``/``ERROR``/``+CME ERROR``… before the next command (what the parser calls
  pending).  A command whose final result has not come when the next one is sent is a
  ``timeout`` (``AT+CIFSR``, which has no final result, ends at its answer line).
* a two-phase command then **waits** for its completing URC from the moment it is sent
  (a URC arriving between the echo and the ``OK`` counts).  A URC goes to the oldest
  command waiting for it; ``CLOSED`` ends every closable wait (outcome ``closed``); an
  ``ERROR`` arriving after the ``OK`` ends a wait that allows it (``AT+MCONNECT``
  refused: outcome ``error``).  A wait not ended within the command's timeout, while the
  capture goes on past it, is a ``timeout``.
* when the capture ends while a command still waits (for its final result or its URC,
  within its timeout), the outcome is ``incomplete``.

Outcomes: ``ok``, ``error`` (``code``/``detail`` say which: ``+CME ERROR`` number and
meaning, ``CONNECT FAIL``, an HTTP module status 600–606), ``timeout``, ``closed``,
``incomplete``.

Columns (times are seconds on the capture's monotonic clock, ``mono``; latencies are
differences of those, the name says from which stamp to which)::

    seq, time (datetime64[us, UTC] of sending), command, name, kind, qos, awaits,
    sent_s, echo_s, final_s, urc_s, done_s,
    sent_to_echo_s, sent_to_final_s, echo_to_final_s, sent_to_urc_s, echo_to_urc_s,
    final_to_urc_s, sent_to_done_s, echo_to_done_s,
    final, urc, outcome, code, detail, http_method, http_status, http_len

Example:
    >>> from airlab.at import parse_stream
    >>> evs = parse_stream([
    ...     ("sent", b'AT+MPUB="t",1,0,"hi"\\r\\n', 10.0, 0.0),
    ...     ("received", b'AT+MPUB="t",1,0,"hi"\\r\\n\\r\\nOK\\r\\n', 10.004, 0.004),
    ...     ("received", b"\\r\\nPUBACK\\r\\n", 10.301, 0.301)])
    >>> row = pair_commands(evs).iloc[0]
    >>> row.kind, row.urc, row.outcome, round(float(row.echo_to_urc_s), 3)
    ('publish_qos1', 'PUBACK', 'ok', 0.297)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from airlab.analysis.lexing import (
    COLUMNS,
    OUTCOMES,
    Lexed,
    lex_events,
)
from airlab.analysis.lexing import (
    NAN as NAN,  # re-exported
)
from airlab.analysis.matching import (
    match_and_assemble,
    pair_commands,
)
from airlab.at.command_table import completion_of

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COLUMNS",
    "OUTCOMES",
    "Lexed",
    "completion_of",
    "lex_events",
    "match_and_assemble",
    "pair_capture",
    "pair_commands",
]


def pair_capture(
    path: str | os.PathLike[str],
    fmt: str | None = None,
    date: str | None = None,
    *,
    fast: bool | None = None,
) -> pd.DataFrame:
    """The pairing table of a capture file (any format :func:`~airlab.at.read_capture` reads).

    ``fast=None`` uses the vectorised path for sscom logs larger than 1 MB (same table);
    ``True`` forces it for sscom/jsonl, ``False`` always parses events.

    >>> pair_capture("data/captures/seed_direct_mqtt.log")["kind"].tolist()[-1]  # doctest: +SKIP
    'mqtt_connect'
    """
    from airlab.at.formats import detect_format, read_capture

    actual = fmt or detect_format(path)
    if fast is None:
        fast = actual == "sscom" and os.path.getsize(path) > 1_000_000
    if fast and actual in ("sscom", "jsonl"):
        from airlab.analysis import fast as fastpath

        return fastpath.pair_file(path, fmt=actual, date=date)
    return pair_commands(read_capture(path, fmt=fmt, date=date))
