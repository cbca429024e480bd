"""Every lesson survives Kernel → "Run All" twice in a row (one kernel, as in JupyterLab),
beside a running cloud emulator whose registry already holds history — and both runs print
what the shipped notebook shows (its outputs, with nbval's sanitising; cells tagged
``nbval-ignore-output`` or ``nbval-skip`` are not compared).

nbval checks one run's outputs against an emulator of the lesson's own; this checks what
a student does next — run everything again — in a room where ``make lab`` is running and
its registry is old: the tutorial's device has been online, has published, has been
refused.  A lesson that read that history, or shared a login with it, fails here.  A cell
tagged ``raises-exception`` may raise (it shows an error on purpose); any other error
fails, naming the lesson, the run and the cell.
"""

from __future__ import annotations

import configparser
import copy
import difflib
import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import airlab
from airlab.cloud import CloudEmulator
from airlab.cloud.discovery import ENDPOINTS_ENV
from airlab.lesson import open_lesson
from airlab.session import recipes

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LESSONS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) + sorted(
    (NOTEBOOKS / "instructor").glob("*.ipynb")
)
NOT_COMPARED = {"nbval-ignore-output", "nbval-skip", "raises-exception"}


def _sanitizers() -> list[tuple[re.Pattern[str], str]]:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(Path(__file__).with_name("nbval_sanitize.cfg"), encoding="utf-8")
    return [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()]


def _shown(cell: nbformat.NotebookNode, rules: list[tuple[re.Pattern[str], str]]) -> str:
    """What a student reads under a cell: stdout and plain-text results, sanitised."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            parts.append("".join(out.get("text", "")))
        elif out.get("output_type") in ("execute_result", "display_data"):
            parts.append("".join(out.get("data", {}).get("text/plain", "")))
    text = "".join(parts)
    for pattern, replacement in rules:
        text = pattern.sub(replacement, text)
    return text


def _age(endpoints: Path) -> None:
    """History on the shared tutorial device: online, published, refused."""
    with open_lesson(cloud=str(endpoints), own_device=False) as old:
        recipes.attach(old.session)
        bad = dict(old.identity.device(), device_secret="0" * 32)
        with pytest.raises(airlab.CloudRejected):
            recipes.direct_mqtt(old.session, **bad)
        recipes.direct_mqtt(old.session, **old.identity.device())
        post = '{"id":"1","params":{"humidity":40},"method":"thing.event.property.post"}'
        recipes.publish(old.session, old.identity.system_topic("thing/event/property/post"),
                        post, qos=1)  # fmt: skip
        recipes.publish(old.session, old.identity.topic("user/update"), "old", qos=1)
        recipes.disconnect(old.session)


@pytest.fixture(scope="module")
def running_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("old-lab")
    with CloudEmulator(db=tmp / "lab.db", fixture="tutorial") as emu:
        endpoints = emu.write_endpoints(tmp / "cloud-endpoints.json")
        _age(endpoints)
        yield endpoints


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_run_all_twice(path: Path, running_lab: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENDPOINTS_ENV, str(running_lab))  # the kernel finds the "make lab"
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    twice = nbformat.v4.new_notebook(metadata=nb.metadata)
    for run in (1, 2):
        for i, cell in enumerate(code):
            copied = copy.deepcopy(cell)
            copied.outputs = []
            copied.metadata["airlab_where"] = f"run {run}, code cell {i + 1}"
            twice.cells.append(copied)
    client = NotebookClient(
        twice,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        allow_error_names=[],
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        where = next(
            (
                c.metadata.get("airlab_where")
                for c in twice.cells
                if any(o.get("output_type") == "error" for o in c.get("outputs", []))
                and "raises-exception" not in c.metadata.get("tags", [])
            ),
            "?",
        )
        pytest.fail(f"{path.name}: {where} failed:\n{str(exc)[-1500:]}")
    rules = _sanitizers()
    differences = []
    for k, ran in enumerate(twice.cells):
        shipped = code[k % len(code)]
        if NOT_COMPARED & set(shipped.metadata.get("tags", [])):
            continue
        want, got = _shown(shipped, rules), _shown(ran, rules)
        if want != got:
            diff = "\n".join(difflib.unified_diff(want.splitlines(), got.splitlines(), lineterm=""))
            differences.append(f"{ran.metadata['airlab_where']}:\n{diff[:800]}")
    assert not differences, f"{path.name} prints something else:\n" + "\n".join(differences[:3])
    first_cell = "".join(o.get("text", "") for o in twice.cells[0].get("outputs", []))
    if "open_lesson" in "".join(code[0].source) and "print(lab)" in "".join(code[0].source):
        assert "the running cloud emulator" in first_cell, first_cell
