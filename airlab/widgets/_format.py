"""Plain-text lines for the console log: one line per event, one line per error.

Example:
    >>> from airlab.at.events import CommandSent, Urc
    >>> format_event(CommandSent(wall=0.0, mono=0.0, raw=b"ATI\\r\\n", line="ATI"), clock=False)
    '>> ATI'
    >>> format_event(Urc(wall=0.0, mono=0.0, raw=b"", name="CONNECT OK", line="CONNECT OK"),
    ...              clock=False)
    '<< CONNECT OK   [URC]'
    >>> format_error(TimeoutError("no OK within 5 s"))
    '!! TimeoutError: no OK within 5 s'
"""

from __future__ import annotations

import time

from airlab.at.events import (
    BytesReceived,
    BytesSent,
    DataSent,
    Echo,
    Event,
    Garbage,
    Payload,
    Prompt,
    Urc,
)

__all__ = ["RECEIVED", "SENT", "clock_text", "format_error", "format_event"]

SENT = ">>"
RECEIVED = "<<"
URC_MARK = "   [URC]"
ERROR = "!!"


def clock_text(wall: float) -> str:
    """``HH:MM:SS.mmm`` local time of a wall-clock stamp."""
    whole = int(wall)
    return time.strftime("%H:%M:%S", time.localtime(whole)) + f".{int((wall - whole) * 1000):03d}"


def _short(text: str, limit: int = 200) -> str:
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_event(event: Event, *, clock: bool = True) -> str | None:
    """The log line of an event (``None`` for raw chunks, which other events repeat).

    Host lines start ``>>``, module lines ``<<``; URCs end with ``[URC]``, echoes with
    ``[echo]``; a data phase shows its size and text.
    """
    if isinstance(event, BytesSent | BytesReceived):
        return None
    arrow = SENT if event.direction.value == "sent" else RECEIVED
    if isinstance(event, DataSent):
        body = f"[data, {len(event.raw)} bytes] {_short(event.text)}"
    elif isinstance(event, Payload):
        body = f"{event.header}  [{len(event.data)} bytes] {_short(event.text)}"
    elif isinstance(event, Urc):
        body = _short(event.line) + URC_MARK
    elif isinstance(event, Echo):
        body = _short(event.line) + "   [echo]"
    elif isinstance(event, Prompt):
        body = f"{event.prompt}   [prompt: send the data]"
    elif isinstance(event, Garbage):
        body = f"[{len(event.raw)} unreadable bytes] {_short(event.text)}"
    else:
        body = _short(event.text)
    line = f"{arrow} {body}"
    return f"{clock_text(event.wall)} {line}" if clock else line


def format_error(exc: BaseException) -> str:
    """One readable line for an error: ``!! CommandError: AT+FOO -> ERROR: …``."""
    text = " ".join(str(exc).split()) or repr(exc)
    return f"{ERROR} {type(exc).__name__}: {text}"
