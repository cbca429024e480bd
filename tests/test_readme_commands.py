"""Every command in README.md runs as printed, after what ``make lab`` starts.

The commands are read from the README's ```sh blocks (a line ending in ``\\`` continues
on the next; comment lines are dropped) and its ```python blocks, and each runs through
``bash -c`` exactly as printed, in a fresh "clone": a temporary folder holding symlinks
to this repository's ``.venv`` and ``data/`` (the commands write ``out.jsonl``,
``log.csv`` ... there, never into the repository), with ``HOME`` a temporary folder and
no ``XDG_*``/``AIRLAB_*`` variables, as on a fresh machine.

Before them runs what ``make lab`` (``airlab lab``) starts: the cloud emulator in the
background on its defaults (``~/.local/share/airlab/lab.db``,
``~/.cache/airlab/cloud-endpoints.json``), by the same function ``airlab lab`` uses.
``make lab`` and ``make test`` themselves are skipped: ``tests/cli/test_lab_cli.py``
covers ``airlab lab``, and ``make test`` is this suite.

Commands that run until Ctrl-C (``cloud serve``, ``sim serve``, ``log --follow``) are
started, awaited until their ready line, checked (a ``sim serve --tcp`` answers ``AT``
with ``OK``, a ``--pty`` too, a served emulator answers on its endpoints), then stopped
with SIGINT and must exit 0. A fixed port of the README that is already taken on this
machine skips that one command, saying why.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
WAIT = 60.0
RUN_TIMEOUT = 120.0

#: Commands the README documents as ending non-zero: (text in the command, exit code, why).
EXPECTED_EXIT = [
    ("capture check data/broken_captures/", 1, "README: 'exit 1 if any' warning is found"),
]
#: Commands ``make`` runs (tested elsewhere, see the module docstring).
SKIPPED_PREFIXES = ("make ",)
#: Commands that run until Ctrl-C: (text in the command, the line that says it is ready).
FOREVER = [
    (" cloud serve", "Ctrl-C stops it."),
    (" sim serve", "airlab sim: Air780EP"),
    (" log --follow", "time (UTC)"),
    (" class watch", " · product "),
]

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Snippet:
    kind: str  # "sh" or "python"
    text: str
    line: int  # where it starts in README.md

    @property
    def id(self) -> str:
        first = self.text.splitlines()[0]
        return f"L{self.line}:{first[:60]}"


def readme_snippets(text: str | None = None) -> list[Snippet]:
    """The README's commands: one per ```sh command (continuations joined, comments
    dropped) and one per ```python block.

    >>> [s.text for s in readme_snippets("```sh\\n# c\\na \\\\\\n  b  # x\\n\\nc\\n```\\n")]
    ['a \\\\\\n  b  # x', 'c']
    """
    text = README.read_text(encoding="utf-8") if text is None else text
    found: list[Snippet] = []
    for match in re.finditer(r"^```(sh|python)\n(.*?)^```", text, re.M | re.S):
        kind, body = match.group(1), match.group(2)
        start = text.count("\n", 0, match.start(2)) + 1
        if kind == "python":
            found.append(Snippet(kind, body.rstrip("\n"), start))
            continue
        lines = body.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if not line.strip() or line.lstrip().startswith("#"):
                i += 1
                continue
            first = i
            command = [line]
            while command[-1].rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                command.append(lines[i])
            found.append(Snippet(kind, "\n".join(command), start + first))
            i += 1
    return found


SNIPPETS = readme_snippets()


def test_the_readme_has_the_known_commands() -> None:
    texts = [s.text for s in SNIPPETS]
    assert any("sim serve --tcp" in t for t in texts) and any("cloud reset" in t for t in texts)
    assert any(s.kind == "python" for s in SNIPPETS)
    assert not [t for t in texts if "[--" in t], "optional flags printed as [--x] are not runnable"


# -- a fresh machine after `make lab` ---------------------------------------------------


@dataclass
class Lab:
    work: Path  # the "clone": cwd of every command
    env: dict[str, str]
    endpoints_file: Path
    db: Path


def _fresh_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("XDG_", "AIRLAB_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env["HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _venv_into(work: Path) -> None:
    """``.venv`` in the clone: this repository's, or (tests run by another interpreter)
    a small one whose ``bin/airlab`` and ``bin/python`` are this interpreter."""
    venv = ROOT / ".venv"
    if (venv / "bin" / "airlab").exists() and Path(sys.prefix).resolve() == venv.resolve():
        (work / ".venv").symlink_to(venv)
        return
    bin_dir = work / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    script = bin_dir / "airlab"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m airlab "$@"\n')
    script.chmod(0o755)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    from airlab.cli.lab import start_cloud_service, user_data_dir
    from airlab.cloud.discovery import default_endpoints_path

    home = tmp_path_factory.mktemp("home")
    work = tmp_path_factory.mktemp("clone")
    _venv_into(work)
    (work / "data").symlink_to(ROOT / "data")
    env = _fresh_env(home)
    with pytest.MonkeyPatch.context() as mp:  # what `make lab` computes on that machine
        for name in [k for k in os.environ if k.startswith(("XDG_", "AIRLAB_"))]:
            mp.delenv(name)
        mp.setenv("HOME", str(home))
        endpoints_file, db = default_endpoints_path(), user_data_dir() / "lab.db"
        service = start_cloud_service(endpoints_file, db)  # as `airlab lab` does
    assert service.process is not None and str(home) in str(endpoints_file)
    try:
        yield Lab(work, env, endpoints_file, db)
    finally:
        service.stop()


# -- running one command ------------------------------------------------------------------


def _expected_exit(command: str) -> int:
    for text, code, _why in EXPECTED_EXIT:
        if text in command:
            return code
    return 0


def _fixed_tcp_port(command: str) -> int | None:
    found = re.search(r"--tcp (\d+)", command)
    return int(found.group(1)) if found and found.group(1) != "0" else None


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class _Lines:
    """A child's stdout lines through a queue (reads never block the test)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, text: str, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {text!r} within {timeout} s: {self.seen}") from None
            if line is None:
                raise AssertionError(f"it ended before {text!r}: {self.seen}")
            self.seen.append(line)
            if text in line:
                return line

    def rest(self, timeout: float = WAIT) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return self.seen
            if line is None:
                return self.seen
            self.seen.append(line)


def _at_ok(read_write: tuple, timeout: float = 10.0) -> bytes:
    """Send ``AT\\r\\n`` and read until ``OK``; returns what came back."""
    read, write = read_write
    write(b"AT\r\n")
    got = b""
    deadline = time.monotonic() + timeout
    while b"OK\r\n" not in got:
        assert time.monotonic() < deadline, f"no OK to AT within {timeout} s: {got!r}"
        got += read()
    return got


def _check_running(lab: Lab, command: str, lines: _Lines) -> None:
    """The started command works: what each kind of long-running command offers."""
    if " sim serve" in command:
        assert any(f"cloud emulator of {lab.endpoints_file}" in s for s in lines.seen), lines.seen
        port = _fixed_tcp_port(command)
        if port is not None:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.settimeout(10)
                assert b"OK" in _at_ok((lambda: sock.recv(256), sock.sendall))
        pty = re.search(r"--pty (\S+)", command)
        if pty is not None:
            import serial

            with serial.Serial(pty.group(1), timeout=0.2) as port_:
                assert b"OK" in _at_ok((lambda: port_.read(256), port_.write))
    elif " class watch" in command:
        assert any(re.search(r"\d+ seats · \d+ online", s) for s in lines.seen), lines.seen
    elif " cloud serve" in command:
        from airlab.cloud.discovery import RemoteCloud, load_endpoints

        named = re.search(r"--endpoints-file (\S+)", command)
        assert named is not None, "a second emulator needs its own --endpoints-file"
        remote = RemoteCloud(load_endpoints(lab.work / named.group(1)))
        try:
            assert remote.status()["pid"] > 0
        finally:
            remote.close()


def _run_forever_kind(lab: Lab, command: str, ready: str) -> None:
    port = _fixed_tcp_port(command)
    if port is not None and _port_busy(port):
        pytest.skip(f"port {port} of the README's command is taken on this machine")
    proc = subprocess.Popen(
        ["bash", "-c", command], cwd=lab.work, env=lab.env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    lines = _Lines(proc)
    try:
        lines.until(ready)
        _check_running(lab, command, lines)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole group
        try:
            code = proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    output = "\n".join(lines.rest())
    assert code == 0, f"exit {code} after Ctrl-C:\n{output}"
    assert "Traceback" not in output, output


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.id for s in SNIPPETS])
def test_readme_command_runs_as_printed(lab: Lab, snippet: Snippet) -> None:
    if snippet.kind == "python":
        python = lab.work / ".venv" / "bin" / "python"
        done = subprocess.run(
            [str(python), "-c", snippet.text], cwd=lab.work, env=lab.env,
            capture_output=True, text=True, timeout=RUN_TIMEOUT,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "OK" in done.stdout, done.stdout
        return
    command = snippet.text
    if command.startswith(SKIPPED_PREFIXES):
        pytest.skip("make targets are tested elsewhere (test_lab_cli.py; make test is this suite)")
    for text, ready in FOREVER:
        if text in command:
            _run_forever_kind(lab, command, ready)
            return
    done = subprocess.run(
        ["bash", "-c", command], cwd=lab.work, env=lab.env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    expected = _expected_exit(command)
    assert done.returncode == expected, (
        f"exit {done.returncode} (expected {expected}):\n{done.stdout[-2000:]}\n{done.stderr}"
    )
    assert "Traceback" not in done.stderr, done.stderr
