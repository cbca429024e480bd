"""Issue 8 item 2: the log explains a refused login without handing out a password.

The attack: send a wrong password (CONNACK 4), read the "expected" signature from
``airlab cloud log`` / its CSV / ``/admin/log`` / ``explain_last_refusal()``, and log
in with it (no timestamp check, so it would work forever). Same over HTTPS for an
iotToken. Every hex string any of those outputs shows is tried as a password here.
"""

from __future__ import annotations

import http.client
import json
import re
from pathlib import Path

import pytest

from airlab.aliyun import direct_mqtt_credentials, http_auth_request
from airlab.cli import main
from airlab.cloud import CloudEmulator
from airlab.cloud.fixtures import TUTORIAL_DEVICE_NAME as DN
from airlab.cloud.fixtures import TUTORIAL_DEVICE_SECRET as DS
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK
from tests.cloud.broker_helpers import Client

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
HEXES = re.compile(r"[0-9A-Fa-f]{16,}")


@pytest.fixture
def cloud(tmp_path: Path):
    with CloudEmulator(tmp_path / "lab.db", fixture="tutorial") as emulator:
        yield emulator


def mqtt_login(cloud: CloudEmulator, password: str, client_id: str | None = None) -> str:
    cred = direct_mqtt_credentials(PK, DN, DS)
    port = int(cloud.endpoints["mqtt"].rsplit(":", 1)[1])
    c = Client(port, client_id=client_id or cred.client_id, username=cred.username,
               password=password, keepalive=120)  # fmt: skip
    try:
        return str(c.connect())
    finally:
        c.stop()


def https_post(cloud: CloudEmulator, path: str, body: str) -> dict:
    port = int(cloud.endpoints["https"].rsplit(":", 1)[1])
    conn = http.client.HTTPSConnection(
        "127.0.0.1", port, timeout=10, context=cloud.ssl_client_context()
    )
    try:
        conn.request("POST", path, body=body.encode(), headers=FORM)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def everything_the_log_shows(cloud: CloudEmulator, capsys: pytest.CaptureFixture[str]) -> str:
    cloud.flush()
    texts = [cloud.explain_last_refusal(), cloud.refusals().to_json(date_format="iso")]
    for argv in (["cloud", "log", "--db", cloud.db], ["cloud", "log", "--db",
                 cloud.db, "--csv"]):  # fmt: skip
        assert main([str(a) for a in argv]) == 0
        texts.append(capsys.readouterr().out)
    admin = cloud.endpoints["admin"]
    port = int(admin["url"].split(":")[2].split("/")[0])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for table in ("connection", "message"):
        conn.request("GET", f"/admin/log?table={table}",
                     headers={"Authorization": f"Bearer {admin['token']}"})  # fmt: skip
        reply = conn.getresponse()
        assert reply.status == 200
        texts.append(reply.read().decode())
    conn.close()
    return "\n".join(texts)


def test_a_refused_mqtt_login_leaves_no_usable_password(cloud, capsys) -> None:
    good = direct_mqtt_credentials(PK, DN, DS).password
    assert mqtt_login(cloud, "0" * 32) == "Bad user name or password"
    # a password signed for another client id: refused here, valid for that client id
    other = direct_mqtt_credentials(PK, DN, DS, client_id="another-client").password
    assert mqtt_login(cloud, other) == "Bad user name or password"
    shown = everything_the_log_shows(cloud, capsys)
    assert "differs" in shown and "0f65…" in shown  # still explained
    assert good.lower() not in shown.lower() and other.lower() not in shown.lower()
    tried = set(HEXES.findall(shown))
    for candidate in tried:
        assert mqtt_login(cloud, candidate) != "Success", "the log handed out a password"
    assert mqtt_login(cloud, good) == "Success"  # the device itself still logs in


def test_a_refused_https_auth_leaves_no_usable_sign(cloud, capsys) -> None:
    good = http_auth_request(PK, DN, DS)
    wrong = re.sub(r"sign=[0-9a-fA-F]+", "sign=" + "0" * 32, good.body)
    assert https_post(cloud, "/auth/devicename", wrong)["code"] == 401
    shown = everything_the_log_shows(cloud, capsys)
    sign = re.search(r"sign=([0-9a-fA-F]+)", good.body).group(1)
    assert sign.lower() not in shown.lower()
    for candidate in set(HEXES.findall(shown)):
        attempt = re.sub(r"sign=[0-9a-fA-F]+", "sign=" + candidate, good.body)
        assert https_post(cloud, "/auth/devicename", attempt)["code"] != 200
