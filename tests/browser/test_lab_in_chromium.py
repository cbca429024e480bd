"""The lessons as a student meets them: JupyterLab in a real Chromium (Debian's
``chromium`` driven by Playwright).

* the signing calculator's copy button really puts the value on the clipboard;
* a lesson survives Run All twice from JupyterLab's own menu, its widgets alive after it.

Skipped, with the reason, where Chromium or Playwright is missing (``.ci/run`` installs
Chromium; Playwright comes with the ``test`` extra).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.lab_helpers import free_port, wait_until_listening

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TOKEN = "airlab-browser-test"
#: The widget-heavy lessons, run from JupyterLab's menu (the others: tests/test_lessons_twice.py).
IN_THE_BROWSER = ("07_console", "08_type_the_tutorial")


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("lab")
    for name in (f"{n}.ipynb" for n in IN_THE_BROWSER):
        shutil.copy(NOTEBOOKS / name, root / name)
    (root.parent / "data").exists() or shutil.copytree(
        NOTEBOOKS.parent / "data", root.parent / "data"
    )
    port = free_port()
    env = dict(os.environ)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        env.setdefault(var, str(tmp_path_factory.mktemp(var.lower())))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={root}", "--LabApp.news_url=", "--allow-root"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    assert proc.stderr is not None
    wait_until_listening(proc.stderr, port, "JupyterLab", timeout=60)
    try:
        yield url, root
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def page(jupyterlab: tuple[str, Path]) -> Iterator[object]:
    url, _ = jupyterlab
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
        tab = context.new_page()
        tab.set_default_timeout(60_000)
        try:
            yield tab
        finally:
            browser.close()


def _open(page, url: str, name: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{url}/lab/tree/{name}?token={TOKEN}&reset")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", state="attached")
    page.wait_for_selector("#jp-main-statusbar >> text=Idle")


def _run_all(page) -> None:  # type: ignore[no-untyped-def]
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")  # the menu bar's Run menu
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
    # every code cell has an execution count, and the kernel is idle again
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }"""
    )
    page.wait_for_selector("#jp-main-statusbar >> text=Idle")


def _errors(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.eval_on_selector_all(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
        "els => els.map(e => e.textContent).filter(t => /Traceback|Error/.test(t))",
    )


def _new_notebook(root: Path, name: str, sources: list[str]) -> None:
    cells = [
        {"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
        for s in sources
    ]
    nb = {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip
    (root / name).write_text(json.dumps(nb), encoding="utf-8")


def test_copy_button_puts_the_value_on_the_clipboard(page, jupyterlab) -> None:  # type: ignore[no-untyped-def]
    url, root = jupyterlab
    _new_notebook(
        root,
        "copy.ipynb",
        [
            "from airlab.lesson import Identity\n"
            "from airlab.widgets import SigningCalculator\n"
            "calc = SigningCalculator(Identity.tutorial())\ncalc",
        ],
    )
    _open(page, url, "copy.ipynb")
    _run_all(page)
    button = page.locator("button.airlab-copy", has_text=re.compile("password"))
    button.first.click()
    page.wait_for_function("() => document.querySelector('button.airlab-copy') !== null")
    page.locator("button.airlab-copy", has_text="copied").first.wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == "0f655b12adf519b9a7a2b0a990f398b6"  # the tutorial's MQTT password


@pytest.mark.parametrize("lesson", IN_THE_BROWSER)
def test_lesson_survives_run_all_twice(page, jupyterlab, lesson: str) -> None:  # type: ignore[no-untyped-def]
    url, _ = jupyterlab
    _open(page, url, f"{lesson}.ipynb")
    for _ in range(2):
        _run_all(page)
        assert _errors(page) == []
    # its console is alive after Run All: type a command, see one more line in its log
    answers = page.locator(".jp-NotebookPanel :text('+CGSN')")
    before = answers.count()
    box = page.locator(".jp-NotebookPanel .widget-text input").first
    box.fill("AT+CGSN")
    box.press("Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('.jp-NotebookPanel').length > 0 && "
        "[...document.querySelectorAll('.jp-NotebookPanel *')].filter("
        "e => e.childElementCount === 0 && e.textContent.includes('AT+CGSN')).length > n",
        arg=before,
    )
