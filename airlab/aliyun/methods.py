"""Sign methods (签名方法) and the HMAC that every Alibaba Cloud IoT signature uses.

A signature is the hex of ``HMAC(secret, content)`` over the UTF-8 bytes of both. The
platform compares hex case-insensitively; the Python SDK sends lowercase, the C SDKs
3.x/4.x UPPERCASE.

Example:
    >>> parse_sign_method("HmacMD5")
    <SignMethod.HMACMD5: 'hmacmd5'>
    >>> hmac_hex("secret", "clientId12345deviceNamedeviceproductKeypktimestamp789",
    ...          SignMethod.HMACSHA1, upper=True)
    'FAFD82A3D602B37FB0FA8B7892F24A477F851A14'
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

from airlab.errors import UsageError

__all__ = [
    "DEFAULT_SIGN_METHOD",
    "SignMethod",
    "hmac_hex",
    "parse_sign_method",
    "wire_sign_method",
    "written_sign_method",
]


class SignMethod(StrEnum):
    """The three HMAC algorithms the platform accepts (value = canonical lowercase name)."""

    HMACMD5 = "hmacmd5"
    HMACSHA1 = "hmacsha1"
    HMACSHA256 = "hmacsha256"

    @property
    def digest(self) -> str:
        """The :mod:`hashlib` name of the underlying hash (``"md5"``, ``"sha1"``, ``"sha256"``)."""
        return self.value.removeprefix("hmac")

    @property
    def hex_length(self) -> int:
        """Number of hex characters of a signature made with this method (32, 40 or 64)."""
        return hashlib.new(self.digest).digest_size * 2


DEFAULT_SIGN_METHOD = SignMethod.HMACMD5
"""What the platform assumes when ``signmethod`` is absent (and the tutorial's choice)."""


def parse_sign_method(value: str | SignMethod, field: str = "sign_method") -> SignMethod:
    """Return the :class:`SignMethod` named by ``value``, in any letter case.

    Raises :class:`~airlab.errors.UsageError` naming ``field`` for anything else.

    Example:
        >>> parse_sign_method("hmacSha256")
        <SignMethod.HMACSHA256: 'hmacsha256'>
    """
    if isinstance(value, SignMethod):
        return value
    text = str(value).strip().lower()
    try:
        return SignMethod(text)
    except ValueError:
        known = ", ".join(m.value for m in SignMethod)
        raise UsageError(field, f"unknown sign method {value!r} (use one of {known})") from None


def written_sign_method(
    value: str | SignMethod, field: str = "sign_method"
) -> tuple[SignMethod, str]:
    """The method named by ``value`` (as :func:`parse_sign_method`) and the text to write
    in a client id or form: ``value`` as given (``HmacMD5``, ``hmacSha256`` stay so).

    Example:
        >>> written_sign_method("HmacMD5")
        (<SignMethod.HMACMD5: 'hmacmd5'>, 'HmacMD5')
    """
    method = parse_sign_method(value, field)
    return method, value if isinstance(value, str) else method.value


def wire_sign_method(text: str | None) -> SignMethod | None:
    """The sign method a device sent (server side, never raises): absent → the default
    ``hmacmd5``, any case accepted, an unknown name → ``None`` (also with spaces around
    it: the platform refuses ``hmacmd5 ``).

    >>> wire_sign_method(None), wire_sign_method("HmacSHA1"), wire_sign_method("sha9")
    (<SignMethod.HMACMD5: 'hmacmd5'>, <SignMethod.HMACSHA1: 'hmacsha1'>, None)
    >>> wire_sign_method("hmacmd5 ") is None
    True
    """
    if text is None:
        return DEFAULT_SIGN_METHOD
    try:
        return SignMethod(text.lower())
    except ValueError:
        return None


def hmac_hex(secret: str, content: str, method: SignMethod | str, *, upper: bool = False) -> str:
    """Hex of ``HMAC_method(secret, content)`` over UTF-8 bytes, lower case unless ``upper``.

    Example:
        >>> hmac_hex("fef32adf6dad46c2c7cbf335d3a7b021",
        ...          "clientId868488076506128deviceName868488076506128productKeyk1hipglLdjU",
        ...          "hmacmd5")
        '0f655b12adf519b9a7a2b0a990f398b6'
    """
    algorithm = parse_sign_method(method)
    digest = hmac.new(secret.encode("utf-8"), content.encode("utf-8"), algorithm.digest)
    text = digest.hexdigest()
    return text.upper() if upper else text
