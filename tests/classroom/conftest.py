"""A running ``airlab cloud serve`` for a classroom (``--host 0.0.0.0``, as a room's
emulator), its registry file and endpoints file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


@dataclass
class Served:
    db: Path
    endpoints_file: Path
    endpoints: dict
    proc: subprocess.Popen[bytes]
    log: Path


def airlab(*argv: str, check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run the ``airlab`` command line as a user does."""
    kw.setdefault("cwd", ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "airlab", *argv], capture_output=True, text=True, timeout=120,
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    db, ep_file, log = tmp_path / "class.db", tmp_path / "ep.json", tmp_path / "serve.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airlab", "cloud", "serve", "--db", str(db),
             "--endpoints-file", str(ep_file), "--host", "0.0.0.0", "--advertise", "127.0.0.1"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ep_file.exists():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no endpoints within {START_TIMEOUT} s"
            time.sleep(0.02)  # a file another process writes: polled with a deadline
        yield Served(db, ep_file, json.loads(ep_file.read_text()), proc, log)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
