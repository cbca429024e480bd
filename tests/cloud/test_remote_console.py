"""``RemoteCloud`` over the network (no registry file on this machine): every console
operation a lesson uses goes through the admin API and answers what the emulator's own
console answers — the same DataFrames, column for column and dtype for dtype."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import airlab
from airlab.cloud.discovery import RemoteCloud, load_endpoints
from airlab.cloud.model import DeviceRef
from airlab.cloud.service import CloudEmulator
from airlab.errors import UsageError
from airlab.lesson import open_lesson
from airlab.session import recipes

PK = "k1hipglLdjU"


@pytest.fixture
def history(tmp_path: Path) -> Iterator[tuple[CloudEmulator, RemoteCloud, DeviceRef]]:
    """An emulator with a registry file, a lesson's history in it (a refused login, a
    login, an uplink, a downlink), and a RemoteCloud whose endpoints name no ``db``."""
    with CloudEmulator(db=tmp_path / "lab.db", fixture="tutorial") as cloud:
        ep_file = cloud.write_endpoints(tmp_path / "ep.json")
        with open_lesson(cloud=str(ep_file)) as lab:
            ref = DeviceRef(*lab.identity.ref)
            recipes.attach(lab.session)
            with pytest.raises(airlab.CloudRejected):
                recipes.direct_mqtt(lab.session, **dict(lab.identity.device(),
                                                        device_secret="0" * 32))  # fmt: skip
            recipes.direct_mqtt(lab.session, **lab.identity.device())
            recipes.subscribe(lab.session, lab.identity.topic("user/get"))
            recipes.publish(lab.session, lab.identity.topic("user/update"), "up 1", qos=1)
            cloud.publish(lab.identity.topic("user/get"), b"\x00down")
            recipes.disconnect(lab.session)
        # the module's OK to AT+MDISCONNECT can come before the broker has read the
        # DISCONNECT: the history is complete once the broker has logged it
        deadline = time.monotonic() + 10
        while "disconnect" not in set(cloud.connection_log(ref)["event"]):
            assert time.monotonic() < deadline, "the broker never logged the disconnect"
            time.sleep(0.02)  # another thread logs it: polled, bounded
        laptop = tmp_path / "laptop.json"
        endpoints = json.loads(Path(ep_file).read_text())
        del endpoints["db"]
        laptop.write_text(json.dumps(endpoints))
        remote = RemoteCloud(load_endpoints(laptop))
        try:
            assert not remote.local
            yield cloud, remote, ref
        finally:
            remote.close()


def test_logs_and_refusals_are_the_same_frames(
    history: tuple[CloudEmulator, RemoteCloud, DeviceRef],
) -> None:
    cloud, remote, ref = history
    for device in (None, ref, str(ref), (ref.product_key, ref.device_name)):
        for name in ("connection_log", "message_log", "refusals"):
            local, over = getattr(cloud, name)(device), getattr(remote, name)(device)
            pd.testing.assert_frame_equal(over, local, obj=f"{name}({device!r})")
            assert not local.empty, name
    assert remote.explain_last_refusal(ref) == cloud.explain_last_refusal(ref)
    assert "CONNACK 4" in remote.explain_last_refusal(ref)
    assert remote.message_log(ref).payload.tolist() == [b"up 1", b"\x00down"]
    pd.testing.assert_frame_equal(remote.devices(PK), cloud.devices(PK))
    pd.testing.assert_frame_equal(remote.devices(), cloud.devices())
    empty = DeviceRef(PK, "nobody01")
    for name in ("connection_log", "message_log", "refusals"):
        pd.testing.assert_frame_equal(getattr(remote, name)(empty), getattr(cloud, name)(empty))


def test_the_log_comes_in_pages(history: tuple[CloudEmulator, RemoteCloud, DeviceRef]) -> None:
    cloud, remote, _ = history
    rows, after, pages = [], 0, 0
    while True:
        answer = remote._call("GET", "log", query={"table": "connection", "after": after,
                                                   "limit": 2})  # fmt: skip
        rows += answer["rows"]
        pages += 1
        if not answer["more"]:
            break
        after = answer["next_after"]
    assert pages > 2 and len(rows) == len(cloud.connection_log())
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    for bad in ("after=-1", "limit=x", "device=a%2Fb&product_key=k1hipglLdjU",
                "product_key=a%27%3B--", "table=devices&after=0"):  # fmt: skip
        with pytest.raises(UsageError):
            remote._call("GET", f"log?{bad}")


def test_products_topic_classes_and_devices_over_the_network(
    history: tuple[CloudEmulator, RemoteCloud, DeviceRef],
) -> None:
    cloud, remote, _ = history
    product = remote.add_product("a1Remote01", dynamic_registration=True)
    assert product == cloud.registry.get_product("a1Remote01")
    assert remote.product_settings("a1Remote01")["dynamic_registration"] is True
    added = remote.add_topic_class("a1Remote01", "/${productKey}/${deviceName}/user/cmd", "sub")
    assert remote.topic_classes("a1Remote01") == cloud.topic_classes("a1Remote01")
    assert added in remote.topic_classes("a1Remote01")
    secret = remote.add_device("a1Remote01", "remote-dev1")
    assert cloud.registry.get_device("a1Remote01", "remote-dev1").device_secret == secret
    fresh = remote.new_device("a1Remote01", activated=True)
    assert fresh == cloud.registry.get_device(fresh.ref)
    assert fresh.activated and len(fresh.device_secret) == 32
    with pytest.raises(UsageError, match="already exists"):
        remote.add_device("a1Remote01", "remote-dev1")
    with pytest.raises(UsageError, match="DeviceName"):
        remote.add_device("a1Remote01", "my device!")
    with pytest.raises(UsageError, match="no product"):
        remote.new_device("a1Nothing")
    with pytest.raises(UsageError):
        remote.topic_classes("a1Nothing")
