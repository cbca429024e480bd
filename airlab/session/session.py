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
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import serial

from airlab.at.commands import httpdata
from airlab.at.events import (
    Echo,
    Event,
    FinalResult,
    InfoLine,
    Payload,
    Prompt,
    Urc,
)
from airlab.at.parser import AtParser
from airlab.at.transcript import Transcript, TranscriptWriter
from airlab.errors import CloudRejected, UsageError
from airlab.session import guards
from airlab.session.errors import (
    CommandError,
    ConnectFailed,
    ConnectionClosed,
    ResponseTimeout,
    UrcTimeout,
    command_name,
)
from airlab.session.response import MessageQueue, Response
from airlab.session.session_io import _describe, _ReaderSide
from airlab.session.session_mqtt import _MqttSide
from airlab.session.urcs import UrcDispatcher, UrcMatcher, urc_matcher

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


#: Port classes whose blocking ``read`` a ``cancel_read`` from another thread ends
#: (pyserial's POSIX port selects on its device and an abort pipe).
_CANCELLABLE_READS: tuple[type, ...] = tuple(
    cls
    for cls in (getattr(getattr(serial, "serialposix", None), "Serial", None),)
    if isinstance(cls, type)
)


@functools.lru_cache(maxsize=64)  # a polled command (AT+CSQ, AT+MQTTSTATU) is checked once
def _checked_line(line: str, with_guards: bool) -> str:
    """The part of ``ModemSession._guard`` that depends on the line alone: the stripped
    line, or UsageError (not cached: raised again every time)."""
    line = guards.check_line(line)
    if guards.data_phase_length(line) is not False:
        raise UsageError(
            "line",
            f"{line} starts a data phase: use session.http_post_body(body) (the length is "
            "computed from the bytes), session.send_data(line, data), or type it as it "
            "is with session.send_text(line)",
        )
    if with_guards:
        guards.check_mpub_line(line)
        guards.check_lookalikes(line)
    return line


def _is_final(index: int, event: Event) -> bool:
    return isinstance(event, FinalResult)


class ModemSession(_ReaderSide, _MqttSide):
    """The host side over any pyserial port (see the module docstring).

    ``port``: an open (or openable) :class:`serial.SerialBase`, or a URL / device name
    opened with ``serial.serial_for_url(port, baudrate=baudrate, timeout=read_timeout)``.
    A given port whose ``timeout`` is None or above 0.2 s gets ``read_timeout`` (the
    reader must wake up to stop), except where the reader can block and be woken: an
    ``airsim://`` port (its ``wait_readable``; the thread waiting for an answer reads it)
    and a POSIX serial port (``/dev/tty*``, a pty: timeout None, :meth:`close` cancels
    the read) cost no CPU while idle; on others (``socket://`` ...) the reader wakes
    every ``read_timeout``.  ``transcript``: a JSONL path (appended and flushed
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
        self._mutex = threading.RLock()  # the state below; `with` it: no Python frame
        self._cond = threading.Condition(self._mutex)  # new events, port failure, close
        self._waiters = 0  # threads in self._cond.wait (session_io._wait)
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
        # a port that can wait without reading (airsim://): the reader blocks there, and
        # whoever waits for an answer reads it (session_io._pump); a POSIX serial port
        # (/dev/tty*, a pty): the reader blocks in read() and close() cancels it
        self._waitable = callable(getattr(port, "wait_readable", None))
        self._cancellable = not self._waitable and type(port) in _CANCELLABLE_READS
        if self._cancellable:
            port.timeout = None
        self._reader = threading.Thread(
            target=self._read_loop, name="airlab-session-reader", daemon=True
        )
        self._reader.start()

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
        if isinstance(line, str):
            line = _checked_line(line, self.guards)
        else:
            line = guards.check_line(line)  # raises UsageError
        if self.guards:
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
            prompt_mono = None
            if data is not None:
                _, ev = self._wait_event(
                    start + 1,
                    lambda i, e: isinstance(e, Prompt | FinalResult),
                    deadline,
                    awaited="data prompt (DOWNLOAD / >)",
                    command=line,
                    timeout=timeout,
                    start=start,
                )
                if isinstance(ev, Prompt):
                    prompt_mono = ev.mono
                    self._write(data, line)
            idx_final, final = self._wait_event(
                start + 1,
                _is_final,
                deadline,
                awaited="final result (OK / ERROR)",
                command=line,
                timeout=timeout,
                start=start,
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
            accept_urc = self._urc_accept(match, failing, line, start)

            def accept(i: int, e: Event) -> bool:
                if isinstance(e, FinalResult) and i > idx_final and not e.ok and "ERROR" in failing:
                    raise self._late_error(line, e)
                return accept_urc(i, e)

            idx_urc, got = self._wait_event(
                start + 1,
                accept,
                deadline,
                awaited=f"URC {_describe(urc)} after OK",
                error=UrcTimeout,
                command=line,
                timeout=timeout,
                start=start,
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
        with self._mutex:
            evs = tuple(self._slice(start, end + 1))  # partial if the window moved past start
        if sent is None:
            sent = evs[0] if evs else final
        echo: Echo | None = None
        lines: list[str] = []
        payloads: list[Payload] = []
        for e in evs:  # one pass: a command's events are few, but a command is frequent
            kind = type(e)
            if kind is InfoLine or isinstance(e, InfoLine):
                lines.append(e.line)  # type: ignore[attr-defined]
            elif isinstance(e, Payload):
                payloads.append(e)
            elif echo is None and isinstance(e, Echo):
                echo = e
        return Response._build(
            command=line,
            final=final,
            sent_mono=sent.mono,
            sent_wall=sent.wall,
            final_mono=final.mono,
            echo=echo.line if echo else None,
            echo_mono=echo.mono if echo else None,
            lines=tuple(lines),
            payloads=tuple(payloads),
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
            with self._mutex:
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

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop the reader, flush the parser, close the port and the transcript file."""
        if self._closed:
            return
        self._stop.set()
        if self._waitable or self._cancellable:
            with contextlib.suppress(Exception):
                self._port.cancel_read()
        if threading.current_thread() is not self._reader:
            self._reader.join(max(1.0, 4 * float(self._port.timeout or 0.05)))
        with self._mutex:
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
