"""Ready-made registry contents for lessons and tests.

``tutorial``: the product and device of the Air780EP tutorial this project starts from
(published example credentials, also the project's test vectors).

Example:
    >>> from airlab.cloud.registry import Registry
    >>> reg = Registry()
    >>> load_tutorial(reg).device_secret
    'fef32adf6dad46c2c7cbf335d3a7b021'
    >>> load_tutorial(reg).activated  # idempotent
    False
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from airlab.cloud.registry import Device, Registry

__all__ = [
    "FIXTURES",
    "TUTORIAL_DEVICE_NAME",
    "TUTORIAL_DEVICE_SECRET",
    "TUTORIAL_PRODUCT_KEY",
    "TUTORIAL_PRODUCT_SECRET",
    "TUTORIAL_REGION",
    "load_tutorial",
]

TUTORIAL_PRODUCT_KEY = "k1hipglLdjU"
TUTORIAL_PRODUCT_SECRET = "8LQwOYSZMwp3DFBd"
TUTORIAL_REGION = "cn-shanghai"
TUTORIAL_DEVICE_NAME = "868488076506128"
TUTORIAL_DEVICE_SECRET = "fef32adf6dad46c2c7cbf335d3a7b021"


def load_tutorial(registry: Registry) -> Device:
    """Add the tutorial's product and device (idempotent) and return the device.

    Product ``k1hipglLdjU`` (ProductSecret ``8LQwOYSZMwp3DFBd``, cn-shanghai, dynamic
    registration ON, the three default topic classes) and device ``868488076506128``
    (DeviceSecret ``fef32adf6dad46c2c7cbf335d3a7b021``, enabled, not activated).
    Existing rows are left as they are (a second call changes nothing).

    Note: the tutorial registers the device dynamically (一型一密) *after* it has already
    connected with the device secret, which the platform refuses for an activated
    device. A lesson that replays that part calls ``registry.reset_registration(device)``
    (the platform's ResetThing) first.
    """
    if registry.get_product(TUTORIAL_PRODUCT_KEY) is None:
        registry.add_product(
            TUTORIAL_PRODUCT_KEY,
            TUTORIAL_PRODUCT_SECRET,
            region=TUTORIAL_REGION,
            dynamic_registration=True,
        )
    device = registry.get_device(TUTORIAL_PRODUCT_KEY, TUTORIAL_DEVICE_NAME)
    if device is None:
        device = registry.add_device(
            TUTORIAL_PRODUCT_KEY, TUTORIAL_DEVICE_NAME, TUTORIAL_DEVICE_SECRET
        )
    return device


FIXTURES: Mapping[str, Callable[[Registry], object]] = MappingProxyType({"tutorial": load_tutorial})
"""Fixtures by name (``airlab cloud serve --fixture tutorial``)."""
