"""Asked once: the seat a student picks in ``SeatPicker`` is the device of every later
``open_lesson()`` on that computer, until forgotten or overridden by ``AIRLAB_SEAT``."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from airlab.classroom.choice import saved_seat, seat_choice_path
from airlab.cloud.discovery import RemoteCloud, load_endpoints
from airlab.cloud.service import CloudEmulator
from airlab.lesson import open_lesson
from airlab.widgets import SeatPicker
from tests.classroom.conftest import Served, airlab


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.delenv("AIRLAB_SEAT", raising=False)
    return home


def test_picked_once_then_every_lesson_uses_it(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "handouts"
    airlab("class", "create", "--db", str(served.db), "--students", "2", "--out", str(out),
           "--name", "cs101")  # fmt: skip
    monkeypatch.setenv("AIRLAB_CLOUD", str(served.endpoints_file))
    picker = SeatPicker(RemoteCloud(load_endpoints(served.endpoints_file)))
    assert picker.seats is not None and [v for _, v in picker.seats.options] == ["01", "02"]
    assert "No seat saved" in picker.status.value
    picker.seats.value = "02"
    picker.use_button.click()
    assert "seat 02 of class cs101" in picker.status.value
    assert stat.S_IMODE(seat_choice_path().stat().st_mode) == 0o600
    card = json.loads((out / "seat-02.json").read_text())
    with open_lesson() as lab:  # no argument, no AIRLAB_SEAT: the saved seat
        assert lab.identity.device_name == card["device_name"] and lab.identity.seat == "02"
    monkeypatch.setenv("AIRLAB_SEAT", "")  # set but empty: no seat, whatever is saved
    with open_lesson() as lab:
        assert lab.identity.source == "lesson"
    monkeypatch.delenv("AIRLAB_SEAT")
    picker.forget_button.click()
    assert "No seat saved" in picker.status.value and saved_seat() is None
    with open_lesson() as lab:
        assert lab.identity.source == "lesson"


def test_on_a_laptop_the_seat_file_is_picked(tmp_path: Path) -> None:
    from airlab.classroom import create_class, numbered_seats, write_handouts
    from airlab.cloud.registry import Registry

    with Registry() as reg:
        room = create_class(reg, numbered_seats(2), name="c")
    write_handouts(room, tmp_path / "handouts")
    laptop = CloudEmulator(tmp_path / "laptop.db").start()
    try:
        picker = SeatPicker(laptop)
        assert picker.seats is None  # no class here: the path box
        picker.path.value = str(tmp_path / "nope.json")
        picker.use_button.click()
        assert "cannot read a seat file" in picker.status.value and saved_seat() is None
        picker.path.value = "07"
        picker.use_button.click()
        assert "has no class" in picker.status.value
        picker.path.value = str(tmp_path / "handouts" / "seat-01.json")
        picker.use_button.click()
        assert "seat 01 (from seat-01.json)" in picker.status.value
        ep = laptop.write_endpoints(tmp_path / "laptop.json")
        with open_lesson(cloud=str(ep)) as lab:
            assert lab.identity.device_name == room.cards[0].device_name
    finally:
        laptop.stop()
