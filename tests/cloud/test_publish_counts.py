"""``airlab cloud publish`` and the admin publish route say what a console publish did:
delivered to N connected clients and, when the broker says, queued for M offline
clean-session-0 sessions (a QoS1 message for a device that is offline keeps for it).

The count comes from the broker (CLI -> POST /admin/publish -> CloudEmulator.publish_counts
-> EmulatedBroker.publish -> console_publish). The route, RemoteCloud and the CLI carry
``PublishCounts``; the broker being rewritten must return it (today it returns only the
delivered count, so the end-to-end test is an expected failure)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from airlab.aliyun import direct_mqtt_credentials
from airlab.cli import main
from airlab.cloud import CloudEmulator
from airlab.cloud.discovery import RemoteCloud, load_endpoints
from airlab.cloud.fixtures import TUTORIAL_DEVICE_NAME as DN
from airlab.cloud.fixtures import TUTORIAL_DEVICE_SECRET as DS
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK
from airlab.cloud.model import PublishCounts
from tests.cloud.broker_helpers import Client

GET = f"/{PK}/{DN}/user/get"


def publish_cli(capsys: pytest.CaptureFixture[str], endpoints: Path, qos: str = "1") -> str:
    code = main(["cloud", "publish", "--endpoints-file", str(endpoints), "--topic", GET,
                 "--payload", "hi", "--qos", qos])  # fmt: skip
    assert code == 0
    return capsys.readouterr().out.strip()


def test_publish_counts_forms() -> None:
    assert PublishCounts.of(3) == PublishCounts(3, None)
    assert PublishCounts.of((0, 2)) == PublishCounts(0, 2)
    assert PublishCounts.of(PublishCounts(1, 0)) == PublishCounts(1, 0)
    with pytest.raises(TypeError):
        PublishCounts.of("3")


def test_route_remote_and_cli_carry_the_queued_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with CloudEmulator(tmp_path / "lab.db", fixture="tutorial") as cloud:
        endpoints = cloud.write_endpoints(tmp_path / "endpoints.json")
        # nobody subscribed: nothing delivered, nothing queued
        assert publish_cli(capsys, endpoints) == (
            f"published 2 bytes to {GET} (QoS 1): delivered to 0 clients"
        )
        # a session queued the message: the route, RemoteCloud and the CLI carry it
        monkeypatch.setattr(cloud.broker, "publish_counts", lambda t, p, q: PublishCounts(0, 1))
        assert publish_cli(capsys, endpoints) == (
            f"published 2 bytes to {GET} (QoS 1): delivered to 0 clients, "
            "queued for 1 offline session"
        )
        remote = RemoteCloud(load_endpoints(str(endpoints)))
        try:
            assert remote.publish_counts(GET, "x", 1) == PublishCounts(0, 1)
            assert remote.publish(GET, "x", 1) == 0
        finally:
            remote.close()
        monkeypatch.setattr(cloud.broker, "publish_counts", lambda t, p, q: PublishCounts(2, 3))
        assert cloud.publish(GET, "x", 1) == 2  # the Python API still answers an int
        assert publish_cli(capsys, endpoints).endswith(
            "delivered to 2 clients, queued for 3 offline sessions"
        )


def test_a_message_queued_for_an_offline_session_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with CloudEmulator(tmp_path / "lab.db", fixture="tutorial") as cloud:
        endpoints = cloud.write_endpoints(tmp_path / "endpoints.json")
        cred = direct_mqtt_credentials(PK, DN, DS)
        port = int(cloud.endpoints["mqtt"].rsplit(":", 1)[1])
        device = Client(port, client_id=cred.client_id, username=cred.username,
                        password=cred.password, keepalive=120, clean=False)  # fmt: skip
        assert device.connect() == "Success"
        assert device.subscribe((GET, 1)) == [1]
        device.stop()  # offline; its clean-session-0 session keeps the subscription
        deadline = time.monotonic() + 10
        while cloud.online_devices() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert publish_cli(capsys, endpoints) == (
            f"published 2 bytes to {GET} (QoS 1): delivered to 0 clients, "
            "queued for 1 offline session"
        )
