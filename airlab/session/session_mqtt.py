"""The MQTT side of :class:`~airlab.session.session.ModemSession`: publishing (one QoS1/2
publish in flight, as the module takes them), cached messages, the MQTT status, and the
guards that need the session's state (a second QoS1 publish before ``PUBACK``, a late
``AT+MCONNECT`` after ``CONNECT OK``).

A mixin: the state it reads is set up by ``ModemSession.__init__``; the command flow it
calls (``_exchange``) lives in :mod:`airlab.session.session`.

Example:
    >>> import airlab
    >>> from airlab.session import ModemSession
    >>> with ModemSession("airsim://?profile=instant") as s:
    ...     s.mqtt_status()
    0
"""

from __future__ import annotations

import time
import warnings

from airlab.at.command_table import PUBLISH_COMPLETIONS
from airlab.at.commands import mpub, mpubex, mqttmsgget
from airlab.errors import UsageError
from airlab.session import guards
from airlab.session.errors import (
    CommandError,
    ConnectionClosed,
    LateMconnectWarning,
    ResponseTimeout,
    UrcTimeout,
)
from airlab.session.response import MqttMessage, Response


class _MqttSide:
    """Publishing and the stateful guards (a mixin of ``ModemSession``)."""

    # ------------------------------------------------------------------ guards with state

    def _pub_guard(self, line: str, wait_until: float | None) -> None:
        """One QoS1/2 publish in flight: wait (publish) or refuse (a raw command)."""
        qos = guards.mpub_qos(line)
        if not qos:
            return
        with self._mutex:
            while self._pub_in_flight():
                if wait_until is None:
                    raise UsageError(
                        "qos",
                        "a QoS1 publish is still waiting for its PUBACK; the module takes one "
                        "at a time (spec 7.5): wait for PUBACK, or use session.publish(), "
                        "which waits for you",
                    )
                left = wait_until - time.monotonic()
                if left <= 0:
                    raise UrcTimeout(line, "PUBACK of the previous QoS1 publish", 0.0)
                self._wait(left)

    def _pub_in_flight(self) -> bool:
        since = self._pub_pending
        return since is not None and time.monotonic() - since < self.urc_timeout

    def _before_mconnect(self, line: str) -> None:
        """The MCONNECT window guard (``mconnect_window`` / ``late_mconnect``)."""
        with self._mutex:
            up, closed, mipstart = self._link_up_mono, self._link_closed, self._last_mipstart
        if up is None:
            return
        late_by = time.monotonic() - up
        if not closed and late_by <= self.mconnect_window:
            return
        if closed:
            why = "the server already closed the link (CLOSED)"
        else:
            why = (
                f"{late_by:.2f} s after CONNECT OK (window {self.mconnect_window:g} s: the "
                "server drops a link that sends no CONNECT within ~5 s)"
            )
        if self.late_mconnect == "raise":
            if closed:
                raise ConnectionClosed(line, f"cannot MCONNECT: {why}")
            raise UsageError(
                "mconnect_window",
                f"AT+MCONNECT would come {why}: send it right after CONNECT OK, or use "
                "late_mconnect='reconnect'",
            )
        reconnect = self.late_mconnect == "reconnect" and mipstart is not None
        warnings.warn(
            f"AT+MCONNECT: {why}" + ("; reopening the link first" if reconnect else ""),
            LateMconnectWarning,
            stacklevel=4,
        )
        if reconnect and mipstart is not None:
            self._exchange("AT+MIPCLOSE", check=False)
            self._exchange(
                mipstart,
                urc=("CONNECT OK", "ALREADY CONNECT"),
                fail=("CONNECT FAIL", "CLOSED", "ERROR"),
                timeout=self.urc_timeout,
            )

    # ------------------------------------------------------------------ MQTT helpers

    def publish(
        self,
        topic: str,
        payload: str | bytes,
        qos: int = 0,
        retain: bool | int = False,
        *,
        block: bool = True,
        timeout: float | None = None,
        hex_mode: bool = False,
    ) -> Response:
        """``AT+MPUB`` with the message quoted and escaped; QoS1 returns after its own
        ``PUBACK`` (QoS2 after ``PUBCOMP``): ``response.urc_latency`` is the ack latency.

        One QoS1 publish at a time: a second one (another thread) waits for the first
        one's PUBACK, or raises UsageError with ``block=False``.  A payload that is not
        UTF-8 text or over 4100 bytes as written raises UsageError (use
        :meth:`publish_ex` or ``hex_mode``) before anything is sent.
        """
        line = mpub(topic, qos, retain, payload, hex_mode=hex_mode)
        return self._publish(line, qos, None, block, timeout)

    def publish_ex(
        self,
        topic: str,
        payload: str | bytes,
        qos: int = 0,
        retain: bool | int = False,
        *,
        block: bool = True,
        timeout: float | None = None,
    ) -> Response:
        """``AT+MPUBEX=<topic>,<qos>,<retain>,<len>``, ``>`` prompt, raw bytes (binary OK)."""
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        line = mpubex(topic, qos, retain, len(data))
        return self._publish(line, qos, data, block, timeout)

    def _publish(
        self, line: str, qos: int, data: bytes | None, block: bool, timeout: float | None
    ) -> Response:
        if qos == 0:
            return self._exchange(line, data=data, timeout=timeout)
        timeout = self.urc_timeout if timeout is None else float(timeout)
        acquired = (
            self._qos1_lock.acquire(timeout=timeout) if block else self._qos1_lock.acquire(False)
        )
        if not acquired:
            if block:
                raise UrcTimeout(line, "PUBACK of the QoS1 publish in flight", timeout)
            raise UsageError(
                "block",
                "a QoS1 publish is in flight (waiting for its PUBACK); the module takes one "
                "at a time: retry later or call with block=True",
            )
        try:
            return self._exchange(
                line,
                data=data,
                urc=PUBLISH_COMPLETIONS[qos].ok[0],  # PUBACK (QoS1) / PUBCOMP (QoS2)
                fail=("CLOSED",),
                timeout=timeout,
                hold_lock=data is not None,  # the prompt phase needs the line to itself
                wait_pub=block,
            )
        finally:
            self._qos1_lock.release()

    def fetch_cached(self, timeout: float | None = None) -> list[MqttMessage]:
        """Cache mode (``AT+MQTTMSGSET=1``): run ``AT+MQTTMSGGET`` and return the stored
        messages (a ``+MSUB: <slot>`` URC only announces them; nothing is fetched
        automatically)."""
        resp = self.command(mqttmsgget(), timeout)
        return [
            MqttMessage(p.topic or "", p.data, p.wall, p.mono, cached=True)
            for p in resp.payloads
            if p.source == "+MSUB"
        ]

    def mqtt_status(self, timeout: float | None = None) -> int:
        """``AT+MQTTSTATU`` -> 0 offline, 1 connected, 2 TCP up but no MCONNECT yet."""
        resp = self.command("AT+MQTTSTATU", timeout)
        args = resp.args("+MQTTSTATU")
        if not args or not args[0].isdigit():
            raise CommandError(
                "AT+MQTTSTATU", "unexpected answer", hint=f"got lines {resp.lines!r}", response=resp
            )
        return int(args[0])

    def probe(self, tries: int = 5, timeout: float = 0.5) -> Response:
        """Send ``AT`` until ``OK`` (auto-baud needs a few), up to ``tries`` times."""
        if not isinstance(tries, int) or tries < 1:
            raise UsageError("tries", "must be a positive integer")
        last: ResponseTimeout | None = None
        for _ in range(tries):
            try:
                return self._exchange("AT", timeout=timeout)
            except ResponseTimeout as exc:
                last = exc
        raise ResponseTimeout(
            "AT",
            f"OK after {tries} tries",
            timeout * tries,
            last.seen if last else (),
            hint="check the port name, the baud rate, the wiring (TX/RX crossed) and power",
        )
