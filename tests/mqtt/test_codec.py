"""The MQTT 3.1.1 codec: round trips, byte-exact encodings, incremental framing, refusals."""

from __future__ import annotations

import doctest
import importlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airlab.mqtt import codec as c

TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00+#"),
    min_size=1,
    max_size=30,
)
PID = st.integers(1, 65535)

PACKETS = st.one_of(
    st.builds(
        c.Connect,
        TEXT,
        st.none() | TEXT,
        st.none() | st.binary(max_size=40),
        st.integers(0, 65535),
        st.booleans(),
        st.none() | st.builds(c.Will, TEXT, st.binary(max_size=20), st.integers(0, 2),
                              st.booleans()),
    ).filter(lambda p: p.password is None or p.username is not None),
    st.builds(c.Connack, st.integers(0, 5), st.booleans()),
    st.builds(c.Publish, TEXT, st.binary(max_size=300), st.just(0), st.none(), st.booleans()),
    st.builds(c.Publish, TEXT, st.binary(max_size=300), st.integers(1, 2), PID, st.booleans(),
              st.booleans()),
    st.builds(c.Puback, PID),
    st.builds(c.Pubrec, PID),
    st.builds(c.Pubrel, PID),
    st.builds(c.Pubcomp, PID),
    st.builds(c.Subscribe, PID, st.lists(st.tuples(TEXT, st.integers(0, 2)), min_size=1,
                                         max_size=5).map(tuple)),
    st.builds(c.Suback, PID, st.lists(st.sampled_from([0, 1, 2, 0x80]), min_size=1).map(tuple)),
    st.builds(c.Unsubscribe, PID, st.lists(TEXT, min_size=1, max_size=5).map(tuple)),
    st.builds(c.Unsuback, PID),
    st.just(c.PINGREQ),
    st.just(c.PINGRESP),
    st.just(c.DISCONNECT),
)  # fmt: skip


def test_docstring_examples() -> None:
    for name in ("airlab.mqtt.codec", "airlab.mqtt.loopthread"):
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, name


@given(st.lists(PACKETS, min_size=1, max_size=8), st.data())
def test_round_trip_in_arbitrary_chunks(packets: list[c.Packet], data: st.DataObject) -> None:
    wire = b"".join(c.encode(p) for p in packets)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    reader, got, last = c.PacketReader(), [], 0
    for cut in [*cuts, len(wire)]:
        got += reader.feed(wire[last:cut])
        last = cut
    assert got == packets
    assert reader.buffered == 0


@pytest.mark.parametrize(
    ("packet", "wire"),
    [
        (c.Connect("cid", "u", b"p", 60), "101500044d51545404c2003c0003636964000175000170"),
        (c.Connack(0, True), "20020100"),
        (c.Publish("a/b", b"hi", 1, 7), "32090003612f6200076869"),
        (c.Puback(5), "40020005"),
        (c.Pubrel(5), "62020005"),
        (c.Subscribe(1, (("a/#", 1),)), "820800010003612f2301"),
        (c.Suback(1, (1, 0x80)), "9004000101" "80"),
        (c.Unsubscribe(2, ("a",)), "a20500020001" "61"),
        (c.PINGREQ, "c000"),
        (c.DISCONNECT, "e000"),
    ],
)
def test_byte_exact_encodings(packet: c.Packet, wire: str) -> None:
    assert c.encode(packet).hex() == wire
    assert c.PacketReader().feed(bytes.fromhex(wire)) == [packet]


def test_a_wildcard_topic_is_encoded_as_asked() -> None:
    assert c.encode(c.Publish("a/+", b"")).hex() == "30050003612f2b"  # the broker decides


def test_long_payload_uses_a_multi_byte_length() -> None:
    packet = c.Publish("t", b"x" * 200_000, 1, 9)
    wire = c.encode(packet)
    assert wire[1:4] == c.remaining_length(len(wire) - 4)
    assert c.PacketReader().feed(wire) == [packet]


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        ("00020000", "reserved packet type 0"),
        ("c100", "PINGREQ with reserved flags 0x1"),
        ("8006000100016100", "SUBSCRIBE with reserved flags 0x0"),
        ("c00100", "PINGREQ with 1 bytes of body"),
        ("36050003612f62", "PUBLISH with QoS 3"),
        ("30050003612f2b", "invalid topic name 'a/+' in PUBLISH"),
        ("3002" "0000", "invalid topic name ''"),
        ("32050003612f62", "PUBLISH packet id truncated"),
        ("3207" "0003612f620000", "packet id 0"),
        ("3004" "0003c3a0", "PUBLISH topic: length field beyond"),
        ("3005" "0003ffff61", "PUBLISH topic is not UTF-8"),
        ("3005" "0003610061", "PUBLISH topic contains U+0000"),
        ("8205" "00010001" "61", "invalid requested QoS"),
        ("8206" "0001000161" "03", "invalid requested QoS"),
        ("8202" "0001", "SUBSCRIBE without topic filter"),
        ("a202" "0001", "UNSUBSCRIBE without topic filter"),
        ("4003" "000100", "PUBACK of 3 bytes"),
        ("30ffffffff01", "remaining length longer than 4 bytes"),
        ("100e" "00044d5154540402003c00000000", "bytes after the end of the CONNECT payload"),
        ("100c" "00044d5154540403003c0000", "CONNECT reserved flag set"),
        ("100c" "00044d5154540442003c0000", "a password but no user name"),
        ("100c" "00044d5154540418003c0000", "will QoS 3"),
        ("100c" "00044d5154540422003c0000", "no will flag"),
        ("1009" "00044d515454040200", "CONNECT variable header truncated"),
    ],
)
def test_malformed_packets_say_what(wire: str, why: str) -> None:
    with pytest.raises(c.MalformedPacket, match=why.replace("+", r"\+").replace("(", r"\(")):
        c.PacketReader().feed(bytes.fromhex(wire))


def test_other_protocols_are_unsupported_not_malformed() -> None:
    mqtt5 = c.encode(c.Connect("x", protocol_level=5))
    with pytest.raises(c.UnsupportedProtocol) as info:
        c.PacketReader().feed(mqtt5)
    assert (info.value.name, info.value.level) == ("MQTT", 5)
    mqtt31 = c.Connect("x", protocol_name="MQIsdp", protocol_level=3)
    assert c.PacketReader().feed(c.encode(mqtt31)) == [mqtt31]


def test_the_limit_applies_before_the_body_arrives() -> None:
    reader = c.PacketReader(limit=10)
    with pytest.raises(c.MalformedPacket, match="packet of 11 bytes exceeds 10"):
        reader.feed(b"\x30\x0b")


def test_good_packets_before_bad_bytes_are_returned_then_the_error() -> None:
    reader = c.PacketReader()
    assert reader.feed(c.encode(c.PINGREQ) + b"\x00\x00") == [c.PINGREQ]
    assert isinstance(reader.error, c.MalformedPacket)
    with pytest.raises(c.MalformedPacket, match="reserved packet type 0"):
        reader.feed(b"")
