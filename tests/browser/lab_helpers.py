"""Start ``airlab lab`` as a user does, in a temporary home, for the browser tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("AIRLAB_TEST_ARTIFACTS") or REPO / "build" / "test-artifacts")


@dataclass(frozen=True)
class RunningLab:
    url: str
    token: str
    base: Path  # the temporary home
    notebooks: Path
    db: Path
    endpoints_file: Path
    env: dict[str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_listening(stream: IO[str], port: int, what: str, timeout: float) -> None:
    """Read ``stream`` (JupyterLab's log) until it says it listens on ``port``; then keep
    the pipe drained in a thread.  Fails with the log's tail if it stops or is late."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    for line in stream:  # JupyterLab says when it listens
        seen.append(line)
        if f"127.0.0.1:{port}/lab" in line:
            break
        assert time.monotonic() < deadline, f"{what} did not start within {timeout:g} s"
    else:
        raise AssertionError(f"{what} stopped:\n" + "".join(seen[-15:]))
    threading.Thread(target=stream.read, daemon=True).start()


@contextlib.contextmanager
def airlab_lab(base: Path, notebooks: Path, token: str) -> Iterator[RunningLab]:
    """``airlab lab --no-browser`` on a free port over ``notebooks``, its HOME, XDG and
    Jupyter folders, registry and endpoints file all under ``base``."""
    env = dict(os.environ)
    for var in ("HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME",
                "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR",
                "MPLCONFIGDIR"):  # fmt: skip
        env[var] = str(base / var.lower())
        Path(env[var]).mkdir(exist_ok=True)
    for var in ("AIRLAB_CLOUD_ENDPOINTS", "AIRLAB_CLOUD", "AIRLAB_SEAT", "AIRLAB_CLASS"):
        env.pop(var, None)
    env["JUPYTER_TOKEN"] = token
    db, endpoints = base / "lab.db", base / "endpoints.json"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "airlab", "lab", "--no-browser", f"--port={port}",
         f"--notebooks={notebooks}", f"--endpoints-file={endpoints}", f"--cloud-db={db}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=env, cwd=base,
    )  # fmt: skip
    assert proc.stdout is not None
    wait_until_listening(proc.stdout, port, "airlab lab", timeout=90)
    try:
        yield RunningLab(f"http://127.0.0.1:{port}", token, base, notebooks, db, endpoints, env)
    finally:
        proc.terminate()  # airlab lab stops JupyterLab, then the emulator
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def run_all(tab, url: str) -> None:  # type: ignore[no-untyped-def]
    """Open ``url`` (a notebook) and run all its cells from JupyterLab's Run menu."""
    tab.goto(url)
    tab.wait_for_selector(".jp-NotebookPanel .jp-Cell", state="attached")
    tab.wait_for_selector("#jp-main-statusbar >> text=Idle")
    tab.click(".lm-MenuBar-itemLabel:text-is('Run')")
    tab.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
    tab.wait_for_function(
        """() => {
          const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
          return p.length > 0 && p.every(e => /\\[\\d+\\]/.test(e.textContent));
        }"""
    )
    tab.wait_for_selector("#jp-main-statusbar >> text=Idle")


def shot(page, name: str, selector: str | None = None) -> Path:  # type: ignore[no-untyped-def]
    """A screenshot kept as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if selector:
        page.locator(selector).first.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path), full_page=False)
    return path
