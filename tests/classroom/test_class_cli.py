"""``airlab class …`` as a teacher types it: create, list, handouts, watch, and the
errors of each (exit 2, one line naming the option)."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from tests.classroom.conftest import airlab


def test_create_list_handouts_and_watch(tmp_path: Path) -> None:
    db, out = tmp_path / "class.db", tmp_path / "hand"
    roster = tmp_path / "roster.csv"
    roster.write_text("学号,姓名\n2024001,张三\n2024002,Ana\n", encoding="utf-8-sig")
    made = airlab("class", "create", "--db", str(db), "--roster", str(roster), "--out", str(out),
                  "--name", "cs101")  # fmt: skip
    assert "class 'cs101'" in made.stdout and "2 students" in made.stdout
    assert 'open_lesson(seat="2024001")' in made.stdout
    assert not re.search(r"\b[0-9a-f]{32}\b", made.stdout)  # no DeviceSecret on screen
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert (out / "seat-2024001.json").is_file() and (out / "index.html").is_file()

    listed = airlab("class", "list", "--db", str(db)).stdout
    assert "cs101: product c1" in listed and "张三" in listed and "2024002" in listed

    again = tmp_path / "again"
    airlab("class", "handouts", "--db", str(db), "--out", str(again))
    assert (again / "seat-2024001.json").read_text() == (out / "seat-2024001.json").read_text()

    text = airlab("class", "watch", "--db", str(db), "--once").stdout
    assert "class cs101" in text and "0 online" in text and "张三" in text
    from airlab.cli.classroom import _width

    rows = [line for line in text.splitlines() if line.startswith(("2024001", "2024002"))]
    # the online mark sits in the same terminal column for 张三 (wide) and Ana
    assert len({_width(line[: line.index("·")]) for line in rows}) == 1, rows
    view = json.loads(airlab("class", "watch", "--db", str(db), "--once", "--json").stdout)
    assert [s["seat"] for s in view["seats"]] == ["2024001", "2024002"]
    assert view["counts"]["seats"] == 2 and view["refresh_ms"] >= 0


@pytest.mark.parametrize(
    ("argv", "option", "message"),
    [
        (["create", "--out", "h"], "students", "give --students N or --roster CSV"),
        (["create", "--students", "x", "--out", "h"], "students", "whole number"),
        (["create", "--students", "0", "--out", "h"], "students", "from 1 to 500"),
        (["create", "--students", "3", "--out", "h", "--name", "a b"], "name", "class name"),
        (["create", "--students", "2", "--out", "h", "--roster", "r.csv"], "students", "roster"),
        (["create", "--roster", "missing.csv", "--out", "h"], "roster", "cannot read"),
        (["watch", "--once"], "db", "no registry"),
        (["watch", "--once", "--interval", "0"], "interval", "seconds"),
    ],
)
def test_bad_input_is_one_line_naming_the_option(
    tmp_path: Path, argv: list[str], option: str, message: str
) -> None:
    (tmp_path / "r.csv").write_text("name\nAna\n")
    db = tmp_path / ("missing.db" if argv[0] == "watch" else "c.db")
    if argv[0] == "watch" and "--interval" in argv:
        airlab("class", "create", "--db", str(db), "--students", "1", "--out", str(tmp_path / "h"))
    result = airlab("class", *argv, "--db", str(db), check=False, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"airlab: error: --{option}:"), lines
    assert message in lines[0]
