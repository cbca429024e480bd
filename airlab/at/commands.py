"""Builders for the AT command lines the lessons send (pure functions, no terminator).

Every builder returns the command line as ``str`` without CR/LF, exactly as the
tutorial captures show it, and checks its arguments first: a wrong value raises
:class:`~airlab.errors.UsageError` naming the parameter, before anything is sent.

Example:
    >>> mpub("/k1hipglLdjU/868488076506128/user/update", 1, 0, "HelloWorld")
    'AT+MPUB="/k1hipglLdjU/868488076506128/user/update",1,0,"HelloWorld"'
    >>> httpdata("a=1&b=2")
    ('AT+HTTPDATA=7,20000', b'a=1&b=2')
"""

from __future__ import annotations

from airlab.errors import UsageError

__all__ = [
    "HTTPDATA_MAX",
    "MPUB_MAX",
    "at",
    "ate",
    "cmee",
    "escape_mpub",
    "hex_message",
    "httpaction",
    "httpdata",
    "httpinit",
    "httppara",
    "httpread",
    "httpterm",
    "mconfig",
    "mconnect",
    "mdisconnect",
    "mipclose",
    "mipstart",
    "mpub",
    "mpubex",
    "mqttmode",
    "mqttmsgget",
    "mqttmsgset",
    "mqttstatu",
    "msub",
    "munsub",
    "quote",
    "sapbr",
]

#: Largest ``AT+HTTPDATA`` body on the standard AT build (130048 on LSAT builds).
HTTPDATA_MAX = 3356
#: Largest ``AT+MPUB`` message on Air780EP V1007 (2384 on some 780E versions).
MPUB_MAX = 4100

_MPUB_ESCAPES = {"\\": "\\5C", '"': "\\22", "\r": "\\0D", "\n": "\\0A"}
_HTTP_METHODS = {"GET": 0, "POST": 1, "HEAD": 2}
_SAPBR_TAGS = {"CONTYPE", "APN", "USER", "PWD", "PHONENUM", "RATE"}


def _no_line_break(field: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise UsageError(field, "must not contain CR or LF (it would end the command line)")


def _int_in(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(field, f"must be an integer {low}-{high}, got {value!r}")
    if not low <= value <= high:
        raise UsageError(field, f"must be {low}-{high}, got {value}")
    return value


def _text(field: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise UsageError(field, f"must be a string, got {type(value).__name__}")
    return str(value)


def quote(value: str | int, field: str = "value") -> str:
    """Wrap a parameter in double quotes; refuse an embedded ``"`` (it cannot be escaped).

    >>> quote("CMIOT")
    '"CMIOT"'
    """
    text = _text(field, value)
    if '"' in text:
        raise UsageError(
            field,
            'must not contain a double quote ("); the firmware has no escape for it here '
            "(only an AT+MPUB message can carry one, written \\22: see escape_mpub)",
        )
    _no_line_break(field, text)
    return f'"{text}"'


def escape_mpub(message: str | bytes) -> str:
    r"""Escape an ``AT+MPUB`` message: ``"``→``\22``, CR→``\0D``, LF→``\0A``, ``\``→``\5C``.

    >>> escape_mpub('{"a":1}\n')
    '{\\22a\\22:1}\\0A'
    """
    if isinstance(message, bytes | bytearray):
        try:
            message = bytes(message).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(
                "message", "is not UTF-8 text: use hex_mode=True (AT+MQTTMODE=1) or AT+MPUBEX"
            ) from exc
    if not isinstance(message, str):
        raise UsageError("message", f"must be str or bytes, got {type(message).__name__}")
    return "".join(_MPUB_ESCAPES.get(ch, ch) for ch in message)


def hex_message(data: bytes | str) -> str:
    """The hex text of a message for ``AT+MQTTMODE=1`` (``"313233"`` publishes ``123``).

    >>> hex_message(b"123")
    '313233'
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, bytes | bytearray):
        raise UsageError("message", f"must be bytes or str, got {type(data).__name__}")
    return bytes(data).hex().upper()


def at(cmd: str = "") -> str:
    """Any command: ``at("+CGATT?")`` → ``AT+CGATT?``; a leading ``AT`` is kept as is.

    >>> at("+CSQ"), at("AT+CGATT?"), at()
    ('AT+CSQ', 'AT+CGATT?', 'AT')
    """
    text = _text("cmd", cmd).strip()
    _no_line_break("cmd", text)
    if text[:2].upper() == "AT":
        return text
    return "AT" + text


def ate(on: bool | int) -> str:
    """Echo on/off: ``ATE1`` / ``ATE0``.

    >>> ate(False)
    'ATE0'
    """
    if on not in (0, 1):
        raise UsageError("on", f"must be True/False (1/0), got {on!r}")
    return f"ATE{int(on)}"


def cmee(n: int) -> str:
    """Error reporting: 0 plain ``ERROR``, 1 numeric, 2 verbose ``+CME ERROR``.

    >>> cmee(2)
    'AT+CMEE=2'
    """
    return f"AT+CMEE={_int_in('n', n, 0, 2)}"


# ---------------------------------------------------------------------------- bearer, HTTP


def sapbr(cmd_type: int, cid: int = 1, tag: str | None = None, value: str | None = None) -> str:
    """Bearer: 0 close, 1 open, 2 query, 3 set parameter, 4 get parameters.

    >>> sapbr(3, 1, "CONTYPE", "GPRS")
    'AT+SAPBR=3,1,"CONTYPE","GPRS"'
    >>> sapbr(3, 1, "APN", ""), sapbr(1, 1)
    ('AT+SAPBR=3,1,"APN",""', 'AT+SAPBR=1,1')
    """
    _int_in("cmd_type", cmd_type, 0, 4)
    _int_in("cid", cid, 1, 3)
    if cmd_type != 3:
        if tag is not None or value is not None:
            raise UsageError("tag", "only cmd_type 3 (set parameter) takes a tag and a value")
        return f"AT+SAPBR={cmd_type},{cid}"
    if tag is None or value is None:
        raise UsageError("tag", "cmd_type 3 needs a tag (CONTYPE, APN, ...) and a value")
    tag_text = _text("tag", tag).upper()
    if tag_text not in _SAPBR_TAGS:
        raise UsageError("tag", f"must be one of {sorted(_SAPBR_TAGS)}, got {tag!r}")
    return f"AT+SAPBR=3,{cid},{quote(tag_text, 'tag')},{quote(value, 'value')}"


def httpinit() -> str:
    """Start the HTTP service.

    >>> httpinit()
    'AT+HTTPINIT'
    """
    return "AT+HTTPINIT"


def httpterm() -> str:
    """Stop the HTTP service.

    >>> httpterm()
    'AT+HTTPTERM'
    """
    return "AT+HTTPTERM"


def httppara(tag: str, value: str | int, *, quote_value: bool = True) -> str:
    """Set one HTTP parameter (``URL``, ``CID``, ``USER_DEFINED`` ...).

    Integers are written bare (``"CID",1``); ``quote_value=False`` writes a string bare
    too (the T01 capture sends ``"URL",https://…`` unquoted).

    >>> httppara("USER_DEFINED", "Content-type: application/x-www-form-urlencoded")
    'AT+HTTPPARA="USER_DEFINED","Content-type: application/x-www-form-urlencoded"'
    >>> httppara("CID", 1)
    'AT+HTTPPARA="CID",1'
    """
    tag_text = quote(tag, "tag")
    if isinstance(value, bool):
        raise UsageError("value", "must be a string or an integer")
    if isinstance(value, int):
        return f"AT+HTTPPARA={tag_text},{value}"
    text = _text("value", value)
    if quote_value:
        return f"AT+HTTPPARA={tag_text},{quote(text, 'value')}"
    _no_line_break("value", text)
    if '"' in text:
        raise UsageError("value", 'must not contain a double quote (")')
    return f"AT+HTTPPARA={tag_text},{text}"


def httpdata(
    body: str | bytes, timeout_ms: int = 20000, *, max_size: int = HTTPDATA_MAX
) -> tuple[str, bytes]:
    """The ``AT+HTTPDATA`` line and the exact bytes to send after ``DOWNLOAD``.

    The announced size is the length of the UTF-8 encoded body in bytes (two Chinese
    characters are 6 bytes).  An empty body (size 0) clears the stored data.

    >>> httpdata("中文")
    ('AT+HTTPDATA=6,20000', b'\\xe4\\xb8\\xad\\xe6\\x96\\x87')
    """
    if isinstance(body, str):
        data = body.encode("utf-8")
    elif isinstance(body, bytes | bytearray):
        data = bytes(body)
    else:
        raise UsageError("body", f"must be str or bytes, got {type(body).__name__}")
    _int_in("max_size", max_size, 0, 1 << 30)
    if len(data) > max_size:
        raise UsageError(
            "body",
            f"is {len(data)} bytes; AT+HTTPDATA takes at most {max_size} "
            "(3356 on the AT build; pass max_size for an LSAT build)",
        )
    _int_in("timeout_ms", timeout_ms, 1000, 120000)
    return f"AT+HTTPDATA={len(data)},{timeout_ms}", data


def httpaction(method: int | str) -> str:
    """Run the request: 0/``"GET"``, 1/``"POST"``, 2/``"HEAD"``.

    >>> httpaction("POST")
    'AT+HTTPACTION=1'
    """
    if isinstance(method, str):
        code = _HTTP_METHODS.get(method.upper())
        if code is None:
            raise UsageError("method", f"must be GET, POST or HEAD (or 0-2), got {method!r}")
        return f"AT+HTTPACTION={code}"
    return f"AT+HTTPACTION={_int_in('method', method, 0, 2)}"


def httpread(start: int | None = None, size: int | None = None) -> str:
    """Read the response body, whole or a range.

    >>> httpread(), httpread(0, 100)
    ('AT+HTTPREAD', 'AT+HTTPREAD=0,100')
    """
    if start is None and size is None:
        return "AT+HTTPREAD"
    if start is None or size is None:
        raise UsageError(
            "size" if size is None else "start", "give both start and size, or neither"
        )
    _int_in("start", start, 0, 1 << 30)
    _int_in("size", size, 1, 1 << 30)
    return f"AT+HTTPREAD={start},{size}"


# ---------------------------------------------------------------------------- MQTT


def _topic(topic: str, field: str = "topic") -> str:
    text = _text(field, topic)
    if not text:
        raise UsageError(field, "must not be empty")
    if len(text.encode("utf-8")) > 256:
        raise UsageError(field, "must be at most 256 bytes")
    return quote(text, field)


def _qos(qos: int) -> int:
    return _int_in("qos", qos, 0, 2)


def _retain(retain: int | bool) -> int:
    return _int_in("retain", int(retain) if isinstance(retain, bool) else retain, 0, 1)


def mconfig(client_id: str, username: str, password: str) -> str:
    """MQTT client id and credentials (quoted; ``"`` refused, each at most 256 bytes).

    >>> mconfig("868488076506128", "user", "pass")
    'AT+MCONFIG="868488076506128","user","pass"'
    """
    parts = []
    for field, value in (("client_id", client_id), ("username", username), ("password", password)):
        text = _text(field, value)
        if len(text.encode("utf-8")) > 256:
            raise UsageError(field, "must be at most 256 bytes")
        parts.append(quote(text, field))
    if parts[0] == '""':
        raise UsageError("client_id", "must not be empty")
    return "AT+MCONFIG=" + ",".join(parts)


def mipstart(host: str, port: int, *, tls: bool = False) -> str:
    """Open the MQTT TCP (``AT+MIPSTART``) or TLS (``AT+SSLMIPSTART``) connection.

    >>> mipstart("k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com", 1883, tls=True)
    'AT+SSLMIPSTART="k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883'
    """
    text = _text("host", host).strip()
    if not text:
        raise UsageError("host", "must not be empty")
    if " " in text:
        raise UsageError("host", "must not contain spaces")
    _int_in("port", port, 1, 65535)
    name = "AT+SSLMIPSTART" if tls else "AT+MIPSTART"
    return f"{name}={quote(text, 'host')},{port}"


def mconnect(clean_session: int = 1, keepalive: int = 120) -> str:
    """MQTT CONNECT: clean session 0/1, keep-alive 1–65535 s.

    >>> mconnect()
    'AT+MCONNECT=1,120'
    """
    cs = _int_in(
        "clean_session",
        int(clean_session) if isinstance(clean_session, bool) else clean_session,
        0,
        1,
    )
    return f"AT+MCONNECT={cs},{_int_in('keepalive', keepalive, 1, 65535)}"


def msub(topic: str, qos: int = 0) -> str:
    """Subscribe to one topic.

    >>> msub("/k1hipglLdjU/868488076506128/user/get", 0)
    'AT+MSUB="/k1hipglLdjU/868488076506128/user/get",0'
    """
    return f"AT+MSUB={_topic(topic)},{_qos(qos)}"


def munsub(topic: str) -> str:
    """Unsubscribe from one topic.

    >>> munsub("a/b")
    'AT+MUNSUB="a/b"'
    """
    return f"AT+MUNSUB={_topic(topic)}"


def mpub(
    topic: str,
    qos: int,
    retain: int | bool,
    message: str | bytes,
    *,
    hex_mode: bool = False,
    max_size: int = MPUB_MAX,
) -> str:
    """Publish a message given inside the command line (quoted, escaped).

    Text is escaped with :func:`escape_mpub`; with ``hex_mode=True`` (after
    ``AT+MQTTMODE=1``) the message is written as hex text.  ``max_size`` bounds the
    message argument as written (escaped text or hex text) in bytes; for long or
    binary payloads use :func:`mpubex`.

    >>> mpub("t", 0, 0, 'say "hi"')
    'AT+MPUB="t",0,0,"say \\\\22hi\\\\22"'
    >>> mpub("t", 0, 0, b"123", hex_mode=True)
    'AT+MPUB="t",0,0,"313233"'
    """
    t = _topic(topic)
    q = _qos(qos)
    r = _retain(retain)
    text = hex_message(message) if hex_mode else escape_mpub(message)
    size = len(text.encode("utf-8"))
    if size > max_size:
        raise UsageError(
            "message", f"is {size} bytes as written, AT+MPUB takes at most {max_size}: use mpubex"
        )
    return f'AT+MPUB={t},{q},{r},"{text}"'


def mpubex(topic: str, qos: int, retain: int | bool, length: int | None = None) -> str:
    """Publish raw bytes sent after the ``>`` prompt (by length, or ended by 0x1A).

    >>> mpubex("t", 1, 0, 5), mpubex("t", 0, 0)
    ('AT+MPUBEX="t",1,0,5', 'AT+MPUBEX="t",0,0')
    """
    head = f"AT+MPUBEX={_topic(topic)},{_qos(qos)},{_retain(retain)}"
    if length is None:
        return head
    return f"{head},{_int_in('length', length, 1, MPUB_MAX)}"


def mqttmode(mode: int) -> str:
    """0: MPUB messages are text (default); 1: they are hex.

    >>> mqttmode(1)
    'AT+MQTTMODE=1'
    """
    return f"AT+MQTTMODE={_int_in('mode', mode, 0, 1)}"


def mqttmsgset(mode: int) -> str:
    """0: print received messages directly (``+MSUB: …``); 1: cache them (``+MSUB: <slot>``).

    >>> mqttmsgset(0)
    'AT+MQTTMSGSET=0'
    """
    return f"AT+MQTTMSGSET={_int_in('mode', mode, 0, 1)}"


def mqttmsgget() -> str:
    """Print and clear the cached messages.

    >>> mqttmsgget()
    'AT+MQTTMSGGET'
    """
    return "AT+MQTTMSGGET"


def mqttstatu() -> str:
    """MQTT state: ``+MQTTSTATU :0`` offline, ``:1`` connected, ``:2`` TCP only.

    >>> mqttstatu()
    'AT+MQTTSTATU'
    """
    return "AT+MQTTSTATU"


def mdisconnect() -> str:
    """Send MQTT DISCONNECT.

    >>> mdisconnect()
    'AT+MDISCONNECT'
    """
    return "AT+MDISCONNECT"


def mipclose() -> str:
    """Close the MQTT TCP connection.

    >>> mipclose()
    'AT+MIPCLOSE'
    """
    return "AT+MIPCLOSE"
