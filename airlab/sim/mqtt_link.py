"""MQTT 3.1.1 on the simulated module's ``"mqtt"`` link, with amqtt's packet classes as codec.

The packet format is never written by hand here: requests become
``amqtt.mqtt.*Packet(...).to_bytes()``, incoming bytes are decoded by
``MQTTFixedHeader.from_stream`` + ``packet_class(...).from_stream`` (amqtt 0.12.1).

Example:
    >>> from airlab.sim.actions import MqttPublish
    >>> publish_bytes(MqttPublish("a/b", b"hi", qos=1, packet_id=7)).hex()
    '32090003612f6200076869'
    >>> publish_bytes(MqttPublish("a/+", b"", qos=0)).hex()  # as given: the broker decides
    '30050003612f2b'
"""

from __future__ import annotations

import asyncio
from typing import Any

from amqtt.adapters import StreamReaderAdapter
from amqtt.errors import NoDataError
from amqtt.mqtt import packet_class
from amqtt.mqtt.connect import ConnectPacket, ConnectPayload, ConnectVariableHeader
from amqtt.mqtt.disconnect import DisconnectPacket
from amqtt.mqtt.packet import MQTTFixedHeader
from amqtt.mqtt.pingreq import PingReqPacket
from amqtt.mqtt.puback import PubackPacket
from amqtt.mqtt.pubcomp import PubcompPacket
from amqtt.mqtt.publish import PublishPacket
from amqtt.mqtt.pubrec import PubrecPacket
from amqtt.mqtt.pubrel import PubrelPacket
from amqtt.mqtt.subscribe import SubscribePacket
from amqtt.mqtt.unsubscribe import UnsubscribePacket

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
    "read_packet",
    "subscribe_bytes",
    "unsubscribe_bytes",
]


def connect_bytes(req: MqttConnect) -> bytes:
    """CONNECT (protocol level 4) for an ``AT+MCONFIG`` / ``AT+MCONNECT`` pair."""
    header = ConnectVariableHeader(keep_alive=req.keepalive)
    header.clean_session_flag = req.clean_session
    header.username_flag = req.username is not None
    header.password_flag = req.password is not None
    payload = ConnectPayload(client_id=req.client_id, username=req.username, password=req.password)
    if req.will is not None:
        header.will_flag = True
        header.will_qos = req.will.qos
        header.will_retain_flag = req.will.retain
        payload.will_topic = req.will.topic
        payload.will_message = req.will.message
    return ConnectPacket(variable_header=header, payload=payload).to_bytes()


def subscribe_bytes(req: MqttSubscribe) -> bytes:
    return SubscribePacket.build([(req.topic, req.qos)], req.packet_id).to_bytes()


def unsubscribe_bytes(req: MqttUnsubscribe) -> bytes:
    return UnsubscribePacket.build([req.topic], req.packet_id).to_bytes()


def publish_bytes(req: MqttPublish) -> bytes:
    """PUBLISH with the topic exactly as the module was given it.

    The firmware does not check the topic name: ``+`` and ``#`` go out as typed and the
    broker, not the module, enforces MQTT 3.1.1 §3.3.2.1 (it closes the connection).
    amqtt refuses to *build* such a packet, so it is built on a wildcard-free stand-in
    and the real name is put into its (public) variable header before encoding.
    """
    packet_id = req.packet_id if req.qos > 0 else None
    packet = PublishPacket.build("", req.payload, packet_id, False, req.qos, req.retain)
    packet.variable_header.topic_name = req.topic
    return packet.to_bytes()


def puback_bytes(packet_id: int) -> bytes:
    return PubackPacket.build(packet_id).to_bytes()


def pubrec_bytes(packet_id: int) -> bytes:
    return PubrecPacket.build(packet_id).to_bytes()


def pubrel_bytes(packet_id: int) -> bytes:
    return PubrelPacket.build(packet_id).to_bytes()


def pubcomp_bytes(packet_id: int) -> bytes:
    return PubcompPacket.build(packet_id).to_bytes()


def pingreq_bytes() -> bytes:
    return PingReqPacket().to_bytes()


def disconnect_bytes() -> bytes:
    return DisconnectPacket().to_bytes()


async def read_packet(reader: asyncio.StreamReader) -> Any | None:
    """The next MQTT packet from ``reader``; None at end of stream (also mid-packet)."""
    adapter = StreamReaderAdapter(reader)
    try:
        header = await MQTTFixedHeader.from_stream(adapter)
        if header is None:
            return None
        return await packet_class(header).from_stream(adapter, fixed_header=header)
    except (NoDataError, asyncio.IncompleteReadError, ConnectionError):
        return None
