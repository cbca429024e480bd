"""Topics (主题) and topic classes (Topic类), and who may use which one — pure.

A *topic class* belongs to a product and is copied to every device: its template names
the two fixed levels ``${productKey}`` and ``${deviceName}``, which are filled in per
device. A device may publish or subscribe **only** on topics of its own (pk, dn) whose
class grants the matching permission (``pub``, ``sub`` or ``all``), or on the system
topics (spec §5.1).

Matching rules used by :func:`check_topic_access`:

* a topic or filter is first checked for form: at most 128 bytes, starts with ``/``,
  no empty level, ``+`` and ``#`` only as whole levels (``#`` last), no wildcard at all
  in a PUBLISH topic;
* a level ``${identifier}`` / ``${messageId}`` (or a level containing one, such as
  ``${identifier}_reply``) stands for one concrete level; ``+`` in a class stands for one
  level and ``#`` for the rest;
* a subscription filter with a wildcard is allowed only where a class itself carries that
  wildcard (``/${pk}/${dn}/user/#``, ``/broadcast/${pk}/+``): every topic the filter
  could match must belong to the class, so a filter never reaches other devices;
* more than 7 levels is refused except for system topics (``…/property/batch/post``
  has 8);
* ``/ext/ntp/${pk}/${dn}/request`` accepts QoS 0 only; no topic accepts QoS 2;
* ``/ext/rrpc/${messageId}/<custom topic>`` (RRPC on custom topics) is allowed for any
  of the device's own custom classes without wildcards.

Example:
    >>> d = check_topic_access("pk1", "dev1", "/pk1/dev1/user/update", "pub",
    ...                        DEFAULT_TOPIC_CLASSES)
    >>> d.allowed, d.matched.template
    (True, '/${productKey}/${deviceName}/user/update')
    >>> check_topic_access("pk1", "dev1", "/pk1/+/user/get", "sub",
    ...                    DEFAULT_TOPIC_CLASSES).rule
    'topic_permission'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from airlab.errors import UsageError

__all__ = [
    "DEFAULT_TOPIC_CLASSES",
    "LEGACY_TOPIC_CLASSES",
    "MAX_TOPIC_BYTES",
    "MAX_TOPIC_LEVELS",
    "SYSTEM_TOPIC_CLASSES",
    "TopicAccess",
    "TopicClass",
    "TopicPermission",
    "check_topic_access",
    "class_covers",
    "instantiate_topic",
    "parse_topic_permission",
    "topic_covers",
    "topic_problem",
    "validate_topic_class",
]

MAX_TOPIC_BYTES = 128
"""Longest topic the platform accepts, in UTF-8 bytes."""
MAX_TOPIC_LEVELS = 7
"""Most levels (counted by ``/``) a custom topic may have."""

PK = "${productKey}"
DN = "${deviceName}"
_PLACEHOLDER = re.compile(r"\$\{[A-Za-z][A-Za-z0-9_.]*\}")
_CUSTOM_LEVEL = re.compile(r"[A-Za-z0-9_]+")


class TopicPermission(StrEnum):
    """Operation permission of a topic class (操作权限): publish, subscribe or both."""

    PUB = "pub"
    SUB = "sub"
    ALL = "all"

    def allows(self, action: str) -> bool:
        """True if this permission covers ``action`` (``"pub"`` or ``"sub"``).

        Example:
            >>> TopicPermission.ALL.allows("sub"), TopicPermission.PUB.allows("sub")
            (True, False)
        """
        return self is TopicPermission.ALL or self.value == action


_PERMISSION_WORDS = {
    "pub": TopicPermission.PUB,
    "publish": TopicPermission.PUB,
    "发布": TopicPermission.PUB,
    "sub": TopicPermission.SUB,
    "subscribe": TopicPermission.SUB,
    "订阅": TopicPermission.SUB,
    "all": TopicPermission.ALL,
    "pub/sub": TopicPermission.ALL,
    "pubsub": TopicPermission.ALL,
    "发布和订阅": TopicPermission.ALL,
}


def parse_topic_permission(value: str | TopicPermission) -> TopicPermission:
    """Read a permission in any case: ``pub``/``PUB``/``publish``, ``sub``, ``all``.

    Example:
        >>> parse_topic_permission("SUB")
        <TopicPermission.SUB: 'sub'>
    """
    if isinstance(value, TopicPermission):
        return value
    found = _PERMISSION_WORDS.get(str(value).strip().lower())
    if found is None:
        raise UsageError("permission", f"must be pub, sub or all, got {value!r}")
    return found


@dataclass(frozen=True, slots=True)
class TopicClass:
    """A topic class: a template with ``${productKey}``/``${deviceName}`` and a permission.

    ``system`` marks the platform's own topics; ``max_qos`` limits the QoS a device may
    publish with (NTP requests: 0).

    Example:
        >>> TopicClass("/${productKey}/${deviceName}/user/get", TopicPermission.SUB).topic(
        ...     "k1hipglLdjU", "868488076506128")
        '/k1hipglLdjU/868488076506128/user/get'
    """

    template: str
    permission: TopicPermission
    system: bool = False
    max_qos: int = 1

    def topic(self, product_key: str, device_name: str) -> str:
        """The class filled in for one device."""
        return instantiate_topic(self.template, product_key, device_name)

    def as_dict(self) -> dict[str, object]:
        """Plain dict (for tables and JSON)."""
        return {"template": self.template, "permission": self.permission.value}


def instantiate_topic(template: str, product_key: str, device_name: str) -> str:
    """Fill ``${productKey}`` and ``${deviceName}`` in; other placeholders stay.

    Example:
        >>> instantiate_topic("/sys/${productKey}/${deviceName}/thing/event/${identifier}/post",
        ...                   "pk", "dn")
        '/sys/pk/dn/thing/event/${identifier}/post'
    """
    values = {PK: product_key, DN: device_name}
    # One pass: a name that itself contains "${deviceName}" is not expanded again.
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(0), m.group(0)), template)


def _c(template: str, permission: str, *, max_qos: int = 1) -> TopicClass:
    return TopicClass(template, TopicPermission(permission), system=True, max_qos=max_qos)


DEFAULT_TOPIC_CLASSES: tuple[TopicClass, ...] = (
    TopicClass(f"/{PK}/{DN}/user/update", TopicPermission.PUB),
    TopicClass(f"/{PK}/{DN}/user/update/error", TopicPermission.PUB),
    TopicClass(f"/{PK}/{DN}/user/get", TopicPermission.SUB),
)
"""The three custom classes every new product gets."""

LEGACY_TOPIC_CLASSES: tuple[TopicClass, ...] = (
    TopicClass(f"/{PK}/{DN}/update", TopicPermission.PUB),
    TopicClass(f"/{PK}/{DN}/update/error", TopicPermission.PUB),
    TopicClass(f"/{PK}/{DN}/get", TopicPermission.SUB),
)
"""The default classes of products created around 2019 and earlier (no ``/user``)."""

_SYS = f"/sys/{PK}/{DN}"


def _pair(request: str, request_perm: str, reply_suffix: str = "_reply") -> list[TopicClass]:
    reply_perm = "sub" if request_perm == "pub" else "pub"
    return [_c(request, request_perm), _c(request + reply_suffix, reply_perm)]


SYSTEM_TOPIC_CLASSES: tuple[TopicClass, ...] = tuple(
    [
        *_pair(f"{_SYS}/thing/event/property/post", "pub"),
        *_pair(f"{_SYS}/thing/event/${{identifier}}/post", "pub"),
        *_pair(f"{_SYS}/thing/event/property/batch/post", "pub"),
        *_pair(f"{_SYS}/thing/service/property/set", "sub"),
        *_pair(f"{_SYS}/thing/service/${{identifier}}", "sub"),
        *_pair(f"{_SYS}/thing/model/up_raw", "pub"),
        *_pair(f"{_SYS}/thing/model/down_raw", "sub"),
        *_pair(f"{_SYS}/thing/deviceinfo/update", "pub"),
        *_pair(f"{_SYS}/thing/deviceinfo/delete", "pub"),
        _c(f"{_SYS}/thing/config/push", "sub"),
        *_pair(f"{_SYS}/thing/config/get", "pub"),
        _c(f"/shadow/update/{PK}/{DN}", "pub"),
        _c(f"/shadow/get/{PK}/{DN}", "sub"),
        _c(f"/ota/device/inform/{PK}/{DN}", "pub"),
        _c(f"/ota/device/upgrade/{PK}/{DN}", "sub"),
        _c(f"/ota/device/progress/{PK}/{DN}", "pub"),
        _c(f"/ota/device/request/{PK}/{DN}", "pub"),
        *_pair(f"{_SYS}/thing/ota/firmware/get", "pub"),
        _c(f"/broadcast/{PK}/+", "sub"),
        _c(f"{_SYS}/rrpc/request/+", "sub"),
        _c(f"{_SYS}/rrpc/response/${{messageId}}", "pub"),
        _c(f"/ext/ntp/{PK}/{DN}/request", "pub", max_qos=0),
        _c(f"/ext/ntp/{PK}/{DN}/response", "sub"),
        *_pair(f"/ext/session/{PK}/{DN}/combine/login", "pub"),
        *_pair(f"/ext/session/{PK}/{DN}/combine/batch_login", "pub"),
        *_pair(f"/ext/session/{PK}/{DN}/combine/logout", "pub"),
        *_pair(f"/ext/session/{PK}/{DN}/combine/batch_logout", "pub"),
        *_pair(f"{_SYS}/thing/topo/add", "pub"),
        *_pair(f"{_SYS}/thing/topo/delete", "pub"),
        *_pair(f"{_SYS}/thing/topo/get", "pub"),
        *_pair(f"{_SYS}/thing/topo/change", "sub"),
        *_pair(f"{_SYS}/thing/sub/register", "pub"),
        *_pair(f"{_SYS}/thing/log/post", "pub"),
        *_pair(f"{_SYS}/thing/config/log/get", "pub"),
        _c(f"{_SYS}/thing/config/log/push", "sub"),
        _c(f"{_SYS}/thing/job/notify", "sub"),
        *_pair(f"{_SYS}/thing/job/get", "pub"),
        *_pair(f"{_SYS}/thing/job/update", "pub"),
        *_pair(f"{_SYS}/thing/bootstrap/notify", "sub"),
        # Pushed by the server without a subscription; a SUBSCRIBE is tolerated.
        _c("/ext/register", "sub"),
        _c("/ext/regnwl", "sub"),
        _c("/ext/notify", "sub"),
    ]
)
"""The platform's system topics from the device's point of view (spec §5.1)."""


def validate_topic_class(template: str, permission: str | TopicPermission) -> TopicClass:
    """Check a custom topic class the way the console does and return it.

    It must start with ``/${productKey}/${deviceName}/``; other levels are letters,
    digits and ``_``; ``+`` and ``#`` only with ``sub`` permission (``#`` last); at
    most 7 levels.

    Example:
        >>> validate_topic_class("/${productKey}/${deviceName}/user/cmd/+", "sub").template
        '/${productKey}/${deviceName}/user/cmd/+'
        >>> validate_topic_class("/${productKey}/${deviceName}/user/#", "pub")
        Traceback (most recent call last):
        ...
        airlab.errors.UsageError: template: wildcards '+'/'#' need subscribe permission
    """
    perm = parse_topic_permission(permission)
    if not isinstance(template, str):
        raise UsageError("template", "must be a string")
    prefix = f"/{PK}/{DN}/"
    if not template.startswith(prefix):
        raise UsageError("template", f"must start with {prefix!r}, got {template!r}")
    levels = template.split("/")[1:]
    if len(levels) > MAX_TOPIC_LEVELS:
        raise UsageError("template", f"has {len(levels)} levels; at most {MAX_TOPIC_LEVELS}")
    if len(template.encode("utf-8")) > MAX_TOPIC_BYTES:
        raise UsageError("template", f"longer than {MAX_TOPIC_BYTES} bytes")
    rest = levels[2:]
    if not rest:
        raise UsageError("template", "needs at least one level after ${deviceName}")
    for index, level in enumerate(rest):
        if level in ("+", "#"):
            if perm is not TopicPermission.SUB:
                raise UsageError("template", "wildcards '+'/'#' need subscribe permission")
            if level == "#" and index != len(rest) - 1:
                raise UsageError("template", "'#' must be the last level")
        elif not _CUSTOM_LEVEL.fullmatch(level):
            raise UsageError(
                "template", f"level {level!r} must be letters, digits and '_' (and not empty)"
            )
    return TopicClass(template, perm)


def topic_problem(topic: str, *, is_filter: bool = False) -> str | None:
    """Why ``topic`` is not a usable topic (or subscription filter), else None.

    Example:
        >>> topic_problem("/a//b")
        "topic '/a//b' has an empty level"
        >>> topic_problem("/a/+/b") is None, topic_problem("/a/+/b", is_filter=True) is None
        (False, True)
    """
    if not isinstance(topic, str) or not topic:
        return "topic is empty"
    size = len(topic.encode("utf-8", errors="surrogatepass"))
    if size > MAX_TOPIC_BYTES:
        return f"topic is {size} bytes long; at most {MAX_TOPIC_BYTES} allowed"
    if not topic.startswith("/"):
        return f"topic {topic!r} must start with '/'"
    levels = topic.split("/")[1:]
    if any(level == "" for level in levels):
        return f"topic {topic!r} has an empty level"
    if any(c in topic for c in "\x00"):
        return "topic contains a NUL character"
    for index, level in enumerate(levels):
        if "+" in level or "#" in level:
            if not is_filter:
                return f"a PUBLISH topic must not contain wildcards: {topic!r}"
            if level not in ("+", "#"):
                return f"wildcard must fill a whole level: {level!r} in {topic!r}"
            if level == "#" and index != len(levels) - 1:
                return f"'#' must be the last level of {topic!r}"
    return None


@lru_cache(maxsize=4096)
def _level_regex(
    level: str, product_key: str | None = None, device_name: str | None = None
) -> re.Pattern[str] | None:
    """A level with placeholders as a regex: ``${productKey}``/``${deviceName}``, when
    given, match only their own text; any other placeholder matches one concrete level
    (no wildcard). None when the level has no placeholder."""
    if not _PLACEHOLDER.search(level):
        return None
    literals = {PK: product_key, DN: device_name}
    pieces: list[str] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(level):
        pieces.append(re.escape(level[pos : match.start()]))
        value = literals.get(match.group(0))
        pieces.append("[^/+#]+" if value is None else re.escape(value))
        pos = match.end()
    pieces.append(re.escape(level[pos:]))
    return re.compile("".join(pieces))


def _covers_levels(
    plevels: Sequence[str],
    topic_or_filter: str,
    product_key: str | None = None,
    device_name: str | None = None,
) -> bool:
    flevels = topic_or_filter.split("/")
    for index, plevel in enumerate(plevels):
        if plevel == "#":
            return True
        if index >= len(flevels):
            return False
        flevel = flevels[index]
        if flevel == "#":
            return False
        if plevel == "+":
            continue
        if flevel == "+":  # a wildcard level is covered only by a wildcard level
            return False
        regex = _level_regex(plevel, product_key, device_name)
        if regex is not None:
            if not regex.fullmatch(flevel):
                return False
            continue
        if plevel != flevel:
            return False
    return len(flevels) == len(plevels)


def class_covers(
    topic_class: TopicClass, product_key: str, device_name: str, topic_or_filter: str
) -> bool:
    """True if ``topic_class``, filled in for device (pk, dn), covers ``topic_or_filter``.

    The productKey and deviceName are matched as literal text, whatever characters they
    hold: a device named ``${x}`` or ``+`` gains nothing beyond its own topics.

    Example:
        >>> get = TopicClass("/${productKey}/${deviceName}/user/get", TopicPermission.SUB)
        >>> class_covers(get, "pk", "dn", "/pk/dn/user/get")
        True
        >>> class_covers(get, "pk", "${x}", "/pk/other/user/get")
        False
    """
    plevels = topic_class.template.split("/")
    return _covers_levels(plevels, topic_or_filter, product_key, device_name)


def topic_covers(pattern: str, topic_or_filter: str) -> bool:
    """True if every topic matched by ``topic_or_filter`` also matches ``pattern``.

    ``pattern`` is an instantiated class: ``+`` covers one level (also a ``+`` in the
    filter), ``#`` covers the rest, ``${identifier}``-style placeholders cover one
    *concrete* level only.

    Example:
        >>> topic_covers("/pk/dn/user/#", "/pk/dn/user/a/+")
        True
        >>> topic_covers("/sys/pk/dn/thing/service/${identifier}", "/sys/pk/dn/thing/service/+")
        False
        >>> topic_covers("/sys/pk/dn/thing/service/${identifier}_reply",
        ...              "/sys/pk/dn/thing/service/Reboot_reply")
        True
    """
    return _covers_levels(pattern.split("/"), topic_or_filter)


@dataclass(frozen=True, slots=True)
class TopicAccess:
    """Outcome of :func:`check_topic_access`; truthy when allowed.

    ``rule``: ``ok``, ``topic_format``, ``topic_size``, ``topic_levels``,
    ``topic_permission`` or ``qos``; ``reason`` one sentence; ``matched`` the class
    that allowed it; ``available`` the device's instantiated classes granting the action
    (for explanations).
    """

    allowed: bool
    rule: str
    reason: str
    matched: TopicClass | None = None
    available: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.allowed


def _custom_plain(classes: Iterable[TopicClass], pk: str, dn: str) -> set[str]:
    return {
        c.topic(pk, dn)
        for c in classes
        if not c.system and "+" not in c.template and "#" not in c.template
    }


def check_topic_access(
    product_key: str,
    device_name: str,
    topic: str,
    action: str,
    classes: Sequence[TopicClass],
    *,
    qos: int = 0,
    system: Sequence[TopicClass] = SYSTEM_TOPIC_CLASSES,
) -> TopicAccess:
    """May device (pk, dn) ``action`` (``"pub"``/``"sub"``) on ``topic``?

    ``classes`` are the product's custom topic classes; system topics are added.

    Example:
        >>> check_topic_access("pk", "dn", "/ext/ntp/pk/dn/request", "pub", [], qos=1).rule
        'qos'
        >>> check_topic_access("pk", "dn", "/broadcast/pk/+", "sub", []).allowed
        True
        >>> check_topic_access("pk", "dn", "/pk/dn/user/get", "pub",
        ...                    DEFAULT_TOPIC_CLASSES).reason  # doctest: +ELLIPSIS
        "device pk/dn may not publish to '/pk/dn/user/get': ..."
    """
    if action not in ("pub", "sub"):
        raise UsageError("action", f"must be 'pub' or 'sub', got {action!r}")
    verb = "publish to" if action == "pub" else "subscribe to"
    who = f"{product_key}/{device_name}"
    custom = list(classes)
    usable = [c for c in (*custom, *system) if c.permission.allows(action)]
    available = tuple(c.topic(product_key, device_name) for c in usable)
    problem = topic_problem(topic, is_filter=action == "sub")
    if problem is not None:
        rule = "topic_size" if "bytes long" in problem else "topic_format"
        return TopicAccess(
            False, rule, f"device {who} may not {verb} it: {problem}", None, available
        )
    if action == "pub" and qos not in (0, 1):
        return TopicAccess(
            False, "qos", f"QoS {qos} is not supported; the platform takes QoS 0 and 1 only"
        )
    levels = len(topic.split("/")) - 1
    matched: TopicClass | None = None
    for candidate in usable:
        if class_covers(candidate, product_key, device_name, topic):
            matched = candidate
            break
    if matched is None:
        matched = _rrpc_match(product_key, device_name, topic, action, custom)
    if matched is None:
        names = ", ".join(sorted(c.topic(product_key, device_name) for c in usable if not c.system))
        reason = (
            f"device {who} may not {verb} {topic!r}: no topic class of product "
            f"{product_key} nor system topic grants '{action}' on it for this device "
            f"(its custom classes with '{action}': {names or 'none'})"
        )
        return TopicAccess(False, "topic_permission", reason, None, available)
    if levels > MAX_TOPIC_LEVELS and not matched.system:
        return TopicAccess(
            False,
            "topic_levels",
            f"topic {topic!r} has {levels} levels; at most {MAX_TOPIC_LEVELS} allowed",
            None,
            available,
        )
    if action == "pub" and qos > matched.max_qos:
        return TopicAccess(
            False,
            "qos",
            f"{topic!r} accepts QoS {matched.max_qos} only; the device published with QoS {qos}",
            matched,
            available,
        )
    return TopicAccess(True, "ok", f"allowed by {matched.template}", matched, available)


def _rrpc_match(
    pk: str, dn: str, topic: str, action: str, classes: Sequence[TopicClass]
) -> TopicClass | None:
    """``/ext/rrpc/<messageId>/<custom topic>``: RRPC on the device's own custom topics."""
    parts = topic.split("/")
    if len(parts) < 5 or parts[1] != "ext" or parts[2] != "rrpc":
        return None
    message_id = parts[3]
    if message_id == "#" or (message_id == "+" and action != "sub"):
        return None
    if any("+" in p or "#" in p for p in parts[4:]):
        return None
    inner = "/" + "/".join(parts[4:])
    if inner in _custom_plain(classes, pk, dn):
        return TopicClass(f"/ext/rrpc/${{messageId}}{inner}", TopicPermission.ALL, system=True)
    return None
