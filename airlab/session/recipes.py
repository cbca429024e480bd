"""The tutorial's flows as functions of a :class:`~airlab.session.session.ModemSession`.

* :func:`attach` - ``AT+CGATT?`` until 1, bearer ``AT+SAPBR`` (tolerant of already-open).
* :func:`http_auth_then_mqtt` - method 1 (一机一密, HTTPS auth then MQTT with the token).
* :func:`direct_mqtt` - method 2 (一机一密直连, signed password).
* :func:`register_device` - method 3 (一型一密 dynamic registration over HTTPS): returns
  the device secret, for method 1 or 2.
* :func:`register_device_mqtt` - 一型一密 over MQTT (beyond the tutorial): ``register``
  (pre-registered device: the ``/ext/register`` push gives the DeviceSecret) or
  ``regnwl`` (免预注册: the ``/ext/regnwl`` push gives a clientId and DeviceToken), then
  :func:`connwl_login` with them.
* :func:`subscribe`, :func:`publish`, :func:`set_receive_mode`, :func:`disconnect`.

Every function checks its arguments (signing, Aliyun keep-alive 30-1200 s, client id
at most 64 characters) before sending anything, sends ``AT+MCONNECT`` right after
``CONNECT OK``, and returns a small frozen result whose ``steps`` hold each command's
timings (``result.timings()`` is a list of dicts, ready for a table).

Endpoint host names are the real Aliyun names (``iot-auth.<region>.aliyuncs.com``,
``<pk>.iot-as-mqtt.<region>.aliyuncs.com``): the simulator resolves them to the local
emulator, a real module reaches the real cloud - the same code path.

Example:
    >>> import airlab
    >>> from airlab.session import ModemSession
    >>> with ModemSession("airsim://?profile=instant") as s:
    ...     print(attach(s).ip)
    10.222.163.213
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Any

from airlab.aliyun import (
    DEFAULT_REGION,
    TUTORIAL_REGISTER_SIGN_METHOD,
    MqttCredentials,
    SignMethod,
    direct_mqtt_credentials,
    http_auth_request,
    mqtt_credentials_after_http_auth,
    new_random,
    parse_http_auth_reply,
    parse_register_reply,
    register_request,
)
from airlab.aliyun.dynreg import (
    REGISTER_PUSH_TOPIC,
    REGNWL_PUSH_TOPIC,
    DeviceTokenGrant,
    MqttRegisterAuthType,
    RegisteredDevice,
    connwl_mqtt_credentials,
    mqtt_register_credentials,
    parse_register_push,
)
from airlab.aliyun.forms import HttpFormRequest
from airlab.aliyun.replies import MalformedReply
from airlab.at.command_table import COMPLETIONS
from airlab.at.commands import (
    httpaction,
    httppara,
    mconfig,
    mconnect,
    mdisconnect,
    mipclose,
    mipstart,
    mqttmsgset,
    msub,
    sapbr,
)
from airlab.at.events import Urc
from airlab.at.redact import redact_bytes
from airlab.errors import AirlabError, CloudRejected, UsageError
from airlab.session.errors import (
    HTTP_MODULE_CODES,
    CommandError,
    ConnectFailed,
    ConnectionClosed,
    ResponseTimeout,
    UrcTimeout,
)
from airlab.session.guards import check_aliyun_client_id, check_aliyun_keepalive
from airlab.session.recipe_results import (
    AttachResult,
    MqttLogin,
    MqttRegistration,
    PublishResult,
    RecipeResult,
    Registration,
    Step,
    SubscribeResult,
    _Steps,
)
from airlab.session.session import MCONNECT_REFUSED_HINT, ModemSession

__all__ = [
    "AttachResult",
    "MqttLogin",
    "MqttRegistration",
    "PublishResult",
    "RecipeResult",
    "Registration",
    "Step",
    "SubscribeResult",
    "attach",
    "connwl_login",
    "direct_mqtt",
    "disconnect",
    "http_auth_then_mqtt",
    "publish",
    "register_device",
    "register_device_mqtt",
    "set_receive_mode",
    "subscribe",
]

HTTP_AUTH_HINT = (
    "the cloud's log says why — in a lesson print(lab.cloud.explain_last_refusal()) "
    "(CloudEmulator.refusals(): expected vs received sign content); on the real cloud check "
    "the DeviceSecret and sign method"
)
REGISTER_HINT = (
    "dynamic registration needs 动态注册 on for the product and a device never activated: "
    "in a lesson reset it with lab.cloud.reset_registration(pk, dn) (ResetThing on the real "
    "cloud) or use lab.new_device(); print(lab.cloud.explain_last_refusal()) says which"
)
MQTT_REGISTER_HINT = (
    "MQTT dynamic registration needs TLS (AT+SSLMIPSTART), 动态注册 switched on for the "
    "product, the password signed with the ProductSecret and, for authType=register, a "
    "device added beforehand and not yet activated (regnwl adds the device itself); the "
    "emulator explains the refusal: CloudEmulator.explain_last_refusal()"
)
CONNWL_HINT = (
    "log in with the clientId and deviceToken of the /ext/regnwl push exactly as received "
    "(a token belongs to that clientId); the emulator explains the refusal: "
    "CloudEmulator.explain_last_refusal()"
)


def _awaits(name: str) -> dict[str, Any]:
    """``urc=`` and ``fail=`` of ``command_and_wait`` for a two-phase command, read from
    the command table (:mod:`airlab.at.command_table`).

    >>> _awaits("+MCONNECT")
    {'urc': 'CONNACK OK', 'fail': ('ERROR', 'CLOSED')}
    """
    c = COMPLETIONS[name]
    return {"urc": c.ok[0] if len(c.ok) == 1 else c.ok, "fail": c.fail_lines}


# ---------------------------------------------------------------------------- bearer


def attach(
    session: ModemSession,
    *,
    apn: str = "",
    contype: str = "GPRS",
    tries: int = 30,
    interval: float = 1.0,
) -> AttachResult:
    """``AT+CGATT?`` until ``+CGATT: 1`` (up to ``tries`` times, ``interval`` apart), then
    ``AT+SAPBR=3,1,"CONTYPE",…``, ``AT+SAPBR=3,1,"APN",…`` (empty: the network's APN),
    ``AT+SAPBR=1,1`` (an error is fine when ``AT+SAPBR=2,1`` shows the bearer is up) and
    ``AT+SAPBR=2,1`` for the IP."""
    lines = (sapbr(3, 1, "CONTYPE", contype), sapbr(3, 1, "APN", apn))  # UsageError first
    steps = _Steps()
    pause = threading.Event()
    for attempt in range(tries):
        r = steps.add("CGATT?", session.command("AT+CGATT?"))
        if r.args("+CGATT") == ("1",):
            break
        if attempt + 1 < tries:
            pause.wait(interval)
    else:
        raise ResponseTimeout(
            "AT+CGATT?",
            "+CGATT: 1 (attached to the packet network)",
            tries * interval,
            hint="check the SIM (AT+CPIN?), antenna and signal (AT+CSQ), registration (AT+CEREG?)",
        )
    steps.add("SAPBR CONTYPE", session.command(lines[0]))
    steps.add("SAPBR APN", session.command(lines[1]))
    opened = steps.add("SAPBR open", session.command(sapbr(1, 1), check=False))
    query = steps.add("SAPBR query", session.command(sapbr(2, 1), check=False))
    args = query.args("+SAPBR") if query.ok else None
    up = bool(args and len(args) >= 2 and args[1] == "1")
    if not opened.ok and not up:
        raise CommandError(
            opened.command, opened.result, opened.code, opened.meaning, response=opened
        )
    ip = args[2] if args and len(args) >= 3 else None
    return AttachResult(steps=steps.done(), ip=ip)


# ---------------------------------------------------------------------------- HTTPS


def _auth_url(req: HttpFormRequest, auth_base: str | None) -> str:
    """The request's URL, or the same path on ``auth_base`` (a bench emulator's address)."""
    if auth_base is None:
        return req.url
    base = auth_base.rstrip("/")
    if "://" not in base:
        raise UsageError("auth_base", f"expected scheme://host[:port], got {auth_base!r}")
    return base + "/" + req.url.split("://", 1)[1].split("/", 1)[1]


def _https_post(
    session: ModemSession,
    req: HttpFormRequest,
    steps: _Steps,
    timeout: float | None,
    auth_base: str | None = None,
) -> tuple[int, bytes]:
    """HTTPINIT, URL, content type, HTTPDATA, HTTPACTION=1 -> +HTTPACTION, HTTPREAD,
    HTTPTERM (always, result ignored). Returns (HTTP status, body)."""
    url_line = httppara("URL", _auth_url(req, auth_base), quote_value=False)
    type_line = httppara("USER_DEFINED", f"Content-type: {req.content_type}")
    r = session.command("AT+HTTPINIT", check=False)
    if not r.ok:  # left initialised by an earlier run: start over
        session.command("AT+HTTPTERM", check=False)
        r = session.command("AT+HTTPINIT")
    steps.add("HTTPINIT", r)
    try:
        steps.add("HTTPPARA URL", session.command(url_line))
        steps.add("HTTPPARA USER_DEFINED", session.command(type_line))
        steps.add("HTTPDATA", session.http_post_body(req.body))
        r = steps.add(
            "HTTPACTION",
            session.command_and_wait(httpaction(1), **_awaits("+HTTPACTION"), timeout=timeout),
        )
        assert r.urc is not None
        args = r.urc.args
        status = int(args[1]) if len(args) >= 2 and args[1].isdigit() else 0
        if status in HTTP_MODULE_CODES or status == 0:
            raise ConnectFailed(
                r.command,
                f"the HTTPS request failed in the module: {r.urc.line} "
                f"({HTTP_MODULE_CODES.get(status, 'unreadable status')})",
                hint="check the bearer (AT+SAPBR=2,1), DNS and the URL; then retry",
            )
        body = b""
        if len(args) >= 3 and args[2].isdigit() and int(args[2]) > 0:
            r = steps.add("HTTPREAD", session.command("AT+HTTPREAD"))
            body = r.payload or b""
        return status, body
    finally:
        with contextlib.suppress(AirlabError):
            steps.add("HTTPTERM", session.command("AT+HTTPTERM", check=False))


def _rejected(exc: CloudRejected, hint: str) -> CloudRejected:
    return CloudRejected(exc.code, exc.message, hint)


# ---------------------------------------------------------------------------- MQTT login


def _open_link(session: ModemSession, creds: MqttCredentials, steps: _Steps, tls: bool) -> None:
    """(SSL)MIPSTART to the credentials' host -> CONNECT OK (a stale link is closed and
    opened again)."""
    open_line = mipstart(creds.host, creds.port, tls=tls)
    name = "SSLMIPSTART" if tls else "MIPSTART"
    opening = _awaits("+MIPSTART")  # CONNECT OK or ALREADY CONNECT
    failing = (*opening["fail"], "ERROR")  # and an ERROR after the OK: stop waiting too
    r = session.command_and_wait(open_line, urc=opening["urc"], fail=failing)
    if r.urc is not None and r.urc.name == "ALREADY CONNECT":  # a stale link: replace it
        steps.add(name, r)
        steps.add("MIPCLOSE", session.command(mipclose(), check=False))
        again = (*failing, "ALREADY CONNECT")
        r = session.command_and_wait(open_line, urc="CONNECT OK", fail=again)
    steps.add(name, r)


def _mqtt_login(
    session: ModemSession,
    creds: MqttCredentials,
    steps: _Steps,
    *,
    method: str,
    tls: bool,
    keepalive: int,
    clean_session: int,
    iot_id: str | None = None,
) -> MqttLogin:
    connect_line = mconnect(clean_session, keepalive)
    steps.add("MCONFIG", session.command(mconfig(creds.client_id, creds.username, creds.password)))
    _open_link(session, creds, steps, tls)
    try:  # right after CONNECT OK: the server drops an idle link after ~5 s
        r = session.command_and_wait(connect_line, **_awaits("+MCONNECT"))
    except CloudRejected as exc:
        hint = MCONNECT_REFUSED_HINT
        if creds.sign_content:
            method_name = creds.sign_method.value if creds.sign_method else "?"
            hint += f"; we signed {creds.sign_content!r} with {method_name}"
        raise _rejected(exc, hint) from exc
    steps.add("MCONNECT", r)
    return MqttLogin(
        steps=steps.done(),
        method=method,
        client_id=creds.client_id,
        username=creds.username,
        host=creds.host,
        port=creds.port,
        tls=tls,
        keepalive=keepalive,
        sign_content=creds.sign_content,
        iot_id=iot_id,
        credentials=creds,
    )


def http_auth_then_mqtt(
    session: ModemSession,
    *,
    product_key: str,
    device_name: str,
    device_secret: str,
    region: str = DEFAULT_REGION,
    keepalive: int = 120,
    client_id: str | None = None,
    sign_method: SignMethod | str = "hmacmd5",
    timestamp: str | int | None = None,
    tls: bool = True,
    clean_session: int = 1,
    http_timeout: float | None = None,
    auth_base: str | None = None,
    host: str | None = None,
    port: int | None = None,
) -> MqttLogin:
    """Method 1 (一机一密, HTTPS auth then MQTT): POST the signed form to
    ``https://iot-auth.<region>.aliyuncs.com/auth/devicename``, read ``iotId`` /
    ``iotToken`` (:class:`~airlab.errors.CloudRejected` for a code other than 200),
    then MCONFIG (client id, iotId, iotToken), SSLMIPSTART to the host of the reply or
    ``<pk>.iot-as-mqtt.<region>.aliyuncs.com:1883``, MCONNECT right after CONNECT OK.

    On the bench (a real module and the local emulator, reached by IP) ``auth_base``
    replaces the auth host (``"http://192.168.1.10:8080"``: same path) and
    ``host``/``port`` the MQTT server."""
    check_aliyun_keepalive(keepalive)
    label = device_name if client_id is None else client_id
    check_aliyun_client_id(label)
    req = http_auth_request(
        product_key,
        device_name,
        device_secret,
        client_id=client_id,
        sign_method=sign_method,
        timestamp=timestamp,
        region=region,
    )
    steps = _Steps()
    status, body = _https_post(session, req, steps, http_timeout, auth_base)
    try:
        reply = parse_http_auth_reply(body)
    except CloudRejected as exc:
        raise _rejected(exc, f"{HTTP_AUTH_HINT}; we signed {req.sign_content!r}") from exc
    if status != 200:
        raise CloudRejected(status, "HTTP status of /auth/devicename", HTTP_AUTH_HINT)
    creds = mqtt_credentials_after_http_auth(reply, product_key, label, region=region)
    if host is not None or port is not None:
        creds = dataclasses.replace(
            creds, host=host or creds.host, port=port if port is not None else creds.port
        )
    return _mqtt_login(
        session,
        creds,
        steps,
        method="http_auth",
        tls=tls,
        keepalive=keepalive,
        clean_session=clean_session,
        iot_id=reply.iot_id,
    )


def direct_mqtt(
    session: ModemSession,
    *,
    product_key: str,
    device_name: str,
    device_secret: str,
    sign_method: SignMethod | str = "hmacmd5",
    timestamp: str | int | None = None,
    tls: bool = True,
    region: str = DEFAULT_REGION,
    keepalive: int = 120,
    client_id: str | None = None,
    host: str | None = None,
    port: int = 1883,
    clean_session: int = 1,
) -> MqttLogin:
    """Method 2 (一机一密直连): ``clientId|securemode=3,signmethod=…|``,
    ``deviceName&productKey``, HMAC password; MCONFIG, SSLMIPSTART (``tls=False``:
    MIPSTART), MCONNECT right after CONNECT OK."""
    check_aliyun_keepalive(keepalive)
    creds = direct_mqtt_credentials(
        product_key,
        device_name,
        device_secret,
        client_id=client_id,
        sign_method=sign_method,
        timestamp=timestamp,
        region=region,
        host=host,
        port=port,
    )
    check_aliyun_client_id(creds.client_id)
    return _mqtt_login(
        session,
        creds,
        _Steps(),
        method="direct",
        tls=tls,
        keepalive=keepalive,
        clean_session=clean_session,
    )


def register_device(
    session: ModemSession,
    *,
    product_key: str,
    device_name: str,
    product_secret: str,
    random: str | None = None,
    sign_method: SignMethod | str = TUTORIAL_REGISTER_SIGN_METHOD,
    region: str = DEFAULT_REGION,
    http_timeout: float | None = None,
    auth_base: str | None = None,
) -> Registration:
    """Method 3 (一型一密 dynamic registration over HTTPS): POST
    ``/auth/register/device`` signed with the ProductSecret; returns the DeviceSecret
    (then log in with :func:`direct_mqtt` or :func:`http_auth_then_mqtt`).
    ``auth_base`` replaces the auth host on the bench (see :func:`http_auth_then_mqtt`)."""
    req = register_request(
        product_key,
        device_name,
        product_secret,
        random=random if random is not None else new_random(),
        sign_method=sign_method,
        region=region,
    )
    steps = _Steps()
    status, body = _https_post(session, req, steps, http_timeout, auth_base)
    try:
        device = parse_register_reply(body)
    except CloudRejected as exc:
        raise _rejected(exc, REGISTER_HINT) from exc
    if status != 200:
        raise CloudRejected(status, "HTTP status of /auth/register/device", REGISTER_HINT)
    return Registration(
        steps=steps.done(),
        product_key=device.product_key,
        device_name=device.device_name,
        device_secret=device.device_secret,
    )


# ---------------------------------------------------------------------------- MQTT dynreg


def _push_step(name: str, command: str, urc: Urc, since_mono: float) -> Step:
    """A step for a URC that no command of ours asked for (the push, the cloud's CLOSED);
    its times count from ``since_mono`` (AT+MCONNECT sent).  The line is redacted."""
    line = redact_bytes(urc.line.encode("utf-8", "replace")).decode("utf-8", "replace")
    delay = urc.mono - since_mono
    return Step(
        name=name,
        command=command,
        result=urc.name,
        latency=delay,
        urc=line,
        urc_latency=delay,
        sent_mono=since_mono,
    )


def _wait_push(
    session: ModemSession, topic: str, since: int, timeout: float | None
) -> tuple[Urc, bytes]:
    """The ``+MSUB`` push on ``topic`` (printed at once, or announced by slot in cached
    mode and read with AT+MQTTMSGGET); CLOSED first -> ConnectionClosed."""

    def wanted(u: Urc) -> bool:
        if u.name != "+MSUB":
            return False
        if u.topic is not None:
            return u.topic == topic
        return len(u.args) == 1 and u.args[0].isdigit()  # AT+MQTTMSGSET=1: a slot

    urc = session.wait_for_urc(wanted, timeout=timeout, since=since, fail=("CLOSED",))
    if urc.topic is not None:
        return urc, urc.payload or b""
    for message in session.fetch_cached():
        if message.topic == topic:
            return urc, message.payload
    raise UrcTimeout(
        None, f"a message on {topic}", timeout or session.urc_timeout, (urc.line,),
        hint="the cached messages (AT+MQTTMSGGET) hold no registration push",
    )  # fmt: skip


def register_device_mqtt(
    session: ModemSession,
    product_key: str,
    device_name: str,
    product_secret: str,
    *,
    auth_type: MqttRegisterAuthType | str = "register",
    random: str | None = None,
    sign_method: SignMethod | str = "hmacmd5",
    client_id: str | None = None,
    layout: str = "tutorial",
    region: str = DEFAULT_REGION,
    host: str | None = None,
    port: int = 1883,
    tls: bool = True,
    keepalive: int = 120,
    push_timeout: float | None = None,
    wait_closed: float | None = None,
) -> MqttRegistration:
    """一型一密 over MQTT (beyond the tutorial): ``AT+MCONFIG`` with
    ``<dn>|securemode=2,authType=register,random=…,signmethod=…|``, ``dn&pk`` and
    HMAC(ProductSecret, ``deviceName…productKey…random…``), ``AT+SSLMIPSTART`` to
    ``<pk>.iot-as-mqtt.<region>.aliyuncs.com:1883``, ``AT+MCONNECT`` -> ``CONNACK OK``;
    the cloud then pushes the result on a topic the module never subscribed to (the
    module prints it as any message: ``+MSUB: "/ext/register",<n> byte,{…}``) and
    closes the link (the emulator 15 s after CONNACK).

    ``auth_type="register"``: the device was added beforehand (预注册); the push gives
    its DeviceSecret.  ``"regnwl"`` (免预注册): the cloud adds the device; the push
    gives a clientId and a DeviceToken for :func:`connwl_login`.

    ``wait_closed``: seconds to wait for the cloud's ``CLOSED``; ``None`` (default)
    hangs up at once (``AT+MDISCONNECT``, ``AT+MIPCLOSE``), as the SDKs do; when the
    wait runs out the module hangs up too.  A refused CONNECT raises
    :class:`~airlab.errors.CloudRejected`; ``push_timeout`` (default the session's
    ``urc_timeout``) bounds the wait for the push.

    Example:
        >>> from airlab.cloud import CloudEmulator                       # doctest: +SKIP
        >>> reg = register_device_mqtt(s, pk, dn, product_secret)        # doctest: +SKIP
        >>> login = direct_mqtt(s, product_key=pk, device_name=dn,
        ...                     device_secret=reg.device_secret)         # doctest: +SKIP
    """
    check_aliyun_keepalive(keepalive)
    creds = mqtt_register_credentials(
        product_key,
        device_name,
        product_secret,
        random=random if random is not None else new_random(),
        auth_type=auth_type,
        sign_method=sign_method,
        client_id=client_id,
        region=region,
        host=host,
        port=port,
        layout=layout,
    )
    check_aliyun_client_id(creds.client_id)
    kind = MqttRegisterAuthType(auth_type)
    topic = REGISTER_PUSH_TOPIC if kind is MqttRegisterAuthType.REGISTER else REGNWL_PUSH_TOPIC
    steps = _Steps()
    steps.add("MCONFIG", session.command(mconfig(creds.client_id, creds.username, creds.password)))
    _open_link(session, creds, steps, tls)
    since = session.mark()
    try:
        r = session.command_and_wait(mconnect(1, keepalive), **_awaits("+MCONNECT"))
    except CloudRejected as exc:
        raise _rejected(exc, MQTT_REGISTER_HINT) from exc
    steps.add("MCONNECT", r)
    try:
        urc, payload = _wait_push(session, topic, since, push_timeout)
    except ConnectionClosed as exc:
        raise ConnectionClosed(
            exc.command, f"the cloud closed the link before its {topic} push", MQTT_REGISTER_HINT
        ) from exc
    except UrcTimeout:
        with contextlib.suppress(AirlabError):
            disconnect(session)
        raise
    steps.items.append(_push_step("+MSUB", f"(push on {topic})", urc, r.sent_mono))
    try:
        result = parse_register_push(topic, payload)
    except MalformedReply as exc:  # never quote the payload: it carries the secret
        raise MalformedReply(f"the {topic} push is not what the platform sends: {exc}") from None
    closed_by = "module"
    if wait_closed is not None:
        with contextlib.suppress(UrcTimeout):
            closed = session.wait_for_urc("CLOSED", timeout=wait_closed, since=since)
            steps.items.append(_push_step("CLOSED", "(the cloud hangs up)", closed, r.sent_mono))
            closed_by = "cloud"
    if closed_by == "module":
        for step in disconnect(session).steps:
            steps.items.append(step)
    return MqttRegistration(
        steps=steps.done(),
        auth_type=kind.value,
        product_key=result.product_key,
        device_name=result.device_name,
        client_id=creds.client_id,
        push_topic=topic,
        closed_by=closed_by,
        device_secret=result.device_secret if isinstance(result, RegisteredDevice) else None,
        grant=result if isinstance(result, DeviceTokenGrant) else None,
        credentials=creds,
    )


def connwl_login(
    session: ModemSession,
    grant: DeviceTokenGrant | MqttRegistration,
    *,
    region: str = DEFAULT_REGION,
    host: str | None = None,
    port: int = 1883,
    tls: bool = True,
    keepalive: int = 120,
    clean_session: int = 1,
    extra_params: tuple[tuple[str, str], ...] = (),
) -> MqttLogin:
    """The login after ``regnwl`` (免预注册): ``AT+MCONFIG`` with
    ``<clientId>|securemode=-2,authType=connwl|``, ``dn&pk`` and the DeviceToken as the
    password, ``AT+SSLMIPSTART``, ``AT+MCONNECT`` right after ``CONNECT OK``.

    ``grant``: the :class:`~airlab.aliyun.dynreg.DeviceTokenGrant` of the push (or the
    :class:`MqttRegistration` of :func:`register_device_mqtt` with ``auth_type="regnwl"``).

    Example:
        >>> reg = register_device_mqtt(s, pk, dn, product_secret,
        ...                            auth_type="regnwl")                # doctest: +SKIP
        >>> connwl_login(s, reg).method                                   # doctest: +SKIP
        'connwl'
    """
    if isinstance(grant, MqttRegistration):
        if grant.grant is None:
            raise UsageError(
                "grant",
                "this registration gave a DeviceSecret (authType=register): log in with "
                "direct_mqtt(device_secret=...), or register with auth_type='regnwl'",
            )
        grant = grant.grant
    check_aliyun_keepalive(keepalive)
    creds = connwl_mqtt_credentials(
        grant, region=region, host=host, port=port, extra_params=extra_params
    )
    check_aliyun_client_id(creds.client_id)
    try:
        return _mqtt_login(
            session,
            creds,
            _Steps(),
            method="connwl",
            tls=tls,
            keepalive=keepalive,
            clean_session=clean_session,
        )
    except CloudRejected as exc:
        raise _rejected(exc, CONNWL_HINT) from exc


# ---------------------------------------------------------------------------- MQTT use


def subscribe(session: ModemSession, topic: str, qos: int = 0) -> SubscribeResult:
    """``AT+MSUB`` -> ``SUBACK`` (a refusal -> CloudRejected naming the topic rules)."""
    line = msub(topic, qos)
    r = session.command_and_wait(line, **_awaits("+MSUB"))
    return SubscribeResult(steps=(Step.of("MSUB", r),), topic=topic, qos=qos)


def publish(
    session: ModemSession,
    topic: str,
    payload: str | bytes,
    qos: int = 0,
    retain: bool = False,
    *,
    block: bool = True,
) -> PublishResult:
    """``AT+MPUB`` (quoted, escaped); QoS1 returns after its PUBACK (``ack_latency``)."""
    r = session.publish(topic, payload, qos, retain, block=block)
    size = len(payload.encode("utf-8") if isinstance(payload, str) else payload)
    return PublishResult(steps=(Step.of("MPUB", r),), topic=topic, qos=qos, size=size, response=r)


def set_receive_mode(session: ModemSession, cached: bool) -> RecipeResult:
    """``AT+MQTTMSGSET=0`` (direct ``+MSUB`` URCs, the default) or ``=1`` (cache: the
    URC ``+MSUB: <slot>`` announces, ``session.fetch_cached()`` reads)."""
    if not isinstance(cached, bool):
        raise UsageError("cached", f"must be True or False, got {cached!r}")
    r = session.command(mqttmsgset(1 if cached else 0))
    return RecipeResult(steps=(Step.of("MQTTMSGSET", r),))


def disconnect(session: ModemSession) -> RecipeResult:
    """``AT+MDISCONNECT`` then ``AT+MIPCLOSE``, results ignored (as Luat advises)."""
    steps = _Steps()
    steps.add("MDISCONNECT", session.command(mdisconnect(), check=False))
    steps.add("MIPCLOSE", session.command(mipclose(), check=False))
    return RecipeResult(steps=steps.done())
