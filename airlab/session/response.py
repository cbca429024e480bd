"""What a command returns (:class:`Response`) and what MQTT delivers (:class:`MqttMessage`).

A :class:`Response` is frozen: the command line, its echo, information lines, length-
framed payloads, the final result, every event from the command to its end (URCs that
arrived in between included), and the monotonic times of sending, echo, final result
and (for two-phase commands) the completing URC.

Example:
    >>> from airlab.at.events import FinalResult
    >>> r = Response(command="AT+CGATT?", lines=("+CGATT: 1",),
    ...              final=FinalResult(wall=0.0, mono=1.003, raw=b"OK", result="OK"),
    ...              sent_mono=1.0, final_mono=1.003)
    >>> r.ok, r.args("+CGATT"), round(r.latency, 3)
    (True, ('1',), 0.003)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import MISSING, dataclass, field, fields

from airlab.at.events import Event, FinalResult, Payload, Urc
from airlab.at.parser import split_args

__all__ = ["MessageQueue", "MqttMessage", "Response"]


@dataclass(frozen=True)
class Response:
    """The outcome of one command (see the module docstring)."""

    command: str
    final: FinalResult
    sent_mono: float
    final_mono: float
    echo: str | None = None
    lines: tuple[str, ...] = ()
    payloads: tuple[Payload, ...] = ()
    events: tuple[Event, ...] = field(default=(), repr=False)
    echo_mono: float | None = None
    prompt_mono: float | None = None
    urc: Urc | None = None
    urc_mono: float | None = None
    sent_wall: float | None = None

    @classmethod
    def _build(cls, **values: object) -> Response:
        """The same frozen object as ``Response(**values)``, built in one step: the
        dataclass ``__init__`` sets each of the 13 fields through
        ``object.__setattr__`` (a third of the cost of a session's ``AT`` round trip
        outside the parser and the module).  Internal: the caller names the fields
        right (nothing checks them) and gives at least the required ones.

        >>> f = FinalResult(wall=0.0, mono=1.0, raw=b"OK", result="OK")
        >>> r = Response._build(command="AT", final=f, sent_mono=0.5, final_mono=1.0)
        >>> r == Response(command="AT", final=f, sent_mono=0.5, final_mono=1.0)
        True
        """
        self = object.__new__(cls)
        fields = self.__dict__
        fields.update(_FIELD_DEFAULTS)
        fields.update(values)
        return self

    @property
    def ok(self) -> bool:
        """True for ``OK`` (and ``SHUT OK``, ``SEND OK`` ...)."""
        return self.final.ok

    @property
    def result(self) -> str:
        return self.final.result

    @property
    def code(self) -> int | None:
        return self.final.code

    @property
    def meaning(self) -> str | None:
        return self.final.meaning

    @property
    def latency(self) -> float:
        """Seconds from writing the command to its final result."""
        return self.final_mono - self.sent_mono

    @property
    def urc_latency(self) -> float | None:
        """Seconds from writing the command to the completing URC (two-phase commands)."""
        return None if self.urc_mono is None else self.urc_mono - self.sent_mono

    @property
    def payload(self) -> bytes | None:
        """The first length-framed body (``+HTTPREAD`` ...), or None."""
        return self.payloads[0].data if self.payloads else None

    def args(self, prefix: str) -> tuple[str, ...] | None:
        """Arguments of the first information line starting with ``prefix`` (``"+CGATT"``).

        Works for the ``+MQTTSTATU :1`` spelling (space before the colon) too.
        """
        for line in self.lines:
            text = line.strip()
            if text.startswith(prefix):
                rest = text[len(prefix) :].lstrip()
                if rest.startswith(":"):
                    rest = rest[1:]
                return split_args(rest)
        return None

    def timings(self) -> dict[str, object]:
        """A flat dict for a table row: command, result, latency, urc, urc_latency."""
        return {
            "command": self.command,
            "result": self.result if self.code is None else f"{self.result}: {self.code}",
            "latency_s": self.latency,
            "urc": None if self.urc is None else self.urc.line,
            "urc_latency_s": self.urc_latency,
        }


_FIELD_DEFAULTS: dict[str, object] = {
    f.name: f.default for f in fields(Response) if f.default is not MISSING
}


@dataclass(frozen=True)
class MqttMessage:
    """A message the module received: ``+MSUB`` (direct mode) or ``AT+MQTTMSGGET`` (cache)."""

    topic: str
    payload: bytes
    wall: float
    mono: float
    cached: bool = False

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", "replace")


class MessageQueue:
    """Received MQTT messages, oldest first (thread safe).

    ``get(timeout)`` blocks for the next message (:class:`~airlab.session.errors.UrcTimeout`
    when none comes); iterating yields the messages waiting now, without blocking;
    ``len()`` counts them.
    """

    def __init__(self) -> None:
        self._q: queue.Queue[MqttMessage] = queue.Queue()
        self._count = 0
        self._lock = threading.Lock()

    def put(self, message: MqttMessage) -> None:
        with self._lock:
            self._count += 1
        self._q.put(message)

    @property
    def received(self) -> int:
        """How many messages arrived since the session started."""
        return self._count

    def get(self, timeout: float | None = 5.0) -> MqttMessage:
        """The next message, waiting up to ``timeout`` seconds (None: forever)."""
        from airlab.session.errors import UrcTimeout

        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            raise UrcTimeout(
                None,
                "MQTT message (+MSUB)",
                timeout if timeout is not None else 0.0,
                hint=(
                    "check the subscription (AT+MSUB ... -> SUBACK), the receive mode "
                    "(AT+MQTTMSGSET=0 for direct +MSUB URCs; in cache mode call "
                    "session.fetch_cached()) and that someone publishes to the topic"
                ),
            ) from None

    def get_nowait(self) -> MqttMessage | None:
        """The next message if one is waiting, else None."""
        try:
            return self._q.get_nowait()
        except queue.Empty:
            return None

    def __iter__(self) -> Iterator[MqttMessage]:
        while True:
            msg = self.get_nowait()
            if msg is None:
                return
            yield msg

    def __len__(self) -> int:
        return self._q.qsize()

    def clear(self) -> None:
        """Drop the waiting messages."""
        for _ in self:
            pass
