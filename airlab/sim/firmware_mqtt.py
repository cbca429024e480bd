"""MQTT part of the simulated firmware: MCONFIG, (SSL)MIPSTART, MCONNECT, MSUB/MUNSUB,
MPUB/MPUBEX, MQTTMSGSET/MQTTMSGGET, MQTTMODE, MQTTSTATU, MDISCONNECT, MIPCLOSE.

A mixin of :class:`airlab.sim.firmware.Firmware`; see the firmware module docstring for
the behaviour choices.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from airlab.sim.actions import (
    CloseLink,
    MqttConnect,
    MqttDisconnect,
    MqttMessage,
    MqttPublish,
    MqttSubscribe,
    MqttUnsubscribe,
    NetRequest,
    OpenLink,
    Will,
)
from airlab.sim.cmdline import Arg, ArgError, Command, to_bytes
from airlab.sim.firmware_base import _utf8
from airlab.sim.firmware_mqtt_states import (
    LINK_TRANSITIONS,
    SESSION_TRANSITIONS,
    Link,
    LinkEvent,
    Session,
    SessionEvent,
    transition,
)

if TYPE_CHECKING:
    from airlab.sim.firmware_base import _Base
else:
    _Base = object

__all__ = ["MqttMixin", "decode_mpub_message"]

_ESCAPE = re.compile(r"\\([0-9A-Fa-f]{2})")
_SLOTS = 4
_MAX_STR = 256


def decode_mpub_message(text: str, hex_mode: bool) -> bytes:
    r"""The payload of an ``AT+MPUB`` message (already unquoted).

    ``\XX`` (two hex digits: ``\22``, ``\0D``, ``\0A``, ``\5C``) is the byte 0xXX; any
    other backslash is kept.  In hex mode (AT+MQTTMODE=1) the text is hex digits.

    >>> decode_mpub_message(r"a\22b\0D\0A\5C", False)
    b'a"b\r\n\\'
    >>> decode_mpub_message("313233", True)
    b'123'
    """
    if hex_mode:
        try:
            return bytes.fromhex(text)
        except ValueError as exc:
            raise ArgError("not hex") from exc
    return to_bytes(_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text))


def _str_arg(arg: Arg, limit: int = _MAX_STR) -> str:
    if len(to_bytes(arg.text)) > limit:
        raise ArgError("string too long")
    return arg.text


def _name_arg(arg: Arg) -> str:
    """A topic or host name: not empty, at most ``_MAX_STR`` bytes."""
    if not arg.text:
        raise ArgError("empty name")
    return _str_arg(arg)


class MqttMixin(_Base):
    """MQTT commands and their network events."""

    def _mqtt_reset(self) -> None:
        self._mq_conf: tuple[str, str | None, str | None, Will | None] | None = None
        self._mq_link = Link.IDLE  # moved only by _mq_link_to (LINK_TRANSITIONS)
        self._mq_session = Session.NONE  # moved only by _mq_session_to (SESSION_TRANSITIONS)
        self._mq_dead = False  # passive close seen: MIPCLOSE answers 767 once
        self._mq_quiet_closed = False  # closed after MDISCONNECT: MIPCLOSE answers OK
        self._mq_broken = False  # PDP lost under an open link (pdp_loss_mqtt="silent")
        self._mq_pid = 0
        self._mq_subs: dict[int, str] = {}  # packet id -> "sub" | "unsub"
        self._mq_pubs: dict[int, int] = {}  # packet id -> qos
        self._mq_msgset = 0
        self._mq_hex = 0
        self._mq_slots: list[tuple[int, str, bytes] | None] = [None] * _SLOTS
        self._mq_age = 0
        self._mq_attempt = getattr(self, "_mq_attempt", 0)  # numbers every OpenLink (kept)
        self._px: tuple[str, int, bool, int | None] | None = None  # MPUBEX in progress
        self._px_buf = bytearray()

    # ------------------------------------------------------------------ state

    @property
    def mqtt_state(self) -> str:
        """``idle`` (no link), ``connecting`` (TCP/TLS being opened), ``tcp`` (link up,
        no MQTT session yet or CONNACK pending) or ``connected``."""
        if self._mq_link is Link.OPENING:
            return "connecting"
        if self._mq_link is Link.OPEN:
            return "connected" if self._mq_session is Session.CONNECTED else "tcp"
        return "idle"

    def _next_pid(self) -> int:
        self._mq_pid = self._mq_pid % 65535 + 1
        return self._mq_pid

    def _connected(self) -> bool:
        return self._mq_link is Link.OPEN and self._mq_session is Session.CONNECTED

    def _mq_link_to(self, event: LinkEvent) -> None:
        """Move the link by its table (an illegal move raises: a bug)."""
        self._mq_link = transition(LINK_TRANSITIONS, self._mq_link, event)

    def _mq_session_to(self, event: SessionEvent) -> None:
        """Move the session by its table (an illegal move raises: a bug)."""
        self._mq_session = transition(SESSION_TRANSITIONS, self._mq_session, event)

    def _mq_close_state(self, event: LinkEvent) -> None:
        """The link goes back to idle by ``event``, the session with it."""
        self._mq_link_to(event)
        self._mq_session_to(SessionEvent.LINK_DOWN)
        self._mq_broken = False
        self._mq_subs.clear()
        self._mq_pubs.clear()

    # ------------------------------------------------------------------ commands

    def _h_mconfig(self, cmd: Command) -> None:
        test = (
            "+MCONFIG: <clientid>[,<username>,<password>[,(0-2),(0,1),<will_topic>,<will_message>]]"
        )
        args = self._set_args(cmd, test, {1, 3, 7})
        if args is None:
            return
        client_id = _str_arg(args[0])
        user = password = None
        will = None
        if len(args) >= 3:
            user = _str_arg(args[1]) or None
            password = _str_arg(args[2]) or None
        if len(args) == 7:
            qos = self._int(args[3].text, 0, 2)
            retain = self._int(args[4].text, 0, 1)
            if not (args[5].quoted and args[6].quoted) or not args[5].text:
                raise ArgError("will topic and message must be quoted")
            topic = _str_arg(args[5])
            message = to_bytes(_str_arg(args[6], 1360))
            will = Will(_utf8(topic), message, qos, bool(retain))
        self._mq_conf = (
            _utf8(client_id),
            None if user is None else _utf8(user),
            None if password is None else _utf8(password),
            will,
        )
        self._ok()

    def _h_mipstart(self, cmd: Command) -> None:
        self._mipstart(cmd, tls=False)

    def _h_sslmipstart(self, cmd: Command) -> None:
        self._mipstart(cmd, tls=True)

    def _mipstart(self, cmd: Command, tls: bool) -> None:
        name = "+SSLMIPSTART" if tls else "+MIPSTART"
        test = (
            f'{name}:"(0,255).(0,255).(0,255).(0,255)",(1-65535)\r\n{name}:"DOMAIN NAME",(1-65535)'
        )
        args = self._set_args(cmd, test, {2})  # <host>,<port>
        if args is None:
            return
        if not args[0].text:
            raise ArgError("no host")
        host = args[0].text
        port = self._int(args[1].text, 1, 65535)
        if self._mq_link is not Link.IDLE:
            self._ok()
            return self._urc("ALREADY CONNECT")
        self._ok()
        self._mq_dead = False
        self._mq_quiet_closed = False
        if not self._network_ready():
            return self._connect_fail()
        self._mq_link_to(LinkEvent.START)
        self._mq_attempt += 1
        self._act(OpenLink("mqtt", _utf8(host), port, tls=tls, attempt=self._mq_attempt))

    def _connect_fail(self) -> None:
        self._urc(f"STATE: {self.config.connect_fail_state}", "CONNECT FAIL")

    def _h_mconnect(self, cmd: Command) -> None:
        args = self._set_args(cmd, "+MCONNECT:(0-1),(1-65535)", {2})  # <clean>,<keepalive>
        if args is None:
            return
        clean = self._int(args[0].text, 0, 1)
        keepalive = self._int(args[1].text, 1, 65535)
        ready = self._mq_link is Link.OPEN and self._mq_session is Session.NONE
        if not ready or self._mq_broken:
            return self._cme(767)
        client_id, user, password, will = self._mq_conf or ("", None, None, None)
        self._ok()
        self._mq_session_to(SessionEvent.CONNECT)
        self._act(MqttConnect(client_id, user, password, keepalive, bool(clean), will))

    def _h_msub(self, cmd: Command) -> None:
        args = self._set_args(cmd, "+MSUB:<topic>,(0-2)", {2})
        if args is None:
            return
        topic = _utf8(_name_arg(args[0]))
        qos = self._int(args[1].text, 0, 2)
        self._subscription("sub", lambda pid: MqttSubscribe(pid, topic, qos))

    def _h_munsub(self, cmd: Command) -> None:
        args = self._set_args(cmd, "+MUNSUB:<topic>", {1})
        if args is None:
            return
        topic = _utf8(_name_arg(args[0]))
        self._subscription("unsub", lambda pid: MqttUnsubscribe(pid, topic))

    def _subscription(self, kind: str, request: Callable[[int], NetRequest]) -> None:
        """MSUB/MUNSUB once parsed: 767 when not connected, else OK and ``request`` with a
        new packet id whose SUBACK/UNSUBACK (``kind``: "sub" | "unsub") is awaited; nothing
        is sent on a broken link."""
        if not self._connected():
            return self._cme(767)
        self._ok()
        if self._mq_broken:
            return
        pid = self._next_pid()
        self._mq_subs[pid] = kind
        self._act(request(pid))

    def _publish_refused(self, qos: int) -> bool:
        """True (and the answer printed) when MPUB/MPUBEX must be refused: 767 when not
        connected, then :meth:`_qos_busy`."""
        if not self._connected():
            self._cme(767)
            return True
        return self._qos_busy(qos)

    def _qos_busy(self, qos: int) -> bool:
        """True (and the answer printed) when a QoS>0 publish must be refused."""
        if qos == 0 or not self._mq_pubs or self.config.qos1_overlap == "accept":
            return False
        if self.config.qos1_overlap == "cme767":
            self._cme(767)
        else:
            self._error()
        return True

    def _h_mpub(self, cmd: Command) -> None:
        args = self._set_args(cmd, "+MPUB:<topic>,(0-2),(0-1),<message>", {4})
        if args is None:
            return
        if not args[3].quoted:
            raise ArgError('MPUB=<topic>,<qos>,<retain>,"<message>"')
        topic = _name_arg(args[0])
        qos = self._int(args[1].text, 0, 2)
        retain = self._int(args[2].text, 0, 1)
        payload = decode_mpub_message(args[3].text, bool(self._mq_hex))
        if len(payload) > self.config.mpub_max:
            raise ArgError("message too long")
        if self._publish_refused(qos):
            return
        self._ok()
        self._publish(_utf8(topic), payload, qos, bool(retain))

    def _publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        if self._mq_broken:
            return  # no queue, no retransmission: the message is lost
        pid = None
        if qos:
            pid = self._next_pid()
            self._mq_pubs[pid] = qos
        self._act(MqttPublish(topic, payload, qos, retain, pid))

    def _h_mpubex(self, cmd: Command) -> None:
        test = f"+MPUBEX:<topic>,(0-2),(0-1),(1-{self.config.mpub_max})"
        args = self._set_args(cmd, test, {3, 4})
        if args is None:
            return
        topic = _name_arg(args[0])
        qos = self._int(args[1].text, 0, 2)
        retain = self._int(args[2].text, 0, 1)
        length = self._int(args[3].text, 1, self.config.mpub_max) if len(args) == 4 else None
        if self._publish_refused(qos):
            return
        self._px = (_utf8(topic), qos, bool(retain), length)
        self._px_buf = bytearray()
        self._mode = "mpubex"
        self._send(self.config.mpubex_prompt)
        if length is None:
            self._start_timer("mpubex", self.config.mpubex_idle)

    def _feed_mpubex(self, data: bytes, pos: int) -> int:
        assert self._px is not None
        length = self._px[3]
        limit = self.config.mpub_max if length is None else length
        room = limit - len(self._px_buf)
        chunk = data[pos : pos + room]
        end_mark = -1 if length is not None else chunk.find(b"\x1a")
        if end_mark >= 0:
            chunk = chunk[:end_mark]
        self._px_buf += chunk
        if self.config.mpubex_echo:
            self._send(chunk, "echo")
        pos += len(chunk)
        if end_mark >= 0:
            pos += 1  # the 0x1A
            self._mpubex_finish()
        elif len(self._px_buf) >= limit:
            self._mpubex_finish()
        elif length is None:
            self._start_timer("mpubex", self.config.mpubex_idle)
        return pos

    def _mpubex_finish(self) -> None:
        if self._px is None:
            return
        topic, qos, retain, _length = self._px
        self._px = None
        payload = bytes(self._px_buf)
        self._px_buf = bytearray()
        self._mode = "cmd"
        self._cancel_timer("mpubex")
        if not self._connected():
            return self._cme(767)
        self._ok()
        self._publish(topic, payload, qos, retain)

    def _mpubex_timeout(self) -> None:
        if self._mode == "mpubex":
            self._mpubex_finish()

    def _h_mqttmode(self, cmd: Command) -> None:
        self._int_setting(cmd, "_mq_hex", 0, 1, "+MQTTMODE: (0,1)", "+MQTTMODE: ")

    def _h_mqttmsgset(self, cmd: Command) -> None:
        self._int_setting(cmd, "_mq_msgset", 0, 1, "+MQTTMSGSET:(0,1)", "+MQTTMSGSET:")

    def _h_mqttmsgget(self, cmd: Command) -> None:
        if cmd.form == "test":
            return self._ok()
        if cmd.form == "read":
            lines = [
                f"+MQTTMSGGET: {i},{'INVALID' if s is None else 'VALID'}"
                for i, s in enumerate(self._mq_slots)
            ]
            return self._answer(["\r\n".join(lines)])
        if cmd.form != "exec":
            return self._error()
        valid = [s for s in self._mq_slots if s is not None]
        self._mq_slots = [None] * _SLOTS
        if not valid:
            return self._ok()
        body = b"\r\n".join(self._msub_line(t, p) for _age, t, p in valid)
        self._send(b"\r\n" + body + b"\r\n\r\nOK\r\n")

    def _h_mqttstatu(self, cmd: Command) -> None:
        if not self._exec(cmd):
            return
        state = 0
        if self._mq_link is Link.OPEN:
            state = 1 if self._mq_session is Session.CONNECTED else 2
        self._answer([f"+MQTTSTATU :{state}"])

    def _h_mdisconnect(self, cmd: Command) -> None:
        if not self._exec(cmd, self._connected()):
            return
        self._ok()
        self._mq_session_to(SessionEvent.DISCONNECT)
        self._mq_pubs.clear()
        self._mq_subs.clear()
        if not self._mq_broken:
            self._act(MqttDisconnect())

    def _h_mipclose(self, cmd: Command) -> None:
        if not self._exec(cmd):
            return
        if self._mq_link is not Link.IDLE:
            self._ok()
            if not self._mq_broken:
                self._act(CloseLink("mqtt"))
            return self._mq_close_state(LinkEvent.CLOSE)
        if self._mq_dead:
            self._mq_dead = False
            return self._cme(767)
        if self._mq_quiet_closed:
            self._mq_quiet_closed = False
            return self._ok()
        self._error()

    # ------------------------------------------------------------------ network

    def _mq_current(self, attempt: int) -> bool:
        """An event of the link opened last (an abandoned attempt's is ignored: its
        LinkOpened, LinkFailed or LinkClosed can still be on its way when AT+MIPCLOSE
        and the next (SSL)MIPSTART have been sent).  0: not numbered, taken as current."""
        return attempt == 0 or attempt == self._mq_attempt

    def _mq_link_opened(self) -> None:
        if self._mq_link is Link.OPENING:
            self._mq_link_to(LinkEvent.OPENED)
            self._urc("CONNECT OK")

    def _mq_link_failed(self) -> None:
        if self._mq_link is Link.OPENING:
            self._mq_close_state(LinkEvent.FAILED)
            self._connect_fail()

    def _mq_link_closed(self) -> None:
        if self._mq_link is Link.OPENING:
            # a close is only ever reported for a link that opened: this one has not, so
            # it is the previous link's (closed by the peer while AT+MIPCLOSE and the next
            # AT+SSLMIPSTART were on their way) -- not a reason to fail the new one
            return
        if self._mq_link is not Link.OPEN or self._mq_broken:
            return
        if self._mq_session is Session.DISCONNECTING:
            self._mq_close_state(LinkEvent.PEER_CLOSED)
            self._mq_quiet_closed = True
            return
        self._mq_close_state(LinkEvent.PEER_CLOSED)
        self._mq_dead = True
        self._urc("CLOSED")

    def _mq_connack(self, code: int) -> None:
        if self._mq_session is not Session.CONNECTING:
            return
        if code == 0:
            self._mq_session_to(SessionEvent.CONNACK_OK)
            self._urc("CONNACK OK")
        else:
            self._mq_session_to(SessionEvent.CONNACK_REFUSED)
            self._urc("ERROR")

    def _mq_suback(self, pid: int, granted: tuple[int, ...]) -> None:
        if self._mq_subs.pop(pid, None) != "sub":
            return
        if 0x80 in granted and self.config.msub_refused == "error":
            self._urc("ERROR")
        else:
            self._urc("SUBACK")

    def _mq_unsuback(self, pid: int) -> None:
        if self._mq_subs.pop(pid, None) == "unsub":
            self._urc("UNSUBACK")

    def _mq_ack(self, pid: int, kind: str) -> None:
        qos = self._mq_pubs.get(pid)
        if qos is None:
            return
        if kind == "PUBACK" and qos == 1:
            del self._mq_pubs[pid]
        elif kind == "PUBREC" and qos == 2:
            pass
        elif kind == "PUBCOMP" and qos == 2:
            del self._mq_pubs[pid]
        else:
            return
        self._urc(kind)

    def _msub_line(self, topic: str, payload: bytes) -> bytes:
        t = topic.encode("utf-8", "replace")
        if self.config.msub_topic_quoted:
            t = b'"' + t + b'"'
        return b"+MSUB: " + t + b",%d byte," % len(payload) + payload

    def _slot_age(self, i: int) -> int:
        s = self._mq_slots[i]
        return 0 if s is None else s[0]

    def _mq_message(self, ev: MqttMessage) -> None:
        if not self._connected() or self._mq_broken:
            return
        payload = ev.payload[: self.config.mqtt_recv_max]
        if self._mq_msgset == 0:
            self._send(b"\r\n" + self._msub_line(ev.topic, payload) + b"\r\n", "urc")
            return
        free = [i for i, s in enumerate(self._mq_slots) if s is None]
        # the first free slot; all four full: the oldest is overwritten
        slot = free[0] if free else min(range(_SLOTS), key=self._slot_age)
        self._mq_age += 1
        self._mq_slots[slot] = (self._mq_age, ev.topic, payload)
        self._urc(f"+MSUB: {slot}")

    def _mq_network_lost(self) -> None:
        """The PDP context (or the radio) went away under the MQTT link."""
        if self._mq_link is Link.OPENING:
            self._act(CloseLink("mqtt"))
            self._mq_close_state(LinkEvent.NETWORK_LOST)
            return self._connect_fail()
        if self._mq_link is not Link.OPEN or self._mq_broken:
            return
        self._act(CloseLink("mqtt"))
        if self.config.pdp_loss_mqtt == "closed":
            self._mq_close_state(LinkEvent.NETWORK_LOST)
            self._mq_dead = True
            self._urc("CLOSED")
        else:
            self._mq_broken = True
            self._mq_subs.clear()
            self._mq_pubs.clear()
