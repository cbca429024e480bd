"""The reader side of :class:`~airlab.session.session.ModemSession`: what the session has
seen and how it waits for it.

A reader thread reads the port; every chunk is recorded (direction, exact bytes, wall
and monotonic stamps) in the transcript, fed to the :class:`~airlab.at.parser.AtParser`,
and its events appended to the bounded event window; waiting for an event (a final
result, a URC, a prompt) is a scan of that window under one condition variable.
The command flow (one command at a time, two-phase waits, data phases) lives in
:mod:`airlab.session.session`, the MQTT helpers in :mod:`airlab.session.session_mqtt`.

A mixin: the state it reads is set up by ``ModemSession.__init__``.

Example:
    >>> import airlab
    >>> from airlab.session import ModemSession
    >>> with ModemSession("airsim://?profile=instant") as s:
    ...     s.reader_thread.is_alive(), s.is_open
    (True, True)
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import serial

from airlab.at.command_table import COMPLETIONS, PUBLISH_COMMANDS, PUBLISH_COMPLETIONS
from airlab.at.events import (
    CommandSent,
    Direction,
    Event,
    FinalResult,
    Urc,
)
from airlab.at.transcript import Record, Transcript
from airlab.session import guards
from airlab.session.errors import (
    PortClosed,
    ResponseTimeout,
    UrcTimeout,
    command_name,
)
from airlab.session.response import MqttMessage
from airlab.session.urcs import UrcCallback, UrcMatcher, UrcSubscription, urc_matcher

log = logging.getLogger("airlab.session")

_MIPSTART = ("+MIPSTART", "+SSLMIPSTART")
#: what opens the link after (SSL)MIPSTART, and what acknowledges a QoS1/2 publish
_LINK_OPENED = COMPLETIONS["+MIPSTART"].ok
_PUB_ACKED = tuple(name for c in PUBLISH_COMPLETIONS.values() for name in c.ok)


#: the events :meth:`_ReaderSide._track` reads (the others leave the state alone)
_TRACKED = (CommandSent, Urc, FinalResult)


def _describe(spec: Any) -> str:
    if isinstance(spec, str):
        return repr(spec)
    if isinstance(spec, tuple):
        return " or ".join(repr(s) for s in spec)
    return getattr(spec, "__name__", "matching the predicate")


class _ReaderSide:
    """What the session saw and how it waits (a mixin of ``ModemSession``)."""

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
        with self._mutex:
            return list(self._events)

    @property
    def first_index(self) -> int:
        """The index of the oldest event still in memory (0 until the window is full).

        >>> import airlab
        >>> from airlab.session import ModemSession
        >>> with ModemSession("airsim://?profile=instant", max_events=100) as s:
        ...     for _ in range(40):
        ...         _ = s.command("AT")
        ...     s.first_index, s.mark(), len(s.events)
        (20, 120, 100)
        """
        with self._mutex:
            return self._dropped

    def events_since(self, index: int) -> list[Event]:
        """The events from index ``index`` (a :meth:`mark`) on that are still in memory.

        Events older than :attr:`first_index` have left the window: they are not
        returned (read them from the transcript file).

        >>> import airlab
        >>> from airlab.session import ModemSession
        >>> with ModemSession("airsim://?profile=instant") as s:
        ...     mark = s.mark()
        ...     _ = s.command("AT")
        ...     [e.kind for e in s.events_since(mark)]
        ['command', 'echo', 'final']
        """
        with self._mutex:
            return self._slice(index, None)

    def _slice(self, start: int, stop: int | None) -> list[Event]:
        """Events with indices in ``[start, stop)`` still in memory (``self._mutex`` held)."""
        base = self._dropped
        events = self._events
        n = len(events)
        lo = min(n, max(0, start - base))
        hi = n if stop is None else min(n, max(lo, stop - base))
        if lo > n - hi:  # nearer the end (a command's own events): walk from there
            return list(itertools.islice(reversed(events), n - hi, n - lo))[::-1]
        return list(itertools.islice(events, lo, hi))

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
        with self._mutex:
            return self._dropped + len(self._events)

    # ------------------------------------------------------------------ I/O core

    def _read_loop(self) -> None:
        if self._waitable:
            self._wait_loop()
            return
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
                with self._mutex:
                    self._fail(exc)
                break
            if data:
                with self._mutex:
                    self._ingest(Direction.RECEIVED, data, time.time(), time.monotonic())

    def _wait_loop(self) -> None:
        """The reader of a port with ``wait_readable``: it blocks there (no polling;
        ``cancel_read`` wakes it to stop), then reads under ``self._mutex`` what a
        command's caller has not read first (:meth:`_pump`)."""
        port = self._port
        while not self._stop.is_set():
            try:
                port.wait_readable(None)
            except Exception as exc:
                if not self._stop.is_set():
                    with self._mutex:
                        self._fail(exc)
                break
            with self._mutex:
                if not self._pump():
                    break

    def _pump(self) -> bool:
        """Read and record what the port holds now, without waiting (``self._mutex``
        held): the thread waiting for an answer reads it itself, no hand-off through the
        reader thread.  Only for ports with ``wait_readable`` (their reader does not hold
        a read in progress, so the bytes keep their order).  False once the port failed
        or the session is closing."""
        if self._failure is not None or self._stop.is_set():
            return False
        port = self._port
        try:
            n = port.in_waiting
            data = port.read(n) if n else b""
        except Exception as exc:
            if not self._stop.is_set():
                self._fail(exc)
            return False
        if data:
            self._ingest(Direction.RECEIVED, data, time.time(), time.monotonic())
        return True

    def _fail(self, exc: BaseException) -> None:
        """The port failed: record why and wake the waiters (``self._mutex`` held)."""
        log.warning("serial read failed: %s", exc)
        self._failure = exc
        self._cond.notify_all()

    def _ingest(self, direction: Direction, data: bytes, wall: float, mono: float) -> None:
        """Record a chunk, parse it, publish its events (``self._mutex`` held)."""
        rec = Record(direction, bytes(data), wall, mono)
        transcript = self._transcript
        transcript.append(rec)
        limit = self._max_records
        if limit is not None and len(transcript.records) > limit:
            del transcript.records[0]  # the file keeps it
        if self._writer is not None:
            try:
                self._writer.write(rec)
            except (OSError, ValueError):
                log.exception("cannot append to the transcript file")
        parser = self._parser
        if direction is Direction.SENT:
            self._absorb(parser.feed_sent(data, wall, mono))
        else:
            self._absorb(parser.feed_received(data, wall, mono))

    def _absorb(self, events: Sequence[Event]) -> None:
        window = self._events
        maxlen = window.maxlen
        for ev in events:
            if isinstance(ev, _TRACKED):
                self._track(ev)
            if len(window) == maxlen:
                self._dropped += 1
            window.append(ev)
            if isinstance(ev, Urc):
                if ev.topic is not None and ev.payload is not None:
                    self.messages.put(MqttMessage(ev.topic, ev.payload, ev.wall, ev.mono))
                self._dispatcher.post(ev)
        if events and self._waiters:
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
        with self._mutex:
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
        pump = self._waitable
        with self._mutex:
            events = self._events
            while True:
                if pump:
                    self._pump()
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
                self._wait(left)

    def _wait(self, timeout: float) -> None:
        """``self._cond.wait(timeout)``, counted: new events notify only when someone
        waits (``self._mutex`` held)."""
        self._waiters += 1
        try:
            self._cond.wait(timeout)
        finally:
            self._waiters -= 1

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
        accept = self._urc_accept(match, frozenset(fail), f"waiting for {_describe(name)}", start)
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

    def _urc_accept(
        self, match: Callable[[Urc], bool], failing: frozenset[str], doing: str, start: int
    ) -> Callable[[int, Event], bool]:
        """The test of :meth:`_wait_event` for a URC: true when ``match`` takes it; a URC
        named in ``failing`` raises :meth:`_urc_failure` (``doing``: what awaited it)."""

        def accept(i: int, e: Event) -> bool:
            if isinstance(e, Urc):
                if match(e):
                    return True
                if e.name in failing:
                    raise self._urc_failure(doing, e, start)
            return False

        return accept

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
