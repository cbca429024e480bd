"""The docstring examples of every airlab.session module run as tests."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import airlab
import airlab.session

MODULES = ["airlab.session"] + [
    f"airlab.session.{info.name}" for info in pkgutil.iter_modules(airlab.session.__path__)
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_public_api_is_exported() -> None:
    for name in airlab.session.__all__:
        assert hasattr(airlab.session, name), name
    assert airlab.ModemSession is airlab.session.ModemSession
    assert issubclass(airlab.ResponseTimeout, TimeoutError)
    for error in (airlab.CommandError, airlab.ConnectionClosed, airlab.ConnectFailed):
        assert issubclass(error, airlab.AirlabError)
