"""AT command-line tokenising with the Luat module's rules (pure, used by the firmware).

A command line is text after the (case-insensitive) ``AT`` prefix: ``+NAME`` (or
``*NAME``, ``^NAME``, ``&X``, or a basic one-letter command such as ``E0``, ``I``)
followed by one form: nothing (execute), ``?`` (read), ``=?`` (test) or ``=<args>`` (set).

Arguments are separated by commas; a double-quoted argument is taken verbatim (commas
and spaces inside it included, no escapes: ``\\22`` style escapes belong to AT+MPUB and
are decoded there); an unquoted argument is trimmed of spaces.  A quote that does not
close, or text after a closing quote before the next comma, is a syntax error (X1:
a C-style ``\\"`` inside an MPUB message gives ``ERROR``).

The line is handled as ``latin-1`` text so that every byte maps to one character and
payload bytes survive unchanged (:func:`to_bytes`).

Example:
    >>> parse_command("+MSUB=\\"a/b\\",1")
    Command(name='+MSUB', form='set', args='"a/b",1')
    >>> [(a.text, a.quoted) for a in split_args('"x,y", 1 ,"",z')]
    [('x,y', True), ('1', False), ('', True), ('z', False)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "Arg",
    "ArgError",
    "Command",
    "find_at",
    "parse_command",
    "split_args",
    "split_concatenated",
    "to_bytes",
    "to_text",
]

_AT = re.compile(r"[Aa][Tt]")
_EXT_NAME = re.compile(r"[+*^][A-Za-z0-9_]+")
_BASIC = re.compile(r"(&[A-Za-z]|[A-Za-z])(\d*)")


class ArgError(ValueError):
    """A malformed command line or argument (the module answers ERROR)."""


@dataclass(frozen=True, slots=True)
class Command:
    """One command: ``name`` upper-cased (``+CGMI``, ``E``, ``&W``), ``form`` one of
    ``exec``/``read``/``test``/``set``, ``args`` the raw text after ``=``."""

    name: str
    form: str
    args: str = ""


@dataclass(frozen=True, slots=True)
class Arg:
    text: str
    quoted: bool


def to_text(data: bytes) -> str:
    """Bytes of the serial line as parse text (one character per byte)."""
    return data.decode("latin-1")


def to_bytes(text: str) -> bytes:
    """Inverse of :func:`to_text`."""
    return text.encode("latin-1")


def find_at(line: str) -> int | None:
    """Index just after the first ``AT`` (any case), or None (V1122: garbage before it is fine)."""
    m = _AT.search(line)
    return None if m is None else m.end()


def split_concatenated(body: str) -> list[str]:
    """Split ``+IPR=115200;&W`` into ``['+IPR=115200', '&W']``.

    Only a ``;`` outside quotes followed by ``+`` or ``&`` separates commands, so an
    unquoted ``;`` inside a value stays part of it.
    """
    parts: list[str] = []
    start = 0
    quoted = False
    for i, ch in enumerate(body):
        if ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted and body[i + 1 : i + 2] in ("+", "&"):
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return parts


def parse_command(body: str) -> Command:
    """Parse the text after ``AT`` (see the module docstring); raises :class:`ArgError`."""
    if body == "":
        return Command("", "exec")
    m = _EXT_NAME.match(body)
    if m is not None:
        name = m.group(0).upper()
        rest = body[m.end() :]
    else:
        b = _BASIC.match(body)
        if b is None:
            raise ArgError("no command name")
        name = b.group(1).upper()
        digits = b.group(2)
        rest = body[b.end() :]
        if digits:
            if rest:
                raise ArgError("text after a basic command's value")
            return Command(name, "set", digits)
    if rest.strip(" ") == "":
        return Command(name, "exec")
    if rest == "?":
        return Command(name, "read")
    if rest.startswith("=?") and rest[2:].strip(" ") == "":
        return Command(name, "test")
    if rest.startswith("="):
        return Command(name, "set", rest[1:])
    raise ArgError("unexpected text after the command name")


def split_args(text: str) -> list[Arg]:
    """Split a set form's arguments (see the module docstring)."""
    args: list[Arg] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] == " ":
            i += 1
        if i < n and text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise ArgError("unterminated quote")
            args.append(Arg(text[i + 1 : end], True))
            i = end + 1
            while i < n and text[i] == " ":
                i += 1
            if i < n and text[i] != ",":
                raise ArgError("text after a closing quote")
        else:
            end = text.find(",", i)
            if end < 0:
                end = n
            value = text[i:end].strip(" ")
            if '"' in value:
                raise ArgError("stray quote")
            args.append(Arg(value, False))
            i = end
        if i >= n:
            return args
        i += 1  # the comma
