"""The docstring examples of every airlab.fleet module, and of ``airlab fleet``'s parser,
run as tests."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import airlab.fleet

MODULES = ["airlab.fleet", "airlab.cli.fleet"] + [
    info.name for info in pkgutil.walk_packages(airlab.fleet.__path__, prefix="airlab.fleet.")
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
