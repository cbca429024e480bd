"""What the checker expects of a step for the student's device, and the helpers the
per-command diagnoses share (arguments, masking, the module's refusal, copied values).

Example:
    >>> from airlab.follow.expect import _mask, _more
    >>> _mask('AT+MCONFIG="x","0123456789abcdef"', "0123456789abcdef")
    'AT+MCONFIG="x","0123…"'
    >>> _more(-1)
    '1 byte fewer'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from airlab.aliyun.clientid import parse_client_id
from airlab.aliyun.endpoints import (
    DEFAULT_REGION,
    auth_devicename_url,
    mqtt_host,
    register_device_url,
)
from airlab.aliyun.http_auth import http_auth_request
from airlab.aliyun.mqtt_credentials import direct_mqtt_credentials
from airlab.at.events import Urc
from airlab.at.parser import split_args
from airlab.errors import UsageError
from airlab.follow.report import DeviceLike, Finding
from airlab.follow.tutorial import (
    Method,
    Turn,
    TutorialStep,
)

#: Seconds after ``CONNECT OK`` within which the server wants the MQTT CONNECT.
MCONNECT_WINDOW = 5.0

# The tutorial's own values, as its captures hold them (to spot a copied value).
TUTORIAL_PRODUCT_KEY = "k1hipglLdjU"
TUTORIAL_DEVICE_NAME = "868488076506128"
TUTORIAL_SIGNS = ("0f655b12adf519b9a7a2b0a990f398b6", "20558baadb2a0b04847767980f0ee67b")
TUTORIAL_IOT_ID = "2BGmgWFvoXlbi1Er9sk4k1hip0"
TUTORIAL_IOT_TOKEN = "137eb0759ca248b79383a60c0b0e0f80"
OTHER_HOST_KEY = "a1qsHBbKtmc"  # the product whose host the method-1 capture logs in through


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


def _sign_text(check) -> str:
    text = f"the server would refuse this sign ({check.reason})"
    if check.hint:
        text += f"; what differs: {check.hint}"
    return text


def _note_own_values(out: list[Finding], values: str) -> None:
    """Add to ``out``, when it holds no mistake, the note that ``values`` are the
    student's device's and so differ from the capture's.

    >>> out: list[Finding] = []
    >>> _note_own_values(out, "client id and sign")
    >>> out[0].text
    "client id and sign are your device's, so they differ from the capture's: expected"
    """
    if not any(f.mistake for f in out):
        out.append(
            Finding(
                "device",
                f"{values} are your device's, so they differ from the capture's: expected",
                mistake=False,
            )
        )
