"""The service's memo of topic permissions follows the registry: a write through the
same registry object applies at the next message, a write from another connection
(another process) once ``permission_ttl`` has passed, and the log lines the broker
writes all the time never drop the memo."""

from __future__ import annotations

from pathlib import Path

from airlab.cloud.model import DeviceRef, MessageRecord
from airlab.cloud.registry import Registry
from airlab.cloud.service_support import ServiceRules

PK = "pk1"
DEV = DeviceRef(PK, "d1")
CMD = f"/{PK}/d1/user/cmd"
TEMPLATE = "/${productKey}/${deviceName}/user/cmd"


class CountingRules(ServiceRules):
    """Counts how often a permission is really computed (not taken from the memo)."""

    computed = 0

    def _topic(self, device, topic, action, qos):  # type: ignore[no-untyped-def]
        self.computed += 1
        return super()._topic(device, topic, action, qos)


def test_a_write_through_the_same_registry_applies_at_once() -> None:
    reg = Registry()
    reg.add_product(PK)
    rules = CountingRules(reg, permission_ttl=3600)
    assert not rules.may_publish(DEV, CMD, 1).allowed
    assert not rules.may_publish(DEV, CMD, 1).allowed
    assert rules.computed == 1  # the second answer came from the memo
    reg.add_topic_class(PK, TEMPLATE, "pub")
    assert rules.may_publish(DEV, CMD, 1).allowed


def test_log_lines_keep_the_memo() -> None:
    reg = Registry()
    reg.add_product(PK)
    rules = CountingRules(reg, permission_ttl=3600)
    rules.may_publish(DEV, CMD, 1)
    reg.log_messages([MessageRecord(1.0, "up", CMD, 1, b"x", False, device=DEV)] * 5)
    assert reg.flush()
    rules.may_publish(DEV, CMD, 1)
    assert rules.computed == 1


def test_a_write_from_another_process_applies_after_the_ttl(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    with Registry(path) as reg, Registry(path) as other:
        reg.add_product(PK)
        slow = CountingRules(reg, permission_ttl=3600)
        quick = CountingRules(reg, permission_ttl=0)
        assert not slow.may_publish(DEV, CMD, 1).allowed
        assert not quick.may_publish(DEV, CMD, 1).allowed
        other.add_topic_class(PK, TEMPLATE, "pub")  # another connection: the revision moves
        assert quick.may_publish(DEV, CMD, 1).allowed
        assert not slow.may_publish(DEV, CMD, 1).allowed  # not looked at again yet
        slow.forget_permissions()
        assert slow.may_publish(DEV, CMD, 1).allowed


def test_log_lines_from_any_connection_keep_the_memo(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    with Registry(path) as reg, Registry(path) as other:
        reg.add_product(PK)
        rules = CountingRules(reg, permission_ttl=0)  # looks at the revision every time
        rules.may_publish(DEV, CMD, 1)
        line = MessageRecord(1.0, "up", CMD, 1, b"x", False, device=DEV)
        reg.log_messages([line] * 3)  # the broker's batches: committed on their own connection
        other.log_messages([line] * 3)  # another process's broker
        other.log_message(line)
        assert other.flush()
        rules.may_publish(DEV, CMD, 1)
        assert rules.computed == 1
        assert len(reg.message_log()) == 7


def test_logins_marking_devices_activated_keep_the_memo() -> None:
    reg = Registry()
    reg.add_product(PK)
    device = reg.add_device(PK, "dev1")
    rules = CountingRules(reg, permission_ttl=3600)
    rules.may_publish(DEV, CMD, 1)
    for _ in range(3):
        reg.mark_activated(device)  # every accepted CONNECT does this
    rules.may_publish(DEV, CMD, 1)
    assert rules.computed == 1
