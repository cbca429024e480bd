"""Why an HTTP-side step differs from the tutorial: network attach, APN, URL, header,
body and its length, the action's status and the reply read back (one ``_d_<step>``
function per tutorial step, looked up by :mod:`airlab.follow.check`).

Example:
    >>> from airlab.follow.diagnose_http import _CT
    >>> _CT.match("Content-type:application/json").group(2)
    'application/json'
"""

from __future__ import annotations

import json
import re

from airlab.aliyun.endpoints import (
    DEFAULT_REGION,
    auth_devicename_url,
    register_device_url,
)
from airlab.aliyun.forms import parse_form
from airlab.aliyun.verification import (
    check_devicename_form,
    check_register_form,
)
from airlab.follow.expect import (
    _args,
    _copied,
    _expected_body,
    _more,
    _note_own_values,
    _quoted_args,
    _sign_text,
)
from airlab.follow.report import Finding
from airlab.follow.tutorial import (
    Method,
    Turn,
)


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
    _note_own_values(out, "deviceName, clientId and sign")
    return out


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
