"""The tutorial's warnings as a table (:data:`PITFALLS`, one :class:`Pitfall` per
trap) and the :class:`Finding` a check reports.

Example:
    >>> from airlab.at.pitfalls_table import PITFALLS
    >>> PITFALLS["content-type-space"].id
    'content-type-space'
"""

from __future__ import annotations

from dataclasses import dataclass

#: Seconds the server waits for MQTT CONNECT after the TCP/TLS link is up before it
#: drops the link (spec at_commands.md §0 item 5: 5 s, ThingsCloud; the module then
#: prints ``CLOSED``).
MCONNECT_WINDOW = 5.0


@dataclass(frozen=True, slots=True)
class Pitfall:
    """One of the tutorial's warnings: ``id``, English ``title``, the tutorial's own
    Chinese words (``warning_zh``), the tutorial ``step`` it sits at, and the ``fix``."""

    id: str
    title: str
    warning_zh: str
    step: str
    fix: str


PITFALLS: dict[str, Pitfall] = {
    p.id: p
    for p in (
        Pitfall(
            "httpdata-length",
            "AT+HTTPDATA length differs from the body's byte count",
            "注意这个112是DOWNLOAD参数的数据长度(以字节为单位),实际使用时,要根据自己的数据长度进行修改,切记!!!",
            "一机一密AT HTTP鉴权连接, step 5 (also 一型一密, step 5: 120)",
            "count the body's bytes (len(body.encode())) and put that number in "
            "AT+HTTPDATA=<bytes>,20000; the CR LF sscom adds after the body is not counted",
        ),
        Pitfall(
            "typed-not-copied",
            "a character typed by hand that the module or the cloud reads differently",
            "注意最好自己复制这串数据,然后修改具体的值,不要全部手动输入,否则很容易出问题,切记!!!",
            "一机一密AT HTTP鉴权连接, step 6 (and every command line)",
            "copy the line from the tutorial (or the signing calculator) and change only the "
            "values; switch the input method to English (半角) so commas, quotes and colons "
            "are ASCII, and remove stray spaces",
        ),
        Pitfall(
            "content-type-space",
            "the Content-type header lacks the space after its colon",
            '注意"Content-type: " 后面有一个空格',
            "一机一密AT HTTP鉴权连接, step 4 (also 一型一密, step 4)",
            'write AT+HTTPPARA="USER_DEFINED","Content-type: application/x-www-form-urlencoded" '
            "(one space after the colon)",
        ),
        Pitfall(
            "mconnect-late",
            "AT+MCONNECT did not follow CONNECT OK promptly",
            "注意,收到CONNECT OK后立刻发送指令建立会话,不然会被踢,一定注意!!!",
            "一机一密AT HTTP鉴权连接, step 11 (also AT直连MQTT, step 3)",
            "send AT+MCONNECT=1,120 as soon as CONNECT OK arrives (prepare it beforehand); "
            "after CLOSED, AT+MIPCLOSE, AT+SSLMIPSTART again, then MCONNECT at once",
        ),
        Pitfall(
            "qos1-in-flight",
            "a second QoS1 AT+MPUB before the first one's PUBACK",
            "注意,Qos1 消息必须等到PUBACK返回,才能发下一条消息",
            "发布与订阅消息 / 发布Qos1消息",
            "wait for PUBACK (a second or so) before the next QoS1 AT+MPUB; resend the "
            "refused message afterwards",
        ),
        Pitfall(
            "cgatt-before-sapbr",
            "AT+SAPBR sent before the module answered +CGATT: 1",
            "注意,先发送AT+CGATT?查询是否附着上GPRS数据网络,"
            "返回+CGATT: 1后,才能执行下面的三个 AT指令。",
            "一型一密AT方式连接, step 1 (also 一机一密 HTTP, step 1)",
            "ask AT+CGATT? (every second or two) until it answers +CGATT: 1, then the three "
            "AT+SAPBR commands",
        ),
        Pitfall(
            "mconfig-order",
            "AT+MCONFIG fields in the wrong order",
            "注意,第一个值为clientId,第二个值为iotId,第三个值为iotToken"
            " (iotId的值为MQTT client的用户名,iotToken的值为MQTT client的密码)",
            "一机一密AT HTTP鉴权连接, steps 9-10 "
            "(AT直连MQTT: clientId|…|, deviceName&productKey, sign)",
            'AT+MCONFIG="<clientId>","<iotId>","<iotToken>" after HTTPS auth; '
            'AT+MCONFIG="<clientId>|securemode=3,signmethod=hmacmd5|","<deviceName>&<productKey>",'
            '"<sign>" for direct MQTT',
        ),
        Pitfall(
            "mqtt-host",
            "the MQTT host does not carry the device's productKey",
            "注意,第一个参数需要根据实际项目productKey修改",
            "一机一密AT直连MQTT, step 2",
            'AT+SSLMIPSTART="<productKey>.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883 with your '
            "own productKey",
        ),
        Pitfall(
            "httpaction-status",
            "the HTTPS request did not succeed (+HTTPACTION status or the reply's code is not 200)",
            "HTTPACTION的信息上报,正常的话会回复状态码200",
            "一机一密AT HTTP鉴权连接, steps 7-8 (also 一型一密, steps 7-8)",
            "read the body with AT+HTTPREAD: its code and message say what the cloud refused "
            "(see the explanation); fix that and send AT+HTTPACTION=1 again",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One warning of the tutorial seen in a capture.

    ``id``: the :data:`PITFALLS` key; ``index``: the event's index in the transcript's
    events; ``line``: the line of the log it came from (``None`` when unknown);
    ``explanation``: one line of English saying what happened; ``warning_zh``: the
    tutorial's Chinese warning; ``fix``: what to do; ``excerpt``: the offending command
    or line, secrets masked.

    >>> f = Finding("mqtt-host", 3, 12, "host of another product", "注意…", "use yours", "AT+X")
    >>> print(f.title)
    the MQTT host does not carry the device's productKey
    """

    id: str
    index: int
    line: int | None
    explanation: str
    warning_zh: str
    fix: str
    excerpt: str = ""

    @property
    def title(self) -> str:
        return PITFALLS[self.id].title

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else f"event {self.index}"
        return f"{where}: [{self.id}] {self.explanation}"
