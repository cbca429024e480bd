"""The platform's device rules for a RabbitMQ node: the four checks of RabbitMQ's
``rabbitmq_auth_backend_http`` plugin, decided by :class:`~airlab.cloud.auth.Rules`
over a :class:`~airlab.cloud.registry.Registry`, and served over HTTP.

RabbitMQ 3.10.8 with ``rabbitmq_mqtt`` (measured) asks, for every MQTT client:

=============  ==========================  =============================================
Check          Asked when                  What a ``deny`` does to the MQTT client
=============  ==========================  =============================================
user_path      CONNECT                     CONNACK 4 (whatever code the rule chose)
vhost_path     CONNECT, after user_path    CONNACK 5
resource_path  exchange/queue use          publishes lost silently on ``amq.topic``:
                                           so always ``allow`` (the topic decides)
topic_path     SUBSCRIBE (read), PUBLISH   the connection is closed (no SUBACK 0x80)
               (write; remembered per
               connection by RabbitMQ)
=============  ==========================  =============================================

``routing_key`` is the MQTT topic with ``/`` written ``.`` and ``+`` written ``*``;
:func:`mqtt_topic` turns it back (a device name holding ``.`` cannot be told apart).
RabbitMQ sends neither the keepalive nor whether the client came over TLS: the CONNECT
is decided with ``keepalive`` (120 s, always in range) and ``tls`` given here, so the
keepalive rule never refuses and a product with "TLS required" is refused unless the
node's MQTT listener is TLS and ``tls=True``. Dynamic registration (``authType=register``
/ ``regnwl``) needs the pushes after CONNACK that only the embedded broker sends: refused
(rule ``rabbitmq_dynreg``) before the rules run.

One more user, :data:`OBSERVER_USER` with the ``observer_password`` given (none by
default), may log in and subscribe to any topic (never publish): airlab's own subscriber,
which sees what devices publish (RabbitMQ has no hook that shows a payload). Likewise
:data:`CONSOLE_USER` with the ``console_password`` given may publish to any topic (never
subscribe): the console's publisher (``airlab cloud publish`` under ``airlab cloud serve
--engine rabbitmq``).

Every CONNECT decision, SUBSCRIBE decision and refused PUBLISH goes to the registry's
connection log as the embedded broker writes it (refusals with the rule's explanation,
logged before the answer; the code is the one RabbitMQ sends, the rule's own in
``details["rule_code"]``); a request that does not fit the field table of
:mod:`~airlab.cloud.rabbitmq_forms` is denied and logged as ``rabbitmq_request``.
Passwords and signatures are never logged (the rules' explanations mask them).

Example:
    >>> from airlab.cloud.registry import Registry
    >>> from airlab.cloud.auth import Rules
    >>> from airlab.cloud.fixtures import load_tutorial
    >>> reg = Registry(); _ = load_tutorial(reg)
    >>> auth = RabbitAuth(Rules(reg))
    >>> auth.answer("user", b"username=868488076506128%26k1hipglLdjU&"
    ...     b"password=0f655b12adf519b9a7a2b0a990f398b6&vhost=%2F&"
    ...     b"client_id=868488076506128%7Csecuremode%3D3%2Csignmethod%3Dhmacmd5%7C")
    'allow'
    >>> auth.answer("topic", b"username=868488076506128%26k1hipglLdjU&vhost=%2F&"
    ...     b"resource=topic&name=amq.topic&permission=read&routing_key=.sys.other.dev.%23")
    'deny'
    >>> [e.event for e in reg.connection_log()]
    ['connect', 'subscribe']
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from airlab.aliyun import parse_client_id, parse_username
from airlab.cloud.auth import Rules
from airlab.cloud.model import (
    CONNACK_MEANINGS,
    ConnectionEvent,
    ConnectRequest,
    DeviceRef,
    Explanation,
    Permission,
)
from airlab.cloud.rabbitmq_forms import ENDPOINTS, MAX_BODY, FormError, read_form

__all__ = [
    "ALLOW",
    "CONSOLE_USER",
    "DENY",
    "OBSERVER_USER",
    "PATHS",
    "RabbitAuth",
    "RabbitAuthServer",
    "mqtt_topic",
]

log = logging.getLogger(__name__)

ALLOW = "allow"
DENY = "deny"

PATHS = {name: f"/rabbitmq/{name}" for name in ENDPOINTS}
"""The URL path of each check (``auth_http.<name>_path``)."""

OBSERVER_USER = "airlab-observer"
"""The user name of airlab's own subscriber (no ``&``: no device can have it)."""

CONSOLE_USER = "airlab-console"
"""The user name of the console's publisher (no ``&`` either)."""

# airlab's own users: what each is, the one permission it has, its password's rule name
_OWN_USERS = {
    OBSERVER_USER: ("airlab's own subscriber", "read", "observer_password"),
    CONSOLE_USER: ("the console's publisher", "write", "console_password"),
}

_USER_DENY_CODE = 4  # what RabbitMQ sends for a user_path deny, whatever the rule's code
_VHOST_DENY_CODE = 5


def mqtt_topic(routing_key: str) -> str:
    """The MQTT topic (filter) RabbitMQ wrote as an AMQP routing key.

    Example:
        >>> mqtt_topic(".k1hipglLdjU.868488076506128.user.*")
        '/k1hipglLdjU/868488076506128/user/+'
    """
    return routing_key.replace(".", "/").replace("*", "+")


class RabbitAuth:
    """The four checks, without sockets: :meth:`answer` takes the endpoint name and the
    posted body and returns ``"allow"`` or ``"deny"`` (logging the decision).

    ``rules``: a :class:`~airlab.cloud.auth.Rules` (the service passes a
    :class:`~airlab.cloud.service_support.ServiceRules`); ``vhost``: the one virtual host
    the node's MQTT plugin uses (``mqtt.vhost``); ``keepalive`` and ``tls``: what the
    CONNECT is assumed to carry (RabbitMQ does not say); ``observer_password`` and
    ``console_password``: the passwords of :data:`OBSERVER_USER` and
    :data:`CONSOLE_USER` (None: that user cannot log in).

    Example:
        >>> from airlab.cloud.registry import Registry
        >>> RabbitAuth(Rules(Registry())).answer("resource", b"username=u&vhost=%2F&"
        ...     b"resource=exchange&name=amq.topic&permission=write")
        'allow'
    """

    def __init__(
        self,
        rules: Rules,
        *,
        vhost: str = "/",
        keepalive: int = 120,
        tls: bool = False,
        observer_password: str | None = None,
        console_password: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rules = rules
        self.observer_password = observer_password
        self.console_password = console_password
        self.vhost = vhost
        self.keepalive = keepalive
        self.tls = tls
        self._clock = clock
        self._checks: dict[str, Callable[[dict[str, str]], str]] = {
            "user": self._user,
            "vhost": self._vhost,
            "resource": self._resource,
            "topic": self._topic,
        }

    def answer(self, endpoint: str, body: bytes) -> str:
        """``"allow"`` or ``"deny"`` for a form posted to ``endpoint`` (user, vhost,
        resource or topic); a form that does not fit is denied and logged."""
        try:
            form = read_form(endpoint, body)
        except FormError as exc:
            return self.bad_request(endpoint, str(exc))
        return self._checks[endpoint](form)

    def bad_request(self, endpoint: str, problem: str) -> str:
        """Log a request that cannot be read (rule ``rabbitmq_request``); ``"deny"``."""
        self._refused(
            "refused",
            None,
            code=None,
            reason=f"RabbitMQ {endpoint}_path request refused: {problem}",
            explanation=Explanation(
                "rabbitmq_request",
                f"the {endpoint}_path request does not fit the field table: {problem}",
                {"endpoint": endpoint},
            ),
        )
        return DENY

    # -- the checks ----------------------------------------------------------------------

    def _user(self, form: dict[str, str]) -> str:
        client_id, username = form["client_id"], form["username"]
        if username in _OWN_USERS:
            return self._own_user(username, client_id, form["password"])
        if parse_client_id(client_id).auth_type in ("register", "regnwl"):
            explanation = Explanation(
                "rabbitmq_dynreg",
                "dynamic registration (authType=register/regnwl) needs the embedded broker, "
                "which pushes the secret after CONNACK: run 'airlab cloud serve' for it",
                {"client_id": client_id},
            )
            self._refused_connect(client_id, None, _USER_DENY_CODE, explanation)
            return DENY
        request = ConnectRequest(
            client_id,
            username,
            form["password"].encode("ascii"),
            self.keepalive,
            tls=self.tls,
        )
        decision = self.rules.decide_connect(request)
        if not decision.accepted or decision.device is None or decision.pushes:
            base = decision.explanation or Explanation("internal_error", "no device", {})
            details = dict(base.details, rule_code=str(decision.return_code))
            explanation = Explanation(base.rule, base.message, details)
            self._refused_connect(client_id, decision.device, _USER_DENY_CODE, explanation)
            return DENY
        if decision.kind is not None:
            try:  # activated before the CONNACK, as the embedded broker does
                self.rules.connected(decision.device, decision.kind)
            except Exception:
                log.exception("rules.connected failed")
        self.rules.log_connection(
            self._event(
                "connect",
                True,
                decision.device,
                client_id=client_id,
                code=0,
                reason=CONNACK_MEANINGS[0],
                explanation=decision.explanation,
            )
        )
        return ALLOW

    def _own_user(self, username: str, client_id: str, password: str) -> str:
        role, _, rule = _OWN_USERS[username]
        expected = self.observer_password if username == OBSERVER_USER else self.console_password
        if expected is not None and hmac.compare_digest(expected.encode(), password.encode()):
            self.rules.log_connection(
                self._event(
                    "connect",
                    True,
                    None,
                    client_id=client_id,
                    code=0,
                    reason=f"{CONNACK_MEANINGS[0]} ({username}, {role})",
                )
            )
            return ALLOW
        explanation = Explanation(
            rule,
            f"{username} is {role}: "
            + ("its password does not match" if expected else "this service has none"),
            {"username": username},
        )
        self._refused_connect(client_id, None, _USER_DENY_CODE, explanation)
        return DENY

    def _vhost(self, form: dict[str, str]) -> str:
        if form["vhost"] == self.vhost:
            return ALLOW
        explanation = Explanation(
            "rabbitmq_vhost",
            f"the MQTT plugin asked for virtual host {form['vhost']!r}; this service "
            f"serves {self.vhost!r} (mqtt.vhost in rabbitmq.conf)",
            {"vhost": form["vhost"], "served": self.vhost},
        )
        device = self._device(form["username"])
        self._refused_connect(form.get("client_id"), device, _VHOST_DENY_CODE, explanation)
        return DENY

    def _resource(self, form: dict[str, str]) -> str:
        # a deny on amq.topic loses publishes silently: topics are decided in _topic
        return ALLOW

    def _topic(self, form: dict[str, str]) -> str:
        client_id = form.get("client_id")
        topic = mqtt_topic(form["routing_key"])
        if form["username"] in _OWN_USERS:  # the one permission each has, on any topic
            return self._own_topic(form["username"], form["permission"], topic, client_id)
        device = self._device(form["username"])
        reading = form["permission"] == "read"
        if device is None:
            permission = Permission(
                False,
                Explanation(
                    "unknown_device",
                    f"the user name {form['username']!r} names no device of the registry",
                    {"username": form["username"]},
                ),
            )
        elif reading:
            permission = self.rules.may_subscribe(device, topic)
        else:
            permission = self.rules.may_publish(device, topic, 0)
        if permission.allowed:
            if reading:  # as the embedded broker: a granted Sub is logged too
                self.rules.log_connection(
                    self._event(
                        "subscribe",
                        True,
                        device,
                        client_id=client_id,
                        reason=f"SUBSCRIBE {topic!r} granted",
                    )
                )
            return ALLOW
        what = "SUBSCRIBE" if reading else "PUBLISH"
        explanation = permission.explanation
        why = explanation.message if explanation else "No authorization"
        self._refused(
            "subscribe" if reading else "publish",
            device,
            client_id=client_id,
            reason=f"{what} {topic!r} refused: {why} (RabbitMQ closes the connection)",
            explanation=explanation,
        )
        return DENY

    def _own_topic(self, username: str, permission: str, topic: str, client_id: str | None) -> str:
        """airlab's own users: the observer reads anything and writes nothing, the
        console's publisher the other way round (a granted publish is not logged)."""
        allowed = _OWN_USERS[username][1]
        if permission == allowed:
            if allowed == "read":
                reason = f"SUBSCRIBE {topic!r} granted ({username})"
                self.rules.log_connection(
                    self._event("subscribe", True, None, client_id=client_id, reason=reason)
                )
            return ALLOW
        what, event = (
            ("PUBLISH", "publish") if permission == "write" else ("SUBSCRIBE", "subscribe")
        )
        only = "subscribes" if allowed == "read" else "publishes"
        reason = f"{what} {topic!r} refused: {username} only {only}"
        self._refused(event, None, client_id=client_id, reason=reason)
        return DENY

    # -- helpers -------------------------------------------------------------------------

    def _device(self, username: str) -> DeviceRef | None:
        """The device a user name RabbitMQ already accepted logs in as: ``dn&pk``, or an
        iotId (token login)."""
        user = parse_username(username)
        if user.valid:
            return DeviceRef(user.product_key, user.device_name)
        found = self.rules.registry.device_by_iot_id(username)
        return found.ref if found is not None else None

    def _event(
        self, event: str, accepted: bool, device: DeviceRef | None, **fields: Any
    ) -> ConnectionEvent:
        return ConnectionEvent(self._clock(), "mqtt", event, accepted, device, **fields)

    def _refused_connect(
        self,
        client_id: str | None,
        device: DeviceRef | None,
        code: int,
        explanation: Explanation,
    ) -> None:
        self._refused(
            "refused",
            device,
            client_id=client_id,
            code=code,
            reason=CONNACK_MEANINGS[code],
            explanation=explanation,
        )

    def _refused(self, event: str, device: DeviceRef | None, **fields: Any) -> None:
        """Log a refusal and wait until it is committed (answered only then)."""
        self.rules.log_refusal(self._event(event, False, device, **fields))


class _Handler(BaseHTTPRequestHandler):
    """POST ``/rabbitmq/<check>`` with a form: ``allow`` or ``deny`` (text/plain)."""

    protocol_version = "HTTP/1.1"  # RabbitMQ's client keeps the connection open
    disable_nagle_algorithm = True  # else each answer waits ~40 ms for a delayed ACK
    server: _Server

    def do_POST(self) -> None:
        endpoint = _ENDPOINT_OF.get(self.path.split("?", 1)[0])
        length_text = self.headers.get("Content-Length", "")
        if endpoint is None or not length_text.isdigit() or int(length_text) > MAX_BODY:
            if endpoint is not None:  # a check's URL: RabbitMQ's, or someone's, bad request
                problem = f"body: Content-Length {length_text[:20]!r}, at most {MAX_BODY}"
                self.server.auth.bad_request(endpoint, problem)
            self._reply(404 if endpoint is None else 413, DENY)
            self.close_connection = True  # the body is not read
            return
        body = self.rfile.read(int(length_text))
        try:
            self._reply(200, self.server.auth.answer(endpoint, body))
        except Exception:
            log.exception("RabbitMQ %s check failed", endpoint)
            self._reply(500, DENY)

    def _reply(self, status: int, text: str) -> None:
        data = text.encode("ascii")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


_ENDPOINT_OF = {path: name for name, path in PATHS.items()}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    auth: RabbitAuth


class RabbitAuthServer:
    """:class:`RabbitAuth` over HTTP (a thread per request), bound to ``host``:``port``
    (127.0.0.1 and a free port by default). :attr:`urls` gives the four check URLs for
    ``rabbitmq.conf``.

    Example:
        >>> from airlab.cloud.registry import Registry
        >>> with RabbitAuthServer(RabbitAuth(Rules(Registry()))) as server:
        ...     sorted(server.urls) == sorted(PATHS) and server.port > 0
        True
    """

    def __init__(self, auth: RabbitAuth, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.auth = auth
        self._server = _Server((host, port), _Handler)
        self._server.auth = auth
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def urls(self) -> dict[str, str]:
        """``{check: URL}`` for the four checks."""
        return self.urls_at(self.host)

    def urls_at(self, address: str) -> dict[str, str]:
        """:attr:`urls` with ``address`` as their host (the one the nodes reach when
        this server binds every interface)."""
        host = f"[{address}]" if ":" in address else address
        return {name: f"http://{host}:{self.port}{path}" for name, path in PATHS.items()}

    def start(self) -> RabbitAuthServer:
        """Serve in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="rabbitmq-auth", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5.0)
            self._thread = None
        with contextlib.suppress(OSError):
            self._server.server_close()

    def __enter__(self) -> RabbitAuthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
