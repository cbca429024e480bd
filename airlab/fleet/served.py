"""The cloud emulator a fleet runs against, in a process of its own.

A thousand modems keep one core busy; the emulator in the same process would share the
interpreter lock with them and each would wait for the other. :class:`ServedCloud` runs
``airlab cloud serve`` as a child process on a registry file in a private folder (0700),
adds the fleet's product and devices through a :class:`~airlab.cloud.registry.Registry`
of its own on the same file (the service reads devices on every CONNECT), and reads the
logs back from it. It offers what :func:`airlab.fleet.run_fleet` uses of a
:class:`~airlab.cloud.service.CloudEmulator`: ``endpoints``, ``registry``,
``add_product``, ``add_device``.

Example:
    >>> with ServedCloud() as cloud:  # doctest: +SKIP
    ...     sorted(cloud.endpoints)[:2]
    ['ca', 'http']
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from airlab.cloud.registry import Registry
from airlab.errors import UsageError

__all__ = ["ServedCloud"]

_START_TIMEOUT = 30.0


class ServedCloud:
    """``airlab cloud serve`` in a child process (see the module docstring);
    ``throttle``: keep the platform's per-device uplink limits (default on)."""

    def __init__(self, *, throttle: bool = True) -> None:
        self.throttle = throttle
        self.endpoints: dict[str, Any] = {}
        self.registry: Registry | None = None
        self._folder: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServedCloud:
        self._folder = tempfile.mkdtemp(prefix="airlab-fleet-")
        os.chmod(self._folder, 0o700)
        folder = Path(self._folder)
        db, ep_file = folder / "fleet.db", folder / "endpoints.json"
        self.registry = Registry(db)
        args = [sys.executable, "-m", "airlab", "cloud", "serve", "--db", str(db),
                "--fixture", "none", "--endpoints-file", str(ep_file)]  # fmt: skip
        if not self.throttle:
            args.append("--no-throttle")
        log = open(folder / "serve.log", "wb")
        try:
            self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + _START_TIMEOUT
        while not ep_file.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = (folder / "serve.log").read_text(errors="replace")[-2000:]
                self.__exit__(None, None, None)
                raise UsageError("cloud", f"the fleet's cloud emulator did not start:\n{tail}")
            time.sleep(0.05)  # another process writes it: polled with a deadline
        self.endpoints = json.loads(ep_file.read_text(encoding="utf-8"))
        return self

    def add_product(self, product_key: str) -> None:
        assert self.registry is not None
        self.registry.add_product(product_key)

    def add_device(self, product_key: str, device_name: str) -> str:
        assert self.registry is not None
        return self.registry.add_device(product_key, device_name).device_secret

    def stop(self) -> None:
        """Stop the service; it commits its queued log lines first (a clean stop), so
        :attr:`registry` then reads every line of the run."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self.registry is not None:
            self.registry.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
