"""``application/x-www-form-urlencoded`` request bodies, as sent with ``AT+HTTPDATA``.

``AT+HTTPDATA=<n>,...`` needs ``n`` = the number of **bytes** of the encoded body,
which :attr:`HttpFormRequest.length` gives.

Example:
    >>> encode_form([("a", "x y"), ("b", "1&2")])
    'a=x+y&b=1%262'
    >>> parse_form("productKey=pk&sign=AB&clientId=c%7C1")
    {'productKey': 'pk', 'sign': 'AB', 'clientId': 'c|1'}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote_plus

__all__ = ["FORM_CONTENT_TYPE", "HttpFormRequest", "encode_form", "parse_form"]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def encode_form(fields: Iterable[tuple[str, str]]) -> str:
    """Encode ``(name, value)`` pairs in the given order (like ``urllib.parse.urlencode``).

    Example:
        >>> encode_form([("deviceName", "dev@1:a")])
        'deviceName=dev%401%3Aa'
    """
    return "&".join(
        f"{quote_plus(name, safe='')}={quote_plus(value, safe='')}" for name, value in fields
    )


def parse_form(body: str | bytes) -> dict[str, str]:
    """Decode a form body into an ordered dict; never raises on odd input.

    Example:
        >>> parse_form(b"random=123456&signMethod=HmacMD5")
        {'random': '123456', 'signMethod': 'HmacMD5'}
    """
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


@dataclass(frozen=True, slots=True)
class HttpFormRequest:
    """A form POST ready for ``AT+HTTPPARA="URL",...`` / ``AT+HTTPDATA`` / ``AT+HTTPACTION=1``."""

    url: str
    fields: tuple[tuple[str, str], ...]
    sign: str
    sign_content: str
    content_type: str = FORM_CONTENT_TYPE

    @property
    def body(self) -> str:
        """The encoded body, fields in order."""
        return encode_form(self.fields)

    @property
    def length(self) -> int:
        """Bytes of the encoded body (the ``AT+HTTPDATA`` length)."""
        return len(self.body.encode("utf-8"))

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready dict (the CLI prints it).

        Example:
            >>> HttpFormRequest("u", (("a", "1"),), "s", "c").as_dict()["length"]
            3
        """
        return {
            "url": self.url,
            "body": self.body,
            "length": self.length,
            "sign": self.sign,
            "sign_content": self.sign_content,
            "content_type": self.content_type,
        }
