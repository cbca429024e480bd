"""Shared fixtures for the cloud emulator tests: a registry in a temp file, the
tutorial fixture loaded, rules with a controllable clock, HTTP(S) endpoints on
127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airlab.cloud.auth import Rules
from airlab.cloud.fixtures import load_tutorial
from airlab.cloud.http_api import HttpEndpoints
from airlab.cloud.registry import Device, Registry
from airlab.cloud.tls import make_server_context
from tests.cloud.broker_helpers import Client


class FakeClock:
    """A settable clock (epoch seconds)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "registry.db"


@pytest.fixture
def registry(db_path: Path) -> Iterator[Registry]:
    reg = Registry(db_path)
    yield reg
    reg.close()


@pytest.fixture
def tutorial_device(registry: Registry) -> Device:
    return load_tutorial(registry)


@pytest.fixture
def tutorial(registry: Registry, tutorial_device: Device) -> Registry:
    """The registry with the tutorial product and device loaded."""
    return registry


@pytest.fixture
def rules(tutorial: Registry, clock: FakeClock) -> Rules:
    return Rules(tutorial, clock=clock)


@pytest.fixture
def endpoints(rules: Rules) -> Iterator[HttpEndpoints]:
    published: list[tuple[str, bytes, int]] = []

    def publisher(topic: str, payload: bytes, qos: int) -> int:
        published.append((topic, payload, qos))
        return 1

    api = HttpEndpoints(
        rules,
        ssl_context=make_server_context(),
        admin_token="s3cret-admin",
        publisher=publisher,
    )
    api.published = published  # type: ignore[attr-defined]
    with api:
        yield api


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    """paho clients a test makes (append them); stopped at the end."""
    made: list[Client] = []
    yield made
    for c in made:
        c.stop()
