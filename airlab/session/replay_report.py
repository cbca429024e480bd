"""A replay's results (:class:`ReplayReport`, one :class:`ReplayStep` per chunk the host
sent, each :class:`Divergence`) and :func:`normalize`, the form in which the module's
answers are compared (what varies by nature masked).

Example:
    >>> from airlab.at.events import InfoLine
    >>> from airlab.session.replay_report import normalize
    >>> normalize(InfoLine(0.0, 0.0, b"", line="10.0.0.7"))
    'info: <ip>'
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from airlab.at.events import (
    CommandSent,
    DataSent,
    Event,
    Payload,
    Urc,
)

_SENT_KINDS = (CommandSent, DataSent)
_IP = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_VARYING_KEYS = ("iotId", "iotToken", "deviceSecret", "deviceToken", "id", "clientId")


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ReplayStep:
    """One step: what the host sent (``sent``, secrets masked), from log line ``line``,
    what the capture shows the module answered (``expected``) and what it answered now
    (``actual``), both normalised (see :func:`normalize`); ``command``: the command's
    name (``"+MCONNECT"``; ``""`` for a body typed after ``DOWNLOAD``)."""

    index: int
    line: int | None
    sent: str
    expected: tuple[str, ...]
    actual: tuple[str, ...]
    command: str = ""

    @property
    def diverged(self) -> bool:
        return self.expected != self.actual


@dataclass(frozen=True, slots=True)
class Divergence:
    """Where a step's replies differ: the step, and the first differing reply
    (``expected`` / ``actual``: ``None`` when one side has no more replies)."""

    step: ReplayStep
    position: int
    expected: str | None
    actual: str | None

    @property
    def line(self) -> int | None:
        return self.step.line

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else f"step {self.step.index}"
        if self.expected is None:
            what = f"the module also printed {self.actual!r}"
        elif self.actual is None:
            what = f"the module never printed {self.expected!r}"
        else:
            what = f"the capture shows {self.expected!r}, the module printed {self.actual!r}"
        return f"{where} ({self.step.sent}): {what}"


@dataclass
class ReplayReport:
    """All steps of a replay, the divergences, and notes (what was substituted, …)."""

    steps: list[ReplayStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def divergences(self) -> list[Divergence]:
        out = []
        for step in self.steps:
            if not step.diverged:
                continue
            n = max(len(step.expected), len(step.actual))
            for k in range(n):
                exp = step.expected[k] if k < len(step.expected) else None
                act = step.actual[k] if k < len(step.actual) else None
                if exp != act:
                    out.append(Divergence(step, k, exp, act))
                    break
        return out

    @property
    def first(self) -> Divergence | None:
        """The first divergence, or ``None`` when the module answered as captured."""
        d = self.divergences
        return d[0] if d else None

    @property
    def ok(self) -> bool:
        return not any(s.diverged for s in self.steps)

    def summary(self) -> str:
        """A few lines: steps replayed, the first divergence, how many in all."""
        lines = [f"{len(self.steps)} steps replayed"]
        divs = self.divergences
        if not divs:
            lines.append("the module answered every step as the capture shows")
        else:
            lines.append(f"first divergence: {divs[0]}")
            if len(divs) > 1:
                lines.append(f"{len(divs)} steps diverge in all")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_dataframe(self) -> Any:
        """One row per step: ``line``, ``sent``, ``expected``, ``actual``, ``diverged``."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "line": s.line,
                    "sent": s.sent,
                    "expected": " | ".join(s.expected),
                    "actual": " | ".join(s.actual),
                    "diverged": s.diverged,
                }
                for s in self.steps
            ]
        )


# ---------------------------------------------------------------------------- normalising


def _json_norm(data: bytes | str, subs: Sequence[tuple[str, str]]) -> str | None:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    try:
        obj = json.loads(_apply(text, subs))
    except ValueError:
        return None

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ("<varies>" if k in _VARYING_KEYS else walk(x)) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return json.dumps(walk(obj), separators=(",", ":"), ensure_ascii=False)


def _apply(text: str, subs: Sequence[tuple[str, str]]) -> str:
    for ours, theirs in subs:
        if ours and ours != theirs:
            text = text.replace(ours, theirs)
    return text


def normalize(ev: Event, subs: Sequence[tuple[str, str]] = ()) -> str:
    """A received event as comparable text: ``kind: text`` with what varies masked
    (JSON iotId/iotToken/deviceSecret/id values, IP addresses, ``+NITZ`` times) and
    the ``subs`` ``(ours, theirs)`` replacements applied.

    >>> from airlab.at.events import InfoLine
    >>> normalize(InfoLine(0.0, 0.0, b"", line='+SAPBR: 1,1,"10.1.2.3"'))
    'info: +SAPBR: 1,1,"<ip>"'
    """
    if isinstance(ev, Payload):
        body = _json_norm(ev.data, subs)
        if body is None:
            body = _apply(ev.data.decode("utf-8", "replace"), subs)
        return f"payload: {ev.header} {body}"
    text = _apply(ev.text, subs)
    if isinstance(ev, Urc):
        if ev.name == "+NITZ":
            return "urc: +NITZ: <time>"
        if ev.payload is not None:
            body = _json_norm(ev.payload, subs)
            if body is not None:
                head = text.split(" byte,", 1)[0]
                text = f"{head} byte,{body}"
    text = _IP.sub("<ip>", text)
    return f"{ev.kind}: {text}"
