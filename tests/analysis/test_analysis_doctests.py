"""The docstring examples of every airlab.analysis module run as tests."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import airlab.analysis

MODULES = ["airlab.analysis"] + [
    info.name for info in pkgutil.walk_packages(airlab.analysis.__path__, prefix="airlab.analysis.")
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
