"""Host-side incremental parser for the Luat AT dialect (pure: bytes and stamps in, events out).

Feed it the bytes of both directions, in the order they crossed the line, with the
time stamps of the chunk that carried them; it returns the events completed by each
chunk.  It never reads a clock, never blocks and never raises on wire input.

Sent side (host -> module): command lines (CR, LF or CRLF; empty lines ignored) become
:class:`~airlab.at.events.CommandSent`; after a data-phase command (``AT+HTTPDATA``,
``AT+MPUBEX``, ``AT+CIPSEND``, ``AT+FSWRITE``, ``AT+HTTPEXPOST``, see
:data:`~airlab.at.urcs.DATA_PHASE_COMMANDS`) the raw bytes that follow become one
:class:`~airlab.at.events.DataSent` (by announced length, else up to 0x1A; 0x1B aborts).
Data written before the prompt was seen is classified the same way.  Any final result
ends the data phase, as it does in the module: after a refusal (``ERROR`` / ``+CME
ERROR`` instead of the prompt) the bytes already written before it (the CR LF of a
``CR CR LF`` line ending, or data sent blindly) are parsed again as command lines;
after the prompt (a short data phase whose timer expired) they are one short
:class:`~airlab.at.events.DataSent`.

Received side (module -> host): lines framed by CR/LF become
:class:`~airlab.at.events.Echo`, :class:`~airlab.at.events.InfoLine`,
:class:`~airlab.at.events.FinalResult`, :class:`~airlab.at.events.Urc`,
:class:`~airlab.at.events.Prompt`, :class:`~airlab.at.events.UnknownLine` or
:class:`~airlab.at.events.Garbage`; length-framed bodies (``+HTTPREAD: n`` …,
``+MSUB: "t",n byte,…``, ``+IPD,n:…``) become :class:`~airlab.at.events.Payload` or a
:class:`~airlab.at.events.Urc` carrying ``payload``.

Conventions:

* ``wall``/``mono`` of an event are those of the chunk that carried its first byte
  (for a body: the first byte of its header line).
* ``raw`` is the exact bytes of the event's content: a line without its terminator
  (for ``Prompt(">")`` the bytes up to and including ``>``, indentation included);
  for :class:`Payload` and :class:`DataSent` the body bytes only (without the 0x1A /
  0x1B that ended it); for a ``+MSUB``/``+IPD`` URC the whole line, header and payload.
* The result is chunk-invariant: splitting the two byte streams at any points (keeping
  the order in which the directions alternated) yields the same events, stamps aside.
* A partial line is capped at :data:`MAX_LINE` bytes: longer lines come out as
  :class:`Garbage` pieces.  Announced bodies larger than
  :data:`~airlab.at.urcs.MAX_BODY` are not framed (the header is an ordinary line).

Example:
    >>> p = AtParser()
    >>> _ = p.feed_sent(b"AT+CGATT?\\r\\n", 1.0, 1.0)
    >>> wire = b"AT+CGATT?\\r\\n\\r\\n+CGATT: 1\\r\\n\\r\\nOK\\r\\n"
    >>> [e.kind for e in p.feed_received(wire, 1.1, 1.1)]
    ['echo', 'info', 'final']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from airlab.at.events import (
    CommandSent,
    DataSent,
    Direction,
    Event,
    FinalResult,
    Garbage,
    Prompt,
)
from airlab.at.parser_frames import (
    _CONTENT,
    _CR,
    _DATA_END,
    _DIGITS,
    _GT,
    _INLINE_MAX,
    _IPD_HEADER,
    _LF,
    _MSUB_HEADER,
    _NOT_SPACE,
    _PLUS,
    _SP,
    _TERM,
    MAX_LINE,
    _Body,
    _command_args,
    _command_name,
    _DataPhase,
    split_args,
)
from airlab.at.parser_lines import _LineRules
from airlab.at.urcs import (
    ANSWER_ALIASES,
    DATA_PHASE_COMMANDS,
    MAX_BODY,
    DataPhaseSpec,
)

__all__ = ["MAX_LINE", "AtParser", "parse_stream", "split_args"]


class AtParser(_LineRules):
    """Incremental, chunk-invariant parser of both directions of an AT serial session.

    Example:
        >>> p = AtParser()
        >>> p.feed_received(b"\\r\\nCONNECT OK\\r\\n", 5.0, 1.0)[0].name
        'CONNECT OK'
    """

    #: When true, internal errors propagate (tests); otherwise the offending chunk
    #: becomes a Garbage event and the parser resets its line state.
    strict: bool = False

    def __init__(self) -> None:
        # sent side
        self._sbuf = bytearray()
        self._s_wall = 0.0
        self._s_mono = 0.0
        self._s_skip_lf = False
        self._dp: _DataPhase | None = None
        self._sent_seen = False
        # received side
        self._rbuf = bytearray()
        self._r_wall = 0.0
        self._r_mono = 0.0
        self._overflow = False
        self._body: _Body | None = None
        self._swallow_space = False
        # command tracking (shared)
        self._pending: str | None = None
        self._pending_upper = ""
        self._pending_name: str | None = None
        self._pending_aliases: frozenset[str] = frozenset()
        self._echoed = False
        self._gt_ok = False  # a '>' at a line start is a prompt

    # ------------------------------------------------------------------ public API

    def feed(
        self, direction: Direction | str, data: bytes, wall: float, mono: float
    ) -> list[Event]:
        """Feed one chunk in the given direction (``Direction.SENT`` / ``RECEIVED``)."""
        if direction == Direction.SENT:
            return self.feed_sent(data, wall, mono)
        return self.feed_received(data, wall, mono)

    def feed_sent(self, data: bytes, wall: float, mono: float) -> list[Event]:
        """Bytes the host wrote to the module; returns the events they complete."""
        if not data:
            return []
        self._sent_seen = True
        return self._feed(self._sent, self._reset_sent, bytes(data), wall, mono)

    def feed_received(self, data: bytes, wall: float, mono: float) -> list[Event]:
        """Bytes read from the module; returns the events they complete."""
        if not data:
            return []
        return self._feed(self._received, self._reset_received, bytes(data), wall, mono)

    def close(self, wall: float, mono: float) -> list[Event]:
        """End of stream: flush the partial command line, data, line or body."""
        out: list[Event] = []
        # sent side
        dp = self._dp
        if dp is not None and dp.started:
            out.append(
                DataSent(wall=dp.wall, mono=dp.mono, raw=bytes(dp.buf), for_command=dp.command)
            )
        self._dp = None
        if self._sbuf:
            line = bytes(self._sbuf)
            self._sbuf = bytearray()
            text = line.decode("utf-8", "replace").strip()
            if text:
                out.append(CommandSent(wall=self._s_wall, mono=self._s_mono, raw=line, line=text))
        self._s_skip_lf = False
        # received side
        body = self._body
        if body is not None:
            self._body = None
            out.append(body.event(complete=False))
        if self._rbuf:
            line = bytes(self._rbuf)
            self._rbuf = bytearray()
            if self._overflow:
                out.append(Garbage(wall=self._r_wall, mono=self._r_mono, raw=line))
            else:
                self._line(line, self._r_wall, self._r_mono, False, out)
        self._overflow = False
        self._swallow_space = False
        return out

    def _feed(
        self,
        step: Callable[[bytes, float, float, list[Event]], None],
        reset: Callable[[], None],
        data: bytes,
        wall: float,
        mono: float,
    ) -> list[Event]:
        """Run one side's ``step`` on a chunk; unless :attr:`strict`, an internal error
        turns the chunk into a Garbage event and calls ``reset`` (that side's line state)."""
        out: list[Event] = []
        try:
            step(data, wall, mono, out)
        except Exception:  # pragma: no cover - safety net for live sessions
            if self.strict:
                raise
            reset()
            out.append(Garbage(wall=wall, mono=mono, raw=data))
        return out

    def _reset_sent(self) -> None:
        self._sbuf = bytearray()
        self._dp = None

    def _reset_received(self) -> None:
        self._rbuf = bytearray()
        self._body = None
        self._overflow = False

    # ------------------------------------------------------------------ sent side

    def _sent(self, data: bytes, wall: float, mono: float, out: list[Event]) -> None:
        pos = 0
        n = len(data)
        while pos < n:
            if self._s_skip_lf:
                self._s_skip_lf = False
                if data[pos] == _LF:
                    pos += 1
                    continue
            dp = self._dp
            if dp is not None:
                pos = self._sent_data(dp, data, pos, wall, mono, out)
                continue
            m = _TERM.search(data, pos)
            if m is None:
                if not self._sbuf:
                    self._s_wall, self._s_mono = wall, mono
                self._sbuf += data[pos:]
                if len(self._sbuf) > MAX_LINE:  # a runaway line: emit it in pieces
                    while len(self._sbuf) > MAX_LINE:
                        piece = bytes(self._sbuf[:MAX_LINE])
                        del self._sbuf[:MAX_LINE]
                        out.append(self._command_event(piece, self._s_wall, self._s_mono))
                    self._s_wall, self._s_mono = wall, mono
                return
            end = m.start()
            if self._sbuf:
                line = bytes(self._sbuf) + data[pos:end]
                lw, lm = self._s_wall, self._s_mono
                self._sbuf = bytearray()
            else:
                line = data[pos:end]
                lw, lm = wall, mono
            self._s_skip_lf = data[end] == _CR
            pos = end + 1
            if line:
                while len(line) > MAX_LINE:
                    out.append(self._command_event(line[:MAX_LINE], lw, lm))
                    line = line[MAX_LINE:]
                ev = self._command_event(line, lw, lm)
                out.append(ev)
                self._on_command(ev.line)

    @staticmethod
    def _command_event(line: bytes, wall: float, mono: float) -> CommandSent:
        return CommandSent(wall=wall, mono=mono, raw=line, line=line.decode("utf-8", "replace"))

    def _sent_data(
        self, dp: _DataPhase, data: bytes, pos: int, wall: float, mono: float, out: list[Event]
    ) -> int:
        if not dp.started:
            dp.started = True
            dp.wall, dp.mono = wall, mono
        n = len(data)
        if dp.remaining is not None:
            take = min(dp.remaining, n - pos)
            dp.buf += data[pos : pos + take]
            dp.remaining -= take
            pos += take
            if dp.remaining == 0:
                self._finish_data(dp, out)
            return pos
        m = _DATA_END.search(data, pos)
        if m is None:
            dp.buf += data[pos:]
            if len(dp.buf) >= MAX_BODY:
                self._finish_data(dp, out)
            return n
        dp.buf += data[pos : m.start()]
        self._finish_data(dp, out)
        return m.end()

    def _finish_data(self, dp: _DataPhase, out: list[Event]) -> None:
        out.append(DataSent(wall=dp.wall, mono=dp.mono, raw=bytes(dp.buf), for_command=dp.command))
        self._dp = None

    def _on_command(self, line: str) -> None:
        """A command line was sent: it becomes the pending command; maybe a data phase."""
        self._set_pending(line, echoed=False)
        self._dp = None
        name = self._pending_name
        if name is None:
            return
        spec = DATA_PHASE_COMMANDS.get(name)
        if spec is None:
            return
        length = self._data_length(line, spec)
        if length is False:
            return
        self._dp = _DataPhase(line.strip(), length if isinstance(length, int) else None)

    @staticmethod
    def _data_length(line: str, spec: DataPhaseSpec) -> int | bool | None:
        """Announced length (int), ``None`` (until 0x1A) or ``False`` (no data phase)."""
        args = _command_args(line)
        if args is None:
            return False
        idx = spec.length_index.get(len(args))
        if idx is None:
            return None if spec.until_ctrl_z and not args else False
        m = _DIGITS.fullmatch(args[idx])
        if m is None:
            return False
        length = int(m.group(1))
        if length <= 0 or length > MAX_BODY:
            return False
        return length

    # ------------------------------------------------------------------ pending command

    def _set_pending(self, line: str | None, *, echoed: bool) -> None:
        self._pending = line
        if line is None:
            self._pending_upper = ""
            self._pending_name = None
            self._pending_aliases = frozenset()
            self._echoed = False
            self._gt_ok = False
            return
        self._pending_upper = line.strip().upper()
        name = _command_name(line)
        self._pending_name = name
        self._pending_aliases = ANSWER_ALIASES.get(name, frozenset()) if name else frozenset()
        self._echoed = echoed
        spec = DATA_PHASE_COMMANDS.get(name) if name else None
        self._gt_ok = spec is not None and spec.prompt == ">"

    def _final(self, final: FinalResult, out: list[Event]) -> None:
        """A final result: the pending command is over, and so is its data phase.

        The module reads commands again after any final result: a refusal (``ERROR``
        / ``+CME ERROR`` instead of the prompt) or the end of a short data phase (its
        timer expired).  Bytes the host sent after the prompt become one (short)
        :class:`DataSent` before the result; bytes sent before any prompt (the CR LF
        of a ``CR CR LF`` line ending, or data written blindly) went to the module's
        command interpreter, so they are parsed again as command lines, after it.
        """
        dp = self._dp
        self._dp = None
        if dp is not None and dp.started and dp.prompted:
            out.append(
                DataSent(wall=dp.wall, mono=dp.mono, raw=bytes(dp.buf), for_command=dp.command)
            )
        out.append(final)
        self._set_pending(None, echoed=False)
        if dp is not None and dp.started and not dp.prompted and dp.buf:
            self._sent(bytes(dp.buf), dp.wall, dp.mono, out)

    # ------------------------------------------------------------------ received side

    def _received(self, chunk: bytes, wall: float, mono: float, out: list[Event]) -> None:
        if self._rbuf:
            if self._body is None and _TERM.search(chunk) is None:
                # the partial line goes on without a terminator: cheap path
                self._rbuf += chunk
                self._partial_checks(chunk, wall, mono, out)
                return
            data = bytes(self._rbuf) + chunk
            boundary = len(self._rbuf)
            fw, fm = self._r_wall, self._r_mono
            self._rbuf = bytearray()
        else:
            data = chunk
            boundary = 0
            fw, fm = wall, mono
        pos = 0
        n = len(data)
        while pos < n:
            body = self._body
            if body is not None:
                pos = self._body_bytes(body, data, pos, out)
                continue
            b = data[pos]
            if self._swallow_space:
                self._swallow_space = False
                if b == _SP:
                    pos += 1
                    continue
            if b in (_CR, _LF):  # framing: skip the whole run of line breaks
                m = _CONTENT.search(data, pos)
                pos = n if m is None else m.start()
                continue
            # a line starts at pos
            if pos < boundary:
                lw, lm = fw, fm
            else:
                lw, lm = wall, mono
            overflow = self._overflow
            if not overflow:
                if self._gt_ok and (b in (_GT, _SP)):
                    m = _NOT_SPACE.search(data, pos)
                    if m is None:  # only spaces so far: wait for more
                        self._keep_partial(data[pos:], lw, lm, out)
                        return
                    k = m.start()
                    if data[k] == _GT:
                        self._prompt(data[pos : k + 1], ">", lw, lm, out)
                        self._swallow_space = True
                        pos = k + 1
                        continue
                if b == _PLUS:
                    hdr = self._inline_header(data, pos, lw, lm, out)
                    if hdr is not None:
                        pos = hdr
                        continue
            m = _TERM.search(data, pos)
            if m is None:
                self._keep_partial(data[pos:], lw, lm, out)
                return
            end = m.start()
            line = data[pos:end]
            pos = end + 1
            if overflow:
                self._overflow = False
                self._garbage_pieces(line, lw, lm, out, last=True)
            elif len(line) > MAX_LINE:
                self._garbage_pieces(line, lw, lm, out, last=True)
            else:
                self._line(line, lw, lm, data[end] == _CR, out)

    def _keep_partial(self, rest: bytes, wall: float, mono: float, out: list[Event]) -> None:
        self._rbuf = bytearray(rest)
        self._r_wall, self._r_mono = wall, mono
        self._cap_partial(wall, mono, out)

    def _cap_partial(self, wall: float, mono: float, out: list[Event]) -> None:
        if len(self._rbuf) > MAX_LINE:
            self._overflow = True
            while len(self._rbuf) > MAX_LINE:
                out.append(
                    Garbage(wall=self._r_wall, mono=self._r_mono, raw=bytes(self._rbuf[:MAX_LINE]))
                )
                del self._rbuf[:MAX_LINE]
                self._r_wall, self._r_mono = wall, mono

    def _partial_checks(self, chunk: bytes, wall: float, mono: float, out: list[Event]) -> None:
        """The partial line grew (no terminator): prompt / inline header / cap checks."""
        buf = self._rbuf
        if not self._overflow:
            first = buf[0]
            if self._gt_ok and (first in (_GT, _SP)):
                m = _NOT_SPACE.search(buf)
                if m is not None and buf[m.start()] == _GT:
                    data = bytes(buf)
                    self._rbuf = bytearray()
                    k = m.start()
                    self._prompt(data[: k + 1], ">", self._r_wall, self._r_mono, out)
                    self._swallow_space = True
                    if k + 1 < len(data):
                        self._received(data[k + 1 :], wall, mono, out)
                    return
            if first == _PLUS and b"," in chunk and len(buf) - len(chunk) < _INLINE_MAX:
                data = bytes(buf)
                rw, rm = self._r_wall, self._r_mono
                hdr = self._inline_header(data, 0, rw, rm, out)
                if hdr is not None:
                    self._rbuf = bytearray()
                    if hdr < len(data):
                        self._received(data[hdr:], wall, mono, out)
                    return
        self._cap_partial(wall, mono, out)

    def _garbage_pieces(
        self, line: bytes, wall: float, mono: float, out: list[Event], *, last: bool
    ) -> None:
        while len(line) > MAX_LINE:
            out.append(Garbage(wall=wall, mono=mono, raw=line[:MAX_LINE]))
            line = line[MAX_LINE:]
        if line and last:
            out.append(Garbage(wall=wall, mono=mono, raw=line))

    def _body_bytes(self, body: _Body, data: bytes, pos: int, out: list[Event]) -> int:
        if body.skip_lf:
            body.skip_lf = False
            if data[pos] == _LF:
                return pos + 1
        take = min(body.remaining, len(data) - pos)
        body.buf += data[pos : pos + take]
        body.remaining -= take
        if body.remaining == 0:
            self._body = None
            out.append(body.event(complete=True))
        return pos + take

    def _inline_header(
        self, data: bytes, pos: int, wall: float, mono: float, out: list[Event]
    ) -> int | None:
        """``+MSUB: "t",n byte,`` / ``+IPD,n:`` at ``pos``: start the body, return its start."""
        if data.startswith(b"+MSUB", pos):
            m = _MSUB_HEADER.match(data, pos)
            if m is None:
                return None
            length = int(m.group(3))
            if length > MAX_BODY:
                return None
            quoted, bare = m.group(1), m.group(2)
            topic = (quoted if quoted is not None else bare or b"").decode("utf-8", "replace")
            topic = topic.strip()
            header_raw = data[pos : m.end()]
            header = header_raw[:-1].decode("utf-8", "replace")
            as_payload = self._pending_name == "+MQTTMSGGET"
            body = _Body(
                "+MSUB",
                header,
                header_raw,
                length,
                wall,
                mono,
                topic=topic,
                urc=not as_payload,
                urc_args=(topic, f"{length} byte"),
            )
        elif data.startswith(b"+IPD", pos):
            m = _IPD_HEADER.match(data, pos)
            if m is None:
                return None
            length = int(m.group(1))
            if length > MAX_BODY:
                return None
            header_raw = data[pos : m.end()]
            header = header_raw[:-1].decode("ascii", "replace")
            body = _Body(
                "+IPD",
                header,
                header_raw,
                length,
                wall,
                mono,
                urc=True,
                urc_args=tuple(header[5:].split(",")),
            )
        else:
            return None
        if length == 0:
            out.append(body.event(complete=True))
        else:
            self._body = body
        return m.end()

    def _prompt(self, raw: bytes, prompt: str, wall: float, mono: float, out: list[Event]) -> None:
        out.append(Prompt(wall=wall, mono=mono, raw=raw, prompt=prompt))
        if self._dp is not None:
            self._dp.prompted = True
        if prompt == ">":
            self._gt_ok = False


def parse_stream(chunks: Iterable[tuple[Direction | str, bytes, float, float]]) -> list[Event]:
    """Parse a whole recorded stream: feed every ``(direction, data, wall, mono)``, then close.

    >>> evs = parse_stream([(Direction.SENT, b"AT\\r\\n", 0.0, 0.0),
    ...                     (Direction.RECEIVED, b"AT\\r\\n\\r\\nOK\\r\\n", 0.1, 0.1)])
    >>> [e.kind for e in evs]
    ['command', 'echo', 'final']
    """
    parser = AtParser()
    out: list[Event] = []
    wall = mono = 0.0
    for direction, data, wall, mono in chunks:
        out.extend(parser.feed(direction, data, wall, mono))
    out.extend(parser.close(wall, mono))
    return out
