"""The tutorial's steps per method, read from its captures, and the turns of a typed session.

A *turn* is one thing the host sent (a command line, or the body after ``DOWNLOAD``)
with everything the module answered until the next one.  The same split reads the
tutorial's sscom captures (:func:`tutorial_steps`) and a live session's events
(:func:`split_turns`), so both columns of the checker come from one event model.

Example:
    >>> steps = tutorial_steps("direct_mqtt")
    >>> [(s.key, s.name_zh) for s in steps]
    [('mconfig', '配置MQTT参数'), ('mipstart', '建立连接'), ('mconnect', '建立会话')]
    >>> steps[2].replies
    ('OK', 'CONNACK OK')
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from airlab.at.events import (
    BytesReceived,
    BytesSent,
    CommandSent,
    DataSent,
    Echo,
    Event,
    FinalResult,
    Payload,
    Prompt,
    UnknownLine,
    Urc,
)
from airlab.at.parser import split_args
from airlab.errors import UsageError

__all__ = [
    "CAPTURES_ENV",
    "Method",
    "Turn",
    "TutorialStep",
    "captures_dir",
    "split_turns",
    "step_key",
    "steps_from_events",
    "tutorial_steps",
]

#: Environment variable naming the folder of the tutorial's ``seed_*.log`` captures.
CAPTURES_ENV = "AIRLAB_CAPTURES"


class Method(StrEnum):
    """The tutorial's methods, named like its captures (``seed_<name>.log``)."""

    HTTP_AUTH = "http_auth_then_mqtt"  # 一机一密, HTTP认证二次连接
    DIRECT = "direct_mqtt"  # 一机一密直连
    REGISTER = "dynamic_register"  # 一型一密: register, then log in directly
    PUBSUB = "publish_subscribe"  # 发布与订阅

    @property
    def title_zh(self) -> str:
        return _TITLES[self][0]

    @property
    def title_en(self) -> str:
        return _TITLES[self][1]


_TITLES = {
    Method.HTTP_AUTH: ("一机一密AT HTTP鉴权连接", "one secret per device: HTTPS auth, then MQTT"),
    Method.DIRECT: ("一机一密AT直连MQTT", "one secret per device: direct MQTT"),
    Method.REGISTER: (
        "一型一密AT方式连接",
        "one secret per product: HTTPS dynamic registration, then direct MQTT",
    ),
    Method.PUBSUB: ("发布与订阅消息", "publish and subscribe"),
}

#: The captures each method's steps come from, in order (dynamic registration is
#: followed by a direct-MQTT login with the secret it issued).
_CAPTURES: dict[Method, tuple[str, ...]] = {
    Method.HTTP_AUTH: ("http_auth_then_mqtt",),
    Method.DIRECT: ("direct_mqtt",),
    Method.REGISTER: ("dynamic_register", "direct_mqtt"),
    Method.PUBSUB: ("publish_subscribe",),
}

#: Step key -> (the tutorial's Chinese name, English name).
STEP_NAMES: dict[str, tuple[str, str]] = {
    "cgatt": ("激活网络 · 查询附着", "network: attached? (+CGATT: 1)"),
    "sapbr_contype": ("激活网络 · 承载类型", "bearer type GPRS"),
    "sapbr_apn": ("激活网络 · APN", "bearer APN"),
    "sapbr_open": ("激活网络 · 打开承载", "open the bearer"),
    "httpinit": ("初始化HTTP", "start HTTP"),
    "url": ("写入网址URL", "the URL"),
    "header": ("设置请求header", "the Content-type header"),
    "httpdata": ("配置写入DOWNLOAD参数指令", "announce the body's length"),
    "body": ("写入DOWNLOAD参数", "the body (DOWNLOAD 参数)"),
    "httpaction": ("HTTPACTION的信息上报", "POST it: +HTTPACTION: 1,200,…"),
    "httpread": ("读取请求结果", "read the reply"),
    "mconfig": ("配置MQTT参数", "MQTT client id, user name, password"),
    "mipstart": ("建立连接", "open the TLS link (CONNECT OK)"),
    "mconnect": ("建立会话", "MQTT login (CONNACK OK)"),
    "mpub0": ("发布Qos0消息", "publish QoS 0"),
    "mpub1": ("发布Qos1消息", "publish QoS 1 (PUBACK)"),
    "msub": ("订阅主题", "subscribe (SUBACK)"),
    "msgset": ("设置收到数据时的打印方式", "how received messages are shown"),
}
_NAME_OVERRIDES = {(Method.HTTP_AUTH, "mconfig"): "配置连接阿里云"}

#: URCs a step waits for after its ``OK``.
AWAITED_URCS: dict[str, tuple[str, ...]] = {
    "httpaction": ("+HTTPACTION",),
    "mipstart": ("CONNECT OK", "CONNECT FAIL", "ALREADY CONNECT"),
    "mconnect": ("CONNACK OK",),
    "mpub1": ("PUBACK",),
    "msub": ("SUBACK",),
}


def step_key(text: str, *, body: bool = False) -> str | None:
    """Which tutorial step a typed line is (``None``: none of them).

    Example:
        >>> step_key('AT+SAPBR=3,1,"APN","CMIOT"'), step_key("at+httpinit")
        ('sapbr_apn', 'httpinit')
        >>> step_key('AT+MPUB="/pk/dn/user/update",1,0,"x"'), step_key("ATI")
        ('mpub1', None)
    """
    if body:
        return "body"
    line = text.strip()
    upper = line.upper()
    if not upper.startswith("AT+"):
        return None
    name, _, rest = upper[3:].partition("=")
    name = name.rstrip("?").strip()
    args = split_args(line.partition("=")[2]) if "=" in line else ()
    upper_args = tuple(a.upper() for a in args)
    if name == "CGATT" and upper.endswith("?"):
        return "cgatt"
    if name == "SAPBR" and upper_args:
        if upper_args[0] == "3" and len(upper_args) > 2:
            return {"CONTYPE": "sapbr_contype", "APN": "sapbr_apn"}.get(upper_args[2])
        return "sapbr_open" if upper_args[0] == "1" else None
    if name == "HTTPPARA" and upper_args:
        return {"URL": "url", "USER_DEFINED": "header"}.get(upper_args[0])
    if name == "MPUB" and len(args) > 1:
        return {"0": "mpub0", "1": "mpub1"}.get(args[1].strip())
    simple = {
        "HTTPINIT": "httpinit",
        "HTTPDATA": "httpdata",
        "HTTPACTION": "httpaction",
        "HTTPREAD": "httpread",
        "MCONFIG": "mconfig",
        "SSLMIPSTART": "mipstart",
        "MIPSTART": "mipstart",
        "MCONNECT": "mconnect",
        "MSUB": "msub",
        "MQTTMSGSET": "msgset",
    }
    if name in simple and (rest or name in ("HTTPINIT", "HTTPREAD")):
        return simple[name]
    return None


@dataclass(frozen=True, slots=True)
class Turn:
    """What the host sent once and what came back until the next send.

    ``sent`` is the command line, or for a body (``body`` true) the bytes the module
    took after ``DOWNLOAD``; ``surplus`` the bytes of that same write beyond the
    announced length (the module read them as a command line); ``joined``: those bytes
    when they ran into the next typed line (``sent`` is then that line without them).
    ``stray``: a line that is not an AT command (the module does not answer it).
    ``replies``: the module's events, echo left out.
    """

    sent: str
    body: bool
    wall: float
    mono: float
    replies: tuple[Event, ...] = ()
    surplus: str = ""
    stray: bool = False
    joined: str = ""

    @property
    def key(self) -> str | None:
        """The tutorial step this turn is (:func:`step_key`)."""
        return None if self.stray else step_key(self.sent, body=self.body)

    @property
    def final(self) -> FinalResult | None:
        """The final result (``OK``, ``ERROR``, ``+CME ERROR: n``), if one came."""
        return next((e for e in self.replies if isinstance(e, FinalResult)), None)

    @property
    def prompt(self) -> Prompt | None:
        return next((e for e in self.replies if isinstance(e, Prompt)), None)

    def urc(self, *names: str) -> Urc | None:
        """The first URC with one of these names."""
        return next((e for e in self.replies if isinstance(e, Urc) and e.name in names), None)

    @property
    def payload(self) -> Payload | None:
        return next((e for e in self.replies if isinstance(e, Payload)), None)

    @property
    def reply_texts(self) -> tuple[str, ...]:
        """The replies as the serial tool shows them (a payload as its text)."""
        return tuple(t for t in (_reply_text(e) for e in self.replies) if t)


def _reply_text(ev: Event) -> str:
    if isinstance(ev, Payload):
        return ev.text
    return ev.text.strip()


@dataclass
class _Building:
    sent: str
    body: bool
    wall: float
    mono: float
    replies: list[Event] = field(default_factory=list)
    surplus: str = ""
    stray: bool = False
    open: bool = True  # still waiting for its final result (or DOWNLOAD)
    joined: str = ""

    def freeze(self) -> Turn:
        return Turn(
            self.sent,
            self.body,
            self.wall,
            self.mono,
            tuple(self.replies),
            self.surplus,
            self.stray,
            self.joined,
        )


def split_turns(events: Iterable[Event]) -> tuple[Turn, ...]:
    """Split events (a session's or a capture's) into :class:`Turn` s.

    A URC goes to the latest turn waiting for it (``PUBACK`` to the QoS1 publish, even
    when another command was typed meanwhile), anything else to the latest AT turn.

    Example:
        >>> from airlab.at import read_capture
        >>> turns = split_turns(read_capture(f"{captures_dir()}/seed_direct_mqtt.log").events())
        >>> [(t.key, t.reply_texts) for t in turns][1]
        ('mipstart', ('OK', 'CONNECT OK'))
    """
    turns: list[_Building] = []
    target: _Building | None = None
    for ev in events:
        if isinstance(ev, BytesSent | BytesReceived | Echo):
            continue
        if isinstance(ev, DataSent):
            target = _Building(ev.raw.decode("utf-8", "replace"), True, ev.wall, ev.mono)
            turns.append(target)
            continue
        if isinstance(ev, CommandSent):
            line = ev.line
            joined = ""
            if target is not None and target.body and ev.mono == target.mono and not target.surplus:
                # the same write, beyond the announced length: the module reads it as a
                # command line, joined to the next line typed when no CR LF ended it
                at = line.upper().find("AT", 1)
                if at < 0:
                    target.surplus = line
                    continue
                target.surplus = joined = line[:at]
            if not line.strip():
                continue
            turn = _Building(line[len(joined) :], False, ev.wall, ev.mono, joined=joined)
            if not joined and not line.strip().upper().startswith("AT"):
                turn.stray = True  # answered by nobody: replies keep going to `target`
                turn.open = False
                turns.append(turn)
                continue
            target = turn
            turns.append(turn)
            continue
        if isinstance(ev, UnknownLine) and any(
            ev.line.strip() in ((t.sent if t.stray else ""), t.surplus) for t in turns[-3:]
        ):
            continue  # the module echoing a stray line
        home = target
        # the module answers commands in order: a pasted block's first command gets
        # the first answer
        waiting = [t for t in turns if t.open]
        if not isinstance(ev, Urc) and waiting:
            home = waiting[0]
        if isinstance(ev, FinalResult | Prompt) and home is not None:
            home.open = False
        if isinstance(ev, Urc):
            for turn in reversed(turns):
                key = None if turn.stray else step_key(turn.sent, body=turn.body)
                waits = AWAITED_URCS.get(key or "", ())
                refused = any(isinstance(r, FinalResult) and not r.ok for r in turn.replies)
                if (
                    ev.name in waits
                    and not refused
                    and not any(isinstance(r, Urc) and r.name in waits for r in turn.replies)
                ):
                    home = turn
                    break
        if home is not None:
            home.replies.append(ev)
    return tuple(t.freeze() for t in turns)


@dataclass(frozen=True, slots=True)
class TutorialStep:
    """One step of a method as the tutorial's capture did it.

    ``index`` counts from 1 within the method; ``key`` names the kind of step
    (:data:`STEP_NAMES`); ``sent`` is the capture's line (or body); ``replies`` what
    the module answered (echo left out); ``latency`` seconds from the send to the
    last reply (``None`` when the capture has no times).
    """

    method: Method
    index: int
    key: str
    name_zh: str
    name_en: str
    sent: str
    replies: tuple[str, ...]
    wall: float
    latency: float | None = None
    body: bool = False


def steps_from_events(method: Method | str, events: Iterable[Event]) -> tuple[TutorialStep, ...]:
    """The steps of ``method`` from a capture's events (turns that are no tutorial
    step are left out)."""
    m = Method(method)
    steps: list[TutorialStep] = []
    for turn in split_turns(events):
        key = turn.key
        if key is None:
            continue
        zh, en = STEP_NAMES[key]
        zh = _NAME_OVERRIDES.get((m, key), zh)
        latency = None
        if turn.replies and turn.replies[-1].mono == turn.replies[-1].mono:  # not NaN
            latency = max(0.0, turn.replies[-1].mono - turn.mono)
        steps.append(
            TutorialStep(
                m,
                len(steps) + 1,
                key,
                zh,
                en,
                turn.sent,
                turn.reply_texts,
                turn.wall,
                latency,
                turn.body,
            )
        )
    return tuple(steps)


def captures_dir() -> Path:
    """The folder of the tutorial's captures: ``$AIRLAB_CAPTURES``, else the
    project's ``data/captures``.

    Example:
        >>> (captures_dir() / "seed_direct_mqtt.log").exists()
        True
    """
    env = (os.environ.get(CAPTURES_ENV) or "").strip()
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "data" / "captures"


@functools.lru_cache(maxsize=16)
def _read_steps(method: Method, folder: str) -> tuple[TutorialStep, ...]:
    from airlab.at.formats import read_capture

    events: list[Event] = []
    for name in _CAPTURES[method]:
        path = Path(folder) / f"seed_{name}.log"
        if not path.exists():
            raise UsageError(
                "capture",
                f"the tutorial's capture {path.name} is not in {folder}: set {CAPTURES_ENV} "
                "to the folder of the seed_*.log captures (data/captures in the project)",
            )
        events.extend(read_capture(path, date="2024-07-22").events())
    return steps_from_events(method, events)


def tutorial_steps(
    method: Method | str, captures: str | os.PathLike[str] | None = None
) -> tuple[TutorialStep, ...]:
    """The tutorial's steps for ``method``, parsed from its sscom captures
    (``captures``: their folder, default :func:`captures_dir`).

    Example:
        >>> [s.key for s in tutorial_steps("dynamic_register")][-4:]
        ['httpread', 'mconfig', 'mipstart', 'mconnect']
    """
    try:
        m = Method(method)
    except ValueError:
        known = ", ".join(x.value for x in Method)
        raise UsageError("method", f"unknown method {method!r} (use {known})") from None
    folder = Path(captures) if captures is not None else captures_dir()
    return _read_steps(m, str(folder))


def by_key(steps: Sequence[TutorialStep]) -> dict[str, list[TutorialStep]]:
    """Steps grouped by key, in order."""
    out: dict[str, list[TutorialStep]] = {}
    for s in steps:
        out.setdefault(s.key, []).append(s)
    return out
