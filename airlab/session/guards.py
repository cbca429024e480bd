"""Checks a session runs on a command line before writing it (pure functions).

The simulator is faithful to the firmware's pitfalls; the guards that protect the user
live here and raise :class:`~airlab.errors.UsageError` before anything is sent:

* a line with CR/LF in it (it would be two commands);
* a data-phase command (``AT+HTTPDATA=<n>,…``, ``AT+MPUBEX``, ``AT+CIPSEND`` …) through
  ``command()``: its bytes must follow the prompt, use ``http_post_body`` / ``send_data``;
* a data phase whose announced length differs from the bytes given;
* an ``AT+MPUB`` message that is not one double-quoted string free of raw ``"`` (the
  firmware wants ``\\22``), or longer than 4100 bytes;
* Aliyun MQTT rules: keep-alive 30-1200 s, client id at most 64 characters before ``|``.

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
    "check_mpub_line",
    "data_phase_length",
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
    eq = line.find("=")
    if eq < 0:
        return []
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in line[eq + 1 :]:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
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
    if command_name(line) not in ("+MPUB", "+MPUBEX"):
        return None
    args = split_raw_args(line)
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
