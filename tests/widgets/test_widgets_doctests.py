"""The docstring examples of every airlab.widgets module run as tests."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import airlab
import airlab.widgets

MODULES = ["airlab.widgets"] + [
    f"airlab.widgets.{info.name}" for info in pkgutil.iter_modules(airlab.widgets.__path__)
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_public_api_is_exported() -> None:
    for name in airlab.widgets.__all__:
        assert hasattr(airlab.widgets, name), name
