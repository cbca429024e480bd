"""Finding the running emulator: endpoints file, stale detection, the admin console
routes, RemoteCloud, cloud_for_lesson."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlab.cloud import CloudEmulator, DeviceRef, OnlineDevice, RemoteCloud, discovery
from airlab.cloud.discovery import (
    ENDPOINTS_ENV,
    EndpointsError,
    cloud_for_lesson,
    default_endpoints_path,
    load_endpoints,
)
from airlab.cloud.fixtures import TUTORIAL_DEVICE_NAME as DN
from airlab.cloud.fixtures import TUTORIAL_DEVICE_SECRET as SECRET
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK
from airlab.errors import UsageError
from tests.cloud.test_service import CONNACK_TEXT, attach_recorder, device


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[CloudEmulator, Path]]:
    with CloudEmulator(tmp_path / "lab.db") as cloud:
        cloud.rec = attach_recorder(cloud)  # type: ignore[attr-defined]
        yield cloud, cloud.write_endpoints(tmp_path / "ep.json")


@pytest.fixture
def clients():
    made = []
    yield made
    for c in made:
        c.stop()


def test_default_path_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv(ENDPOINTS_ENV, str(tmp_path / "x.json"))
    assert default_endpoints_path() == tmp_path / "x.json"
    monkeypatch.delenv(ENDPOINTS_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_endpoints_path() == tmp_path / "cache" / "airlab" / "cloud-endpoints.json"


def _reason(path: Path) -> str:
    with pytest.raises(EndpointsError) as err:
        load_endpoints(path)
    assert err.value.option == "--endpoints-file"
    return err.value.reason


def test_missing_invalid_and_stale_files_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "ep.json"
    assert _reason(path) == "missing"
    path.write_text("{not json")
    assert _reason(path) == "invalid"
    path.write_text(json.dumps({"http": "http://127.0.0.1:1"}))
    assert _reason(path) == "invalid"
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    good = {
        "http": f"http://127.0.0.1:{closed}",
        "https": f"https://127.0.0.1:{closed}",
        "mqtt": f"127.0.0.1:{closed}",
        "mqtts": f"127.0.0.1:{closed}",
        "admin": {"url": f"http://127.0.0.1:{closed}/admin", "token": "t"},
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
    }
    path.write_text(json.dumps(good))
    assert _reason(path) == "stale"  # nothing answers
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    path.write_text(json.dumps(dict(good, pid=int(gone.stdout))))
    with pytest.raises(EndpointsError, match="is gone"):
        load_endpoints(path)
    assert load_endpoints(path, check=False)["pid"] == int(gone.stdout)


def test_a_live_service_is_found(served: tuple[CloudEmulator, Path]) -> None:
    cloud, path = served
    data = load_endpoints(path)
    assert data["mqtt"] == cloud.endpoints["mqtt"] and data["endpoints_file"] == str(path)


def _admin(path: Path, route: str, *, token: str | None, method: str = "GET",
           body: bytes | None = None) -> tuple[int, dict]:  # fmt: skip
    ep = json.loads(path.read_text())
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(
        ep["admin"]["url"] + route, data=body, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_console_admin_routes(served: tuple[CloudEmulator, Path]) -> None:
    _, path = served
    token = json.loads(path.read_text())["admin"]["token"]
    assert _admin(path, "/online", token=None)[0] == 401
    assert _admin(path, "/online", token="wrong")[0] == 401
    assert _admin(path, "/online", token=token) == (
        200, {"code": 200, "message": "success", "devices": []},
    )  # fmt: skip
    assert _admin(path, "/reset", token=token)[0] == 405
    assert _admin(path, "/reset", token=token, method="POST", body=b"[]")[0] == 400
    unknown = json.dumps({"product_key": PK, "device_name": "nope"}).encode()
    status, answer = _admin(path, "/reset", token=token, method="POST", body=unknown)
    assert status == 404 and "no device" in answer["message"]
    status, answer = _admin(path, "/status", token=token)
    assert status == 200 and answer["pid"] == os.getpid() and answer["online"] == 0
    assert _admin(path, "/flush", token=token, method="POST")[1]["flushed"] is True
    status, answer = _admin(path, "/log?table=connection&limit=2", token=token)
    assert status == 200 and len(answer["rows"]) == 2
    assert all(row["event"] == "admin" and not row["accepted"] for row in answer["rows"])
    assert _admin(path, "/log?table=nope", token=token)[0] == 400


def test_remote_cloud_console(served: tuple[CloudEmulator, Path], clients: list) -> None:
    cloud, path = served
    remote = RemoteCloud(load_endpoints(path))
    try:
        assert remote.certificate == cloud.certificate
        secret = remote.add_device(PK, "remote01")  # through the shared registry file
        c = device(clients, cloud, "remote01", secret)
        assert c.connect() == "Success"
        cloud.rec.event("connect", code=0)
        assert remote.online_devices() == [OnlineDevice(PK, "remote01", c.c._client_id.decode())]
        assert c.subscribe(f"/{PK}/remote01/user/get") == [1]
        assert remote.publish(f"/{PK}/remote01/user/get", b"\x00bin", 1) == 1
        assert c.get().payload == b"\x00bin"
        assert cloud.registry.get_device(PK, "remote01").activated
        remote.reset_registration(PK, "remote01")
        assert not cloud.registry.get_device(PK, "remote01").activated
        with pytest.raises(UsageError):
            remote.reset_registration(PK, "nope")
        bad = device(clients, cloud, DN, "0" * 32)
        assert bad.connect() == CONNACK_TEXT[4]
        cloud.rec.event("refused", code=4)
        assert remote.refusals(DeviceRef(PK, DN)).iloc[-1]["rule"] == "signature"
        assert "sign_content" in remote.explain_last_refusal()
        log = remote.message_log(DeviceRef(PK, "remote01"))
        assert list(log["payload"]) == [b"\x00bin"]
    finally:
        remote.close()


def test_remote_cloud_without_a_shared_registry(tmp_path: Path) -> None:
    with CloudEmulator() as cloud:
        remote = RemoteCloud(load_endpoints(cloud.write_endpoints(tmp_path / "ep.json")))
        with pytest.raises(UsageError) as err:
            _ = remote.registry  # in memory: no file to read ...
        assert err.value.field == "db"
        secret = remote.add_device(PK, "dev0001")  # ... so the console goes through the API
        assert cloud.registry.get_device(PK, "dev0001").device_secret == secret
        assert remote.online_devices() == []
    with pytest.raises(EndpointsError):
        remote.online_devices()  # the service is gone


def test_cloud_for_lesson(
    served: tuple[CloudEmulator, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cloud, path = served
    monkeypatch.setenv(ENDPOINTS_ENV, str(path))
    remote = cloud_for_lesson()
    assert isinstance(remote, RemoteCloud) and remote.endpoints["mqtt"] == cloud.endpoints["mqtt"]
    remote.close()
    monkeypatch.setenv(ENDPOINTS_ENV, str(tmp_path / "none.json"))
    try:
        local = cloud_for_lesson()
        assert isinstance(local, CloudEmulator) and local.running
        assert cloud_for_lesson() is local  # kept for the kernel's lifetime
        assert local.registry.get_device(PK, DN).device_secret == SECRET
    finally:
        discovery._stop_lesson_cloud()
