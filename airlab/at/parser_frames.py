"""The pieces the AT parser frames bytes with: byte classes and header patterns,
argument splitting, command names, and the two things being collected across chunks
(a length-framed body from the module, a data phase from the host).

Pure helpers of :mod:`airlab.at.parser` (which re-exports :data:`MAX_LINE` and
:func:`split_args`).

Example:
    >>> split_args('"a,b", 2')
    ('a,b', '2')
    >>> _command_name("at+cereg?"), _command_args('AT+MPUB="t",1,0,"x"')
    ('+CEREG', ('t', '1', '0', 'x'))
"""

from __future__ import annotations

import re

from airlab.at.events import (
    Event,
    Payload,
    Urc,
)

#: Longest partial line kept in memory; longer lines are emitted as Garbage pieces.
MAX_LINE = 64 * 1024

_CR = 0x0D
_LF = 0x0A
_SP = 0x20
_GT = 0x3E
_PLUS = 0x2B
_CTRL_Z = 0x1A
_ESC = 0x1B

_TERM = re.compile(rb"[\r\n]")
_NOT_SPACE = re.compile(rb"[^ ]")
_CONTENT = re.compile(rb"[^\r\n]")
_DATA_END = re.compile(rb"[\x1a\x1b]")
_CTRL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LEADING_JUNK = re.compile(rb"^[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\xff]+")
_CMD_NAME = re.compile(r"AT\s*([+^*$#%&][A-Z0-9_]+)", re.IGNORECASE)
_MULTILINK = re.compile(r"(\d+)\s*,\s*([A-Z][A-Z ]*[A-Z])\s*$")
_QUOTED_ARGS = re.compile(r'\s*("[^"]*"|[^,]*)\s*(?:,|$)')
_DIGITS = re.compile(r"\s*(\d+)\s*")

# Headers whose body follows on the same line: +MSUB: "<topic>",<n> byte,<payload>
# (topic quoted or, on older firmware, bare; space after the colon optional) and
# +IPD,<n>[,<proto>]:<data>.  Bounded so that a long partial line stays cheap.
_MSUB_HEADER = re.compile(rb'\+MSUB: ?(?:"([^"\r\n]{0,1024})"|([^\r\n]{0,1024}?)),(\d{1,9}) byte,')
_IPD_HEADER = re.compile(rb"\+IPD,(\d{1,9})(?:,[A-Za-z]{1,8})?:")
_INLINE_MAX = 1200  # no inline header is longer than this


def split_args(text: str) -> tuple[str, ...]:
    """Split URC/answer arguments on commas outside quotes, trim spaces and quotes.

    >>> split_args(' "FOTA","UPDATING",20')
    ('FOTA', 'UPDATING', '20')
    >>> split_args("24/08/22,07:27:15+32, ")
    ('24/08/22', '07:27:15+32', '')
    """
    if not text.strip():
        return ()
    if '"' not in text:
        return tuple(a.strip() for a in text.split(","))
    out: list[str] = []
    pos = 0
    n = len(text)
    while pos <= n:
        m = _QUOTED_ARGS.match(text, pos)
        if m is None or m.end() == pos:  # pragma: no cover - pattern always advances or ends
            out.append(text[pos:].strip().strip('"'))
            break
        arg = m.group(1).strip()
        if len(arg) >= 2 and arg[0] == '"' and arg[-1] == '"':
            arg = arg[1:-1]
        out.append(arg)
        pos = m.end()
        if pos >= n and not text[m.start() : m.end()].endswith(","):
            break
        if pos >= n:
            out.append("")
            break
    return tuple(out)


def _command_name(line: str) -> str | None:
    """``"+CEREG"`` for ``AT+CEREG?`` (upper case), ``None`` for ``AT``/``ATI``."""
    m = _CMD_NAME.match(line.strip())
    return m.group(1).upper() if m else None


def _command_args(line: str) -> tuple[str, ...] | None:
    """Arguments of a set command ``AT+X=a,b``; ``None`` for test/read/execute forms."""
    eq = line.find("=")
    if eq < 0:
        return ()
    rest = line[eq + 1 :]
    if rest.strip().startswith("?"):
        return None
    return split_args(rest)


class _Body:
    """A length-framed body being collected (received side)."""

    __slots__ = (
        "buf",
        "header",
        "header_raw",
        "mono",
        "remaining",
        "skip_lf",
        "source",
        "topic",
        "urc",
        "urc_args",
        "wall",
    )

    def __init__(
        self,
        source: str,
        header: str,
        header_raw: bytes,
        length: int,
        wall: float,
        mono: float,
        *,
        topic: str | None = None,
        urc: bool = False,
        urc_args: tuple[str, ...] = (),
        skip_lf: bool = False,
    ) -> None:
        self.source = source
        self.header = header
        self.header_raw = header_raw
        self.remaining = length
        self.buf = bytearray()
        self.wall = wall
        self.mono = mono
        self.topic = topic
        self.urc = urc
        self.urc_args = urc_args
        self.skip_lf = skip_lf

    def event(self, complete: bool) -> Event:
        data = bytes(self.buf)
        if self.urc:
            raw = self.header_raw + data
            return Urc(
                wall=self.wall,
                mono=self.mono,
                raw=raw,
                name=self.source,
                line=raw.decode("utf-8", "replace"),
                args=self.urc_args,
                topic=self.topic,
                payload=data,
            )
        return Payload(
            wall=self.wall,
            mono=self.mono,
            raw=data,
            source=self.source,
            header=self.header,
            data=data,
            topic=self.topic,
            complete=complete,
        )


class _DataPhase:
    """A host data phase announced by a command (sent side)."""

    __slots__ = ("buf", "command", "mono", "prompted", "remaining", "started", "wall")

    def __init__(self, command: str, length: int | None) -> None:
        self.command = command
        self.remaining = length  # None: until 0x1A / 0x1B
        self.buf = bytearray()
        self.started = False
        self.prompted = False  # the module printed DOWNLOAD / '>' for it
        self.wall = 0.0
        self.mono = 0.0
