"""The console's admin routes of the emulator's HTTP(S) listeners (``/admin/...``
beside ``/admin/publish``) and the class tokens that reach one product only.

``_console_route(handler, path)`` serves one request of the ``_Handler`` of
:mod:`airlab.cloud.http_handler`; ``_console_answer`` turns a route, its query and body
into the JSON answer (or raises ``_ConsoleProblem`` with the HTTP status).

Example:
    >>> from airlab.cloud.registry import Registry
    >>> from airlab.cloud.fixtures import load_tutorial
    >>> class Console:  # the part of CloudEmulator these routes call
    ...     registry = Registry()
    ...     def flush(self): return True
    >>> _ = load_tutorial(Console.registry)
    >>> _console_answer(Console(), "/admin/flush", "/admin/flush", b"")
    {'flushed': True}
    >>> pupil = _Caller(admin=False, class_name="3a", product_key="k1hipglLdjU")
    >>> pupil.may_publish("/k1hipglLdjU/dev/user/get"), pupil.may_publish("/other/x")
    (True, False)
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airlab.at.redact import redact_bytes
from airlab.cloud.auth_common import _dumps
from airlab.cloud.model import ConnectionEvent, DeviceRef
from airlab.cloud.store.reader import mentions_product_key
from airlab.cloud.store.records import PRODUCT_SWITCHES
from airlab.errors import UsageError

if TYPE_CHECKING:
    from airlab.cloud.http_handler import _Handler

log = logging.getLogger("airlab.cloud.http_api")


# ==========================================================================================
# Console admin routes (added for airlab.cloud.service; separate from the routes of http_handler).
#
# ``HttpEndpoints.console`` (an attribute set after construction, default absent) is an
# object with ``status()``, ``online_devices()`` (items with ``as_dict()``),
# ``reset_registration(pk, dn)``, ``flush()``, ``registry``, ``product_settings(pk)``,
# ``set_dynamic_registration(pk, on)``, ``set_host_check(pk, on)`` and
# ``wipe(logs_only=, dry_run=)`` (``POST /admin/wipe`` ``{"logs_only"?: bool,
# "dry_run"?: bool}``: ``airlab cloud reset``; answers ``{"removed": {table: rows}}``,
# what would be removed with ``dry_run``). Every route needs
# ``Authorization: Bearer <admin token>`` and answers JSON ``{"code": 200, ...}``;
# errors use the HTTP status as ``code`` (401, 400, 404, 405, 503). Successful reads are
# not logged (a notebook may poll them); refusals are logged as ``admin`` events.
# ==========================================================================================

_CONSOLE_ROUTES = {
    "/admin/status": "GET",
    "/admin/online": "GET",
    "/admin/log": "GET",
    "/admin/reset": "POST",
    "/admin/flush": "POST",
    "/admin/product": "POST",
    "/admin/wipe": "POST",
    # added for class tokens and RemoteCloud over the network (see "Class tokens" below)
    "/admin/devices": "GET",
    "/admin/device": "POST",
    "/admin/topic-classes": "GET",
    "/admin/topic-class": "POST",
    "/admin/new-product": "POST",
}
_LOG_LIMIT = 10_000


def _console_route(handler: _Handler, path: str) -> None:
    if handler._has_body():
        body = handler._read_body("admin")
        if body is None:
            return
    else:
        body = b""
    endpoints = handler.endpoints
    caller = _authorize(handler)
    if caller is None:
        return
    method = _CONSOLE_ROUTES[path]
    if handler.command != method:
        handler._error(405, "admin", f"{handler.command} is not allowed on {path}; use {method}",
                       headers={"Allow": method})  # fmt: skip
        return
    console = getattr(endpoints, "console", None)
    if console is None:
        handler._error(503, "admin", "no console: the emulator service is not attached")
        return
    try:
        answer = _console_answer(console, path, handler.path, body, caller)
    except _ConsoleProblem as exc:
        handler._error(exc.status, "admin", exc.message)
        return
    except Exception as exc:
        log.exception("console route %s failed", path)
        handler._error(500, "admin", f"{path} failed: {exc}")
        return
    handler._send(200, _dumps({"code": 200, "message": "success", **answer}))


class _ConsoleProblem(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _console_answer(
    console: Any, path: str, raw_path: str, body: bytes, caller: _Caller | None = None
) -> dict[str, Any]:
    from urllib.parse import parse_qs, urlsplit

    caller = caller or _ADMIN
    if path in _ADMIN_ONLY and not caller.admin:
        raise _ConsoleProblem(403, caller.forbidden(path))
    if path in _SCOPED_ROUTES:
        return _SCOPED_ROUTES[path](console, caller, raw_path, body)
    if path == "/admin/log" and (not caller.admin or _wants_rows(raw_path)):
        return _log_rows_answer(console, caller, raw_path)
    if path == "/admin/status":
        return dict(console.status())
    if path == "/admin/online":
        return {
            "devices": [
                d.as_dict() for d in console.online_devices() if caller.reaches(d.product_key)
            ]
        }
    if path == "/admin/flush":
        return {"flushed": bool(console.flush())}
    if path == "/admin/product":
        request = _json_object(body)
        caller.check(request.get("product_key"), path)
        return _product_answer(console, request)
    if path == "/admin/wipe":
        return _wipe_answer(console, _json_object(body))
    if path == "/admin/reset":
        request = _json_object(body)
        pk, dn = request.get("product_key"), request.get("device_name")
        if not isinstance(pk, str) or not pk or not isinstance(dn, str) or not dn:
            raise _ConsoleProblem(400, "'product_key' and 'device_name' (text) are required")
        caller.check(pk, f"ResetThing of {pk}/{dn}")
        try:
            console.reset_registration(pk, dn)
        except UsageError as exc:
            raise _ConsoleProblem(404, exc.message) from None
        return {"product_key": pk, "device_name": dn, "activated": False}
    # /admin/log
    query = parse_qs(urlsplit(raw_path).query)
    table = (query.get("table") or ["connection"])[0]
    limit_text = (query.get("limit") or [str(_LOG_LIMIT)])[0]
    try:
        limit = max(0, min(int(limit_text), _LOG_LIMIT))
    except ValueError:
        raise _ConsoleProblem(400, f"'limit' must be an integer, not {limit_text!r}") from None
    registry = console.registry
    if table == "connection":
        rows = [_event_row(e) for e in registry.connection_log(limit=limit)]
    elif table == "message":
        rows = [_message_row(m) for m in registry.message_log(limit=limit)]
    else:
        raise _ConsoleProblem(400, f"'table' must be connection or message, not {table!r}")
    return {"table": table, "rows": rows}


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        request = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        request = None
    if not isinstance(request, dict):
        raise _ConsoleProblem(400, "the body must be a JSON object")
    return request


def _product_answer(console: Any, request: dict[str, Any]) -> dict[str, Any]:
    """``POST /admin/product``: check every field first, then switch, then answer the
    product's settings (no secret)."""
    pk = request.get("product_key")
    if not isinstance(pk, str) or not pk:
        raise _ConsoleProblem(400, "'product_key' (text) is required")
    unknown = sorted(set(request) - {"product_key", *PRODUCT_SWITCHES})
    if unknown:
        raise _ConsoleProblem(
            400, f"unknown field(s) {', '.join(unknown)}: use {', '.join(PRODUCT_SWITCHES)}"
        )
    for name in PRODUCT_SWITCHES:
        if name in request and not isinstance(request[name], bool):
            raise _ConsoleProblem(400, f"'{name}' must be true or false")
    try:
        settings = console.product_settings(pk)
        for name in PRODUCT_SWITCHES:
            if name in request:
                settings = getattr(console, f"set_{name}")(pk, request[name])
    except UsageError as exc:
        raise _ConsoleProblem(404, exc.message) from None
    return {"product": dict(settings)}


def _wipe_answer(console: Any, request: dict[str, Any]) -> dict[str, Any]:
    """``POST /admin/wipe``: back to the fixture (or only the logs emptied)."""
    unknown = sorted(set(request) - {"logs_only", "dry_run"})
    if unknown:
        raise _ConsoleProblem(400, f"unknown field(s) {', '.join(unknown)}: use logs_only, dry_run")
    flags = {name: request.get(name, False) for name in ("logs_only", "dry_run")}
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise _ConsoleProblem(400, f"'{name}' must be true or false")
    removed = console.wipe(logs_only=flags["logs_only"], dry_run=flags["dry_run"])
    return {**flags, "removed": dict(removed)}


def _device_columns(device: DeviceRef | None) -> dict[str, str | None]:
    """A log row's ``product_key`` and ``device_name`` (both None: no device known)."""
    return {
        "product_key": device.product_key if device else None,
        "device_name": device.device_name if device else None,
    }


def _event_row(e: ConnectionEvent) -> dict[str, Any]:
    return {
        "time": e.time,
        "protocol": e.protocol,
        "event": e.event,
        "accepted": e.accepted,
        **_device_columns(e.device),
        "client_id": e.client_id,
        "remote": e.remote,
        "code": e.code,
        "reason": e.reason,
        "explanation": e.explanation.as_dict() if e.explanation else None,
    }


def _message_row(m: Any) -> dict[str, Any]:
    return {
        "time": m.time,
        "direction": m.direction,
        **_device_columns(m.device),
        "client_id": m.client_id,
        "topic": m.topic,
        "qos": m.qos,
        "payload_b64": base64.b64encode(m.payload).decode("ascii"),
        "accepted": m.accepted,
        "reason": m.reason,
    }


# ==========================================================================================
# Class tokens (``airlab class room-file``): scoped access for students on their laptops.
#
# The bearer token is the admin token (everything, as before) or a class token: its
# SHA-256 digest is stored with the class (``Registry.add_class_token``), and it reaches
# only the class's product: the logs of its devices (and the unattributed refusals that
# mention its key), its devices without their secrets, a new device (with its secret),
# ResetThing, its settings and topic classes, publishing to ``/<pk>/...`` and
# ``/sys/<pk>/...``, its online devices, ``/admin/flush``. Anything else answers 403 with
# a JSON message naming the admin token (logged like every admin refusal).
#
# Routes added for them and for :class:`airlab.cloud.discovery.RemoteCloud` over the
# network: ``GET /admin/devices?product_key=``, ``POST /admin/device`` ``{"product_key",
# "device_name"?, "device_secret"?, "activated"?}``, ``GET
# /admin/topic-classes?product_key=``, ``POST /admin/topic-class`` ``{"product_key",
# "template", "permission"}``, ``POST /admin/new-product`` (admin only) and ``GET
# /admin/log?table=&product_key=&device=&after=&limit=`` (rows as stored, with their
# ``id``, ``payload_b64``; pages of at most ``limit``; ``next_after`` and ``more``).
# ==========================================================================================

_ADMIN_ONLY = frozenset({"/admin/status", "/admin/wipe", "/admin/new-product"})
_PAGE = 5000


@dataclass(frozen=True)
class _Caller:
    """Who called: the admin (``admin``) or a class token's class and product."""

    admin: bool
    class_name: str | None = None
    product_key: str | None = None

    def reaches(self, product_key: object) -> bool:
        return self.admin or (isinstance(product_key, str) and product_key == self.product_key)

    def may_publish(self, topic: str) -> bool:
        pk = self.product_key
        return self.admin or topic.startswith((f"/{pk}/", f"/sys/{pk}/"))

    def forbidden(self, what: str) -> str:
        return (
            f"{what} needs the teacher's admin token: the class token of class "
            f"{self.class_name!r} only reaches its product {self.product_key}"
        )

    def check(self, product_key: object, what: str) -> None:
        if not self.reaches(product_key):
            raise _ConsoleProblem(403, self.forbidden(what))


_ADMIN = _Caller(admin=True)


def _authorize(handler: _Handler) -> _Caller | None:
    """The caller of an admin route, or None after answering 401. The admin token is
    compared in constant time, a class token by its digest (``class_of_token``)."""
    token = handler.endpoints.admin_token
    scheme, _, value = handler.headers.get("Authorization", "").partition(" ")
    given = value.strip().encode("utf-8", "surrogateescape")
    if scheme.lower() == "bearer" and given:
        if token is not None and hmac.compare_digest(given, token.encode()):
            return _ADMIN
        registry = getattr(handler.endpoints.rules, "registry", None)
        finder = getattr(registry, "class_of_token", None)
        found = finder(value.strip()) if finder is not None else None
        if found is not None:
            return _Caller(admin=False, class_name=found[0], product_key=found[1])
    handler._error(
        401,
        "admin",
        "the admin API needs 'Authorization: Bearer <admin token>' (or a class token)"
        + (" (no admin token is configured)" if token is None else ""),
        headers={"WWW-Authenticate": "Bearer"},
    )
    return None


def _query(raw_path: str) -> dict[str, str]:
    from urllib.parse import parse_qs, urlsplit

    return {k: v[0] for k, v in parse_qs(urlsplit(raw_path).query).items() if v}


def _wants_rows(raw_path: str) -> bool:
    return bool({"product_key", "device", "after"} & set(_query(raw_path)))


def _valid_name(value: object, field: str, validate: Callable[[str], str]) -> str:
    """``value`` checked by ``validate`` (a 400 naming ``field`` when it is no text)."""
    if not isinstance(value, str) or not value:
        raise _ConsoleProblem(400, f"'{field}' (text) is required")
    try:
        return validate(value)
    except UsageError as exc:
        raise _ConsoleProblem(400, exc.message) from None


def _valid_pk(value: object) -> str:
    from airlab.aliyun import validate_platform_product_key

    return _valid_name(value, "product_key", validate_platform_product_key)


def _valid_dn(value: object) -> str:
    from airlab.aliyun import validate_platform_device_name

    return _valid_name(value, "device_name", validate_platform_device_name)


def _int_param(query: dict[str, str], name: str, default: int, top: int) -> int:
    text = query.get(name, str(default))
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise _ConsoleProblem(400, f"'{name}' must be a whole number, not {text!r}")
    return min(int(text), top)


def _scoped_pk(caller: _Caller, value: object, what: str) -> str:
    """The product a request is about: given (validated, and the caller's) or, for a
    class token, its class's."""
    if value is None and not caller.admin:
        return str(caller.product_key)
    pk = _valid_pk(value)
    caller.check(pk, what)
    return pk


def _log_rows_answer(console: Any, caller: _Caller, raw_path: str) -> dict[str, Any]:
    """``GET /admin/log`` with ``product_key``/``device``/``after`` (or a class token):
    rows as stored, oldest first, from id ``after`` on, one page of at most ``limit``."""
    query = _query(raw_path)
    table = query.get("table", "connection")
    if table not in ("connection", "message"):
        raise _ConsoleProblem(400, f"'table' must be connection or message, not {table!r}")
    pk = query.get("product_key")
    pk = _scoped_pk(caller, pk, f"the {table} log of product {pk}") if (
        pk is not None or not caller.admin
    ) else None  # fmt: skip
    dn = _valid_dn(query["device"]) if "device" in query else None
    if dn is not None and pk is None:
        raise _ConsoleProblem(400, "'device' needs 'product_key'")
    after = _int_param(query, "after", 0, 1 << 62)
    limit = max(1, _int_param(query, "limit", _PAGE, _PAGE))
    raw = console.registry.log_rows_after(f"{table}_log", after, pk, limit=limit)
    rows = []
    for row in raw:
        if dn is not None and (row["product_key"], row["device_name"]) != (pk, dn):
            continue
        if pk is not None and row["product_key"] is None and not mentions_product_key(row, pk):
            continue
        if not caller.admin and row.get("payload"):
            # a classmate's registration push carries its deviceSecret: masked (same length)
            row = {**row, "payload": redact_bytes(bytes(row["payload"]))}
        rows.append(_stored_row(row))
    return {
        "table": table,
        "rows": rows,
        "next_after": raw[-1]["id"] if raw else after,
        "more": len(raw) == limit,
    }


def _stored_row(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if "payload" in out:
        out["payload_b64"] = base64.b64encode(bytes(out.pop("payload") or b"")).decode("ascii")
    return out


def _device_dict(device: Any, *, secret: bool) -> dict[str, Any]:
    return {
        "product_key": device.product_key,
        "device_name": device.device_name,
        "device_secret": device.device_secret if secret else None,
        "enabled": device.enabled,
        "activated": device.activated,
        "iot_id": device.iot_id,
        "created": device.created,
    }


def _devices_answer(console: Any, caller: _Caller, raw_path: str, body: bytes) -> dict[str, Any]:
    """``GET /admin/devices?product_key=``: the device list; secrets for the admin only."""
    query = _query(raw_path)
    pk = query.get("product_key")
    pk = _scoped_pk(caller, pk, "listing devices" + (f" of {pk}" if pk else "")) if (
        pk is not None or not caller.admin
    ) else None  # fmt: skip
    devices = console.registry.devices(pk)
    return {"devices": [_device_dict(d, secret=caller.admin) for d in devices]}


def _new_device_answer(console: Any, caller: _Caller, raw_path: str, body: bytes) -> dict[str, Any]:
    """``POST /admin/device``: add a device (a fresh name unless given) and answer it
    with its DeviceSecret (the ProductSecret too, for the admin)."""
    from airlab.cloud.names import new_device_name

    request = _json_object(body)
    unknown = sorted(set(request) - {"product_key", "device_name", "device_secret", "activated"})
    if unknown:
        raise _ConsoleProblem(400, f"unknown field(s) {', '.join(unknown)}")
    pk = _valid_pk(request.get("product_key"))
    caller.check(pk, f"adding a device to {pk}")
    secret = request.get("device_secret")
    if secret is not None and not isinstance(secret, str):
        raise _ConsoleProblem(400, "'device_secret' must be text")
    activated = request.get("activated", False)
    if not isinstance(activated, bool):
        raise _ConsoleProblem(400, "'activated' must be true or false")
    registry = console.registry
    product = registry.get_product(pk)
    if product is None:
        raise _ConsoleProblem(404, f"no product {pk!r}")
    given = request.get("device_name")
    names = [_valid_dn(given)] if given is not None else [new_device_name() for _ in range(5)]
    device = None
    for name in names:
        try:
            device = registry.add_device(pk, name, secret)
            break
        except UsageError as exc:
            if given is not None or "already exists" not in exc.message:
                raise _ConsoleProblem(400, exc.message) from None
    if device is None:
        raise _ConsoleProblem(409, "no free device name after 5 tries")
    if activated:
        registry.mark_activated(device.ref)
        device = registry.get_device(device.ref)
    answer: dict[str, Any] = {"device": _device_dict(device, secret=True)}
    if caller.admin:
        answer["product_secret"] = product.product_secret
    return answer


def _topic_classes_answer(
    console: Any, caller: _Caller, raw_path: str, body: bytes
) -> dict[str, Any]:
    pk = _scoped_pk(caller, _query(raw_path).get("product_key"), "reading topic classes")
    if console.registry.get_product(pk) is None:
        raise _ConsoleProblem(404, f"no product {pk!r}")
    classes = console.registry.topic_classes(pk)
    return {"topic_classes": [{"template": c.template, "permission": c.permission.value}
                              for c in classes]}  # fmt: skip


def _add_topic_class_answer(
    console: Any, caller: _Caller, raw_path: str, body: bytes
) -> dict[str, Any]:
    request = _json_object(body)
    pk = _valid_pk(request.get("product_key"))
    caller.check(pk, f"adding a topic class to {pk}")
    template, permission = request.get("template"), request.get("permission")
    if not isinstance(template, str) or not isinstance(permission, str):
        raise _ConsoleProblem(400, "'template' and 'permission' (text) are required")
    try:
        added = console.add_topic_class(pk, template, permission)
    except UsageError as exc:
        raise _ConsoleProblem(400, exc.message) from None
    return {"topic_class": {"template": added.template, "permission": added.permission.value}}


def _new_product_answer(
    console: Any, caller: _Caller, raw_path: str, body: bytes
) -> dict[str, Any]:
    """``POST /admin/new-product`` (admin only): create a product, answer it with its
    ProductSecret."""
    request = _json_object(body)
    fields = {"product_key", "product_secret", "region", "topic_classes", *PRODUCT_SWITCHES}
    unknown = sorted(set(request) - fields)
    if unknown:
        raise _ConsoleProblem(400, f"unknown field(s) {', '.join(unknown)}")
    pk = _valid_pk(request.get("product_key"))
    options: dict[str, Any] = {}
    for name in PRODUCT_SWITCHES:
        if name in request:
            if not isinstance(request[name], bool):
                raise _ConsoleProblem(400, f"'{name}' must be true or false")
            options[name] = request[name]
    for name in ("product_secret", "region"):
        if name in request and not isinstance(request[name], str):
            raise _ConsoleProblem(400, f"'{name}' must be text")
    classes = request.get("topic_classes")
    if classes is not None:
        if not isinstance(classes, list) or not all(
            isinstance(c, list) and len(c) == 2 and all(isinstance(x, str) for x in c)
            for c in classes
        ):
            raise _ConsoleProblem(400, "'topic_classes' must be [[template, permission], ...]")
        options["topic_classes"] = [tuple(c) for c in classes]
    if "region" in request:
        options["region"] = request["region"]
    try:
        product = console.add_product(pk, request.get("product_secret"), **options)
    except UsageError as exc:
        raise _ConsoleProblem(400, exc.message) from None
    return {
        "product": {
            "product_key": product.product_key,
            "product_secret": product.product_secret,
            "region": product.region,
            "dynamic_registration": product.dynamic_registration,
            "created": product.created,
            "host_check": product.host_check,
            "tls_required": product.tls_required,
        }
    }


_SCOPED_ROUTES: dict[str, Callable[[Any, _Caller, str, bytes], dict[str, Any]]] = {
    "/admin/devices": _devices_answer,
    "/admin/device": _new_device_answer,
    "/admin/topic-classes": _topic_classes_answer,
    "/admin/topic-class": _add_topic_class_answer,
    "/admin/new-product": _new_product_answer,
}
