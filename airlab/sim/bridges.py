"""Ports on which a :class:`~airlab.sim.device.SimulatedModule` is reachable from outside.

* :class:`PtyBridge`: a pseudo-terminal.  The slave side is put in raw mode (else the
  line discipline would echo the module's own output back to it) and kept open (else
  reads on the master fail with EIO when no host has it open); a stable symlink
  (``/tmp/airlab-sim.pty`` or the given path) points to it, so picocom, minicom or a
  plain ``serial.Serial(path)`` can open it like ``/dev/ttyUSB0``.  Note that
  ``serial.tools.list_ports.comports()`` does not list ptys.
* :class:`TcpBridge`: a TCP server (``socket://127.0.0.1:PORT`` in pyserial) serving
  one host at a time.  It stays up across host disconnects: a new connection gets the
  same module, in whatever state the previous host left it (like re-plugging a
  USB-serial cable).  When a host connects while another is still attached, the bridge
  first finishes the attached one: what it sent is handed to the module up to its end of
  stream (as a serial line delivers every byte sent), and if it has left, the new host
  is accepted — a host reconnecting right after closing is never turned away.  Only a
  host still connected (silent for ``busy_grace`` seconds without closing) makes the
  bridge close the new connection at once.

Both move bytes with one thread: host → module through :meth:`SimulatedModule.write`;
module → host through the module's output sink (non-blocking writes, the rest queued
and flushed when the peer reads).  Output produced while no host is connected to the
TCP bridge is dropped, as on a serial line with nothing attached.  Both are context
managers.

Example:
    >>> from airlab.sim.device import SimulatedModule
    >>> with SimulatedModule() as module, TcpBridge(module) as bridge:  # doctest: +SKIP
    ...     print(bridge.url)
    socket://127.0.0.1:40123
"""

from __future__ import annotations

import contextlib
import errno
import os
import pty
import select
import socket
import threading
import time
import tty
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_PTY_LINK", "PtyBridge", "TcpBridge"]

DEFAULT_PTY_LINK = "/tmp/airlab-sim.pty"
_MAX_PENDING = 1 << 20  # bytes kept for a host that does not read (then: overrun)


class _Bridge:
    """Shared machinery: a thread, a wake-up pipe and a non-blocking output queue."""

    name = "bridge"

    def __init__(self, module: Any) -> None:
        self.module = module
        self._out_lock = threading.Lock()
        self._pending = bytearray()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self.overruns = 0

    # the fd the output goes to (None: nobody listening)
    def _out_fd(self) -> int | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _write_fd(self, fd: int, data: bytes | bytearray) -> int:
        return os.write(fd, data)

    def _sink(self, data: bytes) -> None:
        """Module output (called with the module's lock held: never block)."""
        with self._out_lock:
            fd = self._out_fd()
            if fd is None:
                return
            if not self._pending:
                try:
                    n = self._write_fd(fd, data)
                except (BlockingIOError, InterruptedError):
                    n = 0
                except OSError:
                    return
                data = data[n:]
                if not data:
                    return
            self._pending += data
            if len(self._pending) > _MAX_PENDING:
                self.overruns += len(self._pending) - _MAX_PENDING
                del self._pending[: len(self._pending) - _MAX_PENDING]
        self._wake()

    def _flush(self, fd: int) -> None:
        with self._out_lock:
            if not self._pending:
                return
            try:
                n = self._write_fd(fd, self._pending)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._pending.clear()
                return
            del self._pending[:n]

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            os.read(self._wake_r, 4096)

    def _start_thread(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.module.set_sink(self._sink)
        self._thread = threading.Thread(
            target=self._run, name=f"airlab-sim-{self.name}", daemon=True
        )
        self._thread.start()

    def _stop_thread(self) -> None:
        self._stop = True
        if self._thread is not None:
            self._wake()
            self._thread.join(5)
            self._thread = None
        with contextlib.suppress(Exception):
            self.module.set_sink(None)
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_r = self._wake_w = -1

    def _run(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class PtyBridge(_Bridge):
    """The module on a pseudo-terminal; ``path`` is the symlink (or the slave's name).

    ``link``: the symlink to create (default :data:`DEFAULT_PTY_LINK`; ``False``: none).
    An existing *symlink* at that path is replaced; any other file there is an error.
    """

    name = "pty"

    def __init__(self, module: Any, link: str | os.PathLike[str] | bool | None = None) -> None:
        super().__init__(module)
        if link is None or link is True:
            link = DEFAULT_PTY_LINK
        self.link: Path | None = None if link is False else Path(link)  # type: ignore[arg-type]
        self.master = self.slave = -1
        self.slave_name = ""

    @property
    def path(self) -> str:
        """What a host opens: the symlink, or the slave device when there is none."""
        return str(self.link) if self.link is not None else self.slave_name

    def start(self) -> None:
        if self._thread is not None:
            return
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.slave_name = os.ttyname(self.slave)
        if self.link is not None:
            if self.link.is_symlink():
                self.link.unlink()
            elif self.link.exists():
                self._close_fds()
                raise FileExistsError(f"{self.link} exists and is not a symlink")
            os.symlink(self.slave_name, self.link)
        self._start_thread()

    def _out_fd(self) -> int | None:
        return self.master if self.master >= 0 else None

    def _run(self) -> None:
        master, wake = self.master, self._wake_r
        while not self._stop:
            wlist = [master] if self._pending else []
            try:
                readable, writable, _ = select.select([master, wake], wlist, [])
            except (OSError, ValueError):
                return
            if self._stop:
                return
            if wake in readable:
                self._drain_wake()
            if master in readable:
                try:
                    data = os.read(master, 65536)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        return
                    data = None
                if data:
                    with contextlib.suppress(OSError):
                        self.module.write(data)
            if writable:
                self._flush(master)

    def _close_fds(self) -> None:
        for fd in (self.master, self.slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self.slave = -1

    def close(self) -> None:
        self._stop_thread()
        self._close_fds()
        if self.link is not None and self.link.is_symlink():
            with contextlib.suppress(OSError):
                if os.readlink(self.link) == self.slave_name:
                    self.link.unlink()

    def __repr__(self) -> str:
        return f"PtyBridge(path={self.path!r}, slave={self.slave_name!r})"


class TcpBridge(_Bridge):
    """The module on a TCP port, one host at a time (``url``: ``socket://host:port``)."""

    name = "tcp"

    #: seconds a new connection waits for the attached host to close before being refused
    busy_grace = 0.25
    #: at most this long is spent finishing an attached host that keeps sending
    busy_limit = 2.0

    def __init__(self, module: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(module)
        self.host = host
        self.port = port
        self.refused = 0  # connections closed because another host was attached
        self._server: socket.socket | None = None
        self._client: socket.socket | None = None
        self.connections = 0

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def url(self) -> str:
        """The pyserial URL of this bridge."""
        return f"socket://{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._client is not None

    def start(self) -> None:
        if self._thread is not None:
            return
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.host, self.port))
        server.listen(4)
        server.setblocking(False)
        self._server = server
        self.port = server.getsockname()[1]
        self._start_thread()

    def _out_fd(self) -> int | None:
        client = self._client
        return client.fileno() if client is not None else None

    def _write_fd(self, fd: int, data: bytes | bytearray) -> int:
        client = self._client
        if client is None:
            return len(data)
        return client.send(data)

    def _drop_client(self) -> None:
        with self._out_lock:
            client, self._client = self._client, None
            self._pending.clear()
        if client is not None:
            with contextlib.suppress(OSError):
                client.close()

    def _run(self) -> None:
        server, wake = self._server, self._wake_r
        assert server is not None
        while not self._stop:
            client = self._client
            rlist: list[Any] = [server, wake] + ([client] if client is not None else [])
            wlist = [client] if client is not None and self._pending else []
            try:
                readable, writable, _ = select.select(rlist, wlist, [])
            except (OSError, ValueError):
                if self._stop:
                    return
                self._drop_client()
                continue
            if self._stop:
                return
            if wake in readable:
                self._drain_wake()
            if server in readable:
                self._accept(server)
                if self._client is not client:  # the previous host left meanwhile
                    continue
            if client is not None and client in readable:
                try:
                    data = client.recv(65536)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError:
                    data = b""
                if data == b"":
                    self._drop_client()
                    continue
                if data:
                    with contextlib.suppress(OSError):
                        self.module.write(data)
            if client is not None and client in writable and self._client is client:
                self._flush(client.fileno())

    def _accept(self, server: socket.socket) -> None:
        try:
            conn, _ = server.accept()
        except (BlockingIOError, InterruptedError, OSError):
            return
        if self._client is not None and not self._finish_client():
            conn.close()  # busy: one host at a time
            self.refused += 1
            return
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._out_lock:
            self._client = conn
            self._pending.clear()
        self.connections += 1

    def _finish_client(self) -> bool:
        """A new host knocks: hand the attached host's pending input to the module up to
        its end of stream (then drop it: True), or find it still connected (False)."""
        client = self._client
        assert client is not None
        deadline = time.monotonic() + self.busy_limit
        while time.monotonic() < deadline:
            try:
                readable, _, _ = select.select([client], [], [], self.busy_grace)
            except (OSError, ValueError):
                readable = [client]  # recv() tells what happened
            if not readable:
                return False  # silent but not closed: still attached
            try:
                data = client.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:  # reset: whatever it still had in flight is lost
                data = b""
            if not data:
                self._drop_client()
                return True
            with contextlib.suppress(OSError):
                self.module.write(data)
        return False

    def close(self) -> None:
        self._stop_thread()
        self._drop_client()
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.close()
            self._server = None

    def __repr__(self) -> str:
        return f"TcpBridge(url={self.url!r}, connected={self.connected})"
