"""An asyncio event loop running on its own daemon thread: the one starter airlab uses.

The broker and the simulated module's network stack each run their sockets on such a
loop, never on the caller's (a notebook kernel's) loop.

Example:
    >>> import asyncio
    >>> lt = LoopThread("demo").start()
    >>> async def answer():
    ...     return 42
    >>> lt.run(answer())
    42
    >>> lt.call(lambda: threading.current_thread().name)
    'demo'
    >>> lt.stop()
    >>> lt.running
    False
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

_T = TypeVar("_T")


class LoopThread:
    """A new event loop, run forever on a daemon thread named ``name``.

    :meth:`start` returns once the loop runs; :meth:`run` / :meth:`call` execute a
    coroutine / a function on it from another thread and return its result; :meth:`stop`
    cancels what is left, stops the loop, joins the thread and closes the loop.
    ``loop_factory`` makes the loop (default :func:`asyncio.new_event_loop`; a fleet in
    simulated time passes :class:`airlab.fleet.clock.VirtualTimeLoop`).
    """

    def __init__(
        self,
        name: str,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
    ) -> None:
        self.name = name
        self.loop_factory = loop_factory
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, timeout: float = 10.0) -> LoopThread:
        """Create the loop and its thread (raises if already started)."""
        if self.thread is not None:
            raise RuntimeError(f"loop thread {self.name!r} already started")
        loop = self.loop_factory()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        thread = threading.Thread(target=run, name=self.name, daemon=True)
        thread.start()
        if not ready.wait(timeout):
            raise RuntimeError(f"loop thread {self.name!r} did not start")
        self.loop, self.thread = loop, thread
        return self

    def in_thread(self) -> bool:
        """Whether the caller runs on this loop's thread."""
        return self.thread is not None and threading.get_ident() == self.thread.ident

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float | None = 10.0) -> _T:
        """Run ``coro`` on the loop and wait for its result."""
        if self.loop is None:
            coro.close()
            raise RuntimeError(f"loop thread {self.name!r} is not running")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], _T], timeout: float | None = 10.0) -> _T:
        """Call ``fn()`` on the loop (directly when already on it) and return its result."""
        loop = self.loop
        if loop is None:
            raise RuntimeError(f"loop thread {self.name!r} is not running")
        if self.in_thread():
            return fn()
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def work() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(work)
        return future.result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel the remaining tasks, stop the loop, join the thread (idempotent)."""
        loop, thread = self.loop, self.thread
        if loop is None or thread is None:
            return
        if self.in_thread():
            raise RuntimeError(f"loop thread {self.name!r} stopped from its own thread")

        async def drain() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=2)

        if not loop.is_closed():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(drain(), loop).result(timeout)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()
        self.loop = self.thread = None
