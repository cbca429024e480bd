"""Clients we did not write: mosquitto_pub / mosquitto_sub (Debian ``mosquitto-clients``)
log in to the emulator with Aliyun credentials."""

from __future__ import annotations

import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator

import pytest

from airlab.aliyun import direct_mqtt_credentials
from airlab.cloud import CloudEmulator
from airlab.cloud.fixtures import TUTORIAL_DEVICE_NAME as DN
from airlab.cloud.fixtures import TUTORIAL_DEVICE_SECRET as SECRET
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK
from tests.cloud.test_service import attach_recorder

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto_pub") is None or shutil.which("mosquitto_sub") is None,
    reason="mosquitto_pub/mosquitto_sub not installed (Debian package mosquitto-clients; "
    ".ci/run installs it when it runs as root)",
)

OTHER, OTHER_SECRET = "otherdevice01", "0123456789abcdef0123456789abcdef"
WAIT = 10.0


@pytest.fixture
def cloud() -> Iterator[CloudEmulator]:
    with CloudEmulator() as emulator:
        emulator.add_device(PK, OTHER, OTHER_SECRET)
        emulator.rec = attach_recorder(emulator)  # type: ignore[attr-defined]
        yield emulator


def login_args(cloud: CloudEmulator, dn: str, secret: str) -> list[str]:
    cred = direct_mqtt_credentials(PK, dn, secret)
    port = cloud.endpoints["mqtt"].rsplit(":", 1)[1]
    return [
        "-h", "127.0.0.1", "-p", port, "-V", "mqttv311", "-k", "120",
        "-i", cred.client_id, "-u", cred.username, "-P", cred.password,
    ]  # fmt: skip


def test_mosquitto_pub_publishes_with_a_good_login(cloud: CloudEmulator) -> None:
    topic = f"/{PK}/{OTHER}/user/update"
    done = subprocess.run(
        ["mosquitto_pub", *login_args(cloud, OTHER, OTHER_SECRET), "-t", topic,
         "-m", "from mosquitto", "-q", "1"],
        capture_output=True, text=True, timeout=WAIT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = cloud.rec.message(payload=b"from mosquitto")  # type: ignore[attr-defined]
    assert record.accepted and record.qos == 1 and record.topic == topic
    cloud.rec.event("disconnect")  # type: ignore[attr-defined]
    assert cloud.online_devices() == []


def test_mosquitto_sub_receives_a_console_publish(cloud: CloudEmulator) -> None:
    topic = f"/{PK}/{DN}/user/get"
    line_buffered = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []
    if not line_buffered:
        pytest.skip("stdbuf (coreutils) is needed to read mosquitto_sub's output as it comes")
    sub = subprocess.Popen(
        [*line_buffered, "mosquitto_sub", *login_args(cloud, DN, SECRET), "-t", topic, "-q", "1",
         "-C", "1", "-W", "20", "-d"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert sub.stdout is not None
        for line in sub.stdout:
            lines.put(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while "SUBACK" not in (line := lines.get(timeout=WAIT)):  # -d: debug lines
            pass
        assert cloud.publish(topic, "hello mosquitto", qos=1) == 1
        while (line := lines.get(timeout=WAIT)) != "hello mosquitto":
            assert line.startswith(("Client ", "Subscribed")), line  # -d debug lines
        assert sub.wait(WAIT) == 0
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
        reader.join(WAIT)


def test_mosquitto_pub_with_a_wrong_password_is_refused(cloud: CloudEmulator) -> None:
    args = login_args(cloud, DN, SECRET)
    args[args.index("-P") + 1] = "0" * 32
    done = subprocess.run(
        ["mosquitto_pub", *args, "-t", f"/{PK}/{DN}/user/update", "-m", "x"],
        capture_output=True, text=True, timeout=WAIT,
    )  # fmt: skip
    assert done.returncode != 0
    assert "refused" in done.stderr.lower() and "password" in done.stderr.lower()
    cloud.rec.event("refused", code=4)  # type: ignore[attr-defined]
    assert cloud.refusals().iloc[-1]["rule"] == "signature"
