"""Topic classes, system topics and permission matching (airlab.aliyun.topics), and the
same decisions through Rules.may_publish / may_subscribe."""

from __future__ import annotations

import pytest

from airlab.aliyun import (
    DEFAULT_TOPIC_CLASSES,
    SYSTEM_TOPIC_CLASSES,
    TopicPermission,
    check_topic_access,
    topic_covers,
    topic_problem,
    validate_topic_class,
)
from airlab.cloud.auth import Rules
from airlab.cloud.model import DeviceRef
from airlab.cloud.registry import Registry
from airlab.errors import UsageError

PK, A, B = "k1hipglLdjU", "devA", "devB"
CLASSES = (
    *DEFAULT_TOPIC_CLASSES,
    validate_topic_class("/${productKey}/${deviceName}/user/cmd/+", "sub"),
    validate_topic_class("/${productKey}/${deviceName}/user/all/#", "sub"),
    validate_topic_class("/${productKey}/${deviceName}/user/both", "all"),
)


def access(topic: str, action: str, dn: str = A, qos: int = 0):
    return check_topic_access(PK, dn, topic, action, CLASSES, qos=qos)


@pytest.mark.parametrize(
    ("topic", "action"),
    [
        (f"/{PK}/{A}/user/update", "pub"),
        (f"/{PK}/{A}/user/update/error", "pub"),
        (f"/{PK}/{A}/user/get", "sub"),
        (f"/{PK}/{A}/user/both", "pub"),
        (f"/{PK}/{A}/user/both", "sub"),
        (f"/{PK}/{A}/user/cmd/+", "sub"),
        (f"/{PK}/{A}/user/cmd/reboot", "sub"),
        (f"/{PK}/{A}/user/all/#", "sub"),
        (f"/{PK}/{A}/user/all/x/+", "sub"),
        (f"/{PK}/{A}/user/all/x/y", "sub"),
    ],
)
def test_own_custom_topics_allowed(topic: str, action: str) -> None:
    assert access(topic, action).allowed, access(topic, action).reason


@pytest.mark.parametrize(
    ("topic", "action"),
    [
        (f"/{PK}/{A}/user/update", "sub"),  # pub-only class
        (f"/{PK}/{A}/user/get", "pub"),  # sub-only class
        (f"/{PK}/{A}/user/cmd/reboot", "pub"),
        (f"/{PK}/{A}/user/unknown", "pub"),
        (f"/{PK}/{A}/user/#", "sub"),  # broader than any class
        (f"/{PK}/{A}/#", "sub"),
        (f"/{PK}/{A}/user/+", "sub"),
        (f"/{PK}/+/user/get", "sub"),  # would reach other devices
        (f"/{PK}/#", "sub"),
        ("#", "sub"),
        ("/sys/#", "sub"),
        (f"/sys/{PK}/{A}/thing/service/+", "sub"),  # placeholder is not a wildcard class
    ],
)
def test_refused(topic: str, action: str) -> None:
    result = access(topic, action)
    assert not result.allowed
    assert result.rule in ("topic_permission", "topic_format")


@pytest.mark.parametrize(
    ("topic", "action"),
    [
        (f"/{PK}/{A}/user/update", "pub"),
        (f"/{PK}/{A}/user/get", "sub"),
        (f"/{PK}/{A}/user/cmd/+", "sub"),
        (f"/{PK}/{A}/user/all/#", "sub"),
        (f"/sys/{PK}/{A}/thing/event/property/post", "pub"),
        (f"/sys/{PK}/{A}/thing/service/property/set", "sub"),
        (f"/shadow/get/{PK}/{A}", "sub"),
        (f"/ext/ntp/{PK}/{A}/request", "pub"),
        (f"/sys/{PK}/{A}/rrpc/request/+", "sub"),
        (f"/ext/rrpc/+/{PK}/{A}/user/get", "sub"),
    ],
)
def test_device_a_permissions_never_reach_device_b(topic: str, action: str) -> None:
    assert access(topic, action, dn=A).allowed
    assert not access(topic, action, dn=B).allowed
    # and B's own version of the topic is B's
    assert access(topic.replace(f"/{A}", f"/{B}"), action, dn=B).allowed


@pytest.mark.parametrize(
    ("topic", "action"),
    [
        (f"/sys/{PK}/{A}/thing/event/property/post", "pub"),
        (f"/sys/{PK}/{A}/thing/event/property/post_reply", "sub"),
        (f"/sys/{PK}/{A}/thing/event/alarm/post", "pub"),
        (f"/sys/{PK}/{A}/thing/event/alarm/post_reply", "sub"),
        (f"/sys/{PK}/{A}/thing/event/property/batch/post", "pub"),  # 8 levels, system
        (f"/sys/{PK}/{A}/thing/service/property/set", "sub"),
        (f"/sys/{PK}/{A}/thing/service/property/set_reply", "pub"),
        (f"/sys/{PK}/{A}/thing/service/Reboot", "sub"),
        (f"/sys/{PK}/{A}/thing/service/Reboot_reply", "pub"),
        (f"/shadow/update/{PK}/{A}", "pub"),
        (f"/shadow/get/{PK}/{A}", "sub"),
        (f"/ota/device/inform/{PK}/{A}", "pub"),
        (f"/ota/device/upgrade/{PK}/{A}", "sub"),
        (f"/broadcast/{PK}/+", "sub"),
        (f"/broadcast/{PK}/news", "sub"),
        (f"/sys/{PK}/{A}/rrpc/request/+", "sub"),
        (f"/sys/{PK}/{A}/rrpc/response/123456", "pub"),
        (f"/ext/ntp/{PK}/{A}/request", "pub"),
        (f"/ext/ntp/{PK}/{A}/response", "sub"),
        (f"/sys/{PK}/{A}/thing/config/push", "sub"),
        (f"/ext/rrpc/+/{PK}/{A}/user/get", "sub"),
        (f"/ext/rrpc/88812/{PK}/{A}/user/get", "pub"),
    ],
)
def test_system_topics(topic: str, action: str) -> None:
    assert access(topic, action).allowed, access(topic, action).reason


@pytest.mark.parametrize(
    ("topic", "action"),
    [
        (f"/sys/{PK}/{A}/thing/event/property/post", "sub"),
        (f"/sys/{PK}/{A}/thing/service/property/set", "pub"),
        (f"/shadow/get/{PK}/{A}", "pub"),
        (f"/broadcast/{PK}/news", "pub"),
        (f"/broadcast/{PK}/#", "sub"),
        ("/broadcast/otherPK/+", "sub"),
        (f"/ext/rrpc/+/{PK}/{A}/user/unknown", "sub"),
        (f"/ext/rrpc/+/{PK}/{A}/user/get", "pub"),
        (f"/sys/{PK}/{A}/rrpc/response/+", "sub"),
    ],
)
def test_system_topics_refused(topic: str, action: str) -> None:
    assert not access(topic, action).allowed


def test_ntp_request_qos0_only_and_no_qos2() -> None:
    assert access(f"/ext/ntp/{PK}/{A}/request", "pub", qos=0).allowed
    assert access(f"/ext/ntp/{PK}/{A}/request", "pub", qos=1).rule == "qos"
    assert access(f"/{PK}/{A}/user/update", "pub", qos=1).allowed
    assert access(f"/{PK}/{A}/user/update", "pub", qos=2).rule == "qos"


def test_size_and_level_limits() -> None:
    long_level = "x" * 200
    assert access(f"/{PK}/{A}/user/all/{long_level}", "sub").rule == "topic_size"
    assert topic_problem("/" + "a" * 127) is None
    assert topic_problem("/" + "a" * 128) is not None  # 129 bytes
    assert topic_problem("/" + "é" * 64) is not None  # 129 bytes in UTF-8
    eight = f"/{PK}/{A}/user/all/a/b/c/d"
    assert access(f"/{PK}/{A}/user/all/a/b/c", "sub").allowed  # 7 levels
    assert access(eight, "sub").rule == "topic_levels"
    assert access(f"/{PK}/{A}/user//update", "pub").rule == "topic_format"
    assert access(f"/{PK}/{A}/user/update/", "pub").rule == "topic_format"
    assert access(f"{PK}/{A}/user/update", "pub").rule == "topic_format"
    assert access(f"/{PK}/{A}/user/get+", "sub").rule == "topic_format"
    assert access(f"/{PK}/{A}/user/#/x", "sub").rule == "topic_format"
    assert access(f"/{PK}/{A}/user/+", "pub").rule == "topic_format"


def test_topic_covers() -> None:
    assert topic_covers("/a/+/c", "/a/+/c")
    assert topic_covers("/a/+/c", "/a/b/c")
    assert not topic_covers("/a/b/c", "/a/+/c")
    assert topic_covers("/a/#", "/a")
    assert topic_covers("/a/#", "/a/#")
    assert not topic_covers("/a/+", "/a/#")
    assert not topic_covers("/a/${identifier}/c", "/a/+/c")
    assert topic_covers("/a/${identifier}/c", "/a/x/c")


def test_validate_topic_class() -> None:
    assert validate_topic_class("/${productKey}/${deviceName}/user/a", "PUB").permission is (
        TopicPermission.PUB
    )
    for template, perm in [
        ("/${productKey}/${deviceName}/user/#", "pub"),
        ("/${productKey}/${deviceName}/user/+", "all"),
        ("/${productKey}/${deviceName}/user/#/x", "sub"),
        ("/other/${deviceName}/user/a", "pub"),
        ("/${productKey}/${deviceName}/user/a b", "pub"),
        ("/${productKey}/${deviceName}/user/a/b/c/d/e", "pub"),  # 8 levels
        ("/${productKey}/${deviceName}/user/a", "read"),
    ]:
        with pytest.raises(UsageError):
            validate_topic_class(template, perm)


def test_system_list_is_complete_enough() -> None:
    templates = {c.template for c in SYSTEM_TOPIC_CLASSES}
    assert "/broadcast/${productKey}/+" in templates
    assert "/ext/ntp/${productKey}/${deviceName}/request" in templates
    assert all(c.system for c in SYSTEM_TOPIC_CLASSES)


# -- through Rules and the registry ---------------------------------------------------


def test_rules_permissions_with_explanations(tutorial: Registry) -> None:
    rules = Rules(tutorial)
    tutorial.add_device(PK, B)
    a = DeviceRef(PK, "868488076506128")
    assert rules.may_publish(a, f"/{PK}/868488076506128/user/update", 1).allowed
    assert rules.may_subscribe(a, f"/{PK}/868488076506128/user/get").allowed
    refused = rules.may_subscribe(a, f"/{PK}/{B}/user/get")
    assert not refused.allowed
    exp = refused.explanation
    assert exp is not None and exp.rule == "topic_permission"
    assert f"/{PK}/{B}/user/get" in exp.message
    assert str(a) in exp.message
    assert f"/{PK}/868488076506128/user/get (sub)" in exp.details["custom_classes"]
    wildcard = rules.may_subscribe(a, f"/{PK}/+/user/get")
    assert not wildcard.allowed
    assert rules.may_publish(a, f"/{PK}/868488076506128/user/get", 0).explanation.rule == (
        "topic_permission"
    )


def test_rules_use_registry_classes_live(tutorial: Registry) -> None:
    rules = Rules(tutorial)
    a = DeviceRef(PK, "868488076506128")
    topic = f"/{PK}/868488076506128/user/cmd/reboot"
    assert not rules.may_subscribe(a, f"/{PK}/868488076506128/user/cmd/+").allowed
    tutorial.add_topic_class(PK, "/${productKey}/${deviceName}/user/cmd/+", "sub")
    assert rules.may_subscribe(a, f"/{PK}/868488076506128/user/cmd/+").allowed
    assert rules.may_subscribe(a, topic).allowed
    assert not rules.may_publish(a, topic, 0).allowed


def test_unknown_product_device_gets_only_system_topics(registry: Registry) -> None:
    rules = Rules(registry)
    ghost = DeviceRef("nopk", "ghost")
    assert not rules.may_publish(ghost, "/nopk/ghost/user/update", 0).allowed
    assert rules.may_publish(ghost, "/sys/nopk/ghost/thing/event/property/post", 0).allowed
