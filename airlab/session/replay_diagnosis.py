"""A capture's warnings (:mod:`airlab.at.pitfalls`) tied to its replay's first
divergence: :class:`Diagnosis` and the table of which warnings can make which
command's replies diverge (:data:`RELATED`).

Example:
    >>> from airlab.session.replay_diagnosis import RELATED
    >>> RELATED["+MCONNECT"][0]
    'mconnect-late'
"""

from __future__ import annotations

from dataclasses import dataclass

from airlab.at.pitfalls import Finding
from airlab.session.replay_report import (
    Divergence,
    ReplayReport,
)

#: Which warnings can make a command's replies diverge, likeliest first.
RELATED: dict[str, tuple[str, ...]] = {
    "+MCONNECT": ("mconnect-late", "mconfig-order", "typed-not-copied", "mqtt-host"),
    "+SSLMIPSTART": ("mconnect-late", "typed-not-copied", "mqtt-host"),
    "+MIPSTART": ("mconnect-late", "typed-not-copied", "mqtt-host"),
    "+MCONFIG": ("typed-not-copied", "mconfig-order"),
    "": ("httpdata-length", "typed-not-copied"),
    "+HTTPDATA": ("httpdata-length", "typed-not-copied"),
    "+HTTPACTION": (
        "httpdata-length",
        "typed-not-copied",
        "content-type-space",
        "cgatt-before-sapbr",
        "httpaction-status",
    ),
    "+HTTPREAD": ("httpdata-length", "typed-not-copied", "content-type-space", "httpaction-status"),
    "+CGATT": ("cgatt-before-sapbr",),
    "+SAPBR": ("cgatt-before-sapbr", "typed-not-copied"),
    "+MPUB": ("qos1-in-flight", "typed-not-copied"),
    "+MPUBEX": ("qos1-in-flight", "typed-not-copied"),
}
DEFAULT_RELATED: tuple[str, ...] = ("typed-not-copied",)


@dataclass
class Diagnosis:
    """A capture's warnings (:mod:`airlab.at.pitfalls`) and its replay, tied together."""

    findings: list[Finding]
    report: ReplayReport

    @property
    def first(self) -> Divergence | None:
        return self.report.first

    def warnings_at(self, divergence: Divergence | None = None) -> list[Finding]:
        """The warnings that explain a divergence (default: the first), best first:
        those found at its step, then those :data:`RELATED` to its command, wherever
        they are in the capture (a late MCONNECT shows first as a ``CLOSED`` after
        ``CONNECT OK``), in the order of that table."""
        div = divergence or self.first
        if div is None:
            return []
        steps = self.report.steps
        k = steps.index(div.step)
        lo = div.step.line
        hi = next((s.line for s in steps[k + 1 :] if s.line is not None), None)

        def here(f: Finding) -> bool:
            return (
                lo is not None and f.line is not None and f.line >= lo
                and (hi is None or f.line < hi)
            )  # fmt: skip

        related = RELATED.get(div.step.command, DEFAULT_RELATED)
        picked = [f for f in self.findings if here(f) or f.id in related]

        def rank(f: Finding) -> tuple[int, int, int]:
            order = related.index(f.id) if f.id in related else len(related)
            dist = abs((f.line or 0) - (lo or 0))
            return (0 if here(f) else 1, order, dist)

        return sorted(picked, key=rank)

    @property
    def warning_ids(self) -> list[str]:
        return list(dict.fromkeys(f.id for f in self.findings))

    def grade(self, warning: str, line: int | str | None = "any") -> str:
        """Say whether ``warning`` (a :data:`~airlab.at.pitfalls.PITFALLS` id) is the
        warning this capture hits, and ``line`` the log line of the first divergence
        (``None``: it does not diverge; ``"any"``: not asked); right / not yet, and why.

        The warning hit is the best of :meth:`warnings_at` when the replay diverges,
        else the capture's first finding.
        """
        from airlab.at.pitfalls import PITFALLS

        hit = self.warnings_at()
        truth = hit[0].id if hit else (self.findings[0].id if self.findings else None)
        first = self.first
        true_line = first.line if first is not None else None
        if warning not in PITFALLS:
            return f"Not yet: {warning!r} is not a warning id; choose one of {', '.join(PITFALLS)}."
        if warning != truth:
            seen = ", ".join(self.warning_ids) or "none"
            why = (
                f"the first divergence is at line {true_line} ({first.step.sent[:40]}…)"
                if first is not None
                else "the replay does not diverge"
            )
            return (
                f"Not yet: {warning!r} is not the warning this log hits. Warnings found: "
                f"{seen}; {why}: which one explains it?"
            )
        if line != "any" and line != true_line:
            where = (
                "the replay does not diverge (answer None)"
                if true_line is None
                else "look at report.first: its line is the log line of the step"
            )
            return f"Half right: the warning is {warning!r}, but the line is not {line!r}: {where}."
        return f"Right: [{warning}] {PITFALLS[warning].title}. {PITFALLS[warning].warning_zh}"

    def summary(self) -> str:
        lines = [self.report.summary()]
        hit = self.warnings_at()
        if hit:
            top = hit[0]
            lines.append(f"warning hit there: [{top.id}] {top.title}")
            lines.append(f"  tutorial: {top.warning_zh}")
            lines.append(f"  fix: {top.fix}")
            others = list(dict.fromkeys(f.id for f in hit[1:] if f.id != top.id))
            if others:
                lines.append("other warnings that may play a part: " + ", ".join(others))
        elif self.findings:
            lines.append("warnings in the capture: " + ", ".join(self.warning_ids))
        else:
            lines.append("no warning of the tutorial found in the capture")
        return "\n".join(lines)
