"""Validation of the identifiers that go into a signature, before anything is computed.

Each check raises :class:`~airlab.errors.UsageError` whose ``field`` is the Python
parameter name (``device_name`` ...), so the command line can say ``--device-name: ...``.

The platform's DeviceName rule is 4-32 characters of ``[A-Za-z0-9-_@.:]``. We are
deliberately more tolerant (a user's existing device may predate the rule) and only
refuse what would break the protocol: empty, too long, or containing ``&``, ``|`` or
whitespace (``&`` separates the MQTT username, ``|`` the client id block).

Example:
    >>> validate_device_name("868488076506128")
    '868488076506128'
    >>> validate_device_name("a&b")
    Traceback (most recent call last):
    ...
    airlab.errors.UsageError: device_name: must not contain '&'
"""

from __future__ import annotations

import re

from airlab.errors import UsageError

__all__ = [
    "MAX_CLIENT_ID_LENGTH",
    "MAX_DEVICE_NAME_LENGTH",
    "is_hex",
    "validate_client_id",
    "validate_device_name",
    "validate_hex_signature",
    "validate_platform_device_name",
    "validate_platform_product_key",
    "validate_product_key",
    "validate_secret",
    "validate_secure_mode",
    "validate_timestamp",
]

MAX_DEVICE_NAME_LENGTH = 32
MAX_PRODUCT_KEY_LENGTH = 32
MAX_CLIENT_ID_LENGTH = 64
_FORBIDDEN = ("&", "|")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_DIGITS = re.compile(r"[0-9]+")


def _check_text(value: object, field: str, *, max_length: int, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise UsageError(field, f"must be a string, not {type(value).__name__}")
    if not value and not allow_empty:
        raise UsageError(field, "must not be empty")
    if len(value) > max_length:
        raise UsageError(field, f"is {len(value)} characters long; at most {max_length} allowed")
    for char in _FORBIDDEN:
        if char in value:
            raise UsageError(field, f"must not contain {char!r}")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise UsageError(field, "must not contain whitespace or control characters")
    return value


def validate_device_name(device_name: str, field: str = "device_name") -> str:
    """Return ``device_name`` if usable (non-empty, <= 32 chars, no ``&``, ``|``, spaces).

    Example:
        >>> validate_device_name("light1983432")
        'light1983432'
    """
    return _check_text(device_name, field, max_length=MAX_DEVICE_NAME_LENGTH)


_PLATFORM_DEVICE_NAME = re.compile(r"[A-Za-z0-9_\-@.:]{4,32}")
_PLATFORM_PRODUCT_KEY = re.compile(r"[A-Za-z0-9]{1,32}")


def validate_platform_device_name(device_name: object, field: str = "device_name") -> str:
    """Return ``device_name`` if the platform would create it: 4-32 characters of
    letters, digits and ``-_@.:`` (RegisterDevice's rule). The cloud emulator creates
    devices only through this check, so no name can act as a pattern (``${x}``, ``+``).

    Example:
        >>> validate_platform_device_name("868488076506128")
        '868488076506128'
        >>> validate_platform_device_name("${x}")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        airlab.errors.UsageError: device_name: '${x}' is not a valid DeviceName: ...
    """
    return _follow_rule(
        device_name, field, _PLATFORM_DEVICE_NAME, "DeviceName",
        "use 4-32 characters of letters, digits and - _ @ . :",
    )  # fmt: skip


def validate_platform_product_key(product_key: object, field: str = "product_key") -> str:
    """Return ``product_key`` if it is 1-32 ASCII letters and digits (the platform's
    keys are 11 such characters, e.g. ``k1hipglLdjU``); the emulator's products use it.

    Example:
        >>> validate_platform_product_key("a1/b")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        airlab.errors.UsageError: product_key: 'a1/b' is not a valid ProductKey: ...
    """
    return _follow_rule(
        product_key, field, _PLATFORM_PRODUCT_KEY, "ProductKey", "use 1-32 letters and digits"
    )


def _follow_rule(value: object, field: str, rule: re.Pattern[str], what: str, how: str) -> str:
    if not isinstance(value, str):
        raise UsageError(field, f"must be a string, not {type(value).__name__}")
    if not rule.fullmatch(value):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise UsageError(field, f"{shown!r} is not a valid {what}: {how}")
    return value


def validate_product_key(product_key: str, field: str = "product_key") -> str:
    """Return ``product_key`` if usable (non-empty, no ``&``, ``|``, ``/`` or spaces).

    Example:
        >>> validate_product_key("k1hipglLdjU")
        'k1hipglLdjU'
    """
    _check_text(product_key, field, max_length=MAX_PRODUCT_KEY_LENGTH)
    if "/" in product_key:
        raise UsageError(field, "must not contain '/'")
    return product_key


def validate_secret(secret: str, field: str) -> str:
    """Return a device or product secret if it is a non-empty string.

    Example:
        >>> validate_secret("", "device_secret")
        Traceback (most recent call last):
        ...
        airlab.errors.UsageError: device_secret: must not be empty
    """
    if not isinstance(secret, str):
        raise UsageError(field, f"must be a string, not {type(secret).__name__}")
    if not secret:
        raise UsageError(field, "must not be empty")
    return secret


def validate_client_id(
    client_id: str, field: str = "client_id", *, allow_empty: bool = True
) -> str:
    """Return the client id part (before the ``|`` block): <= 64 chars, no ``|``.

    An empty client id is allowed by default (the C SDK 4.x "assigned client id" mode).

    Example:
        >>> validate_client_id("SN1928339")
        'SN1928339'
    """
    if not isinstance(client_id, str):
        raise UsageError(field, f"must be a string, not {type(client_id).__name__}")
    if not client_id and not allow_empty:
        raise UsageError(field, "must not be empty")
    if len(client_id) > MAX_CLIENT_ID_LENGTH:
        raise UsageError(
            field, f"is {len(client_id)} characters long; at most {MAX_CLIENT_ID_LENGTH} allowed"
        )
    if "|" in client_id:
        raise UsageError(field, "must not contain '|' (it starts the parameter block)")
    return client_id


def validate_timestamp(timestamp: str | int | None, field: str = "timestamp") -> str | None:
    """Return the timestamp as a digit string (seconds or ms, any length), or ``None``.

    Example:
        >>> validate_timestamp(2524608000000)
        '2524608000000'
        >>> validate_timestamp(None) is None
        True
    """
    if timestamp is None:
        return None
    if isinstance(timestamp, bool):
        raise UsageError(field, "must be digits")
    text = str(timestamp) if isinstance(timestamp, int) else timestamp
    if not isinstance(text, str) or not _DIGITS.fullmatch(text):
        raise UsageError(field, f"must be digits (seconds or milliseconds), got {timestamp!r}")
    return text


def validate_secure_mode(secure_mode: int | str, field: str = "secure_mode") -> int:
    """Return ``secure_mode`` as an int (``2``, ``3``, ``-1``, ``0``, ``-2`` ...).

    Example:
        >>> validate_secure_mode("-2")
        -2
    """
    if isinstance(secure_mode, bool):
        raise UsageError(field, "must be an integer")
    if isinstance(secure_mode, int):
        return secure_mode
    try:
        return int(str(secure_mode).strip())
    except ValueError:
        raise UsageError(field, f"must be an integer, got {secure_mode!r}") from None


def is_hex(value: str) -> bool:
    """True if ``value`` is a non-empty string of hex digits (either case).

    Example:
        >>> is_hex("0F655b"), is_hex("xyz"), is_hex("")
        (True, False, False)
    """
    return isinstance(value, str) and bool(_HEX.fullmatch(value))


def validate_hex_signature(signature: str, field: str = "expected") -> str:
    """Return ``signature`` if it is hex (a signature a caller wants checked).

    Example:
        >>> validate_hex_signature("nothex")
        Traceback (most recent call last):
        ...
        airlab.errors.UsageError: expected: must be a hex string, got 'nothex'
    """
    if not is_hex(signature):
        raise UsageError(field, f"must be a hex string, got {signature!r}")
    return signature
