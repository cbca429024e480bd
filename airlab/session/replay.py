"""Replay a capture's host side against a module and report where the replies diverge.

:func:`replay` types every chunk the host sent in an imported capture (commands, and the
body after ``DOWNLOAD`` / ``>``) into a :class:`~airlab.session.ModemSession` (the
simulator with the cloud emulator, or a real module), step by step, and compares what
the module answers with what the capture shows.  A *step* is one chunk the host sent
and everything the module printed until the host's next chunk.

What legitimately varies is not a divergence:

* the device: the capture was made with ``capture_identity`` (default: the tutorial's
  device); the replay logs in as ``identity`` (default: the same).  Its productKey and
  DeviceName are substituted in what is sent (an ``AT+HTTPDATA`` length follows its
  body) and mapped back in what is received;
* signatures: a ``sign=`` or an ``AT+MCONFIG`` password that is valid for the capture's
  device, or masked by :mod:`airlab.at.redact` (``****``), is computed again for
  ``identity``.  A wrong signature stays wrong;
* what the cloud issues: iotId / iotToken (the later ``AT+MCONFIG`` gets this replay's,
  as a user would), a registered deviceSecret, message ids; IP addresses; network time
  (``+NITZ``).

Timing: only the gap that changes the module's answer is reproduced by default
(``timing="window"``): the delay between ``CONNECT OK`` and the host's next command
(the server drops a link that stays idle ~5 s), capped at ``max_wait``.  ``"full"``
reproduces every gap (capped), ``"none"`` none.  A capture that starts on an open MQTT
session (``AT+MPUB`` before any ``AT+MCONNECT``) is preceded by a direct MQTT login
(``login_first="auto"``; not compared).

:func:`diagnose` adds the tutorial's warnings (:mod:`airlab.at.pitfalls`) and ties the
first divergence to the warning found at or before it.

The results and :func:`normalize` are in :mod:`airlab.session.replay_report`, the
capture's steps and their rewriting in :mod:`airlab.session.replay_rewrite`, and
:class:`Diagnosis` with its :data:`RELATED` table in :mod:`airlab.session.replay_diagnosis`.

Example:
    >>> from airlab.cloud import CloudEmulator  # doctest: +SKIP
    >>> with CloudEmulator(fixture="tutorial") as emu:  # doctest: +SKIP
    ...     s = replay_session(emu)
    ...     report = replay("data/captures/seed_direct_mqtt.log", s)
    ...     report.ok
    True
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airlab.at.events import (
    Event,
    Urc,
)
from airlab.at.pitfalls import check_transcript
from airlab.at.redact import redact_bytes
from airlab.at.transcript import Transcript
from airlab.errors import UsageError
from airlab.session.replay_diagnosis import (
    DEFAULT_RELATED,
    RELATED,
    Diagnosis,
)
from airlab.session.replay_report import (
    _SENT_KINDS,
    Divergence,
    ReplayReport,
    ReplayStep,
    normalize,
)
from airlab.session.replay_rewrite import (
    _command_name,
    _load,
    _Rewriter,
    _Step,
    _steps,
)

__all__ = [
    "DEFAULT_RELATED",
    "RELATED",
    "TIMINGS",
    "Diagnosis",
    "Divergence",
    "ReplayReport",
    "ReplayStep",
    "diagnose",
    "normalize",
    "replay",
    "replay_session",
]

TIMINGS = ("window", "full", "none")


# ---------------------------------------------------------------------------- replay


def replay(
    capture: Transcript | str | os.PathLike[str],
    session: Any,
    *,
    identity: Any = None,
    capture_identity: Any = None,
    timing: str = "window",
    max_wait: float = 8.0,
    step_timeout: float = 10.0,
    grace: float = 0.3,
    login_first: str | bool = "auto",
) -> ReplayReport:
    """Type the capture's host side into ``session`` and compare the answers.

    ``capture``: a Transcript or a capture file (any supported format).  ``identity``:
    the device to log in as (an :class:`airlab.lesson.Identity`; default
    ``capture_identity``); ``capture_identity``: the device the capture was made with
    (default: the tutorial's).  ``timing``: ``"window"``, ``"full"`` or ``"none"``
    (see the module docstring); ``max_wait`` caps a reproduced gap.  ``step_timeout``:
    seconds to wait for a step's replies; once a reply differs, only ``grace`` more.
    The session is used raw (:meth:`~airlab.session.ModemSession.send_text`): start it
    fresh (``lab.reopen()``) so the module's state is the capture's.

    Returns a :class:`ReplayReport`.
    """
    from airlab.lesson import Identity

    if timing not in TIMINGS:
        raise UsageError("timing", f"must be one of {', '.join(TIMINGS)}, got {timing!r}")
    cap_id = capture_identity or Identity.tutorial()
    me = identity or cap_id
    transcript = _load(capture)
    steps, _before = _steps(transcript)
    report = ReplayReport()
    rw = _Rewriter(cap_id, me, report)
    if me.device_name != cap_id.device_name or me.product_key != cap_id.product_key:
        report.notes.append(
            f"replayed as device {me.product_key}/{me.device_name} (captured as "
            f"{cap_id.product_key}/{cap_id.device_name}); signatures computed again"
        )
    if not steps:
        report.notes.append("the capture has nothing the host sent")
        return report

    if _needs_login(steps, login_first):
        from airlab.session.recipes import direct_mqtt

        direct_mqtt(session, **me.device())
        report.notes.append(
            "the capture starts on an open MQTT session: logged in with direct MQTT first "
            "(not compared)"
        )

    secrets = [v for v in (cap_id.device_secret, cap_id.product_secret) if v]
    link_up_cap: float | None = None  # capture's wall time of the last CONNECT OK
    link_up_me: float | None = None  # our monotonic time of it
    prev_wall = math.nan
    prev_mono = time.monotonic()
    actuals: list[list[Event]] = []
    written: list[bytes] = []
    pos = session.mark()
    for i, step in enumerate(steps):
        data = _rewrite(rw, steps, i)
        written.append(data)
        # pace
        wait = 0.0
        if timing == "full" and not math.isnan(step.wall) and not math.isnan(prev_wall):
            wait = max(0.0, step.wall - prev_wall) - (time.monotonic() - prev_mono)
        elif (
            timing == "window"
            and link_up_cap is not None
            and link_up_me is not None
            and not math.isnan(step.wall)
        ):
            wait = (step.wall - link_up_cap) - (time.monotonic() - link_up_me)
        wait = min(max(0.0, wait), max_wait)
        if wait > 0:
            _pause(session, wait)
        if actuals:  # what arrived before this write answers the previous step
            late, pos = _drain(session, pos)
            actuals[-1].extend(late)
        link_up_cap = link_up_me = None
        mark = session.send_text(data, end="")
        prev_wall, prev_mono = step.wall, time.monotonic()
        got, pos = _collect(session, mark, step.expected, rw, step_timeout, grace)
        actuals.append(got)
        rw.learn(step.expected, ours=False)
        rw.learn(got, ours=True)
        for ev in got:
            if isinstance(ev, Urc) and ev.name == "CONNECT OK":
                link_up_me = ev.mono
        for ev in step.expected:
            if isinstance(ev, Urc) and ev.name == "CONNECT OK" and not math.isnan(ev.wall):
                link_up_cap = ev.wall
        if link_up_cap is None:
            link_up_me = None
    # anything the module printed after the last step counts against it
    actuals[-1].extend(_settle(session, pos, grace))
    back = rw.back
    for i, (step, got) in enumerate(zip(steps, actuals, strict=True)):
        shown = redact_bytes(step.data, secrets).decode("utf-8", "replace").strip("\r\n")
        shown = shown.replace("\r\n", " ⏎ ")
        report.steps.append(
            ReplayStep(
                i,
                step.line,
                shown if len(shown) <= 120 else shown[:119] + "…",
                tuple(normalize(e) for e in step.expected),
                tuple(normalize(e, back + _tail_subs(e, written[i], step.data)) for e in got),
                _command_name(step.data),
            )
        )
    return report


def _tail_subs(ev: Event, ours: bytes, theirs: bytes) -> list[tuple[str, str]]:
    """A line the module printed that is the end of what was typed (the rest of a body
    after a short ``AT+HTTPDATA``, read as a command line) maps to the same end of the
    capture's bytes, when the replay's bytes have the capture's length."""
    if ev.kind not in ("unknown", "echo") or len(ours) != len(theirs):
        return []
    text = ev.text.encode("utf-8", "replace")
    mine, capt = ours.rstrip(b"\r\n"), theirs.rstrip(b"\r\n")
    if not text or len(mine) != len(capt) or not mine.endswith(text):
        return []
    tail = capt[len(capt) - len(text) :]
    return [(text.decode("utf-8", "replace"), tail.decode("utf-8", "replace"))]


def _rewrite(rw: _Rewriter, steps: Sequence[_Step], i: int) -> bytes:
    """Step ``i``'s bytes for the replay's identity (an HTTPDATA length follows its body)."""
    data = steps[i].data
    name = _command_name(data)
    prev_cmd = _command_name(steps[i - 1].data) if i else ""
    if prev_cmd in ("+HTTPDATA", "+HTTPEXPOST") and name == "":
        return rw.body(data)
    if name == "+MCONFIG":
        line, sep, rest = data.decode("utf-8", "replace").partition("\r")
        return (rw.mconfig(line) + sep + rest).encode("utf-8")
    data = rw.names(data.decode("utf-8", "replace")).encode("utf-8")
    if name == "+HTTPDATA" and i + 1 < len(steps):
        body_old = steps[i + 1].data
        delta = len(rw.body(body_old)) - len(body_old)
        m = re.search(rb"=\s*(\d+)", data)
        if delta and m:
            fixed = str(int(m.group(1)) + delta).encode()
            data = data[: m.start(1)] + fixed + data[m.end(1) :]
    return data


def _needs_login(steps: Sequence[_Step], login_first: str | bool) -> bool:
    if login_first is False or login_first == "never":
        return False
    if login_first is True:
        return True
    for step in steps:
        name = _command_name(step.data)
        if name in ("+MCONNECT", "+MIPSTART", "+SSLMIPSTART", "+MCONFIG"):
            return False
        if name in ("+MPUB", "+MPUBEX", "+MSUB", "+MUNSUB", "+MQTTMSGGET"):
            return True
    return False


def _pause(session: Any, seconds: float) -> None:
    """Wait ``seconds`` on the session's event stream (what arrives meanwhile is kept)."""
    from airlab.session.errors import ResponseTimeout

    with contextlib.suppress(ResponseTimeout):
        session.wait_for_event(lambda e: False, seconds, since=session.mark())


def _collect(
    session: Any,
    mark: int,
    expected: Sequence[Event],
    rw: _Rewriter,
    timeout: float,
    grace: float,
) -> tuple[list[Event], int]:
    """The module's replies to one step: as many as the capture shows (or fewer after
    ``timeout``; once one differs, only ``grace`` more seconds)."""
    from airlab.session.errors import ResponseTimeout

    want = [normalize(e) for e in expected]
    got: list[Event] = []
    deadline = time.monotonic() + timeout
    pos = mark
    differs = False
    while len(got) < len(want) or not want:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            ev = session.wait_for_event(lambda e: True, left, since=pos)
        except ResponseTimeout:
            break
        pos = _index_after(session, pos, ev)
        if isinstance(ev, _SENT_KINDS):
            continue
        got.append(ev)
        k = len(got) - 1
        if not differs and (k >= len(want) or normalize(ev, rw.back) != want[k]):
            differs = True
            deadline = min(deadline, time.monotonic() + grace)
        if not want:
            deadline = min(deadline, time.monotonic() + grace)
    return got, pos


def _drain(session: Any, pos: int) -> tuple[list[Event], int]:
    """Received events from index ``pos`` on that are already there, and the next index."""
    evs = session.events_since(pos)
    return [e for e in evs if not isinstance(e, _SENT_KINDS)], pos + len(evs)


def _index_after(session: Any, pos: int, ev: Event) -> int:
    """The index just past ``ev`` (found from ``pos`` on)."""
    for k, e in enumerate(session.events_since(pos)):
        if e is ev:
            return pos + k + 1
    return pos + 1


def _settle(session: Any, mark: int, grace: float) -> list[Event]:
    from airlab.session.errors import ResponseTimeout

    out: list[Event] = []
    pos = mark
    while True:
        try:
            ev = session.wait_for_event(lambda e: True, grace, since=pos)
        except ResponseTimeout:
            return out
        pos = _index_after(session, pos, ev)
        if not isinstance(ev, _SENT_KINDS):
            out.append(ev)


# ---------------------------------------------------------------------------- diagnose


def diagnose(
    capture: Transcript | str | os.PathLike[str], session: Any, **replay_options: Any
) -> Diagnosis:
    """Check the capture for the tutorial's warnings and replay it (see :func:`replay`)."""
    transcript = _load(capture)
    return Diagnosis(check_transcript(transcript), replay(transcript, session, **replay_options))


# ---------------------------------------------------------------------------- helpers


def replay_session(
    cloud: Any,
    *,
    imei: str | None = None,
    endpoints: str | os.PathLike[str] | None = None,
    **session_options: Any,
) -> Any:
    """A fresh simulated module (``airsim://``, profile ``instant``) whose Aliyun host
    names resolve to ``cloud`` (a running :class:`~airlab.cloud.CloudEmulator`); the
    caller closes it.  ``imei``: what ``AT+CGSN`` answers (default the tutorial's);
    ``endpoints``: the cloud's endpoints file if already written (else one is written
    to a temporary folder).
    """
    import airlab  # noqa: F401  (registers airsim://)
    from airlab.session import ModemSession

    if endpoints is None:
        folder = Path(tempfile.mkdtemp(prefix="airlab-replay-"))
        endpoints = cloud.write_endpoints(folder / "endpoints.json")
    imei = imei or "868488076506128"
    url = f"airsim://replay?profile=instant&cloud={endpoints}&imei={imei}"
    return ModemSession(url, **session_options)
