"""Reading the cloud's JSON replies (``AT+HTTPREAD`` bodies, ``/ext/...`` pushes).

A reply that is not the expected JSON raises :class:`MalformedReply`; a well-formed
refusal (``code`` other than 200) raises :class:`~airlab.errors.CloudRejected`.

Example:
    >>> load_reply_object('{"code":200}')
    {'code': 200}
    >>> load_reply_object("<html>")
    Traceback (most recent call last):
    ...
    airlab.aliyun.replies.MalformedReply: reply is not JSON: Expecting value at 1:1: '<html>'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from airlab.errors import AirlabError, CloudRejected

__all__ = ["MalformedReply", "load_reply_object", "raise_for_code", "require_text"]


class MalformedReply(AirlabError, ValueError):
    """A reply from the cloud that cannot be read as the expected JSON object."""


def load_reply_object(text: str | bytes) -> dict[str, Any]:
    """Decode ``text`` (surrounding whitespace allowed) as a JSON object.

    Example:
        >>> load_reply_object(b' {"a": 1}\\r\\n')
        {'a': 1}
    """
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedReply(f"reply is not UTF-8 text: {exc}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        snippet = text.strip()[:60]
        raise MalformedReply(
            f"reply is not JSON: {exc.msg} at {exc.lineno}:{exc.colno}: {snippet!r}"
        ) from None
    if not isinstance(value, dict):
        raise MalformedReply(f"reply is JSON but not an object: {type(value).__name__}")
    return value


def raise_for_code(reply: Mapping[str, Any]) -> None:
    """Raise :class:`~airlab.errors.CloudRejected` unless ``reply["code"] == 200``.

    Example:
        >>> raise_for_code({"code": 401, "message": "request auth error"})
        Traceback (most recent call last):
        ...
        airlab.errors.CloudRejected: cloud rejected the request: code 401: request auth error
    """
    if "code" not in reply:
        raise MalformedReply("reply has no 'code'")
    code = reply["code"]
    if code == 200 or code == "200":
        return
    message = reply.get("message")
    raise CloudRejected(code, str(message) if message is not None else "")


def require_text(data: Mapping[str, Any], key: str, where: str = "data") -> str:
    """``data[key]`` as a non-empty string, or :class:`MalformedReply` naming it.

    Example:
        >>> require_text({"iotId": "x"}, "iotId")
        'x'
    """
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedReply(f"reply {where} has no text '{key}'")
    return value
