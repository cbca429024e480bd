"""Typed, timestamped events for everything that crosses the serial line.

Every event is a frozen dataclass carrying two stamps: ``wall`` (seconds since the
Unix epoch, for people and for joining with other logs) and ``mono`` (a monotonic
clock, for latencies).  ``raw`` holds the exact bytes the event was made from, so
nothing read from the wire is ever lost.

Events come from two places: :class:`~airlab.at.parser.AtParser` (parsing the bytes
of both directions) and the session that writes bytes (``BytesSent``).

Example:
    >>> ev = FinalResult(wall=0.0, mono=0.0, raw=b"\\r\\n+CME ERROR: 767\\r\\n",
    ...                  result="+CME ERROR", code=767)
    >>> ev.ok, ev.meaning
    (False, 'operation failed')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "CME_ERRORS",
    "BytesReceived",
    "BytesSent",
    "CommandSent",
    "DataSent",
    "Direction",
    "Echo",
    "Event",
    "FinalResult",
    "Garbage",
    "InfoLine",
    "Payload",
    "Prompt",
    "UnknownLine",
    "Urc",
    "cme_meaning",
]


class Direction(StrEnum):
    """Which way bytes travelled on the serial line."""

    SENT = "sent"  # host -> module
    RECEIVED = "received"  # module -> host


@dataclass(frozen=True, slots=True)
class Event:
    """Base class: every event has a wall-clock and a monotonic stamp and its raw bytes."""

    wall: float
    mono: float
    raw: bytes = field(repr=False)

    @property
    def kind(self) -> str:
        """Short lower-case name of the event type (``"final"``, ``"urc"`` ...)."""
        return _KIND[type(self)]

    @property
    def direction(self) -> Direction:
        return Direction.SENT if isinstance(self, _SENT_TYPES) else Direction.RECEIVED

    @property
    def text(self) -> str:
        """The event as readable text (raw bytes decoded, undecodable bytes replaced)."""
        return self.raw.decode("utf-8", "replace").strip("\r\n")


@dataclass(frozen=True, slots=True)
class _LineEvent(Event):
    """An event that is one text line (``line``, without its CR/LF), shown as that line."""

    line: str

    @property
    def text(self) -> str:
        return self.line


# ---------------------------------------------------------------------------- host -> module


@dataclass(frozen=True, slots=True)
class BytesSent(Event):
    """A chunk of bytes written by the host, exactly as written."""


@dataclass(frozen=True, slots=True)
class CommandSent(_LineEvent):
    """One command line the host sent (``line`` without its CR/LF terminator)."""


@dataclass(frozen=True, slots=True)
class DataSent(Event):
    """Raw data the host sent in a data phase (after ``DOWNLOAD`` or a ``>`` prompt)."""

    for_command: str = ""

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")


# ---------------------------------------------------------------------------- module -> host


@dataclass(frozen=True, slots=True)
class BytesReceived(Event):
    """A chunk of bytes read from the module, exactly as read."""


@dataclass(frozen=True, slots=True)
class Echo(_LineEvent):
    """The module repeating a command line back (ATE1)."""


@dataclass(frozen=True, slots=True)
class InfoLine(_LineEvent):
    """An information line answering the pending command (``+CGATT: 1``, a bare IMEI ...)."""


#: ``+CME ERROR: <n>`` meanings from the Luat AT manual (Configuration/CME_ERROR).
CME_ERRORS: dict[int, str] = {
    0: "phone failure",
    1: "no connection to phone",
    3: "operation not allowed",
    4: "operation not supported",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    13: "SIM failure",
    14: "SIM busy",
    15: "SIM wrong",
    16: "incorrect password",
    20: "memory full",
    21: "invalid index",
    22: "not found",
    23: "memory failure",
    30: "no network service",
    31: "network timeout",
    50: "execution failed",
    53: "parameters are invalid",
    100: "unknown",
    765: "invalid input value",
    766: "unsupported mode",
    767: "operation failed",
    791: "parameter count not enough",
    792: "parameter count beyond",
    793: "parameter value out of range",
    794: "parameter type error",
    795: "parameter format error",
    796: "parameter is null",
    797: "CFUN state is 0 or 4",
    901: "PDP context not active",
    902: "PDP context already active",
    910: "TCP connection rejected",
    911: "TCP connect timeout",
    912: "socket already exists",
    913: "socket does not exist",
    914: "buffer over size",
    915: "send timeout",
    916: "DNS request exists",
    917: "DNS timeout",
    918: "DNS error",
    65535: "other error",
}


def cme_meaning(code: int | None) -> str | None:
    """Meaning of a ``+CME ERROR`` number, or ``None`` when unknown.

    >>> cme_meaning(10)
    'SIM not inserted'
    """
    if code is None:
        return None
    return CME_ERRORS.get(code)


@dataclass(frozen=True, slots=True)
class FinalResult(Event):
    """The line that ends a command: ``OK``, ``ERROR``, ``+CME ERROR: n``, ``SHUT OK`` ...

    ``result`` is the result word without its number (``"OK"``, ``"ERROR"``,
    ``"+CME ERROR"``, ``"+CMS ERROR"``, ``"SHUT OK"`` ...); ``code`` the number of a
    CME/CMS error (``None`` otherwise; for a verbose CMEE=2 text it is ``None`` and
    ``detail`` holds the text).
    """

    result: str
    code: int | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.result in _SUCCESS_RESULTS

    @property
    def meaning(self) -> str | None:
        if self.detail is not None:
            return self.detail
        if self.result == "+CME ERROR":
            return cme_meaning(self.code)
        return None


_SUCCESS_RESULTS = frozenset({"OK", "SHUT OK", "CLOSE OK", "SEND OK", "DATA ACCEPT"})


@dataclass(frozen=True, slots=True)
class Urc(Event):
    """An unsolicited result code (``CONNECT OK``, ``PUBACK``, ``+HTTPACTION: 1,200,124`` ...).

    ``name`` is the URC's name (``"+HTTPACTION"``, ``"CONNECT OK"``); ``args`` its
    comma-separated arguments with quotes removed.  A direct-mode MQTT message
    (``+MSUB: "<topic>",<n> byte,<payload>``) is a URC with ``topic`` and ``payload``.
    """

    name: str
    line: str
    args: tuple[str, ...] = ()
    topic: str | None = None
    payload: bytes | None = None

    @property
    def text(self) -> str:
        return self.line


@dataclass(frozen=True, slots=True)
class Prompt(Event):
    """The module waiting for raw data: ``DOWNLOAD`` (HTTPDATA) or ``>`` (MPUBEX, CIPSEND ...)."""

    prompt: str

    @property
    def text(self) -> str:
        return self.prompt


@dataclass(frozen=True, slots=True)
class Payload(Event):
    """A length-framed body answering a command (``+HTTPREAD: n`` then n bytes ...).

    ``source`` is the header's prefix (``"+HTTPREAD"``, ``"+MSUB"`` inside
    ``AT+MQTTMSGGET`` ...), ``header`` the header line, ``data`` the body bytes.
    ``complete`` is false when the stream ended before the announced length arrived.
    """

    source: str
    header: str
    data: bytes
    topic: str | None = None
    complete: bool = True

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class UnknownLine(_LineEvent):
    """A well-formed line that is neither an answer to a pending command nor a known URC."""


@dataclass(frozen=True, slots=True)
class Garbage(Event):
    """Bytes that do not form a line: noise after a reset, binary junk, a torn line at the end."""


_SENT_TYPES = (BytesSent, CommandSent, DataSent)

_KIND: dict[type, str] = {
    Event: "event",
    BytesSent: "bytes_sent",
    CommandSent: "command",
    DataSent: "data",
    BytesReceived: "bytes_received",
    Echo: "echo",
    InfoLine: "info",
    FinalResult: "final",
    Urc: "urc",
    Prompt: "prompt",
    Payload: "payload",
    UnknownLine: "unknown",
    Garbage: "garbage",
}
