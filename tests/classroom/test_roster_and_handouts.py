"""Rosters as schools export them, classes in the registry, handouts on paper and disk."""

from __future__ import annotations

import csv
import json
import re
import stat
from pathlib import Path

import pytest

from airlab.classroom import (
    create_class,
    numbered_seats,
    parse_roster,
    read_roster,
    write_handouts,
)
from airlab.cloud.names import luhn_ok
from airlab.cloud.registry import Registry
from airlab.errors import UsageError


def test_numbered_seats_pad_to_the_class_size() -> None:
    assert [s.seat for s in numbered_seats(2)] == ["01", "02"]
    assert numbered_seats(120)[0].seat == "001" and numbered_seats(120)[-1].seat == "120"
    for bad in (0, -1, 501, True, "30"):
        with pytest.raises(UsageError, match="students"):
            numbered_seats(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name\nAna\nBo\n", [("01", "Ana"), ("02", "Bo")]),
        ("Ana\nBo\n", [("01", "Ana"), ("02", "Bo")]),
        ("s1,Ana\ns2,Bo\n", [("s1", "Ana"), ("s2", "Bo")]),
        (
            "\ufeff学号,姓名\n2024001,张三\n2024002,李四\n",
            [("2024001", "张三"), ("2024002", "李四")],
        ),
        ("id;name\nA-1;Ana\nA-2;Bo\n", [("A-1", "Ana"), ("A-2", "Bo")]),
        ("Name,Seat\nAna,07\n\nBo,08\n", [("07", "Ana"), ("08", "Bo")]),
    ],
)
def test_rosters_with_and_without_a_header(text: str, expected: list[tuple[str, str]]) -> None:
    assert [(s.seat, s.label) for s in parse_roster(text)] == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no rows"),
        ("name\n", "no students"),
        ("id,name\n../x,Ana\n", "line 2: '../x' is not a seat id"),
        ("id,name\na b,Ana\n", "is not a seat id"),
        ("id,name\n07,Ana\n07,Bo\n", "line 3: seat '07' already on line 2"),
        ("name\nAna\x1b[2J\n", "control characters"),
        ("name\n" + "x" * 65 + "\n", "longer than 64"),
    ],
)
def test_bad_rosters_say_which_line(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_roster(text)


def test_a_gb18030_roster_from_excel(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes("学号,姓名\n01,王小明\n".encode("gb18030"))
    assert [(s.seat, s.label) for s in read_roster(path)] == [("01", "王小明")]
    with pytest.raises(UsageError, match="cannot read"):
        read_roster(tmp_path / "missing.csv")


def test_a_class_is_a_product_like_the_tutorials_and_a_device_per_seat() -> None:
    with Registry() as reg:
        room = create_class(reg, parse_roster("id,name\nA1,Ana\nB2,Bo\n"), name="room-1")
        product = reg.get_product(room.product_key)
        assert product is not None and product.dynamic_registration
        assert len(room.product_key) == 11  # as long as k1hipglLdjU: lessons count bytes
        names = [c.device_name for c in room.cards]
        assert len(set(names)) == 2 and all(len(n) == 15 and luhn_ok(n) for n in names)
        assert [(s.seat, s.label, s.device_name) for s in reg.seats("room-1")] == [
            ("A1", "Ana", names[0]), ("B2", "Bo", names[1]),
        ]  # fmt: skip
        assert [t.template for t in reg.topic_classes(room.product_key)][-1].endswith("user/get")
        # the same name again: refused, and nothing half-made is left
        before = len(reg.products())
        with pytest.raises(UsageError, match="already exists"):
            create_class(reg, numbered_seats(2), name="room-1")
        assert len(reg.products()) == before
        with pytest.raises(UsageError, match="class name"):
            create_class(reg, numbered_seats(2), name="room 1; DROP TABLE devices")


def test_handouts_are_private_printable_and_escape_names(tmp_path: Path) -> None:
    with Registry() as reg:
        room = create_class(reg, parse_roster("name\n<script>alert(1)</script>\nBo\n"), name="c")
    out = tmp_path / "handouts"
    ep = {"mqtt": "192.0.2.7:1883", "mqtts": "192.0.2.7:8883", "https": "https://192.0.2.7:8443"}
    files = write_handouts(room, out, ep)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
    index = (out / "index.html").read_text(encoding="utf-8")
    assert index.count('class="page"') == 2 and "break-after: page" in index
    assert "<script>" not in index and "&lt;script&gt;" in index
    card = room.cards[0]
    page = (out / "seat-01.html").read_text(encoding="utf-8")
    for value in (
        card.product_key,
        card.device_name,
        card.device_secret,
        card.product_secret,
        "192.0.2.7:1883",
        'open_lesson(seat="01")',
        "AIRLAB_SEAT=01",
        "seat-01.json",
    ):
        assert value in page  # fmt: skip
    assert room.cards[1].device_secret not in page  # one student's page has one secret
    seat = json.loads((out / "seat-02.json").read_text())
    assert seat["airlab_seat"] == 1 and seat["device_secret"] == room.cards[1].device_secret
    with open(out / "roster.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["seat", "name", "product_key", "device_name"] and len(rows) == 3
    text = (out / "roster.csv").read_text()
    assert card.device_secret not in text and card.product_secret not in text
