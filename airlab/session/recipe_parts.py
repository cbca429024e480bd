"""What the recipes share: the hints a refusal carries, the bearer (:func:`attach`),
the HTTPS POST of a signed form, and the MQTT link and login (``AT+MCONFIG``,
``AT+(SSL)MIPSTART``, ``AT+MCONNECT``) and its end (:func:`disconnect`).

Example:
    >>> from airlab.session.recipe_parts import _awaits
    >>> _awaits("+MSUB")["urc"]
    'SUBACK'
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from airlab.aliyun import (
    MqttCredentials,
)
from airlab.aliyun.forms import HttpFormRequest
from airlab.at.command_table import COMPLETIONS
from airlab.at.commands import (
    httpaction,
    httppara,
    mconfig,
    mconnect,
    mdisconnect,
    mipclose,
    mipstart,
    sapbr,
)
from airlab.errors import AirlabError, CloudRejected, UsageError
from airlab.session.errors import (
    HTTP_MODULE_CODES,
    CommandError,
    ConnectFailed,
    ResponseTimeout,
)
from airlab.session.recipe_results import (
    AttachResult,
    MqttLogin,
    RecipeResult,
    _Steps,
)
from airlab.session.session import MCONNECT_REFUSED_HINT, ModemSession

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

_T = TypeVar("_T")


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


def _post_and_parse(
    session: ModemSession,
    req: HttpFormRequest,
    steps: _Steps,
    timeout: float | None,
    auth_base: str | None,
    parse: Callable[[bytes], _T],
    path: str,
    hint: str,
    parse_hint: str | None = None,
) -> _T:
    """:func:`_https_post`, then the reply read by ``parse``: a refusal in the reply
    carries ``parse_hint`` (default ``hint``), an HTTP status other than 200 is a
    refusal of ``path`` with ``hint``."""
    status, body = _https_post(session, req, steps, timeout, auth_base)
    try:
        reply = parse(body)
    except CloudRejected as exc:
        raise _rejected(exc, parse_hint or hint) from exc
    if status != 200:
        raise CloudRejected(status, f"HTTP status of {path}", hint)
    return reply


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


def disconnect(session: ModemSession) -> RecipeResult:
    """``AT+MDISCONNECT`` then ``AT+MIPCLOSE``, results ignored (as Luat advises)."""
    steps = _Steps()
    steps.add("MDISCONNECT", session.command(mdisconnect(), check=False))
    steps.add("MIPCLOSE", session.command(mipclose(), check=False))
    return RecipeResult(steps=steps.done())
