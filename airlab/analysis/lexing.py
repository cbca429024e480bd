"""The pairing's first half, shared by the event path and the vectorised one: the
table's :data:`COLUMNS` and :data:`OUTCOMES`, and :class:`Lexed` (commands and the
tokens that may complete them) built from parsed events by :func:`lex_events`
(:func:`airlab.analysis.fast.lex_records` builds the same from a records DataFrame).

Example:
    >>> from airlab.at import Direction, parse_stream
    >>> from airlab.analysis.lexing import lex_events
    >>> lx = lex_events(parse_stream([(Direction.SENT, b"AT+CGATT?\\r\\n", 0.0, 0.0),
    ...     (Direction.RECEIVED, b"\\r\\n+CGATT: 1\\r\\n\\r\\nOK\\r\\n", 0.1, 0.1)]))
    >>> lx.line
    ['AT+CGATT?']
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airlab.analysis.kinds import (
    COMPLETION_NAMES,
)
from airlab.at.events import (
    CommandSent,
    Echo,
    Event,
    FinalResult,
    InfoLine,
    Payload,
    Urc,
)

if TYPE_CHECKING:
    pass


NAN = math.nan

OUTCOMES = ["ok", "error", "timeout", "closed", "incomplete"]

COLUMNS = [
    "seq",
    "time",
    "command",
    "name",
    "kind",
    "qos",
    "awaits",
    "sent_s",
    "echo_s",
    "final_s",
    "urc_s",
    "done_s",
    "sent_to_echo_s",
    "sent_to_final_s",
    "echo_to_final_s",
    "sent_to_urc_s",
    "echo_to_urc_s",
    "final_to_urc_s",
    "sent_to_done_s",
    "echo_to_done_s",
    "final",
    "urc",
    "outcome",
    "code",
    "detail",
    "http_method",
    "http_status",
    "http_len",
]

_ERROR_WORDS = ("ERROR", "+CME ERROR", "+CMS ERROR")


@dataclass
class Lexed:
    """What the pairing needs from a capture, one entry per command plus the URC tokens.

    Built from events (:func:`lex_events`) or vectorised from records
    (:func:`airlab.analysis.fast.lex_records`).  ``pos`` values only need to order
    commands, finals and tokens the way they crossed the line.  Tokens are the URCs
    that can end a wait (completion names, ``CLOSED``) and error finals that came when
    no command was pending (``name`` = the result word, ``code`` its number).
    """

    line: list[str] = field(default_factory=list)
    pos: list[int] = field(default_factory=list)
    sent_s: list[float] = field(default_factory=list)
    sent_wall: list[float] = field(default_factory=list)
    echoed: list[bool] = field(default_factory=list)
    echo_s: list[float] = field(default_factory=list)
    echo_wall: list[float] = field(default_factory=list)
    final_pos: list[int] = field(default_factory=list)
    final_s: list[float] = field(default_factory=list)
    final_result: list[str | None] = field(default_factory=list)
    final_code: list[float] = field(default_factory=list)
    final_detail: list[str | None] = field(default_factory=list)
    info_s: list[float] = field(default_factory=list)
    tok_pos: list[int] = field(default_factory=list)
    tok_s: list[float] = field(default_factory=list)
    tok_name: list[str] = field(default_factory=list)
    tok_args: list[tuple[str, ...]] = field(default_factory=list)
    tok_code: list[float] = field(default_factory=list)
    end_s: float = NAN
    #: optional (tokens × 3) floats: ``+HTTPACTION`` method, status, length of each
    #: token, as ``tok_args`` would give them (the vectorised lexer fills it).
    tok_http: Any = None

    def add_command(self, line: str, pos: int, sent_s: float, sent_wall: float) -> int:
        self.line.append(line)
        self.pos.append(pos)
        self.sent_s.append(sent_s)
        self.sent_wall.append(sent_wall)
        self.echoed.append(False)
        self.echo_s.append(NAN)
        self.echo_wall.append(NAN)
        self.final_pos.append(-1)
        self.final_s.append(NAN)
        self.final_result.append(None)
        self.final_code.append(NAN)
        self.final_detail.append(None)
        self.info_s.append(NAN)
        return len(self.line) - 1

    def add_token(
        self, pos: int, mono: float, name: str, args: tuple[str, ...] = (), code: float = NAN
    ) -> None:
        self.tok_pos.append(pos)
        self.tok_s.append(mono)
        self.tok_name.append(name)
        self.tok_args.append(args)
        self.tok_code.append(code)


def _info_args(line: str) -> tuple[str, tuple[str, ...]]:
    from airlab.at.parser import split_args

    colon = line.find(":")
    if colon < 0:
        return line.strip(), ()
    return line[:colon].strip(), split_args(line[colon + 1 :])


def lex_events(events: Iterable[Event]) -> Lexed:
    """Collect commands, their echo / final / first answer and the URC tokens from events.

    An echo with no command waiting for one (a capture of the received side only)
    stands for its command: a row without ``sent_s``.
    """
    lx = Lexed()
    cur: int | None = None  # the command whose final result is pending
    for i, ev in enumerate(events):
        mono = ev.mono
        if not math.isnan(mono):
            lx.end_s = mono
        if isinstance(ev, CommandSent):
            cur = lx.add_command(ev.line.strip(), i, mono, ev.wall)
        elif isinstance(ev, Echo):
            if cur is None or lx.echoed[cur]:
                cur = lx.add_command(ev.line.strip(), i, NAN, NAN)
            lx.echoed[cur] = True
            lx.echo_s[cur] = mono
            lx.echo_wall[cur] = ev.wall
        elif isinstance(ev, FinalResult):
            if cur is not None:
                lx.final_pos[cur] = i
                lx.final_s[cur] = mono
                lx.final_result[cur] = ev.result
                lx.final_code[cur] = NAN if ev.code is None else float(ev.code)
                lx.final_detail[cur] = ev.detail
                cur = None
            elif ev.result in _ERROR_WORDS:
                lx.add_token(i, mono, ev.result, (), NAN if ev.code is None else float(ev.code))
        elif isinstance(ev, Urc):
            if ev.name in COMPLETION_NAMES or ev.name == "CLOSED":
                lx.add_token(i, mono, ev.name, ev.args)
        elif isinstance(ev, InfoLine):
            if cur is not None and math.isnan(lx.info_s[cur]):
                lx.info_s[cur] = mono
            name, args = _info_args(ev.line)
            if name in COMPLETION_NAMES:
                lx.add_token(i, mono, name, args)
        elif isinstance(ev, Payload) and cur is not None and math.isnan(lx.info_s[cur]):
            lx.info_s[cur] = mono
    return lx
