"""HTTP part of the simulated firmware: HTTPINIT/TERM/PARA/DATA/ACTION/READ/HEAD/SSL.

A mixin of :class:`airlab.sim.firmware.Firmware` (it uses the firmware's output
helpers and state); see the firmware module docstring for the behaviour choices.  The
service's state (off, idle, a request in flight) is the table of
:mod:`~airlab.sim.firmware_http_states`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airlab.sim.actions import CloseLink, HttpRequest, HttpResult
from airlab.sim.cmdline import ArgError, Command, split_args
from airlab.sim.firmware_base import _utf8
from airlab.sim.firmware_http_states import (
    HTTP_TRANSITIONS,
    Bearer,
    Http,
    HttpEvent,
    transition,
)

if TYPE_CHECKING:
    from airlab.sim.firmware_base import _Base
else:
    _Base = object

__all__ = ["HttpMixin"]

_METHODS = {0: "GET", 1: "POST", 2: "HEAD"}

#: HTTPPARA tags and their defaults, in the order AT+HTTPPARA? prints them
_PARA_DEFAULTS: dict[str, str] = {
    "CID": "1",
    "URL": "",
    "UA": "AM_MODULE",
    "PROIP": "0.0.0.0",
    "PROPORT": "0",
    "REDIR": "0",
    "BREAK": "0",
    "BREAKEND": "0",
    "TIMEOUT": "120",
    "CONTENT": "",
    "USERDATA": "",
}
_INT_TAGS = {
    "CID": (1, 3),
    "PROPORT": (0, 65535),
    "REDIR": (0, 1),
    "BREAK": (0, 2**31 - 1),
    "BREAKEND": (0, 2**31 - 1),
    "TIMEOUT": (30, 1000),
}


def _decode_userdata(value: str) -> str:
    r"""USERDATA: literal ``\r\n`` separates headers, ``\22`` is a quote."""
    return value.replace("\\r\\n", "\r\n").replace("\\22", '"')


def _header(line: str) -> tuple[str, str] | None:
    name, sep, value = line.partition(":")
    if not sep or not name.strip():
        return None
    return name.strip(), value.strip()


class HttpMixin(_Base):
    """HTTP commands and their network events."""

    def _http_reset(self) -> None:
        """Power-on: no HTTP service, every setting at its default."""
        self._http_state = Http.OFF  # moved only by _http_to (HTTP_TRANSITIONS)
        self._http_method = 0  # the method of the request in flight (Http.ACTION)
        self._http_clear()

    def _http_clear(self) -> None:
        """HTTPINIT / HTTPTERM: parameters, data and response back to their defaults."""
        self._http_para: dict[str, str] = dict(_PARA_DEFAULTS)
        self._http_user_defined: list[str] = []
        self._http_data = b""
        self._http_ssl = 0
        self._http_resp: tuple[int, int, bytes, tuple[tuple[str, str], ...]] | None = None
        self._hd_size = 0
        self._hd_buf = bytearray()

    def _http_to(self, event: HttpEvent) -> None:
        """Move the HTTP service by its table (an illegal move raises: a bug)."""
        self._http_state = transition(HTTP_TRANSITIONS, self._http_state, event)

    def _http_off(self) -> bool:
        """No HTTPINIT (or HTTPTERM since): the other HTTP commands answer ERROR."""
        return self._http_state is Http.OFF

    # ------------------------------------------------------------------ commands

    def _h_httpinit(self, cmd: Command) -> None:
        if not self._exec(cmd, self._http_off()):
            return
        self._http_clear()
        self._http_to(HttpEvent.INIT)
        self._ok()

    def _h_httpterm(self, cmd: Command) -> None:
        if not self._exec(cmd, not self._http_off()):
            return
        if self._http_state is Http.ACTION:
            self._act(CloseLink("http"))
        self._http_to(HttpEvent.TERM)
        self._http_clear()
        self._ok()

    def _h_httppara(self, cmd: Command) -> None:
        if cmd.form == "test":
            return self._answer(['+HTTPPARA: "HTTPParamTag","HTTPParamValue"'])
        if cmd.form == "read":
            if self._http_off():
                return self._error()
            lines = ["+HTTPPARA: "] + [f"{k}: {v}" for k, v in self._http_para.items()]
            return self._answer(["\r\n".join(lines)])
        if cmd.form != "set" or self._http_off():
            return self._error()
        text = cmd.args
        first = split_args(text.split(",", 1)[0]) if "," in text else None
        if first is None or len(first) != 1:
            raise ArgError("HTTPPARA needs <tag>,<value>")
        tag = first[0].text.upper()
        rest = text.split(",", 1)[1]
        if rest.strip(" ").startswith('"'):
            args = split_args(rest)
            if len(args) != 1:
                raise ArgError("one value")
            value = args[0].text
        else:
            value = rest.strip(" ")
        if tag == "USER_DEFINED":
            if value == "":
                self._http_user_defined.clear()
            else:
                self._http_user_defined.append(value)
            return self._ok()
        if tag not in _PARA_DEFAULTS:
            raise ArgError("unknown tag")
        if tag in _INT_TAGS:
            lo, hi = _INT_TAGS[tag]
            value = str(self._int(value, lo, hi))
        elif tag == "URL" and len(value) > 500:
            raise ArgError("URL too long")
        self._http_para[tag] = value
        self._ok()

    def _h_httpssl(self, cmd: Command) -> None:
        self._int_setting(cmd, "_http_ssl", 0, 1, "+HTTPSSL: (0-1)", "+HTTPSSL: ")

    def _h_httpdata(self, cmd: Command) -> None:
        test = f"+HTTPDATA: (0-{self.config.httpdata_max}),(1000-120000)"
        args = self._set_args(cmd, test, {2})  # <size>,<time>
        if args is None:
            return
        if self._http_off():
            return self._error()
        size = self._int(args[0].text, 0, self.config.httpdata_max)
        if size == 0:
            self._http_data = b""
            return self._ok()
        time_ms = self._int(args[1].text, 1000, 120000)
        self._hd_size = size
        self._hd_buf = bytearray()
        self._mode = "httpdata"
        self._send(b"\r\nDOWNLOAD\r\n")
        self._start_timer("httpdata", time_ms / 1000)

    def _feed_httpdata(self, data: bytes, pos: int) -> int:
        take = min(self._hd_size - len(self._hd_buf), len(data) - pos)
        self._hd_buf += data[pos : pos + take]
        pos += take
        if len(self._hd_buf) >= self._hd_size:
            self._cancel_timer("httpdata")
            self._http_data = bytes(self._hd_buf)
            self._hd_buf = bytearray()
            self._mode = "cmd"
            self._ok()
        return pos

    def _httpdata_timeout(self) -> None:
        if self._mode != "httpdata":
            return
        self._mode = "cmd"
        if self.config.httpdata_short == "keep":
            self._http_data = bytes(self._hd_buf)
            self._ok()
        else:
            self._error()
        self._hd_buf = bytearray()

    def _h_httpaction(self, cmd: Command) -> None:
        args = self._set_args(cmd, "+HTTPACTION: (0-2)", {1})  # <method>
        if args is None:
            return
        if self._http_off():
            return self._error()
        method = self._int(args[0].text, 0, 2)
        if self._http_state is Http.ACTION:
            if self.config.httpaction_busy == "error":
                return self._error()
            self._ok()
            return self._urc(f"+HTTPACTION: {method},604,0")
        url = self._http_para["URL"]
        if not url:
            return self._error()
        self._ok()
        if not self._network_ready() or not self._http_bearer_open():
            return self._urc(f"+HTTPACTION: {method},601,0")
        if self._http_ssl and "://" not in url:
            url = "https://" + url
        self._http_to(HttpEvent.ACTION)
        self._http_method = method
        self._http_resp = None
        self._act(self._http_request(method, url))

    def _http_bearer_open(self) -> bool:
        """The bearer of HTTPPARA "CID" is open (AT+SAPBR=1,<cid>, not lost since)."""
        if self.config.http_bearer == "ignored":
            return True
        return self._sapbr_state.get(int(self._http_para["CID"])) is Bearer.OPEN

    def _http_request(self, method: int, url: str) -> HttpRequest:
        p = self._http_para
        headers: list[tuple[str, str]] = []
        if p["CONTENT"]:
            headers.append(("Content-Type", p["CONTENT"]))
        lines = list(self._http_user_defined)
        if p["USERDATA"]:
            lines += _decode_userdata(p["USERDATA"]).split("\r\n")
        for line in lines:
            h = _header(line)
            if h is not None:
                headers.append(h)
        brk, brk_end = int(p["BREAK"]), int(p["BREAKEND"])
        rng = (brk, brk_end) if brk_end > 0 and brk_end >= brk else None
        return HttpRequest(
            method=_METHODS[method],
            url=_utf8(url),
            headers=tuple((_utf8(k), _utf8(v)) for k, v in headers),
            body=self._http_data if method == 1 else b"",
            timeout=float(p["TIMEOUT"]),
            byte_range=rng,
            user_agent=_utf8(p["UA"]),
        )

    def _h_httpread(self, cmd: Command) -> None:
        buf = self.config.http_buffer
        if cmd.form == "test":
            return self._answer([f"+HTTPREAD: (0-{buf - 1}),(1-{buf})"])
        if self._http_off() or cmd.form not in ("exec", "set"):
            return self._error()
        if self._http_resp is not None:
            body = self._http_resp[2]
        elif self._http_data:
            body = self._http_data  # the manual: HTTPREAD also reads back HTTPDATA
        else:
            return self._error()
        if cmd.form == "set":
            args = split_args(cmd.args)
            if len(args) != 2:
                raise ArgError("HTTPREAD=<start>,<size>")
            start = self._int(args[0].text, 0, buf)
            size = self._int(args[1].text, 1, buf)
            body = body[start : start + size]
        self._send(b"\r\n+HTTPREAD: %d\r\n" % len(body) + body + b"\r\nOK\r\n")

    def _h_httphead(self, cmd: Command) -> None:
        if not self._exec(cmd, not self._http_off() and self._http_resp is not None):
            return
        # "+HTTPHEAD: <n>" counts the header lines joined by CRLF: as sent by the server
        # on the Air780EP (S7: 247), lower-cased on the Air780E (T08: 454)
        raw = "\r\n".join(f"{k}: {v}" for k, v in self._http_resp[3])
        if self.config.httphead_case == "lower":
            raw = raw.lower()
        raw = raw.encode("utf-8", "replace")
        self._send(b"\r\n+HTTPHEAD: %d\r\n" % len(raw) + raw + b"\r\nOK\r\n")

    # ------------------------------------------------------------------ network

    def _http_result(self, ev: HttpResult) -> None:
        if self._http_state is not Http.ACTION:
            return
        self._http_to(HttpEvent.RESULT)
        method = self._http_method
        status = ev.status
        if method == 2 or status >= 600:
            stored = b""
            length = 0
        else:
            stored = ev.body[: self.config.http_buffer]
            length = len(ev.body) if self.config.http_len_reported == "full" else len(stored)
        self._http_resp = (method, status, stored, ev.headers)
        self._urc(f"+HTTPACTION: {method},{status},{length}")

    def _http_fail(self, reason: str) -> None:
        """The HTTP link failed or closed before a result: a module code URC."""
        if self._http_state is not Http.ACTION:
            return
        self._http_to(HttpEvent.FAILED)
        method = self._http_method
        code = {"dns": 603, "tls": 605}.get(reason, 601)
        self._http_resp = (method, code, b"", ())
        self._urc(f"+HTTPACTION: {method},{code},0")

    def _http_abort(self) -> None:
        """The network went away while a request was in flight: module code 601."""
        if self._http_state is not Http.ACTION:
            return
        self._http_to(HttpEvent.NETWORK_LOST)
        self._act(CloseLink("http"))
        self._urc(f"+HTTPACTION: {self._http_method},601,0")
