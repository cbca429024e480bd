"""Errors of a modem session: each says what went wrong, whose fault it is, how to fix it.

* :class:`CommandError` - the module answered ``ERROR`` / ``+CME ERROR: n`` (we sent
  something it refuses); carries the CME meaning and a hint when one is known.
* :class:`ResponseTimeout` (a :class:`TimeoutError`) - no final result in time;
  :class:`UrcTimeout` - the awaited URC (``CONNACK OK``, ``PUBACK`` ...) did not come.
* :class:`ConnectionClosed` - the module printed ``CLOSED`` while we waited (the server
  dropped the TCP link); :class:`PortClosed` - the serial port itself went away.
* :class:`ConnectFailed` - ``CONNECT FAIL`` after ``AT+MIPSTART`` / ``AT+SSLMIPSTART``,
  or an HTTP request ending with a module error (600-606).
* :class:`~airlab.errors.CloudRejected` and :class:`~airlab.errors.UsageError` are
  re-used from :mod:`airlab.errors`.
* :class:`LateMconnectWarning` - ``AT+MCONNECT`` came too long after ``CONNECT OK``.

Example:
    >>> err = CommandError("AT+MPUB=\\"t\\",0,0,\\"x\\"", "+CME ERROR", 767, "operation failed")
    >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
    AT+MPUB="t",0,0,"x" -> +CME ERROR: 767 (operation failed): the MQTT session is down:
    reconnect (MIPSTART, MCONNECT)
"""

from __future__ import annotations

import functools
import re
from typing import Any

from airlab.at.command_table import HTTP_MODULE_ERRORS
from airlab.errors import AirlabError, CloudRejected, UsageError

__all__ = [
    "CloudRejected",
    "CommandError",
    "ConnectFailed",
    "ConnectionClosed",
    "LateMconnectWarning",
    "PortClosed",
    "ResponseTimeout",
    "UrcTimeout",
    "UsageError",
    "command_hint",
    "command_name",
]

_NAME = re.compile(r"AT\s*([+^*$#%&][A-Z0-9_]+)", re.IGNORECASE)

RECONNECT = (
    "reconnect: AT+MIPCLOSE (ignore its result), AT+MIPSTART / AT+SSLMIPSTART, then "
    "AT+MCONNECT right after CONNECT OK"
)

#: (command name, CME code or None for plain ERROR) -> how to fix it.
_HINTS: dict[tuple[str, int | None], str] = {
    ("+MPUB", 767): "the MQTT session is down: reconnect (MIPSTART, MCONNECT)",
    ("+MPUBEX", 767): "the MQTT session is down: reconnect (MIPSTART, MCONNECT)",
    ("+MSUB", 767): "the MQTT session is down: reconnect (MIPSTART, MCONNECT)",
    ("+MUNSUB", 767): "the MQTT session is down: reconnect (MIPSTART, MCONNECT)",
    ("+MCONNECT", 767): (
        "no TCP link to MCONNECT on (closed by the server, or never opened): "
        "AT+MIPSTART / AT+SSLMIPSTART again and send AT+MCONNECT right after CONNECT OK"
    ),
    ("+MIPCLOSE", 767): "the link was already closed; Luat advises ignoring MIPCLOSE's result",
    ("+MIPCLOSE", None): "nothing was open; Luat advises ignoring MIPCLOSE's result",
    ("+MDISCONNECT", None): "no MQTT session to disconnect (already closed)",
    ("+MPUB", None): (
        "the message must be double-quoted with \\22 \\0D \\0A \\5C escapes (use "
        "airlab.at.mpub or session.publish), or a QoS1 publish is still waiting for PUBACK"
    ),
    ("+SAPBR", 3): (
        "the PDP context is not active (lost?): check AT+CGATT?, then AT+SAPBR=1,1, or "
        "AT+CFUN=0 / AT+CFUN=1"
    ),
    ("+CPIN", 10): "insert a SIM card (power the module off first)",
    ("+HTTPINIT", None): "HTTP is already initialised: send AT+HTTPTERM first",
    ("+HTTPACTION", None): (
        "an HTTP request is still running, or AT+HTTPINIT / the URL is missing"
    ),
    ("+HTTPREAD", None): "no response body stored: run AT+HTTPACTION and wait for +HTTPACTION",
}

_CODE_HINTS: dict[int, str] = {
    4: "the module is still starting (the first ~30 s after power-up): wait and retry",
    10: "insert a SIM card",
    53: "check the parameters against the AT manual",
    765: "a parameter value is invalid (an empty user name or password?)",
    901: "the PDP context is not active: attach first (AT+CGATT?, AT+SAPBR=1,1)",
}

#: +HTTPACTION module status codes (spec section 6.4), from the command table.
HTTP_MODULE_CODES: dict[int, str] = HTTP_MODULE_ERRORS


@functools.lru_cache(maxsize=1024)  # the guards and the state tracking ask several times
def command_name(line: str) -> str | None:
    """``"+MPUB"`` for ``AT+MPUB=...`` (upper case); ``None`` for ``AT`` / ``ATE0``.

    >>> command_name('at+mpub="t",0,0,"x"'), command_name("ATE0")
    ('+MPUB', None)
    """
    m = _NAME.match(line.strip())
    return m.group(1).upper() if m else None


def command_hint(line: str, result: str, code: int | None) -> str | None:
    """How to fix a refused command, when known.

    >>> command_hint("AT+MIPCLOSE", "+CME ERROR", 767)
    "the link was already closed; Luat advises ignoring MIPCLOSE's result"
    """
    name = command_name(line) or ""
    if result == "+CME ERROR" and code is not None:
        hint = _HINTS.get((name, code)) or _CODE_HINTS.get(code)
        if hint:
            return hint
    if result == "ERROR":
        hint = _HINTS.get((name, None))
        if hint:
            return hint
        return (
            "the module did not accept the command: check its spelling and parameters "
            "(quotes, ranges) against the AT manual"
        )
    return None


class CommandError(AirlabError):
    """The module refused a command (``ERROR``, ``+CME ERROR: n`` ...).

    ``response`` is the :class:`~airlab.session.response.Response` when there is one.
    """

    def __init__(
        self,
        command: str,
        result: str,
        code: int | None = None,
        meaning: str | None = None,
        hint: str | None = None,
        response: Any = None,
    ) -> None:
        self.command = command
        self.result = result
        self.code = code
        self.meaning = meaning
        self.hint = hint if hint is not None else command_hint(command, result, code)
        self.response = response
        text = f"{command} -> {result}"
        if code is not None:
            text += f": {code}"
        if meaning:
            text += f" ({meaning})"
        if self.hint:
            text += f": {self.hint}"
        super().__init__(text)


class ResponseTimeout(AirlabError, TimeoutError):
    """Nothing (or not the awaited thing) came within ``timeout`` seconds."""

    def __init__(
        self,
        command: str | None,
        awaited: str,
        timeout: float,
        seen: tuple[str, ...] = (),
        hint: str | None = None,
    ) -> None:
        self.command = command
        self.awaited = awaited
        self.timeout = timeout
        self.seen = seen
        self.hint = hint or (
            "check the port and baud rate (session.probe()), that the module is powered, "
            "or give a longer timeout"
        )
        who = f"{command}: " if command else ""
        text = f"{who}no {awaited} within {timeout:g} s"
        if seen:
            text += " (received meanwhile: " + " | ".join(seen[-6:]) + ")"
        super().__init__(f"{text}: {self.hint}")


class UrcTimeout(ResponseTimeout):
    """The URC that completes a two-phase command (or a message) did not arrive in time."""


class ConnectionClosed(AirlabError):
    """The TCP/MQTT link closed (``CLOSED`` URC) while something was waiting on it."""

    def __init__(self, command: str | None, message: str, hint: str | None = RECONNECT) -> None:
        self.command = command
        self.hint = hint
        who = f"{command}: " if command else ""
        super().__init__(f"{who}{message}" + (f": {hint}" if hint else ""))


class PortClosed(ConnectionClosed):
    """The serial port failed or was closed under the session."""

    def __init__(self, command: str | None, message: str) -> None:
        super().__init__(command, message, hint="reopen the port: ModemSession(url)")


class ConnectFailed(AirlabError):
    """A connection could not be made (``CONNECT FAIL``, HTTP module error 600-606)."""

    def __init__(self, command: str, message: str, hint: str | None = None) -> None:
        self.command = command
        self.hint = hint or (
            "check the host name and port (TLS port with SSLMIPSTART?), the bearer "
            "(AT+SAPBR=2,1 shows the IP) and DNS"
        )
        super().__init__(f"{command}: {message}: {self.hint}")


class LateMconnectWarning(UserWarning):
    """``AT+MCONNECT`` came after the server's idle window (or after ``CLOSED``)."""
