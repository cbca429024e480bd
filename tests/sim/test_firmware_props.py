"""Robustness: random and mutated input never crashes the firmware, every line it prints
is framed, and a plain ``AT`` afterwards is answered ``OK``."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airlab.at import read_capture
from airlab.sim.actions import (
    HttpRequest,
    HttpResult,
    LinkClosed,
    LinkOpened,
    MqttConnack,
    MqttConnect,
    MqttMessage,
    MqttPuback,
    MqttPublish,
    NetEvent,
    OpenLink,
    PdpLost,
    ToHost,
)
from airlab.sim.firmware import Firmware, FirmwareConfig

DATA = Path(__file__).resolve().parents[2] / "data" / "captures"


def _commands() -> list[bytes]:
    cmds: list[bytes] = []
    for path in sorted(DATA.glob("seed_*.log")) + sorted((DATA / "luat_docs").glob("T0[1-9]*")):
        for r in read_capture(path, date="2024-07-22").records:
            if str(r.direction).endswith("sent") and r.data.isascii():
                cmds.append(r.data)
    cmds += [
        b"AT+HTTPDATA=50,1000\r\n",
        b'AT+MPUBEX="t",1,0,30\r\n',
        b'AT+MPUBEX="t",0,0\r\n',
        b"AT+RESET\r\n",
        b"AT+CFUN=0\r\n",
        b"AT+CFUN=1\r\n",
        b"ATE0\r\n",
        b"AT+CMEE=2\r\n",
        b"AT+MQTTMSGSET=1\r\n",
        b"AT+MQTTMODE=1\r\n",
    ]
    return sorted(set(cmds))


COMMANDS = _commands()
EVENTS: list[NetEvent | str] = [
    LinkClosed("mqtt"),
    PdpLost(),
    MqttMessage("t/x", b"\r\npayload\r\n"),
    HttpResult(200, b"body"),
    "timers",
]


def run(fw: Firmware, chunks: list[bytes | NetEvent | str]) -> tuple[bytes, list[ToHost]]:
    emitted: list[ToHost] = []
    timers: dict[str, float] = {}

    def take(actions: list) -> None:
        for a in actions:
            if isinstance(a, ToHost):
                emitted.append(a)
            elif type(a).__name__ == "StartTimer":
                timers[a.name] = a.seconds
            elif type(a).__name__ == "CancelTimer":
                timers.pop(a.name, None)
            elif isinstance(a, HttpRequest):
                take(fw.network(HttpResult(200, b"{}")))
            elif isinstance(a, OpenLink):
                take(fw.network(LinkOpened(a.link)))
            elif isinstance(a, MqttConnect):
                take(fw.network(MqttConnack(0)))
            elif isinstance(a, MqttPublish) and a.packet_id is not None:
                take(fw.network(MqttPuback(a.packet_id)))

    for c in chunks:
        if isinstance(c, bytes):
            take(fw.receive(c))
        elif c == "timers":
            for name in list(timers):
                timers.pop(name)
                take(fw.timer(name))
        elif isinstance(c, NetEvent):
            take(fw.network(c))
    # leave any data mode, fire what is pending (reboot, HTTPDATA, MPUBEX), then AT
    for name in list(timers):
        timers.pop(name)
        take(fw.timer(name))
    take(fw.receive(b"\x1a" * 4200 + b"\r\n"))
    for name in list(timers):
        timers.pop(name)
        take(fw.timer(name))
    mark = len(emitted)
    take(fw.receive(b"AT\r"))
    tail = b"".join(a.data for a in emitted[mark:])
    return tail, emitted


def check(emitted: list[ToHost], tail: bytes, prompt: bytes) -> None:
    for a in emitted:
        assert isinstance(a.data, bytes) and a.data
        if a.latency == "echo":
            continue
        assert a.data.startswith(b"\r\n"), a
        assert a.data.endswith(b"\r\n") or a.data == prompt, a
    assert tail.endswith(b"\r\nOK\r\n"), tail
    assert len(tail) <= len(b"AT\r\r\nOK\r\n")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_random_bytes(chunks):
    fw = Firmware()
    fw.strict = True
    tail, emitted = run(fw, list(chunks))
    check(emitted, tail, FirmwareConfig().mpubex_prompt)


def _mutate(cmd: bytes, how: int, pos: int, byte: int) -> bytes:
    if not cmd:
        return cmd
    pos %= len(cmd)
    if how == 0:
        return cmd[:pos] + cmd[pos + 1 :]
    if how == 1:
        return cmd[:pos] + bytes([byte]) + cmd[pos:]
    if how == 2:
        return cmd[:pos] + bytes([byte]) + cmd[pos + 1 :]
    return cmd


stream_item = st.one_of(
    st.builds(
        _mutate,
        st.sampled_from(COMMANDS),
        st.integers(0, 4),
        st.integers(0, 500),
        st.integers(0, 255),
    ),
    st.sampled_from(EVENTS),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(stream_item, max_size=25), st.booleans())
def test_mutated_command_streams(items, bytewise):
    fw = Firmware()
    fw.strict = True
    chunks: list = []
    auto_mqtt = [
        b'AT+MCONFIG="c","u","p"\r\n',
        b"AT+MIPSTART=h,1883\r\n",
        b"AT+MCONNECT=1,60\r\n",
    ]
    chunks += auto_mqtt
    for it in items:
        if isinstance(it, bytes) and bytewise:
            chunks += [it[i : i + 1] for i in range(len(it))]
        else:
            chunks.append(it)
    tail, emitted = run(fw, chunks)
    check(emitted, tail, FirmwareConfig().mpubex_prompt)


# ---------------------------------------------------------------- command-aware fuzzing

#: every command the firmware implements, by its handler names
NAMES = sorted(
    ["+" + n[3:].upper() for n in dir(Firmware) if n.startswith("_h_")]
    + [n[3:].upper() for n in dir(Firmware) if n.startswith("_b_") and "amp" not in n]
    + ["&W", "&F"]
)
#: commands after which the rest of a chunk is data or ignored (HTTPDATA, MPUBEX, reboot)
MODAL = {"+HTTPDATA", "+MPUBEX", "+RESET", "+CFUN"}

param = st.one_of(
    st.integers(-5, 70000).map(str),
    st.sampled_from(["", " ", "-0", "00", "+1", "1e3", "0x1", "4294967296", "9" * 40, "1" * 11]),
    # digits that are not ASCII: '²' '³' '¹' (str.isdigit() is True), '¼' '½' '¾'
    st.text(alphabet="0123456789\xb2\xb3\xb9\xbc\xbd\xbe", min_size=1, max_size=12),
    st.sampled_from(['"', '""', '"a/b"', '"a/+/#"', '","', '"\\22"', '"URL"', '"RATE"']),
    st.sampled_from(['"TIMEOUT"', '"BREAK"', '"USER_DEFINED"', '"http://h:99999/"']),
    st.sampled_from(["\x00", "\r", "\x00\r", "\xff", "\x1a", ";", ";+CGMI", ";&W"]),
)
command_line = st.builds(
    lambda prefix, name, form, params: (
        prefix + name + (form + ",".join(params) if form == "=" else form)
    ).encode("latin-1"),
    st.sampled_from(["AT", "at", "AT "]),
    st.sampled_from(NAMES),
    st.sampled_from(["", "?", "=?", "=", "="]),
    st.lists(param, max_size=7),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(command_line, min_size=1, max_size=6), st.sampled_from([0, 1, 2]))
def test_command_lines_never_raise_and_each_line_is_answered(lines, cmee):
    """Known commands with hostile parameters: no internal exception (strict), framed
    output, and a following AT in the same chunk is still answered OK."""
    fw = Firmware(FirmwareConfig(cmee=cmee))
    fw.strict = True
    setup = [b"AT+HTTPINIT\r", b'AT+MCONFIG="c","u","p"\r', b"AT+MIPSTART=h,1883\r"]
    run(fw, [*setup, b"AT+MCONNECT=1,60\r"])
    for line in lines:
        name = line.split(b"=")[0].split(b"?")[0].lstrip(b"ATat ").upper().decode("latin-1")
        if name in MODAL:
            tail, emitted = run(fw, [line + b"\r\n"])
            check(emitted, tail, FirmwareConfig().mpubex_prompt)
            continue
        out = b"".join(a.data for a in fw.receive(line + b"\r\nAT\r\n") if isinstance(a, ToHost))
        echo = b"AT\r\n" if fw.echo else b""  # the line may have been ATE0
        assert out.endswith(echo + b"\r\nOK\r\n"), (line, out)
    tail, emitted = run(fw, [])
    check(emitted, tail, FirmwareConfig().mpubex_prompt)
