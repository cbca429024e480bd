"""Topic permissions and the platform's own answers of :mod:`airlab.cloud.auth`: may a
device subscribe or publish (spec §7 items 18-20), and the replies to an accepted
uplink (thing-model ``_reply`` topics, NTP; item 21).

Example:
    >>> from airlab.cloud.registry import Registry
    >>> from airlab.cloud.auth import Rules
    >>> from airlab.cloud.fixtures import load_tutorial
    >>> reg = Registry(); _ = load_tutorial(reg)
    >>> me = DeviceRef("k1hipglLdjU", "868488076506128")
    >>> Rules(reg).may_publish(me, "/sys/k1hipglLdjU/868488076506128/thing/event/property/post",
    ...                        0).allowed
    True
    >>> Rules(reg).may_subscribe(me, "/sys/other/dev/#").allowed
    False
"""

from __future__ import annotations

import json

from airlab.aliyun import (
    check_topic_access,
)
from airlab.cloud.auth_common import (
    RulesBase,
    _dumps,
)
from airlab.cloud.model import (
    DeviceRef,
    Explanation,
    Permission,
    Push,
)


class TopicRules(RulesBase):
    """:meth:`may_subscribe`, :meth:`may_publish` and :meth:`replies_to` of
    :class:`airlab.cloud.auth.Rules`."""

    # -- topics -------------------------------------------------------------------------

    def _topic(self, device: DeviceRef, topic: str, action: str, qos: int) -> Permission:
        classes = self.registry.topic_classes(device.product_key)
        access = check_topic_access(
            device.product_key, device.device_name, topic, action, classes, qos=qos
        )
        if access.allowed:
            return Permission(True)
        custom = [c.topic(device.product_key, device.device_name) for c in classes]
        details = {
            "topic": topic if isinstance(topic, str) else repr(topic),
            "device": str(device),
            "action": "publish" if action == "pub" else "subscribe",
            "custom_classes": "; ".join(
                f"{c.topic(device.product_key, device.device_name)} ({c.permission.value})"
                for c in classes
            )
            or "(none)",
        }
        if action == "pub":
            details["qos"] = str(qos)
        message = access.reason
        if access.rule == "topic_permission" and custom:
            message += ". Use a topic with this device's own productKey/deviceName."
        return Permission(False, Explanation(access.rule, message, details))

    def may_subscribe(self, device: DeviceRef, topic_filter: str) -> Permission:
        """May ``device`` subscribe to ``topic_filter`` (spec §7 item 18)?"""
        return self._topic(device, topic_filter, "sub", 0)

    def may_publish(self, device: DeviceRef, topic: str, qos: int) -> Permission:
        """May ``device`` publish on ``topic`` with ``qos`` (spec §7 items 18-20)?"""
        return self._topic(device, topic, "pub", qos)

    # -- platform answers ---------------------------------------------------------------

    def replies_to(self, device: DeviceRef, topic: str, payload: bytes) -> list[Push]:
        """Platform answers to an accepted uplink (spec §7 item 21).

        * ``/sys/pk/dn/thing/event/property/post``, ``…/event/<id>/post`` and
          ``…/property/batch/post`` → ``<topic>_reply`` ``{"code":200,"data":{},"id":…,
          "message":"success","method":…,"version":"1.0"}``, unless ``sys.ack`` is 0.
          A payload that is not a JSON object gets ``code`` 460 ``request parameter
          error`` (``id`` null when unreadable).
        * ``/ext/ntp/pk/dn/request`` ``{"deviceSendTime":…}`` → ``/ext/ntp/pk/dn/response``
          with the times in ms and in the JSON type the device used; an unreadable request
          gets no answer.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> from airlab.cloud.auth import Rules
            >>> r = Rules(Registry(), clock=lambda: 1700000000.123)
            >>> p = r.replies_to(DeviceRef("pk", "dn"), "/ext/ntp/pk/dn/request",
            ...                  b'{"deviceSendTime":"1700000000000"}')[0]
            >>> p.topic, p.payload.decode()
            ('/ext/ntp/pk/dn/response', '{"deviceSendTime":"1700000000000",\
"serverRecvTime":"1700000000123","serverSendTime":"1700000000123"}')
        """
        pk, dn = device.product_key, device.device_name
        levels = topic.split("/") if isinstance(topic, str) else []
        prefix = ["", "sys", pk, dn, "thing", "event"]
        if levels[:6] == prefix and levels[-1] == "post" and len(levels) in (8, 9):
            if len(levels) == 9 and levels[6:8] != ["property", "batch"]:
                return []
            identifier = ".".join(levels[6:-1])
            return self._alink_reply(topic, f"thing.event.{identifier}.post", payload)
        if topic == f"/ext/ntp/{pk}/{dn}/request":
            return self._ntp_reply(pk, dn, payload)
        return []

    def _alink_reply(self, topic: str, default_method: str, payload: bytes) -> list[Push]:
        try:
            request = json.loads(bytes(payload).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            request = None
        if not isinstance(request, dict):
            body = {
                "code": 460,
                "data": {},
                "id": None,
                "message": "request parameter error",
                "method": default_method,
                "version": "1.0",
            }
            return [Push(topic + "_reply", _dumps(body), 0)]
        sys_part = request.get("sys")
        if isinstance(sys_part, dict) and str(sys_part.get("ack")) == "0":
            return []
        method = request.get("method")
        body = {
            "code": 200,
            "data": {},
            "id": request.get("id"),
            "message": "success",
            "method": method if isinstance(method, str) and method else default_method,
            "version": "1.0",
        }
        return [Push(topic + "_reply", _dumps(body), 0)]

    def _ntp_reply(self, pk: str, dn: str, payload: bytes) -> list[Push]:
        try:
            request = json.loads(bytes(payload).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return []
        if not isinstance(request, dict) or "deviceSendTime" not in request:
            return []
        sent = request["deviceSendTime"]
        received = int(self._clock() * 1000)
        replied = max(int(self._clock() * 1000), received)
        as_text = isinstance(sent, str)
        body = {
            "deviceSendTime": sent,
            "serverRecvTime": str(received) if as_text else received,
            "serverSendTime": str(replied) if as_text else replied,
        }
        return [Push(f"/ext/ntp/{pk}/{dn}/response", _dumps(body), 0)]
