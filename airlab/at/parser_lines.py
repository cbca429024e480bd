"""The received side's line rules of :class:`~airlab.at.parser.AtParser`: what one line
from the module is (final result, prompt, echo, information line, URC, payload header,
unknown line or garbage).

A mixin: the parser's state and its pending-command bookkeeping live in
:mod:`airlab.at.parser`; the tables these rules read live in :mod:`airlab.at.urcs`
("add a row, not code").

Example:
    >>> from airlab.at.parser import AtParser
    >>> [e.kind for e in AtParser().feed_received(b"\\r\\n+CGEV: ME PDN ACT 1\\r\\n", 0.0, 0.0)]
    ['urc']
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from airlab.at.events import (
    Echo,
    Event,
    FinalResult,
    Garbage,
    InfoLine,
    UnknownLine,
    Urc,
)
from airlab.at.parser_frames import (
    _CTRL,
    _DIGITS,
    _LEADING_JUNK,
    _MULTILINK,
    _Body,
    split_args,
)
from airlab.at.urcs import (
    ERROR_PREFIXES,
    FINAL_RESULTS,
    FIXED_URCS,
    MAX_BODY,
    MULTILINK_WORDS,
    NAMED_URCS,
    PAYLOAD_HEADERS,
    PREFIX_URCS,
    PayloadHeaderSpec,
)


class _LineRules:
    """Classify one received line (a mixin of :class:`~airlab.at.parser.AtParser`)."""

    _pending: str | None
    _pending_name: str | None
    _pending_aliases: frozenset[str]
    _echoed: bool
    _sent_seen: bool
    _body: _Body | None

    if TYPE_CHECKING:  # defined by AtParser: the pending command and the data phase

        def _final(self, final: FinalResult, out: list[Event]) -> None: ...

        def _set_pending(self, line: str | None, *, echoed: bool) -> None: ...

        def _prompt(
            self, raw: bytes, prompt: str, wall: float, mono: float, out: list[Event]
        ) -> None: ...

    def _line(self, lb: bytes, wall: float, mono: float, ended_cr: bool, out: list[Event]) -> None:
        if lb.isascii():
            if _CTRL.search(lb) is not None:
                self._junk_line(lb, wall, mono, ended_cr, out)
                return
            s = lb.decode("ascii")
        else:
            try:
                s = lb.decode("utf-8")
            except UnicodeDecodeError:
                self._junk_line(lb, wall, mono, ended_cr, out)
                return
            if _CTRL.search(lb) is not None:
                self._junk_line(lb, wall, mono, ended_cr, out)
                return
        t = s.strip()
        if not t:
            return
        self._text_line(lb, s, t, wall, mono, ended_cr, out)

    def _junk_line(
        self, lb: bytes, wall: float, mono: float, ended_cr: bool, out: list[Event]
    ) -> None:
        m = _LEADING_JUNK.match(lb)
        if m is not None and m.end() < len(lb):
            rest = lb[m.end() :]
            try:
                s = rest.decode("utf-8")
            except UnicodeDecodeError:
                s = None
            if s is not None and _CTRL.search(rest) is None and s.strip():
                out.append(Garbage(wall=wall, mono=mono, raw=lb[: m.end()]))
                self._text_line(rest, s, s.strip(), wall, mono, ended_cr, out)
                return
        out.append(Garbage(wall=wall, mono=mono, raw=lb))

    def _text_line(
        self, lb: bytes, s: str, t: str, wall: float, mono: float, ended_cr: bool, out: list[Event]
    ) -> None:
        # 1. final results
        word = FINAL_RESULTS.get(t)
        if word is not None:
            self._final(FinalResult(wall=wall, mono=mono, raw=lb, result=word), out)
            return
        c0 = t[0]
        if c0 == "+" and t.startswith(ERROR_PREFIXES):
            self._final(self._error_result(lb, t, wall, mono), out)
            return
        if c0 == "D":
            if t.startswith("DATA ACCEPT"):
                nums = re.findall(r"\d+", t)
                code = int(nums[-1]) if nums else None
                self._final(
                    FinalResult(wall=wall, mono=mono, raw=lb, result="DATA ACCEPT", code=code), out
                )
                return
            if t == "DOWNLOAD":
                self._prompt(lb, "DOWNLOAD", wall, mono, out)
                return
        # 2. echo
        if (c0 == "A" or c0 == "a") and t[:2].upper() == "AT" and self._is_echo(t):
            out.append(Echo(wall=wall, mono=mono, raw=lb, line=t))
            return
        # 3. '+NAME: …' / '^NAME: …' lines
        colon = t.find(":")
        name = t[:colon].rstrip() if colon >= 0 else t
        if c0 == "+" or c0 == "^":
            spec = PAYLOAD_HEADERS.get(name)
            if (
                spec is not None
                and colon >= 0
                and self._payload_header(lb, t, name, colon, spec, wall, mono, ended_cr, out)
            ):
                return
            if self._pending is not None and (
                name.upper() == self._pending_name or name.upper() in self._pending_aliases
            ):
                out.append(InfoLine(wall=wall, mono=mono, raw=lb, line=s))
                return
        # 4. URCs
        if colon >= 0 and name in NAMED_URCS:
            out.append(
                Urc(
                    wall=wall, mono=mono, raw=lb, name=name, line=s, args=split_args(t[colon + 1 :])
                )
            )
            return
        if t in FIXED_URCS:
            out.append(Urc(wall=wall, mono=mono, raw=lb, name=t, line=s))
            return
        for prefix, urc_name in PREFIX_URCS:
            if t.startswith(prefix):
                rest = t[len(prefix) :]
                args = split_args(rest) if urc_name == "+IPD" else ()
                out.append(Urc(wall=wall, mono=mono, raw=lb, name=urc_name, line=s, args=args))
                return
        if c0.isdigit():
            m = _MULTILINK.fullmatch(t)
            if m is not None:
                word = m.group(2)
                final = MULTILINK_WORDS.get(word)
                if final is True:
                    self._final(FinalResult(wall=wall, mono=mono, raw=lb, result=word), out)
                    return
                if final is False:
                    out.append(
                        Urc(wall=wall, mono=mono, raw=lb, name=word, line=s, args=(m.group(1),))
                    )
                    return
        # 5. anything else
        if t.strip("?") == "":
            out.append(Garbage(wall=wall, mono=mono, raw=lb))  # '?' noise (undecodable bytes)
        elif self._pending is not None:
            out.append(InfoLine(wall=wall, mono=mono, raw=lb, line=s))
        else:
            out.append(UnknownLine(wall=wall, mono=mono, raw=lb, line=s))

    def _is_echo(self, t: str) -> bool:
        """Decide whether a line starting with ``AT`` is an echo (and track the command)."""
        if self._pending is not None:
            if not self._echoed:
                # the pending command's echo (tolerant: T04 echoes AT+RESE as AT+RESET)
                self._echoed = True
                return True
            if self._sent_seen:
                return False  # an answer line that happens to start with AT
        # received-only stream, or nothing pending: the echo tells us the command
        self._set_pending(t, echoed=True)
        return True

    @staticmethod
    def _error_result(lb: bytes, t: str, wall: float, mono: float) -> FinalResult:
        result = "+CME ERROR" if t.startswith("+CME") else "+CMS ERROR"
        rest = t[len(result) :].lstrip(" :").strip()
        m = _DIGITS.fullmatch(rest)
        if m is not None:
            return FinalResult(wall=wall, mono=mono, raw=lb, result=result, code=int(m.group(1)))
        return FinalResult(wall=wall, mono=mono, raw=lb, result=result, detail=rest or None)

    def _payload_header(
        self,
        lb: bytes,
        t: str,
        name: str,
        colon: int,
        spec: PayloadHeaderSpec,
        wall: float,
        mono: float,
        ended_cr: bool,
        out: list[Event],
    ) -> bool:
        if spec.only_answering and self._pending_name != name.upper():
            return False
        args = split_args(t[colon + 1 :])
        if len(args) != spec.nargs:
            return False
        if spec.first_arg is not None and args[0] != spec.first_arg:
            return False
        m = _DIGITS.fullmatch(args[spec.length_index])
        if m is None:
            return False
        length = int(m.group(1))
        if length > MAX_BODY:
            return False
        body = _Body(name, t, lb, length, wall, mono, skip_lf=ended_cr)
        if length == 0:
            out.append(body.event(complete=True))
        else:
            self._body = body
        return True
