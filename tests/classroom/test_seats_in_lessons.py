"""``open_lesson(seat=…)``: a student's seat is their device in every lesson, in the
room (a seat id of the class's emulator) and on their own laptop (the handout's file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airlab.classroom import create_class, numbered_seats, write_handouts
from airlab.cloud.registry import Registry
from airlab.cloud.service import CloudEmulator
from airlab.errors import UsageError
from airlab.lesson import open_lesson
from airlab.session import recipes
from tests.classroom.conftest import Served, airlab


def make_class(served: Served, tmp_path: Path, *argv: str) -> Path:
    out = tmp_path / "handouts"
    airlab("class", "create", "--db", str(served.db), "--out", str(out), *argv)
    return out


def test_a_seat_id_is_that_seats_device_in_every_lesson(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = make_class(served, tmp_path, "--students", "3")
    card = json.loads((out / "seat-02.json").read_text())
    monkeypatch.setenv("AIRLAB_CLOUD", str(served.endpoints_file))
    monkeypatch.setenv("AIRLAB_SEAT", "02")
    with open_lesson() as lab:
        assert (lab.identity.product_key, lab.identity.device_name) == (
            card["product_key"], card["device_name"],
        )  # fmt: skip
        assert lab.identity.seat == "02" and "seat 02" in lab.describe()
        recipes.attach(lab.session, apn="CMIOT")
        assert recipes.direct_mqtt(lab.session, **lab.identity.device()).client_id
        # the simulated module reports the seat's device as its IMEI
        assert lab.session.command("AT+CGSN").lines[0].strip() == card["device_name"]
        extra = lab.new_device()  # a lesson's extra device lands in the class's product
        assert extra.product_key == card["product_key"]
    monkeypatch.delenv("AIRLAB_SEAT")
    with open_lesson(seat="03") as lab:
        assert lab.identity.device_name != card["device_name"] and lab.identity.seat == "03"


def test_unknown_bad_and_ambiguous_seats_say_what_to_do(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRLAB_CLOUD", str(served.endpoints_file))
    with pytest.raises(UsageError, match="no class at all") as info:
        open_lesson(seat="07")
    assert "seat-07.json" in str(info.value)
    make_class(served, tmp_path, "--students", "3", "--name", "morning")
    with pytest.raises(UsageError, match=r"no seat '07' in the classes morning.*handout"):
        open_lesson(seat="07")
    with pytest.raises(UsageError, match="not a seat id"):
        open_lesson(seat="a b")
    with pytest.raises(UsageError, match="no seat file"):
        open_lesson(seat="../../etc/seat.json")
    airlab("class", "create", "--db", str(served.db), "--students", "2", "--name", "afternoon",
           "--out", str(tmp_path / "pm"))  # fmt: skip
    with pytest.raises(UsageError, match=r"several classes \(afternoon, morning\)"):
        open_lesson(seat="01")
    with open_lesson(seat="01", class_name="afternoon") as lab:
        pm = json.loads((tmp_path / "pm" / "seat-01.json").read_text())
        assert lab.identity.device_name == pm["device_name"]


def test_the_seat_file_works_on_a_students_own_laptop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Registry() as reg:  # the class, made on the teacher's machine
        room = create_class(reg, numbered_seats(2), name="c")
    write_handouts(room, tmp_path / "handouts")
    seat_file = tmp_path / "handouts" / "seat-01.json"
    laptop = CloudEmulator(tmp_path / "laptop.db").start()  # the student's own make lab
    try:
        ep = laptop.write_endpoints(tmp_path / "laptop.json")
        for _ in range(2):  # the second lesson finds the device already there
            with open_lesson(seat=str(seat_file), cloud=str(ep)) as lab:
                assert lab.identity.device_name == room.cards[0].device_name
                recipes.attach(lab.session, apn="CMIOT")
                login = recipes.direct_mqtt(lab.session, **lab.identity.device())
                assert login.step("MCONNECT").urc is not None
        forged = json.loads(seat_file.read_text())
        forged["device_secret"] = "0" * 32
        other = tmp_path / "forged.json"
        other.write_text(json.dumps(forged))
        with pytest.raises(UsageError, match="another DeviceSecret"):
            open_lesson(seat=str(other), cloud=str(ep))
        other.write_text('{"seat": "01"}')
        with pytest.raises(UsageError, match="not an airlab seat file"):
            open_lesson(seat=str(other), cloud=str(ep))
    finally:
        laptop.stop()
