"""Names the emulator hands out: IMEI-like DeviceNames and tutorial-like ProductKeys.

The tutorial names a device by its module's IMEI (15 digits), and its ProductKey has 11
letters and digits; names of the same lengths keep every length a lesson counts (the
112-byte HTTPDATA body of the HTTPS auth) the same for every device.

Example:
    >>> name = new_device_name()
    >>> len(name), name.startswith("86948"), name.isdigit(), luhn_ok(name)
    (15, True, True, True)
    >>> len(new_product_key()), new_product_key().startswith("c1")
    (11, True)
"""

from __future__ import annotations

import secrets
import string

__all__ = ["LESSON_IMEI_PREFIX", "luhn_ok", "new_device_name", "new_product_key"]

#: DeviceNames the emulator makes start with this (a made-up TAC: never a tutorial value).
LESSON_IMEI_PREFIX = "86948"


def _luhn_sum(digits: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:  # every second digit from the right (the check digit is index 0)
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total


def luhn_ok(number: str) -> bool:
    """True when ``number`` (digits, check digit last) passes the Luhn check, as an IMEI
    does.

    Example:
        >>> luhn_ok("868488076506128"), luhn_ok("868488076506129")  # the tutorial's IMEI
        (True, False)
    """
    return number.isascii() and number.isdigit() and _luhn_sum(number) % 10 == 0


def new_device_name() -> str:
    """A fresh IMEI-like DeviceName: ``86948`` + 9 random digits + the Luhn check digit."""
    body = LESSON_IMEI_PREFIX + "".join(secrets.choice(string.digits) for _ in range(9))
    return body + str((10 - _luhn_sum(body + "0")) % 10)


def new_product_key(prefix: str = "c1") -> str:
    """A fresh 11-character ProductKey (``prefix`` + random letters and digits), as long
    as the tutorial's ``k1hipglLdjU``."""
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(11 - len(prefix)))
