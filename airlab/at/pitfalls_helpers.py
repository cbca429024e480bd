"""What the tutorial's checks read a capture with: events with their log lines
(:func:`events_with_lines`), a command's name and arguments, the meaning of an
``+HTTPACTION`` status (:data:`CLOUD_CODES`, :data:`MODULE_CODES`) and look-alike
characters typed instead of ASCII.

Example:
    >>> from airlab.at.pitfalls_helpers import _name, _status_meaning
    >>> _name('AT+MCONFIG="a","b","c"')
    '+MCONFIG'
    >>> _status_meaning(603)
    "DNS error (check the URL's host)"
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence

from airlab.at.events import (
    Event,
)
from airlab.at.parser import split_args
from airlab.at.transcript import Transcript

# ---------------------------------------------------------------------------- helpers


def events_with_lines(transcript: Transcript) -> tuple[list[Event], list[int | None]]:
    """The transcript's events (as :meth:`Transcript.events` parses them) and, for each,
    the log line of the record that carried its first byte (``None`` when unknown).

    >>> t = Transcript()
    >>> t.add("sent", b"AT\\r\\n", wall=1.0, mono=0.0, line_no=4)
    >>> events_with_lines(t)[1]
    [4]
    """
    from airlab.at.parser import AtParser
    from airlab.at.transcript import RecordKind

    events: list[Event] = []
    lines: list[int | None] = []
    parser = AtParser()
    fed: list[int] = []  # indices of the records fed to the current parser

    def place(new: Sequence[Event]) -> None:
        for ev in new:
            line = None
            for i in reversed(fed):
                rec = transcript.records[i]
                if _same_stamp(rec.wall, ev.wall) and _same_stamp(rec.mono, ev.mono):
                    line = rec.line_no
                    break
            if line is None and fed:
                line = transcript.records[fed[-1]].line_no
            events.append(ev)
            lines.append(line)

    last = (math.nan, math.nan)
    for i, rec in enumerate(transcript.records):
        if rec.kind is RecordKind.MARKER:
            if fed:
                place(parser.close(*last))
            parser, fed = AtParser(), []
            continue
        if rec.kind is not RecordKind.DATA:
            continue
        fed.append(i)
        place(parser.feed(rec.direction, rec.data, rec.wall, rec.mono))
        last = (rec.wall, rec.mono)
    if fed:
        place(parser.close(*last))
    return events, lines


def _same_stamp(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _name(line: str) -> str:
    m = re.match(r"\s*AT\s*([+^][A-Z0-9_]+)", line, re.IGNORECASE)
    return m.group(1).upper() if m else ""


def _value(line: str) -> str:
    return line.split("=", 1)[1] if "=" in line else ""


def _args(line: str) -> tuple[str, ...]:
    return split_args(_value(line))


def _masked(value: str) -> bool:
    return bool(value) and set(value) == {"*"}


_HEX = re.compile(r"[0-9A-Fa-f]{16,}")
_HOST = re.compile(r"^([^.]+)\.iot-as-mqtt\.([^.]+)\.aliyuncs\.com$", re.IGNORECASE)

#: What the platform's JSON ``code`` means on the HTTPS endpoints.
CLOUD_CODES: dict[int, str] = {
    401: "request auth error: the sign does not match (wrong secret, sign content or "
    "sign method), or the device is disabled",
    460: "param error: a parameter is missing or wrong; for dynamic registration also "
    "the 动态注册 switch is off or the device is already activated (ResetThing first)",
    5001: "meta device not found: no such productKey/deviceName in the console",
    6288: "the device is disabled",
}
#: Module status codes of ``+HTTPACTION`` (spec at_commands.md §6.4).
MODULE_CODES: dict[int, str] = {
    600: "not an HTTP answer",
    601: "network error (the PDP context dropped: AT+SAPBR=1,1 again)",
    602: "module out of memory",
    603: "DNS error (check the URL's host)",
    604: "HTTP stack busy (wait for the previous +HTTPACTION)",
    605: "SSL channel setup failed (https:// URL, module time, certificates)",
    606: "SSL alert / communication error",
}


def _status_meaning(status: int) -> str:
    if status in MODULE_CODES:
        return MODULE_CODES[status]
    if status == 400:
        return "the server could not read the request (headers or body)"
    if status == 404:
        return "no such path: check the URL (/auth/devicename or /auth/register/device)"
    if 400 <= status < 500:
        return "the server refused the request"
    if status >= 500:
        return "server error"
    return "unexpected status"


# Look-alikes a hand-typed line picks up: full-width forms (Chinese IME), smart quotes,
# Cyrillic/Greek letters that look Latin, invisible spaces.
_LOOKALIKE = {
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"', "\u2018": "'", "\u2019": "'",
    "\u3001": ",", "\u3002": ".", "\u2014": "-", "\u2013": "-", "\u2212": "-",
    "\u00a0": " ", "\u3000": " ", "\u200b": "", "\u200c": "", "\u200d": "", "\ufeff": "",
    "\u0430": "a", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0445": "x",
    "\u0443": "y", "\u0410": "A", "\u0412": "B", "\u0415": "E", "\u041a": "K", "\u041c": "M",
    "\u041d": "H", "\u041e": "O", "\u0420": "P", "\u0421": "C", "\u0422": "T", "\u0425": "X",
    "\u03bf": "o", "\u039f": "O", "\u0391": "A", "\u0392": "B", "\u0395": "E", "\u039a": "K",
    "\u0399": "I", "\u0406": "I", "\u0456": "i", "\u00b4": "'", "\uff40": "`",
}  # fmt: skip


def _ascii_for(ch: str) -> str | None:
    if ch in _LOOKALIKE:
        return _LOOKALIKE[ch]
    folded = unicodedata.normalize("NFKC", ch)
    if folded != ch and folded.isascii():
        return folded
    return None


def _char_report(ch: str) -> str:
    name = unicodedata.name(ch, "UNKNOWN")
    repl = _ascii_for(ch)
    if repl is None:
        return f"U+{ord(ch):04X} {name}"
    shown = repr(repl) if repl.strip() else ("nothing" if not repl else "a plain space")
    return f"U+{ord(ch):04X} {name} (should be {shown})"


def _outside_quotes(text: str) -> str:
    """``text`` with quoted parts replaced by ``""`` (to look at separators only)."""
    return re.sub(r'"[^"]*"', '""', text)
