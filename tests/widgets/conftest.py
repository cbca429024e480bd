"""Fixtures: a cloud emulator (tutorial fixture) and an airsim:// session on it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import airlab  # noqa: F401  (registers airsim://)
from airlab.session import ModemSession

pytest.importorskip("ipywidgets")


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    from airlab.cloud import CloudEmulator

    with CloudEmulator(fixture="tutorial") as emu:
        yield emu, emu.write_endpoints(tmp_path / "endpoints.json")


@pytest.fixture
def session(cloud: tuple[Any, Path]) -> Iterator[ModemSession]:
    s = ModemSession(f"airsim://test?profile=instant&cloud={cloud[1]}")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def widget_threads() -> Iterator[None]:
    """Fails the test when a widget thread outlives it."""
    yield
    left = [t.name for t in threading.enumerate() if t.name.startswith("airlab-") and
            t.name.split("-")[1] in ("console", "status", "steps", "widget")]  # fmt: skip
    assert not left, left
