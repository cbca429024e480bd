"""``ModemSession``: the host side of an AT serial session over any pyserial port.

The session never knows whether its port is a real Air780EP (``/dev/ttyUSB0``,
``COM5``), a TCP bridge (``socket://host:port``) or the simulator (``airsim://…``).

* A **reader thread** reads the port; every chunk is recorded (direction, exact bytes,
  wall and monotonic stamps) in :attr:`ModemSession.transcript` (and appended, flushed,
  to a JSONL file when a path was given), fed to the :class:`~airlab.at.parser.AtParser`,
  and its events appended to :attr:`ModemSession.events`.  Writes are recorded the same
  way, in the order they crossed the line.
* **Bounded memory**: the session keeps the last ``max_events`` events (default
  :data:`DEFAULT_MAX_EVENTS`) and, when it writes a transcript file, the last
  ``max_events`` records in memory; the file keeps every record
  (``Transcript.load(path).events()`` gives every event).  Event indices
  (:meth:`~ModemSession.mark`, ``since=``) count every event since the start.
* **One command at a time**: :meth:`~ModemSession.command` writes the line, waits for
  the final result and returns a frozen :class:`~airlab.session.response.Response`.
* **Two-phase commands** (:meth:`~ModemSession.command_and_wait`) are awaited to their
  URC; the scan starts at the command itself, so a URC arriving between the echo and
  ``OK`` is not lost.
* **Data phases**: :meth:`~ModemSession.http_post_body`, :meth:`~ModemSession.send_data`
  (``DOWNLOAD`` / ``>`` prompt, then exactly the bytes).
* **URCs**: :meth:`~ModemSession.on_urc` callbacks (dispatcher thread),
  :meth:`~ModemSession.wait_for_urc`, :attr:`~ModemSession.messages` (``+MSUB``).
* **Guards** (:mod:`airlab.session.guards`) raise :class:`~airlab.errors.UsageError`
  before anything is written.

Example:
    >>> import airlab  # registers airsim://
    >>> with ModemSession("airsim://?profile=instant") as s:
    ...     r = s.command("AT+CGATT?")
    >>> r.args("+CGATT"), r.ok
    (('1',), True)
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import serial

from airlab.at.command_table import COMPLETIONS, PUBLISH_COMMANDS, PUBLISH_COMPLETIONS
from airlab.at.commands import httpdata, mpub, mpubex, mqttmsgget
from airlab.at.events import (
    CommandSent,
    Direction,
    Echo,
    Event,
    FinalResult,
    InfoLine,
    Payload,
    Prompt,
    Urc,
)
from airlab.at.parser import AtParser
from airlab.at.transcript import Record, Transcript, TranscriptWriter
from airlab.errors import CloudRejected, UsageError
from airlab.session import guards
from airlab.session.errors import (
    CommandError,
    ConnectFailed,
    ConnectionClosed,
    LateMconnectWarning,
    PortClosed,
    ResponseTimeout,
    UrcTimeout,
    command_name,
)
from airlab.session.response import MessageQueue, MqttMessage, Response
from airlab.session.urcs import UrcCallback, UrcDispatcher, UrcMatcher, UrcSubscription, urc_matcher

__all__ = [
    "DEFAULT_FAIL",
    "DEFAULT_MAX_EVENTS",
    "LATE_MCONNECT_POLICIES",
    "LINE_ENDINGS",
    "MIN_MAX_EVENTS",
    "ModemSession",
]

log = logging.getLogger("airlab.session")

#: URCs (and an unsolicited ``ERROR`` after ``OK``) that end a two-phase wait in failure.
DEFAULT_FAIL: tuple[str, ...] = ("ERROR", "CLOSED", "CONNECT FAIL")
#: Events a session keeps in memory by default (the newest; older ones are in the
#: transcript file).  About 0.3 KB each with their transcript records: ~3 MB.
DEFAULT_MAX_EVENTS = 10_000
#: Smallest ``max_events`` accepted (one exchange must fit in the window).
MIN_MAX_EVENTS = 100
#: Accepted ``line_ending`` values; ``"\r\r\n"`` is what a terminal sends when the typed
#: line already ends with CR and the tool appends CR LF (the module ends the command at
#: the first CR and reads the rest as a blank line, or as data after a prompt).
LINE_ENDINGS: tuple[str, ...] = ("\r\n", "\r", "\n", "\r\r\n")
#: What to do when ``AT+MCONNECT`` comes too late after ``CONNECT OK`` (or after CLOSED).
LATE_MCONNECT_POLICIES = ("reconnect", "warn", "raise")

MCONNECT_REFUSED_HINT = (
    "the cloud's log says why — in a lesson print(lab.cloud.explain_last_refusal()), "
    "with an emulator CloudEmulator.explain_last_refusal(), on the real cloud the console's "
    "日志服务; most often check the signature (device secret, sign method, client id, user "
    "name), then the host (your product's) and whether the device is enabled"
)
MSUB_REFUSED_HINT = (
    "the device may only subscribe to topics its product allows (/<pk>/<dn>/user/get ...): "
    "in a lesson print(lab.cloud.explain_last_refusal()) (CloudEmulator.refusals())"
)
_MIPSTART = ("+MIPSTART", "+SSLMIPSTART")
#: what opens the link after (SSL)MIPSTART, and what acknowledges a QoS1/2 publish
_LINK_OPENED = COMPLETIONS["+MIPSTART"].ok
_PUB_ACKED = tuple(name for c in PUBLISH_COMPLETIONS.values() for name in c.ok)


class ModemSession:
    """The host side over any pyserial port (see the module docstring).

    ``port``: an open (or openable) :class:`serial.SerialBase`, or a URL / device name
    opened with ``serial.serial_for_url(port, baudrate=baudrate, timeout=read_timeout)``.
    A given port whose ``timeout`` is None or above 0.2 s gets ``read_timeout`` (the
    reader must wake up to stop).  ``transcript``: a JSONL path (appended and flushed
    chunk by chunk, kept in memory too), a :class:`~airlab.at.transcript.Transcript` to
    append to, or None (in memory).  ``default_timeout``: seconds for a final result;
    ``urc_timeout``: seconds for a two-phase command's URC.  ``line_ending``: appended
    to every command (a real module accepts CR too; see :data:`LINE_ENDINGS`).
    ``mconnect_window``: seconds after ``CONNECT OK`` within which ``AT+MCONNECT``
    must follow (the server drops an idle link after ~5 s); ``late_mconnect``:
    ``"reconnect"`` (warn, reopen the link with the last MIPSTART line, then
    MCONNECT), ``"warn"`` (warn and send anyway) or ``"raise"``.
    ``close_port``: close the port in :meth:`close` (default true).  ``max_events``:
    how many of the newest events :attr:`events` keeps in memory (default
    :data:`DEFAULT_MAX_EVENTS`, at least :data:`MIN_MAX_EVENTS`; ``None``: all); with
    a transcript path the in-memory :attr:`transcript` keeps as many records, the file
    keeps them all.  ``guards``: with ``False`` (raw mode) the session no longer protects
    you from the module's pitfalls: a wrong data length, a second QoS1 publish before
    PUBACK, a late ``AT+MCONNECT``, an ``AT+MPUB`` line the firmware will refuse all go
    to the module as written, so you see what it does; :meth:`send_text` types like a
    serial terminal (sscom).  The attribute can be switched at any time.
    """

    def __init__(
        self,
        port: serial.SerialBase | str,
        *,
        baudrate: int = 115200,
        transcript: str | PathLike[str] | Transcript | None = None,
        default_timeout: float = 5.0,
        urc_timeout: float = 30.0,
        line_ending: str = "\r\n",
        mconnect_window: float = 4.0,
        late_mconnect: str = "reconnect",
        read_timeout: float = 0.05,
        close_port: bool = True,
        max_events: int | None = DEFAULT_MAX_EVENTS,
        guards: bool = True,
    ) -> None:
        if late_mconnect not in LATE_MCONNECT_POLICIES:
            raise UsageError(
                "late_mconnect", f"must be one of {LATE_MCONNECT_POLICIES}, got {late_mconnect!r}"
            )
        if line_ending not in LINE_ENDINGS:
            raise UsageError("line_ending", "must be '\\r\\n', '\\r', '\\n' or '\\r\\r\\n'")
        for name, value in (
            ("default_timeout", default_timeout),
            ("urc_timeout", urc_timeout),
            ("read_timeout", read_timeout),
        ):
            if not isinstance(value, int | float) or value <= 0:
                raise UsageError(name, f"must be a positive number of seconds, got {value!r}")
        if not isinstance(mconnect_window, int | float) or mconnect_window < 0:
            raise UsageError("mconnect_window", "must be a number of seconds >= 0")
        if max_events is not None and (
            not isinstance(max_events, int)
            or isinstance(max_events, bool)
            or max_events < MIN_MAX_EVENTS
        ):
            raise UsageError(
                "max_events", f"must be None or an integer >= {MIN_MAX_EVENTS}, got {max_events!r}"
            )
        self.max_events = max_events
        self.guards = bool(guards)
        self._mconfig_user: str | None = None  # the login AT+MCONFIG configured (host guard)
        self.default_timeout = float(default_timeout)
        self.urc_timeout = float(urc_timeout)
        self.line_ending = line_ending
        self.mconnect_window = float(mconnect_window)
        self.late_mconnect = late_mconnect
        self._close_port = close_port

        if isinstance(port, str):
            self.url: str | None = port
        elif isinstance(port, serial.SerialBase):
            self.url = getattr(port, "portstr", None)
        else:
            raise UsageError("port", f"expected a pyserial port or a URL, got {port!r}")

        meta = {"device": str(self.url), "recorder": "airlab.session"}
        self._writer: TranscriptWriter | None = None
        self._max_records: int | None = None  # bound of the in-memory copy of a file
        if isinstance(transcript, Transcript):
            self._transcript = transcript
        elif transcript is None:
            self._transcript = Transcript(format="jsonl", meta=meta)
        elif isinstance(transcript, str | PathLike):
            self._transcript = Transcript(source=str(transcript), format="jsonl", meta=meta)
            self._writer = TranscriptWriter(Path(transcript), meta=meta)
            self._max_records = max_events
        else:
            raise UsageError("transcript", "expected a path, a Transcript or None")

        try:
            if isinstance(port, str):
                port = serial.serial_for_url(port, baudrate=baudrate, timeout=read_timeout)
            else:
                if not port.is_open:
                    port.open()
                if port.timeout is None or port.timeout > 0.2:
                    port.timeout = read_timeout
        except BaseException:
            if self._writer is not None:
                self._writer.close()
            raise
        self._port: serial.SerialBase = port

        self._parser = AtParser()
        self._cond = threading.Condition()
        self._events: deque[Event] = deque(maxlen=max_events)
        self._dropped = 0  # events that left the window: the index of self._events[0]
        self._cmd_lock = threading.RLock()
        self._qos1_lock = threading.Lock()
        self._failure: BaseException | None = None
        self._closed = False
        self._stop = threading.Event()
        # state tracked from the event stream
        self._cur_cmd: str | None = None
        self._mipstart_waiting = False
        self._last_mipstart: str | None = None
        self._link_up_mono: float | None = None
        self._link_closed = False
        self._pub_pending: float | None = None

        self.messages = MessageQueue()
        self._dispatcher = UrcDispatcher()
        self._reader = threading.Thread(
            target=self._read_loop, name="airlab-session-reader", daemon=True
        )
        self._reader.start()

    # ------------------------------------------------------------------ properties

    @property
    def port(self) -> serial.SerialBase:
        return self._port

    @property
    def transcript(self) -> Transcript:
        """Every chunk both ways, in order, with its stamps (grows while the session runs)."""
        return self._transcript

    @property
    def events(self) -> list[Event]:
        """The newest parsed events, oldest first (a copy; at most ``max_events``).

        ``events[0]`` has the index :attr:`first_index`; older events are in the
        transcript file (``Transcript.load(path).events()``).
        """
        with self._cond:
            return list(self._events)

    @property
    def first_index(self) -> int:
        """The index of the oldest event still in memory (0 until the window is full).

        >>> import airlab
        >>> with ModemSession("airsim://?profile=instant", max_events=100) as s:
        ...     for _ in range(40):
        ...         _ = s.command("AT")
        ...     s.first_index, s.mark(), len(s.events)
        (20, 120, 100)
        """
        with self._cond:
            return self._dropped

    def events_since(self, index: int) -> list[Event]:
        """The events from index ``index`` (a :meth:`mark`) on that are still in memory.

        Events older than :attr:`first_index` have left the window: they are not
        returned (read them from the transcript file).

        >>> import airlab
        >>> with ModemSession("airsim://?profile=instant") as s:
        ...     mark = s.mark()
        ...     _ = s.command("AT")
        ...     [e.kind for e in s.events_since(mark)]
        ['command', 'echo', 'final']
        """
        with self._cond:
            return self._slice(index, None)

    def _slice(self, start: int, stop: int | None) -> list[Event]:
        """Events with indices in ``[start, stop)`` still in memory (``self._cond`` held)."""
        base = self._dropped
        lo = max(0, start - base)
        hi = None if stop is None else max(lo, stop - base)
        return list(itertools.islice(self._events, lo, hi))

    @property
    def reader_thread(self) -> threading.Thread:
        return self._reader

    @property
    def dispatcher_thread(self) -> threading.Thread:
        return self._dispatcher.thread

    @property
    def is_open(self) -> bool:
        return not self._closed and self._failure is None

    def mark(self) -> int:
        """The index of the next event (for ``wait_for_urc(since=...)``): the number of
        events so far, including those that left the in-memory window."""
        with self._cond:
            return self._dropped + len(self._events)

    # ------------------------------------------------------------------ I/O core

    def _read_loop(self) -> None:
        port = self._port
        while not self._stop.is_set():
            try:
                data = port.read(1)
                if data:
                    n = port.in_waiting
                    if n:
                        data += port.read(n)
            except Exception as exc:
                if self._stop.is_set():
                    break
                log.warning("serial read failed: %s", exc)
                with self._cond:
                    self._failure = exc
                    self._cond.notify_all()
                break
            if data:
                with self._cond:
                    self._ingest(Direction.RECEIVED, data, time.time(), time.monotonic())

    def _ingest(self, direction: Direction, data: bytes, wall: float, mono: float) -> None:
        """Record a chunk, parse it, publish its events (``self._cond`` held)."""
        rec = Record(direction, bytes(data), wall, mono)
        self._transcript.append(rec)
        limit = self._max_records
        if limit is not None and len(self._transcript.records) > limit:
            del self._transcript.records[0]  # the file keeps it
        if self._writer is not None:
            try:
                self._writer.write(rec)
            except (OSError, ValueError):
                log.exception("cannot append to the transcript file")
        self._absorb(self._parser.feed(direction, data, wall, mono))

    def _absorb(self, events: Sequence[Event]) -> None:
        window = self._events
        for ev in events:
            self._track(ev)
            if len(window) == window.maxlen:
                self._dropped += 1
            window.append(ev)
            if isinstance(ev, Urc):
                if ev.topic is not None and ev.payload is not None:
                    self.messages.put(MqttMessage(ev.topic, ev.payload, ev.wall, ev.mono))
                self._dispatcher.post(ev)
        if events:
            self._cond.notify_all()

    def _track(self, ev: Event) -> None:
        """Connection and publish state, from the event stream."""
        if isinstance(ev, CommandSent):
            name = command_name(ev.line)
            self._cur_cmd = name
            if name in _MIPSTART and "=" in ev.line and not ev.line.rstrip().endswith("?"):
                self._last_mipstart = ev.line.strip()
                self._mipstart_waiting = True
                self._link_up_mono = None
                self._link_closed = False
            elif name == "+MIPCLOSE":
                self._link_up_mono = None
            elif name == "+MCONFIG":  # typed or sent: the login the host guard compares
                self._mconfig_user = guards.mconfig_user(ev.line)
            qos = guards.mpub_qos(ev.line)
            if qos:
                self._pub_pending = ev.mono
        elif isinstance(ev, Urc):
            if ev.name in _LINK_OPENED and self._mipstart_waiting:
                self._mipstart_waiting = False
                self._link_up_mono = ev.mono
                self._link_closed = False
            elif ev.name == "CONNECT FAIL":
                self._mipstart_waiting = False
            elif ev.name == "CONNACK OK":
                self._link_up_mono = None
            elif ev.name == "CLOSED":
                self._link_closed = True
                self._pub_pending = None
            elif ev.name in _PUB_ACKED:
                self._pub_pending = None
        elif isinstance(ev, FinalResult) and not ev.ok:
            if self._cur_cmd in PUBLISH_COMMANDS:
                self._pub_pending = None
            if self._cur_cmd in _MIPSTART:
                self._mipstart_waiting = False

    def _write(self, data: bytes, command: str | None) -> tuple[int, Event | None]:
        """Write and record ``data``; returns the index of its first event and that
        event (the :class:`CommandSent` of a command line)."""
        with self._cond:
            self._check_alive(command)
            start = self._dropped + len(self._events)
            wall, mono = time.time(), time.monotonic()
            try:
                self._port.write(data)
            except Exception as exc:
                raise PortClosed(command, f"writing to the serial port failed: {exc}") from exc
            self._ingest(Direction.SENT, data, wall, mono)
            i = start - self._dropped
            return start, self._events[i] if 0 <= i < len(self._events) else None

    def _check_alive(self, command: str | None) -> None:
        if self._closed:
            raise PortClosed(command, "the session is closed")
        if self._failure is not None:
            raise PortClosed(command, f"the serial port failed: {self._failure}")

    def _wait_event(
        self,
        pos: int,
        accept: Callable[[int, Event], bool],
        deadline: float,
        *,
        command: str | None,
        awaited: str,
        timeout: float,
        start: int,
        error: type[ResponseTimeout] = ResponseTimeout,
    ) -> tuple[int, Event]:
        """The first event at index >= ``pos`` that ``accept(index, event)`` takes."""
        with self._cond:
            events = self._events
            while True:
                base = self._dropped
                pos = max(pos, base)  # older events left the window
                end = base + len(events)
                while pos < end:
                    ev = events[pos - base]
                    if accept(pos, ev):
                        return pos, ev
                    pos += 1
                self._check_alive(command)
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = tuple(
                        e.text for e in self._slice(start, None) if not isinstance(e, CommandSent)
                    )
                    raise error(command, awaited, timeout, seen)
                self._cond.wait(left)

    # ------------------------------------------------------------------ commands

    def command(self, line: str, timeout: float | None = None, *, check: bool = True) -> Response:
        """Send one command line, wait for its final result.

        ``ERROR`` / ``+CME ERROR: n`` raise :class:`CommandError` (``check=False``
        returns the response instead); no final result in ``timeout`` seconds raises
        :class:`ResponseTimeout`.  Data-phase commands go through :meth:`send_data` /
        :meth:`http_post_body`.
        """
        line = self._guard(line)
        return self._exchange(line, timeout=timeout, check=check)

    def command_and_wait(
        self,
        line: str,
        urc: UrcMatcher,
        *,
        fail: Sequence[str] = DEFAULT_FAIL,
        timeout: float | None = None,
        check: bool = True,
        hold_lock: bool = True,
    ) -> Response:
        """Send a two-phase command and wait for the URC that completes it.

        ``urc``: the success URC name(s) or a predicate (``"CONNACK OK"``,
        ``("CONNECT OK", "ALREADY CONNECT")``, ``"+HTTPACTION"``); ``fail``: names that
        end the wait in failure: ``CLOSED`` -> :class:`ConnectionClosed`, ``CONNECT
        FAIL`` -> :class:`ConnectFailed`, ``ERROR`` (an unsolicited error after ``OK``)
        -> :class:`~airlab.errors.CloudRejected` for MCONNECT / MSUB, else
        :class:`CommandError`.  ``timeout`` (default ``urc_timeout``) bounds the whole
        exchange.  ``hold_lock=False`` lets other commands run while the URC is pending.
        The returned response carries ``urc`` and ``urc_mono``.
        """
        line = self._guard(line)
        return self._exchange(
            line,
            urc=urc,
            fail=tuple(fail),
            timeout=self.urc_timeout if timeout is None else timeout,
            check=check,
            hold_lock=hold_lock,
        )

    def send_data(
        self,
        line: str,
        data: bytes | str,
        *,
        timeout: float | None = None,
        urc: UrcMatcher | None = None,
        fail: Sequence[str] = DEFAULT_FAIL,
        check: bool = True,
        allow_length_mismatch: bool = False,
    ) -> Response:
        """A data-phase command: write ``line``, wait for its prompt (``DOWNLOAD`` /
        ``>``), write exactly ``data``, wait for the final result (and ``urc``).

        The announced length must equal ``len(data)`` (UsageError otherwise, before
        anything is sent); without a length (``AT+MPUBEX=t,0,0``) 0x1A is appended.
        ``allow_length_mismatch=True`` lifts that guard, to show a lesson what the module
        does with a wrong length (it keeps the announced number of bytes and reads the
        surplus as commands, or waits for the rest until its timer expires).
        """
        line = guards.check_line(line)
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        if self.guards and command_name(line) == "+HTTPDATA":
            guards.check_lookalikes(raw.decode("utf-8", "replace"), "data")
        if not allow_length_mismatch and self.guards:
            guards.check_data_length(line, raw)
        elif guards.data_phase_length(line) is False:
            raise UsageError("line", f"{line!r} has no data phase: use session.command()")
        if guards.data_phase_length(line) is None and not raw.endswith(b"\x1a"):
            raw += b"\x1a"
        return self._exchange(
            line,
            data=raw,
            urc=urc,
            fail=tuple(fail),
            timeout=timeout,
            check=check,
            hold_lock=True,
        )

    def send_text(
        self, text: str | bytes, *, end: str | None = None, timeout: float | None = None
    ) -> int:
        """Type ``text`` to the module the way a serial terminal (sscom) sends it: its
        bytes exactly as given (UTF-8 for text), then ``end`` (default the session's
        ``line_ending``; ``""`` for none, as for a data body), with no check and no wait
        for an answer. Returns the :meth:`mark` before the write: wait for what follows
        with :meth:`wait_for_event`/:meth:`wait_for_urc` ``(since=mark)`` or read
        :meth:`events_since`.

        Raw typing is what the tutorial does: a body of the wrong length, a typo, a
        missing space reach the module, and its answer shows what went wrong.

        >>> import airlab
        >>> from airlab.at.events import FinalResult
        >>> with ModemSession("airsim://?profile=instant", guards=False) as s:
        ...     mark = s.send_text("AT+CSQ")
        ...     s.wait_for_event(lambda e: isinstance(e, FinalResult), 2, since=mark).text
        'OK'
        """
        if isinstance(text, str):
            data = text.encode("utf-8")
        elif isinstance(text, bytes | bytearray):
            data = bytes(text)
        else:
            raise UsageError("text", f"expected text or bytes, got {type(text).__name__}")
        ending = self.line_ending if end is None else end
        if not isinstance(ending, str):
            raise UsageError("end", f"expected a string such as '\\r\\n' or '', got {end!r}")
        data += ending.encode("ascii", errors="strict")
        if not data:
            raise UsageError("text", "nothing to send")
        wait = self.default_timeout if timeout is None else float(timeout)
        if not self._cmd_lock.acquire(timeout=wait):  # never inside another command
            raise ResponseTimeout(None, "turn (another command is still running)", wait)
        try:
            line = data.split(b"\r", 1)[0].split(b"\n", 1)[0].decode("utf-8", "replace")
            start, _ = self._write(data, line or None)
            return start
        finally:
            self._cmd_lock.release()

    def http_post_body(self, body: str | bytes, timeout_ms: int = 20000) -> Response:
        """``AT+HTTPDATA=<len>,<time>`` with the length computed from the bytes,
        ``DOWNLOAD``, the bytes, ``OK``."""
        line, data = httpdata(body, timeout_ms)
        if not data:  # AT+HTTPDATA=0,<time> clears the stored body: no data phase
            return self._exchange(line)
        return self.send_data(line, data, timeout=self.default_timeout + timeout_ms / 1000.0)

    def _guard(self, line: str) -> str:
        line = guards.check_line(line)
        if guards.data_phase_length(line) is not False:
            raise UsageError(
                "line",
                f"{line} starts a data phase: use session.http_post_body(body) (the length is "
                "computed from the bytes), session.send_data(line, data), or type it as it "
                "is with session.send_text(line)",
            )
        if self.guards:
            guards.check_mpub_line(line)
            guards.check_lookalikes(line)
            guards.check_mqtt_host(line, self._mconfig_user)
        return line

    def _exchange(
        self,
        line: str,
        *,
        data: bytes | None = None,
        urc: UrcMatcher | None = None,
        fail: tuple[str, ...] = (),
        timeout: float | None = None,
        check: bool = True,
        hold_lock: bool = True,
        wait_pub: bool = False,
    ) -> Response:
        timeout = self.default_timeout if timeout is None else float(timeout)
        if timeout <= 0:
            raise UsageError("timeout", "must be a positive number of seconds")
        match = urc_matcher(urc, "urc") if urc is not None else None
        deadline = time.monotonic() + timeout
        if not self._cmd_lock.acquire(timeout=timeout):
            raise ResponseTimeout(line, "turn (another command is still running)", timeout)
        locked = True
        try:
            if self.guards:
                self._pub_guard(line, deadline if wait_pub else None)
                if command_name(line) == "+MCONNECT":
                    self._before_mconnect(line)
            start, sent = self._write((line + self.line_ending).encode("utf-8"), line)
            wait = dict(command=line, timeout=timeout, start=start)
            prompt_mono = None
            if data is not None:
                _, ev = self._wait_event(
                    start + 1,
                    lambda i, e: isinstance(e, Prompt | FinalResult),
                    deadline,
                    awaited="data prompt (DOWNLOAD / >)",
                    **wait,
                )
                if isinstance(ev, Prompt):
                    prompt_mono = ev.mono
                    self._write(data, line)
            idx_final, final = self._wait_event(
                start + 1,
                lambda i, e: isinstance(e, FinalResult),
                deadline,
                awaited="final result (OK / ERROR)",
                **wait,
            )
            assert isinstance(final, FinalResult)
            if not final.ok or match is None:
                resp = self._response(line, start, idx_final, final, prompt_mono, sent)
                if not final.ok and check:
                    raise CommandError(line, final.result, final.code, final.meaning, response=resp)
                return resp
            if not hold_lock:
                self._cmd_lock.release()
                locked = False
            failing = frozenset(fail)

            def accept(i: int, e: Event) -> bool:
                if isinstance(e, Urc):
                    if match(e):
                        return True
                    if e.name in failing:
                        raise self._urc_failure(line, e, start)
                elif (
                    isinstance(e, FinalResult) and i > idx_final and not e.ok and "ERROR" in failing
                ):
                    raise self._late_error(line, e)
                return False

            idx_urc, got = self._wait_event(
                start + 1,
                accept,
                deadline,
                awaited=f"URC {_describe(urc)} after OK",
                error=UrcTimeout,
                **wait,
            )
            assert isinstance(got, Urc)
            end = max(idx_final, idx_urc)
            return self._response(line, start, end, final, prompt_mono, sent, urc=got)
        finally:
            if locked:
                self._cmd_lock.release()

    def _response(
        self,
        line: str,
        start: int,
        end: int,
        final: FinalResult,
        prompt_mono: float | None,
        sent: Event | None,
        urc: Urc | None = None,
    ) -> Response:
        with self._cond:
            evs = tuple(self._slice(start, end + 1))  # partial if the window moved past start
        if sent is None:
            sent = evs[0] if evs else final
        echo = next((e for e in evs if isinstance(e, Echo)), None)
        return Response(
            command=line,
            final=final,
            sent_mono=sent.mono,
            sent_wall=sent.wall,
            final_mono=final.mono,
            echo=echo.line if echo else None,
            echo_mono=echo.mono if echo else None,
            lines=tuple(e.line for e in evs if isinstance(e, InfoLine)),
            payloads=tuple(e for e in evs if isinstance(e, Payload)),
            events=evs,
            prompt_mono=prompt_mono,
            urc=urc,
            urc_mono=urc.mono if urc else None,
        )

    def _urc_failure(self, line: str, urc: Urc, start: int) -> Exception:
        if urc.name == "CLOSED":
            return ConnectionClosed(
                line, "the module printed CLOSED: the server closed the TCP link while waiting"
            )
        if urc.name == "CONNECT FAIL":
            with self._cond:
                state = next(
                    (
                        e.line
                        for e in self._slice(start, None)
                        if isinstance(e, Urc) and e.name == "STATE"
                    ),
                    None,
                )
            return ConnectFailed(line, "CONNECT FAIL" + (f" ({state})" if state else ""))
        return ConnectFailed(line, f"the module reported {urc.line!r}")

    @staticmethod
    def _late_error(line: str, final: FinalResult) -> Exception:
        name = command_name(line)
        if name == "+MCONNECT":
            return CloudRejected(
                None,
                "the broker refused the MQTT CONNECT (AT+MCONNECT answered OK, then ERROR; "
                "the module does not print the CONNACK return code)",
                MCONNECT_REFUSED_HINT,
            )
        if name == "+MSUB":
            return CloudRejected(
                None, "the broker refused the subscription (OK, then ERROR)", MSUB_REFUSED_HINT
            )
        return CommandError(
            line,
            final.result,
            final.code,
            final.meaning,
            hint="the command was accepted (OK) but failed afterwards",
        )

    # ------------------------------------------------------------------ guards with state

    def _pub_guard(self, line: str, wait_until: float | None) -> None:
        """One QoS1/2 publish in flight: wait (publish) or refuse (a raw command)."""
        qos = guards.mpub_qos(line)
        if not qos:
            return
        with self._cond:
            while self._pub_in_flight():
                if wait_until is None:
                    raise UsageError(
                        "qos",
                        "a QoS1 publish is still waiting for its PUBACK; the module takes one "
                        "at a time (spec 7.5): wait for PUBACK, or use session.publish(), "
                        "which waits for you",
                    )
                left = wait_until - time.monotonic()
                if left <= 0:
                    raise UrcTimeout(line, "PUBACK of the previous QoS1 publish", 0.0)
                self._cond.wait(left)

    def _pub_in_flight(self) -> bool:
        since = self._pub_pending
        return since is not None and time.monotonic() - since < self.urc_timeout

    def _before_mconnect(self, line: str) -> None:
        """The MCONNECT window guard (``mconnect_window`` / ``late_mconnect``)."""
        with self._cond:
            up, closed, mipstart = self._link_up_mono, self._link_closed, self._last_mipstart
        if up is None:
            return
        late_by = time.monotonic() - up
        if not closed and late_by <= self.mconnect_window:
            return
        if closed:
            why = "the server already closed the link (CLOSED)"
        else:
            why = (
                f"{late_by:.2f} s after CONNECT OK (window {self.mconnect_window:g} s: the "
                "server drops a link that sends no CONNECT within ~5 s)"
            )
        if self.late_mconnect == "raise":
            if closed:
                raise ConnectionClosed(line, f"cannot MCONNECT: {why}")
            raise UsageError(
                "mconnect_window",
                f"AT+MCONNECT would come {why}: send it right after CONNECT OK, or use "
                "late_mconnect='reconnect'",
            )
        reconnect = self.late_mconnect == "reconnect" and mipstart is not None
        warnings.warn(
            f"AT+MCONNECT: {why}" + ("; reopening the link first" if reconnect else ""),
            LateMconnectWarning,
            stacklevel=4,
        )
        if reconnect and mipstart is not None:
            self._exchange("AT+MIPCLOSE", check=False)
            self._exchange(
                mipstart,
                urc=("CONNECT OK", "ALREADY CONNECT"),
                fail=("CONNECT FAIL", "CLOSED", "ERROR"),
                timeout=self.urc_timeout,
            )

    # ------------------------------------------------------------------ MQTT helpers

    def publish(
        self,
        topic: str,
        payload: str | bytes,
        qos: int = 0,
        retain: bool | int = False,
        *,
        block: bool = True,
        timeout: float | None = None,
        hex_mode: bool = False,
    ) -> Response:
        """``AT+MPUB`` with the message quoted and escaped; QoS1 returns after its own
        ``PUBACK`` (QoS2 after ``PUBCOMP``): ``response.urc_latency`` is the ack latency.

        One QoS1 publish at a time: a second one (another thread) waits for the first
        one's PUBACK, or raises UsageError with ``block=False``.  A payload that is not
        UTF-8 text or over 4100 bytes as written raises UsageError (use
        :meth:`publish_ex` or ``hex_mode``) before anything is sent.
        """
        line = mpub(topic, qos, retain, payload, hex_mode=hex_mode)
        return self._publish(line, qos, None, block, timeout)

    def publish_ex(
        self,
        topic: str,
        payload: str | bytes,
        qos: int = 0,
        retain: bool | int = False,
        *,
        block: bool = True,
        timeout: float | None = None,
    ) -> Response:
        """``AT+MPUBEX=<topic>,<qos>,<retain>,<len>``, ``>`` prompt, raw bytes (binary OK)."""
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        line = mpubex(topic, qos, retain, len(data))
        return self._publish(line, qos, data, block, timeout)

    def _publish(
        self, line: str, qos: int, data: bytes | None, block: bool, timeout: float | None
    ) -> Response:
        if qos == 0:
            return self._exchange(line, data=data, timeout=timeout)
        timeout = self.urc_timeout if timeout is None else float(timeout)
        acquired = (
            self._qos1_lock.acquire(timeout=timeout) if block else self._qos1_lock.acquire(False)
        )
        if not acquired:
            if block:
                raise UrcTimeout(line, "PUBACK of the QoS1 publish in flight", timeout)
            raise UsageError(
                "block",
                "a QoS1 publish is in flight (waiting for its PUBACK); the module takes one "
                "at a time: retry later or call with block=True",
            )
        try:
            return self._exchange(
                line,
                data=data,
                urc=PUBLISH_COMPLETIONS[qos].ok[0],  # PUBACK (QoS1) / PUBCOMP (QoS2)
                fail=("CLOSED",),
                timeout=timeout,
                hold_lock=data is not None,  # the prompt phase needs the line to itself
                wait_pub=block,
            )
        finally:
            self._qos1_lock.release()

    def fetch_cached(self, timeout: float | None = None) -> list[MqttMessage]:
        """Cache mode (``AT+MQTTMSGSET=1``): run ``AT+MQTTMSGGET`` and return the stored
        messages (a ``+MSUB: <slot>`` URC only announces them; nothing is fetched
        automatically)."""
        resp = self.command(mqttmsgget(), timeout)
        return [
            MqttMessage(p.topic or "", p.data, p.wall, p.mono, cached=True)
            for p in resp.payloads
            if p.source == "+MSUB"
        ]

    def mqtt_status(self, timeout: float | None = None) -> int:
        """``AT+MQTTSTATU`` -> 0 offline, 1 connected, 2 TCP up but no MCONNECT yet."""
        resp = self.command("AT+MQTTSTATU", timeout)
        args = resp.args("+MQTTSTATU")
        if not args or not args[0].isdigit():
            raise CommandError(
                "AT+MQTTSTATU", "unexpected answer", hint=f"got lines {resp.lines!r}", response=resp
            )
        return int(args[0])

    def probe(self, tries: int = 5, timeout: float = 0.5) -> Response:
        """Send ``AT`` until ``OK`` (auto-baud needs a few), up to ``tries`` times."""
        if not isinstance(tries, int) or tries < 1:
            raise UsageError("tries", "must be a positive integer")
        last: ResponseTimeout | None = None
        for _ in range(tries):
            try:
                return self._exchange("AT", timeout=timeout)
            except ResponseTimeout as exc:
                last = exc
        raise ResponseTimeout(
            "AT",
            f"OK after {tries} tries",
            timeout * tries,
            last.seen if last else (),
            hint="check the port name, the baud rate, the wiring (TX/RX crossed) and power",
        )

    # ------------------------------------------------------------------ URCs

    def on_urc(self, name_or_predicate: UrcMatcher, callback: UrcCallback) -> UrcSubscription:
        """Call ``callback(urc)`` for every matching URC, in the dispatcher thread.

        ``name_or_predicate``: ``"CLOSED"``, ``("PUBACK", "CLOSED")``, ``"*"`` or a
        function of the :class:`~airlab.at.events.Urc`.  Exceptions are logged, not
        raised.  Returns a handle: ``handle.cancel()``.
        """
        return self._dispatcher.subscribe(name_or_predicate, callback)

    def wait_for_urc(
        self,
        name: UrcMatcher,
        timeout: float | None = None,
        *,
        since: int | None = None,
        fail: Sequence[str] = (),
    ) -> Urc:
        """The next matching URC (arriving after this call, or after ``since`` =
        :meth:`mark`); ``fail`` names end the wait (``CLOSED`` -> ConnectionClosed)."""
        match = urc_matcher(name)
        timeout = self.urc_timeout if timeout is None else float(timeout)
        start = self.mark() if since is None else since
        failing = frozenset(fail)

        def accept(i: int, e: Event) -> bool:
            if isinstance(e, Urc):
                if match(e):
                    return True
                if e.name in failing:
                    raise self._urc_failure(f"waiting for {_describe(name)}", e, start)
            return False

        _, ev = self._wait_event(
            start,
            accept,
            time.monotonic() + timeout,
            command=None,
            awaited=f"URC {_describe(name)}",
            timeout=timeout,
            start=start,
            error=UrcTimeout,
        )
        assert isinstance(ev, Urc)
        return ev

    def wait_for_event(
        self,
        predicate: Callable[[Event], bool],
        timeout: float | None = None,
        *,
        since: int | None = None,
    ) -> Event:
        """The next event (after this call, or after ``since`` = :meth:`mark`) for which
        ``predicate(event)`` is true; :class:`ResponseTimeout` after ``timeout`` s."""
        timeout = self.default_timeout if timeout is None else float(timeout)
        start = self.mark() if since is None else since
        _, ev = self._wait_event(
            start,
            lambda i, e: bool(predicate(e)),
            time.monotonic() + timeout,
            command=None,
            awaited="event matching the predicate",
            timeout=timeout,
            start=start,
        )
        return ev

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop the reader, flush the parser, close the port and the transcript file."""
        if self._closed:
            return
        self._stop.set()
        if threading.current_thread() is not self._reader:
            self._reader.join(max(1.0, 4 * float(self._port.timeout or 0.05)))
        with self._cond:
            self._closed = True
            now_w, now_m = time.time(), time.monotonic()
            last = self._transcript.records[-1] if self._transcript.records else None
            wall, mono = (last.wall, last.mono) if last else (now_w, now_m)
            self._absorb(self._parser.close(wall, mono))
            self._cond.notify_all()
        if self._close_port:
            with contextlib.suppress(Exception):
                self._port.close()
        self._dispatcher.close()
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()

    def __enter__(self) -> ModemSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"ModemSession({self.url!r}, {state}, {len(self._transcript)} records)"

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            if not self._closed:
                self._stop.set()


def _describe(spec: Any) -> str:
    if isinstance(spec, str):
        return repr(spec)
    if isinstance(spec, tuple):
        return " or ".join(repr(s) for s in spec)
    return getattr(spec, "__name__", "matching the predicate")
