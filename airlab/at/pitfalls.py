"""The tutorial's warnings (切记 / 注意), found in a capture: pure checks over its events.

The vendor tutorial marks its traps in bold: the ``AT+HTTPDATA`` length, copying the
body instead of typing it, the space in ``Content-type: ``, ``AT+MCONNECT`` right after
``CONNECT OK``, one QoS1 publish in flight, ``+CGATT: 1`` before ``AT+SAPBR``, the order
clientId / iotId / iotToken in ``AT+MCONFIG``, the productKey in the ``AT+SSLMIPSTART``
host, and an ``+HTTPACTION`` answering 200.  :func:`check_transcript` walks a
transcript's events (an imported sscom / LLCOM log or a session's own) and returns one
:class:`Finding` per trap it sees, with the event index, the log's line, a one-line
explanation, the tutorial's Chinese warning and how to fix it.

Nothing here reads a file, a clock or the network.  Findings never carry a secret: their
excerpts are redacted with :func:`airlab.at.redact.redact_bytes` plus every token or
password the capture itself reveals (an iotToken typed into the wrong field included).

Example:
    >>> from airlab.at.transcript import Transcript
    >>> t = Transcript()
    >>> t.add("sent", b'AT+HTTPPARA="USER_DEFINED","Content-type:application/json"\\r\\n')
    >>> [f.id for f in check_transcript(t)]
    ['content-type-space']
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from airlab.at.command_table import PUBLISH_COMMANDS
from airlab.at.events import (
    CommandSent,
    DataSent,
    Event,
    FinalResult,
    InfoLine,
    Payload,
    Urc,
)
from airlab.at.parser import split_args
from airlab.at.redact import redact_bytes
from airlab.at.transcript import Transcript

__all__ = [
    "MCONNECT_WINDOW",
    "PITFALLS",
    "Finding",
    "Pitfall",
    "check_events",
    "check_transcript",
    "events_with_lines",
    "format_findings",
]

#: Seconds the server waits for MQTT CONNECT after the TCP/TLS link is up before it
#: drops the link (spec at_commands.md §0 item 5: 5 s, ThingsCloud; the module then
#: prints ``CLOSED``).
MCONNECT_WINDOW = 5.0


@dataclass(frozen=True, slots=True)
class Pitfall:
    """One of the tutorial's warnings: ``id``, English ``title``, the tutorial's own
    Chinese words (``warning_zh``), the tutorial ``step`` it sits at, and the ``fix``."""

    id: str
    title: str
    warning_zh: str
    step: str
    fix: str


PITFALLS: dict[str, Pitfall] = {
    p.id: p
    for p in (
        Pitfall(
            "httpdata-length",
            "AT+HTTPDATA length differs from the body's byte count",
            "注意这个112是DOWNLOAD参数的数据长度(以字节为单位),实际使用时,要根据自己的数据长度进行修改,切记!!!",
            "一机一密AT HTTP鉴权连接, step 5 (also 一型一密, step 5: 120)",
            "count the body's bytes (len(body.encode())) and put that number in "
            "AT+HTTPDATA=<bytes>,20000; the CR LF sscom adds after the body is not counted",
        ),
        Pitfall(
            "typed-not-copied",
            "a character typed by hand that the module or the cloud reads differently",
            "注意最好自己复制这串数据,然后修改具体的值,不要全部手动输入,否则很容易出问题,切记!!!",
            "一机一密AT HTTP鉴权连接, step 6 (and every command line)",
            "copy the line from the tutorial (or the signing calculator) and change only the "
            "values; switch the input method to English (半角) so commas, quotes and colons "
            "are ASCII, and remove stray spaces",
        ),
        Pitfall(
            "content-type-space",
            "the Content-type header lacks the space after its colon",
            '注意"Content-type: " 后面有一个空格',
            "一机一密AT HTTP鉴权连接, step 4 (also 一型一密, step 4)",
            'write AT+HTTPPARA="USER_DEFINED","Content-type: application/x-www-form-urlencoded" '
            "(one space after the colon)",
        ),
        Pitfall(
            "mconnect-late",
            "AT+MCONNECT did not follow CONNECT OK promptly",
            "注意,收到CONNECT OK后立刻发送指令建立会话,不然会被踢,一定注意!!!",
            "一机一密AT HTTP鉴权连接, step 11 (also AT直连MQTT, step 3)",
            "send AT+MCONNECT=1,120 as soon as CONNECT OK arrives (prepare it beforehand); "
            "after CLOSED, AT+MIPCLOSE, AT+SSLMIPSTART again, then MCONNECT at once",
        ),
        Pitfall(
            "qos1-in-flight",
            "a second QoS1 AT+MPUB before the first one's PUBACK",
            "注意,Qos1 消息必须等到PUBACK返回,才能发下一条消息",
            "发布与订阅消息 / 发布Qos1消息",
            "wait for PUBACK (a second or so) before the next QoS1 AT+MPUB; resend the "
            "refused message afterwards",
        ),
        Pitfall(
            "cgatt-before-sapbr",
            "AT+SAPBR sent before the module answered +CGATT: 1",
            "注意,先发送AT+CGATT?查询是否附着上GPRS数据网络,"
            "返回+CGATT: 1后,才能执行下面的三个 AT指令。",
            "一型一密AT方式连接, step 1 (also 一机一密 HTTP, step 1)",
            "ask AT+CGATT? (every second or two) until it answers +CGATT: 1, then the three "
            "AT+SAPBR commands",
        ),
        Pitfall(
            "mconfig-order",
            "AT+MCONFIG fields in the wrong order",
            "注意,第一个值为clientId,第二个值为iotId,第三个值为iotToken"
            " (iotId的值为MQTT client的用户名,iotToken的值为MQTT client的密码)",
            "一机一密AT HTTP鉴权连接, steps 9-10 "
            "(AT直连MQTT: clientId|…|, deviceName&productKey, sign)",
            'AT+MCONFIG="<clientId>","<iotId>","<iotToken>" after HTTPS auth; '
            'AT+MCONFIG="<clientId>|securemode=3,signmethod=hmacmd5|","<deviceName>&<productKey>",'
            '"<sign>" for direct MQTT',
        ),
        Pitfall(
            "mqtt-host",
            "the MQTT host does not carry the device's productKey",
            "注意,第一个参数需要根据实际项目productKey修改",
            "一机一密AT直连MQTT, step 2",
            'AT+SSLMIPSTART="<productKey>.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883 with your '
            "own productKey",
        ),
        Pitfall(
            "httpaction-status",
            "the HTTPS request did not succeed (+HTTPACTION status or the reply's code is not 200)",
            "HTTPACTION的信息上报,正常的话会回复状态码200",
            "一机一密AT HTTP鉴权连接, steps 7-8 (also 一型一密, steps 7-8)",
            "read the body with AT+HTTPREAD: its code and message say what the cloud refused "
            "(see the explanation); fix that and send AT+HTTPACTION=1 again",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One warning of the tutorial seen in a capture.

    ``id``: the :data:`PITFALLS` key; ``index``: the event's index in the transcript's
    events; ``line``: the line of the log it came from (``None`` when unknown);
    ``explanation``: one line of English saying what happened; ``warning_zh``: the
    tutorial's Chinese warning; ``fix``: what to do; ``excerpt``: the offending command
    or line, secrets masked.

    >>> f = Finding("mqtt-host", 3, 12, "host of another product", "注意…", "use yours", "AT+X")
    >>> print(f.title)
    the MQTT host does not carry the device's productKey
    """

    id: str
    index: int
    line: int | None
    explanation: str
    warning_zh: str
    fix: str
    excerpt: str = ""

    @property
    def title(self) -> str:
        return PITFALLS[self.id].title

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else f"event {self.index}"
        return f"{where}: [{self.id}] {self.explanation}"


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


# ---------------------------------------------------------------------------- the checks


class _Checker:
    def __init__(self, events: Sequence[Event], lines: Sequence[int | None], window: float):
        self.events = events
        self.lines = list(lines) + [None] * (len(events) - len(lines))
        self.window = window
        self.findings: list[Finding] = []
        self.secrets = self._secrets()

    # -- secrets the capture reveals (masked in every excerpt) --

    def _secrets(self) -> list[str]:
        found: set[str] = set()
        for ev in self.events:
            if isinstance(ev, Payload):
                data = _json(ev.data)
                inner = data.get("data") if isinstance(data, dict) else None
                if isinstance(inner, dict):
                    for key in ("iotToken", "deviceSecret", "deviceToken"):
                        v = inner.get(key)
                        if isinstance(v, str) and v and not _masked(v):
                            found.add(v)
            elif isinstance(ev, CommandSent) and _name(ev.line) == "+MCONFIG":
                args = _args(ev.line)
                for v in args[1:3]:
                    if _HEX.fullmatch(v):  # a signature or a token, wherever it was typed
                        found.add(v)
            elif isinstance(ev, DataSent):
                m = re.search(r"(?:^|&)sign=([^&\r\n]+)", ev.text)
                if m:
                    found.add(m.group(1))
        return sorted(found, key=len, reverse=True)

    def excerpt(self, text: str | bytes, limit: int = 160) -> str:
        raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        clean = redact_bytes(raw, self.secrets).decode("utf-8", "replace").strip("\r\n")
        return clean if len(clean) <= limit else clean[: limit - 1] + "…"

    def where(self, index: int) -> str:
        line = self.lines[index] if 0 <= index < len(self.lines) else None
        return f"line {line}" if line is not None else f"event {index}"

    def add(self, pid: str, index: int, explanation: str, excerpt: str | bytes = "") -> None:
        p = PITFALLS[pid]
        self.findings.append(
            Finding(
                pid,
                index,
                self.lines[index] if 0 <= index < len(self.lines) else None,
                explanation,
                p.warning_zh,
                p.fix,
                self.excerpt(excerpt) if excerpt else "",
            )
        )

    # -- one pass --

    def run(self) -> list[Finding]:
        self.check_httpdata()
        self.check_typing()
        self.check_content_type()
        self.check_mconnect()
        self.check_qos1()
        self.check_cgatt()
        self.check_mconfig()
        self.check_host()
        self.check_httpaction()
        self.findings.sort(key=lambda f: (f.index, f.id))
        return self.findings

    def check_httpdata(self) -> None:
        evs = self.events
        for i, ev in enumerate(evs):
            if not (isinstance(ev, CommandSent) and _name(ev.line) == "+HTTPDATA"):
                continue
            args = _args(ev.line)
            if not args or not args[0].isdigit():
                continue
            declared = int(args[0])
            j = next(
                (k for k in range(i + 1, len(evs)) if isinstance(evs[k], DataSent | CommandSent)),
                None,
            )
            if j is None or not isinstance(evs[j], DataSent):
                continue
            data = evs[j]
            typed = data.raw
            # the rest of the typed line, read by the module as a command (a short length)
            for k in range(j + 1, len(evs)):
                nxt = evs[k]
                if not isinstance(nxt, CommandSent):
                    continue
                if _same_stamp(nxt.wall, data.wall) and _same_stamp(nxt.mono, data.mono):
                    typed += nxt.raw if nxt.raw else nxt.line.encode()
                break
            body = re.split(rb"\r\n|\r|\n", typed, maxsplit=1)[0]
            n = len(body)
            if n == declared:
                continue
            if n < declared:
                what = (
                    f"AT+HTTPDATA announced {declared} bytes but the body has {n}: "
                    f"{declared - n} byte(s) too many announced, so the module waits for the "
                    "rest (taking the line end and later input as body) until its timer ends"
                )
            else:
                what = (
                    f"AT+HTTPDATA announced {declared} bytes but the body has {n}: the module "
                    f"kept the first {declared} and read the last {n - declared} byte(s) as a "
                    "command, so the cloud got a cut body"
                )
            self.add("httpdata-length", i, what, ev.line)

    def check_typing(self) -> None:
        for i, ev in enumerate(self.events):
            if isinstance(ev, CommandSent):
                text, is_body = ev.line, False
            elif isinstance(ev, DataSent):
                text, is_body = ev.raw.decode("utf-8", "replace").rstrip("\r\n"), True
            else:
                continue
            problems: list[str] = []
            odd = [ch for ch in dict.fromkeys(text) if not ch.isascii() or ch == "\t"]
            odd = [ch for ch in odd if ch != "\t"] + (["\t"] if "\t" in text else [])
            for ch in odd:
                problems.append("a tab" if ch == "\t" else _char_report(ch))
            stripped = text.strip(" ")
            if text and (text != stripped) and text.strip():
                problems.append("a space at the start or end of the line")
            if not is_body and stripped.upper().startswith("AT"):
                outside = _outside_quotes(stripped)
                if re.match(r"AT\s+[+^]", outside, re.IGNORECASE) or re.search(
                    r"\s[=,]|[=,]\s", outside
                ):
                    problems.append("a space outside the quotes (around AT, '=' or ',')")
            if is_body and " " in text.strip():
                problems.append("a space inside the form body")
            if problems:
                what = (
                    "typed by hand, not copied: "
                    + "; ".join(problems)
                    + " (the module or the cloud reads it differently)"
                )
                self.add("typed-not-copied", i, what, text)

    def check_content_type(self) -> None:
        for i, ev in enumerate(self.events):
            if not (isinstance(ev, CommandSent) and _name(ev.line) == "+HTTPPARA"):
                continue
            args = _args(ev.line)
            if len(args) < 2 or args[0].upper() not in ("USER_DEFINED", "USERDATA"):
                continue
            for header in args[1].split("\\r\\n"):
                m = re.match(r"\s*content[-_ ]?type\s*:(\S)", header, re.IGNORECASE)
                if m:
                    self.add(
                        "content-type-space",
                        i,
                        f"the header is {header.strip()!r}: no space after 'Content-type:' "
                        "(the tutorial's header has one; a strict server or module may not "
                        "read it, and the form body is then not understood)",
                        ev.line,
                    )

    def check_mconnect(self) -> None:
        evs = self.events
        for i, ev in enumerate(evs):
            if not (isinstance(ev, Urc) and ev.name == "CONNECT OK"):
                continue
            closed = None
            for k in range(i + 1, len(evs)):
                e = evs[k]
                if isinstance(e, Urc) and e.name == "CLOSED" and closed is None:
                    closed = k
                if isinstance(e, CommandSent) and _name(e.line) in (
                    "+MCONNECT",
                    "+MIPSTART",
                    "+SSLMIPSTART",
                ):
                    if _name(e.line) != "+MCONNECT":
                        break
                    gap = e.wall - ev.wall
                    if math.isnan(gap):
                        gap = e.mono - ev.mono
                    late = not math.isnan(gap) and gap > self.window
                    if closed is not None:
                        what = (
                            "the server closed the idle link (CLOSED) before AT+MCONNECT"
                            + (f" ({gap:.1f} s after CONNECT OK)" if not math.isnan(gap) else "")
                            + ": MCONNECT on a closed link fails (+CME ERROR: 767)"
                        )
                        self.add("mconnect-late", k, what, e.line)
                    elif late:
                        self.add(
                            "mconnect-late",
                            k,
                            f"AT+MCONNECT came {gap:.1f} s after CONNECT OK, later than the "
                            f"{self.window:g} s the server waits before it drops the link",
                            e.line,
                        )
                    break
            else:
                if closed is not None:
                    self.add(
                        "mconnect-late",
                        closed,
                        "CONNECT OK was never followed by AT+MCONNECT: the server closed the "
                        "idle link (CLOSED)",
                        evs[closed].text,
                    )

    def check_qos1(self) -> None:
        awaiting: list[tuple[int, str]] = []  # commands waiting for their final result
        pending: int | None = None  # index of the QoS1 MPUB waiting for PUBACK
        for i, ev in enumerate(self.events):
            if isinstance(ev, CommandSent):
                name = _name(ev.line)
                qos = None
                if name in PUBLISH_COMMANDS:
                    args = _args(ev.line)
                    qos = int(args[1]) if len(args) > 1 and args[1].isdigit() else None
                if qos and qos > 0:
                    if pending is not None:
                        self.add(
                            "qos1-in-flight",
                            i,
                            f"a QoS{qos} AT+MPUB was sent while the QoS1 publish of "
                            f"{self.where(pending)} still waited for its PUBACK: the module "
                            "refuses it (ERROR) and that message is lost",
                            ev.line,
                        )
                    else:
                        pending = i
                awaiting.append((i, name))
            elif isinstance(ev, FinalResult):
                if awaiting:
                    idx, _ = awaiting.pop(0)
                    if idx == pending and not ev.ok:
                        pending = None
            elif isinstance(ev, Urc) and ev.name in ("PUBACK", "PUBCOMP", "CLOSED"):
                pending = None

    def check_cgatt(self) -> None:
        attached = False
        seen_query = False
        for i, ev in enumerate(self.events):
            if isinstance(ev, InfoLine) and ev.line.replace(" ", "").upper().startswith("+CGATT:"):
                seen_query = True
                attached = ev.line.split(":", 1)[1].strip() == "1"
            elif isinstance(ev, Urc) and ev.name in ("+CGEV",) and "DETACH" in ev.line:
                attached = False
            elif isinstance(ev, CommandSent) and _name(ev.line) == "+SAPBR" and not attached:
                why = (
                    "the last AT+CGATT? answered +CGATT: 0 (not attached)"
                    if seen_query
                    else "AT+CGATT? was never asked"
                )
                self.add(
                    "cgatt-before-sapbr",
                    i,
                    f"AT+SAPBR before +CGATT: 1: {why}; the bearer cannot open until the "
                    "module is attached",
                    ev.line,
                )
                return  # one finding per capture: the rest of the run-up follows from it

    def check_mconfig(self) -> None:
        iot_id = token = None
        for i, ev in enumerate(self.events):
            if isinstance(ev, Payload):
                data = _json(ev.data)
                inner = data.get("data") if isinstance(data, dict) else None
                if isinstance(inner, dict) and "iotId" in inner:
                    iot_id, token = str(inner.get("iotId")), str(inner.get("iotToken", ""))
            if not (isinstance(ev, CommandSent) and _name(ev.line) == "+MCONFIG"):
                continue
            args = _args(ev.line)
            if len(args) < 3:
                continue
            cid, user, pw = args[:3]
            problem = None
            if iot_id is not None:
                tok_like = _token_test(token)
                if user == iot_id and (pw == token or tok_like(pw)):
                    continue
                where = {"clientId (1st)": cid, "user name (2nd)": user, "password (3rd)": pw}
                wrong = []
                for label, v in where.items():
                    if v == iot_id and not label.startswith("user"):
                        wrong.append(f"the iotId is in the {label}")
                    if token and tok_like(v) and not label.startswith("password"):
                        wrong.append(f"the iotToken is in the {label}")
                if wrong:
                    problem = "; ".join(wrong) + ": iotId is the user name, iotToken the password"
            else:
                if "|" in user and "&" in cid:
                    problem = (
                        "the clientId (…|securemode=…|) is in the user name and "
                        "deviceName&productKey in the clientId: clientId comes first"
                    )
                elif "&" in pw and "&" not in user:
                    problem = (
                        "deviceName&productKey is in the password: the user name is the 2nd "
                        "field, the sign the 3rd"
                    )
                elif "|" in pw:
                    problem = "the clientId is in the password: clientId comes first"
                elif (
                    (_HEX.fullmatch(user) or _masked(user))
                    and "&" not in user
                    and ("&" in cid or "|" in cid)
                ):
                    problem = "the sign is in the user name: it is the 3rd field (password)"
            if problem:
                self.add("mconfig-order", i, f"AT+MCONFIG: {problem}", ev.line)

    def check_host(self) -> None:
        product_key = None
        for i, ev in enumerate(self.events):
            if isinstance(ev, DataSent):
                m = re.search(r"(?:^|&)productKey=([^&\r\n]+)", ev.text)
                if m:
                    product_key = m.group(1)
            elif isinstance(ev, CommandSent) and _name(ev.line) == "+MCONFIG":
                args = _args(ev.line)
                if len(args) >= 2 and "&" in args[1]:
                    product_key = args[1].split("&", 1)[1]
            elif isinstance(ev, CommandSent) and _name(ev.line) in ("+SSLMIPSTART", "+MIPSTART"):
                args = _args(ev.line)
                m = _HOST.match(args[0]) if args else None
                if not m or product_key is None:
                    continue
                if m.group(1) != product_key:
                    self.add(
                        "mqtt-host",
                        i,
                        f"the host starts with {m.group(1)!r} but the device's productKey is "
                        f"{product_key!r}: a cloud that checks the TLS server name refuses the "
                        "login (the tutorial's own HTTPS-auth capture does this and still "
                        "logs in: the host only routes, the credentials decide)",
                        ev.line,
                    )

    def check_httpaction(self) -> None:
        evs = self.events
        for i, ev in enumerate(evs):
            if isinstance(ev, Urc) and ev.name == "+HTTPACTION" and len(ev.args) >= 2:
                status = ev.args[1].strip()
                if status.isdigit() and int(status) != 200:
                    code = int(status)
                    self.add(
                        "httpaction-status",
                        i,
                        f"+HTTPACTION status {code}: {_status_meaning(code)}",
                        ev.line,
                    )
            elif isinstance(ev, Payload) and ev.source == "+HTTPREAD":
                data = _json(ev.data)
                if not isinstance(data, dict) or "code" not in data:
                    continue
                reply_code: object = data.get("code")
                if reply_code == 200 or reply_code == "200":
                    continue
                message = str(data.get("message", ""))[:80]
                try:
                    meaning = CLOUD_CODES.get(int(str(reply_code)), "the cloud refused the request")
                except ValueError:
                    meaning = "the cloud refused the request"
                self.add(
                    "httpaction-status",
                    i,
                    f"the reply's code is {reply_code} ({message!r}), not 200: {meaning}",
                    ev.data,
                )


def _token_test(token: str | None) -> Callable[[str], bool]:
    """Is a field the iotToken (as captured, or masked to its length)?"""

    def test(v: str) -> bool:
        return bool(token) and (v == token or (_masked(v) and len(v) == len(token or "")))

    return test


def _json(data: bytes) -> object:
    try:
        return json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        return None


def check_events(
    events: Sequence[Event],
    lines: Sequence[int | None] = (),
    *,
    window: float = MCONNECT_WINDOW,
) -> list[Finding]:
    """The findings in ``events`` (``lines[i]``: the log line of event ``i``, optional).

    ``window``: seconds within which ``AT+MCONNECT`` must follow ``CONNECT OK``.

    >>> from airlab.at.parser import parse_stream
    >>> evs = parse_stream([("sent", b"AT+SAPBR=1,1\\r\\n", 0.0, 0.0)])
    >>> [(f.id, f.index) for f in check_events(evs)]
    [('cgatt-before-sapbr', 0)]
    """
    return _Checker(events, lines, window).run()


def check_transcript(transcript: Transcript, *, window: float = MCONNECT_WINDOW) -> list[Finding]:
    """The findings in a transcript (an imported capture or a session's), in order.

    Each finding's ``line`` is the line of the log it came from.
    """
    events, lines = events_with_lines(transcript)
    return check_events(events, lines, window=window)


def format_findings(findings: Iterable[Finding], *, fixes: bool = True) -> str:
    """Findings as text, one block per finding (English, the tutorial's warning, the fix).

    >>> format_findings([])
    'no warning of the tutorial found'
    """
    blocks = []
    for f in findings:
        lines = [str(f)]
        if f.excerpt:
            lines.append(f"    sent/got: {f.excerpt}")
        lines.append(f"    tutorial: {f.warning_zh}")
        if fixes:
            lines.append(f"    fix:      {f.fix}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks) if blocks else "no warning of the tutorial found"
