"""How a fleet modem logs in: the tutorial's three device-auth methods, as AT commands on a
:class:`~airlab.fleet.modem.FleetModem`.

* ``direct`` (一机一密直连): ``AT+MCONFIG`` with the signed password, then the link and
  ``AT+MCONNECT``;
* ``http`` (一机一密 + HTTPS auth): bearer (``AT+SAPBR``), ``POST /auth/devicename``
  through ``AT+HTTPINIT`` … ``AT+HTTPREAD``, then ``AT+MCONFIG`` with the ``iotId`` /
  ``iotToken`` of the reply; every login asks for a fresh token;
* ``dynreg`` (一型一密 dynamic registration over HTTPS): once, ``POST
  /auth/register/device`` signed with the ProductSecret gives the DeviceSecret; then
  ``direct`` logins with it;
* ``mqttreg`` (一型一密 over MQTT, ``authType=register``): once, an MQTT connect signed
  with the ProductSecret; the platform pushes the DeviceSecret on ``/ext/register``
  (``+MSUB: "/ext/register",…``) and the module hangs up; then ``direct`` logins;
* ``regnwl`` (免预注册, ``authType=regnwl``): the device is not added beforehand; once,
  the same MQTT registration gets a clientId and a DeviceToken on ``/ext/regnwl``; every
  login is then ``authType=connwl`` with that token.

The lines come from :mod:`airlab.at.commands`, the forms and replies from
:mod:`airlab.aliyun`: the same as :mod:`airlab.session.recipes`, but awaited on the
fleet's loop instead of a session's thread. A mix of methods is written
``"direct=3,http=1"`` (weights); :func:`assign_methods` gives each modem its method,
in proportion and in a fixed order.

Example:
    >>> parse_methods("direct=3,http=1")
    (('direct', 0.75), ('http', 0.25))
    >>> assign_methods(parse_methods("direct=3,http=1"), 8)
    ['direct', 'direct', 'http', 'direct', 'direct', 'direct', 'http', 'direct']
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from airlab.aliyun import (
    direct_mqtt_credentials,
    http_auth_request,
    mqtt_credentials_after_http_auth,
    parse_http_auth_reply,
    parse_register_reply,
    register_request,
)
from airlab.aliyun.dynreg import (
    REGISTER_PUSH_TOPIC,
    REGNWL_PUSH_TOPIC,
    DeviceTokenGrant,
    connwl_mqtt_credentials,
    mqtt_register_credentials,
    parse_register_push,
)
from airlab.aliyun.forms import HttpFormRequest
from airlab.aliyun.mqtt_credentials import MqttCredentials
from airlab.at.commands import (
    httpaction,
    httpdata,
    httppara,
    mconfig,
    mconnect,
    mipstart,
    msub,
    sapbr,
)
from airlab.errors import AirlabError, UsageError
from airlab.fleet.modem import FleetModem

__all__ = [
    "METHODS",
    "REGISTERING",
    "FleetDevice",
    "assign_methods",
    "log_in",
    "parse_methods",
    "uses_http",
]

#: the methods a fleet modem can log in with (see the module docstring)
METHODS = ("direct", "http", "dynreg", "mqttreg", "regnwl")
#: the methods that register the device first (the run's product allows it)
REGISTERING = ("dynreg", "mqttreg", "regnwl")
_RANDOM_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def parse_methods(text: str) -> tuple[tuple[str, float], ...]:
    """``"direct"`` or ``"direct=3,http=1,dynreg=1"`` → the methods and their shares
    (summing to 1), in the order written; a bad mix raises
    :class:`~airlab.errors.UsageError`.

    Example:
        >>> parse_methods("http")
        (('http', 1.0),)
        >>> parse_methods("direct=1,sms=1")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        airlab.errors.UsageError: methods: unknown method 'sms' (known: direct, http, ...)
    """
    if not isinstance(text, str) or not text.strip():
        raise UsageError("methods", f"write a method or a mix like direct=3,http=1, not {text!r}")
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, sep, weight = part.strip().partition("=")
        name = name.strip()
        if name not in METHODS:
            known = ", ".join(METHODS)
            raise UsageError("methods", f"unknown method {name!r} (known: {known})")
        if name in weights:
            raise UsageError("methods", f"{name} is named twice")
        try:
            value = float(weight) if sep else 1.0
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise UsageError("methods", f"the weight of {name} must be a positive number")
        weights[name] = value
    total = sum(weights.values())
    return tuple((name, w / total) for name, w in weights.items())


def assign_methods(shares: tuple[tuple[str, float], ...], modems: int) -> list[str]:
    """The method of each of ``modems`` modems: every method gets its share (rounded so
    the counts add up), spread evenly over the fleet (modem *i* takes the method whose
    count is furthest behind its share at *i*)."""
    given = dict.fromkeys((name for name, _ in shares), 0)
    order = []
    for i in range(modems):
        name = max(shares, key=lambda s: (s[1] * (i + 1) - given[s[0]], s[1]))[0]
        given[name] += 1
        order.append(name)
    return order


def uses_http(method: str) -> bool:
    """Whether ``method`` talks HTTPS to the platform (the fleet's simulated clock then
    waits for those answers)."""
    return method in ("http", "dynreg")


@dataclass
class FleetDevice:
    """What one modem knows of its device: the triple (三元组), its login ``method`` and,
    for the registering methods, the ProductSecret (the DeviceSecret, or for ``regnwl``
    the DeviceToken ``grant``, is unknown until registered)."""

    product_key: str
    device_name: str
    device_secret: str | None
    method: str = "direct"
    product_secret: str | None = None
    grant: DeviceTokenGrant | None = None


async def log_in(m: FleetModem, d: FleetDevice, s: Any, seed: str) -> bool:
    """Log ``m`` in as ``d`` with ``d.method``; ``s``: the scenario (``tls``,
    ``keepalive``, ``subscribe``); ``seed``: the run's, for the registration nonce.
    False when any step failed (the modem's transcript says which)."""
    registered = True
    if d.device_secret is None and d.grant is None:  # register once, the first time
        if d.method == "dynreg":
            registered = await _bearer(m) and await _register(m, d, seed)
        elif d.method in ("mqttreg", "regnwl"):
            registered = await _register_mqtt(m, d, s, seed)
    if not registered:
        return False
    if d.grant is not None:  # regnwl: every login with the DeviceToken (authType=connwl)
        return await _mqtt_login(m, connwl_mqtt_credentials(d.grant), d, s)
    if d.method == "http":
        if d.device_secret is None:  # pragma: no cover - provisioning gives it
            raise UsageError("device_secret", "an http login needs the DeviceSecret")
        if not await _bearer(m):
            return False
        request = http_auth_request(d.product_key, d.device_name, d.device_secret)
        body = await _post(m, request)
        if body is None:
            return False
        try:
            reply = parse_http_auth_reply(body)
        except AirlabError:
            return False
        creds = mqtt_credentials_after_http_auth(reply, d.product_key, d.device_name)
    else:
        assert d.device_secret is not None
        creds = direct_mqtt_credentials(d.product_key, d.device_name, d.device_secret)
    return await _mqtt_login(m, creds, d, s)


_Step = tuple[str, tuple[str, ...]]  # a command line and the URCs that end it well


def _connect_steps(creds: MqttCredentials, s: Any) -> list[_Step]:
    """``AT+MCONFIG``, ``AT+(SSL)MIPSTART`` → ``CONNECT OK``, ``AT+MCONNECT`` →
    ``CONNACK OK``: an MQTT connect with ``creds``."""
    return [
        (mconfig(creds.client_id, creds.username, creds.password), ()),
        (mipstart(creds.host, creds.port, tls=s.tls), ("CONNECT OK",)),
        (mconnect(1, s.keepalive), ("CONNACK OK",)),
    ]


async def _all_ok(m: FleetModem, steps: list[_Step]) -> bool:
    """Send ``steps`` in turn while each ends OK (and with one of its URCs)."""
    for line, urc in steps:
        ex = await m.command(line, urc=urc, timeout=30)
        if not ex.ok or (urc and ex.urc not in urc):
            return False
    return True


async def _mqtt_login(m: FleetModem, creds: MqttCredentials, d: FleetDevice, s: Any) -> bool:
    steps = _connect_steps(creds, s)
    if s.subscribe:
        steps.append((msub(f"/{d.product_key}/{d.device_name}/user/get", 1), ("SUBACK",)))
    return await _all_ok(m, steps)


async def _bearer(m: FleetModem) -> bool:
    """The bearer for HTTP: ``AT+SAPBR`` CONTYPE, APN, open (already open is fine)."""
    for line in (sapbr(3, 1, "CONTYPE", "GPRS"), sapbr(3, 1, "APN", "")):
        if not (await m.command(line, timeout=10)).ok:
            return False
    await m.command(sapbr(1, 1), timeout=30)  # ERROR when it is already open
    query = await m.command(sapbr(2, 1), timeout=10)
    return query.ok


async def _post(m: FleetModem, request: HttpFormRequest) -> bytes | None:
    """``POST`` the form: HTTPINIT … HTTPACTION=1 → ``+HTTPACTION: 1,<status>,<len>``,
    HTTPREAD, HTTPTERM. The body when the status is 200, else None."""
    init = await m.command("AT+HTTPINIT", timeout=10)
    if not init.ok:  # left initialised by an earlier login: start over
        await m.command("AT+HTTPTERM", timeout=10)
        if not (await m.command("AT+HTTPINIT", timeout=10)).ok:
            return None
    try:
        line, data = httpdata(request.body)
        for ex in (
            await m.command(httppara("URL", request.url, quote_value=False), timeout=10),
            await m.command(
                httppara("USER_DEFINED", f"Content-type: {request.content_type}"), timeout=10
            ),
            await m.command(line, data=data, timeout=30),
        ):
            if not ex.ok:
                return None
        action = await m.command(httpaction(1), urc=("+HTTPACTION",), timeout=60)
        args = action.urc_args
        if action.urc != "+HTTPACTION" or len(args) < 3 or args[1] != "200":
            return None
        read = await m.command("AT+HTTPREAD", timeout=10)
        return read.payload if read.ok else None
    finally:
        await m.command("AT+HTTPTERM", timeout=10)


async def _register_mqtt(m: FleetModem, d: FleetDevice, s: Any, seed: str) -> bool:
    """一型一密 over MQTT: connect signed with the ProductSecret, read the platform's push
    (a DeviceSecret for ``mqttreg``, a DeviceToken grant for ``regnwl``), hang up."""
    if d.product_secret is None:  # pragma: no cover - provisioning gives it
        raise UsageError("product_secret", "an MQTT registration needs the ProductSecret")
    regnwl = d.method == "regnwl"
    creds = mqtt_register_credentials(
        d.product_key,
        d.device_name,
        d.product_secret,
        random=_nonce(seed, d.device_name),
        auth_type="regnwl" if regnwl else "register",
    )
    topic = REGNWL_PUSH_TOPIC if regnwl else REGISTER_PUSH_TOPIC
    if not await _all_ok(m, _connect_steps(creds, s)):
        await m.command("AT+MIPCLOSE", timeout=10)
        return False
    push = await m.wait_urc(("+MSUB",), timeout=30)
    await m.command("AT+MDISCONNECT", timeout=10)  # as the SDKs do: no wait for CLOSED
    await m.command("AT+MIPCLOSE", timeout=10)
    if push is None or push.topic != topic or push.payload is None:
        return False
    try:
        result = parse_register_push(topic, push.payload)
    except AirlabError:
        return False
    if isinstance(result, DeviceTokenGrant):
        d.grant = result
    else:
        d.device_secret = result.device_secret
    return True


def _nonce(seed: str, device_name: str) -> str:
    """The registration's ``random``: seeded, so a run repeats exactly."""
    stream = random.Random(f"{seed}/{device_name}/register")
    return "".join(stream.choice(_RANDOM_ALPHABET) for _ in range(15))


async def _register(m: FleetModem, d: FleetDevice, seed: str) -> bool:
    """一型一密: the DeviceSecret from ``/auth/register/device`` (kept in ``d``)."""
    if d.product_secret is None:  # pragma: no cover - provisioning gives it
        raise UsageError("product_secret", "a dynreg login needs the ProductSecret")
    request = register_request(
        d.product_key, d.device_name, d.product_secret, random=_nonce(seed, d.device_name)
    )
    body = await _post(m, request)
    if body is None:
        return False
    try:
        d.device_secret = parse_register_reply(body).device_secret
    except AirlabError:
        return False
    return True
