"""Checks a session runs on a command line before writing it (pure functions).

The simulator is faithful to the firmware's pitfalls; the guards that protect the user
live here and raise :class:`~airlab.errors.UsageError` before anything is sent:

* a line with CR/LF in it (it would be two commands);
* a data-phase command (``AT+HTTPDATA=<n>,…``, ``AT+MPUBEX``, ``AT+CIPSEND`` …) through
  ``command()``: its bytes must follow the prompt, use ``http_post_body`` / ``send_data``;
* a data phase whose announced length differs from the bytes given;
* an ``AT+MPUB`` message that is not one double-quoted string free of raw ``"`` (the
  firmware wants ``\\22``), or longer than 4100 bytes;
* Aliyun MQTT rules: keep-alive 30-1200 s, client id at most 64 characters before ``|``;
* characters that only look like the ones the tutorial types (a full-width comma or
  ``＆``, a curly quote, a no-break or zero-width space): typed, not copied (切记);
* an ``AT+SSLMIPSTART``/``AT+MIPSTART`` host ``<pk>.iot-as-mqtt…`` whose productKey is not
  the one the last ``AT+MCONFIG`` logs in with.

Example:
    >>> try:
    ...     check_mpub_line('AT+MPUB="t",0,0,hello')
    ... except UsageError as exc:
    ...     print(exc.field, "|", exc.message[:45])
    line | the AT+MPUB message must be double-quoted (".
    >>> mpub_qos('AT+MPUB="t",1,0,"x"')
    1
"""

from __future__ import annotations

from airlab.at.command_table import PUBLISH_COMMANDS
from airlab.at.commands import MPUB_MAX
from airlab.at.urcs import DATA_PHASE_COMMANDS
from airlab.errors import UsageError
from airlab.session.errors import command_name

__all__ = [
    "ALIYUN_KEEPALIVE",
    "MAX_CLIENT_ID",
    "check_aliyun_client_id",
    "check_aliyun_keepalive",
    "check_data_length",
    "check_line",
    "check_lookalikes",
    "check_mpub_line",
    "check_mqtt_host",
    "data_phase_length",
    "mconfig_user",
    "mpub_qos",
    "split_raw_args",
]

#: Keep-alive range Alibaba Cloud IoT accepts (seconds).
ALIYUN_KEEPALIVE = (30, 1200)
#: Longest client id (the part before ``|``) Alibaba Cloud IoT accepts.
MAX_CLIENT_ID = 64

_MPUB_HELP = (
    'the AT+MPUB message must be double-quoted ("...") with \\22 for a quote, \\0D \\0A for '
    "CR LF, \\5C for a backslash: build it with airlab.at.mpub() or use session.publish()"
)


def split_raw_args(line: str) -> list[str]:
    """The arguments after ``=`` split on commas outside quotes, quotes kept.

    >>> split_raw_args('AT+MPUB="a,b",1,0,"x,y"')
    ['"a,b"', '1', '0', '"x,y"']
    """
    return _split_args(line, None)


def _split_args(line: str, limit: int | None) -> list[str]:
    """:func:`split_raw_args`, stopping after ``limit`` arguments when given (the last
    one returned may then be cut short: only the ones before it are whole)."""
    eq = line.find("=")
    if eq < 0:
        return []
    rest = line[eq + 1 :]
    if '"' not in rest:
        return [arg.strip() for arg in rest.split(",", -1 if limit is None else limit)]
    # the pieces between quotes: even ones are outside quotes (their commas split), odd
    # ones inside; a whole line at a time, not a character at a time (a publish's
    # message can be 4 KB)
    out: list[str] = []
    cur = ""
    for i, piece in enumerate(rest.split('"')):
        if i:
            cur += '"'
        if i % 2:
            cur += piece
            continue
        first, *others = piece.split(",")
        cur += first
        for other in others:
            out.append(cur.strip())
            if limit is not None and len(out) > limit:
                return out
            cur = other
    out.append(cur.strip())
    return out


def check_line(line: object) -> str:
    """A single command line: a non-empty string without CR or LF (stripped)."""
    if not isinstance(line, str):
        raise UsageError("line", f"must be a string such as 'AT+CGATT?', got {type(line).__name__}")
    text = line.strip()
    if not text:
        raise UsageError("line", "must not be empty")
    if "\r" in text or "\n" in text:
        raise UsageError(
            "line",
            "must not contain CR or LF: the session adds the line ending; send one "
            "command per call",
        )
    return text


def data_phase_length(line: str) -> int | bool | None:
    """For a data-phase command: its announced length (int) or None (ended by 0x1A);
    ``False`` when the line has no data phase (other command, test/read form, size 0).

    >>> data_phase_length("AT+HTTPDATA=112,20000"), data_phase_length("AT+MPUBEX=t,1,0")
    (112, None)
    >>> data_phase_length("AT+HTTPDATA=0,1000"), data_phase_length("AT+HTTPDATA=?")
    (False, False)
    """
    name = command_name(line)
    spec = DATA_PHASE_COMMANDS.get(name or "")
    if spec is None:
        return False
    eq = line.find("=")
    if eq < 0:
        return None if spec.until_ctrl_z else False
    rest = line[eq + 1 :].strip()
    if rest.startswith("?"):
        return False
    args = split_raw_args(line)
    idx = spec.length_index.get(len(args))
    if idx is None:
        return None if spec.until_ctrl_z else False
    text = args[idx].strip().strip('"')
    if not text.isdigit():
        return False
    n = int(text)
    return n if n > 0 else False


def check_data_length(line: str, data: bytes) -> None:
    """The announced length of a data phase must be the number of bytes given."""
    announced = data_phase_length(line)
    if announced is False:
        raise UsageError("line", f"{line!r} has no data phase: use session.command()")
    if isinstance(announced, int) and announced != len(data):
        raise UsageError(
            "data",
            f"{line} announces {announced} bytes but {len(data)} were given: the module would "
            "wait for the rest or read the surplus as commands; build the line from the bytes "
            "(airlab.at.httpdata(body) or session.http_post_body(body))",
        )


def check_mpub_line(line: str) -> None:
    """An ``AT+MPUB=<topic>,<qos>,<retain>,"<message>"`` line the firmware will accept."""
    if command_name(line) != "+MPUB" or "=" not in line or line.split("=", 1)[1].startswith("?"):
        return
    args = split_raw_args(line)
    if len(args) < 4:
        raise UsageError("line", "AT+MPUB needs <topic>,<qos>,<retain>,<message>")
    message = ",".join(args[3:])  # a comma inside an unquoted message splits it
    if len(args) > 4 or len(message) < 2 or message[0] != '"' or message[-1] != '"':
        raise UsageError("line", _MPUB_HELP)
    inner = message[1:-1]
    if '"' in inner:
        raise UsageError("line", _MPUB_HELP)
    if len(inner.encode("utf-8")) > MPUB_MAX:
        raise UsageError(
            "line", f"the AT+MPUB message is over {MPUB_MAX} bytes: use AT+MPUBEX (publish_ex)"
        )


def mpub_qos(line: str) -> int | None:
    """QoS of an ``AT+MPUB`` / ``AT+MPUBEX`` line, None for other lines."""
    if command_name(line) not in PUBLISH_COMMANDS:
        return None
    args = _split_args(line, 2)  # the topic and the QoS are whole
    if len(args) < 2:
        return None
    text = args[1].strip().strip('"')
    return int(text) if text.isdigit() else None


def check_aliyun_keepalive(keepalive: object) -> int:
    """Alibaba Cloud IoT accepts a keep-alive of 30-1200 s.

    >>> check_aliyun_keepalive(1500)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    airlab.errors.UsageError: keepalive: Alibaba Cloud IoT accepts 30-1200 s, got 1500 ...
    """
    low, high = ALIYUN_KEEPALIVE
    if isinstance(keepalive, bool) or not isinstance(keepalive, int):
        raise UsageError("keepalive", f"must be an integer number of seconds, got {keepalive!r}")
    if not low <= keepalive <= high:
        raise UsageError(
            "keepalive",
            f"Alibaba Cloud IoT accepts {low}-{high} s, got {keepalive} (the tutorial uses 120)",
        )
    return keepalive


def check_aliyun_client_id(client_id: str) -> str:
    """At most 64 characters before the ``|`` parameter block."""
    label = client_id.split("|", 1)[0]
    if len(label) > MAX_CLIENT_ID:
        raise UsageError(
            "client_id",
            f"{len(label)} characters before '|'; Alibaba Cloud IoT accepts at most "
            f"{MAX_CLIENT_ID} (use the device name or a MAC/IMEI)",
        )
    return client_id


#: Characters that look like ASCII syntax but are not (what typing by hand produces).
_LOOKALIKES = {
    "\u00a0": "a no-break space",
    "\u200b": "a zero-width space",
    "\u200c": "a zero-width non-joiner",
    "\u200d": "a zero-width joiner",
    "\ufeff": "a zero-width no-break space (BOM)",
    "\u2018": "a curly quote ‘",
    "\u2019": "a curly quote ’",
    "\u201c": "a curly quote “",
    "\u201d": "a curly quote ”",
    "\u3000": "a full-width space",
    "\u3001": "an ideographic comma 、",
    "\u2013": "an en dash –",
    "\u2014": "an em dash —",
}


def _lookalike(ch: str) -> str | None:
    if ch in _LOOKALIKES:
        return _LOOKALIKES[ch]
    if "\uff01" <= ch <= "\uff5e":  # full-width forms of ASCII ! … ~
        return f"a full-width {ch} (ASCII {chr(ord(ch) - 0xFEE0)})"
    return None


def check_lookalikes(text: str, what: str = "line") -> None:
    """Refuse characters that only look like the ASCII the module and the cloud expect —
    what a hand-typed (or chat-pasted) line contains; the tutorial says copy, don't type.

    The message of an ``AT+MPUB`` is left alone (it may hold any text).

    >>> check_lookalikes('AT+MCONFIG="dev","dev&pk","ab"')
    >>> try:
    ...     check_lookalikes('AT+MCONFIG="dev"，"dev&pk","ab"')
    ... except UsageError as exc:
    ...     print(exc.message[:58])
    character 17 is a full-width ， (ASCII ,), not what the tut
    """
    if text.isascii():  # every lookalike is outside ASCII
        return
    checked = text
    if what == "line" and command_name(text) == "+MPUB" and "=" in text:
        args = split_raw_args(text)
        checked = text[: text.find("=") + 1] + ",".join(args[:3])
    for i, ch in enumerate(checked):
        name = _lookalike(ch)
        if name is not None:
            raise UsageError(
                what,
                f"character {i + 1} is {name}, not what the tutorial types: "
                f"…{checked[max(0, i - 12) : i + 12]}… — retype it with plain ASCII (switch "
                "the keyboard to English, or copy the value from the console, 切记 copy, "
                "don't type)",
            )


def mconfig_user(line: str) -> str | None:
    """The user name of an ``AT+MCONFIG="<clientId>","<user>","<password>"`` line.

    >>> mconfig_user('AT+MCONFIG="c","dn&pk1","p"')
    'dn&pk1'
    """
    if command_name(line) != "+MCONFIG" or "=" not in line:
        return None
    args = split_raw_args(line)
    return args[1].strip().strip('"') if len(args) >= 3 else None


def check_mqtt_host(line: str, user: str | None) -> None:
    """An ``AT+SSLMIPSTART``/``AT+MIPSTART`` to ``<pk>.iot-as-mqtt.<region>…`` must name
    the productKey of the login configured with ``AT+MCONFIG`` (``user``: ``dn&pk``, or
    an iotId, which ends with the productKey's first five characters and ``0``).

    >>> check_mqtt_host('AT+SSLMIPSTART="pk1.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883', "d&pk1")
    >>> try:
    ...     check_mqtt_host('AT+MIPSTART="a1x.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883', "d&pk1")
    ... except UsageError as exc:
    ...     print(exc.message[:52])
    the host is product a1x's, but AT+MCONFIG logs in as
    """
    if command_name(line) not in ("+SSLMIPSTART", "+MIPSTART") or not user or "=" not in line:
        return
    args = split_raw_args(line)
    host = args[0].strip().strip('"') if args else ""
    head, dot, rest = host.partition(".")
    if not dot or not rest.lower().startswith("iot-as-mqtt."):
        return  # an IP address or another broker: nothing to compare
    if "&" in user:
        pk = user.rsplit("&", 1)[1]
        if head.lower() == pk.lower():
            return
        whose = f"product {pk}"
        right = f"{pk}.{rest}"
    else:  # an iotId: 20 characters + productKey[:5] + "0"
        if len(user) != 26 or not user.isalnum() or not user.endswith("0"):
            return  # not an iotId (a token typed in its place is another mistake)
        if head[:5].lower() == user[-6:-1].lower():
            return
        whose = f"a product whose key starts {user[-6:-1]}"
        right = f"<productKey>.{rest}"
    raise UsageError(
        "line",
        f"the host is product {head}'s, but AT+MCONFIG logs in as {whose}: 切记 use your "
        f'product\'s host, AT+SSLMIPSTART="{right}",1883 (a platform that checks the '
        "server name refuses the login)",
    )
