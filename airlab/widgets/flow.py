"""The pieces of a step-through flow: :class:`FlowStep` (a name, what it runs, how its
reply reads), :class:`FlowState` (what earlier replies gave, secrets kept out of the
display) and the steps shared by the methods (attach, HTTPS, MQTT login, MQTT
dynamic registration).  :func:`~airlab.widgets.flow_recipes.recipes_for` puts them
together; :class:`~airlab.widgets.steps.StepThrough` runs them.

Example:
    >>> from airlab.widgets.flow import FlowState
    >>> state = FlowState()
    >>> state.keep_secret("iotToken", "137eb0759ca248b79383a60c0b0e0f80")
    >>> state.redact("token 137eb0759ca248b79383a60c0b0e0f80")
    'token ********************************'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from airlab.aliyun.dynreg import (
    REGISTER_PUSH_TOPIC,
    DeviceTokenGrant,
    RegisteredDevice,
    parse_register_push,
)
from airlab.aliyun.forms import HttpFormRequest
from airlab.aliyun.mqtt_credentials import MqttCredentials
from airlab.at.commands import httpaction, httpdata, httppara, mconfig, mconnect, mipstart, sapbr
from airlab.at.events import Urc
from airlab.at.redact import redact_bytes
from airlab.errors import CloudRejected, UsageError
from airlab.session import ModemSession, Response
from airlab.session.recipe_parts import _auth_url

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


def _mconnect(line: str, key: str) -> Runner:
    """Runs ``AT+MCONNECT`` until ``CONNACK OK``, keeping the session's mark before it
    (``state[key + "_mark"]``) and when it was sent (``state[key + "_sent"]``)."""

    def connect(s: ModemSession, state: FlowState) -> Response:
        state[f"{key}_mark"] = s.mark()
        r = s.command_and_wait(line, urc="CONNACK OK", fail=("ERROR", "CLOSED"))
        state[f"{key}_sent"] = r.sent_mono
        return r

    return connect


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

    connect = _mconnect(connect_line, "mconnect")

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

    connect = _mconnect(connect_line, "register")

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
