"""Waiting on widget state with a deadline (no fixed sleeps)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Re-check ``predicate()`` every few ms until true; AssertionError at the deadline."""
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        tick.wait(0.005)


def output_text(output: object) -> str:
    """Everything an ipywidgets Output holds, as one string."""
    return "".join(o.get("text", "") for o in output.outputs)  # type: ignore[attr-defined]
