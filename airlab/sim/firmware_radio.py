r"""Radio commands of the simulated firmware: signal (CSQ, CESQ), registration (CREG,
CEREG, CGREG), attach (CGATT), PDP contexts (CGDCONT), operator (COPS), CFUN, RESET and
the SAPBR bearer.

A mixin of :class:`airlab.sim.firmware.Firmware`; see the firmware module docstring
(Power and time; Bearer / PDP loss) for the behaviour choices.  Each bearer's state
(closed, open, lost) is the table of :mod:`~airlab.sim.firmware_http_states`.

Example:
    >>> from airlab.sim.firmware import Firmware
    >>> [a.data for a in Firmware().receive(b"AT+CGATT?\r")]
    [b'AT+CGATT?\r', b'\r\n+CGATT: 1\r\n\r\nOK\r\n']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airlab.sim.cmdline import ArgError, Command
from airlab.sim.firmware_base import _Base
from airlab.sim.firmware_http_states import BEARER_TRANSITIONS, Bearer, BearerEvent, transition

__all__ = ["RadioMixin"]


class RadioMixin(_Base):
    """Signal, registration, attach, PDP contexts, operator, power and the bearer."""

    _cfun: int
    _attached: bool
    _pdp: bool
    _reg_n: dict[str, int]
    _cops_format: int
    _cgdcont: dict[int, tuple[str, str]]
    _sapbr_params: dict[int, dict[str, str]]

    if TYPE_CHECKING:  # provided by Firmware and the other mixins

        def _close_links(self) -> None: ...
        def _http_abort(self) -> None: ...
        def _mq_network_lost(self) -> None: ...

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
        args = self._set_args(cmd, test, {1}, lambda: self._reg_read(name))
        if args is not None:
            self._reg_n[name] = self._int(args[0].text, 0, 5 if name == "+CEREG" else 3)
            self._ok()

    def _reg_read(self, name: str) -> str:
        n = self._reg_n[name]
        stat = 1 if self._attached else 0
        cfg = self.config
        if n >= 2 and stat:
            return f'{name}: {n},{stat},"{cfg.tac}","{cfg.cell_id}",{cfg.act}'
        return f"{name}: {n},{stat}"

    def _h_creg(self, cmd: Command) -> None:
        self._reg(cmd, "+CREG:(0,1,2,3)")

    def _h_cereg(self, cmd: Command) -> None:
        self._reg(cmd, "+CEREG: (0,1,2,3,4,5)")

    def _h_cgreg(self, cmd: Command) -> None:
        self._reg(cmd, "+CGREG: (0,1,2)")

    def _h_cgatt(self, cmd: Command) -> None:
        args = self._set_args(cmd, "+CGATT: (0-1)", {1}, lambda: f"+CGATT: {int(self._attached)}")
        if args is None:
            return
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
        self._network_lost(announce_bearers=False)

    def _network_lost(self, *, announce_bearers: bool) -> None:
        """Detached or PDP context lost: every open bearer is lost (``+SAPBR <cid>: DEACT``
        with ``announce_bearers``), a request in flight ends (``+HTTPACTION: m,601,0``),
        the MQTT link follows ``pdp_loss_mqtt``."""
        for cid, state in self._sapbr_state.items():
            if state is Bearer.OPEN:
                self._bearer_to(cid, BearerEvent.NETWORK_LOST)
                if announce_bearers:
                    self._urc(f"+SAPBR {cid}: DEACT")
        self._http_abort()
        self._mq_network_lost()

    def _h_cgdcont(self, cmd: Command) -> None:
        args = self._set_args(cmd, '+CGDCONT: (1-15),"IP",,,(0-2),(0-4)', None, self._cgdcont_read)
        if args is None:
            return
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

    def _cgdcont_read(self) -> str:
        lines = []
        for cid in sorted(self._cgdcont):
            pdp_type, apn = self._cgdcont[cid]
            ip = self.config.ip if cid == 1 and self._pdp and self._attached else "0.0.0.0"
            line = f'+CGDCONT: {cid},"{pdp_type}","{apn}","{ip}"'
            if self.config.cgdcont_fields == 6:
                line += ",0,0"
            lines.append(line)
        return "\r\n".join(lines)

    def _h_cops(self, cmd: Command) -> None:
        cfg = self.config
        test = (
            f'+COPS: (2,"{cfg.operator_long}","{cfg.operator_short}",'
            f'"{cfg.operator_numeric}",{cfg.act}),,(0-4),(0-2)'
        )
        args = self._set_args(cmd, test, None, self._cops_read)
        if args is None:
            return
        mode = self._int(args[0].text, 0, 4)
        if mode == 3:
            if len(args) < 2:
                raise ArgError("format")
            self._cops_format = self._int(args[1].text, 0, 2)
        self._ok()

    def _cops_read(self) -> str:
        if not self._attached:
            return "+COPS: 0"
        cfg = self.config
        name = {0: cfg.operator_long, 1: cfg.operator_short, 2: cfg.operator_numeric}
        return f'+COPS: 0,{self._cops_format},"{name[self._cops_format]}",{cfg.act}'

    def _h_cfun(self, cmd: Command) -> None:
        args = self._set_args(cmd, "+CFUN: (0,1,4),(0,1)", {1, 2}, lambda: f"+CFUN: {self._cfun}")
        if args is None:
            return
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
        if not self._exec(cmd):
            return
        self._ok()
        self._close_links()
        for name in list(self._timers):
            self._cancel_timer(name)
        self._mode = "rebooting"
        self._start_timer("reboot", self.config.reboot_seconds)

    # ------------------------------------------------------------------ bearer (SAPBR)

    def _bearer_to(self, cid: int, event: BearerEvent) -> None:
        """Move the bearer of ``cid`` by its table (an illegal move raises: a bug)."""
        self._sapbr_state[cid] = transition(BEARER_TRANSITIONS, self._sapbr_state[cid], event)

    def _h_sapbr(self, cmd: Command) -> None:
        test = '+SAPBR: (0-4),(1-3),"ConParamTag","ConParamValue"'
        args = self._set_args(cmd, test, {2, 4})  # SAPBR=<cmd>,<cid>; SAPBR=3,<cid>,<tag>,<value>
        if args is None:
            return
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
            self._bearer_to(cid, BearerEvent.OPEN)
            return self._ok()
        if op == 0:
            if state is not Bearer.OPEN:
                return self._cme(3)
            self._bearer_to(cid, BearerEvent.CLOSE)
            return self._ok()
        if op == 2:
            if state is Bearer.OPEN and self._network_ready():
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
