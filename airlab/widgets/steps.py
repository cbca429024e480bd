"""``StepThrough``: run a connection method one AT command per click.

:func:`recipes_for` gives the steps of every method (:data:`METHODS`):

* ``"http-auth"`` (一机一密, HTTPS auth then MQTT): bearer, ``AT+HTTPINIT``,
  ``AT+HTTPPARA`` URL and ``Content-type: ``, ``AT+HTTPDATA`` and the body,
  ``AT+HTTPACTION=1``, ``AT+HTTPREAD`` (the iotId and iotToken), ``AT+HTTPTERM``, then
  ``AT+MCONFIG`` with the iotId and iotToken *of that reply*, ``AT+SSLMIPSTART``,
  ``AT+MCONNECT``, ``AT+MQTTSTATU``;
* ``"direct"`` (一机一密直连; any ``sign_method``, with or without ``timestamp``);
* ``"register"`` (一型一密 over HTTPS, ``/auth/register/device``) then the direct login
  with the DeviceSecret of the reply;
* ``"mqtt-register"`` (一型一密 over MQTT, ``authType=register``): the ``/ext/register``
  push gives the DeviceSecret, then the direct login;
* ``"mqtt-regnwl"`` (免预注册, ``authType=regnwl``): the ``/ext/regnwl`` push gives a
  clientId and a DeviceToken, then the ``authType=connwl`` login.

A step whose command depends on an earlier reply takes the value from that reply when
it runs (its command shows ``<iotToken from HTTPREAD>`` until then).  :class:`StepThrough`
shows one button per step, "Next step" and "Run all"; beside each step the command, the
bytes on the wire (``\\r\\n`` visible, secrets masked by :mod:`airlab.at.redact`), the
reply, its latency and what it means.  Steps run in a worker thread.

Example:
    >>> from airlab.session import ModemSession
    >>> from airlab.lesson import Identity
    >>> from airlab.widgets import StepThrough, recipes_for
    >>> s = ModemSession("airsim://?profile=instant")
    >>> flow = StepThrough(s, recipes_for("direct", Identity.tutorial()))
    >>> flow.run_next().result(5).result      # what "Next step" does
    'OK'
    >>> flow.status[0]
    'AT+CGATT? -> OK (+CGATT: 1)'
    >>> print(flow.wire[0])
    → AT+CGATT?\\r\\n
    ← AT+CGATT?\\r\\n\\r\\n+CGATT: 1\\r\\n\\r\\nOK\\r\\n
    >>> flow.close(); s.close()
"""

from __future__ import annotations

import concurrent.futures
import html
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airlab.aliyun import (
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
    RegisteredDevice,
    connwl_mqtt_credentials,
    mqtt_register_credentials,
    parse_register_push,
)
from airlab.aliyun.forms import HttpFormRequest
from airlab.aliyun.mqtt_credentials import MqttCredentials
from airlab.at.commands import httpaction, httpdata, httppara, mconfig, mconnect, mipstart, sapbr
from airlab.at.events import Direction, Urc
from airlab.at.redact import redact_bytes
from airlab.at.transcript import Record
from airlab.errors import CloudRejected, UsageError
from airlab.session import ModemSession, Response
from airlab.session.recipes import _auth_url
from airlab.widgets._box import BoxedWidget
from airlab.widgets._format import format_error
from airlab.widgets._threads import Worker

if TYPE_CHECKING:
    pass

__all__ = [
    "METHODS",
    "FlowState",
    "FlowStep",
    "StepThrough",
    "describe_outcome",
    "describe_response",
    "recipes_for",
    "wire_text",
]

#: method -> label (the names of the signing calculator where they are the same).
METHODS: dict[str, str] = {
    "http-auth": "HTTPS auth, then MQTT with iotId/iotToken (一机一密 HTTP认证)",
    "direct": "direct MQTT (一机一密直连)",
    "register": "HTTPS dynamic registration, then direct MQTT (一型一密)",
    "mqtt-register": "MQTT dynamic registration, then direct MQTT (一型一密 register)",
    "mqtt-regnwl": "MQTT dynamic registration without pre-registration, then connwl (免预注册)",
}

Outcome = Response | Urc


class FlowState(dict[str, Any]):
    """What steps hand to later steps (the iotToken of HTTPREAD, the DeviceSecret of a
    push ...), plus the secrets to mask in everything shown."""

    def __init__(self, secrets: Sequence[str | None] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = [s for s in secrets if s]

    def need(self, key: str, source: str, user: str) -> Any:
        """``self[key]``, or a UsageError telling which step to run first."""
        if key not in self:
            raise UsageError(
                user, f"run the step {source} first: {user} uses the {key} of its reply"
            )
        return self[key]

    def keep_secret(self, key: str, value: str) -> None:
        self[key] = value
        self.secrets.append(value)

    def redact(self, text: str) -> str:
        """``text`` with every known secret (and every automatic pattern) masked."""
        return redact_bytes(text.encode("utf-8"), self.secrets).decode("utf-8", "replace")


Runner = Callable[[ModemSession, FlowState], Outcome]
Reader = Callable[[Outcome, FlowState], str]


@dataclass(frozen=True)
class FlowStep:
    """One step: a name, the command it sends (or a template shown until it runs), how
    to run it, what it does (``explain``) and how to read its reply (``read``: returns
    what the reply means, may keep values for later steps, raises when it is a refusal).

    ``run`` takes the session and the flow's :class:`FlowState` (a function of the
    session alone is accepted too).
    """

    name: str
    command: str
    run: Callable[..., Outcome]
    explain: str = ""
    read: Reader | None = None


def _mask(value: str) -> str:
    return f"{'*' * len(value)} ({len(value)} characters, kept for the next steps)"


# ---------------------------------------------------------------------------- step makers


def _cmd(line: str, *, check: bool = True) -> Runner:
    return lambda s, _state: s.command(line, check=check)


def _step(
    name: str, line: str, explain: str, read: Reader | None = None, *, check: bool = True
) -> FlowStep:
    return FlowStep(name, line, _cmd(line, check=check), explain, read)


def _read_cgatt(r: Outcome, _state: FlowState) -> str:
    assert isinstance(r, Response)
    if r.args("+CGATT") == ("1",):
        return "+CGATT: 1 - attached to the packet network (附着): the bearer may open"
    return "+CGATT: 0 - not attached yet: run this step again until it answers 1"


def _read_sapbr_query(r: Outcome, _state: FlowState) -> str:
    assert isinstance(r, Response)
    args = r.args("+SAPBR") or ()
    if len(args) >= 3 and args[1] == "1":
        return f"bearer 1 is up (status 1) with the IP address {args[2]}"
    return "the bearer is not up: run 'SAPBR open' again (after CGATT answers 1)"


def _read_mqttstatu(r: Outcome, _state: FlowState) -> str:
    assert isinstance(r, Response)
    if any(line.replace(" ", "") == "+MQTTSTATU:1" for line in r.lines):
        return "1 = connected: the method is done"
    return "not connected (0 = no link, 2 = a link without an MQTT session)"


def _attach_steps(apn: str) -> list[FlowStep]:
    return [
        _step("CGATT?", "AT+CGATT?", "attached to the packet network?", _read_cgatt),
        _step(
            "SAPBR CONTYPE",
            sapbr(3, 1, "CONTYPE", "GPRS"),
            "bearer 1 carries packet data (GPRS)",
        ),
        _step(
            "SAPBR APN",
            sapbr(3, 1, "APN", apn),
            f"the APN ({apn or 'empty: the network chooses'})",
        ),
        _step(
            "SAPBR open",
            sapbr(1, 1),
            "open bearer 1 (an ERROR here only means it is already open)",
            check=False,
        ),
        _step("SAPBR query", sapbr(2, 1), "the bearer's state and IP", _read_sapbr_query),
    ]


def _http_steps(
    req: HttpFormRequest, auth_base: str | None, what: str, read_body: Reader
) -> list[FlowStep]:
    url_line = httppara("URL", _auth_url(req, auth_base), quote_value=False)
    type_line = httppara("USER_DEFINED", f"Content-type: {req.content_type}")
    data_line, _ = httpdata(req.body)

    def init(s: ModemSession, _state: FlowState) -> Response:
        r = s.command("AT+HTTPINIT", check=False)
        if not r.ok:  # left initialised by an earlier run: start over
            s.command("AT+HTTPTERM", check=False)
            r = s.command("AT+HTTPINIT")
        return r

    def action(s: ModemSession, _state: FlowState) -> Response:
        return s.command_and_wait(httpaction(1), urc="+HTTPACTION", fail=())

    def read_action(r: Outcome, state: FlowState) -> str:
        assert isinstance(r, Response) and r.urc is not None
        args = r.urc.args
        status = args[1] if len(args) >= 2 else "?"
        size = args[2] if len(args) >= 3 else "?"
        state["http_status"] = status
        if status == "200":
            return (
                f"+HTTPACTION: 1,200,{size} - the POST was answered HTTP 200, {size} bytes to read"
            )
        raise CloudRejected(
            int(status) if status.isdigit() else 0,
            f"+HTTPACTION answered {r.urc.line}",
            "HTTPACTION must answer 200: 600-606 are the module's own errors (bearer, DNS, "
            "URL); check the URL, the Content-type line and the HTTPDATA length",
        )

    return [
        FlowStep("HTTPINIT", "AT+HTTPINIT", init, "start the HTTP service"),
        _step("HTTPPARA URL", url_line, f"the URL of {what}"),
        _step(
            "HTTPPARA USER_DEFINED",
            type_line,
            "the Content-type header (a space after the colon, 切记)",
        ),
        FlowStep(
            "HTTPDATA",
            f"{data_line} + {req.length}-byte body",
            lambda s, _state: s.http_post_body(req.body),
            f"announce {req.length} bytes, wait for DOWNLOAD, send exactly the body",
            lambda _r, _state: f"DOWNLOAD then OK: the module holds the {req.length}-byte body",
        ),
        FlowStep(
            "HTTPACTION",
            httpaction(1),
            action,
            "POST; the +HTTPACTION URC brings the HTTP status and the reply's length",
            read_action,
        ),
        _step("HTTPREAD", "AT+HTTPREAD", "read the reply's JSON body", read_body),
        _step("HTTPTERM", "AT+HTTPTERM", "stop the HTTP service", check=False),
    ]


def _login_steps(
    creds_of: Callable[[FlowState], MqttCredentials],
    template: MqttCredentials | None,
    *,
    tls: bool,
    keepalive: int,
    suffix: str = "",
    source: str = "",
) -> list[FlowStep]:
    """MCONFIG, (SSL)MIPSTART, MCONNECT, MQTTSTATU; ``creds_of(state)`` gives the
    credentials when the step runs (``template``: shown before; None: placeholders)."""
    name_open = "SSLMIPSTART" if tls else "MIPSTART"
    connect_line = mconnect(1, keepalive)

    def config(s: ModemSession, state: FlowState) -> Response:
        creds = creds_of(state)
        state["creds"] = creds
        return s.command(mconfig(creds.client_id, creds.username, creds.password))

    def opened(s: ModemSession, state: FlowState) -> Response:
        creds = state.need("creds", "MCONFIG" + suffix, name_open + suffix)
        return s.command_and_wait(
            mipstart(creds.host, creds.port, tls=tls),
            urc=("CONNECT OK", "ALREADY CONNECT"),
            fail=("CONNECT FAIL", "CLOSED", "ERROR"),
        )

    def connect(s: ModemSession, state: FlowState) -> Response:
        state["mconnect_mark"] = s.mark()
        r = s.command_and_wait(connect_line, urc="CONNACK OK", fail=("ERROR", "CLOSED"))
        state["mconnect_sent"] = r.sent_mono
        return r

    def read_open(r: Outcome, _state: FlowState) -> str:
        assert isinstance(r, Response) and r.urc is not None
        if r.urc.name == "ALREADY CONNECT":
            return "ALREADY CONNECT: a link was still open; close it (AT+MIPCLOSE) and retry"
        return "CONNECT OK: the TLS link is up - send MCONNECT at once (the server waits ~5 s)"

    if template is not None:
        config_line = mconfig(template.client_id, template.username, template.password)
        open_line = mipstart(template.host, template.port, tls=tls)
    else:
        config_line = f'AT+MCONFIG="<client id>","<user name>","<password>" ({source})'
        open_line = f'AT+{name_open}="<host>",<port> ({source})'
    return [
        FlowStep(
            "MCONFIG" + suffix,
            config_line,
            config,
            "client id, user name, password (nothing is sent to the cloud yet)",
            lambda _r, state: f"OK: stored client id {state['creds'].client_id!r}",
        ),
        FlowStep(
            name_open + suffix,
            open_line,
            opened,
            "open the TLS link to the MQTT host (its name carries the productKey)",
            read_open,
        ),
        FlowStep(
            "MCONNECT" + suffix,
            connect_line,
            connect,
            "MQTT CONNECT with the MCONFIG values; CONNACK OK = logged in",
            lambda _r, _state: "CONNACK OK: the cloud accepted the login (return code 0)",
        ),
        _step(
            "MQTTSTATU" + suffix,
            "AT+MQTTSTATU",
            "the MQTT state",
            _read_mqttstatu,
        ),
    ]


def _mqtt_register_steps(
    creds: MqttCredentials, topic: str, *, keepalive: int, wait_closed: bool
) -> list[FlowStep]:
    connect_line = mconnect(1, keepalive)
    kind = "register" if topic == REGISTER_PUSH_TOPIC else "regnwl"

    def connect(s: ModemSession, state: FlowState) -> Response:
        state["register_mark"] = s.mark()
        r = s.command_and_wait(connect_line, urc="CONNACK OK", fail=("ERROR", "CLOSED"))
        state["register_sent"] = r.sent_mono
        return r

    def push(s: ModemSession, state: FlowState) -> Urc:
        since = state.need("register_mark", "MCONNECT", "push")
        return s.wait_for_urc(
            lambda u: u.name == "+MSUB" and u.topic == topic, since=since, fail=("CLOSED",)
        )

    def read_push(u: Outcome, state: FlowState) -> str:
        assert isinstance(u, Urc)
        result = parse_register_push(topic, u.payload or b"")
        intro = (
            f"the cloud's answer on {topic}: the module never subscribed to it, it prints "
            "every PUBLISH it gets as +MSUB"
        )
        if isinstance(result, RegisteredDevice):
            state.keep_secret("device_secret", result.device_secret)
            return f"{intro}; DeviceSecret {_mask(result.device_secret)}"
        assert isinstance(result, DeviceTokenGrant)
        state["grant"] = result
        state.keep_secret("device_token", result.device_token)
        return (
            f"{intro}; clientId {result.client_id!r} and DeviceToken {_mask(result.device_token)}"
        )

    def closed(s: ModemSession, state: FlowState) -> Urc:
        since = state.need("register_mark", "MCONNECT", "CLOSED")
        return s.wait_for_urc("CLOSED", timeout=30, since=since)

    steps = [
        FlowStep(
            "MCONFIG",
            mconfig(creds.client_id, creds.username, creds.password),
            lambda s, _state: s.command(mconfig(creds.client_id, creds.username, creds.password)),
            f"authType={kind} in the client id; the password is signed with the ProductSecret",
            lambda _r, _state: "OK: stored (securemode=2: TLS only)",
        ),
        FlowStep(
            "SSLMIPSTART",
            mipstart(creds.host, creds.port, tls=True),
            lambda s, _state: s.command_and_wait(
                mipstart(creds.host, creds.port, tls=True),
                urc=("CONNECT OK", "ALREADY CONNECT"),
                fail=("CONNECT FAIL", "CLOSED", "ERROR"),
            ),
            "dynamic registration works over TLS only",
            lambda _r, _state: "CONNECT OK: the TLS link is up - send MCONNECT at once",
        ),
        FlowStep(
            "MCONNECT",
            connect_line,
            connect,
            "the registration CONNECT; CONNACK OK, then the cloud pushes the result",
            lambda _r, _state: "CONNACK OK: the registration was accepted",
        ),
        FlowStep(
            "+MSUB push",
            f"(no command: wait for the push on {topic})",
            push,
            "the result arrives as a message on a topic nobody subscribed to",
            read_push,
        ),
    ]
    if wait_closed:
        steps.append(
            FlowStep(
                "CLOSED",
                "(no command: wait for the cloud to hang up)",
                closed,
                "the registration link is only for this answer: the cloud closes it",
                lambda _r, _state: "CLOSED: the cloud ended the registration link",
            )
        )
    else:
        steps += [
            _step(
                "MDISCONNECT",
                "AT+MDISCONNECT",
                "hang up at once, as the SDKs do (the cloud would close the link itself)",
                check=False,
            ),
            _step("MIPCLOSE", "AT+MIPCLOSE", "close the TLS link", check=False),
        ]
    return steps


# ---------------------------------------------------------------------------- recipes


def recipes_for(
    method: str,
    lab: Any,
    *,
    sign_method: str = "hmacmd5",
    timestamp: str | int | None = None,
    keepalive: int = 120,
    tls: bool = True,
    apn: str = "",
    random: str | None = None,
    wait_closed: bool = False,
    auth_base: str | None = None,
) -> list[FlowStep]:
    """The steps of ``method`` (a key of :data:`METHODS`) for ``lab`` (a
    :class:`~airlab.lesson.Lesson`: its identity and bench address) or an identity.

    ``sign_method``/``timestamp``: the signature of the direct and HTTPS-auth logins;
    ``random``: the nonce of a registration (default a fresh one); ``wait_closed``:
    MQTT registration waits for the cloud's ``CLOSED`` (the emulator: 15 s) instead of
    hanging up itself; ``auth_base``: the auth server on the bench (as in
    :func:`~airlab.session.recipes.http_auth_then_mqtt`).  Registration methods need
    the identity's ``product_secret`` and a device not yet activated
    (``lab.new_device()``).

    >>> from airlab.lesson import Identity
    >>> [s.name for s in recipes_for("direct", Identity.tutorial())][-3:]
    ['SSLMIPSTART', 'MCONNECT', 'MQTTSTATU']
    >>> [s.command for s in recipes_for("http-auth", Identity.tutorial())][-4]
    'AT+MCONFIG="<client id>","<user name>","<password>" (from the HTTPREAD reply)'
    """
    if method not in METHODS:
        raise UsageError("method", f"step-through knows {', '.join(METHODS)}, got {method!r}")
    identity = getattr(lab, "identity", lab)
    target: dict[str, Any] = lab.mqtt_target(tls) if hasattr(lab, "mqtt_target") else {}
    pk, dn = identity.product_key, identity.device_name
    region = getattr(identity, "region", "cn-shanghai")
    product_secret = getattr(identity, "product_secret", None) or ""
    nonce = random if random is not None else new_random()
    steps = _attach_steps(apn)

    def direct(secret: str) -> MqttCredentials:
        return direct_mqtt_credentials(
            pk, dn, secret, sign_method=sign_method, timestamp=timestamp, region=region, **target
        )

    if method == "direct":
        creds = direct(identity.device_secret or "")
        return steps + _login_steps(lambda _s: creds, creds, tls=tls, keepalive=keepalive)

    if method == "http-auth":
        req = http_auth_request(
            pk,
            dn,
            identity.device_secret or "",
            sign_method=sign_method,
            timestamp=timestamp,
            region=region,
        )

        def read_auth(r: Outcome, state: FlowState) -> str:
            assert isinstance(r, Response)
            reply = parse_http_auth_reply(r.payload or b"")  # CloudRejected: code != 200
            state["iot_id"] = reply.iot_id
            state.keep_secret("iot_token", reply.iot_token)
            state["auth_reply"] = reply
            where = f"; MQTT host {reply.host}:{reply.port}" if reply.host else ""
            return (
                f"code 200: iotId {reply.iot_id!r} (the MQTT user name) and iotToken "
                f"{_mask(reply.iot_token)} (the password){where}"
            )

        def after_auth(state: FlowState) -> MqttCredentials:
            reply = state.need("auth_reply", "HTTPREAD", "MCONFIG")
            creds = mqtt_credentials_after_http_auth(reply, pk, dn, region=region)
            if target:
                creds = MqttCredentials(
                    creds.client_id, creds.username, creds.password, target["host"],
                    target["port"], creds.sign_content, creds.sign_method,
                )  # fmt: skip
            return creds

        return (
            steps
            + _http_steps(req, auth_base, "/auth/devicename (HTTPS auth)", read_auth)
            + _login_steps(
                after_auth, None, tls=tls, keepalive=keepalive, source="from the HTTPREAD reply"
            )
        )

    def secret_login(source: str) -> Callable[[FlowState], MqttCredentials]:
        return lambda state: direct(state.need("device_secret", source, "MCONFIG (login)"))

    if method == "register":
        req = register_request(pk, dn, product_secret, random=nonce, region=region)

        def read_register(r: Outcome, state: FlowState) -> str:
            assert isinstance(r, Response)
            device = parse_register_reply(r.payload or b"")
            state.keep_secret("device_secret", device.device_secret)
            return f"code 200: DeviceSecret {_mask(device.device_secret)}"

        return (
            steps
            + _http_steps(req, auth_base, "/auth/register/device (一型一密)", read_register)
            + _login_steps(
                secret_login("HTTPREAD"),
                None,
                tls=tls,
                keepalive=keepalive,
                suffix=" (login)",
                source="signed with the DeviceSecret of the reply",
            )
        )

    kind = "register" if method == "mqtt-register" else "regnwl"
    creds = mqtt_register_credentials(
        pk, dn, product_secret, random=nonce, auth_type=kind, region=region, **target
    )
    topic = REGISTER_PUSH_TOPIC if kind == "register" else REGNWL_PUSH_TOPIC
    steps += _mqtt_register_steps(creds, topic, keepalive=keepalive, wait_closed=wait_closed)
    if kind == "register":
        creds_of = secret_login("+MSUB push")
        source = "signed with the DeviceSecret of the push"
    else:

        def creds_of(state: FlowState) -> MqttCredentials:
            grant = state.need("grant", "+MSUB push", "MCONFIG (login)")
            return connwl_mqtt_credentials(grant, region=region, **target)

        source = "clientId and DeviceToken of the push"
    return steps + _login_steps(
        creds_of, None, tls=tls, keepalive=keepalive, suffix=" (login)", source=source
    )


# ---------------------------------------------------------------------------- display


def describe_response(r: Response) -> str:
    """``AT+CGATT? -> OK (+CGATT: 1)`` plus the URC when there is one (no times)."""
    result = r.result if r.code is None else f"{r.result}: {r.code}"
    text = f"{r.command} -> {result}"
    info = [line for line in r.lines if line.strip()]
    if info:
        text += f" ({'; '.join(info)})"
    if r.urc is not None:
        text += f" then {r.urc.line}"
    return text


def describe_outcome(outcome: Outcome) -> str:
    """:func:`describe_response`, or ``<- <URC line>`` for an awaited URC."""
    if isinstance(outcome, Urc):
        return f"<- {outcome.line}"
    return describe_response(outcome)


def _visible(data: bytes) -> str:
    text = data.decode("utf-8", "backslashreplace")
    return text.replace("\r", "\\r").replace("\n", "\\n")


def wire_text(records: Sequence[Any], secrets: Sequence[str] = ()) -> str:
    """The bytes of transcript ``records``, one line per direction change (``→`` host,
    ``←`` module), CR and LF written ``\\r`` ``\\n``, secrets masked.

    >>> from airlab.at.transcript import Record
    >>> wire_text([Record("sent", b"AT\\r"), Record("received", b"AT\\r\\r\\nOK\\r\\n")])
    '→ AT\\\\r\\n← AT\\\\r\\\\r\\\\nOK\\\\r\\\\n'
    """
    blocks: list[tuple[Direction, bytearray]] = []
    for rec in records:
        direction = Direction(rec.direction)
        if blocks and blocks[-1][0] is direction:
            blocks[-1][1].extend(rec.data)
        else:
            blocks.append((direction, bytearray(rec.data)))
    lines = []
    for direction, data in blocks:
        arrow = "→" if direction is Direction.SENT else "←"
        lines.append(f"{arrow} {_visible(redact_bytes(bytes(data), secrets))}")
    return "\n".join(lines)


def _takes_state(run: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(run).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)


class StepThrough(BoxedWidget):
    """A button per step, "Next step" and "Run all"; beside each step its command, the
    bytes on the wire, the reply, its latency and what it means.

    ``status[i]``: the reply of step ``i`` (without times; an error as ``!! …``);
    ``latency[i]``: ``(to the final result, to the URC or None)`` in seconds, or None;
    ``commands[i]``: the command as sent (secrets masked); ``wire[i]``: its bytes
    (:func:`wire_text`); ``meaning[i]``: what the reply means; ``state``: the values
    handed between steps (:class:`FlowState`); ``done``: every step ran without error.
    """

    def __init__(self, session: ModemSession, steps: Sequence[FlowStep], lab: Any = None) -> None:
        import ipywidgets as w

        if not steps:
            raise UsageError("steps", "give at least one step (recipes_for('direct', lab))")
        self.session = session
        self.steps = list(steps)
        identity = getattr(lab, "identity", lab)
        self.state = FlowState(
            [getattr(identity, "device_secret", None), getattr(identity, "product_secret", None)]
        )
        n = len(self.steps)
        self.status: list[str] = ["" for _ in range(n)]
        self.latency: list[tuple[float, float | None] | None] = [None] * n
        self.commands: list[str] = [self.state.redact(s.command) for s in self.steps]
        self.wire: list[str] = ["" for _ in range(n)]
        self.meaning: list[str] = ["" for _ in range(n)]
        self.ok: list[bool | None] = [None] * n
        self.next_index = 0
        self._takes_state = [_takes_state(s.run) for s in self.steps]
        self.buttons = [
            w.Button(
                description=f"{i + 1}. {step.name}",
                tooltip=self.commands[i],
                layout=w.Layout(width="14em"),
            )
            for i, step in enumerate(self.steps)
        ]
        self.results = [w.HTML(self._html(i, running=False)) for i in range(n)]
        for i, button in enumerate(self.buttons):
            button.on_click(lambda _b, i=i: self.run_step(i))
        self.next_button = w.Button(description="Next step", button_style="primary")
        self.next_button.on_click(lambda _b: self.run_next())
        self.all_button = w.Button(description="Run all", button_style="info")
        self.all_button.on_click(lambda _b: self.run_all())
        rows = [w.HBox([b, r]) for b, r in zip(self.buttons, self.results, strict=True)]
        self._box = w.VBox([*rows, w.HBox([self.next_button, self.all_button])])
        self._worker = Worker("airlab-steps")
        self._closed = False

    @property
    def done(self) -> bool:
        """Every step has run, the last run of each without error."""
        return all(self.ok)

    def _plain(self) -> str:
        return f"StepThrough({len(self.steps)} steps)"

    def _html(self, i: int, *, running: bool) -> str:
        step = self.steps[i]
        esc = html.escape
        parts = [f"<code>{esc(self.commands[i])}</code>"]
        if step.explain:
            parts.append(f"<span style='color:gray'>{esc(step.explain)}</span>")
        if running:
            parts.append("<span style='color:gray'>running…</span>")
        elif self.ok[i] is not None:
            color = "#070" if self.ok[i] else "#c00"
            reply = f"<code style='color:{color}'>{esc(self.status[i])}</code>"
            if self.latency[i] is not None:
                final, urc = self.latency[i]  # type: ignore[misc]
                ms = f"{final * 1000:.1f} ms"
                if urc is not None:
                    ms += f", URC after {urc * 1000:.1f} ms"
                reply += f" <span style='color:gray'>{ms}</span>"
            parts.append(reply)
            if self.wire[i]:
                parts.append(
                    "<details><summary>bytes on the wire</summary><pre style='margin:0'>"
                    f"{esc(self.wire[i])}</pre></details>"
                )
            if self.meaning[i]:
                parts.append(f"<i>{esc(self.meaning[i])}</i>")
        return "<div style='line-height:1.4'>" + "<br>".join(parts) + "</div>"

    def run_next(self) -> concurrent.futures.Future[Outcome | None]:
        """Run the next step (wraps around at the end)."""
        i = self.next_index % len(self.steps)
        self.next_index = i + 1
        return self.run_step(i)

    def run_step(self, i: int) -> concurrent.futures.Future[Outcome | None]:
        """Run step ``i`` in the worker thread; the future gives its response (a
        :class:`~airlab.at.events.Urc` for a step that awaits one; None when it failed:
        the error is shown in red beside the step)."""
        self.results[i].value = self._html(i, running=True)
        self.next_index = i + 1
        return self._worker.submit(lambda: self._run(i))

    def run_all(self) -> concurrent.futures.Future[bool]:
        """Run the steps from the next one to the end, stopping at the first failure;
        the future gives True when the last step ran without error."""
        start = self.next_index % len(self.steps)
        self.next_index = len(self.steps)

        def job() -> bool:
            for i in range(start, len(self.steps)):
                if self._run(i) is None:
                    self.next_index = i + 1
                    return False
            return True

        return self._worker.submit(job)

    def _records_between(self, start: float, end: float) -> list[Any]:
        return [r for r in list(self.session.transcript.records) if start <= r.mono <= end]

    def _run(self, i: int) -> Outcome | None:
        step = self.steps[i]
        self.results[i].value = self._html(i, running=True)
        started = time.monotonic()
        try:
            out = (
                step.run(self.session, self.state)
                if self._takes_state[i]
                else step.run(self.session)
            )
        except Exception as exc:
            self._fail(i, exc, started)
            return None
        if isinstance(out, Urc):
            since = self.state.get("register_sent", self.state.get("mconnect_sent", started))
            delay = out.mono - since
            self.latency[i] = (delay, None)
            first = min(started, out.mono)
        else:
            self.latency[i] = (out.latency, out.urc_latency)
            first = started
            self.commands[i] = self.state.redact(out.command)
        self.status[i] = self.state.redact(describe_outcome(out))
        if isinstance(out, Urc):
            # the URC's own line: its bytes may share a read chunk with the reply before it
            own = Record(Direction.RECEIVED, f"\r\n{out.line}\r\n".encode(), mono=out.mono)
            self.wire[i] = wire_text([own], self.state.secrets)
        else:
            records = self._records_between(first, time.monotonic())
            self.wire[i] = wire_text(records, self.state.secrets)
        try:
            if step.read is not None:
                self.meaning[i] = self.state.redact(step.read(out, self.state))
            elif isinstance(out, Response) and not out.ok:
                self.meaning[i] = out.meaning or ""
        except Exception as exc:
            self._fail(i, exc, started, keep_status=True)
            return None
        self.ok[i] = not isinstance(out, Response) or out.ok or step.name in _MAY_FAIL
        self.results[i].value = self._html(i, running=False)
        return out

    def _fail(self, i: int, exc: BaseException, started: float, keep_status: bool = False) -> None:
        error = self.state.redact(format_error(exc))
        if keep_status:
            self.meaning[i] = error
        else:
            self.status[i] = error
            self.latency[i] = None
            self.wire[i] = wire_text(
                self._records_between(started, time.monotonic()), self.state.secrets
            )
            self.meaning[i] = ""
        self.ok[i] = False
        self.results[i].value = self._html(i, running=False)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until the clicked steps have run."""
        return self._worker.wait_idle(timeout)

    def close(self) -> None:
        """Stop the worker thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._worker.close(timeout=self.session.urc_timeout + 2)
        for b in (*self.buttons, self.next_button, self.all_button):
            b.disabled = True


#: Steps whose error reply is part of the flow (already open, nothing to close).
_MAY_FAIL = frozenset({"SAPBR open", "HTTPTERM", "MDISCONNECT", "MIPCLOSE"})
