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

The table of warnings and :class:`Finding` are in :mod:`airlab.at.pitfalls_table`, the
readers the checks share in :mod:`airlab.at.pitfalls_helpers`.

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
from collections.abc import Callable, Iterable, Sequence

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
from airlab.at.pitfalls_helpers import (
    _HEX,
    _HOST,
    CLOUD_CODES,
    _args,
    _char_report,
    _masked,
    _name,
    _outside_quotes,
    _same_stamp,
    _status_meaning,
    events_with_lines,
)
from airlab.at.pitfalls_helpers import (
    MODULE_CODES as MODULE_CODES,  # re-exported
)
from airlab.at.pitfalls_table import (
    MCONNECT_WINDOW,
    PITFALLS,
    Finding,
    Pitfall,
)
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
