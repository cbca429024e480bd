"""The checker's results: a step's :class:`Verdict`, its :class:`Finding` s, a
:class:`StepCheck` row and the whole :class:`FollowReport`.

Example:
    >>> from airlab.follow.report import Finding, Verdict
    >>> Verdict.DIFFERS.mark
    '✗ differs'
    >>> str(Finding("sign", "made with the tutorial's secret"))
    "sign: made with the tutorial's secret"
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from airlab.errors import UsageError
from airlab.follow.tutorial import (
    Method,
    TutorialStep,
)


class DeviceLike(Protocol):
    """What the checker needs of an identity (``lab.identity`` is one)."""

    product_key: str
    device_name: str
    device_secret: str | None
    product_secret: str | None
    region: str


class Verdict(StrEnum):
    """A step's mark."""

    OK = "ok"  # as the tutorial, for your device
    DIFFERS = "differs"  # a mistake: see why
    MISSING = "missing"  # skipped: a later step was typed
    PENDING = "pending"  # typed, the module has not answered yet
    TODO = "todo"  # not typed yet
    EXTRA = "extra"  # not one of the tutorial's steps

    @property
    def mark(self) -> str:
        return _MARKS[self]


_MARKS = {
    Verdict.OK: "✓ ok",
    Verdict.DIFFERS: "✗ differs",
    Verdict.MISSING: "– missing",
    Verdict.PENDING: "… waiting",
    Verdict.TODO: "· to do",
    Verdict.EXTRA: "+ extra",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation about a step: ``what`` it concerns (``"sign"``, ``"length"``,
    ``"header"``, ``"order"``, ``"host"``, ``"timing"``, ``"result"``, ``"value"``,
    ``"device"``, ``"varies"`` …), the explanation, and whether it is a ``mistake``
    (else a note: an expected difference)."""

    what: str
    text: str
    mistake: bool = True

    def __str__(self) -> str:
        return f"{self.what}: {self.text}"


@dataclass(frozen=True, slots=True)
class StepCheck:
    """One row of the side-by-side table.

    ``step``: the tutorial step (``None`` for an extra command); ``sent`` / ``got``:
    what the student sent and what the module answered (``None`` / ``()`` when not
    typed); ``expected``: the line expected for the student's device, secrets shown as
    their first characters; ``capture_sent`` / ``capture_got``: the tutorial's capture
    at that step; ``findings``: mistakes and notes; ``wall``: when it was sent.
    """

    step: TutorialStep | None
    verdict: Verdict
    sent: str | None = None
    got: tuple[str, ...] = ()
    expected: str | None = None
    findings: tuple[Finding, ...] = ()
    wall: float | None = None

    @property
    def capture_sent(self) -> str | None:
        return self.step.sent if self.step else None

    @property
    def capture_got(self) -> tuple[str, ...]:
        return self.step.replies if self.step else ()

    @property
    def mistakes(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.mistake)

    @property
    def notes(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.mistake)

    @property
    def why(self) -> str:
        """The mistakes, one per line (empty when there are none)."""
        return "\n".join(str(f) for f in self.mistakes)

    @property
    def label(self) -> str:
        """``"3 激活网络 · APN"`` (or ``"extra"``)."""
        if self.step is None:
            return "extra"
        return f"{self.step.index} {self.step.name_zh}"


@dataclass(frozen=True, slots=True)
class FollowReport:
    """The checker's view of a typed session for one method.

    ``rows``: every typed line in order (missing steps inserted where they were
    skipped); ``steps``: one row per tutorial step (its latest attempt, else missing
    or to do).
    """

    method: Method
    rows: tuple[StepCheck, ...]
    steps: tuple[StepCheck, ...]

    @property
    def done(self) -> bool:
        """Every tutorial step typed and ok."""
        return all(s.verdict is Verdict.OK for s in self.steps)

    @property
    def progress(self) -> str:
        """``"5/11 ok"``."""
        ok = sum(s.verdict is Verdict.OK for s in self.steps)
        return f"{ok}/{len(self.steps)} ok"

    def step(self, key_or_index: str | int) -> StepCheck:
        """The step row with this key (its first step of that key) or 1-based index."""
        for row in self.steps:
            assert row.step is not None
            if key_or_index in (row.step.key, row.step.index):
                return row
        raise UsageError("step", f"no step {key_or_index!r} in {self.method.value}")

    def to_text(self, *, notes: bool = False) -> str:
        """The per-step table as text: mark, step, what you sent, why it differs."""
        lines = [f"{self.method.title_zh} ({self.method.title_en}): {self.progress}"]
        for row in self.steps:
            lines.append(f"{row.verdict.mark:10} {row.label}: {row.sent or ''}")
            lines += [f"{'':10}   ✗ {f}" for f in row.mistakes]
            if notes:
                lines += [f"{'':10}   · {f}" for f in row.notes]
        extras = [r for r in self.rows if r.verdict is Verdict.EXTRA]
        for row in extras:
            lines.append(f"{row.verdict.mark:10} {row.sent}")
            lines += [f"{'':10}   {f}" for f in row.findings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()
