"""The simulated Air780EP AT firmware: a pure interpreter (no I/O, no clock, no threads).

Fed host bytes (:meth:`Firmware.receive`), network events (:meth:`Firmware.network`) and
timer expiries (:meth:`Firmware.timer`), it returns *actions*
(:mod:`airlab.sim.actions`): bytes for the host, requests for the network stack,
timers.  It is *faithful, not friendly*: it answers byte for byte like the module in
``spec/at_commands.md`` and the captures, pitfalls included; guards live in ``session``.

This module holds the public API, the command-line input, the network events and the
power/clock state; the command groups are mixins in their own modules, on the output
helpers of :mod:`~airlab.sim.firmware_base`: :mod:`~airlab.sim.firmware_basic` (echo,
identity, serial settings), :mod:`~airlab.sim.firmware_radio` (registration, attach,
CFUN, RESET, SAPBR), :mod:`~airlab.sim.firmware_http` and :mod:`~airlab.sim.firmware_mqtt`
(whose link and session states are the tables of :mod:`~airlab.sim.firmware_mqtt_states`;
the SAPBR bearers and the HTTP service are those of
:mod:`~airlab.sim.firmware_http_states`).

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
from typing import Any

from airlab.at.command_table import ALONE_COMMANDS
from airlab.sim.actions import (
    Action,
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
    ToHost,
)
from airlab.sim.cmdline import (
    ArgError,
    Command,
    find_at,
    parse_command,
    split_concatenated,
    to_text,
)
from airlab.sim.config import FirmwareConfig
from airlab.sim.firmware_base import _b, _Base
from airlab.sim.firmware_basic import BasicMixin
from airlab.sim.firmware_http import HttpMixin
from airlab.sim.firmware_http_states import Bearer, Http
from airlab.sim.firmware_mqtt import MqttMixin
from airlab.sim.firmware_mqtt_states import Link
from airlab.sim.firmware_radio import RadioMixin

__all__ = ["Firmware", "FirmwareConfig"]

log = logging.getLogger(__name__)

_CR, _LF = 0x0D, 0x0A
_DEFAULT_NOW = _dt.datetime(2024, 7, 22, 3, 0, 0, tzinfo=_dt.UTC)

#: commands that cannot share a line with others (two-phase, data mode, power): the table's
_ALONE = ALONE_COMMANDS


def _line_end(data: bytes, pos: int) -> int:
    """Index just after the next CR or LF at or after ``pos`` (or the end)."""
    ends = [i for i in (data.find(b"\r", pos), data.find(b"\n", pos)) if i >= 0]
    return min(ends) + 1 if ends else len(data)


class Firmware(HttpMixin, MqttMixin, RadioMixin, BasicMixin, _Base):
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
        return self._http_state is Http.ACTION

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
        self._sapbr_state = dict.fromkeys((1, 2, 3), Bearer.CLOSED)
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
        if self._http_state is Http.ACTION:
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

    def _pdp_lost(self) -> None:
        if not (self._cfun == 1 and self._attached):
            return
        if self.config.pdp_loss_cgev:
            self._urc("+CGEV: NW PDN DEACT 1")
        self._network_lost(announce_bearers=True)
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
