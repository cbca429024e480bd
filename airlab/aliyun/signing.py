"""Sign contents (the text that is HMAC'd) and signatures for every method.

The rule is the same everywhere: take the signed parameters, sort them by **name**,
and write ``name`` + ``value`` with no separators. Which parameters are signed depends
on the method:

* MQTT direct / ``/auth/devicename``: ``clientId``, ``deviceName``, ``productKey`` and
  ``timestamp`` only if a timestamp is sent (key = device secret);
* dynamic registration (HTTPS and MQTT): ``deviceName``, ``productKey``, ``random``
  (key = product secret).

Example:
    >>> mqtt_sign_content("12345", "device", "pk", "789")
    'clientId12345deviceNamedeviceproductKeypktimestamp789'
    >>> register_sign_content("868488076506128", "k1hipglLdjU", "123456")
    'deviceName868488076506128productKeyk1hipglLdjUrandom123456'
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

from airlab.aliyun.identity import (
    validate_client_id,
    validate_device_name,
    validate_hex_signature,
    validate_product_key,
    validate_secret,
    validate_timestamp,
)
from airlab.aliyun.methods import SignMethod, hmac_hex, parse_sign_method
from airlab.errors import UsageError

__all__ = [
    "check_signature",
    "form_sign_content",
    "mqtt_sign_content",
    "register_sign_content",
    "sign",
    "signatures_equal",
    "verify_signature",
]


def form_sign_content(params: Mapping[str, str], exclude: Iterable[str] = ()) -> str:
    """Sorted ``name``+``value`` concatenation of ``params`` minus the ``exclude`` names.

    Example:
        >>> form_sign_content({"sign": "x", "productKey": "pk", "clientId": "c",
        ...                    "deviceName": "d"}, exclude={"sign"})
        'clientIdcdeviceNamedproductKeypk'
    """
    skipped = set(exclude)
    return "".join(f"{name}{params[name]}" for name in sorted(params) if name not in skipped)


def mqtt_sign_content(
    client_id: str, device_name: str, product_key: str, timestamp: str | int | None = None
) -> str:
    """Content signed with the device secret: ``clientId…deviceName…productKey…[timestamp…]``.

    ``clientId`` is kept even when empty (C SDK 4.x assigned-client-id mode).

    Example:
        >>> mqtt_sign_content("", "dn", "pk", 2524608000000)
        'clientIddeviceNamednproductKeypktimestamp2524608000000'
    """
    params = {
        "clientId": validate_client_id(client_id),
        "deviceName": validate_device_name(device_name),
        "productKey": validate_product_key(product_key),
    }
    ts = validate_timestamp(timestamp)
    if ts is not None:
        params["timestamp"] = ts
    return form_sign_content(params)


def register_sign_content(device_name: str, product_key: str, random: str) -> str:
    """Content signed with the product secret for dynamic registration.

    Example:
        >>> register_sign_content("dn", "pk", "Ab3")
        'deviceNamednproductKeypkrandomAb3'
    """
    if not isinstance(random, str) or not random:
        raise UsageError("random", "must not be empty")
    if any(c in random for c in "&|,=") or any(c.isspace() for c in random):
        raise UsageError("random", "must not contain '&', '|', ',', '=' or whitespace")
    return form_sign_content(
        {
            "deviceName": validate_device_name(device_name),
            "productKey": validate_product_key(product_key),
            "random": random,
        }
    )


def sign(
    secret: str,
    content: str,
    sign_method: SignMethod | str = SignMethod.HMACMD5,
    *,
    upper: bool = False,
    secret_field: str = "secret",
) -> str:
    """Hex signature of ``content`` (the MQTT password or the HTTPS ``sign``).

    Example:
        >>> sign("secret", "clientId12345deviceNamedeviceproductKeypktimestamp789", "hmacmd5")
        '14b198324fe55e1d3c88f2e705e201ee'
    """
    validate_secret(secret, secret_field)
    return hmac_hex(secret, content, parse_sign_method(sign_method), upper=upper)


def signatures_equal(expected: str, received: str) -> bool:
    """Case-insensitive constant-time comparison of two hex signatures.

    Example:
        >>> signatures_equal("0f655b12", "0F655B12")
        True
    """
    try:
        return hmac.compare_digest(
            expected.lower().encode("ascii"), received.lower().encode("ascii")
        )
    except (UnicodeEncodeError, AttributeError):
        return False


def verify_signature(
    secret: str, content: str, received: str, sign_method: SignMethod | str = SignMethod.HMACMD5
) -> bool:
    """Server side: does ``received`` (hex, any case) sign ``content``? Never raises on
    a malformed ``received``; an unknown ``sign_method`` or empty secret is simply False.

    Example:
        >>> verify_signature("fef32adf6dad46c2c7cbf335d3a7b021",
        ...     "clientId868488076506128deviceName868488076506128productKeyk1hipglLdjU",
        ...     "0F655B12ADF519B9A7A2B0A990F398B6")
        True
        >>> verify_signature("s", "content", "not hex!")
        False
    """
    if not isinstance(received, str) or not received:
        return False
    if not isinstance(secret, str) or not secret:
        return False
    try:
        expected = hmac_hex(secret, content, sign_method)
    except UsageError:
        return False
    return signatures_equal(expected, received)


def check_signature(
    secret: str,
    content: str,
    expected: str,
    sign_method: SignMethod | str = SignMethod.HMACMD5,
    *,
    secret_field: str = "secret",
) -> bool:
    """Client side: does the signature a user computed elsewhere (``expected``) match?

    Unlike :func:`verify_signature` it raises :class:`~airlab.errors.UsageError` for a
    non-hex ``expected``, an empty secret or an unknown sign method.

    Example:
        >>> check_signature("secret", "content", "zz")
        Traceback (most recent call last):
        ...
        airlab.errors.UsageError: expected: must be a hex string, got 'zz'
    """
    validate_hex_signature(expected, "expected")
    return signatures_equal(sign(secret, content, sign_method, secret_field=secret_field), expected)
