"""MQTT dynamic registration: :func:`register_device_mqtt` (一型一密 ``register`` and
免预注册 ``regnwl``: the cloud pushes the DeviceSecret, or a clientId and a DeviceToken,
then closes the link) and :func:`connwl_login` (the ``authType=connwl`` login with
that token).

Example:
    >>> from airlab.session.recipes_dynreg import _push_step
    >>> from airlab.at.events import Urc
    >>> urc = Urc(0.0, 2.5, b"", name="CLOSED", line="CLOSED")
    >>> step = _push_step("CLOSED", "(cloud)", urc, 1.0)
    >>> step.result, step.latency
    ('CLOSED', 1.5)
"""

from __future__ import annotations

import contextlib

from airlab.aliyun import (
    DEFAULT_REGION,
    SignMethod,
    new_random,
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
from airlab.aliyun.replies import MalformedReply
from airlab.at.commands import (
    mconfig,
    mconnect,
)
from airlab.at.events import Urc
from airlab.at.redact import redact_bytes
from airlab.errors import AirlabError, CloudRejected, UsageError
from airlab.session.errors import (
    ConnectionClosed,
    UrcTimeout,
)
from airlab.session.guards import check_aliyun_client_id, check_aliyun_keepalive
from airlab.session.recipe_parts import (
    CONNWL_HINT,
    MQTT_REGISTER_HINT,
    _awaits,
    _mqtt_login,
    _open_link,
    _rejected,
    disconnect,
)
from airlab.session.recipe_results import (
    MqttLogin,
    MqttRegistration,
    Step,
    _Steps,
)
from airlab.session.session import ModemSession

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
