"""Who a lesson logs in as: :class:`Identity` (the device and product certificates) and how
:func:`~airlab.lesson.open_lesson` chooses it — a fresh device of this run, the tutorial's,
a class seat (a seat id of the class's emulator, a handout's seat file, or the seat picked
once with :class:`~airlab.widgets.SeatPicker`), or ``AIRLAB_*`` variables in the field.

Example:
    >>> Identity.tutorial().topic("user/get")
    '/k1hipglLdjU/868488076506128/user/get'
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airlab.cloud.discovery import RemoteCloud
from airlab.cloud.fixtures import (
    TUTORIAL_DEVICE_NAME,
    TUTORIAL_DEVICE_SECRET,
    TUTORIAL_PRODUCT_KEY,
    TUTORIAL_PRODUCT_SECRET,
    TUTORIAL_REGION,
)
from airlab.cloud.service import CloudConsole
from airlab.errors import UsageError

__all__ = ["ENV_CLASS", "ENV_SEAT", "IDENTITY_ENV", "Identity", "identity_for", "provision"]

ENV_SEAT = "AIRLAB_SEAT"
ENV_CLASS = "AIRLAB_CLASS"
#: Identity field -> environment variable (read in the field setting).
IDENTITY_ENV: Mapping[str, str] = {
    "product_key": "AIRLAB_PRODUCT_KEY",
    "device_name": "AIRLAB_DEVICE_NAME",
    "device_secret": "AIRLAB_DEVICE_SECRET",
    "product_secret": "AIRLAB_PRODUCT_SECRET",
    "region": "AIRLAB_REGION",
}


# ---------------------------------------------------------------------------- identity


@dataclass(frozen=True)
class Identity:
    """The device certificate (设备证书) and product certificate (产品证书) a lesson uses.

    ``source`` says where the values came from: ``"tutorial"`` (the vendor tutorial's
    published example values, also the emulator's fixture), ``"lesson"`` (a device
    added for this run: :func:`new_device_name`) or ``"environment"``.
    Secrets are left out of ``repr``.

    Example:
        >>> ident = Identity.tutorial()
        >>> ident.topic("user/update")
        '/k1hipglLdjU/868488076506128/user/update'
        >>> sorted(ident.device())
        ['device_name', 'device_secret', 'product_key']
    """

    product_key: str
    device_name: str
    device_secret: str | None = field(default=None, repr=False)
    product_secret: str | None = field(default=None, repr=False)
    region: str = TUTORIAL_REGION
    source: str = "tutorial"
    seat: str | None = None
    label: str = ""

    @classmethod
    def tutorial(cls) -> Identity:
        """The tutorial's product ``k1hipglLdjU`` and device ``868488076506128``."""
        return cls(
            TUTORIAL_PRODUCT_KEY,
            TUTORIAL_DEVICE_NAME,
            TUTORIAL_DEVICE_SECRET,
            TUTORIAL_PRODUCT_SECRET,
            TUTORIAL_REGION,
            "tutorial",
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Identity:
        """Read ``AIRLAB_PRODUCT_KEY``, ``AIRLAB_DEVICE_NAME``, ``AIRLAB_DEVICE_SECRET``,
        ``AIRLAB_PRODUCT_SECRET`` and ``AIRLAB_REGION``; the first two are required
        (:class:`~airlab.errors.UsageError` naming the variable)."""
        env = os.environ if env is None else env
        values = {name: (env.get(var) or "").strip() or None for name, var in IDENTITY_ENV.items()}
        for name in ("product_key", "device_name"):
            if values[name] is None:
                raise UsageError(
                    IDENTITY_ENV[name],
                    f"set the environment variable {IDENTITY_ENV[name]} to your device's "
                    f"{name} (the field setting uses your own device certificate)",
                )
        return cls(
            product_key=str(values["product_key"]),
            device_name=str(values["device_name"]),
            device_secret=values["device_secret"],
            product_secret=values["product_secret"],
            region=values["region"] or TUTORIAL_REGION,
            source="environment",
        )

    def device(self) -> dict[str, Any]:
        """``product_key``, ``device_name``, ``device_secret`` as keyword arguments
        (``recipes.direct_mqtt(session, **identity.device())``)."""
        if self.device_secret is None:
            raise UsageError(
                IDENTITY_ENV["device_secret"], "no device secret: set AIRLAB_DEVICE_SECRET"
            )
        return {
            "product_key": self.product_key,
            "device_name": self.device_name,
            "device_secret": self.device_secret,
        }

    @property
    def ref(self) -> tuple[str, str]:
        """``(productKey, deviceName)``: the device filter of the cloud's logs
        (``lab.cloud.refusals(lab.identity.ref)``)."""
        return (self.product_key, self.device_name)

    def topic(self, suffix: str) -> str:
        """The device's topic ``/<productKey>/<deviceName>/<suffix>`` (``"user/get"``)."""
        return f"/{self.product_key}/{self.device_name}/{suffix.lstrip('/')}"

    def system_topic(self, suffix: str) -> str:
        """An Alink system topic ``/sys/<productKey>/<deviceName>/<suffix>``."""
        return f"/sys/{self.product_key}/{self.device_name}/{suffix.lstrip('/')}"


# ---------------------------------------------------------------------------- devices


def identity_for(
    cloud: CloudConsole, own_device: bool, seat: str | None, class_name: str | None
) -> Identity:
    if seat is not None:
        return _seat_identity(cloud, seat, class_name)
    return _lesson_identity(cloud, own_device)


def _lesson_identity(cloud: CloudConsole, own_device: bool) -> Identity:
    """This run's own device, or the tutorial's (asked for, or when the running
    emulator's registry cannot be shared: a warning says how to fix that)."""
    if not own_device:
        return Identity.tutorial()
    if isinstance(cloud, RemoteCloud) and cloud.endpoints.get("airlab_room"):
        raise UsageError(
            "seat",
            f"this is the room file of class {cloud.endpoints.get('class')!r}: the lesson needs "
            "your seat — open_lesson(seat='path/to/seat-07.json') with your handout's seat "
            "file, AIRLAB_SEAT=path/to/seat-07.json, or pick it once in lesson 00 (SeatPicker)",
        )
    if isinstance(cloud, RemoteCloud) and not cloud.endpoints.get("db"):
        warnings.warn(
            "the running cloud emulator keeps its registry in memory, so this lesson cannot "
            "add a device of its own and borrows the tutorial's (two lessons at once will "
            "kick each other): start it with 'airlab cloud serve --db lab.db' or 'make lab'",
            UserWarning,
            stacklevel=4,
        )
        return Identity.tutorial()
    return provision(cloud, TUTORIAL_PRODUCT_KEY, TUTORIAL_REGION)


def _choose_seat(seat: str | os.PathLike[str] | None) -> tuple[str | None, str | None]:
    """The seat to use and its class: the argument, else ``$AIRLAB_SEAT`` (set but empty:
    none), else the choice saved by :class:`~airlab.widgets.SeatPicker`."""
    value = seat if seat is not None else os.environ.get(ENV_SEAT)
    if value is None:
        from airlab.classroom.choice import saved_seat

        saved = saved_seat()
        return (saved.seat, saved.class_name) if saved is not None else (None, None)
    text = os.fspath(value).strip()
    return (text or None), None


def _seat_identity(cloud: CloudConsole, seat: str, class_name: str | None) -> Identity:
    """The device of ``seat``: a seat file from a handout (``seat-07.json``), or a seat
    id of a class in the running emulator (``airlab class create``)."""
    from airlab.classroom.handouts import is_seat_file

    if is_seat_file(seat):
        return _adopt_seat_file(cloud, Path(seat).expanduser())
    from airlab.classroom.roster import validate_seat_id

    validate_seat_id(seat)
    class_name = class_name or (os.environ.get(ENV_CLASS) or "").strip() or None
    try:
        registry = cloud.registry
        found = [s for s in registry.seats(class_name) if s.seat == seat]
    except UsageError as exc:
        raise UsageError(
            "seat",
            f"seat {seat!r} needs the class's registry, which this machine cannot read "
            f"({exc.message}): use your handout's seat file instead, "
            f"open_lesson(seat='path/to/seat-{seat}.json')",
        ) from None
    if not found:
        classes = [c[0] for c in registry.classes()]
        where = (
            f"class {class_name!r}" if class_name
            else (f"the classes {', '.join(classes)}" if classes else "no class at all")
        )  # fmt: skip
        raise UsageError(
            "seat",
            f"no seat {seat!r} in {where} of this cloud emulator: check the seat on your "
            "handout, or that JupyterLab uses the class's emulator (AIRLAB_CLOUD); on your "
            f"own laptop use the handout's seat file: open_lesson(seat='path/to/seat-{seat}.json')",
        )
    if len({s.class_name for s in found}) > 1:
        names = ", ".join(sorted({s.class_name for s in found}))
        raise UsageError(
            "seat",
            f"seat {seat!r} is in several classes ({names}): say which with "
            f"open_lesson(seat={seat!r}, class_name=...) or AIRLAB_CLASS",
        )
    chosen = found[0]
    device = registry.get_device(chosen.product_key, chosen.device_name)
    product = registry.get_product(chosen.product_key)
    if device is None or product is None:
        raise UsageError("seat", f"seat {seat!r}'s device is gone from the registry")
    return Identity(
        device.product_key, device.device_name, device.device_secret,
        product.product_secret, product.region, "seat", chosen.seat, chosen.label,
    )  # fmt: skip


def _adopt_seat_file(cloud: CloudConsole, path: Path) -> Identity:
    """Read a handout's seat file; make sure this emulator knows its product and device
    (a student's own laptop: the class's certificate works there too)."""
    from airlab.classroom.handouts import read_seat_file

    card = read_seat_file(path)
    pk, dn, ds, ps = card.product_key, card.device_name, card.device_secret, card.product_secret
    region = card.region
    identity = Identity(pk, dn, ds, ps, region, "seat", card.seat, card.label)
    try:
        registry = cloud.registry
    except UsageError:  # the class's emulator runs elsewhere: ask it through its API
        _check_seat_remotely(cloud, identity, path)
        return identity
    product = registry.get_product(pk)
    if product is None:
        registry.add_product(pk, ps, region=region, dynamic_registration=True)
    elif product.product_secret != ps:
        raise UsageError(
            "seat",
            f"this emulator's product {pk} has another ProductSecret than {path.name}: the "
            "seat file is from another class, or the emulator was reset and reused the key",
        )
    device = registry.get_device(pk, dn)
    if device is None:
        registry.add_device(pk, dn, ds)
    elif device.device_secret != ds:
        raise UsageError(
            "seat",
            f"this emulator's device {pk}/{dn} has another DeviceSecret than {path.name}: "
            "use the seat file of this class",
        )
    return identity


def _check_seat_remotely(cloud: CloudConsole, identity: Identity, path: Path) -> None:
    """The class's emulator (on another machine) knows the seat file's device: asked
    through its admin API (a class token lists its product's devices, not their
    secrets)."""
    from airlab.cloud.discovery import ForbiddenError

    pk, dn = identity.product_key, identity.device_name
    try:
        devices = cloud.devices(pk)
    except ForbiddenError:
        raise UsageError(
            "seat",
            f"{path.name} is a seat of product {pk}, but the room file's class token is for "
            "another class: use the room file and the seat file of the same class",
        ) from None
    found = devices[devices["device_name"] == dn]
    if found.empty:
        raise UsageError(
            "seat",
            f"the class's cloud emulator has no device {pk}/{dn} of {path.name}: the seat "
            "file is from another class, or the emulator was reset since; ask the teacher "
            "for this class's handout",
        )
    secret = found["device_secret"].iloc[0]
    if isinstance(secret, str) and secret and secret != identity.device_secret:
        raise UsageError(
            "seat",
            f"the class's emulator has another DeviceSecret for {pk}/{dn} than {path.name}: "
            "use the seat file of this class",
        )


def provision(
    cloud: CloudConsole,
    product_key: str,
    region: str,
    *,
    product_secret: str | None = None,
    activated: bool = False,
) -> Identity:
    """Add a fresh device to ``product_key`` in ``cloud`` (through the console, so also
    on a class's emulator on another machine) and return its identity.
    ``product_secret``: the product's, when the caller knows it (a seat's); else read
    from the emulator's registry."""
    missing = UsageError(
        "cloud",
        f"the cloud emulator has no product {product_key}: start it with the tutorial's "
        "fixture ('airlab cloud serve --fixture tutorial', or just 'make lab')",
    )
    if product_secret is None:
        try:
            product = cloud.registry.get_product(product_key)
        except UsageError as exc:
            raise UsageError(
                "cloud",
                f"a new device needs the ProductSecret of {product_key}, which this machine "
                f"cannot read ({exc.message}): open the lesson with your seat file, "
                "open_lesson(seat='path/to/seat-NN.json')",
            ) from None
        if product is None:
            raise missing
        product_secret = product.product_secret
    try:
        device = cloud.new_device(product_key, activated=activated)
    except UsageError as exc:
        if "no product" in exc.message:
            raise missing from None
        raise
    return Identity(
        product_key, device.device_name, device.device_secret, product_secret, region, "lesson"
    )
