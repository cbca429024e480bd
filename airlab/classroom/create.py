"""Create a class in the emulator's registry: one product like the tutorial's and one
device per student, so no two students share a login (the platform allows one MQTT
session per device: a second login kicks the first).

The class's product is a copy of the tutorial's ``k1hipglLdjU`` in everything a lesson
uses (region, dynamic registration on, the default topic classes) with a fresh
11-character ProductKey; each seat's device gets an IMEI-like 15-digit DeviceName, as
the tutorial names devices, so every length a lesson counts stays the same.

Example:
    >>> from airlab.cloud.registry import Registry
    >>> reg = Registry()
    >>> room = create_class(reg, numbered_seats(3), name="demo")
    >>> [card.seat for card in room.cards], len(room.product_key)
    (['01', '02', '03'], 11)
    >>> reg.get_device(room.cards[0].product_key, room.cards[0].device_name) is not None
    True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from airlab.aliyun import validate_platform_product_key
from airlab.classroom.roster import SeatSpec, numbered_seats
from airlab.cloud.fixtures import TUTORIAL_REGION
from airlab.cloud.names import new_device_name, new_product_key
from airlab.cloud.registry import Registry
from airlab.errors import UsageError

__all__ = ["ClassInfo", "SeatCard", "create_class", "numbered_seats", "validate_class_name"]

_CLASS_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")


@dataclass(frozen=True)
class SeatCard:
    """What one student gets: seat, name, and the device and product certificates."""

    class_name: str
    seat: str
    label: str
    product_key: str
    device_name: str
    device_secret: str = field(repr=False)
    product_secret: str = field(repr=False)
    region: str = TUTORIAL_REGION

    def as_dict(self) -> dict[str, str]:
        """The seat file's fields (secrets included: it is the student's certificate)."""
        return {
            "class": self.class_name,
            "seat": self.seat,
            "label": self.label,
            "product_key": self.product_key,
            "device_name": self.device_name,
            "device_secret": self.device_secret,
            "product_secret": self.product_secret,
            "region": self.region,
        }


@dataclass(frozen=True)
class ClassInfo:
    """A created class: its name, product and one card per seat."""

    name: str
    product_key: str
    cards: tuple[SeatCard, ...]

    def card(self, seat: str) -> SeatCard:
        """The card of ``seat``."""
        for card in self.cards:
            if card.seat == seat:
                return card
        raise UsageError("seat", f"no seat {seat!r} in class {self.name!r}")


def validate_class_name(name: object) -> str:
    """A class name: 1-32 letters, digits, ``_ - .``, starting with a letter or digit."""
    if not isinstance(name, str) or _CLASS_RE.fullmatch(name) is None:
        raise UsageError(
            "name", f"{name!r} is not a class name (1-32 letters, digits, _ - ., no spaces)"
        )
    return name


def create_class(
    registry: Registry,
    seats: Sequence[SeatSpec],
    *,
    name: str = "class",
    product_key: str | None = None,
    region: str = TUTORIAL_REGION,
) -> ClassInfo:
    """Add the class's product, one device per seat, and the class's seat table.

    ``product_key``: default a fresh one (``c1`` + 9 letters/digits).  A product key or
    class name already in the registry is refused (nothing is written then).
    """
    validate_class_name(name)
    if not seats:
        raise UsageError("students", "a class needs at least one seat")
    if any(c[0] == name for c in registry.classes()):
        raise UsageError(
            "name", f"class {name!r} already exists in {registry.path}: choose another --name "
            "or start clean with 'airlab cloud reset'"
        )  # fmt: skip
    if product_key is None:
        for _ in range(10):
            product_key = new_product_key()
            if registry.get_product(product_key) is None:
                break
    assert product_key is not None
    validate_platform_product_key(product_key)
    if registry.get_product(product_key) is not None:
        raise UsageError("product_key", f"product {product_key!r} already exists")
    product = registry.add_product(product_key, region=region, dynamic_registration=True)
    cards: list[SeatCard] = []
    try:
        used: set[str] = set()
        for spec in seats:
            device_name = new_device_name()
            while device_name in used:
                device_name = new_device_name()
            used.add(device_name)
            device = registry.add_device(product_key, device_name)
            cards.append(
                SeatCard(
                    name, spec.seat, spec.label, product_key, device_name,
                    device.device_secret, product.product_secret, region,
                )
            )  # fmt: skip
        registry.add_class(name, product_key, [(c.seat, c.label, c.device_name) for c in cards])
    except BaseException:
        registry.delete_product(product_key)  # its devices go with it
        raise
    return ClassInfo(name, product_key, tuple(cards))
