"""The two background threads the widgets use: a job worker and an event follower.

Widget callbacks run on the kernel's thread; they must return at once.  A
:class:`Worker` takes the job (an AT command, a refresh) to its own thread; an
:class:`EventFollower` waits on the session for new events and hands them, in order,
to a callback.  Both start lazily, are daemons, and stop (joined) in ``close()``.

Example:
    >>> w = Worker("doc-worker")
    >>> w.submit(lambda: 6 * 7).result(timeout=2)
    42
    >>> w.close(); w.alive
    False
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from airlab.at.events import Event
from airlab.session import ModemSession, PortClosed, ResponseTimeout

__all__ = ["EventFollower", "Worker"]

T = TypeVar("T")
_STOP = object()


class Worker:
    """One background thread running submitted jobs in order.

    ``submit(fn)`` returns a :class:`concurrent.futures.Future`; exceptions land in the
    future (never printed).  ``idle`` is true when nothing is queued or running.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._q: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._pending = 0
        self._closed = False

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def idle(self) -> bool:
        with self._lock:
            return self._pending == 0

    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Queue ``fn`` (called with no argument in the worker thread)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                future.set_exception(RuntimeError(f"{self.name} is closed"))
                return future
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        self._q.put((fn, future))
        return future

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued job has finished; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            fn, future = item
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn())
                    except BaseException as exc:  # handed to the future, shown by the widget
                        future.set_exception(exc)
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued jobs, stop the thread and join it (idempotent)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        self._q.put(_STOP)
        if threading.current_thread() is not thread:
            thread.join(timeout)


class EventFollower:
    """Hands every event of ``session`` (from ``since``, default: now) to ``callback``
    in batches, from a background thread woken by the session itself (no polling of
    the widget, no sleeps): ``callback(events, end)``, ``end`` being the index after
    the batch.  ``position`` is the index of the next event to deliver.  A follower
    that falls more than the session's ``max_events`` behind skips what left the window.
    """

    def __init__(
        self,
        session: ModemSession,
        callback: Callable[[Sequence[Event], int], object],
        *,
        since: int | None = None,
        name: str = "airlab-widget-follower",
        tick: float = 0.1,
    ) -> None:
        self.session = session
        self._callback = callback
        self._tick = tick
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._pos = session.mark() if since is None else since
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def position(self) -> int:
        with self._cond:
            return self._pos

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wait_caught_up(self, mark: int, timeout: float) -> bool:
        """Wait until every event before index ``mark`` was delivered."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pos >= mark or not self.alive, timeout)

    def _read_from(self, pos: int) -> tuple[int, list[Event]]:
        """(index of the first event returned, the events from ``pos`` on still in
        memory). Events that left the session's window (``max_events``) are skipped,
        so a follower far behind never repeats or misnumbers one."""
        while True:
            first = self.session.first_index
            start = max(pos, first)
            batch = self.session.events_since(start)
            if self.session.first_index == first:  # the window did not move meanwhile
                return start, batch

    def _run(self) -> None:
        pos = self._pos
        while not self._stop.is_set():
            try:
                self.session.wait_for_event(lambda e: True, self._tick, since=pos)
            except ResponseTimeout:
                continue
            except PortClosed:  # the session is closed and every event was delivered
                break
            start, batch = self._read_from(pos)
            if batch:
                pos = self._deliver(batch, start + len(batch))
        with self._cond:
            self._cond.notify_all()

    def _deliver(self, batch: Sequence[Event], end: int) -> int:
        try:
            self._callback(batch, end)
        except Exception:  # a display problem must not stop the log
            import logging

            logging.getLogger("airlab.widgets").exception("widget event callback failed")
        with self._cond:
            self._pos = end
            self._cond.notify_all()
            return self._pos

    def close(self, timeout: float = 2.0) -> None:
        """Stop following and join the thread (idempotent)."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
