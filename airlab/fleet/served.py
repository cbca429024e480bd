"""The private cloud emulator a fleet runs against.

On real time, a thousand modems keep one core busy; the emulator in the same process
would share the interpreter lock with them and each would wait for the other.
:class:`ServedCloud` runs ``airlab cloud serve`` as a child process. On simulated time the
emulator's rules must read the fleet's clock (the CONNECT window, keepalive, the
per-second throttle, token validity): :class:`LoopCloud` runs a
:class:`~airlab.cloud.service.CloudEmulator` in this process with its MQTT broker on the
fleet's own loop and its clock on the loop's simulated time.

Both keep the registry file in a private folder (0700), add the fleet's product and
devices through a :class:`~airlab.cloud.registry.Registry` of their own on that file (the
service reads devices on every CONNECT), and read the logs back from it after
:meth:`stop` (a clean stop: every log line of the run is committed). They offer what
:func:`airlab.fleet.run_fleet` uses of a :class:`~airlab.cloud.service.CloudEmulator`:
``endpoints``, ``registry``, ``add_product``, ``add_device``.

Example:
    >>> with ServedCloud() as cloud:  # doctest: +SKIP
    ...     sorted(cloud.endpoints)[:2]
    ['ca', 'http']
"""

from __future__ import annotations

import abc
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from airlab.cloud.mqtt_core import UPLINK_LIMITS
from airlab.cloud.registry import Product, Registry
from airlab.fleet.clock import wall_clock
from airlab.mqtt.loopthread import LoopThread

__all__ = ["LoopCloud", "ServedCloud"]

_START_TIMEOUT = 30.0


class _PrivateCloud(abc.ABC):
    """A registry file in a private folder, its reader, and an emulator started on it
    (by :meth:`_start`, stopped by :meth:`_stop`)."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Any] = {}
        self.registry: Registry | None = None
        self._folder: str | None = None
        self._running = False

    def __enter__(self) -> Self:
        self._folder = tempfile.mkdtemp(prefix="airlab-fleet-")
        os.chmod(self._folder, 0o700)
        folder = Path(self._folder)
        db = folder / "fleet.db"
        try:
            self.registry = Registry(db)
            self.endpoints = self._start(folder, db)
            self._running = True
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @abc.abstractmethod
    def _start(self, folder: Path, db: Path) -> dict[str, Any]:
        """Start the emulator on ``db``; return its endpoints."""

    @abc.abstractmethod
    def _stop(self) -> None:
        """Stop the emulator, its log lines committed."""

    def add_product(self, product_key: str, *, dynamic_registration: bool = False) -> Product:
        assert self.registry is not None
        return self.registry.add_product(product_key, dynamic_registration=dynamic_registration)

    def add_device(self, product_key: str, device_name: str) -> str:
        assert self.registry is not None
        return self.registry.add_device(product_key, device_name).device_secret

    def product_log_rows(self, table: str, product_key: str) -> list[dict[str, Any]]:
        """The run's log rows, as :meth:`CloudConsole.product_log_rows
        <airlab.cloud.console.CloudConsole.product_log_rows>` reads them."""
        assert self.registry is not None
        return self.registry.product_log_rows(table, product_key)

    def stop(self) -> None:
        """Stop the emulator; it commits its queued log lines first (a clean stop), so
        :attr:`registry` then reads every line of the run."""
        if self._running:
            self._running = False
            self._stop()

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


class ServedCloud(_PrivateCloud):
    """``airlab cloud serve`` in a child process (see the module docstring), started and
    stopped as ``airlab lab`` does it (:func:`airlab.cloud.child.start_cloud_service`: it
    also ends if this process dies); ``throttle``: keep the platform's per-device
    uplink limits (default on)."""

    def __init__(self, *, throttle: bool = True) -> None:
        super().__init__()
        self.throttle = throttle
        self._service: Any = None

    @property
    def pid(self) -> int | None:
        """The emulator's process id while it runs."""
        process = self._service.process if self._service is not None else None
        return process.pid if process is not None and process.poll() is None else None

    def _start(self, folder: Path, db: Path) -> dict[str, Any]:
        from airlab.cloud.child import start_cloud_service

        self._service = start_cloud_service(
            folder / "endpoints.json",
            db,
            fixture="none",
            timeout=_START_TIMEOUT,
            log_path=folder / "serve.log",
            throttle=self.throttle,
        )
        return dict(self._service.endpoints)

    def _stop(self) -> None:
        service, self._service = self._service, None
        if service is not None:
            service.stop()


class LoopCloud(_PrivateCloud):
    """A :class:`~airlab.cloud.service.CloudEmulator` in this process whose MQTT broker
    serves on ``runner``'s loop and whose clock is that loop's (see the module
    docstring): on a :class:`~airlab.fleet.clock.VirtualTimeLoop`, the platform's rules
    run on simulated time. The HTTP(S) endpoints keep threads of their own. ``throttle``:
    keep the platform's per-device uplink limits (default on)."""

    def __init__(self, runner: LoopThread, *, throttle: bool = True) -> None:
        super().__init__()
        self.runner = runner
        self.throttle = throttle
        self._emulator: Any = None

    def _start(self, folder: Path, db: Path) -> dict[str, Any]:
        from airlab.cloud.service import CloudEmulator

        loop = self.runner.loop
        if loop is None:
            raise RuntimeError("the fleet's loop is not running")
        self._emulator = CloudEmulator(
            db,
            fixture=None,
            clock=wall_clock(loop),
            broker_runner=self.runner,
            uplink_limits=UPLINK_LIMITS if self.throttle else None,
        )
        self._emulator.start()
        return dict(self._emulator.endpoints)

    def _stop(self) -> None:
        emulator, self._emulator = self._emulator, None
        if emulator is not None:
            emulator.stop()
