"""The simulated firmware's floor: output helpers, timers and parameter parsing shared by
every command group (:class:`_Base`); the groups (:mod:`~airlab.sim.firmware_basic`,
:mod:`~airlab.sim.firmware_radio`, :mod:`~airlab.sim.firmware_http`,
:mod:`~airlab.sim.firmware_mqtt`) are mixins on top of it, and
:class:`airlab.sim.firmware.Firmware` puts them together.

Example:
    >>> _Base._int(" 42", 0, 100)
    42
    >>> _b("+CME ERROR: 767")
    b'+CME ERROR: 767'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container

from airlab.at.events import CME_ERRORS
from airlab.sim.actions import Action, CancelTimer, StartTimer, ToHost
from airlab.sim.cmdline import Arg, ArgError, Command, split_args, to_bytes
from airlab.sim.config import FirmwareConfig
from airlab.sim.firmware_http_states import Bearer

__all__: list[str] = []  # internal: the firmware's mixins import _Base and _b by name

#: a decimal parameter: ASCII digits only (str.isdigit() also accepts '²', '٣' ...)
_DIGITS = re.compile(r"[0-9]{1,10}")


class _Base:
    """Output helpers and shared state; the command groups are mixins on top of it."""

    config: FirmwareConfig
    _mode: str
    _out: list[Action]
    _timers: dict[str, float]
    _sapbr_state: dict[int, Bearer]  # moved only by RadioMixin._bearer_to (BEARER_TRANSITIONS)

    # -- output
    def _act(self, action: Action) -> None:
        self._out.append(action)

    def _send(self, data: bytes, latency: str = "answer") -> None:
        if data:
            self._out.append(ToHost(data, latency))

    def _answer(self, lines: list[str]) -> None:
        """Information line(s) then OK."""
        self._send(b"".join(b"\r\n" + _b(t) + b"\r\n" for t in lines) + b"\r\nOK\r\n")

    def _ok(self) -> None:
        self._send(b"\r\nOK\r\n")

    def _error(self) -> None:
        self._send(b"\r\nERROR\r\n")

    def _cme(self, code: int) -> None:
        cmee = self._cmee
        if cmee == 0:
            return self._error()
        text = str(code) if cmee == 1 else CME_ERRORS.get(code, str(code))
        self._send(b"\r\n+CME ERROR: " + _b(text) + b"\r\n")

    def _urc(self, *lines: str) -> None:
        self._send(b"".join(b"\r\n" + _b(t) + b"\r\n" for t in lines), "urc")

    # -- timers
    def _start_timer(self, name: str, seconds: float) -> None:
        self._timers[name] = seconds
        self._out.append(StartTimer(name, seconds))

    def _cancel_timer(self, name: str) -> None:
        if self._timers.pop(name, None) is not None:
            self._out.append(CancelTimer(name))

    # -- parameters
    @staticmethod
    def _int(text: str, lo: int, hi: int) -> int:
        t = text.strip(" ")
        if not _DIGITS.fullmatch(t):
            raise ArgError("not a number")
        value = int(t)
        if not lo <= value <= hi:
            raise ArgError("out of range")
        return value

    def _set_args(
        self,
        cmd: Command,
        test: str,
        counts: Container[int] | None = None,
        read: Callable[[], str] | None = None,
    ) -> list[Arg] | None:
        """The arguments of the set form ``AT+X=…`` (:class:`ArgError` unless their number
        is in ``counts``; None: any); the other forms are answered here and give None:
        ``AT+X=?`` the line ``test``, ``AT+X?`` the line ``read()`` (None: ERROR, as ``AT+X``).

        Example:
            >>> from airlab.sim.firmware import Firmware
            >>> fw = Firmware()
            >>> fw._set_args(Command("+MSUB", "set", '"a/b",1'), "+MSUB:<topic>,(0-2)", {2})
            [Arg(text='a/b', quoted=True), Arg(text='1', quoted=False)]
            >>> fw._set_args(Command("+MSUB", "test"), "+MSUB:<topic>,(0-2)", {2}) is None
            True
            >>> fw._out[-1].data
            b'\\r\\n+MSUB:<topic>,(0-2)\\r\\n\\r\\nOK\\r\\n'
        """
        if cmd.form == "test":
            self._answer([test])
        elif cmd.form == "read" and read is not None:
            self._answer([read()])
        elif cmd.form != "set":
            self._error()
        else:
            args = split_args(cmd.args)
            if counts is not None and len(args) not in counts:
                raise ArgError(f"{cmd.name}: {len(args)} arguments")
            return args
        return None

    def _exec(self, cmd: Command, allowed: bool = True) -> bool:
        """True for the exec form ``AT+X`` when ``allowed``; any other case is answered
        here and gives False: ``AT+X=?`` OK, the other forms (or not ``allowed``) ERROR.

        Example:
            >>> from airlab.sim.firmware import Firmware
            >>> fw = Firmware()
            >>> fw._exec(Command("+HTTPTERM", "exec")), fw._exec(Command("+HTTPTERM", "read"))
            (True, False)
            >>> fw._out[-1].data
            b'\\r\\nERROR\\r\\n'
        """
        if cmd.form == "test":
            self._ok()
        elif cmd.form != "exec" or not allowed:
            self._error()
        else:
            return True
        return False

    def _int_setting(self, cmd: Command, attr: str, lo: int, hi: int, test: str, read: str) -> None:
        """A plain numeric setting: ``=?`` answers ``test``, ``?`` answers ``read`` and the
        value, ``=<n>`` stores n (``lo``..``hi``) in ``attr`` and answers OK."""
        args = self._set_args(cmd, test, {1}, lambda: f"{read}{getattr(self, attr)}")
        if args is not None:
            setattr(self, attr, self._int(args[0].text, lo, hi))
            self._ok()

    def _simple(self, cmd: Command, line: str | None, test: str | None = None) -> None:
        """An execute-only query; ``test`` is the =? answer (None: bare OK)."""
        if cmd.form == "test":
            return self._answer([test]) if test else self._ok()
        if cmd.form != "exec":
            return self._error()
        if line is None:
            return self._cme(10)
        self._answer([line])

    # provided by Firmware
    _cmee: int

    def _network_ready(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError


def _b(text: str) -> bytes:
    return text.encode("latin-1", "replace")


def _utf8(text: str) -> str:
    """A parameter's text (one character per received byte) read as UTF-8.

    >>> _utf8("\xe6\xb8\xa9")
    '温'
    """
    return to_bytes(text).decode("utf-8", "replace")
