"""The docstring examples of the simulated firmware's modules run as tests."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "airlab.sim.actions",
    "airlab.sim.firmware",
    "airlab.sim.firmware_base",
    "airlab.sim.firmware_basic",
    "airlab.sim.firmware_http",
    "airlab.sim.firmware_http_states",
    "airlab.sim.firmware_mqtt",
    "airlab.sim.firmware_mqtt_states",
    "airlab.sim.firmware_radio",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
