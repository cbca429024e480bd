"""The console's front end: log entries (one dict per line) and the two anywidgets that
show them in the browser.

An *entry* is what the browser needs to draw one log line the way sscom does: the
time, the direction (``发→`` host to module, ``收←`` module to host, ``!!`` an error of
the host side), a *kind* for its colour (``sent``, ``echo``, ``answer``, ``final``,
``urc``, ``error``, ``prompt``, ``body``, ``other``), the text, a tag (``echo``,
``URC`` ...) and the bytes as hex (sscom's HEX显示).  ``line`` is the same line as
plain text (``>> ATI``, ``<< OK``), as :attr:`AtConsole.lines` returns it.

:func:`console_log` (the log box: auto-scroll to the newest line unless the reader
scrolled up, colours, hex view) and :func:`console_input` (the line: Enter sends, leaving
the box does not, ↑/↓ history; the body field after ``DOWNLOAD`` / ``>``) build
``anywidget`` widgets whose JavaScript and CSS are ``console.js`` / ``console.css``
beside this module.

Example:
    >>> from airlab.at.events import CommandSent, Urc
    >>> e = entry_of(CommandSent(wall=0.0, mono=0.0, raw=b"AT", line="AT"), 0, clock=False)
    >>> e["dir"], e["kind"], e["text"], e["hex"], e["line"]
    ('tx', 'sent', 'AT', '41 54', '>> AT')
    >>> u = Urc(wall=0.0, mono=0.0, raw=b"CONNECT OK", name="CONNECT OK", line="CONNECT OK")
    >>> e = entry_of(u, 1, clock=False); e["kind"], e["tag"], e["line"]
    ('urc', 'URC', '<< CONNECT OK   [URC]')
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from airlab.at.events import (
    CommandSent,
    DataSent,
    Echo,
    Event,
    FinalResult,
    InfoLine,
    Payload,
    Prompt,
    Urc,
)
from airlab.widgets._format import clock_text, format_event

__all__ = ["HEX_LIMIT", "KINDS", "console_input", "console_log", "entry_of", "error_entry"]

#: The kinds of log lines (each has its colour in ``console.css``).
KINDS: tuple[str, ...] = (
    "sent", "echo", "answer", "final", "urc", "error", "prompt", "body", "other",
)  # fmt: skip

#: Bytes shown in the hex view of one line (a long body is cut there, with "…").
HEX_LIMIT = 4096

#: format_event's suffixes, shown as a tag beside the text.
_TAGS = (
    ("   [URC]", "URC"),
    ("   [echo]", "echo"),
    ("   [prompt: send the data]", "prompt: send the data"),
)


def hex_of(data: bytes, limit: int = HEX_LIMIT) -> str:
    """``data`` as upper-case hex pairs, as sscom shows them.

    >>> hex_of(b"AT\\r\\n")
    '41 54 0D 0A'
    """
    text = data[:limit].hex(" ").upper()
    return text + " …" if len(data) > limit else text


def _kind(event: Event) -> str:
    if isinstance(event, CommandSent):
        return "sent"
    if isinstance(event, DataSent | Payload):
        return "body"
    if isinstance(event, Echo):
        return "echo"
    if isinstance(event, FinalResult):
        return "final" if event.ok else "error"
    if isinstance(event, Urc):
        return "urc"
    if isinstance(event, Prompt):
        return "prompt"
    if isinstance(event, InfoLine):
        return "answer"
    return "other"


def entry_of(event: Event, n: int, *, clock: bool = True) -> dict[str, Any] | None:
    """The log entry of ``event`` as line number ``n`` (``None`` for the raw chunks,
    which other events repeat)."""
    line = format_event(event, clock=clock)
    if line is None:
        return None
    body = format_event(event, clock=False) or ""
    text, tag = body[3:], ""
    for suffix, name in _TAGS:
        if text.endswith(suffix):
            text, tag = text[: -len(suffix)], name
            break
    sent = event.direction.value == "sent"
    return {
        "n": n,
        "time": clock_text(event.wall) if clock else "",
        "dir": "tx" if sent else "rx",
        "kind": _kind(event),
        "text": text,
        "tag": tag,
        "hex": hex_of(event.raw),
        "line": line,
    }


def error_entry(line: str, n: int, *, clock: bool = True, wall: float | None = None) -> dict:
    """The entry of an ``!! …`` error line (no bytes crossed the line: hex is empty).

    >>> error_entry("!! PortClosed: AT: the session is closed", 3, clock=False)["kind"]
    'error'
    """
    import time

    return {
        "n": n,
        "time": clock_text(time.time() if wall is None else wall) if clock else "",
        "dir": "!!",
        "kind": "error",
        "text": line[3:] if line.startswith("!! ") else line,
        "tag": "",
        "hex": "",
        "line": line,
    }


def _asset(name: str) -> str:
    return resources.files("airlab.widgets").joinpath(name).read_text(encoding="utf-8")


@functools.cache
def _classes() -> tuple[type, type]:
    import anywidget
    import traitlets as t

    esm, css = _asset("console.js"), _asset("console.css")

    class ConsoleLog(anywidget.AnyWidget):  # type: ignore[misc]
        """The log box: ``lines`` (entries, oldest first), ``hex_view``."""

        _esm = esm
        _css = css
        _view = t.Unicode("log").tag(sync=True)
        lines = t.List(t.Dict()).tag(sync=True)
        hex_view = t.Bool(False).tag(sync=True)
        height = t.Unicode("260px").tag(sync=True)

    class ConsoleInput(anywidget.AnyWidget):  # type: ignore[misc]
        """The typed line and the body field.

        Setting ``value`` from Python submits it (what typing + Enter does); the browser
        submits with a message instead (so the same line twice is two lines).  ``body``
        likewise sends a body while ``body_open``.
        """

        _esm = esm
        _css = css
        _view = t.Unicode("input").tag(sync=True)
        value = t.Unicode("").tag(sync=True)
        placeholder = t.Unicode("AT command, e.g. AT+CSQ (Enter sends)").tag(sync=True)
        disabled = t.Bool(False).tag(sync=True)
        history = t.List(t.Unicode()).tag(sync=True)
        body = t.Unicode("").tag(sync=True)
        body_open = t.Bool(False).tag(sync=True)
        body_hint = t.Unicode("").tag(sync=True)
        body_expected = t.Int(-1).tag(sync=True)  # announced length, -1: ends with Ctrl+Z
        body_ctrl_z = t.Bool(False).tag(sync=True)

    return ConsoleLog, ConsoleInput


def console_log(**traits: Any) -> Any:
    """A log box (an ``anywidget``).

    >>> log = console_log(); log.lines, log.hex_view
    ([], False)
    """
    return _classes()[0](**traits)


def console_input(**traits: Any) -> Any:
    """A command line with Send button and body field (an ``anywidget``).

    >>> box = console_input(); box.value, box.history, box.body_open
    ('', [], False)
    """
    return _classes()[1](**traits)
