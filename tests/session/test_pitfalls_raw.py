"""Every warning of the tutorial, typed raw: the module's own failure bytes, the cloud's
refusal, then the guard (or the recipe) that stops the same mistake.

Raw mode (``ModemSession(..., guards=False)`` and :meth:`ModemSession.send_text`) sends
what is typed, as sscom does; the simulator answers byte for byte and the in-process
cloud emulator explains its refusals.  Lesson 09 (``notebooks/09_warnings_live.ipynb``)
shows the same failures.

Four pitfalls are covered in ``tests/session/test_raw_mode.py`` and not repeated here:
a body longer than ``AT+HTTPDATA`` announces
(``test_httpdata_longer_body_keeps_the_announced_bytes``), a second QoS1 ``AT+MPUB``
before ``PUBACK`` (``test_second_qos1_before_puback_gets_error``), ``AT+MCONNECT`` after
the server's window (``test_late_mconnect_meets_closed``) and an ``AT+MPUB`` line the
firmware refuses (``test_mpub_line_the_firmware_refuses``).
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import airlab  # noqa: F401  (registers airsim://)
from airlab.aliyun import direct_mqtt_credentials, http_auth_request, register_request
from airlab.at.commands import httppara, mconfig
from airlab.at.events import Event, FinalResult
from airlab.errors import CloudRejected, UsageError
from airlab.lesson import new_device_name
from airlab.session import ModemSession, recipes
from airlab.session.errors import ConnectFailed, ResponseTimeout

PK = "k1hipglLdjU"
TUTORIAL_SIGN = "0f655b12adf519b9a7a2b0a990f398b6"  # the tutorial's password for its device
AUTH_URL = "https://iot-auth.cn-shanghai.aliyuncs.com/auth/devicename"
REGISTER_URL = "https://iot-auth.cn-shanghai.aliyuncs.com/auth/register/device"
FORM = "Content-type: application/x-www-form-urlencoded"
FOREIGN_HOST = "a1qsHBbKtmc.iot-as-mqtt.cn-shanghai.aliyuncs.com"  # the tutorial's method 1


@dataclass
class Bench:
    """A raw session on a simulated module whose IMEI names a fresh device of the
    tutorial's product, and the cloud emulator it reaches."""

    cloud: object
    session: ModemSession
    device_name: str
    device_secret: str
    endpoints: Path

    @property
    def device(self) -> dict[str, str]:
        return {
            "product_key": PK,
            "device_name": self.device_name,
            "device_secret": self.device_secret,
        }

    def url(self, imei: str) -> str:
        return f"airsim://pitfalls?profile=instant&imei={imei}&cloud={self.endpoints}"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Path]]:
    from airlab.cloud import CloudEmulator

    with CloudEmulator(fixture="tutorial") as emu:
        yield emu, emu.write_endpoints(tmp_path_factory.mktemp("pitfalls") / "ep.json")


@pytest.fixture
def bench(cloud: tuple[object, Path]) -> Iterator[Bench]:
    emu, endpoints = cloud
    name = new_device_name()
    secret = emu.add_device(PK, name)  # type: ignore[attr-defined]
    url = f"airsim://pitfalls?profile=instant&imei={name}&cloud={endpoints}"
    with ModemSession(url, guards=False) as s:
        yield Bench(emu, s, name, secret, endpoints)


def typed(s: ModemSession, text: str, until: str | tuple[str, ...] | None = None) -> bytes:
    """Type ``text`` + CR LF; wait for the final result (or ``until``: URC, prompt or
    final text); the bytes the module sent back, up to and including that answer."""
    first = len(s.transcript.records)
    mark = s.send_text(text)
    wanted = (until,) if isinstance(until, str) else until

    def done(e: Event) -> bool:
        if wanted is None:
            return isinstance(e, FinalResult)
        named = e.text in wanted or getattr(e, "name", None) in wanted
        return e.kind in ("urc", "prompt", "final") and named

    answer = s.wait_for_event(done, 10, since=mark)
    got = b"".join(r.data for r in s.transcript.records[first:] if r.direction.value == "received")
    frame = b"\r\n" + answer.raw + b"\r\n"
    end = got.find(frame)
    assert end >= 0, got
    return got[: end + len(frame)]


def post_typed(
    s: ModemSession,
    body: str,
    *,
    length: int | None = None,
    header: str = FORM,
    url: str = AUTH_URL,
    data_ms: int = 20000,
) -> tuple[bytes, str | None]:
    """The tutorial's HTTPS steps typed: returns the +HTTPACTION bytes and the body read."""
    typed(s, "AT+HTTPTERM")
    for line in (
        "AT+HTTPINIT",
        f'AT+HTTPPARA="URL",{url}',
        f'AT+HTTPPARA="USER_DEFINED","{header}"',
    ):
        assert typed(s, line).endswith(b"\r\nOK\r\n")
    n = len(body.encode("utf-8")) if length is None else length
    assert typed(s, f"AT+HTTPDATA={n},{data_ms}", until="DOWNLOAD").endswith(b"DOWNLOAD\r\n")
    assert typed(s, body) == b"\r\nOK\r\n"  # the block is not echoed
    action = typed(s, "AT+HTTPACTION=1", until="+HTTPACTION")
    text = None
    if not action.endswith(b",0\r\n"):
        text = (s.command("AT+HTTPREAD").payload or b"").decode("utf-8")
    typed(s, "AT+HTTPTERM")
    return action, text


def mqtt_login_typed(s: ModemSession, user_line: str, host: str) -> bytes:
    """MCONFIG (as given), SSLMIPSTART, MCONNECT typed: the MCONNECT answer bytes."""
    assert typed(s, user_line).endswith(b"\r\nOK\r\n")
    assert typed(s, f'AT+SSLMIPSTART="{host}",1883', until="CONNECT OK").endswith(
        b"\r\nCONNECT OK\r\n"
    )
    return typed(s, "AT+MCONNECT=1,120", until=("CONNACK OK", "ERROR"))


def last_refusal(emu: object, name: str) -> dict:
    rows = [
        r
        for r in emu.refusals().to_dict("records")  # type: ignore[attr-defined]
        if name in " ".join(str(v) for v in r.values())
    ]
    assert rows, f"no refusal names {name}"
    return rows[-1]


def own_product(emu: object, *, dynamic_registration: bool = False) -> str:
    key = "a1test" + "".join(secrets.choice(string.ascii_letters) for _ in range(5))
    emu.add_product(key, dynamic_registration=dynamic_registration)  # type: ignore[attr-defined]
    return key


# ---------------------------------------------------------------------------- 注意 / 切记


def test_sapbr_before_attach_is_not_allowed(bench: Bench) -> None:
    s = bench.session
    assert typed(s, "AT+CGATT=0").endswith(b"\r\nOK\r\n")
    assert typed(s, "AT+CGATT?") == b"AT+CGATT?\r\n\r\n+CGATT: 0\r\n\r\nOK\r\n"
    assert typed(s, "AT+SAPBR=1,1") == b"AT+SAPBR=1,1\r\n\r\n+CME ERROR: 3\r\n"
    # the recipe asks AT+CGATT? until 1 and never opens the bearer before
    mark = s.mark()
    with pytest.raises(ResponseTimeout, match=r"CGATT: 1.*check the SIM"):
        recipes.attach(s, tries=2, interval=0.05)
    assert not any("SAPBR" in e.text for e in s.events_since(mark) if e.kind == "command")
    typed(s, "AT+CGATT=1")
    assert recipes.attach(s).ip == "10.222.163.213"


def test_content_type_without_its_space_is_the_same_header(bench: Bench) -> None:
    # HTTP allows optional whitespace after the colon (RFC 9110 5.6.3): the module sends
    # the line as typed and the server reads the same header. The emulator does not model
    # a request whose Content-Type is missing or wrong (it parses the form regardless).
    s = bench.session
    recipes.attach(s)
    body = http_auth_request(**bench.device).body
    action, text = post_typed(s, body, header=FORM.replace(": ", ":"))
    assert action.endswith(b"\r\n+HTTPACTION: 1,200,124\r\n")
    assert text is not None and json.loads(text)["code"] == 200
    # the recipes write the tutorial's line, with its space
    assert httppara("USER_DEFINED", FORM) == f'AT+HTTPPARA="USER_DEFINED","{FORM}"'


def test_httpdata_announcing_more_waits_for_the_timer(bench: Bench) -> None:
    # the other half of test_raw_mode's longer-body test: fewer bytes than announced
    s = bench.session
    recipes.attach(s)
    body = http_auth_request(**bench.device).body  # 112 bytes, + CR LF as sscom sends it
    action, text = post_typed(s, body, length=120, data_ms=1000)
    assert action.endswith(b"\r\n+HTTPACTION: 1,200,47\r\n")
    assert text == '{"code":5001,"message":"meta device not found"}'
    assert last_refusal(bench.cloud, bench.device_name)["details"]["device_name"].endswith("\r\n")
    s.guards = True
    before = s.mark()
    with pytest.raises(UsageError, match="announces 120 bytes but 112"):
        s.send_data("AT+HTTPDATA=120,1000", body)
    assert s.mark() == before


def test_typed_look_alikes(bench: Bench) -> None:
    s = bench.session
    recipes.attach(s)
    request = http_auth_request(**bench.device)
    look_alike = request.body.replace("&deviceName", "＆deviceName")  # full-width &
    assert len(look_alike.encode("utf-8")) == request.length + 2
    action, text = post_typed(s, look_alike)
    assert action.endswith(b"\r\n+HTTPACTION: 1,200,36\r\n")
    assert text == '{"code":460,"message":"param error"}'
    refusal = last_refusal(bench.cloud, bench.device_name)
    assert refusal["rule"] == "http_params" and "missing: deviceName" in refusal["message"]
    # smart quotes around the client id: the module refuses the line
    creds = direct_mqtt_credentials(**bench.device)
    line = f'AT+MCONFIG=“{creds.client_id}”,"{creds.username}","{creds.password}"'
    assert typed(s, line).endswith(b"\r\n\r\nERROR\r\n")
    # guard: built by the library; a space copied along is refused before signing
    with pytest.raises(UsageError, match="whitespace"):
        http_auth_request(PK, bench.device_name + " ", bench.device_secret)


def test_httpaction_other_than_200(bench: Bench) -> None:
    s = bench.session
    recipes.attach(s)
    body = http_auth_request(**bench.device).body
    action, text = post_typed(s, body, url=AUTH_URL[:-1])
    assert action.endswith(b"\r\n+HTTPACTION: 1,404,54\r\n")
    assert text is not None and json.loads(text)["code"] == 404
    action, text = post_typed(s, body, url=AUTH_URL.replace(".com", ".con"))
    assert action == b"AT+HTTPACTION=1\r\n\r\nOK\r\n\r\n+HTTPACTION: 1,603,0\r\n"
    assert text is None
    s.guards = True
    with pytest.raises(ConnectFailed, match=r"603,0 \(DNS error\).*check the bearer"):
        recipes.http_auth_then_mqtt(
            s, **bench.device, auth_base="https://iot-auth.cn-shanghai.aliyuncs.con"
        )


def test_mconfig_with_iot_token_as_user_name(bench: Bench) -> None:
    s = bench.session
    recipes.attach(s)
    _, text = post_typed(s, http_auth_request(**bench.device).body)
    assert text is not None
    data = json.loads(text)["data"]
    swapped = mconfig(bench.device_name, data["iotToken"], data["iotId"])
    host = f"{PK}.iot-as-mqtt.cn-shanghai.aliyuncs.com"
    assert mqtt_login_typed(s, swapped, host) == (b"AT+MCONNECT=1,120\r\n\r\nOK\r\n\r\nERROR\r\n")
    refusal = last_refusal(bench.cloud, bench.device_name)
    assert (refusal["code"], refusal["rule"]) == (3, "token_invalid")
    # the cloud says what happened, names the device, and never shows the token
    explained = bench.cloud.explain_last_refusal((PK, bench.device_name))
    assert "swapped" in explained and data["iotToken"] not in explained
    assert data["iotToken"] not in bench.cloud.refusals().to_json()
    # guarded: the late ERROR becomes CloudRejected with advice
    s.guards = True
    s.command("AT+MIPCLOSE", check=False)
    s.command(swapped)
    s.command_and_wait(f'AT+SSLMIPSTART="{host}",1883', urc="CONNECT OK")
    with pytest.raises(CloudRejected, match="explain_last_refusal"):
        s.command_and_wait("AT+MCONNECT=1,120", urc="CONNACK OK")
    # the recipe builds clientId, iotId, iotToken in that order
    s.command("AT+MIPCLOSE", check=False)
    login = recipes.http_auth_then_mqtt(s, **bench.device)
    assert login.username == login.iot_id and login.client_id == bench.device_name


def test_host_of_another_product(bench: Bench) -> None:
    s = bench.session
    recipes.attach(s)
    key = own_product(bench.cloud)
    secret = bench.cloud.add_device(key, bench.device_name)  # type: ignore[attr-defined]
    creds = direct_mqtt_credentials(key, bench.device_name, secret)
    line = mconfig(creds.client_id, creds.username, creds.password)
    # off (as on the platform): the tutorial's foreign host logs in
    assert mqtt_login_typed(s, line, FOREIGN_HOST).endswith(b"\r\nCONNACK OK\r\n")
    recipes.disconnect(s)
    bench.cloud.set_host_check(key, True)  # type: ignore[attr-defined]
    assert mqtt_login_typed(s, line, FOREIGN_HOST).endswith(b"\r\nOK\r\n\r\nERROR\r\n")
    refusal = last_refusal(bench.cloud, bench.device_name)
    assert (refusal["code"], refusal["rule"]) == (5, "mqtt_host")
    # the recipe dials <productKey>.iot-as-mqtt...: it passes the check
    s.guards = True
    s.command("AT+MIPCLOSE", check=False)
    login = recipes.direct_mqtt(s, product_key=key, device_name=bench.device_name,
                                device_secret=secret)  # fmt: skip
    assert login.host.startswith(key + ".")


def test_tutorial_certificate_for_own_device(bench: Bench) -> None:
    s = bench.session
    recipes.attach(s)
    creds = direct_mqtt_credentials(**bench.device)
    line = mconfig(creds.client_id, creds.username, TUTORIAL_SIGN)
    host = f"{PK}.iot-as-mqtt.cn-shanghai.aliyuncs.com"
    assert mqtt_login_typed(s, line, host).endswith(b"\r\nOK\r\n\r\nERROR\r\n")
    refusal = last_refusal(bench.cloud, bench.device_name)
    assert (refusal["code"], refusal["rule"]) == (4, "signature")
    shown = " ".join(str(v) for v in refusal["details"].values())
    assert bench.device_secret not in shown and creds.password not in shown
    s.guards = True
    s.command("AT+MIPCLOSE", check=False)
    s.command_and_wait(f'AT+SSLMIPSTART="{host}",1883', urc="CONNECT OK")
    with pytest.raises(CloudRejected, match="check the signature"):
        s.command_and_wait("AT+MCONNECT=1,120", urc="CONNACK OK")
    s.command("AT+MIPCLOSE", check=False)
    assert recipes.direct_mqtt(s, **bench.device).step("MCONNECT").urc == "CONNACK OK"


def test_same_device_name_on_two_modules(bench: Bench) -> None:
    s = bench.session
    assert typed(s, "AT+CGSN") == f"AT+CGSN\r\n\r\n{bench.device_name}\r\n\r\nOK\r\n".encode()
    recipes.attach(s)
    s.guards = True
    recipes.direct_mqtt(s, **bench.device)
    mark = s.mark()
    with ModemSession(bench.url(new_device_name())) as second:  # another board, same name
        recipes.attach(second)
        recipes.direct_mqtt(second, **bench.device)
        assert s.wait_for_urc("CLOSED", 5, since=mark).line == "CLOSED"
    log = bench.cloud.connection_log((PK, bench.device_name))  # type: ignore[attr-defined]
    assert "Kicked by the same device" in log[log.event == "kicked"].reason.iloc[-1]


def test_dynamic_registration_switched_off(bench: Bench) -> None:
    s = bench.session
    recipes.attach(s)
    key = own_product(bench.cloud)
    product = bench.cloud.registry.get_product(key)  # type: ignore[attr-defined]
    newcomer = new_device_name()
    bench.cloud.add_device(key, newcomer)  # type: ignore[attr-defined]
    ask = register_request(key, newcomer, product.product_secret, random="123456")
    action, text = post_typed(s, ask.body, url=REGISTER_URL)
    assert action.endswith(b"\r\n+HTTPACTION: 1,200,56\r\n")
    assert text == '{"code":460,"message":"dynamic register is not enabled"}'
    assert last_refusal(bench.cloud, newcomer)["rule"] == "dynreg_disabled"
    s.guards = True
    args = {"product_key": key, "device_name": newcomer, "product_secret": product.product_secret}
    with pytest.raises(CloudRejected, match=r"460.*needs 动态注册 on"):
        recipes.register_device(s, **args)
    bench.cloud.set_dynamic_registration(key, True)  # type: ignore[attr-defined]
    assert len(recipes.register_device(s, **args).device_secret) == 32
