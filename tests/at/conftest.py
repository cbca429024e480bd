"""Fixtures for the AT tests; the byte-rebuilding helpers live in ``at_wire``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from at_wire import Chunk, _find, console_bytes, sscom_chunks

from airlab.at.parser import AtParser


@pytest.fixture(autouse=True)
def _strict_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let internal parser errors surface in tests instead of becoming Garbage."""
    monkeypatch.setattr(AtParser, "strict", True)


@pytest.fixture
def sscom() -> Callable[[str], list[Chunk]]:
    return lambda name: sscom_chunks(_find(name))


@pytest.fixture
def console() -> Callable[[str], bytes]:
    return lambda name: console_bytes(_find(name))
