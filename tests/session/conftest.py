"""Fixtures: a real cloud emulator + airsim:// sessions, and scripted TCP modems."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import airlab  # noqa: F401  (registers airsim://)
from airlab.session import ModemSession
from tests.session.helpers import Script, ScriptedModem


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[tuple[object, Path]]:
    from airlab.cloud import CloudEmulator

    with CloudEmulator(fixture="tutorial") as emu:
        path = emu.write_endpoints(tmp_path / "endpoints.json")
        yield emu, path


@pytest.fixture
def sim_url(cloud: tuple[object, Path]) -> str:
    return f"airsim://test?profile=instant&cloud={cloud[1]}"


@pytest.fixture
def session(sim_url: str, tmp_path: Path) -> Iterator[ModemSession]:
    s = ModemSession(sim_url, transcript=tmp_path / "session.jsonl")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def scripted() -> Iterator[Callable[[Script], ScriptedModem]]:
    made: list[ScriptedModem] = []

    def make(script: Script) -> ScriptedModem:
        modem = ScriptedModem(script)
        made.append(modem)
        return modem

    yield make
    for m in made:
        m.close()
