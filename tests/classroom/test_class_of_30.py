"""The issue's bar: a class of 30 runs lesson 02 against one emulator with no kick, and
the instructor's view shows all 30 at "published".

One room's emulator (``airlab cloud serve --host 0.0.0.0``), ``airlab class create
--students 30``, then 30 students at once, each in a session of their own (a thread
with its own simulated module), running lesson 02's own code cells with the first cell
as the handout says (``open_lesson(seat="NN")``).  The figure cell is left out
(pyplot is not thread-safe); the 30-kernel run of the whole notebook is
``benchmarks/class_of_30.py``.  The instructor's view is ``airlab class watch --once
--json``, run as a teacher runs it.  Then two people on one seat: the view shows the
kick, so "no kick" above is a check that can fail.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

from tests.classroom.conftest import ROOT, Served, airlab

LESSON = ROOT / "notebooks" / "02_direct_mqtt.ipynb"
STUDENTS = 30


def lesson_cells(seat: str) -> list[str]:
    cells = json.loads(LESSON.read_text(encoding="utf-8"))["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    code = [c for c in code if "plt." not in c]  # the figure: pyplot is process-global
    first = code[0]
    assert "lab = open_lesson()" in first
    code[0] = first.replace("open_lesson()", f"open_lesson(seat={seat!r})")
    return code


def student(seat: str, errors: dict[str, BaseException], labs: list[object]) -> None:
    namespace: dict[str, object] = {"__name__": f"student_{seat}"}
    try:
        for cell in lesson_cells(seat):
            exec(compile(cell, f"<lesson 02, seat {seat}>", "exec"), namespace)
        labs.append(namespace["lab"])
    except BaseException as exc:  # reported with the seat by the test
        errors[seat] = exc


def watch(served: Served) -> dict:
    out = airlab("class", "watch", "--db", str(served.db), "--endpoints-file",
                 str(served.endpoints_file), "--once", "--json").stdout  # fmt: skip
    return json.loads(out)


def watch_until(served: Served, ready, timeout: float = 20.0) -> dict:  # type: ignore[no-untyped-def]
    """The view once ``ready(view)``: the kicked session's log line is written when the
    old connection has closed, a moment after the new login's CONNACK."""
    deadline = time.monotonic() + timeout
    while True:
        view = watch(served)
        if ready(view) or time.monotonic() > deadline:
            return view


def test_thirty_students_run_lesson_02_with_no_kick(
    served: Served, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    made = airlab("class", "create", "--db", str(served.db), "--students", str(STUDENTS),
                  "--out", str(tmp_path / "handouts"), "--endpoints-file",
                  str(served.endpoints_file))  # fmt: skip
    assert f"{STUDENTS} students" in made.stdout
    assert not re.search(r"[0-9a-f]{32}", made.stdout), "a DeviceSecret on the terminal"
    monkeypatch.setenv("AIRLAB_CLOUD", str(served.endpoints_file))
    monkeypatch.chdir(ROOT / "notebooks")  # the lesson reads ../data like in JupyterLab
    monkeypatch.setenv("MPLBACKEND", "Agg")

    errors: dict[str, BaseException] = {}
    labs: list[object] = []
    seats = [f"{n:02d}" for n in range(1, STUDENTS + 1)]
    threads = [
        threading.Thread(target=student, args=(seat, errors, labs), name=f"seat-{seat}")
        for seat in seats
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
        assert not any(t.is_alive() for t in threads), "a student did not finish in 240 s"
        assert not errors, {seat: repr(exc) for seat, exc in errors.items()}
        devices = {lab.identity.device_name for lab in labs}  # type: ignore[attr-defined]
        assert len(devices) == STUDENTS, "two students shared a device"

        view = watch(served)
        counts = view["counts"]
        assert counts["seats"] == STUDENTS
        assert counts["published"] == STUDENTS, view
        assert counts["logged in"] == STUDENTS and counts["online"] == STUDENTS
        assert counts["kicked"] == 0, [s for s in view["seats"] if s["kicked_count"]]
        assert all(s["refusal"] is None for s in view["seats"])

        # two people on seat 07: the second login kicks the first, and the view says so
        from airlab.lesson import open_lesson
        from airlab.session import recipes

        intruder = open_lesson(seat="07")
        try:
            recipes.attach(intruder.session, apn="CMIOT")
            recipes.direct_mqtt(intruder.session, **intruder.identity.device())
            view = watch_until(served, lambda v: v["counts"]["kicked"] > 0)
        finally:
            intruder.close()
        seat07 = next(s for s in view["seats"] if s["seat"] == "07")
        assert view["counts"]["kicked"] == 1 and seat07["kicked_count"] == 1
        assert "Kicked by the same device" in (seat07["refusal"] or "")
    finally:
        for lab in labs:
            lab.close()  # type: ignore[attr-defined]
