"""Saving a console session: the session's transcript as JSONL, CSV or an sscom log,
secrets masked on request.

The writers are airlab's own (:func:`airlab.at.formats.write_capture`, the same as
``airlab capture convert``), the masking is :func:`airlab.at.redact.redact_transcript`
(MQTT passwords, ``sign=``, tokens; each masked value keeps its length).  Files are
created with mode 0600: an unredacted capture holds signatures and tokens.

Example:
    >>> import os, stat, tempfile
    >>> from airlab.at.transcript import Transcript
    >>> t = Transcript(); t.add("sent", b'AT+MCONFIG="c","u","0f655b12"\\r\\n', wall=0.0)
    >>> path = save_transcript(t, os.path.join(tempfile.mkdtemp(), "s.jsonl"), redact=True)
    >>> Transcript.load(path).records[0].data
    b'AT+MCONFIG="c","u","********"\\r\\n'
    >>> oct(stat.S_IMODE(os.stat(path).st_mode))
    '0o600'
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

from airlab.at.transcript import Transcript
from airlab.errors import UsageError

__all__ = ["SAVE_FORMATS", "default_name", "save_transcript", "snapshot"]

#: The console's save formats and their file extensions.
SAVE_FORMATS: dict[str, str] = {"jsonl": ".jsonl", "csv": ".csv", "sscom": ".txt"}


def snapshot(transcript: Transcript) -> Transcript:
    """A copy of a transcript that may still grow (the session's)."""
    return Transcript(
        records=list(transcript.records), source=transcript.source,
        format=transcript.format, date=transcript.date, meta=dict(transcript.meta),
    )  # fmt: skip


def default_name(fmt: str, when: float | None = None) -> str:
    """``console-YYYYmmdd-HHMMSS.<ext>`` for a save made at ``when``.

    >>> default_name("sscom", 0.0).endswith(".txt")
    True
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if when is None else when))
    return f"console-{stamp}{SAVE_FORMATS[fmt]}"


def save_transcript(
    transcript: Transcript,
    path: str | os.PathLike[str],
    fmt: str | None = None,
    *,
    redact: bool = False,
    secrets: Iterable[str | bytes] = (),
) -> Path:
    """Write ``transcript`` to ``path`` (mode 0600) as ``fmt`` (``jsonl``, ``csv`` or
    ``sscom``; default from the extension, ``.txt``/``.log`` being sscom); ``redact``
    masks the secrets found automatically and the given ``secrets`` (device secrets).
    Returns the absolute path."""
    from airlab.at.formats import export_format_for, write_capture
    from airlab.at.redact import redact_transcript

    fmt = fmt or export_format_for(path)
    if fmt not in SAVE_FORMATS:
        raise UsageError("format", f"expected one of {', '.join(SAVE_FORMATS)}, got {fmt!r}")
    data = snapshot(transcript)
    if redact:
        data = redact_transcript(data, list(secrets))
    write_capture(data, path, fmt)
    return Path(path).resolve()
