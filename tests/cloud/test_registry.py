"""Registry: persistence, thread safety, cross-process visibility, batched logging,
DataFrames."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from airlab.aliyun import TopicPermission
from airlab.cloud.fixtures import FIXTURES, load_tutorial
from airlab.cloud.model import ConnectionEvent, DeviceRef, Explanation, MessageRecord
from airlab.cloud.registry import Registry
from airlab.errors import UsageError

PK, DN = "k1hipglLdjU", "868488076506128"
REF = DeviceRef(PK, DN)
REPO = Path(__file__).resolve().parents[2]


def test_tutorial_fixture(tutorial: Registry) -> None:
    product = tutorial.get_product(PK)
    assert product.product_secret == "8LQwOYSZMwp3DFBd" and product.dynamic_registration
    assert product.region == "cn-shanghai"
    device = tutorial.get_device(PK, DN)
    assert device.device_secret == "fef32adf6dad46c2c7cbf335d3a7b021"
    assert device.enabled and not device.activated
    assert [(c.template, c.permission) for c in tutorial.topic_classes(PK)] == [
        ("/${productKey}/${deviceName}/user/update", TopicPermission.PUB),
        ("/${productKey}/${deviceName}/user/update/error", TopicPermission.PUB),
        ("/${productKey}/${deviceName}/user/get", TopicPermission.SUB),
    ]
    assert FIXTURES["tutorial"] is load_tutorial
    assert load_tutorial(tutorial) == device  # idempotent
    assert len(tutorial.devices()) == 1


def test_generated_values(registry: Registry) -> None:
    product = registry.add_product("pk1")
    assert len(product.product_secret) == 16 and product.product_secret.isalnum()
    device = registry.add_device("pk1", "dev1")
    assert len(device.device_secret) == 32
    int(device.device_secret, 16)
    assert len(device.iot_id) == 26 and device.iot_id.endswith("pk10")
    token = registry.issue_token(device.ref, now=100.0)
    assert token.iot_id == device.iot_id and token.expires == 100.0 + 7 * 24 * 3600
    assert len(token.iot_token) == 32 and token.iot_token == token.iot_token.lower()
    assert registry.find_token(token.iot_id, token.iot_token) == token
    assert registry.find_token(token.iot_id, "0" * 32) is None
    assert registry.device_by_iot_id(device.iot_id) == device
    grant = registry.issue_device_token(device.ref, "client26")
    assert registry.find_device_token(device.ref, "client26") == grant
    assert registry.find_device_token(device.ref, "other") is None


def test_errors_are_clear(registry: Registry) -> None:
    registry.add_product("pk1")
    registry.add_device("pk1", "dev1")
    with pytest.raises(UsageError, match="already exists"):
        registry.add_device("pk1", "dev1")
    with pytest.raises(UsageError, match="already exists"):
        registry.add_product("pk1")
    with pytest.raises(UsageError, match="no product"):
        registry.add_device("nopk", "dev1")
    for bad in ("a&b", "a|b", "", "x" * 33, "a/b", "a+b"):
        with pytest.raises(UsageError):
            registry.add_device("pk1", bad)
    with pytest.raises(UsageError):
        registry.set_device_enabled(DeviceRef("pk1", "ghost"), False)
    with pytest.raises(UsageError):
        registry.add_topic_class("pk1", "/${productKey}/${deviceName}/user/#", "pub")


def test_device_state_changes(tutorial: Registry) -> None:
    tutorial.set_device_enabled(REF, False)
    assert not tutorial.get_device(REF).enabled
    tutorial.mark_activated((PK, DN))
    assert tutorial.get_device(PK, DN).activated
    tutorial.reset_registration(tutorial.get_device(REF))
    assert not tutorial.get_device(REF).activated
    tutorial.set_dynamic_registration(PK, False)
    assert not tutorial.get_product(PK).dynamic_registration


def test_restart_survives(db_path: Path) -> None:
    reg = Registry(db_path)
    load_tutorial(reg)
    reg.add_topic_class(PK, "/${productKey}/${deviceName}/user/cmd", "all")
    token = reg.issue_token(REF)
    reg.mark_activated(REF)
    reg.log_connection(ConnectionEvent(5.0, "mqtt", "connect", True, REF, DN, "1.1.1.1:1", 0))
    reg.log_message(MessageRecord(6.0, "up", f"/{PK}/{DN}/user/update", 1, b"\x00\xff", True))
    reg.close()
    reg.close()  # idempotent
    again = Registry(db_path)
    try:
        assert again.get_device(REF).activated
        assert again.find_token(token.iot_id, token.iot_token) == token
        assert len(again.topic_classes(PK)) == 4
        (event,) = again.connection_log()
        assert event.remote == "1.1.1.1:1" and event.device == REF and event.code == 0
        (message,) = again.message_log()
        assert message.payload == b"\x00\xff" and message.device is None
    finally:
        again.close()


def test_concurrent_writes_from_threads(registry: Registry) -> None:
    registry.add_product("pk1")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                dev = registry.add_device("pk1", f"dev{n}x{i}")
                registry.issue_token(dev.ref)
                registry.log_message(MessageRecord(float(i), "up", "/t", 0, b"x", True, dev.ref))
                registry.get_device(dev.ref)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(registry.devices("pk1")) == 160
    assert registry.flush()
    assert len(registry.message_log()) == 160


def test_other_process_sees_and_writes(tutorial: Registry, db_path: Path) -> None:
    code = (
        "import sys; from airlab.cloud.registry import Registry\n"
        "r = Registry(sys.argv[1])\n"
        "r.add_device('k1hipglLdjU', 'from-cli-01', '0123456789abcdef0123456789abcdef')\n"
        "print(r.get_device('k1hipglLdjU', '868488076506128').device_secret)\n"
        "r.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(db_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=True,
    )
    assert out.stdout.strip() == "fef32adf6dad46c2c7cbf335d3a7b021"
    # the running registry sees the new device at once (no cache)
    device = tutorial.get_device(PK, "from-cli-01")
    assert device is not None and device.device_secret.startswith("0123")


def test_flush_semantics(registry: Registry) -> None:
    assert registry.flush()  # nothing queued
    for i in range(1000):
        registry.log_message(MessageRecord(float(i), "down", "/t", i % 2, b"%d" % i, True))
    assert registry.flush(timeout=10)
    count = registry._query("SELECT count(*) FROM message_log")[0][0]
    assert count == 1000  # committed by the writer, visible without another flush
    last = registry.message_log(limit=3)
    assert [m.payload for m in last] == [b"997", b"998", b"999"]


def test_connection_log_filter_and_explanation(tutorial: Registry) -> None:
    exp = Explanation("signature", "bad", {"expected": "ab", "secret": "fe**21"})
    tutorial.log_connection(ConnectionEvent(1.0, "mqtt", "refused", False, REF, DN, code=4,
                                            reason="bad", explanation=exp))  # fmt: skip
    tutorial.log_connection(ConnectionEvent(2.0, "http", "auth", True, None, None, code=200))
    assert len(tutorial.connection_log()) == 2
    (mine,) = tutorial.connection_log(REF)
    assert mine.explanation == exp
    assert tutorial.connection_log(limit=1)[0].time == 2.0


def test_frames_have_proper_dtypes(tutorial: Registry) -> None:
    exp = Explanation("keepalive", "too short", {})
    tutorial.log_connection(
        ConnectionEvent(1_700_000_000.5, "mqtt", "refused", False, REF, DN, code=2,
                        explanation=exp)
    )  # fmt: skip
    tutorial.log_connection(ConnectionEvent(1_700_000_001.0, "http", "auth", True, code=200))
    tutorial.log_message(MessageRecord(1_700_000_002.0, "up", "/a", 1, b"Hello", True, REF, DN))
    tutorial.log_message(MessageRecord(1_700_000_003.0, "down", "/b", 0, b"\xff", False))
    frame = tutorial.connection_frame()
    assert len(frame) == 2
    assert pd.api.types.is_datetime64_any_dtype(frame["time"])
    assert frame["time"].iloc[0] == pd.Timestamp("2023-11-14T22:13:20.5", tz="UTC")
    assert isinstance(frame["event"].dtype, pd.CategoricalDtype)
    assert isinstance(frame["protocol"].dtype, pd.CategoricalDtype)
    assert pd.api.types.is_string_dtype(frame["reason"])
    assert frame["device"].iloc[0] == f"{PK}/{DN}" and pd.isna(frame["device"].iloc[1])
    assert json.loads(frame["explanation"].iloc[0])["rule"] == "keepalive"
    assert frame["accepted"].dtype == bool
    messages = tutorial.message_frame()
    assert pd.api.types.is_datetime64_any_dtype(messages["time"])
    assert isinstance(messages["direction"].dtype, pd.CategoricalDtype)
    assert pd.api.types.is_string_dtype(messages["topic"])
    assert pd.api.types.is_string_dtype(messages["text"])
    assert list(messages["text"]) == ["Hello", "\ufffd"]
    assert list(messages["payload"]) == [b"Hello", b"\xff"]
    assert list(messages["size"]) == [5, 1]
    assert messages["qos"].dtype == "int64"
    empty = Registry()
    try:
        assert len(empty.message_frame()) == 0 and len(empty.connection_frame()) == 0
    finally:
        empty.close()


def test_memory_registry_works_across_threads() -> None:
    reg = Registry(":memory:")
    reg.add_product("pk1")
    found: list[object] = []
    thread = threading.Thread(target=lambda: found.append(reg.get_product("pk1")))
    thread.start()
    thread.join()
    assert found[0] is not None
    reg.log_connection(ConnectionEvent(1.0, "mqtt", "connect", True))
    reg.close()
    reg.log_connection(ConnectionEvent(2.0, "mqtt", "connect", True))  # dropped after close
    with pytest.raises(UsageError, match="closed"):
        reg.get_product("pk1")


@pytest.mark.parametrize(
    "name",
    [
        "airlab.cloud.registry",
        "airlab.cloud.store",
        "airlab.cloud.store.records",
        "airlab.cloud.store.base",
        "airlab.cloud.store.products",
        "airlab.cloud.store.tokens",
        "airlab.cloud.store.seats",
        "airlab.cloud.store.writer",
        "airlab.cloud.store.reader",
        "airlab.cloud.auth",
        "airlab.cloud.fixtures",
        "airlab.cloud.tls",
        "airlab.cloud.http_api",
    ],
)
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_registered_column_added_to_an_older_registry(tmp_path) -> None:
    """A registry file from before the ``registered`` column (动态注册状态) opens, gets the
    column (not registered), and registration hands out the console's secret first."""
    import sqlite3

    path = tmp_path / "old.db"
    reg = Registry(str(path))
    reg.add_product("k1hipglLdjU", dynamic_registration=True)
    reg.add_device("k1hipglLdjU", "dev1", "b" * 32)
    reg.close()
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE devices DROP COLUMN registered")
    conn.close()
    reg = Registry(str(path))
    try:
        assert reg.get_device("k1hipglLdjU", "dev1").registered is False
        assert reg.registration_secret(DeviceRef("k1hipglLdjU", "dev1")) == "b" * 32
        assert reg.get_device("k1hipglLdjU", "dev1").registered is True
        assert reg.add_device("k1hipglLdjU", "dev2").registered is False
    finally:
        reg.close()
