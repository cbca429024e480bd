"""The docstring examples of every airlab.at module run as tests."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import airlab.at

MODULES = ["airlab.at"] + [
    info.name for info in pkgutil.walk_packages(airlab.at.__path__, prefix="airlab.at.")
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
