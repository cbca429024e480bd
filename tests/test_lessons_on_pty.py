"""The method lessons on a serial port that is not ``airsim://``: a pty served by
``airlab sim serve --pty`` and a running cloud emulator, the bench setting of
``open_lesson`` (``AIRLAB_PORT`` / ``AIRLAB_CLOUD``).  The same notebook code must run
there: faults are made from the cloud side (the 5 s CONNECT window, refusals), and the one
section that needs the radio (a lost PDP context) says it is skipped.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from airlab.cloud import CloudEmulator

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ON_A_PTY = [
    "01_http_auth_then_mqtt",
    "02_direct_mqtt",
    "03_dynamic_registration",
    "04_publish_subscribe",
    "06_troubleshooting",
    "11_console_side",
]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("pty-bench")
    with CloudEmulator(db=tmp / "lab.db", fixture="tutorial") as emu:
        endpoints = emu.write_endpoints(tmp / "ep.json")
        link = tmp / "air780ep.pty"
        proc = subprocess.Popen(
            [sys.executable, "-m", "airlab", "sim", "serve", "--cloud", str(endpoints),
             "--pty", str(link)],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        banner = proc.stdout.readline()  # the server says where it listens
        assert str(link) in banner, banner
        try:
            yield {"AIRLAB_PORT": str(link), "AIRLAB_CLOUD": str(endpoints)}
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(10)


def _run(name: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the kernel inherits them
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()  # raises CellExecutionError naming the cell
    return nb


def _stdout(nb: nbformat.NotebookNode) -> str:
    return "".join(
        "".join(o.get("text", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.get("output_type") == "stream" and o.get("name") == "stdout"
    )


@pytest.mark.parametrize("name", ON_A_PTY)
def test_lesson_runs_on_a_pty(
    name: str, bench: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = _run(name, bench, monkeypatch)
    text = _stdout(nb)
    assert text.startswith("bench: Air780EP on " + bench["AIRLAB_PORT"]), text[:200]
    if name == "06_troubleshooting":
        assert "module printed: CLOSED after 5 s of silence" in text  # the cloud's window
        assert "+CME ERROR: 767" in text and "['OK', 'ERROR']" in text
        assert "skipped: a real module (or a pty) cannot be told to lose its PDP" in text
