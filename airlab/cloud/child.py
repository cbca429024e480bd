"""The cloud emulator as a child process: started (or an already running one reused) by
``airlab lab``, a fleet (:class:`airlab.fleet.served.ServedCloud`) or a test, and
stopped with a clean SIGINT.

:func:`start_cloud_service` runs ``airlab cloud serve`` with ``--watch-pid`` (it ends
when its parent does) and waits until it has written its endpoints file;
:class:`CloudService` stops it again.

Example:
    >>> from pathlib import Path
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> service = start_cloud_service(folder / "ep.json", folder / "lab.db")  # doctest: +SKIP
    >>> sorted(service.endpoints)[:2]  # doctest: +SKIP
    ['admin', 'ca']
    >>> service.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from airlab.errors import AirlabError

__all__ = ["CloudService", "child_options", "start_cloud_service"]

_CLOUD_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 15.0


class CloudService:
    """The emulator ``airlab lab`` uses: a child process it owns, or a running one it
    reuses (``process`` None)."""

    def __init__(
        self,
        endpoints_file: Path,
        endpoints: dict[str, Any],
        process: subprocess.Popen[bytes] | None,
        log_path: Path | None = None,
    ) -> None:
        self.endpoints_file = endpoints_file
        self.endpoints = endpoints
        self.process = process
        self.log_path = log_path

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Stop the child (SIGINT: a clean stop that removes the endpoints file); kill it
        if it does not end in time. A reused service is left running."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        _remove_if_owned(self.endpoints_file, proc.pid)


def _remove_if_owned(path: Path, pid: int) -> None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(data, dict) and data.get("pid") == pid:
        with contextlib.suppress(OSError):
            path.unlink()
        with contextlib.suppress(OSError):
            path.with_name(path.stem + ".ca.pem").unlink()


def _tail(path: Path | None, lines: int = 8) -> str:
    if path is None:
        return ""
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_cloud_service(
    endpoints_file: Path,
    db: Path,
    *,
    fixture: str = "tutorial",
    timeout: float = _CLOUD_START_TIMEOUT,
    log_path: Path | None = None,
    host: str | None = None,
    advertise: str | None = None,
    throttle: bool = True,
) -> CloudService:
    """Reuse the emulator serving with ``endpoints_file`` or start one as a child and wait
    (up to ``timeout`` s) until it has written that file.  ``host`` / ``advertise``: the
    address it binds (``0.0.0.0``: the whole room) and the one its endpoints name;
    ``throttle=False``: without the platform's per-device uplink limits."""
    from airlab.cloud.discovery import EndpointsError, load_endpoints

    with contextlib.suppress(EndpointsError):  # missing, unreadable or stale: start one
        return CloudService(endpoints_file, load_endpoints(endpoints_file), None)
    db.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "airlab", "cloud", "serve", "--fixture", fixture,
        "--db", str(db), "--endpoints-file", str(endpoints_file),
        "--watch-pid", str(os.getpid()),
    ]  # fmt: skip
    if host:
        cmd += ["--host", host]
    if advertise:
        cmd += ["--advertise", advertise]
    if not throttle:
        cmd.append("--no-throttle")
    log_path = log_path or db.with_name("cloud.log")
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, **child_options()
        )
    service = CloudService(endpoints_file, {}, proc, log_path)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AirlabError(
                f"the cloud emulator did not start (exit {proc.returncode}); its log "
                f"{log_path}:\n{_tail(log_path)}"
            )
        try:
            data = load_endpoints(endpoints_file)
        except EndpointsError:
            data = None
        if data is not None and data.get("pid") == proc.pid:
            service.endpoints = data
            return service
        if time.monotonic() > deadline:
            service.stop()
            raise AirlabError(
                f"the cloud emulator wrote no endpoints to {endpoints_file} within {timeout:g} s"
            )
        time.sleep(0.05)  # polling a file another process writes: no event to wait on


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM when ``airlab lab`` dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def child_options() -> dict[str, Any]:
    """``subprocess.Popen`` options for a child that must not outlive this process: a
    session of its own and, on Linux, SIGTERM when this process dies."""
    options: dict[str, Any] = {"start_new_session": True}
    if sys.platform.startswith("linux"):
        options["preexec_fn"] = _die_with_parent
    return options
