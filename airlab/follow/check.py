"""Compare what a student typed with the tutorial, step by step, and say why it differs.

The student types on their own device (a fresh one per lesson run) while the tutorial's
captures used the tutorial's device.  So each typed line is compared with the line
expected *for the student's device, built the tutorial's way* (their DeviceName, their
secret's sign, their iotId/iotToken, their random), and the capture's line is shown
beside it.  Differences that come only from the device (name, sign, token) or from
parts that vary by nature (tokens, iotId, lengths of replies, times) are notes, never
mistakes.  Secrets stay out: an expected signature or token shows as its first four
characters (:func:`~airlab.aliyun.verification.signature_prefix`).

Example:
    >>> from types import SimpleNamespace
    >>> from airlab.at import Direction, parse_stream
    >>> me = SimpleNamespace(product_key="k1hipglLdjU", device_name="869480000000001",
    ...     device_secret="0123456789abcdef0123456789abcdef", product_secret=None,
    ...     region="cn-shanghai")
    >>> host = "a1qsHBbKtmc.iot-as-mqtt.cn-shanghai.aliyuncs.com"
    >>> events = parse_stream([
    ...     (Direction.SENT, f'AT+SSLMIPSTART="{host}",1883\\r\\n'.encode(), 0.0, 0.0),
    ...     (Direction.RECEIVED, b"\\r\\nOK\\r\\n\\r\\nCONNECT OK\\r\\n", 0.1, 0.1)])
    >>> row = follow_events("direct_mqtt", me, events).rows[-1]
    >>> row.verdict.value, row.step.name_zh
    ('differs', '建立连接')
    >>> print(row.why)  # doctest: +ELLIPSIS
    host: a1qsHBbKtmc.iot-as-mqtt... carries the productKey a1qsHBbKtmc, not yours (k1hipglLdjU)...
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from airlab.aliyun.clientid import parse_client_id
from airlab.aliyun.endpoints import (
    DEFAULT_REGION,
    auth_devicename_url,
    mqtt_host,
    register_device_url,
)
from airlab.aliyun.forms import parse_form
from airlab.aliyun.http_auth import http_auth_request
from airlab.aliyun.methods import DEFAULT_SIGN_METHOD, parse_sign_method, wire_sign_method
from airlab.aliyun.mqtt_credentials import direct_mqtt_credentials
from airlab.aliyun.verification import (
    check_devicename_form,
    check_mqtt_connect,
    check_register_form,
    parse_username,
)
from airlab.at.events import Event, Urc
from airlab.at.parser import split_args
from airlab.errors import UsageError
from airlab.follow.tutorial import (
    AWAITED_URCS,
    Method,
    Turn,
    TutorialStep,
    split_turns,
    tutorial_steps,
)

__all__ = [
    "MCONNECT_WINDOW",
    "DeviceLike",
    "Finding",
    "FollowReport",
    "StepCheck",
    "TutorialFollower",
    "Verdict",
    "follow_events",
]

#: Seconds after ``CONNECT OK`` within which the server wants the MQTT CONNECT.
MCONNECT_WINDOW = 5.0

# The tutorial's own values, as its captures hold them (to spot a copied value).
TUTORIAL_PRODUCT_KEY = "k1hipglLdjU"
TUTORIAL_DEVICE_NAME = "868488076506128"
TUTORIAL_SIGNS = ("0f655b12adf519b9a7a2b0a990f398b6", "20558baadb2a0b04847767980f0ee67b")
TUTORIAL_IOT_ID = "2BGmgWFvoXlbi1Er9sk4k1hip0"
TUTORIAL_IOT_TOKEN = "137eb0759ca248b79383a60c0b0e0f80"
OTHER_HOST_KEY = "a1qsHBbKtmc"  # the product whose host the method-1 capture logs in through


class DeviceLike(Protocol):
    """What the checker needs of an identity (``lab.identity`` is one)."""

    product_key: str
    device_name: str
    device_secret: str | None
    product_secret: str | None
    region: str


class Verdict(StrEnum):
    """A step's mark."""

    OK = "ok"  # as the tutorial, for your device
    DIFFERS = "differs"  # a mistake: see why
    MISSING = "missing"  # skipped: a later step was typed
    PENDING = "pending"  # typed, the module has not answered yet
    TODO = "todo"  # not typed yet
    EXTRA = "extra"  # not one of the tutorial's steps

    @property
    def mark(self) -> str:
        return _MARKS[self]


_MARKS = {
    Verdict.OK: "✓ ok",
    Verdict.DIFFERS: "✗ differs",
    Verdict.MISSING: "– missing",
    Verdict.PENDING: "… waiting",
    Verdict.TODO: "· to do",
    Verdict.EXTRA: "+ extra",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation about a step: ``what`` it concerns (``"sign"``, ``"length"``,
    ``"header"``, ``"order"``, ``"host"``, ``"timing"``, ``"result"``, ``"value"``,
    ``"device"``, ``"varies"`` …), the explanation, and whether it is a ``mistake``
    (else a note: an expected difference)."""

    what: str
    text: str
    mistake: bool = True

    def __str__(self) -> str:
        return f"{self.what}: {self.text}"


@dataclass(frozen=True, slots=True)
class StepCheck:
    """One row of the side-by-side table.

    ``step``: the tutorial step (``None`` for an extra command); ``sent`` / ``got``:
    what the student sent and what the module answered (``None`` / ``()`` when not
    typed); ``expected``: the line expected for the student's device, secrets shown as
    their first characters; ``capture_sent`` / ``capture_got``: the tutorial's capture
    at that step; ``findings``: mistakes and notes; ``wall``: when it was sent.
    """

    step: TutorialStep | None
    verdict: Verdict
    sent: str | None = None
    got: tuple[str, ...] = ()
    expected: str | None = None
    findings: tuple[Finding, ...] = ()
    wall: float | None = None

    @property
    def capture_sent(self) -> str | None:
        return self.step.sent if self.step else None

    @property
    def capture_got(self) -> tuple[str, ...]:
        return self.step.replies if self.step else ()

    @property
    def mistakes(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.mistake)

    @property
    def notes(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.mistake)

    @property
    def why(self) -> str:
        """The mistakes, one per line (empty when there are none)."""
        return "\n".join(str(f) for f in self.mistakes)

    @property
    def label(self) -> str:
        """``"3 激活网络 · APN"`` (or ``"extra"``)."""
        if self.step is None:
            return "extra"
        return f"{self.step.index} {self.step.name_zh}"


@dataclass(frozen=True, slots=True)
class FollowReport:
    """The checker's view of a typed session for one method.

    ``rows``: every typed line in order (missing steps inserted where they were
    skipped); ``steps``: one row per tutorial step (its latest attempt, else missing
    or to do).
    """

    method: Method
    rows: tuple[StepCheck, ...]
    steps: tuple[StepCheck, ...]

    @property
    def done(self) -> bool:
        """Every tutorial step typed and ok."""
        return all(s.verdict is Verdict.OK for s in self.steps)

    @property
    def progress(self) -> str:
        """``"5/11 ok"``."""
        ok = sum(s.verdict is Verdict.OK for s in self.steps)
        return f"{ok}/{len(self.steps)} ok"

    def step(self, key_or_index: str | int) -> StepCheck:
        """The step row with this key (its first step of that key) or 1-based index."""
        for row in self.steps:
            assert row.step is not None
            if key_or_index in (row.step.key, row.step.index):
                return row
        raise UsageError("step", f"no step {key_or_index!r} in {self.method.value}")

    def to_text(self, *, notes: bool = False) -> str:
        """The per-step table as text: mark, step, what you sent, why it differs."""
        lines = [f"{self.method.title_zh} ({self.method.title_en}): {self.progress}"]
        for row in self.steps:
            lines.append(f"{row.verdict.mark:10} {row.label}: {row.sent or ''}")
            lines += [f"{'':10}   ✗ {f}" for f in row.mistakes]
            if notes:
                lines += [f"{'':10}   · {f}" for f in row.notes]
        extras = [r for r in self.rows if r.verdict is Verdict.EXTRA]
        for row in extras:
            lines.append(f"{row.verdict.mark:10} {row.sent}")
            lines += [f"{'':10}   {f}" for f in row.findings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


# ---------------------------------------------------------------------------- context


@dataclass
class _Context:
    """What earlier turns established (values of this run, for the next steps)."""

    iot_id: str | None = None
    iot_token: str | None = None
    issued_secret: str | None = None
    random: str | None = None
    announced: int | None = None
    connect_ok: Urc | None = None
    closed_after_connect: bool = False
    qos1_waiting: Turn | None = None  # the latest QoS1 publish the module took


@dataclass(frozen=True)
class _Options:
    method: Method
    me: DeviceLike
    sign_method: str
    timestamp: bool | None
    window: float


# ---------------------------------------------------------------------------- helpers


def _args(line: str) -> tuple[str, ...]:
    return split_args(line.partition("=")[2]) if "=" in line else ()


def _quoted_args(line: str) -> list[tuple[str, bool]]:
    """(value, was quoted) per argument, split at commas outside quotes."""
    text = line.partition("=")[2]
    out: list[tuple[str, bool]] = []
    for raw in re.findall(r'\s*("(?:[^"]*)"|[^,]*)\s*(?:,|$)', text):
        raw = raw.strip()
        quoted = len(raw) >= 2 and raw[0] == raw[-1] == '"'
        out.append((raw[1:-1] if quoted else raw, quoted))
    while out and out[-1] == ("", False):
        out.pop()
    return out


def _mask(line: str, *secrets: str | None) -> str:
    """``line`` with each secret value shown by its first characters only."""
    for value in secrets:
        if value:
            line = line.replace(value, f"{value[:4]}…")
    return line


def _more(n: int) -> str:
    return f"{abs(n)} byte{'s' if abs(n) != 1 else ''} {'more' if n > 0 else 'fewer'}"


def _result_findings(turn: Turn) -> list[Finding]:
    """The module's refusal, with its meaning and what to do."""
    final = turn.final
    if final is None or final.ok:
        return []
    from airlab.session.errors import command_hint

    text = final.text
    meaning = final.meaning
    out = f"the module answered {text}" + (f" ({meaning})" if meaning else "")
    hint = command_hint(turn.sent, final.result, final.code)
    if hint:
        out += f": {hint}"
    return [Finding("result", out)]


def _copied(text: str, me: DeviceLike) -> list[Finding]:
    """Values copied from the tutorial instead of this device's own."""
    out = []
    if TUTORIAL_DEVICE_NAME in text and me.device_name != TUTORIAL_DEVICE_NAME:
        out.append(
            Finding(
                "device",
                f"{TUTORIAL_DEVICE_NAME} is the tutorial's DeviceName: type your own, "
                f"{me.device_name} (lab.identity.device_name)",
            )
        )
    if any(s in text.lower() for s in TUTORIAL_SIGNS) and me.device_name != TUTORIAL_DEVICE_NAME:
        out.append(
            Finding("sign", "that is the tutorial device's sign: compute yours with your secret")
        )
    return out


# ---------------------------------------------------------------------------- expectations


def _expected_body(opts: _Options, ctx: _Context) -> tuple[str, str] | None:
    """(body, its sign) the tutorial's way for this device, or None without a secret."""
    me = opts.me
    if opts.method is Method.REGISTER:
        if not me.product_secret:
            return None
        from airlab.aliyun.dynreg import register_request

        req = register_request(
            me.product_key, me.device_name, me.product_secret, random=ctx.random or "123456"
        )
        return req.body, req.sign
    if not me.device_secret:
        return None
    req = http_auth_request(me.product_key, me.device_name, me.device_secret)
    return req.body, req.sign


def _expected(step: TutorialStep, opts: _Options, ctx: _Context, sent: str | None) -> str | None:
    """The line expected for this device at ``step`` (secrets masked)."""
    me = opts.me
    region = getattr(me, "region", None) or DEFAULT_REGION
    key = step.key
    if key in ("cgatt", "sapbr_contype", "sapbr_apn", "sapbr_open", "httpinit", "header"):
        return step.sent
    if key in ("httpaction", "httpread", "mconnect", "msgset"):
        return step.sent
    if key == "url":
        url = register_device_url(region) if opts.method is Method.REGISTER else (
            auth_devicename_url(region))  # fmt: skip
        quoted = '"URL","' in step.sent
        return 'AT+HTTPPARA="URL",' + (f'"{url}"' if quoted else url)
    if key in ("httpdata", "body"):
        body = _expected_body(opts, ctx)
        if body is None:
            return None
        if key == "httpdata":
            return f"AT+HTTPDATA={len(body[0].encode())},20000"
        return _mask(body[0], body[1])
    if key == "mconfig":
        if opts.method is Method.HTTP_AUTH:
            iot_id = ctx.iot_id or "<iotId from your HTTPREAD>"
            token = ctx.iot_token[:4] + "…" if ctx.iot_token else "<iotToken from your HTTPREAD>"
            return f'AT+MCONFIG="{me.device_name}","{iot_id}","{token}"'
        creds = _expected_direct(opts, ctx, sent)
        if creds is None:
            return None
        return _mask(
            f'AT+MCONFIG="{creds.client_id}","{creds.username}","{creds.password}"',
            creds.password,
        )
    if key == "mipstart":
        return f'AT+SSLMIPSTART="{mqtt_host(me.product_key, region)}",1883'
    if key in ("mpub0", "mpub1", "msub"):
        topic = f"/{me.product_key}/{me.device_name}/user/" + ("get" if key == "msub" else "update")
        return step.sent.replace(
            step.sent.split('"')[1], topic
        )  # same qos, retain and message as the capture
    return step.sent


def _secret_for_login(opts: _Options, ctx: _Context) -> str | None:
    if opts.method is Method.REGISTER and ctx.issued_secret:
        return ctx.issued_secret
    return opts.me.device_secret


def _expected_direct(opts: _Options, ctx: _Context, sent: str | None):
    """Direct-MQTT credentials for this device (timestamp: the one the student sent
    when the step allows one)."""
    secret = _secret_for_login(opts, ctx)
    if not secret:
        return None
    ts = None
    if sent is not None and opts.timestamp is not False:
        args = _args(sent)
        if args:
            ts = parse_client_id(args[0]).timestamp
            if ts is not None and not ts.isdigit():
                ts = None
    try:
        return direct_mqtt_credentials(
            opts.me.product_key,
            opts.me.device_name,
            secret,
            sign_method=opts.sign_method,
            timestamp=ts,
        )
    except UsageError:
        return None


# ---------------------------------------------------------------------------- diagnosis


def _diagnose(
    step: TutorialStep, turn: Turn, opts: _Options, ctx: _Context, following: Turn | None
) -> list[Finding]:
    fn = _DIAGNOSE.get(step.key)
    return fn(step, turn, opts, ctx, following) if fn else []


def _d_cgatt(step, turn, opts, ctx, following) -> list[Finding]:
    if any(t.startswith("+CGATT: 0") for t in turn.reply_texts):
        return [
            Finding(
                "result",
                "+CGATT: 0: not attached to the packet network yet; ask again until it "
                "answers +CGATT: 1 before the SAPBR commands (注意)",
            )
        ]
    return []


def _d_apn(step, turn, opts, ctx, following) -> list[Finding]:
    args = _args(turn.sent)
    if len(args) > 3 and args[3] != "CMIOT":
        return [
            Finding(
                "value",
                f"APN {args[3]!r}: the tutorial's SIM uses CMIOT (China Mobile IoT); another "
                "SIM may need its own APN",
                mistake=False,
            )
        ]
    return []


def _d_url(step, turn, opts, ctx, following) -> list[Finding]:
    args = _quoted_args(turn.sent)
    if len(args) < 2:
        return [Finding("value", 'give the URL: AT+HTTPPARA="URL",<url>')]
    url, quoted = args[1]
    region = getattr(opts.me, "region", None) or DEFAULT_REGION
    want = (
        register_device_url(region) if opts.method is Method.REGISTER
        else auth_devicename_url(region)
    )  # fmt: skip
    out = []
    if url.strip() != url:
        out.append(Finding("value", "the URL has spaces around it"))
    got_scheme, _, rest = url.strip().partition("://")
    want_scheme, _, want_rest = want.partition("://")
    got_host, _, got_path = rest.partition("/")
    want_host, _, want_path = want_rest.partition("/")
    if got_scheme.lower() != want_scheme:
        out.append(
            Finding(
                "value", f"the scheme is {got_scheme or '(none)'}: the tutorial posts to https://"
            )
        )
    if got_host.lower() != want_host:
        out.append(
            Finding("host", f"the host is {got_host or '(none)'}: the auth host is {want_host}")
        )
    if got_path != want_path:
        other = (
            "/auth/register/device" if opts.method is not Method.REGISTER else "/auth/devicename"
        )
        why = f" ({other} belongs to the other method)" if "/" + got_path == other else ""
        out.append(
            Finding("value", f"the path is /{got_path}: this method posts to /{want_path}{why}")
        )
    if quoted != ('"URL","' in step.sent):
        out.append(
            Finding(
                "varies",
                "quoted or not, the module takes the URL the same way (the tutorial's two "
                "captures write it both ways)",
                mistake=False,
            )
        )
    return out


_CT = re.compile(r"^\s*content-type\s*:(\s*)(.*)$", re.I | re.S)


def _d_header(step, turn, opts, ctx, following) -> list[Finding]:
    args = _args(turn.sent)
    if len(args) < 2:
        return [Finding("header", 'give the header: AT+HTTPPARA="USER_DEFINED","Content-type: …"')]
    value = args[1]
    m = _CT.match(value)
    if m is None:
        return [Finding("header", f"{value!r} is not a Content-type header")]
    out = []
    if m.group(1) != " ":
        n = len(m.group(1))
        out.append(
            Finding(
                "header",
                "'Content-type:' needs exactly one space after the colon (注意 \"Content-type: \" "
                f"后面有一个空格); yours has {n}",
            )
        )
    if m.group(2).strip().lower() != "application/x-www-form-urlencoded":
        out.append(
            Finding(
                "header",
                f"the type is {m.group(2)!r}: the body is application/x-www-form-urlencoded",
            )
        )
    name = value.split(":", 1)[0].strip()
    capture_name = (_args(step.sent)[1] if len(_args(step.sent)) > 1 else "").split(":", 1)[0]
    if name != capture_name and name.lower() == "content-type":
        out.append(
            Finding(
                "varies",
                f"{name} vs the capture's {capture_name}: header names ignore case (the "
                "tutorial's two captures write both)",
                mistake=False,
            )
        )
    return out


def _intended_body(turn: Turn) -> tuple[str, str]:
    """(the body the student typed, what the module took beyond it)."""
    if turn.surplus:
        return turn.sent + turn.surplus, ""
    head, sep, tail = turn.sent.partition("\r\n")
    if not sep:
        head, sep, tail = turn.sent.partition("\n")
    return head, (sep + tail if sep else "")


def _d_httpdata(step, turn, opts, ctx, following) -> list[Finding]:
    args = _args(turn.sent)
    if not args or not args[0].isdigit():
        return [
            Finding("length", "AT+HTTPDATA=<bytes>,<time ms>: the first value is the body's length")
        ]
    announced = int(args[0])
    out: list[Finding] = []
    if following is not None and following.body and opts.method is Method.REGISTER:
        ctx.random = parse_form(_intended_body(following)[0]).get("random") or ctx.random
    if following is not None and following.body:
        typed, _ = _intended_body(following)
        k = len(typed.encode())
        if k != announced:
            out.append(
                Finding(
                    "length",
                    f"HTTPDATA announced {announced} bytes, the body you then typed has {k} "
                    f"(announced {_more(announced - k)}): announce {k} (切记: the length "
                    "of your own body, in bytes)",
                )
            )
            return out
    body = _expected_body(opts, ctx)
    if body is not None and (following is None or not following.body):
        n = len(body[0].encode())
        if n != announced:
            out.append(
                Finding(
                    "length",
                    f"HTTPDATA announces {announced} bytes; the body for your device has {n} "
                    f"({_more(announced - n)} announced)",
                )
            )
    if len(args) > 1 and args[1].isdigit() and int(args[1]) < 5000:
        out.append(
            Finding(
                "value",
                f"{args[1]} ms to type the body is short: the tutorial gives 20000",
                mistake=False,
            )
        )
    return out


def _d_body(step, turn, opts, ctx, following) -> list[Finding]:
    typed, extra = _intended_body(turn)
    out: list[Finding] = []
    n = ctx.announced
    k = len(typed.encode())
    if turn.surplus:
        out.append(
            Finding(
                "length",
                f"the module kept the announced {len(turn.sent.encode())} bytes; the last "
                f"{len(turn.surplus.encode())} ({turn.surplus[:12]!r}) went to the command "
                f"interpreter: your body has {k} bytes",
            )
        )
    elif extra:
        out.append(
            Finding(
                "length",
                f"the module waited for {n if n is not None else 'more'} bytes and took your "
                f"{k}-byte body, its CR LF and {len(extra.encode()) - 2} byte(s) of what you "
                "typed next: announce the body's own length",
            )
        )
    out += _copied(typed, opts.me)
    params = parse_form(typed)
    me = opts.me
    if params.get("productKey") not in (None, me.product_key):
        out.append(
            Finding(
                "value", f"productKey is {params.get('productKey')!r}: yours is {me.product_key}"
            )
        )
    if opts.method is Method.REGISTER:
        ctx.random = params.get("random") or ctx.random
        if me.product_secret:
            check = check_register_form(params, me.product_secret)
            if not check.ok:
                out.append(Finding("sign", _sign_text(check)))
        if "signMethod" not in params and "signmethod" in params:
            out.append(Finding("value", "the register form names it signMethod (capital M)"))
    else:
        if me.device_secret:
            check = check_devicename_form(params, me.device_secret)
            if not check.ok:
                out.append(Finding("sign", _sign_text(check)))
        order = [k for k in params if k in ("productKey", "sign", "clientId", "deviceName")]
        if order and order != ["productKey", "sign", "clientId", "deviceName"][: len(order)]:
            out.append(
                Finding(
                    "order",
                    "the fields are in another order than the tutorial's (productKey, sign, "
                    "clientId, deviceName): the server does not mind",
                    mistake=False,
                )
            )
    if typed != typed.strip():
        out.append(Finding("value", "the body has spaces or line breaks at its ends"))
    if not out or all(not f.mistake for f in out):
        out.append(
            Finding(
                "device",
                "deviceName, clientId and sign are your device's, so they differ from the "
                "capture's: expected",
                mistake=False,
            )
        )
    return out


def _sign_text(check) -> str:
    text = f"the server would refuse this sign ({check.reason})"
    if check.hint:
        text += f"; what differs: {check.hint}"
    return text


def _d_httpaction(step, turn, opts, ctx, following) -> list[Finding]:
    urc = turn.urc("+HTTPACTION")
    if urc is None:
        return []
    status = urc.args[1] if len(urc.args) > 1 else "?"
    if status != "200":
        meaning = {
            "400": "bad request",
            "401": "refused: the sign or the device",
            "404": "no such path: check the URL",
            "413": "the body is too large",
            "601": "network error: is the bearer open (SAPBR=1,1)?",
            "603": "DNS error",
        }.get(status, "")
        return [
            Finding(
                "result",
                f"HTTPACTION must answer 200; it answered {status}"
                + (f" ({meaning})" if meaning else "")
                + ": check the URL, the header and the body steps",
            )
        ]
    return [
        Finding(
            "varies",
            "the reply's length differs from the capture's: the token and iotId in it vary",
            mistake=False,
        )
    ]


def _d_httpread(step, turn, opts, ctx, following) -> list[Finding]:
    payload = turn.payload
    if payload is None:
        return []
    try:
        reply = json.loads(payload.data.decode("utf-8", "replace"))
    except ValueError:
        return [Finding("result", "the reply is not JSON: was HTTPACTION answered 200?")]
    if not isinstance(reply, dict):
        return [Finding("result", "the reply is not a JSON object")]
    code = reply.get("code")
    if code != 200:
        message = reply.get("message", "")
        return [
            Finding(
                "result",
                f"the cloud answered code {code} ({message}): the body was refused; see the "
                "body step (productKey, deviceName, sign)",
            )
        ]
    data = reply.get("data") if isinstance(reply.get("data"), dict) else {}
    if opts.method is Method.HTTP_AUTH:
        ctx.iot_id = str(data.get("iotId") or "") or None
        ctx.iot_token = str(data.get("iotToken") or "") or None
        return [
            Finding(
                "varies",
                "iotId and iotToken are issued per request: yours differ from the capture's",
                mistake=False,
            )
        ]
    if opts.method is Method.REGISTER:
        secret = str(data.get("deviceSecret") or "") or None
        ctx.issued_secret = secret
        if secret and opts.me.device_secret and secret != opts.me.device_secret:
            return [Finding("result", "the issued deviceSecret is not your device's")]
        return [
            Finding(
                "varies",
                "the deviceSecret issued is your device's (the capture's is the tutorial "
                "device's); log in with it next",
                mistake=False,
            )
        ]
    return []


def _d_mconfig(step, turn, opts, ctx, following) -> list[Finding]:
    args = _args(turn.sent)
    if len(args) != 3:
        return [
            Finding(
                "value",
                f"MCONFIG takes three quoted values (clientId, user name, password); "
                f"you gave {len(args)}",
            )
        ]
    out = _copied(turn.sent, opts.me)
    if opts.method is Method.HTTP_AUTH:
        return out + _d_mconfig_token(args, opts, ctx)
    return out + _d_mconfig_direct(args, opts, ctx)


def _d_mconfig_token(args, opts, ctx) -> list[Finding]:
    cid, user, password = args
    out = []
    if ctx.iot_id is None:
        return [
            Finding(
                "value",
                "no HTTPREAD with an iotId in this run: read the reply first (step 读取请求结果)",
            )
        ]
    if cid == ctx.iot_id or user == opts.me.device_name or password == ctx.iot_id:
        out.append(
            Finding(
                "order",
                "MCONFIG's values are clientId, then iotId (user name), then iotToken "
                "(password) (注意: 第一个值为clientId, 第二个值为iotId, 第三个值为iotToken)",
            )
        )
        return out
    if user == TUTORIAL_IOT_ID or password == TUTORIAL_IOT_TOKEN:
        out.append(
            Finding(
                "value",
                "that is the capture's iotId/iotToken: they are issued per request; use the "
                "ones your HTTPREAD gave",
            )
        )
    elif user != ctx.iot_id:
        out.append(Finding("value", "the user name must be the iotId your HTTPREAD gave"))
    elif password != ctx.iot_token:
        out.append(Finding("value", "the password must be the iotToken your HTTPREAD gave"))
    if cid != opts.me.device_name and not out:
        out.append(
            Finding(
                "value",
                f"the tutorial uses the DeviceName ({opts.me.device_name}) as clientId",
                mistake=False,
            )
        )
    if not out:
        out.append(
            Finding(
                "varies",
                "iotId and iotToken are this run's: they differ from the capture's (expected)",
                mistake=False,
            )
        )
    return out


def _d_mconfig_direct(args, opts, ctx) -> list[Finding]:
    cid, user, password = args
    me = opts.me
    out: list[Finding] = []
    if "&" in cid and "|" not in cid and "|" in user:
        return [
            Finding(
                "order",
                "MCONFIG's values are clientId (with its |securemode…| block), then the user "
                "name deviceName&productKey, then the password",
            )
        ]
    parsed_user = parse_username(user)
    if user == f"{me.product_key}&{me.device_name}":
        out.append(
            Finding("order", "the user name is deviceName&productKey: yours has them swapped")
        )
    elif parsed_user.reason:
        out.append(Finding("value", parsed_user.reason))
    parsed = parse_client_id(cid)
    if parsed.reason:
        out.append(Finding("value", f"client id: {parsed.reason}"))
    if parsed.secure_mode not in (None, 3) or (parsed.has_block and parsed.secure_mode is None):
        out.append(
            Finding("value", "securemode=3: the tutorial logs in with securemode=3 over TLS")
        )
    wanted = parse_sign_method(opts.sign_method)
    used = parsed.sign_method if parsed.has_block else None
    if used is None and parsed.sign_method_text is not None:
        out.append(Finding("value", f"unknown sign method {parsed.sign_method_text!r}"))
    elif used is not None and used is not wanted:
        out.append(
            Finding(
                "sign method",
                f"this step asks for {wanted.value}; your client id says {used.value}",
            )
        )
    if opts.timestamp is True and parsed.timestamp is None:
        out.append(Finding("value", "this step asks for a timestamp in the client id"))
    if opts.timestamp is False and parsed.timestamp is not None:
        out.append(Finding("value", "this step signs without a timestamp"))
    secret = _secret_for_login(opts, ctx)
    if secret and not parsed.reason and not parsed_user.reason:
        check = check_mqtt_connect(cid, user, password, secret)
        if not check.ok:
            out.append(Finding("sign", _sign_text(check)))
    if (
        parsed_user.device_name
        and parsed_user.device_name != me.device_name
        and not any(f.what in ("device", "order") for f in out)
    ):
        out.append(Finding("device", f"the user name's DeviceName is not yours ({me.device_name})"))
    if not any(f.mistake for f in out):
        out.append(
            Finding(
                "device",
                "client id, user name and sign are your device's, so they differ from the "
                "capture's: expected",
                mistake=False,
            )
        )
    return out


def _d_mipstart(step, turn, opts, ctx, following) -> list[Finding]:
    me = opts.me
    out: list[Finding] = []
    if turn.sent.strip().upper().startswith("AT+MIPSTART"):
        out.append(
            Finding(
                "value",
                "AT+MIPSTART opens plain TCP: the tutorial opens TLS with AT+SSLMIPSTART "
                "(securemode=3 over TLS on port 1883)",
            )
        )
    args = _args(turn.sent)
    host = args[0] if args else ""
    port = args[1] if len(args) > 1 else ""
    region = getattr(me, "region", None) or DEFAULT_REGION
    want = mqtt_host(me.product_key, region)
    if host.lower() != want.lower():
        key = host.split(".", 1)[0]
        if key and host.lower().endswith(f".iot-as-mqtt.{region}.aliyuncs.com"):
            text = f"{host} carries the productKey {key}, not yours ({me.product_key})"
            if key == OTHER_HOST_KEY:
                text += (
                    " … as the method-1 capture does, and its login worked there (the token "
                    "decides); the tutorial still says 切记: your own productKey's host"
                )
            text += f": {want}"
            out.append(Finding("host", text))
        else:
            out.append(Finding("host", f"the MQTT host is {want} (your productKey first)"))
    if port != "1883":
        out.append(Finding("value", f"port {port or '(none)'}: the tutorial connects to 1883"))
    fail = turn.urc("CONNECT FAIL")
    if fail is not None:
        out.append(
            Finding("result", "CONNECT FAIL: the link did not open; check the host and port")
        )
    if turn.urc("CONNECT OK") is not None:
        ctx.connect_ok = turn.urc("CONNECT OK")
        ctx.closed_after_connect = False
    if step.sent != _expected(step, opts, ctx, None) and not out:
        out.append(
            Finding(
                "host",
                f"the capture's host {_args(step.sent)[0]} belongs to another product; yours "
                "carries your productKey (切记)",
                mistake=False,
            )
        )
    return out


def _d_mconnect(step, turn, opts, ctx, following) -> list[Finding]:
    out: list[Finding] = []
    args = _args(turn.sent)
    if args and args[0] != "1":
        out.append(
            Finding("value", "AT+MCONNECT=1,<keepalive>: the first value is clean session 1")
        )
    if len(args) > 1 and args[1] != "120":
        out.append(Finding("value", f"keepalive {args[1]} s (the tutorial: 120)", mistake=False))
    ok = ctx.connect_ok
    if ok is None:
        out.append(
            Finding(
                "timing",
                "no CONNECT OK before it: open the link (AT+SSLMIPSTART) and wait for "
                "CONNECT OK first",
            )
        )
    else:
        late = turn.wall - ok.wall
        if not math.isnan(late) and late > opts.window:
            text = (
                f"late: MCONNECT came {late:.1f} s after CONNECT OK; the server drops a link "
                f"that sends no login within about {opts.window:g} s (注意: 收到CONNECT OK后"
                "立刻发送指令建立会话)"
            )
            if ctx.closed_after_connect:
                text += "; the module had already reported CLOSED"
            out.append(Finding("timing", text))
        elif ctx.closed_after_connect:
            out.append(Finding("timing", "the link was CLOSED before MCONNECT: open it again"))
    refused = _login_refusal(turn)
    if refused:
        out.append(
            Finding(
                "result",
                "the broker refused the login (" + ", ".join(refused) + "): check the MCONFIG step",
            )
        )
    if ok is not None:
        ctx.connect_ok = None  # one login per link
    return out


def _login_refusal(turn: Turn) -> list[str]:
    """What came after MCONNECT's OK instead of CONNACK OK (ERROR, CLOSED …)."""
    final = turn.final
    if final is None or not final.ok or turn.urc("CONNACK OK") is not None:
        return []
    return [
        r.text
        for r in turn.replies
        if r is not final
        and not (isinstance(r, Urc) and r.name not in ("CLOSED", "ERROR"))
        and r.text.strip()
    ]


def _topic_finding(turn: Turn, step: TutorialStep, opts: _Options) -> list[Finding]:
    args = _args(turn.sent)
    me = opts.me
    suffix = "get" if step.key == "msub" else "update"
    want = f"/{me.product_key}/{me.device_name}/user/{suffix}"
    out = _copied(turn.sent, me)
    topic = args[0] if args else ""
    if topic != want and not out:
        out.append(Finding("value", f"the topic is {topic!r}: yours is {want}"))
    return out


def _d_mpub(step, turn, opts, ctx, following) -> list[Finding]:
    out = _topic_finding(turn, step, opts)
    args = _args(turn.sent)
    if len(args) > 2 and args[2] != "0":
        out.append(
            Finding("value", "retain 1: the tutorial publishes with retain 0", mistake=False)
        )
    if len(args) > 3 and args[3] != "HelloWorld":
        out.append(
            Finding("varies", "your own message (the tutorial's: HelloWorld)", mistake=False)
        )
    if step.key == "mpub1":
        waiting = ctx.qos1_waiting
        puback = waiting.urc("PUBACK") if waiting is not None else None
        if waiting is not None and (puback is None or puback.mono > turn.mono):
            out.append(
                Finding(
                    "timing",
                    "the previous QoS1 publish was still waiting for its PUBACK: one QoS1 in "
                    "flight at a time (注意: Qos1 消息必须等到PUBACK返回,才能发下一条消息)",
                )
            )
        if turn.final is None or turn.final.ok:
            ctx.qos1_waiting = turn  # in flight until its PUBACK (by the stamps)
    return out


def _d_msub(step, turn, opts, ctx, following) -> list[Finding]:
    return _topic_finding(turn, step, opts)


def _d_msgset(step, turn, opts, ctx, following) -> list[Finding]:
    args = _args(turn.sent)
    if args and args[0] == "1":
        return [
            Finding(
                "value",
                "1 is cache mode (messages wait for AT+MQTTMSGGET); the tutorial sets 0 "
                "(printed at once as +MSUB: …)",
            )
        ]
    return []


_DIAGNOSE = {
    "cgatt": _d_cgatt,
    "sapbr_apn": _d_apn,
    "url": _d_url,
    "header": _d_header,
    "httpdata": _d_httpdata,
    "body": _d_body,
    "httpaction": _d_httpaction,
    "httpread": _d_httpread,
    "mconfig": _d_mconfig,
    "mipstart": _d_mipstart,
    "mconnect": _d_mconnect,
    "mpub0": _d_mpub,
    "mpub1": _d_mpub,
    "msub": _d_msub,
    "msgset": _d_msgset,
}


# ---------------------------------------------------------------------------- the checker


def _masked_got(turn: Turn) -> tuple[str, ...]:
    """The replies, a deviceSecret or iotToken in them shown by its first characters."""
    out = []
    for text in turn.reply_texts:
        text = re.sub(r'("(?:deviceSecret|iotToken)"\s*:\s*")([^"]{4})[^"]*(")', r"\1\2…\3", text)
        out.append(text)
    return tuple(out)


def _awaiting(step: TutorialStep, turn: Turn) -> bool:
    """True while the module's answer to ``turn`` is still to come."""
    final = turn.final
    if step.key == "httpdata":
        return final is None and turn.prompt is None
    if final is None:
        return True
    if not final.ok:
        return False
    names = AWAITED_URCS.get(step.key)
    if not names:
        return False
    if step.key == "mconnect" and _login_refusal(turn):
        return False
    return turn.urc(*names) is None


def _check_turn(
    step: TutorialStep,
    turn: Turn,
    opts: _Options,
    ctx: _Context,
    following: Turn | None,
    last: bool,
) -> StepCheck:
    findings = _diagnose(step, turn, opts, ctx, following)
    findings = [*_joined(turn), *_result_findings(turn), *findings]
    waiting = _awaiting(step, turn)
    if waiting and not last:
        names = AWAITED_URCS.get(step.key, ())
        what = names[0] if names and turn.final is not None else "final result"
        findings.append(Finding("result", f"no {what} came before your next command"))
    expected = _expected(step, opts, ctx, turn.sent)
    if step.key == "httpdata":
        args = _args(turn.sent)
        ctx.announced = int(args[0]) if args and args[0].isdigit() else None
    if waiting and last and turn.final is None:
        verdict = Verdict.PENDING  # judged once the module has answered: the why is whole
    elif any(f.mistake for f in findings):
        verdict = Verdict.DIFFERS
    elif waiting and last:
        verdict = Verdict.PENDING
    else:
        verdict = Verdict.OK
    if (
        verdict is Verdict.OK
        and expected is not None
        and step.key not in _FREE_FORM
        and turn.sent.strip() != expected.strip()
    ):
        findings.append(_line_diff(turn.sent, expected))
        verdict = Verdict.DIFFERS
    return StepCheck(
        step,
        verdict,
        turn.joined + turn.sent if not turn.body else _intended_body(turn)[0],
        _masked_got(turn),
        expected,
        tuple(findings),
        turn.wall,
    )


# Steps whose line may differ from the expected one without a mistake (their own
# diagnosis decides): quoting, header case, order of form fields, messages, tokens.
_FREE_FORM = frozenset(
    {
        "url",
        "header",
        "httpdata",
        "body",
        "mconfig",
        "mpub0",
        "mpub1",
        "sapbr_apn",
        "mconnect",
        "mipstart",
    }
)


def _line_diff(sent: str, expected: str) -> Finding:
    a, b = sent.strip(), expected.strip()
    i = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    if a.upper() == b.upper():
        return Finding("value", "differs only in upper/lower case from the expected line")
    yours = a[max(0, i - 8) : i + 8]
    want = b[max(0, i - 8) : i + 8]
    return Finding(
        "value",
        f"differs from the expected line at character {i + 1}: yours '…{yours}…', expected "
        f"'…{want}…'",
    )


def _match(steps: Sequence[TutorialStep], key: str, cursor: int) -> int | None:
    """Index of the step ``key`` names: the next one from ``cursor``, else the latest
    one before (a retry)."""
    for i in range(cursor, len(steps)):
        if steps[i].key == key:
            return i
    for i in range(min(cursor, len(steps)) - 1, -1, -1):
        if steps[i].key == key:
            return i
    return None


def _joined(turn: Turn) -> list[Finding]:
    """The leftover of a body that ran into the next typed line."""
    if not turn.joined:
        return []
    final = turn.final
    took = final is not None and final.ok
    text = (
        f"the {len(turn.joined.encode())} byte(s) {turn.joined[:12]!r} left over from your "
        f"body ran into this line (no CR LF between them): the module read "
        f"{(turn.joined + turn.sent)[:40]!r}"
    )
    text += " and still found the command in it" if took else ": type the command again"
    return [Finding("length", text, mistake=not took)]


def _suggest(text: str, steps: Sequence[TutorialStep], cursor: int) -> list[Finding]:
    import difflib

    out = []
    final_hint = ""
    line = text.strip()
    if not line.upper().startswith("AT"):
        return [
            Finding(
                "value",
                "not an AT command: the module does not answer it (a body goes right after "
                "DOWNLOAD, within HTTPDATA's time)",
            )
        ]
    if cursor < len(steps):
        nxt = steps[cursor]
        name = line.split("=")[0].split("?")[0].upper()
        want = nxt.sent.split("=")[0].split("?")[0].upper()
        if difflib.SequenceMatcher(None, name, want).ratio() > 0.75 and name != want:
            final_hint = f"did you mean {want}? (next step: {nxt.index} {nxt.name_zh})"
    if final_hint:
        out.append(Finding("value", final_hint))
    else:
        out.append(Finding("value", "not one of this method's steps", mistake=False))
    return out


def follow_events(
    method: Method | str,
    me: DeviceLike,
    events: Iterable[Event],
    *,
    sign_method: str | None = None,
    timestamp: bool | None = None,
    steps: Sequence[TutorialStep] | None = None,
    window: float = MCONNECT_WINDOW,
) -> FollowReport:
    """Check typed events against the tutorial's steps for ``method``.

    ``me``: the student's device (``lab.identity``); ``sign_method``: the one the
    direct-MQTT login must use (default hmacmd5, the tutorial's); ``timestamp``: True
    (required), False (forbidden) or None (either); ``steps``: the tutorial's steps
    (default :func:`~airlab.follow.tutorial.tutorial_steps`).
    """
    m = Method(method)
    tsteps = tuple(steps) if steps is not None else tutorial_steps(m)
    opts = _Options(m, me, sign_method or DEFAULT_SIGN_METHOD.value, timestamp, window)
    wire_sign_method(opts.sign_method)
    ctx = _Context()
    turns = split_turns(events)
    rows: list[StepCheck] = []
    latest: dict[int, StepCheck] = {}
    skipped: set[int] = set()
    cursor = 0
    for n, turn in enumerate(turns):
        following = turns[n + 1] if n + 1 < len(turns) else None
        last = following is None or all(t.stray for t in turns[n + 1 :])
        if turn.key is None:
            if turn.stray and turn.sent.strip() == "":
                continue
            finds = _suggest(turn.sent, tsteps, cursor) + _result_findings(turn)
            rows.append(
                StepCheck(
                    None, Verdict.EXTRA, turn.sent, _masked_got(turn), None, tuple(finds), turn.wall
                )
            )
            _track_urcs(turn, ctx)
            continue
        i = _match(tsteps, turn.key, cursor)
        if i is None:
            rows.append(
                StepCheck(
                    None,
                    Verdict.EXTRA,
                    turn.sent,
                    _masked_got(turn),
                    None,
                    (
                        Finding("value", "not one of this method's steps", mistake=False),
                        *_result_findings(turn),
                    ),
                    turn.wall,
                )
            )
            _track_urcs(turn, ctx)
            continue
        for j in range(cursor, i):
            if j not in latest:
                skipped.add(j)
                rows.append(
                    StepCheck(
                        tsteps[j],
                        Verdict.MISSING,
                        expected=_expected(tsteps[j], opts, ctx, None),
                        findings=(_missing(tsteps[j]),),
                    )
                )
        row = _check_turn(tsteps[i], turn, opts, ctx, following, last)
        _track_urcs(turn, ctx)
        rows.append(row)
        latest[i] = row
        skipped.discard(i)
        cursor = max(cursor, i + 1)
    per_step = []
    for j, s in enumerate(tsteps):
        if j in latest:
            per_step.append(latest[j])
        elif j in skipped or j < cursor:
            per_step.append(StepCheck(s, Verdict.MISSING, expected=_expected(s, opts, ctx, None),
                                      findings=(_missing(s),)))  # fmt: skip
        else:
            per_step.append(StepCheck(s, Verdict.TODO, expected=_expected(s, opts, ctx, None)))
    return FollowReport(m, tuple(rows), tuple(per_step))


def _missing(step: TutorialStep) -> Finding:
    why = {
        "cgatt": "ask AT+CGATT? first: the SAPBR commands need +CGATT: 1 (注意)",
        "header": 'the form needs its header: "Content-type: application/x-www-form-urlencoded"',
        "httpread": "read the reply: it holds what the next step needs",
        "mconnect": "log in: send AT+MCONNECT=1,120 right after CONNECT OK",
    }.get(step.key, f"the tutorial sends {step.sent[:40]} here")
    return Finding("missing", f"skipped: {why}")


def _track_urcs(turn: Turn, ctx: _Context) -> None:
    for r in turn.replies:
        if isinstance(r, Urc) and r.name == "CLOSED" and ctx.connect_ok is not None:
            ctx.closed_after_connect = True


class TutorialFollower:
    """Follows a typed session for one method: :meth:`feed` it events (a session's, in
    order) and read :attr:`report`.  Pure: no threads, no clock (the widget
    :class:`~airlab.widgets.follow.FollowTutorial` feeds it live).

    Example:
        >>> from types import SimpleNamespace
        >>> from airlab.at import Direction, parse_stream
        >>> me = SimpleNamespace(product_key="k1hipglLdjU", device_name="869480000000001",
        ...     device_secret="0123456789abcdef0123456789abcdef", product_secret=None,
        ...     region="cn-shanghai")
        >>> f = TutorialFollower("http_auth_then_mqtt", me)
        >>> f.feed(parse_stream([(Direction.SENT, b"AT+CGATT?\\r\\n", 0.0, 0.0),
        ...     (Direction.RECEIVED, b"\\r\\n+CGATT: 1\\r\\n\\r\\nOK\\r\\n", 0.1, 0.1)])).progress
        '1/14 ok'
    """

    def __init__(
        self,
        method: Method | str,
        me: DeviceLike,
        *,
        sign_method: str | None = None,
        timestamp: bool | None = None,
        captures: str | None = None,
        window: float = MCONNECT_WINDOW,
    ) -> None:
        self.method = Method(method)
        self.me = me
        self.sign_method = sign_method
        self.timestamp = timestamp
        self.window = window
        if sign_method is not None:
            parse_sign_method(sign_method)
        self.steps = tutorial_steps(self.method, captures)
        self._events: list[Event] = []
        self._report = follow_events(
            self.method, me, (), sign_method=sign_method, timestamp=timestamp, steps=self.steps,
            window=window,
        )  # fmt: skip

    @property
    def report(self) -> FollowReport:
        """The latest report."""
        return self._report

    @property
    def events(self) -> list[Event]:
        return list(self._events)

    def feed(self, events: Iterable[Event]) -> FollowReport:
        """Add events and recompute the report (a later answer can change a row)."""
        self._events.extend(events)
        self._report = follow_events(
            self.method,
            self.me,
            self._events,
            sign_method=self.sign_method,
            timestamp=self.timestamp,
            steps=self.steps,
            window=self.window,
        )
        return self._report

    def reset(self) -> None:
        """Forget the events fed so far."""
        self._events.clear()
        self.feed(())
