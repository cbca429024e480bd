"""What the recipes of :mod:`airlab.session.recipes` return: one :class:`Step` per
command with its timings, and a small frozen result per recipe (:class:`MqttLogin`,
:class:`PublishResult` ...) whose ``timings()`` is a list of dicts, ready for a table.

The names are re-exported by :mod:`airlab.session.recipes` and :mod:`airlab.session`.

Example:
    >>> r = RecipeResult(steps=(Step("CSQ", "AT+CSQ", "OK", 0.012),))
    >>> r.timings()[0]["latency_s"], r.step("CSQ").command
    (0.012, 'AT+CSQ')
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airlab.aliyun import (
    MqttCredentials,
)
from airlab.aliyun.dynreg import (
    DeviceTokenGrant,
)
from airlab.session.response import Response


@dataclass(frozen=True)
class Step:
    """One command of a recipe with its timings (seconds)."""

    name: str
    command: str
    result: str
    latency: float
    urc: str | None = None
    urc_latency: float | None = None
    sent_mono: float = 0.0

    @classmethod
    def of(cls, name: str, resp: Response) -> Step:
        result = resp.result if resp.code is None else f"{resp.result}: {resp.code}"
        return cls(
            name=name,
            command=resp.command,
            result=result,
            latency=resp.latency,
            urc=None if resp.urc is None else resp.urc.line,
            urc_latency=resp.urc_latency,
            sent_mono=resp.sent_mono,
        )


@dataclass(frozen=True, kw_only=True)
class RecipeResult:
    """The steps of a recipe, in order."""

    steps: tuple[Step, ...] = ()

    def timings(self) -> list[dict[str, object]]:
        """One dict per step: step, command, result, latency_s, urc, urc_latency_s."""
        return [
            {
                "step": s.name,
                "command": s.command,
                "result": s.result,
                "latency_s": s.latency,
                "urc": s.urc,
                "urc_latency_s": s.urc_latency,
            }
            for s in self.steps
        ]

    def step(self, name: str) -> Step:
        """The (last) step called ``name``."""
        for s in reversed(self.steps):
            if s.name == name:
                return s
        raise KeyError(name)


@dataclass(frozen=True, kw_only=True)
class AttachResult(RecipeResult):
    ip: str | None = None


@dataclass(frozen=True, kw_only=True)
class _MqttConnected(RecipeResult):
    """A recipe that sent ``AT+MCONNECT`` (its step ``MCONNECT``)."""

    @property
    def connack_latency(self) -> float | None:
        """Seconds from AT+MCONNECT to CONNACK OK."""
        return self.step("MCONNECT").urc_latency


@dataclass(frozen=True, kw_only=True)
class MqttLogin(_MqttConnected):
    """An MQTT session is up: who logged in where, and how long CONNACK took."""

    method: str
    client_id: str
    username: str
    host: str
    port: int
    tls: bool
    keepalive: int
    sign_content: str = ""
    iot_id: str | None = None
    credentials: MqttCredentials | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class Registration(RecipeResult):
    product_key: str
    device_name: str
    device_secret: str = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class MqttRegistration(_MqttConnected):
    """What MQTT dynamic registration gave.

    ``auth_type``: ``"register"`` (``device_secret`` is set: log in with
    :func:`direct_mqtt`) or ``"regnwl"`` (``grant`` holds the clientId and DeviceToken:
    log in with :func:`connwl_login`).  ``client_id`` is the registration CONNECT's
    client id, ``push_topic`` where the result came (``/ext/register`` or
    ``/ext/regnwl``), ``closed_by`` who ended the link: ``"cloud"`` (the module printed
    ``CLOSED``) or ``"module"`` (``AT+MDISCONNECT``, ``AT+MIPCLOSE``).  Secrets are left
    out of ``repr``; the ``+MSUB`` step's line is redacted.
    """

    auth_type: str
    product_key: str
    device_name: str
    client_id: str
    push_topic: str
    closed_by: str
    device_secret: str | None = field(default=None, repr=False)
    grant: DeviceTokenGrant | None = field(default=None, repr=False)
    credentials: MqttCredentials | None = field(default=None, repr=False)

    @property
    def push_latency(self) -> float | None:
        """Seconds from AT+MCONNECT to the ``+MSUB`` push."""
        return self.step("+MSUB").urc_latency


@dataclass(frozen=True, kw_only=True)
class SubscribeResult(RecipeResult):
    topic: str
    qos: int

    @property
    def suback_latency(self) -> float | None:
        return self.steps[-1].urc_latency if self.steps else None


@dataclass(frozen=True, kw_only=True)
class PublishResult(RecipeResult):
    topic: str
    qos: int
    size: int
    response: Response = field(repr=False)

    @property
    def ack_latency(self) -> float | None:
        """Seconds from AT+MPUB to PUBACK (QoS1) / PUBCOMP (QoS2); None for QoS0."""
        return self.response.urc_latency


class _Steps:
    def __init__(self) -> None:
        self.items: list[Step] = []

    def add(self, name: str, resp: Response) -> Response:
        self.items.append(Step.of(name, resp))
        return resp

    def done(self) -> tuple[Step, ...]:
        return tuple(self.items)
