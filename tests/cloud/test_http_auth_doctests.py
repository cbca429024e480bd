"""The docstring examples of the modules split out of ``airlab.cloud.http_api`` and
``airlab.cloud.auth`` run (those two stay in ``test_registry.test_docstring_examples``)."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name",
    [
        "airlab.cloud.http_conn",
        "airlab.cloud.http_handler",
        "airlab.cloud.http_console",
        "airlab.cloud.auth_common",
        "airlab.cloud.auth_checks",
        "airlab.cloud.auth_connect",
        "airlab.cloud.auth_topics",
        "airlab.cloud.auth_http",
    ],
)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
