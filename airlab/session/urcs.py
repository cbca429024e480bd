"""URC subscriptions: callbacks run in a dispatcher thread, never in the reader thread.

A slow or failing callback cannot stall the serial reader nor break the session: the
reader only puts URCs on a queue; the dispatcher calls the matching callbacks in order
and logs (does not raise) their exceptions.

Example:
    >>> import threading
    >>> from airlab.at.events import Urc
    >>> d = UrcDispatcher()
    >>> got = threading.Event()
    >>> sub = d.subscribe("CLOSED", lambda urc: got.set())
    >>> d.post(Urc(wall=0.0, mono=0.0, raw=b"CLOSED", name="CLOSED", line="CLOSED"))
    >>> got.wait(2)
    True
    >>> sub.cancel(); d.close()
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable

from airlab.at.events import Urc
from airlab.errors import UsageError

__all__ = ["UrcCallback", "UrcDispatcher", "UrcMatcher", "UrcSubscription", "urc_matcher"]

log = logging.getLogger("airlab.session")

UrcCallback = Callable[[Urc], object]
UrcMatcher = str | tuple[str, ...] | Callable[[Urc], bool]

_STOP = object()


def urc_matcher(spec: UrcMatcher, field: str = "name") -> Callable[[Urc], bool]:
    """A predicate from a URC name (``"CLOSED"``, ``"+MSUB"``), a tuple of names, a
    predicate, or ``"*"`` (every URC).

    >>> from airlab.at.events import Urc
    >>> urc_matcher(("PUBACK", "CLOSED"))(Urc(wall=0, mono=0, raw=b"", name="CLOSED", line=""))
    True
    """
    if callable(spec):
        return spec
    if isinstance(spec, str):
        if spec == "*":
            return lambda urc: True
        return lambda urc: urc.name == spec
    if isinstance(spec, tuple) and spec and all(isinstance(s, str) for s in spec):
        names = frozenset(spec)
        return lambda urc: urc.name in names
    raise UsageError(field, f"expected a URC name, a tuple of names or a predicate, got {spec!r}")


class UrcSubscription:
    """A registered callback; ``cancel()`` (or leaving a ``with`` block) removes it."""

    def __init__(
        self, dispatcher: UrcDispatcher, key: int, match: Callable[[Urc], bool], cb: UrcCallback
    ) -> None:
        self._dispatcher = dispatcher
        self.key = key
        self.match = match
        self.callback = cb
        self.calls = 0
        self.errors = 0

    def cancel(self) -> None:
        self._dispatcher.unsubscribe(self)

    def __enter__(self) -> UrcSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class UrcDispatcher:
    """A queue of URCs and the thread that hands them to the subscriptions."""

    def __init__(self, name: str = "airlab-session-dispatch") -> None:
        self._subs: dict[int, UrcSubscription] = {}
        self._keys = itertools.count(1)
        self._lock = threading.Lock()
        self._q: queue.Queue[object] = queue.Queue()
        # started by the first subscription (or by asking for it): a session nobody
        # subscribes to costs no thread here
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    @property
    def thread(self) -> threading.Thread:
        """The thread that runs the callbacks (started now if no one subscribed yet)."""
        self._start()
        return self._thread

    def _start(self) -> None:
        with self._lock:
            if not self._started:
                self._started = True
                self._thread.start()

    def subscribe(self, spec: UrcMatcher, callback: UrcCallback) -> UrcSubscription:
        if not callable(callback):
            raise UsageError("callback", f"must be callable, got {callback!r}")
        match = urc_matcher(spec, "name_or_predicate")
        sub = UrcSubscription(self, next(self._keys), match, callback)
        self._start()
        with self._lock:
            self._subs[sub.key] = sub
        return sub

    def unsubscribe(self, sub: UrcSubscription) -> None:
        with self._lock:
            self._subs.pop(sub.key, None)

    def post(self, urc: Urc) -> None:
        """Queue a URC (called by the reader; never blocks)."""
        if self._subs:
            self._q.put(urc)

    def close(self, timeout: float = 2.0) -> None:
        """Deliver what is queued, then stop the thread (a thread started later, by
        :attr:`thread` or :meth:`subscribe`, stops at once)."""
        self._q.put(_STOP)
        with self._lock:
            started = self._started
        if started and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            assert isinstance(item, Urc)
            with self._lock:
                subs = list(self._subs.values())
            for sub in subs:
                try:
                    if not sub.match(item):
                        continue
                    sub.calls += 1
                    sub.callback(item)
                except Exception:
                    sub.errors += 1
                    log.exception("URC callback %r failed on %r", sub.callback, item.line)
