"""Why an MQTT-side step differs from the tutorial: MCONFIG's values and their order,
the TCP/TLS start, the MCONNECT login and its timing, publish, subscribe and the
print mode (one ``_d_<step>`` function per tutorial step, looked up by
:mod:`airlab.follow.check`).

Example:
    >>> from types import SimpleNamespace
    >>> from airlab.follow.diagnose_mqtt import _d_msgset
    >>> turn = SimpleNamespace(sent="AT+MQTTMSGSET=1")
    >>> [f.what for f in _d_msgset(None, turn, None, None, None)]
    ['value']
"""

from __future__ import annotations

import math

from airlab.aliyun.clientid import parse_client_id
from airlab.aliyun.endpoints import (
    DEFAULT_REGION,
    mqtt_host,
)
from airlab.aliyun.methods import parse_sign_method
from airlab.aliyun.verification import (
    check_mqtt_connect,
    parse_username,
)
from airlab.at.events import Urc
from airlab.follow.expect import (
    OTHER_HOST_KEY,
    TUTORIAL_IOT_ID,
    TUTORIAL_IOT_TOKEN,
    _args,
    _copied,
    _expected,
    _note_own_values,
    _Options,
    _secret_for_login,
    _sign_text,
)
from airlab.follow.report import Finding
from airlab.follow.tutorial import (
    Method,
    Turn,
    TutorialStep,
)


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
    _note_own_values(out, "client id, user name and sign")
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
