"""The product switches on a real ``airlab cloud serve`` process (in-memory registry, so
only its admin API can change it): :class:`RemoteCloud` and ``airlab cloud product
--endpoints-file`` switch the host check and 动态注册, and the simulated module dialling
``AT+SSLMIPSTART`` through that process sees each change at its next login."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import airlab  # noqa: F401  (registers airsim://)
from airlab.cli import main
from airlab.cloud import RemoteCloud, load_endpoints
from airlab.cloud.fixtures import TUTORIAL_DEVICE_NAME, TUTORIAL_DEVICE_SECRET
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_SECRET as PS
from airlab.errors import CloudRejected
from airlab.session import ModemSession, recipes

ROOT = Path(__file__).resolve().parents[2]
CAPTURE_HOST = "a1qsHBbKtmc.iot-as-mqtt.cn-shanghai.aliyuncs.com"
DN = "869480000006363"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("serve")
    ep_file, out_file = folder / "ep.json", folder / "serve.out"
    with open(out_file, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airlab", "cloud", "serve", "--endpoints-file", str(ep_file),
             "--fixture", "tutorial"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not ep_file.exists():
            assert proc.poll() is None, out_file.read_text()
            assert time.monotonic() < deadline, out_file.read_text()
            time.sleep(0.02)  # a file another process writes: polled with a deadline
        yield ep_file
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def admin_log(endpoints: dict) -> list[dict]:
    admin = endpoints["admin"]
    request = urllib.request.Request(
        f"{admin['url']}/log?table=connection&limit=1",
        headers={"Authorization": f"Bearer {admin['token']}"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())["rows"]


def test_remote_switches_reach_the_module_at_its_next_login(
    served: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = RemoteCloud(load_endpoints(served))
    assert remote.endpoints["db"] is None  # in memory: the admin API is the only way in
    try:
        with ModemSession(f"airsim://serve?profile=instant&cloud={served}", guards=False) as s:
            recipes.attach(s)
            # 动态注册 off through the admin API: the module reads JSON code 460
            remote.set_dynamic_registration(PK, False)
            with pytest.raises(CloudRejected) as refused:
                recipes.register_device(s, product_key=PK, device_name=DN, product_secret=PS)
            assert refused.value.code == 460
            remote.set_dynamic_registration(PK, True)
            # registration needs a pre-registered device: 5001 until the device exists
            with pytest.raises(CloudRejected) as refused:
                recipes.register_device(s, product_key=PK, device_name=DN, product_secret=PS)
            assert refused.value.code == 5001

            # the tutorial's device, the capture's foreign host: accepted while off
            login = dict(
                product_key=PK,
                device_name=TUTORIAL_DEVICE_NAME,
                device_secret=TUTORIAL_DEVICE_SECRET,
                host=CAPTURE_HOST,
            )
            recipes.http_auth_then_mqtt(s, **login)
            recipes.disconnect(s)

            # switched on by the CLI through the same service
            code = main(["cloud", "product", "--endpoints-file", str(served),
                         "--product-key", PK, "--host-check", "on"])  # fmt: skip
            out, _ = capsys.readouterr()
            assert code == 0 and json.loads(out)["host_check"] == "on"
            start, mark = len(s.transcript.received()), s.mark()
            with pytest.raises(CloudRejected):
                recipes.http_auth_then_mqtt(s, **login)
            s.wait_for_urc("CLOSED", 10, since=mark)  # the server closes after the refusal
            shown = s.transcript.received()[start:]
            assert shown.endswith(b"AT+MCONNECT=1,120\r\n\r\nOK\r\n\r\nERROR\r\n\r\nCLOSED\r\n")
            rows = admin_log(remote.endpoints)  # no shared file: the log comes through the API
            assert rows[-1]["explanation"]["rule"] == "mqtt_host"
            assert rows[-1]["code"] == 5
            assert CAPTURE_HOST in rows[-1]["explanation"]["message"]

            remote.set_host_check(PK, False)
            recipes.http_auth_then_mqtt(s, **login)
    finally:
        remote.close()
