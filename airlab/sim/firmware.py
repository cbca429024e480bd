"""The simulated Air780EP AT firmware: a pure interpreter (no I/O, no clock, no threads).

Fed host bytes (:meth:`Firmware.receive`), network events (:meth:`Firmware.network`) and
timer expiries (:meth:`Firmware.timer`), it returns *actions*
(:mod:`airlab.sim.actions`): bytes for the host, requests for the network stack,
timers.  It is *faithful, not friendly*: it answers byte for byte like the module in
``spec/at_commands.md`` and the captures, pitfalls included; guards live in ``session``.

Model choices (every unconfirmed one is an option of :class:`FirmwareConfig`):

Line input
    A command line ends with CR or LF; an LF right after the CR in the same chunk
    belongs to that line.  CR/LF bytes with no line content before them (empty lines,
    the CRLF a host appends after HTTPDATA's block, an LF arriving in a later chunk
    than its CR) are dropped without echo: T01 shows no echo for them.  ``AT`` is
    found anywhere in the line (V1122), any case; a line without it is ignored
    (``non_at_line``).  Lines longer than ``max_line`` give ERROR.
Echo
    ATE1 (default) echoes received command bytes verbatim, terminator included,
    *per received chunk* (a partial line is echoed when it arrives), so the byte stream
    does not depend on chunking - except for an LF split from its CR (above).  Data
    after DOWNLOAD / ``>`` is not echoed.
Several commands in one line
    ``;`` outside quotes followed by ``+`` or ``&`` separates commands
    (``AT+IPR=115200;&W``); only synchronous commands may be combined (others: ERROR);
    one final OK, the first failure stops the line.
Errors
    Syntax or parameter errors print ``ERROR``; state errors print ``+CME ERROR: n``
    (CMEE 1, default), ``ERROR`` (CMEE 0) or the verbose text (CMEE 2).  A numeric
    parameter is 1-10 ASCII digits (``²``, ``-1``, ``+1``, 11+ digits: ``ERROR``).
    Every command line is answered on its own: a bad line never costs the lines after
    it in the same chunk their answers.  An internal error (a bug) is logged with its
    traceback at ERROR level and answered ``ERROR`` for that line only (``strict``:
    re-raised, as in the tests).
Power and time
    A new :class:`Firmware` is already booted and registered; :meth:`boot` prints the
    power-on URCs (``RDY``, ``^MODE: 17,17``, ``+E_UTRAN Service``,
    ``+CGEV: ME PDN ACT 1``, ``+NITZ``).  ``+NITZ`` prints UTC (an aware ``now`` is
    converted; a naive one is taken as UTC) with ``+32`` quarter hours.  The firmware
    never reads a clock: it keeps the ``now`` of the last :meth:`boot`/:meth:`reset`
    plus the durations of the timers that fired since; :meth:`timer` accepts an
    optional ``now`` that replaces this estimate.  ``AT+RESET`` answers OK, closes the
    links, ignores input and starts ``StartTimer("reboot", reboot_seconds)``; the boot
    URCs come on ``timer("reboot")``.  ``AT+CFUN=1`` (from 0) answers OK and the
    registration URCs come on ``timer("register")``.
Bearer / PDP loss
    The default PDP context is up after registration.  ``SAPBR=1,1`` when open answers
    OK (the context is always up; SIMCom would say ERROR).  On :meth:`lose_pdp` /
    ``PdpLost``: ``+CGEV: NW PDN DEACT 1`` (``pdp_loss_cgev``), ``+SAPBR 1: DEACT`` if
    the bearer was opened, ``+HTTPACTION: m,601,0`` for a request in flight, and for an
    open MQTT link ``pdp_loss_mqtt`` ("silent", T07: nothing printed, later MPUB/MSUB
    answer OK and go nowhere, MIPCLOSE answers OK).  The default context comes back by
    itself: (SSL)MIPSTART needs no SAPBR bearer (the MQTT guides S6 open none and T07
    reconnects right after the DEACT), only attach (detached: ``STATE: …`` then
    ``CONNECT FAIL``, the manual's failure form).  The SAPBR bearer stays down
    (``SAPBR=0,1`` → 3, ``SAPBR=2,1`` → status 3) until ``SAPBR=1,1``; HTTPACTION
    needs it (``http_bearer``): without it, OK then ``+HTTPACTION: m,601,0`` (S7).
HTTP
    HTTPINIT twice, HTTPPARA/HTTPDATA/HTTPACTION/HTTPREAD without HTTPINIT, HTTPACTION
    without URL: ERROR (SIMCom).  HTTPACTION while one is in flight: ``httpaction_busy``.
    HTTPDATA takes exactly <size> bytes (surplus goes back to the command parser); a
    short block at the timer: ``httpdata_short``.  The response body is kept up to
    ``http_buffer`` bytes; ``<datalen>`` per ``http_len_reported``.  HTTPREAD with no
    response reads back the HTTPDATA block (manual), else ERROR; past the end it prints
    ``+HTTPREAD: 0``.  With ``AT+HTTPSSL=1`` a URL without scheme gets ``https://``.
    AT+HTTPHEAD prints the response headers as ``name: value`` lines joined by CRLF, as
    the server sent them (Air780EP guide S7: 8 lines make ``+HTTPHEAD: 247``), or
    lower-cased with ``httphead_case="lower"`` (Air780E, T08: 14 lines make 454).
MQTT
    MIPSTART when a link is open or opening: ``OK`` then ``ALREADY CONNECT``.  Failure:
    ``STATE: <connect_fail_state>`` then ``CONNECT FAIL``.  MCONNECT without an open
    link (or twice): ``+CME ERROR: 767``; without MCONFIG it connects with an empty
    client id.  ``CLOSED`` when the peer closes the link; then MIPCLOSE → 767 once,
    MQTTSTATU → ``:0``.  After MDISCONNECT the broker's close is silent and MIPCLOSE
    answers OK (T09).  MSUB/MUNSUB/MPUB/MPUBEX when not connected: 767.  A refused
    subscription (0x80): ``msub_refused``.  A QoS>0 MPUB/MPUBEX while a QoS>0 publish
    awaits its ack: ``qos1_overlap`` (QoS0 is always sent).  MPUBEX prints
    ``mpubex_prompt`` and ends by length, at 0x1A, after ``mpubex_idle`` seconds
    (``timer("mpubex")``) or at ``mpub_max`` bytes.  Cache mode: the first free of four
    slots, else the oldest is overwritten; AT+MQTTMSGGET prints the valid slots in slot
    order and frees them.  Received payloads are printed raw (MQTTMODE does not apply).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
from typing import Any

from airlab.at.command_table import ALONE_COMMANDS
from airlab.at.events import CME_ERRORS
from airlab.sim.actions import (
    Action,
    CancelTimer,
    CloseLink,
    HttpResult,
    LinkClosed,
    LinkFailed,
    LinkOpened,
    MqttConnack,
    MqttMessage,
    MqttPuback,
    MqttPubcomp,
    MqttPubrec,
    MqttSuback,
    MqttUnsuback,
    NetEvent,
    PdpLost,
    StartTimer,
    ToHost,
)
from airlab.sim.cmdline import (
    ArgError,
    Command,
    find_at,
    parse_command,
    split_args,
    split_concatenated,
    to_text,
)
from airlab.sim.config import FirmwareConfig
from airlab.sim.firmware_http import HttpMixin
from airlab.sim.firmware_mqtt import MqttMixin
from airlab.sim.firmware_mqtt_states import Link

__all__ = ["Firmware", "FirmwareConfig"]

log = logging.getLogger(__name__)

_CR, _LF = 0x0D, 0x0A
#: a decimal parameter: ASCII digits only (str.isdigit() also accepts '²', '٣' ...)
_DIGITS = re.compile(r"[0-9]{1,10}")
_DEFAULT_NOW = _dt.datetime(2024, 7, 22, 3, 0, 0, tzinfo=_dt.UTC)

#: commands that cannot share a line with others (two-phase, data mode, power): the table's
_ALONE = ALONE_COMMANDS


class _Base:
    """Output helpers and shared state; the command groups are mixins on top of it."""

    config: FirmwareConfig
    _mode: str
    _out: list[Action]
    _timers: dict[str, float]
    _sapbr_state: dict[int, str]

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

    def _int_setting(self, cmd: Command, attr: str, lo: int, hi: int, test: str, read: str) -> None:
        """A plain numeric setting: ``=?`` answers ``test``, ``?`` answers ``read`` and the
        value, ``=<n>`` stores n (``lo``..``hi``) in ``attr`` and answers OK."""
        if cmd.form == "test":
            return self._answer([test])
        if cmd.form == "read":
            return self._answer([f"{read}{getattr(self, attr)}"])
        if cmd.form != "set":
            return self._error()
        args = split_args(cmd.args)
        if len(args) != 1:
            raise ArgError("one value")
        setattr(self, attr, self._int(args[0].text, lo, hi))
        self._ok()

    # provided by Firmware
    _cmee: int

    def _network_ready(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError


def _b(text: str) -> bytes:
    return text.encode("latin-1", "replace")


def _line_end(data: bytes, pos: int) -> int:
    """Index just after the next CR or LF at or after ``pos`` (or the end)."""
    ends = [i for i in (data.find(b"\r", pos), data.find(b"\n", pos)) if i >= 0]
    return min(ends) + 1 if ends else len(data)


class Firmware(HttpMixin, MqttMixin, _Base):
    """The Air780EP AT firmware as a pure state machine (see the module docstring).

    Example:
        >>> fw = Firmware()
        >>> b"".join(a.data for a in fw.receive(b"AT+CGMI\\r") if isinstance(a, ToHost))
        b'AT+CGMI\\r\\r\\n+CGMI: "AirM2M"\\r\\n\\r\\nOK\\r\\n'
    """

    #: Internal errors (a bug, never bad input: bad input has its own ERROR / +CME ERROR
    #: answer) are logged with their traceback at ERROR level and answered ERROR, so the
    #: simulator keeps running.  With ``strict`` they are re-raised instead: the test
    #: suites set it (``tests/sim/conftest.py``), as does ``AIRLAB_SIM_STRICT=1``.
    strict: bool = os.environ.get("AIRLAB_SIM_STRICT", "") not in ("", "0")

    def __init__(self, config: FirmwareConfig | None = None) -> None:
        self.config = config or FirmwareConfig()
        self._out = []
        self._timers = {}
        self._clock = _DEFAULT_NOW
        self._elapsed = 0.0
        self._power_on()

    # ------------------------------------------------------------------ public state

    @property
    def in_data_mode(self) -> bool:
        """True while HTTPDATA / MPUBEX data is being collected."""
        return self._mode in ("httpdata", "mpubex")

    @property
    def rebooting(self) -> bool:
        """True between AT+RESET and ``timer("reboot")`` (input is ignored)."""
        return self._mode == "rebooting"

    @property
    def echo(self) -> bool:
        return self._echo

    @property
    def http_in_flight(self) -> bool:
        return self._http_inflight is not None

    @property
    def pending_timers(self) -> dict[str, float]:
        """Timers started and neither cancelled nor fired (name → seconds)."""
        return dict(self._timers)

    @property
    def registered(self) -> bool:
        return self._attached

    # ------------------------------------------------------------------ public API

    def boot(self, now: _dt.datetime) -> list[Action]:
        """Power-on: reset every state, print RDY and the registration URCs."""
        self._out = []
        self._set_clock(now)
        self._power_on()
        self._boot_urcs()
        return self._flush()

    def reset(self, now: _dt.datetime) -> list[Action]:
        """Fault injection / hard reset: drop the links, clear the state, boot URCs."""
        self._out = []
        self._close_links()
        self._set_clock(now)
        for name in list(self._timers):
            self._cancel_timer(name)
        self._power_on()
        self._boot_urcs()
        return self._flush()

    def lose_pdp(self) -> list[Action]:
        """Fault injection: the network deactivates the PDP context."""
        return self.network(PdpLost())

    def receive(self, data: bytes) -> list[Action]:
        """Bytes from the host, any chunking."""
        self._out = []
        data = bytes(data)
        pos, n = 0, len(data)
        while pos < n:
            before = pos
            try:
                if self._mode == "rebooting":
                    break
                if self._mode == "httpdata":
                    pos = self._feed_httpdata(data, pos)
                elif self._mode == "mpubex":
                    pos = self._feed_mpubex(data, pos)
                else:
                    pos = self._feed_cmd(data, pos)
            except Exception:  # a bug: never crash on wire input, never hide it either
                self._internal_error("input %r (mode %s)", data[before:], self._mode)
                self._recover()
                if pos == before:  # drop the line (or data) in the way, keep the rest
                    pos = _line_end(data, before)
        return self._flush()

    def network(self, event: NetEvent) -> list[Action]:
        """A network event (see :mod:`airlab.sim.actions`)."""
        self._out = []
        try:
            self._network(event)
        except Exception:
            self._internal_error("network event %r", event)
        return self._flush()

    def timer(self, name: str, now: _dt.datetime | None = None) -> list[Action]:
        """A timer started by a :class:`StartTimer` expired.

        ``now`` (optional) is the current time, used for ``+NITZ``; without it the
        firmware adds the timer's duration to its own estimate.  A timer that is not
        pending (cancelled, or already fired) is ignored.
        """
        self._out = []
        seconds = self._timers.pop(name, None)
        if seconds is None:
            return []
        if now is not None:
            self._set_clock(now)
        else:
            self._elapsed += seconds
        try:
            if name == "httpdata":
                self._httpdata_timeout()
            elif name == "mpubex":
                self._mpubex_timeout()
            elif name == "reboot":
                self._power_on()
                self._boot_urcs()
            elif name == "register" and self._cfun == 1 and self.config.sim_inserted:
                self._attached = True
                self._pdp = True
                self._registration_urcs("urc")
        except Exception:
            self._internal_error("timer %r", name)
        return self._flush()

    # ------------------------------------------------------------------ state

    def _power_on(self) -> None:
        cfg = self.config
        self._mode = "cmd"
        self._line = bytearray()
        self._line_started = False
        self._overflow = False
        self._echo = cfg.echo
        self._cmee = cfg.cmee
        self._cfun = 1
        self._attached = cfg.sim_inserted
        self._pdp = cfg.sim_inserted
        self._reg_n = {"+CREG": 0, "+CEREG": 0, "+CGREG": 0}
        self._cops_format = 2
        self._cgdcont: dict[int, tuple[str, str]] = {1: ("IP", cfg.apn)}
        self._ipr = 0
        self._csdt = 0
        self._sapbr_params: dict[int, dict[str, str]] = {
            cid: {
                "CONTYPE": "GPRS",
                "APN": "",
                "PHONENUM": "",
                "USER": "",
                "PWD": "",
                "RATE": "2",
            }
            for cid in (1, 2, 3)
        }
        self._sapbr_state: dict[int, str] = {1: "closed", 2: "closed", 3: "closed"}
        self._timers = {}
        self._http_reset()
        self._mqtt_reset()

    def _set_clock(self, now: _dt.datetime) -> None:
        self._clock = now
        self._elapsed = 0.0

    def _now(self) -> _dt.datetime:
        return self._clock + _dt.timedelta(seconds=self._elapsed)

    def _network_ready(self) -> bool:
        return self._cfun == 1 and self._attached and self._pdp

    def _internal_error(self, what: str, *args: object) -> None:
        """Log the exception being handled (traceback, ERROR level); re-raise if strict."""
        log.exception("simulated firmware: internal error on " + what, *args)
        if self.strict:
            raise  # the exception being handled (only called from except blocks)

    def _recover(self) -> None:
        """After an internal error: back to command mode with a clean line."""
        self._mode = "cmd"
        self._line = bytearray()
        self._line_started = False
        self._overflow = False
        self._error()

    def _flush(self) -> list[Action]:
        """The collected actions, consecutive ToHost of one latency merged."""
        merged: list[Action] = []
        for a in self._out:
            last = merged[-1] if merged else None
            if (
                isinstance(a, ToHost)
                and isinstance(last, ToHost)
                and last.latency == a.latency
                and a.latency != "boot"
            ):
                merged[-1] = ToHost(last.data + a.data, a.latency)
            else:
                merged.append(a)
        self._out = []
        return merged

    def _close_links(self) -> None:
        if self._mq_link is not Link.IDLE and not self._mq_broken:
            self._act(CloseLink("mqtt"))
        if self._http_inflight is not None:
            self._act(CloseLink("http"))

    # ------------------------------------------------------------------ URCs

    def _nitz(self) -> str:
        now = self._now()
        if now.tzinfo is not None:
            now = now.astimezone(_dt.UTC)
        fmt = "%y/%m/%d,%H:%M:%S" if self.config.nitz_year_digits == 2 else "%Y/%m/%d,%H:%M:%S"
        cfg = self.config
        return f"+NITZ: {now.strftime(fmt)}+{cfg.nitz_tz_quarters},{cfg.nitz_suffix}"

    def _reg_urcs(self) -> list[str]:
        cfg = self.config
        stat = 1 if self._attached else 0
        lines = []
        for name in ("+CREG", "+CGREG", "+CEREG"):
            n = self._reg_n[name]
            if n == 1 or (n >= 2 and not stat):
                lines.append(f"{name}: {stat}")
            elif n >= 2:
                lines.append(f'{name}: {stat},"{cfg.tac}","{cfg.cell_id.lower()}",{cfg.act}')
        return lines

    def _registration_urcs(self, latency: str) -> None:
        lines = [
            "^MODE: 17,17",
            "+E_UTRAN Service",
            f"+CGEV: ME PDN ACT {self.config.cgev_pdn_act}",
            *self._reg_urcs(),
        ]
        self._send(b"".join(b"\r\n" + _b(t) + b"\r\n" for t in lines), latency)
        self._send(b"\r\n" + _b(self._nitz()) + b"\r\n", latency)

    def _boot_urcs(self) -> None:
        if self.config.boot_rdy:
            self._send(self.config.boot_noise + b"\r\nRDY\r\n", "boot")
        if self.config.sim_inserted:
            self._registration_urcs("boot")

    # ------------------------------------------------------------------ network events

    def _network(self, ev: NetEvent) -> None:
        if self._mode == "rebooting":
            return
        if isinstance(ev, LinkOpened):
            if ev.link == "mqtt" and self._mq_current(ev.attempt):
                self._mq_link_opened()
        elif isinstance(ev, LinkFailed):
            if ev.link == "mqtt" and self._mq_current(ev.attempt):
                self._mq_link_failed()
            elif ev.link == "http":
                self._http_fail(ev.reason)
        elif isinstance(ev, LinkClosed):
            if ev.link == "mqtt" and self._mq_current(ev.attempt):
                self._mq_link_closed()
            elif ev.link == "http":
                self._http_fail("network")
        elif isinstance(ev, HttpResult):
            self._http_result(ev)
        elif isinstance(ev, MqttConnack):
            self._mq_connack(ev.return_code)
        elif isinstance(ev, MqttSuback):
            self._mq_suback(ev.packet_id, tuple(ev.granted))
        elif isinstance(ev, MqttUnsuback):
            self._mq_unsuback(ev.packet_id)
        elif isinstance(ev, MqttPuback):
            self._mq_ack(ev.packet_id, "PUBACK")
        elif isinstance(ev, MqttPubrec):
            self._mq_ack(ev.packet_id, "PUBREC")
        elif isinstance(ev, MqttPubcomp):
            self._mq_ack(ev.packet_id, "PUBCOMP")
        elif isinstance(ev, MqttMessage):
            self._mq_message(ev)
        elif isinstance(ev, PdpLost):
            self._pdp_lost()

    def _http_fail(self, reason: str) -> None:
        """The HTTP link failed or closed before a result: a module code URC."""
        method = self._http_inflight
        if method is None:
            return
        self._http_inflight = None
        code = {"dns": 603, "tls": 605}.get(reason, 601)
        self._http_resp = (method, code, b"", ())
        self._urc(f"+HTTPACTION: {method},{code},0")

    def _pdp_lost(self) -> None:
        if not (self._cfun == 1 and self._attached):
            return
        if self.config.pdp_loss_cgev:
            self._urc("+CGEV: NW PDN DEACT 1")
        for cid, state in self._sapbr_state.items():
            if state == "open":
                self._sapbr_state[cid] = "lost"
                self._urc(f"+SAPBR {cid}: DEACT")
        self._http_abort()
        self._mq_network_lost()
        # the default context is re-established by the module on demand (T07, T08)

    # ------------------------------------------------------------------ command input

    def _feed_cmd(self, data: bytes, pos: int) -> int:
        n = len(data)
        if not self._line_started:
            while pos < n and data[pos] in (_CR, _LF):
                pos += 1
            if pos == n:
                return n
            self._line_started = True
        k = pos
        while k < n and data[k] not in (_CR, _LF):
            k += 1
        if k == n:
            self._append_line(data[pos:])
            if self._echo:
                self._send(data[pos:], "echo")
            return n
        end = k + 2 if data[k] == _CR and k + 1 < n and data[k + 1] == _LF else k + 1
        self._append_line(data[pos:k])
        if self._echo:
            self._send(data[pos:end], "echo")
        line = bytes(self._line)
        overflow = self._overflow
        self._line = bytearray()
        self._line_started = False
        self._overflow = False
        if overflow:
            self._error()
            return end
        try:
            self._execute_line(line)
        except Exception:  # a bug: this line gets ERROR, the lines after it their answers
            self._internal_error("command line %r", line)
            self._recover()
        return end

    def _append_line(self, chunk: bytes) -> None:
        if self._overflow:
            return
        if len(self._line) + len(chunk) > self.config.max_line:
            self._overflow = True
            self._line = bytearray()
        else:
            self._line += chunk

    def _execute_line(self, line: bytes) -> None:
        text = to_text(line)
        idx = find_at(text)
        if idx is None:
            if self.config.non_at_line == "error":
                self._error()
            return
        body = text[idx:].rstrip(" ")
        parts = split_concatenated(body)
        try:
            cmds = [parse_command(p) for p in parts]
        except ArgError:
            return self._error()
        if len(cmds) == 1:
            return self._run(cmds[0])
        if any(c.name in _ALONE for c in cmds):
            return self._error()
        # several commands: one final OK, stop at the first failure
        for i, cmd in enumerate(cmds):
            mark = len(self._out)
            self._run(cmd)
            produced = self._out[mark:]
            data = b"".join(a.data for a in produced if isinstance(a, ToHost))
            if not data.endswith(b"\r\nOK\r\n"):
                return
            if i < len(cmds) - 1:
                del self._out[mark:]
                info = data[: -len(b"\r\nOK\r\n")]
                self._send(info)

    def _run(self, cmd: Command) -> None:
        handler = self._handler(cmd.name)
        if handler is None:
            return self._error()
        try:
            handler(cmd)
        except ArgError:
            self._error()

    def _handler(self, name: str) -> Any:
        if name == "":
            return self._b_at
        if name.startswith("+"):
            return getattr(self, "_h_" + name[1:].lower(), None)
        if name.startswith("&"):
            return getattr(self, "_b_amp_" + name[1:].lower(), None)
        if name.isalpha():
            return getattr(self, "_b_" + name.lower(), None)
        return None  # AT*..., AT^...: none implemented

    # ------------------------------------------------------------------ basic commands

    def _b_at(self, cmd: Command) -> None:
        self._ok()

    def _b_e(self, cmd: Command) -> None:
        if cmd.form == "exec":
            self._echo = False  # ATE = ATE0
        elif cmd.form == "set" and cmd.args in ("0", "1"):
            self._echo = cmd.args == "1"
        else:
            return self._error()
        self._ok()

    def _b_i(self, cmd: Command) -> None:
        if cmd.form == "exec" or (cmd.form == "set" and cmd.args == "0"):
            return self._answer([self.config.revision])
        self._error()

    def _b_amp_w(self, cmd: Command) -> None:
        self._ok() if cmd.form in ("exec", "set") else self._error()

    def _b_amp_f(self, cmd: Command) -> None:
        if cmd.form not in ("exec", "set"):
            return self._error()
        self._echo = self.config.echo
        self._cmee = self.config.cmee
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

    def _h_cgmi(self, cmd: Command) -> None:
        self._simple(cmd, f'+CGMI: "{self.config.manufacturer}"')

    def _h_cgmm(self, cmd: Command) -> None:
        self._simple(cmd, f'+CGMM: "{self.config.model}"')

    def _h_cgmr(self, cmd: Command) -> None:
        self._simple(cmd, f'+CGMR: "{self.config.revision}"')

    def _h_ver(self, cmd: Command) -> None:
        self._simple(cmd, self.config.revision)

    def _h_cgsn(self, cmd: Command) -> None:
        self._simple(cmd, self.config.imei)

    def _h_cimi(self, cmd: Command) -> None:
        self._simple(cmd, self.config.imsi if self.config.sim_inserted else None)

    def _h_iccid(self, cmd: Command) -> None:
        self._simple(cmd, f"+ICCID: {self.config.iccid}" if self.config.sim_inserted else None)

    def _h_ccid(self, cmd: Command) -> None:
        self._simple(cmd, self.config.iccid if self.config.sim_inserted else None)

    def _h_cpin(self, cmd: Command) -> None:
        if cmd.form == "test":
            return self._ok()
        if cmd.form != "read":
            return self._error()
        if not self.config.sim_inserted:
            return self._cme(10)
        self._answer(["+CPIN: READY"])

    def _h_csdt(self, cmd: Command) -> None:
        if cmd.form == "read":
            return self._answer([f"+CSDT: {self._csdt}"])
        if cmd.form == "test":
            return self._answer(["+CSDT: (0,1)"])
        if cmd.form != "set":
            return self._error()
        args = split_args(cmd.args)
        self._csdt = self._int(args[0].text, 0, 1)
        self._ok()

    def _h_csq(self, cmd: Command) -> None:
        rssi, ber = self.config.csq if self._cfun == 1 else (99, 99)
        self._simple(cmd, f"+CSQ: {rssi},{ber}", "+CSQ: (0-31,99),(0-7,99)")

    def _h_cesq(self, cmd: Command) -> None:
        value = self.config.cesq if self._cfun == 1 else "99,99,255,255,255,255"
        self._simple(
            cmd,
            f"+CESQ: {value}",
            "+CESQ: (0-63,99),(0-7,99),(0-96,255),(0-49,255),(0-34,255),(0-97,255)",
        )

    def _reg(self, cmd: Command, test: str) -> None:
        name = cmd.name
        if cmd.form == "test":
            return self._answer([test])
        if cmd.form == "set":
            args = split_args(cmd.args)
            if len(args) != 1:
                raise ArgError("one value")
            self._reg_n[name] = self._int(args[0].text, 0, 5 if name == "+CEREG" else 3)
            return self._ok()
        if cmd.form != "read":
            return self._error()
        n = self._reg_n[name]
        stat = 1 if self._attached else 0
        cfg = self.config
        if n >= 2 and stat:
            line = f'{name}: {n},{stat},"{cfg.tac}","{cfg.cell_id}",{cfg.act}'
        else:
            line = f"{name}: {n},{stat}"
        self._answer([line])

    def _h_creg(self, cmd: Command) -> None:
        self._reg(cmd, "+CREG:(0,1,2,3)")

    def _h_cereg(self, cmd: Command) -> None:
        self._reg(cmd, "+CEREG: (0,1,2,3,4,5)")

    def _h_cgreg(self, cmd: Command) -> None:
        self._reg(cmd, "+CGREG: (0,1,2)")

    def _h_cgatt(self, cmd: Command) -> None:
        if cmd.form == "test":
            return self._answer(["+CGATT: (0-1)"])
        if cmd.form == "read":
            return self._answer([f"+CGATT: {1 if self._attached else 0}"])
        if cmd.form != "set":
            return self._error()
        args = split_args(cmd.args)
        if len(args) != 1:
            raise ArgError("one value")
        want = self._int(args[0].text, 0, 1)
        if want and not (self._cfun == 1 and self.config.sim_inserted):
            return self._cme(3)
        if not want and self._attached:
            self._ok()
            self._detach()
            return
        if want and not self._attached:
            self._attached = True
            self._pdp = True
        self._ok()

    def _detach(self) -> None:
        self._attached = False
        self._urc("+CGEV: ME DETACH")
        for cid, state in self._sapbr_state.items():
            if state == "open":
                self._sapbr_state[cid] = "lost"
        self._http_abort()
        self._mq_network_lost()

    def _h_cgdcont(self, cmd: Command) -> None:
        if cmd.form == "test":
            return self._answer(['+CGDCONT: (1-15),"IP",,,(0-2),(0-4)'])
        if cmd.form == "read":
            lines = []
            for cid in sorted(self._cgdcont):
                pdp_type, apn = self._cgdcont[cid]
                ip = self.config.ip if cid == 1 and self._pdp and self._attached else "0.0.0.0"
                line = f'+CGDCONT: {cid},"{pdp_type}","{apn}","{ip}"'
                if self.config.cgdcont_fields == 6:
                    line += ",0,0"
                lines.append(line)
            return self._answer(["\r\n".join(lines)])
        if cmd.form != "set":
            return self._error()
        args = split_args(cmd.args)
        cid = self._int(args[0].text, 1, 15)
        if len(args) == 1:
            self._cgdcont.pop(cid, None)
            return self._ok()
        pdp_type = args[1].text.upper()
        if pdp_type not in ("IP", "IPV6", "IPV4V6"):
            raise ArgError("PDP type")
        apn = args[2].text if len(args) > 2 else ""
        self._cgdcont[cid] = (pdp_type, apn)
        self._ok()

    def _h_cops(self, cmd: Command) -> None:
        cfg = self.config
        if cmd.form == "test":
            return self._answer(
                [
                    f'+COPS: (2,"{cfg.operator_long}","{cfg.operator_short}",'
                    f'"{cfg.operator_numeric}",{cfg.act}),,(0-4),(0-2)'
                ]
            )
        if cmd.form == "read":
            if not self._attached:
                return self._answer(["+COPS: 0"])
            name = {0: cfg.operator_long, 1: cfg.operator_short, 2: cfg.operator_numeric}
            return self._answer(
                [f'+COPS: 0,{self._cops_format},"{name[self._cops_format]}",{cfg.act}']
            )
        if cmd.form != "set":
            return self._error()
        args = split_args(cmd.args)
        mode = self._int(args[0].text, 0, 4)
        if mode == 3:
            if len(args) < 2:
                raise ArgError("format")
            self._cops_format = self._int(args[1].text, 0, 2)
        self._ok()

    def _h_cfun(self, cmd: Command) -> None:
        if cmd.form == "test":
            return self._answer(["+CFUN: (0,1,4),(0,1)"])
        if cmd.form == "read":
            return self._answer([f"+CFUN: {self._cfun}"])
        if cmd.form != "set":
            return self._error()
        args = split_args(cmd.args)
        if len(args) not in (1, 2):
            raise ArgError("CFUN=<fun>[,<rst>]")
        fun = self._int(args[0].text, 0, 4)
        if fun not in (0, 1, 4):
            raise ArgError("fun")
        rst = self._int(args[1].text, 0, 1) if len(args) == 2 else 0
        if rst:
            return self._h_reset(Command("+RESET", "exec"))
        if fun == self._cfun or (fun != 1 and self._cfun != 1):
            self._cfun = fun
            return self._ok()
        self._cfun = fun
        self._ok()
        if fun == 1:
            if self.config.sim_inserted:
                self._start_timer("register", self.config.register_seconds)
            return
        self._cancel_timer("register")
        if self._attached:
            self._detach()
        self._pdp = False

    def _h_reset(self, cmd: Command) -> None:
        if cmd.form == "test":
            return self._ok()
        if cmd.form != "exec":
            return self._error()
        self._ok()
        self._close_links()
        for name in list(self._timers):
            self._cancel_timer(name)
        self._mode = "rebooting"
        self._start_timer("reboot", self.config.reboot_seconds)

    def _h_cmee(self, cmd: Command) -> None:
        self._int_setting(cmd, "_cmee", 0, 2, "+CMEE: (0-2)", "+CMEE: ")

    def _h_ipr(self, cmd: Command) -> None:
        rates = (0, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
        if cmd.form == "test":
            return self._answer([f"+IPR: ({','.join(map(str, rates))})"])
        if cmd.form == "read":
            return self._answer([f"+IPR: {self._ipr}"])
        if cmd.form != "set":
            return self._error()
        args = split_args(cmd.args)
        rate = self._int(args[0].text, 0, 3000000)
        if rate not in rates:
            raise ArgError("rate")
        self._ipr = rate
        self._ok()

    # ------------------------------------------------------------------ bearer (SAPBR)

    def _h_sapbr(self, cmd: Command) -> None:
        if cmd.form == "test":
            return self._answer(['+SAPBR: (0-4),(1-3),"ConParamTag","ConParamValue"'])
        if cmd.form != "set":
            return self._error()
        args = split_args(cmd.args)
        if len(args) < 2:
            raise ArgError("SAPBR=<cmd>,<cid>")
        op = self._int(args[0].text, 0, 4)
        cid = self._int(args[1].text, 1, 3)
        if op == 3:
            if len(args) != 4:
                raise ArgError("SAPBR=3,<cid>,<tag>,<value>")
            tag = args[2].text.upper()
            value = args[3].text
            if tag not in self._sapbr_params[cid] or len(value) > 50:
                raise ArgError("tag")
            if tag == "RATE":
                value = str(self._int(value, 0, 3))
            self._sapbr_params[cid][tag] = value
            return self._ok()
        if len(args) != 2:
            raise ArgError("extra arguments")
        state = self._sapbr_state[cid]
        if op == 1:
            if not self._network_ready():
                return self._cme(3)
            self._sapbr_state[cid] = "open"
            return self._ok()
        if op == 0:
            if state != "open":
                return self._cme(3)
            self._sapbr_state[cid] = "closed"
            return self._ok()
        if op == 2:
            if state == "open" and self._network_ready():
                ip = self.config.ip
                if self.config.sapbr_ip_style == "padded":
                    shown = ".".join(f"{int(o):03d}" for o in ip.split("."))
                else:
                    shown = f'"{ip}"'
                return self._answer([f"+SAPBR: {cid},1,{shown}"])
            shown = '"0.0.0.0"' if self.config.sapbr_ip_style == "quoted" else "000.000.000.000"
            return self._answer([f"+SAPBR: {cid},3,{shown}"])
        params = self._sapbr_params[cid]
        lines = ["+SAPBR:"] + [f"{k}: {v}" for k, v in params.items()]
        self._answer(["\r\n".join(lines)])
