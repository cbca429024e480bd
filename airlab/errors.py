"""Errors that say whose fault it is.

* :class:`UsageError` - a wrong argument, caught before anything was computed or sent.
* :class:`CaptureFormatError` - a capture file that cannot be read at all (single bad
  lines never raise: they become ``unparsed`` records).

Later layers add ``CommandError`` (the module refused a command), timeouts naming what
was awaited, ``ConnectionClosed`` and ``CloudRejected``.

Example:
    >>> try:
    ...     raise UsageError("device_name", "must not be empty")
    ... except UsageError as exc:
    ...     print(exc)
    device_name: must not be empty
"""

from __future__ import annotations

__all__ = ["AirlabError", "CaptureFormatError", "CloudRejected", "UsageError"]


class AirlabError(Exception):
    """Base class of every error airlab raises on purpose."""


class UsageError(AirlabError, ValueError):
    """A wrong argument, found before anything was computed or sent.

    ``field`` names the argument (as the user wrote it: ``device_name`` in Python,
    ``--device-name`` on the command line is derived from it).
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    @property
    def option(self) -> str:
        """The command-line spelling of the field (``--device-name``)."""
        return "--" + self.field.replace("_", "-")


class CaptureFormatError(AirlabError, ValueError):
    """A capture file whose format cannot be recognised or read at all."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


class CloudRejected(AirlabError):
    """The cloud (Alibaba Cloud IoT or the local emulator) refused a request.

    ``code`` is the platform's code (the JSON ``code`` of an HTTPS reply such as 401 or
    460, or a CONNACK return code; ``None`` when the module does not show it, as for a
    refused ``AT+MCONNECT``); ``explanation`` carries the emulator's human-readable
    reason when one is known (the sign content, what differs, ...).

    Example:
        >>> str(CloudRejected(401, "request auth error"))
        'cloud rejected the request: code 401: request auth error'
    """

    def __init__(
        self, code: int | str | None, message: str, explanation: str | None = None
    ) -> None:
        self.code = code
        self.message = message
        self.explanation = explanation
        text = "cloud rejected the request: "
        text += f"code {code}: {message}" if code is not None else message
        if explanation:
            text += f" ({explanation})"
        super().__init__(text)
