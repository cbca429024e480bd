"""The form fields RabbitMQ's ``rabbitmq_auth_backend_http`` posts, checked before any
of them reaches the rules: one row per field (which endpoints carry it, its longest
length, the characters it may hold).

Measured with RabbitMQ 3.10.8 (``auth_http.http_method = post``, form-encoded bodies):

==============  ==========================================================================
Endpoint        Fields
==============  ==========================================================================
user_path       ``username``, ``password``, ``vhost``, ``client_id``
vhost_path      ``username``, ``vhost``, ``ip``, ``tags``, ``client_id``
resource_path   ``username``, ``vhost``, ``resource``, ``name``, ``permission``, ``tags``,
                ``client_id``
topic_path      the resource fields but ``client_id``; ``routing_key`` (MQTT ``/`` → ``.``,
                ``+`` → ``*``), ``variable_map.client_id`` (read as ``client_id``),
                ``variable_map.username``, ``variable_map.vhost``
==============  ==========================================================================

Fields the table does not name (``ip``, ``tags``, ``variable_map.username`` …) are
ignored; a named field that is missing, repeated, too long or holds a character outside
its set makes the whole request invalid (answered ``deny``).

Example:
    >>> read_form("user", b"username=dn%26pk&password=ab&vhost=%2F&client_id=c1")["username"]
    'dn&pk'
    >>> read_form("topic", b"username=u&vhost=%2F&resource=topic&name=amq.topic&"
    ...     b"permission=push&routing_key=.a.b")
    Traceback (most recent call last):
    ...
    airlab.cloud.rabbitmq_forms.FormError: permission: 'push' is not one of read, write
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

__all__ = ["ENDPOINTS", "MAX_BODY", "FormError", "read_form"]

MAX_BODY = 8192
"""Longest request body read (bytes); a longer one is refused unread."""

ENDPOINTS = ("user", "vhost", "resource", "topic")
"""The four checks, named as in ``auth_http.<name>_path``."""

_PRINTABLE = re.compile(r"[\x21-\x7e]*")  # visible ASCII, no space


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    endpoints: str  # initials of the endpoints that must carry it: u, v, r, t
    longest: int
    optional: str = ""  # initials of the endpoints that may carry it
    alias: str = ""  # the name :func:`read_form` returns it under (default: ``name``)
    chars: re.Pattern[str] = _PRINTABLE
    choices: dict[str, tuple[str, ...]] | None = None  # endpoint -> allowed values


_FIELDS = (
    _Field("username", "uvrt", 256),
    _Field("password", "u", 512),
    _Field("client_id", "u", 512, optional="vr"),
    _Field("variable_map.client_id", "", 512, optional="t", alias="client_id"),
    _Field("vhost", "uvrt", 255),
    _Field("resource", "rt", 16, choices={"resource": ("exchange", "queue", "topic")}),
    _Field("name", "rt", 255),
    _Field(
        "permission",
        "rt",
        16,
        choices={"resource": ("configure", "read", "write"), "topic": ("read", "write")},
    ),
    _Field("routing_key", "t", 1024),
)


class FormError(ValueError):
    """A request RabbitMQ (or anyone else) posted does not fit the field table."""


def read_form(endpoint: str, body: bytes) -> dict[str, str]:
    """The checked fields of a form posted to ``endpoint`` (one of :data:`ENDPOINTS`).

    Raises :class:`FormError` naming the first field that does not fit. A field's value
    is never echoed for ``password``.

    Example:
        >>> read_form("vhost", b"username=u&vhost=%2F&ip=127.0.0.1")
        {'username': 'u', 'vhost': '/'}
        >>> read_form("user", b"username=u&password=%01&vhost=%2F&client_id=c")
        Traceback (most recent call last):
        ...
        airlab.cloud.rabbitmq_forms.FormError: password: holds a character outside \
visible ASCII (position 0)
    """
    if endpoint not in ENDPOINTS:
        raise FormError(f"endpoint: {endpoint!r} is not one of {', '.join(ENDPOINTS)}")
    if len(body) > MAX_BODY:
        raise FormError(f"body: {len(body)} bytes, more than {MAX_BODY}")
    try:
        text = body.decode("ascii")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=32
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError(f"body: not a form-encoded ASCII body ({exc})") from None
    seen: dict[str, str] = {}
    for key, value in pairs:
        if key in seen:
            raise FormError(f"{_shown(key)}: given twice")
        seen[key] = value
    initial = endpoint[0]
    fields: dict[str, str] = {}
    for spec in _FIELDS:
        if initial not in spec.endpoints + spec.optional:
            continue
        given = seen.get(spec.name)
        if given is None:
            if initial in spec.optional:
                continue
            raise FormError(f"{spec.name}: missing")
        _check(spec, endpoint, given)
        fields[spec.alias or spec.name] = given
    return fields


def _check(spec: _Field, endpoint: str, value: str) -> None:
    if len(value) > spec.longest:
        raise FormError(f"{spec.name}: {len(value)} characters, more than {spec.longest}")
    bad = spec.chars.fullmatch(value)
    if bad is None:
        position = next(i for i, ch in enumerate(value) if not spec.chars.fullmatch(ch))
        raise FormError(
            f"{spec.name}: holds a character outside visible ASCII (position {position})"
        )
    allowed = (spec.choices or {}).get(endpoint)
    if allowed is not None and value not in allowed:
        raise FormError(f"{spec.name}: {value!r} is not one of {', '.join(allowed)}")


def _shown(key: str) -> str:
    """A field name for an error line: at most 40 visible characters."""
    return repr(key[:40]) if _PRINTABLE.fullmatch(key[:40]) is None else key[:40]
