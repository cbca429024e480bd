"""FollowTutorial: follows a raw session live, renders the side-by-side table, and
marks what an AtConsole in raw mode (or session.send_text) typed."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from airlab.aliyun import direct_mqtt_credentials
from airlab.follow import Verdict
from airlab.session import ModemSession
from airlab.widgets import AtConsole, FollowTutorial
from tests.widgets.helpers import wait_until

PK = "k1hipglLdjU"
HOST = f"{PK}.iot-as-mqtt.cn-shanghai.aliyuncs.com"


@pytest.fixture
def me(cloud) -> SimpleNamespace:
    name = "869480000000215"
    secret = cloud[0].add_device(PK, name)
    return SimpleNamespace(
        product_key=PK, device_name=name, device_secret=secret,
        product_secret="8LQwOYSZMwp3DFBd", region="cn-shanghai",
    )  # fmt: skip


@pytest.fixture
def raw(cloud, me) -> Iterator[ModemSession]:
    url = f"airsim://test?profile=instant&imei={me.device_name}&cloud={cloud[1]}"
    with ModemSession(url, guards=False) as s:
        yield s


def test_type_direct_mqtt_with_hmacsha1(raw, me, widget_threads) -> None:
    creds = direct_mqtt_credentials(PK, me.device_name, me.device_secret, sign_method="hmacsha1")
    with FollowTutorial(raw, "direct_mqtt", me, sign_method="hmacsha1") as check:
        row = check.type(f'AT+MCONFIG="{creds.client_id}","{creds.username}","{creds.password}"')
        assert row.verdict is Verdict.OK and row.label == "1 配置MQTT参数"
        assert check.type(f'AT+SSLMIPSTART="{HOST}",1883').got == ("OK", "CONNECT OK")
        assert check.type("AT+MCONNECT=1,120").verdict is Verdict.OK
        assert check.report.done
        html = check.table.value
        assert "配置MQTT参数" in html and "建立会话" in html and "✓ ok" in html
        assert creds.password not in html.split("<tr")[2].split("<td")[5]  # expected column
        assert "3/3 ok" in check.title.value


def test_mistakes_typed_in_the_raw_console(raw, me, widget_threads) -> None:
    """The console types (raw, like sscom); the checker, following the same session,
    marks the swapped user name and the missing steps."""
    creds = direct_mqtt_credentials(PK, me.device_name, me.device_secret)
    console = AtConsole(raw, raw=True, clock=False)
    check = FollowTutorial(raw, "direct_mqtt", me)
    try:
        console.text.value = f'AT+MCONFIG="{creds.client_id}","{PK}&{me.device_name}","x"'
        check.wait_for("mconfig")
        row = check.report.step("mconfig")
        assert row.verdict is Verdict.DIFFERS and "swapped" in row.why
        assert "swapped" in check.table.value
        console.text.value = "AT+MCONNECT=1,120"
        row = check.wait_for("mconnect")
        assert "no CONNECT OK before it" in row.why and "+CME ERROR: 767" in row.why
        assert check.report.step("mipstart").verdict is Verdict.MISSING
        assert "– missing" in check.table.value
    finally:
        console.close()
        check.close()


def test_reset_extras_and_text(raw, me, widget_threads) -> None:
    with FollowTutorial(raw, "publish_subscribe", me) as check:
        row = check.type("AT+CSQ")
        assert row.verdict is Verdict.EXTRA
        assert "not a tutorial step" in check.table.value
        check.reset()
        wait_until(lambda: "not a tutorial step" not in check.table.value)
        assert check.report.rows == ()
        assert check.text().startswith("发布与订阅消息")
        pub = f'AT+MPUB="/{PK}/868488076506128/user/update",0,0,"HelloWorld"'
        row = check.type(pub)
        assert "tutorial's DeviceName" in row.why
        assert "FollowTutorial('publish_subscribe')" in repr(
            check._repr_mimebundle_()["text/plain"]
        )
