"""MQTT 3.1.1 packets as frozen dataclasses: encode, incremental decode, strict validation.

Ours rather than a library's: the broker and the simulated module need exactly the 3.1.1
packets below, byte-exact refusals of malformed input (a typed error that says what is
wrong), the freedom to *encode* what the module sends as given (a PUBLISH to ``a/+``: the
broker, not the module, enforces MQTT §3.3.2.1) and a decoder cheap enough for the
broker's hot path (one QoS 1 PUBLISH is a slice and two ``int`` reads).  amqtt's classes
decode from an async stream only and refuse to build such a PUBLISH; no maintained
library offers a sans-IO 3.1.1 codec (mqttproto is MQTT 5 only).

Decoding is strict (:class:`MalformedPacket` names the fault): reserved fixed-header
flags, remaining lengths over 4 bytes or beyond the packet, strings that are not UTF-8 or
hold U+0000, wildcards or an empty name in a PUBLISH topic, QoS 3, a SUBSCRIBE without
filters, bytes left over.  A CONNECT with another protocol name/level raises
:class:`UnsupportedProtocol` (the broker answers CONNACK 1).  Encoding does not validate.

Example:
    >>> data = encode(Publish("a/b", b"hi", qos=1, packet_id=7))
    >>> data.hex()
    '32090003612f6200076869'
    >>> reader = PacketReader()
    >>> reader.feed(data[:3])  # partial data is kept
    []
    >>> reader.feed(data[3:] + encode(PINGREQ))
    [Publish(topic='a/b', payload=b'hi', qos=1, packet_id=7, retain=False, dup=False), Pingreq()]
    >>> decode(0xC1, b"")
    Traceback (most recent call last):
    ...
    airlab.mqtt.codec.MalformedPacket: PINGREQ with reserved flags 0x1
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "DISCONNECT",
    "PINGREQ",
    "PINGRESP",
    "Connack",
    "Connect",
    "Disconnect",
    "MalformedPacket",
    "Packet",
    "PacketReader",
    "PacketType",
    "Pingreq",
    "Pingresp",
    "Puback",
    "Pubcomp",
    "Publish",
    "Pubrec",
    "Pubrel",
    "Suback",
    "Subscribe",
    "Unsuback",
    "Unsubscribe",
    "UnsupportedProtocol",
    "Will",
    "decode",
    "encode",
    "remaining_length",
]


class PacketType(IntEnum):
    """MQTT control packet types (the high nibble of the first byte)."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14


class MalformedPacket(ValueError):
    """The bytes break MQTT 3.1.1 framing or grammar; the message says how."""


class UnsupportedProtocol(MalformedPacket):
    """A CONNECT for a protocol name/level other than MQTT 3.1 (``MQIsdp``/3) or 3.1.1."""

    def __init__(self, name: str, level: int) -> None:
        super().__init__(f"protocol {name!r} level {level}")
        self.name, self.level = name, level


# ---------------------------------------------------------------------------- packets


@dataclass(frozen=True, slots=True)
class Will:
    """A CONNECT's will message."""

    topic: str
    message: bytes
    qos: int = 0
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Connect:
    """CONNECT; ``protocol_level`` 4 is MQTT 3.1.1 (name ``MQTT``), 3 is 3.1 (``MQIsdp``)."""

    client_id: str
    username: str | None = None
    password: bytes | None = None
    keepalive: int = 60
    clean_session: bool = True
    will: Will | None = None
    protocol_name: str = "MQTT"
    protocol_level: int = 4


@dataclass(frozen=True, slots=True)
class Connack:
    return_code: int
    session_present: bool = False


@dataclass(frozen=True, slots=True)
class Publish:
    """PUBLISH; ``packet_id`` is None for QoS 0."""

    topic: str
    payload: bytes
    qos: int = 0
    packet_id: int | None = None
    retain: bool = False
    dup: bool = False


@dataclass(frozen=True, slots=True)
class Puback:
    packet_id: int


@dataclass(frozen=True, slots=True)
class Pubrec:
    packet_id: int


@dataclass(frozen=True, slots=True)
class Pubrel:
    packet_id: int


@dataclass(frozen=True, slots=True)
class Pubcomp:
    packet_id: int


@dataclass(frozen=True, slots=True)
class Subscribe:
    """SUBSCRIBE: ``topics`` are (filter, requested QoS) pairs."""

    packet_id: int
    topics: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Suback:
    """SUBACK: one return code per filter (0-2 granted QoS, 0x80 failure)."""

    packet_id: int
    return_codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    packet_id: int
    filters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unsuback:
    packet_id: int


@dataclass(frozen=True, slots=True)
class Pingreq:
    pass


@dataclass(frozen=True, slots=True)
class Pingresp:
    pass


@dataclass(frozen=True, slots=True)
class Disconnect:
    pass


PINGREQ, PINGRESP, DISCONNECT = Pingreq(), Pingresp(), Disconnect()

Packet = (
    Connect | Connack | Publish | Puback | Pubrec | Pubrel | Pubcomp | Subscribe | Suback
    | Unsubscribe | Unsuback | Pingreq | Pingresp | Disconnect
)  # fmt: skip

# ---------------------------------------------------------------------------- encoding


def remaining_length(n: int) -> bytes:
    """The variable-length "remaining length" field.

    >>> remaining_length(127).hex(), remaining_length(128).hex()
    ('7f', '8001')
    """
    if n < 128:
        return bytes((n,))
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(text: str) -> bytes:
    raw = text.encode("utf-8")
    return len(raw).to_bytes(2, "big") + raw


def _bin(raw: bytes) -> bytes:
    return len(raw).to_bytes(2, "big") + raw


def _frame(first: int, body: bytes) -> bytes:
    return bytes((first,)) + remaining_length(len(body)) + body


def encode(packet: Packet) -> bytes:
    """The bytes of ``packet`` (not validated: what is asked goes on the wire)."""
    cls = type(packet)
    if cls is Publish:
        p: Publish = packet  # type: ignore[assignment]
        first = 0x30 | (p.qos << 1) | (0x08 if p.dup else 0) | (0x01 if p.retain else 0)
        topic = p.topic.encode("utf-8")
        head = len(topic).to_bytes(2, "big") + topic
        if p.qos:
            head += (p.packet_id or 0).to_bytes(2, "big")
        return bytes((first,)) + remaining_length(len(head) + len(p.payload)) + head + p.payload
    if cls in _ID_ONLY:
        return bytes((_ID_ONLY[cls], 2)) + packet.packet_id.to_bytes(2, "big")  # type: ignore[union-attr]
    if cls in _EMPTY:
        return bytes((_EMPTY[cls], 0))
    if cls is Connack:
        c: Connack = packet  # type: ignore[assignment]
        return bytes((0x20, 2, 1 if c.session_present else 0, c.return_code))
    if cls is Subscribe:
        s: Subscribe = packet  # type: ignore[assignment]
        body = s.packet_id.to_bytes(2, "big") + b"".join(
            _str(f) + bytes((q,)) for f, q in s.topics
        )
        return _frame(0x82, body)
    if cls is Suback:
        sa: Suback = packet  # type: ignore[assignment]
        return _frame(0x90, sa.packet_id.to_bytes(2, "big") + bytes(sa.return_codes))
    if cls is Unsubscribe:
        u: Unsubscribe = packet  # type: ignore[assignment]
        return _frame(0xA2, u.packet_id.to_bytes(2, "big") + b"".join(map(_str, u.filters)))
    if cls is Connect:
        return _encode_connect(packet)  # type: ignore[arg-type]
    raise TypeError(f"not an MQTT packet: {packet!r}")


_ID_ONLY: dict[type, int] = {
    Puback: 0x40, Pubrec: 0x50, Pubrel: 0x62, Pubcomp: 0x70, Unsuback: 0xB0
}  # fmt: skip
_EMPTY: dict[type, int] = {Pingreq: 0xC0, Pingresp: 0xD0, Disconnect: 0xE0}


def _encode_connect(c: Connect) -> bytes:
    flags = 0x02 if c.clean_session else 0
    payload = _str(c.client_id)
    if c.will is not None:
        flags |= 0x04 | (c.will.qos << 3) | (0x20 if c.will.retain else 0)
        payload += _str(c.will.topic) + _bin(c.will.message)
    if c.username is not None:
        flags |= 0x80
        payload += _str(c.username)
    if c.password is not None:
        flags |= 0x40
        payload += _bin(c.password)
    header = _str(c.protocol_name) + bytes((c.protocol_level, flags))
    return _frame(0x10, header + c.keepalive.to_bytes(2, "big") + payload)


# ---------------------------------------------------------------------------- decoding


def _u16(body: bytes, pos: int, what: str) -> int:
    if pos + 2 > len(body):
        raise MalformedPacket(f"{what} truncated")
    return (body[pos] << 8) | body[pos + 1]


def _binary(body: bytes, pos: int, what: str) -> tuple[bytes, int]:
    n = _u16(body, pos, what)
    end = pos + 2 + n
    if end > len(body):
        raise MalformedPacket(f"{what}: length field beyond the end of the packet")
    return body[pos + 2 : end], end


def _utf8(body: bytes, pos: int, what: str) -> tuple[str, int]:
    raw, pos = _binary(body, pos, what)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPacket(f"{what} is not UTF-8") from exc
    if "\x00" in text:  # MQTT 3.1.1 §1.5.3
        raise MalformedPacket(f"{what} contains U+0000")
    return text, pos


def _decode_publish(flags: int, body: bytes) -> Publish:
    # the broker's hot path: the topic is read inline rather than through _utf8
    qos = (flags >> 1) & 3
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3")
    n = len(body)
    if n < 2:
        raise MalformedPacket("PUBLISH topic truncated")
    pos = 2 + ((body[0] << 8) | body[1])
    if pos > n:
        raise MalformedPacket("PUBLISH topic: length field beyond the end of the packet")
    try:
        topic = body[2:pos].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPacket("PUBLISH topic is not UTF-8") from exc
    if "\x00" in topic:
        raise MalformedPacket("PUBLISH topic contains U+0000")
    packet_id = None
    if qos:
        if pos + 2 > n:
            raise MalformedPacket("PUBLISH packet id truncated")
        packet_id = (body[pos] << 8) | body[pos + 1]
        if not packet_id:
            raise MalformedPacket("PUBLISH with packet id 0")
        pos += 2
    if not topic or "+" in topic or "#" in topic:
        raise MalformedPacket(f"invalid topic name {topic!r} in PUBLISH")
    return Publish(topic, body[pos:], qos, packet_id, bool(flags & 1), bool(flags & 8))


def _decode_connect(body: bytes) -> Connect:
    name, pos = _utf8(body, 0, "CONNECT protocol name")
    if pos + 4 > len(body):
        raise MalformedPacket("CONNECT variable header truncated")
    level, flags = body[pos], body[pos + 1]
    keepalive = (body[pos + 2] << 8) | body[pos + 3]
    pos += 4
    if (name, level) not in (("MQTT", 4), ("MQIsdp", 3)):
        raise UnsupportedProtocol(name, level)
    if flags & 0x01:
        raise MalformedPacket("CONNECT reserved flag set")
    will_qos = (flags >> 3) & 0x03
    if will_qos == 3:
        raise MalformedPacket("CONNECT with will QoS 3")
    if not flags & 0x04 and (will_qos or flags & 0x20):
        raise MalformedPacket("CONNECT with will QoS or will retain but no will flag")
    if flags & 0x40 and not flags & 0x80 and level == 4:
        raise MalformedPacket("CONNECT with a password but no user name")
    client_id, pos = _utf8(body, pos, "CONNECT client id")
    will = None
    if flags & 0x04:
        will_topic, pos = _utf8(body, pos, "CONNECT will topic")
        will_message, pos = _binary(body, pos, "CONNECT will message")
        will = Will(will_topic, will_message, will_qos, bool(flags & 0x20))
    username = password = None
    if flags & 0x80:
        username, pos = _utf8(body, pos, "CONNECT user name")
    if flags & 0x40:
        password, pos = _binary(body, pos, "CONNECT password")
    if pos != len(body):
        raise MalformedPacket(f"{len(body) - pos} bytes after the end of the CONNECT payload")
    return Connect(
        client_id, username, password, keepalive, bool(flags & 0x02), will, name, level
    )


def _decode_subscribe(body: bytes) -> Subscribe:
    packet_id = _u16(body, 0, "SUBSCRIBE packet id")
    pos, topics = 2, []
    while pos < len(body):
        filt, pos = _utf8(body, pos, "SUBSCRIBE topic filter")
        if pos >= len(body) or body[pos] > 2:
            raise MalformedPacket("SUBSCRIBE with an invalid requested QoS")
        topics.append((filt, body[pos]))
        pos += 1
    if not topics:
        raise MalformedPacket("SUBSCRIBE without topic filter")
    return Subscribe(packet_id, tuple(topics))


def _decode_unsubscribe(body: bytes) -> Unsubscribe:
    packet_id = _u16(body, 0, "UNSUBSCRIBE packet id")
    pos, filters = 2, []
    while pos < len(body):
        filt, pos = _utf8(body, pos, "UNSUBSCRIBE topic filter")
        filters.append(filt)
    if not filters:
        raise MalformedPacket("UNSUBSCRIBE without topic filter")
    return Unsubscribe(packet_id, tuple(filters))


def _decode_connack(body: bytes) -> Connack:
    if len(body) != 2:
        raise MalformedPacket(f"CONNACK of {len(body)} bytes (2 expected)")
    if body[0] & 0xFE:
        raise MalformedPacket("CONNACK reserved flags set")
    return Connack(body[1], bool(body[0] & 1))


def _decode_suback(body: bytes) -> Suback:
    packet_id = _u16(body, 0, "SUBACK packet id")
    codes = tuple(body[2:])
    if not codes or any(c not in (0, 1, 2, 0x80) for c in codes):
        raise MalformedPacket(f"SUBACK return codes {codes!r}")
    return Suback(packet_id, codes)


def _id_only(cls: type) -> object:
    name = cls.__name__.upper()

    def decode_id(body: bytes) -> object:
        if len(body) != 2:
            raise MalformedPacket(f"{name} of {len(body)} bytes (2 expected)")
        return cls((body[0] << 8) | body[1])

    return decode_id


def _empty(packet: object) -> object:
    name = type(packet).__name__.upper()

    def decode_empty(body: bytes) -> object:
        if body:
            raise MalformedPacket(f"{name} with {len(body)} bytes of body")
        return packet

    return decode_empty


#: packet type -> (required fixed-header flags or None for PUBLISH, body decoder)
_DECODERS: dict[int, tuple[int | None, object]] = {
    1: (0, _decode_connect),
    2: (0, _decode_connack),
    3: (None, None),
    4: (0, _id_only(Puback)),
    5: (0, _id_only(Pubrec)),
    6: (2, _id_only(Pubrel)),
    7: (0, _id_only(Pubcomp)),
    8: (2, _decode_subscribe),
    9: (0, _decode_suback),
    10: (2, _decode_unsubscribe),
    11: (0, _id_only(Unsuback)),
    12: (0, _empty(PINGREQ)),
    13: (0, _empty(PINGRESP)),
    14: (0, _empty(DISCONNECT)),
}


def decode(first: int, body: bytes) -> Packet:
    """The packet whose first byte is ``first`` and whose remaining bytes are ``body``."""
    kind, flags = first >> 4, first & 0x0F
    if kind == 3:
        return _decode_publish(flags, body)
    entry = _DECODERS.get(kind)
    if entry is None:
        raise MalformedPacket(f"reserved packet type {kind}")
    want, decoder = entry
    if flags != want:
        raise MalformedPacket(f"{PacketType(kind).name} with reserved flags 0x{flags:x}")
    return decoder(body)  # type: ignore[operator, no-any-return]


class PacketReader:
    """Incremental framing: :meth:`feed` bytes, get the complete packets; the rest is kept.

    ``limit`` caps a packet's remaining length (larger: :class:`MalformedPacket`); it may
    be changed between calls (a broker allows a small CONNECT, then bigger packets).
    When bad bytes follow good packets in one call, the good packets are returned and the
    error is kept in :attr:`error` (and raised by the next call): a peer's packets are
    handled in order up to its mistake.  After an error the reader is unusable.

    Example:
        >>> r = PacketReader(limit=4)
        >>> r.feed(b"\\xd0")
        []
        >>> r.feed(b"\\x00")
        [Pingresp()]
        >>> r.feed(b"\\x30\\x05")
        Traceback (most recent call last):
        ...
        airlab.mqtt.codec.MalformedPacket: packet of 5 bytes exceeds 4
    """

    __slots__ = ("_buf", "error", "limit")

    def __init__(self, limit: int = 268_435_455) -> None:
        self._buf = b""
        self.limit = limit
        self.error: MalformedPacket | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete packet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Packet]:
        """Append ``data``; decode and return every complete packet."""
        if self.error is not None:
            raise self.error
        out: list[Packet] = []
        try:
            self._feed(data, out)
        except MalformedPacket as exc:
            if not out:
                raise
            self.error = exc
        return out

    def _feed(self, data: bytes, out: list[Packet]) -> None:
        buf = self._buf + data if self._buf else data
        pos, end = 0, len(buf)
        while end - pos >= 2:
            first = buf[pos]
            b = buf[pos + 1]
            if b < 0x80:
                length, head = b, 2
            else:
                length, shift, i = b & 0x7F, 7, pos + 2
                while True:
                    if i >= end:
                        length = -1
                        break
                    b = buf[i]
                    length |= (b & 0x7F) << shift
                    i += 1
                    if not b & 0x80:
                        break
                    shift += 7
                    if shift > 21:
                        raise MalformedPacket("remaining length longer than 4 bytes")
                if length < 0:
                    break
                head = i - pos
            if length > self.limit:
                raise MalformedPacket(f"packet of {length} bytes exceeds {self.limit}")
            stop = pos + head + length
            if stop > end:
                break
            body = buf[pos + head : stop]
            if first >> 4 == 3:
                out.append(_decode_publish(first & 0x0F, body))
            else:
                out.append(decode(first, body))
            pos = stop
        self._buf = buf[pos:] if pos < end else b""
