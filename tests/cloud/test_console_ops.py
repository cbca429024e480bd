"""Console operations on a product's switches (issue 9): 动态注册 and the host check,
in-process (:class:`CloudEmulator`) and remote (:class:`RemoteCloud` through the admin
API), honoured by a running service at its next login; ``airlab cloud product``."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import airlab  # noqa: F401  (registers airsim://)
from airlab.aliyun import mqtt_register_credentials
from airlab.cli import main
from airlab.cloud import CloudEmulator, RemoteCloud
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_SECRET as PS
from airlab.cloud.registry import Registry
from airlab.errors import AirlabError, CloudRejected, UsageError
from airlab.session import ModemSession, recipes
from tests.cloud.broker_helpers import Client

DN = "869480000005151"


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[CloudEmulator]:
    with CloudEmulator(tmp_path / "lab.db", fixture="tutorial") as emulator:
        emulator.add_device(PK, DN)
        yield emulator


@pytest.fixture
def endpoints_file(cloud: CloudEmulator, tmp_path: Path) -> Path:
    return cloud.write_endpoints(tmp_path / "endpoints.json")


@pytest.fixture
def module(endpoints_file: Path) -> Iterator[ModemSession]:
    with ModemSession(f"airsim://ops?profile=instant&cloud={endpoints_file}") as s:
        recipes.attach(s)
        yield s


def register(module: ModemSession) -> recipes.Registration:
    return recipes.register_device(module, product_key=PK, device_name=DN, product_secret=PS)


def test_dynamic_registration_off_then_on_as_the_module_sees_it(
    cloud: CloudEmulator, module: ModemSession
) -> None:
    assert cloud.set_dynamic_registration(PK, False) == {
        "product_key": PK,
        "region": "cn-shanghai",
        "dynamic_registration": False,
        "host_check": False,
        "tls_required": False,
    }
    start = len(module.transcript.received())
    with pytest.raises(CloudRejected) as refused:
        register(module)
    assert refused.value.code == 460
    shown = module.transcript.received()[start:]
    assert b'{"code":460,"message":"dynamic register is not enabled"}' in shown
    last = cloud.refusals().iloc[-1]
    assert (last["rule"], last["code"]) == ("dynreg_disabled", 460)
    assert "动态注册" in last["message"]

    cloud.set_dynamic_registration(PK, True)
    registration = register(module)  # the next call sees the switch: no restart
    assert registration.device_secret == cloud.registry.get_device(PK, DN).device_secret


def mqtt_register(cloud: CloudEmulator) -> str:
    """An MQTT dynamic-registration CONNECT over TLS; paho's CONNACK reason."""
    cred = mqtt_register_credentials(PK, DN, PS, random="77")
    port = int(cloud.endpoints["mqtts"].rsplit(":", 1)[1])
    client = Client(
        port,
        client_id=cred.client_id,
        username=cred.username,
        password=cred.password,
        keepalive=60,
        tls=cloud.ssl_client_context(),
    )
    try:
        return client.connect()
    finally:
        client.stop()


def test_a_switch_changed_by_another_process_applies_to_the_next_login(
    cloud: CloudEmulator,
) -> None:
    other = Registry(cloud.db)  # e.g. 'airlab cloud product --db' beside 'serve'
    try:
        other.set_dynamic_registration(PK, False)
        assert mqtt_register(cloud) == "Not authorized"
        assert cloud.refusals().iloc[-1]["rule"] == "dynreg_disabled"
        other.set_dynamic_registration(PK, True)
        assert mqtt_register(cloud) == "Success"
    finally:
        other.close()


def test_remote_cloud_switches_through_the_admin_api(cloud: CloudEmulator) -> None:
    remote = RemoteCloud(cloud.endpoints)
    try:
        assert remote.product_settings(PK)["host_check"] is False
        assert remote.set_host_check(PK, True)["host_check"] is True
        assert cloud.registry.get_product(PK).host_check is True  # the service's own view
        assert remote.set_dynamic_registration(PK, False)["dynamic_registration"] is False
        assert mqtt_register(cloud) == "Not authorized"
        settings = remote.set_dynamic_registration(PK, True)
        assert settings == {"product_key": PK, "region": "cn-shanghai",
                            "dynamic_registration": True, "host_check": True,
                            "tls_required": False}  # fmt: skip
        assert mqtt_register(cloud) == "Success"  # dialled by IP: no server name to check
        with pytest.raises(UsageError, match="no product"):
            remote.set_host_check("nope", True)
        with pytest.raises(UsageError, match="True or False"):
            remote.set_host_check(PK, "yes")  # type: ignore[arg-type]
    finally:
        remote.close()


def admin(cloud: CloudEmulator, body: bytes, token: str | None, method: str = "POST"):  # type: ignore[no-untyped-def]
    port = int(cloud.endpoints["http"].rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, "/admin/product", body=body, headers=headers)
    reply = conn.getresponse()
    answer = (reply.status, json.loads(reply.read() or b"{}"))
    conn.close()
    return answer


def test_the_admin_route_needs_the_token_and_checks_every_field(cloud: CloudEmulator) -> None:
    token = cloud.admin_token
    body = json.dumps({"product_key": PK, "host_check": True}).encode()
    assert admin(cloud, body, None)[0] == 401
    assert admin(cloud, body, "wrong")[0] == 401
    assert cloud.registry.get_product(PK).host_check is False  # nothing changed
    assert admin(cloud, body, token, method="PUT")[0] == 405
    for bad, word in (
        (b"[1]", "JSON object"),
        (b'{"host_check": true}', "product_key"),
        (b'{"product_key": "k1hipglLdjU", "host_check": "on"}', "true or false"),
        (b'{"product_key": "k1hipglLdjU", "hostcheck": true}', "unknown field"),
    ):
        status, answer = admin(cloud, bad, token)
        assert status == 400 and word in answer["message"], (bad, answer)
    status, answer = admin(cloud, b'{"product_key": "nope", "host_check": true}', token)
    assert status == 404
    status, answer = admin(cloud, body, token)
    assert status == 200 and answer["product"]["host_check"] is True
    assert PS not in json.dumps(answer)  # the ProductSecret is never served


def test_an_in_memory_service_can_be_switched_remotely() -> None:
    with CloudEmulator(fixture="tutorial") as memory:  # no registry file to share
        remote = RemoteCloud(memory.endpoints)
        try:
            assert remote.set_host_check(PK, True)["host_check"] is True
            assert memory.product_settings(PK)["host_check"] is True
        finally:
            remote.close()


# -- airlab cloud product ----------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["cloud", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_product_switches_in_the_registry_file(
    cloud: CloudEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(cloud.db)
    code, out, _ = run(capsys, "product", "--db", db, "--product-key", PK)
    assert code == 0
    assert json.loads(out) == {"product_key": PK, "region": "cn-shanghai",
                               "dynamic_registration": "on", "host_check": "off",
                               "tls_required": "off"}  # fmt: skip
    code, out, _ = run(capsys, "product", "--db", db, "--product-key", PK,
                       "--host-check", "ON", "--dynamic-registration", "off")  # fmt: skip
    assert code == 0 and json.loads(out)["host_check"] == "on"
    assert json.loads(out)["dynamic_registration"] == "off"
    product = cloud.registry.get_product(PK)  # the running service sees it at once
    assert product.host_check and not product.dynamic_registration
    assert mqtt_register(cloud) == "Not authorized"
    assert PS not in out


def test_cli_product_through_the_running_service(
    cloud: CloudEmulator, endpoints_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "product", "--endpoints-file", str(endpoints_file),
                       "--product-key", PK, "--host-check", "on")  # fmt: skip
    assert code == 0 and json.loads(out)["host_check"] == "on"
    assert cloud.product_settings(PK)["host_check"] is True
    code, out, _ = run(capsys, "product", "--endpoints-file", str(endpoints_file),
                       "--product-key", PK, "--host-check", "off",
                       "--dynamic-registration", "off")  # fmt: skip
    assert code == 0
    settings = cloud.product_settings(PK)
    assert (settings["dynamic_registration"], settings["host_check"]) == (False, False)


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--product-key", PK], "--db"),  # neither --db nor --endpoints-file
        (["--db", "DB", "--endpoints-file", "EP", "--product-key", PK], "--db"),
        (["--db", "DB"], "--product-key"),
        (["--db", "DB", "--product-key", PK, "--host-check", "yes"], "--host-check"),
        (["--db", "DB", "--product-key", PK, "--dynamic-registration", "1"],
         "--dynamic-registration"),
        (["--db", "DB", "--product-key", "nope"], "--product-key"),
    ],
)  # fmt: skip
def test_cli_product_bad_input_exits_2_naming_the_option(
    cloud: CloudEmulator, capsys: pytest.CaptureFixture[str], argv: list[str], option: str
) -> None:
    argv = [str(cloud.db) if a == "DB" else a for a in argv]
    code, _, err = run(capsys, "product", *argv)
    assert code == 2 and option in err, err


def test_add_product_takes_the_host_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "new.db"
    code, out, _ = run(capsys, "add-product", "--db", str(db), "--product-key", "pkH1",
                       "--host-check", "on")  # fmt: skip
    assert code == 0 and json.loads(out)["host_check"] == "on"
    with Registry(db) as registry:
        assert registry.get_product("pkH1").host_check is True


def test_remote_cloud_refuses_a_wrong_token(cloud: CloudEmulator) -> None:
    endpoints = dict(cloud.endpoints)
    endpoints["admin"] = {**endpoints["admin"], "token": "not-the-token"}
    remote = RemoteCloud(endpoints)
    with pytest.raises(AirlabError, match="401"):
        remote.set_host_check(PK, True)
    assert cloud.product_settings(PK)["host_check"] is False
