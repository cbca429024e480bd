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

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from airlab.cloud.registry import Registry

__all__ = ["ServedCloud"]

_START_TIMEOUT = 30.0


class ServedCloud:
    """``airlab cloud serve`` in a child process (see the module docstring), started and
    stopped as ``airlab lab`` does it (:func:`airlab.cli.lab.start_cloud_service`: it
    also ends if this process dies); ``throttle``: keep the platform's per-device
    uplink limits (default on)."""

    def __init__(self, *, throttle: bool = True) -> None:
        self.throttle = throttle
        self.endpoints: dict[str, Any] = {}
        self.registry: Registry | None = None
        self._folder: str | None = None
        self._service: Any = None

    @property
    def pid(self) -> int | None:
        """The emulator's process id while it runs."""
        process = self._service.process if self._service is not None else None
        return process.pid if process is not None and process.poll() is None else None

    def __enter__(self) -> ServedCloud:
        from airlab.cli.lab import start_cloud_service

        self._folder = tempfile.mkdtemp(prefix="airlab-fleet-")
        os.chmod(self._folder, 0o700)
        folder = Path(self._folder)
        db = folder / "fleet.db"
        try:
            self.registry = Registry(db)
            self._service = start_cloud_service(
                folder / "endpoints.json",
                db,
                fixture="none",
                timeout=_START_TIMEOUT,
                log_path=folder / "serve.log",
                throttle=self.throttle,
            )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.endpoints = self._service.endpoints
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
        service, self._service = self._service, None
        if service is not None:
            service.stop()

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
