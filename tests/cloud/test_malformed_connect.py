"""Issue 8 item 9: correctly signed but malformed CONNECTs are refused.

Each CONNECT here carries the tutorial device's valid password for the client id it
sends, so only the malformation can make the broker refuse it: an unknown value in the
client id block gets CONNACK 2 (the platform refuses unknown values); a packet MQTT 3.1.1
calls malformed is closed without a CONNACK.
"""

from __future__ import annotations

import pytest

from airlab.aliyun import SignMethod, hmac_hex
from airlab.cloud.auth import Rules
from airlab.cloud.broker import EmulatedBroker
from airlab.cloud.fixtures import TUTORIAL_DEVICE_NAME as DN
from airlab.cloud.fixtures import TUTORIAL_DEVICE_SECRET as DS
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK
from airlab.cloud.fixtures import load_tutorial
from airlab.cloud.registry import Registry
from tests.cloud.broker_helpers import connect_packet, raw_connect, read_until_eof

USER = f"{DN}&{PK}"
CONNACK_OK = b"\x20\x02\x00\x00"
PASSWORD = hmac_hex(DS, f"clientId{DN}deviceName{DN}productKey{PK}", SignMethod.HMACMD5)


@pytest.fixture(scope="module")
def broker():
    registry = Registry()
    load_tutorial(registry)
    with EmulatedBroker(Rules(registry)) as b:
        yield b
    registry.close()


def answer(broker: EmulatedBroker, packet: bytes) -> bytes:
    sock = raw_connect(broker.mqtt_port)
    try:
        sock.sendall(packet + b"\xe0\x00")  # DISCONNECT after an accepted CONNECT
        return read_until_eof(sock)
    finally:
        sock.close()


def test_the_well_formed_connect_is_accepted(broker) -> None:
    good = connect_packet(f"{DN}|securemode=3,signmethod=hmacmd5|", USER, PASSWORD.encode())
    assert answer(broker, good) == CONNACK_OK


@pytest.mark.parametrize(
    "block",
    ["securemode= 3", "securemode=03", "securemode=+3", "securemode=３", "securemode=3 ",
     "securemode=3,signmethod=hmacmd5 ", "securemode=3,signmethod= hmacmd5"],
)  # fmt: skip
def test_unknown_values_get_connack_2(broker, block: str) -> None:
    packet = connect_packet(f"{DN}|{block}|", USER, PASSWORD.encode())
    assert answer(broker, packet) == b"\x20\x02\x00\x02"


def with_flags(packet: bytes, set_bits: int = 0, clear_bits: int = 0) -> bytes:
    data = bytearray(packet)
    flags_at = 2 + 2 + 4 + 1  # fixed header, "MQTT" string, level
    data[flags_at] = (data[flags_at] | set_bits) & ~clear_bits & 0xFF
    return bytes(data)


def good_packet(clean: bool = True) -> bytes:
    return connect_packet(
        f"{DN}|securemode=3,signmethod=hmacmd5|", USER, PASSWORD.encode(), clean=clean
    )


def plus_bytes(packet: bytes, extra: bytes) -> bytes:
    return packet[:1] + bytes((packet[1] + len(extra),)) + packet[2:] + extra


@pytest.mark.parametrize(
    "packet",
    [
        with_flags(good_packet(), set_bits=0x18),  # will QoS 3 (no will flag)
        with_flags(good_packet(), set_bits=0x04 | 0x18),  # will flag, will QoS 3
        with_flags(good_packet(), set_bits=0x20),  # will retain without will flag
        with_flags(good_packet(), set_bits=0x08),  # will QoS 1 without will flag
        plus_bytes(good_packet(), b"\x00\x01x"),  # bytes after the password
        plus_bytes(good_packet(), b"\x00"),
        with_flags(good_packet(), set_bits=0x01),  # reserved flag
        with_flags(good_packet(), clear_bits=0x80),  # password without user name
        connect_packet(f"{DN}|securemode=3|\x00", USER, PASSWORD.encode()),  # U+0000
    ],
    ids=["will-qos3", "will-flag-qos3", "will-retain", "will-qos1", "trailing-field",
         "trailing-byte", "reserved", "password-no-user", "nul"],
)  # fmt: skip
def test_malformed_packets_are_closed_without_connack(broker, packet: bytes) -> None:
    assert answer(broker, packet) == b""


def test_empty_client_id_with_clean_session_off_gets_2(broker) -> None:
    packet = connect_packet("", USER, PASSWORD.encode(), clean=False)
    assert answer(broker, packet) == b"\x20\x02\x00\x02"
