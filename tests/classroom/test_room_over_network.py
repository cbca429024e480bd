"""A real classroom: the teacher's ``airlab cloud serve --host 0.0.0.0 --db class.db``,
students on their own laptops with a room file (``airlab class room-file``) and their
seat file — no registry file on their machine, only the admin API and a class token."""

from __future__ import annotations

import base64
import json
import os
import stat
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import airlab
from airlab.aliyun import direct_mqtt_credentials
from airlab.cloud.discovery import RemoteCloud, load_endpoints
from airlab.cloud.registry import Registry
from airlab.errors import UsageError
from airlab.lesson import open_lesson
from airlab.session import recipes
from tests.classroom.conftest import Served
from tests.classroom.conftest import airlab as run_airlab
from tests.cloud.broker_helpers import Client

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL_PK = "k1hipglLdjU"


def _room(served: Served, tmp_path: Path, *extra: str, name: str = "room.json") -> Path:
    out = tmp_path / "laptop" / name
    run_airlab("class", "room-file", "--out", str(out),
               "--endpoints-file", str(served.endpoints_file), *extra)  # fmt: skip
    return out


def _class(served: Served, tmp_path: Path, students: str = "3") -> Path:
    handouts = tmp_path / "handouts"
    run_airlab("class", "create", "--db", str(served.db), "--students", students,
               "--out", str(handouts), "--name", "room1")  # fmt: skip
    return handouts


def _call(room: dict, method: str, route: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{room['admin']['url']}/{route}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {room['admin']['token']}",
                 "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_room_file_holds_a_class_token_not_the_admin_token(
    served: Served, tmp_path: Path
) -> None:
    _class(served, tmp_path)
    room_path = _room(served, tmp_path)
    assert stat.S_IMODE(os.stat(room_path).st_mode) == 0o600
    room = json.loads(room_path.read_text())
    text = room_path.read_text()
    assert served.endpoints["admin"]["token"] not in text
    assert str(served.db) not in text and "db" not in room and "ca_pem" not in room
    assert room["admin"]["token"] and room["class"] == "room1"
    assert "BEGIN CERTIFICATE" in room["ca"]
    assert load_endpoints(room_path)["mqtt"] == served.endpoints["mqtt"]
    # only a digest is stored in the registry
    with Registry(served.db) as reg:
        stored = reg._query("SELECT token_hashes FROM classes")[0][0]
    assert room["admin"]["token"] not in stored and len(json.loads(stored)) == 1
    # a new token each time; older ones stay valid unless --revoke-others
    second = json.loads(_room(served, tmp_path, name="room2.json").read_text())
    assert second["admin"]["token"] != room["admin"]["token"]
    assert _call(room, "GET", "online")[0] == 200 and _call(second, "GET", "online")[0] == 200
    third = json.loads(_room(served, tmp_path, "--revoke-others", name="r3.json").read_text())
    assert _call(room, "GET", "online")[0] == 401 and _call(second, "GET", "online")[0] == 401
    assert _call(third, "GET", "online")[0] == 200


def test_a_students_laptop_runs_the_lesson_through_the_room_file(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handouts = _class(served, tmp_path)
    room = _room(served, tmp_path)
    seat = handouts / "seat-02.json"
    card = json.loads(seat.read_text())
    monkeypatch.delenv("AIRLAB_SEAT", raising=False)
    with open_lesson(seat=str(seat), cloud=str(room)) as lab:
        cloud = lab.cloud
        assert isinstance(cloud, RemoteCloud) and not cloud.local
        with pytest.raises(UsageError, match="admin API"):
            _ = cloud.registry  # no registry file on the laptop
        assert lab.identity.ref == (card["product_key"], card["device_name"])
        recipes.attach(lab.session, apn="CMIOT")
        bad = dict(lab.identity.device(), device_secret="0" * 32)
        with pytest.raises(airlab.CloudRejected):
            recipes.direct_mqtt(lab.session, **bad)
        explained = cloud.explain_last_refusal(lab.identity.ref)
        assert "CONNACK" in explained and "rule:" in explained, explained
        refusals = cloud.refusals(lab.identity.ref)
        assert not refusals.empty and refusals.iloc[-1]["protocol"] == "mqtt"
        recipes.direct_mqtt(lab.session, **lab.identity.device())
        topic = lab.identity.topic("user/update")
        recipes.publish(lab.session, topic, "hello from seat 02", qos=1)
        log = cloud.message_log(lab.identity.ref)
        assert (log.topic == topic).any() and (log.text == "hello from seat 02").any()
        # the same frame, column for column and dtype for dtype, as the teacher's registry
        with Registry(served.db) as reg:
            local = reg.message_frame(lab.identity.ref)
            local_refusals_n = len(refusals)
        assert list(log.columns) == list(local.columns)
        assert log.dtypes.astype(str).tolist() == local.dtypes.astype(str).tolist()
        assert log.drop(columns="payload").equals(local.drop(columns="payload"))
        assert log.payload.tolist() == local.payload.tolist()
        assert local_refusals_n >= 1
        # the class's devices, without secrets; a new device with its secret
        devices = cloud.devices(card["product_key"])
        assert card["device_name"] in set(devices.device_name)
        assert devices.device_secret.isna().all()
        extra = lab.new_device()
        assert extra.product_key == card["product_key"] and len(extra.device_secret) == 32
        assert extra.product_secret == card["product_secret"]
        with Registry(served.db) as reg:
            stored = reg.get_device(extra.product_key, extra.device_name)
        assert stored is not None and stored.device_secret == extra.device_secret
        assert [d.device_name for d in cloud.online_devices()] == [card["device_name"]]
        recipes.disconnect(lab.session)


def test_a_class_token_reaches_only_its_product(served: Served, tmp_path: Path) -> None:
    handouts = _class(served, tmp_path)
    room_path = _room(served, tmp_path)
    room = json.loads(room_path.read_text())
    pk = room["product_key"]
    card = json.loads((handouts / "seat-01.json").read_text())
    refused = {
        "another product's log": ("GET", f"log?table=message&product_key={TUTORIAL_PK}", None),
        "another device's log": (
            "GET", f"log?table=connection&product_key={TUTORIAL_PK}&device=868488076506128",
            None,
        ),
        "the whole log": ("GET", "log?table=connection&limit=10", None),  # scoped, see below
        "the tutorial's topic": (
            "POST", "publish", {"topic": f"/{TUTORIAL_PK}/868488076506128/user/get",
                                "payload": "x"},
        ),
        "wipe": ("POST", "wipe", {}),
        "another product's ResetThing": (
            "POST", "reset", {"product_key": TUTORIAL_PK, "device_name": "868488076506128"},
        ),
        "another product's devices": ("GET", f"devices?product_key={TUTORIAL_PK}", None),
        "another product's settings": ("POST", "product", {"product_key": TUTORIAL_PK}),
        "a device of another product": ("POST", "device", {"product_key": TUTORIAL_PK}),
        "a new product": ("POST", "new-product", {"product_key": "a1Mine"}),
        "status (the registry's path)": ("GET", "status", None),
    }  # fmt: skip
    for what, (method, route, body) in refused.items():
        status, answer = _call(room, method, route, body)
        if what == "the whole log":  # a class token's log is its product's, not an error
            assert status == 200, answer
            assert all(r["product_key"] in (pk, None) for r in answer["rows"]), what
            continue
        assert status == 403, (what, status, answer)
        assert answer["code"] == 403 and "admin token" in answer["message"], what
    # allowed: its own product
    status, answer = _call(room, "GET", f"devices?product_key={pk}")
    assert status == 200 and all(d["device_secret"] is None for d in answer["devices"])
    assert card["device_secret"] not in json.dumps(answer)
    status, answer = _call(room, "POST", "publish", {"topic": f"/{pk}/x1/user/get", "payload": "1"})
    assert status == 200, answer
    status, answer = _call(room, "POST", "reset", {"product_key": pk,
                                                   "device_name": card["device_name"]})  # fmt: skip
    assert status == 200, answer
    status, answer = _call(room, "POST", "product", {"product_key": pk, "host_check": False})
    assert status == 200 and "product_secret" not in answer["product"]
    # a forged token: 401
    forged = dict(room, admin=dict(room["admin"], token=room["admin"]["token"][:-2] + "xx"))
    assert _call(forged, "GET", "online")[0] == 401
    # every refusal is logged like the admin's, without the token
    admin = RemoteCloud(served.endpoints)
    log = admin.connection_log()
    denied = log[(log.event == "admin") & (log.code == 403)]
    assert len(denied) == len(refused) - 1
    assert denied.reason.str.contains("admin token").all()
    everything = log.to_csv() + admin.message_log().to_csv() + served.log.read_text()
    assert room["admin"]["token"] not in everything
    assert admin.wipe(dry_run=True)["classes"] == 1  # the admin token still does everything


def test_a_seat_file_of_another_class_says_so(served: Served, tmp_path: Path) -> None:
    handouts = _class(served, tmp_path)
    room = _room(served, tmp_path)
    other = json.loads((handouts / "seat-01.json").read_text())
    other["device_name"] = "not-in-this-class"
    fake = tmp_path / "laptop" / "seat-99.json"
    fake.write_text(json.dumps(other))
    with pytest.raises(UsageError, match=r"has no device .*another class"):
        open_lesson(seat=str(fake), cloud=str(room))
    other["product_key"] = TUTORIAL_PK
    fake.write_text(json.dumps(other))
    with pytest.raises(UsageError, match="class token is for another class"):
        open_lesson(seat=str(fake), cloud=str(room))
    # a room file and no seat at all: say how to give it
    with pytest.raises(UsageError, match=r"room file of class 'room1'.*seat-07.json"):
        open_lesson(cloud=str(room), seat="")


def test_lesson_04_runs_on_a_laptop_with_the_room_file(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handouts = _class(served, tmp_path)
    room = _room(served, tmp_path)
    monkeypatch.setenv("AIRLAB_CLOUD", str(room))
    monkeypatch.setenv("AIRLAB_SEAT", str(handouts / "seat-03.json"))
    monkeypatch.setenv("AIRLAB_CLOUD_ENDPOINTS", str(tmp_path / "no-such-endpoints.json"))
    path = ROOT / "notebooks" / "04_publish_subscribe.ipynb"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}}, allow_error_names=[],
    )  # fmt: skip
    client.execute()  # raises CellExecutionError on any error
    shown = "".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )  # fmt: skip
    card = json.loads((handouts / "seat-03.json").read_text())
    assert card["device_name"] in shown
    with Registry(served.db) as reg:  # the teacher's registry has the student's messages
        ups = [m for m in reg.message_log((card["product_key"], card["device_name"]))
               if m.direction == "up"]  # fmt: skip
    assert ups


def test_a_class_token_reads_payload_secrets_masked(served: Served, tmp_path: Path) -> None:
    handouts = _class(served, tmp_path)
    room = json.loads(_room(served, tmp_path).read_text())
    seat = json.loads((handouts / "seat-01.json").read_text())
    secret = "0123456789abcdef0123456789abcdef"
    cred = direct_mqtt_credentials(seat["product_key"], seat["device_name"], seat["device_secret"])
    port = int(served.endpoints["mqtt"].rsplit(":", 1)[1])
    device = Client(port, client_id=cred.client_id, username=cred.username,
                    password=cred.password, keepalive=60)  # fmt: skip
    try:  # a student's device sends something secret-looking (a registration push's shape)
        assert device.connect() == "Success"
        topic = f"/{seat['product_key']}/{seat['device_name']}/user/update"
        device.publish(topic, f'{{"deviceSecret":"{secret}"}}'.encode(), 1)
    finally:
        device.stop()
    route = f"log?table=message&product_key={seat['product_key']}"
    code, answer = _call(room, "GET", route)
    assert code == 200, answer
    payloads = [base64.b64decode(r["payload_b64"]) for r in answer["rows"]]
    assert payloads and all(secret.encode() not in p for p in payloads)
    assert any(b'"deviceSecret":"' + b"*" * len(secret) + b'"' in p for p in payloads)
    admin = dict(room, admin={**room["admin"], "token": served.endpoints["admin"]["token"]})
    code, answer = _call(admin, "GET", route)  # the teacher's admin token reads it as stored
    assert code == 200 and any(
        secret.encode() in base64.b64decode(r["payload_b64"]) for r in answer["rows"]
    )
