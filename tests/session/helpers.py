"""Helpers of the session tests: tutorial identities and a scripted TCP "modem".

The scripted modem is a local TCP server reached through pyserial's ``socket://`` URL:
for each command line it receives it sends the bytes a script returns (or nothing),
so tests can produce exact byte layouts (a URC between echo and OK, a CME code the
simulator never prints, silence).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

PK = "k1hipglLdjU"
DN = "868488076506128"
DS = "fef32adf6dad46c2c7cbf335d3a7b021"
PS = "8LQwOYSZMwp3DFBd"
GET_TOPIC = f"/{PK}/{DN}/user/get"
UPDATE_TOPIC = f"/{PK}/{DN}/user/update"


Script = Callable[[str], bytes | None]


class ScriptedModem:
    """A TCP server answering each received line with ``script(line)`` bytes."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.lines: list[str] = []
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(1)
        self._stop = False
        self._conn: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.getsockname()
        return f"socket://{host}:{port}"

    def _run(self) -> None:
        try:
            conn, _ = self._server.accept()
        except OSError:
            return
        self._conn = conn
        buf = b""
        while not self._stop:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\r" in buf or b"\n" in buf:
                i = min(p for p in (buf.find(b"\r"), buf.find(b"\n")) if p >= 0)
                raw, buf = buf[:i], buf[i + 1 :].lstrip(b"\n")
                line = raw.decode("utf-8", "replace")
                if not line:
                    continue
                self.lines.append(line)
                reply = self.script(line)
                if reply:
                    with contextlib.suppress(OSError):
                        conn.sendall(reply)

    def send(self, data: bytes) -> None:
        assert self._conn is not None
        self._conn.sendall(data)

    def close(self) -> None:
        self._stop = True
        for sock in (self._conn, self._server):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()


def echo_ok(line: str, body: bytes = b"", final: bytes = b"OK") -> bytes:
    """Echo + optional body lines + final result, framed like the firmware."""
    return line.encode() + b"\r\n" + body + b"\r\n" + final + b"\r\n"
