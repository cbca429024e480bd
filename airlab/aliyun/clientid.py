"""The MQTT ClientId: ``<clientId>|k1=v1,k2=v2,...|`` — building it, and parsing it
the way the platform does (spec §7 item 2).

Parsing rules: split at the **first** ``|``; the parameter block runs to the **last**
``|``, which must end the string (so a ``|`` inside a value, as the Python SDK's
``sii=...`` produces, stays in the block); split the block on ``,`` and each item on its
first ``=``; skip empty items (the C SDK 4.x sends ``...,ext=3,|``); keep unknown keys;
a clientId part longer than 64 characters is invalid. Wire input never raises: an
invalid client id gives a :class:`ParsedClientId` whose ``reason`` says why.

Example:
    >>> build_client_id("868488076506128", [("securemode", "3"), ("signmethod", "hmacmd5")])
    '868488076506128|securemode=3,signmethod=hmacmd5|'
    >>> parsed = parse_client_id("SN1|securemode=2,signmethod=hmacsha256,ext=3,|")
    >>> parsed.client_id, dict(parsed.params), parsed.valid
    ('SN1', {'securemode': '2', 'signmethod': 'hmacsha256', 'ext': '3'}, True)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from airlab.aliyun.identity import MAX_CLIENT_ID_LENGTH, validate_client_id
from airlab.aliyun.methods import SignMethod, wire_sign_method
from airlab.errors import UsageError

_SECURE_MODE = re.compile(r"-?(?:0|[1-9][0-9]*)")

__all__ = ["ClientIdParams", "ParsedClientId", "build_client_id", "parse_client_id"]

ClientIdParams = Mapping[str, str] | Iterable[tuple[str, str]]
"""Extension parameters: a mapping or ``(key, value)`` pairs, written in the given order."""


def param_pairs(params: ClientIdParams) -> list[tuple[str, str]]:
    items = params.items() if isinstance(params, Mapping) else params
    return [(str(k), str(v)) for k, v in items]


def build_client_id(
    client_id: str, params: ClientIdParams = (), *, trailing_comma: bool = False
) -> str:
    """Write ``client_id`` and its parameter block, keys in the order given.

    With no parameters the result is the bare client id (the HTTPS-auth "guider" connect
    of the tutorial). ``trailing_comma`` reproduces the C SDK 4.x ``...,ext=3,|``.

    Example:
        >>> build_client_id("", {"timestamp": "2524608000000", "ext": "3"}, trailing_comma=True)
        '|timestamp=2524608000000,ext=3,|'
        >>> build_client_id("dev1")
        'dev1'
    """
    validate_client_id(client_id)
    pairs = param_pairs(params)
    if not pairs:
        return client_id
    for key, value in pairs:
        if not key or any(c in key for c in "=,|") or any(c.isspace() for c in key):
            raise UsageError("extra_params", f"bad parameter name {key!r}")
        if "," in value:
            raise UsageError("extra_params", f"value of {key!r} must not contain ','")
    block = ",".join(f"{key}={value}" for key, value in pairs)
    return f"{client_id}|{block}{',' if trailing_comma else ''}|"


@dataclass(frozen=True, slots=True)
class ParsedClientId:
    """An MQTT ClientId as the platform reads it.

    ``client_id`` is the part before the first ``|`` (the value signed as ``clientId``),
    ``params`` the extension parameters in order (a read-only mapping; for a repeated
    key the last value wins), ``items`` every ``(key, value)`` exactly as found.
    ``has_block`` is False for a bare client id. ``valid`` / ``reason`` say whether the
    platform would accept the format (CONNACK 2 otherwise).
    """

    raw: str
    client_id: str
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    items: tuple[tuple[str, str], ...] = ()
    has_block: bool = False
    reason: str | None = None

    @property
    def valid(self) -> bool:
        """True when the client id is well-formed."""
        return self.reason is None

    @property
    def sign_method_text(self) -> str | None:
        """The ``signmethod`` value as sent, or None when absent."""
        return self.params.get("signmethod")

    @property
    def sign_method(self) -> SignMethod | None:
        """The sign method (default ``hmacmd5`` when absent; None when unknown).

        Example:
            >>> parse_client_id("c|signmethod=HmacSHA1|").sign_method
            <SignMethod.HMACSHA1: 'hmacsha1'>
        """
        return wire_sign_method(self.params.get("signmethod"))

    @property
    def timestamp(self) -> str | None:
        """The ``timestamp`` value as sent, or None when absent."""
        return self.params.get("timestamp")

    @property
    def secure_mode(self) -> int | None:
        """``securemode`` as an int, or None when absent or not a plain ASCII integer.

        Example:
            >>> parse_client_id("c|securemode=3|").secure_mode, parse_client_id(
            ...     "c|securemode=03|").secure_mode
            (3, None)
        """
        text = self.params.get("securemode")
        # written exactly as the SDKs write it: " 3", "03", "+3" or a fullwidth digit
        # are unknown values (CONNACK 2), not 3
        if text is None or not _SECURE_MODE.fullmatch(text):
            return None
        return int(text)

    @property
    def auth_type(self) -> str | None:
        """``authType`` (``register``, ``regnwl``, ``connwl``) or None."""
        return self.params.get("authType")


def parse_client_id(raw: str) -> ParsedClientId:
    """Parse an MQTT ClientId received on the wire; never raises.

    Example:
        >>> parse_client_id("abc|securemode=3").reason
        "parameter block is not closed: the client id must end with '|'"
        >>> p = parse_client_id("pk&dn|sii=Eth|03AC|Eth|03AD,timestamp=1|")
        >>> p.params["sii"], p.timestamp
        ('Eth|03AC|Eth|03AD', '1')
    """
    if not isinstance(raw, str):
        return ParsedClientId(raw=str(raw), client_id="", reason="client id is not text")
    head, bar, rest = raw.partition("|")
    if not bar:
        reason = _client_id_reason(head)
        return ParsedClientId(raw=raw, client_id=head, reason=reason)
    if not rest.endswith("|"):
        return ParsedClientId(
            raw=raw,
            client_id=head,
            has_block=True,
            reason="parameter block is not closed: the client id must end with '|'",
        )
    block = rest[:-1]
    items: list[tuple[str, str]] = []
    reason = _client_id_reason(head)
    for item in block.split(","):
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not eq or not key:
            reason = reason or f"malformed parameter {item!r}: expected key=value"
            continue
        items.append((key, value))
    return ParsedClientId(
        raw=raw,
        client_id=head,
        params=MappingProxyType(dict(items)),
        items=tuple(items),
        has_block=True,
        reason=reason,
    )


def _client_id_reason(client_id: str) -> str | None:
    if len(client_id) > MAX_CLIENT_ID_LENGTH:
        return (
            f"client id part is {len(client_id)} characters long; "
            f"at most {MAX_CLIENT_ID_LENGTH} allowed"
        )
    return None
