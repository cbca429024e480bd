"""MQTT 3.1.1 on the simulated module's ``"mqtt"`` link, with :mod:`airlab.mqtt.codec`.

The firmware's requests become packets of the shared codec; incoming bytes are framed by
:class:`airlab.mqtt.codec.PacketReader` in the network stack.

Example:
    >>> from airlab.sim.actions import MqttPublish
    >>> publish_bytes(MqttPublish("a/b", b"hi", qos=1, packet_id=7)).hex()
    '32090003612f6200076869'
    >>> publish_bytes(MqttPublish("a/+", b"", qos=0)).hex()  # as given: the broker decides
    '30050003612f2b'
"""

from __future__ import annotations

from airlab.mqtt import codec as c
from airlab.sim.actions import MqttConnect, MqttPublish, MqttSubscribe, MqttUnsubscribe

__all__ = [
    "connect_bytes",
    "disconnect_bytes",
    "pingreq_bytes",
    "puback_bytes",
    "pubcomp_bytes",
    "publish_bytes",
    "pubrec_bytes",
    "pubrel_bytes",
    "subscribe_bytes",
    "unsubscribe_bytes",
]


def connect_bytes(req: MqttConnect) -> bytes:
    """CONNECT (protocol level 4) for an ``AT+MCONFIG`` / ``AT+MCONNECT`` pair."""
    will = None
    if req.will is not None:
        w = req.will
        will = c.Will(w.topic, w.message, w.qos, w.retain)
    password = None if req.password is None else req.password.encode("utf-8")
    return c.encode(
        c.Connect(req.client_id, req.username, password, req.keepalive, req.clean_session, will)
    )


def subscribe_bytes(req: MqttSubscribe) -> bytes:
    return c.encode(c.Subscribe(req.packet_id, ((req.topic, req.qos),)))


def unsubscribe_bytes(req: MqttUnsubscribe) -> bytes:
    return c.encode(c.Unsubscribe(req.packet_id, (req.topic,)))


def publish_bytes(req: MqttPublish) -> bytes:
    """PUBLISH with the topic exactly as the module was given it.

    The firmware does not check the topic name: ``+`` and ``#`` go out as typed and the
    broker, not the module, enforces MQTT 3.1.1 §3.3.2.1 (it closes the connection).
    A packet id that does not fit 2 bytes raises :class:`OverflowError`.
    """
    packet_id = req.packet_id if req.qos > 0 else None
    if req.qos > 0 and packet_id is None:
        raise ValueError("a QoS 1/2 PUBLISH needs a packet id")
    return c.encode(c.Publish(req.topic, req.payload, req.qos, packet_id, req.retain))


def puback_bytes(packet_id: int) -> bytes:
    return c.encode(c.Puback(packet_id))


def pubrec_bytes(packet_id: int) -> bytes:
    return c.encode(c.Pubrec(packet_id))


def pubrel_bytes(packet_id: int) -> bytes:
    return c.encode(c.Pubrel(packet_id))


def pubcomp_bytes(packet_id: int) -> bytes:
    return c.encode(c.Pubcomp(packet_id))


def pingreq_bytes() -> bytes:
    return c.encode(c.PINGREQ)


def disconnect_bytes() -> bytes:
    return c.encode(c.DISCONNECT)
