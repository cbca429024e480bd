r"""Basic commands of the simulated firmware: AT, ATE, ATI, AT&W, AT&F, identity queries
(CGMI, CGMM, CGMR, VER, CGSN, CIMI, ICCID, CCID), CPIN, CSDT, CMEE, IPR.

A mixin of :class:`airlab.sim.firmware.Firmware`; see the firmware module docstring for
the behaviour choices.

Example:
    >>> from airlab.sim.firmware import Firmware
    >>> [a.data for a in Firmware().receive(b"ATE0\r")]
    [b'ATE0\r', b'\r\nOK\r\n']
"""

from __future__ import annotations

from airlab.sim.cmdline import ArgError, Command
from airlab.sim.firmware_base import _Base

__all__ = ["BasicMixin"]


class BasicMixin(_Base):
    """Echo, identity, SIM and serial settings."""

    _echo: bool
    _csdt: int
    _ipr: int
    _cfun: int

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
        args = self._set_args(cmd, "+CSDT: (0,1)", None, lambda: f"+CSDT: {self._csdt}")
        if args is not None:
            self._csdt = self._int(args[0].text, 0, 1)
            self._ok()

    def _h_cmee(self, cmd: Command) -> None:
        self._int_setting(cmd, "_cmee", 0, 2, "+CMEE: (0-2)", "+CMEE: ")

    def _h_ipr(self, cmd: Command) -> None:
        rates = (0, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
        test = f"+IPR: ({','.join(map(str, rates))})"
        args = self._set_args(cmd, test, None, lambda: f"+IPR: {self._ipr}")
        if args is None:
            return
        rate = self._int(args[0].text, 0, 3000000)
        if rate not in rates:
            raise ArgError("rate")
        self._ipr = rate
        self._ok()
