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
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airlab.at.events import (
    CommandSent,
    DataSent,
    Direction,
    Event,
    Payload,
    Urc,
)
from airlab.at.parser import AtParser
from airlab.at.pitfalls import Finding, check_transcript
from airlab.at.redact import redact_bytes
from airlab.at.transcript import RecordKind, Transcript
from airlab.errors import UsageError

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


# ---------------------------------------------------------------------------- steps


@dataclass
class _Step:
    data: bytes
    line: int | None
    wall: float
    expected: list[Event] = field(default_factory=list)


def _steps(transcript: Transcript) -> tuple[list[_Step], list[Event]]:
    """The capture as steps (sent chunk + received events) and the received events that
    came before the host's first chunk (boot URCs: not replayed)."""
    steps: list[_Step] = []
    before: list[Event] = []
    parser = AtParser()
    last = (math.nan, math.nan)
    for rec in transcript.records:
        if rec.kind is RecordKind.MARKER:
            parser = AtParser()
            continue
        if rec.kind is not RecordKind.DATA:
            continue
        if rec.direction is Direction.SENT:
            steps.append(_Step(rec.data, rec.line_no, rec.wall))
        evs = parser.feed(rec.direction, rec.data, rec.wall, rec.mono)
        last = (rec.wall, rec.mono)
        received = [e for e in evs if not isinstance(e, _SENT_KINDS)]
        (steps[-1].expected if steps else before).extend(received)
    tail = [e for e in parser.close(*last) if not isinstance(e, _SENT_KINDS)]
    (steps[-1].expected if steps else before).extend(tail)
    return steps, before


# ---------------------------------------------------------------------------- rewriting


def _masked(value: str) -> bool:
    return bool(value) and set(value) == {"*"}


class _Rewriter:
    """Rewrites what the capture's host sent for the replay's identity, and remembers
    every (ours, theirs) pair to map the module's answers back."""

    def __init__(self, capture_identity: Any, identity: Any, report: ReplayReport) -> None:
        self.cap = capture_identity
        self.me = identity
        self.report = report
        self.subs: dict[str, str] = {}
        self.cap_iot_id: str | None = None
        self.cap_token: str | None = None
        self.iot_id: str | None = None
        self.token: str | None = None
        if identity.device_name != capture_identity.device_name:
            self.subs[identity.device_name] = capture_identity.device_name
        if identity.product_key != capture_identity.product_key:
            self.subs[identity.product_key] = capture_identity.product_key

    @property
    def back(self) -> list[tuple[str, str]]:
        return sorted(self.subs.items(), key=lambda kv: len(kv[0]), reverse=True)

    def names(self, text: str) -> str:
        text = text.replace(self.cap.device_name, self.me.device_name)
        return text.replace(self.cap.product_key, self.me.product_key)

    # -- HTTP form bodies --

    def body(self, raw: bytes) -> bytes:
        from airlab.aliyun.forms import parse_form
        from airlab.aliyun.signing import (
            form_sign_content,
            register_sign_content,
            sign,
            verify_signature,
        )

        text = raw.decode("utf-8", "replace")
        end = text[len(text.rstrip("\r\n")) :]
        body = text.rstrip("\r\n")
        form = parse_form(body)
        old_sign = form.get("sign")
        new = self.names(body)
        if old_sign:
            method = form.get("signmethod") or form.get("signMethod") or "hmacmd5"
            method = method.lower()
            skip = {"sign", "signmethod", "signMethod", "version", "resources"}
            try:
                if "random" in form:
                    secret_cap, secret_me = self.cap.product_secret, self.me.product_secret
                    content = register_sign_content(
                        form.get("deviceName", ""), form.get("productKey", ""), form["random"]
                    )
                else:
                    secret_cap, secret_me = self.cap.device_secret, self.me.device_secret
                    content = form_sign_content(form, exclude=skip)
                valid = _masked(old_sign) or (
                    bool(secret_cap) and verify_signature(secret_cap, content, old_sign, method)
                )
                if valid and secret_me:
                    new_form = parse_form(new)
                    if "random" in new_form:
                        content = register_sign_content(
                            new_form.get("deviceName", ""),
                            new_form.get("productKey", ""),
                            new_form["random"],
                        )
                    else:
                        content = form_sign_content(new_form, exclude=skip)
                    fresh = sign(secret_me, content, method)
                    if old_sign.isupper():
                        fresh = fresh.upper()
                    new = new.replace(f"sign={old_sign}", f"sign={fresh}")
                    self.subs[fresh] = old_sign
            except (UsageError, ValueError, KeyError):
                pass  # a body too broken to sign stays as it was typed
        return (new + end).encode("utf-8")

    # -- AT+MCONFIG --

    def mconfig(self, line: str) -> str:
        from airlab.aliyun.clientid import parse_client_id
        from airlab.aliyun.signing import mqtt_sign_content, sign, verify_signature

        head, _, value = line.partition("=")
        parts = _split_keep(value)
        texts = [p.strip().strip('"') for p in parts]
        new = list(texts)
        for k, v in enumerate(texts[:3]):
            if (
                self.cap_iot_id
                and self.iot_id
                and (v == self.cap_iot_id or (_masked(v) and len(v) == len(self.cap_iot_id)))
            ):
                new[k] = self.iot_id
                self.subs[self.iot_id] = v
            elif (
                self.token
                and self.cap_token is not None
                and (v == self.cap_token or (_masked(v) and len(v) == len(self.cap_token)))
            ):
                new[k] = self.token
                self.subs[self.token] = v
            else:
                new[k] = self.names(v)
        # a direct-MQTT sign, wherever the fields were put
        user = next((t for t in texts[:3] if "&" in t), None)
        cid = next((t for t in texts[:3] if "|" in t), None)
        if user is not None and not self.token:
            dn, _, pk = user.partition("&")
            parsed = parse_client_id(cid) if cid else None
            base = cid.split("|", 1)[0] if cid else (texts[0] if texts else "")
            method = (parsed.sign_method_text if parsed else None) or "hmacmd5"
            ts = parsed.timestamp if parsed else None
            for k, v in enumerate(texts[:3]):
                if v in (user, cid) or not v:
                    continue
                try:
                    content = mqtt_sign_content(base, dn, pk, ts)
                    valid = _masked(v) or (
                        bool(self.cap.device_secret)
                        and verify_signature(self.cap.device_secret, content, v, method)
                    )
                    if valid and self.me.device_secret:
                        content = mqtt_sign_content(
                            self.names(base), self.names(dn), self.names(pk), ts
                        )
                        fresh = sign(self.me.device_secret, content, method)
                        if v.isupper():
                            fresh = fresh.upper()
                        new[k] = fresh
                        self.subs[fresh] = v
                except (UsageError, ValueError):
                    pass
                break
        out = []
        for part, old, val in zip(parts, texts, new, strict=False):
            out.append(part.replace(old, val, 1) if old else part)
        out.extend(parts[len(new) :])
        return head + "=" + ",".join(out)

    def learn(self, events: Sequence[Event], *, ours: bool) -> None:
        """Read iotId/iotToken from an ``+HTTPREAD`` answer (the capture's or ours)."""
        for ev in events:
            if not isinstance(ev, Payload):
                continue
            try:
                data = json.loads(ev.data.decode("utf-8", "replace"))
            except ValueError:
                continue
            inner = data.get("data") if isinstance(data, dict) else None
            if isinstance(inner, dict) and "iotId" in inner:
                if ours:
                    self.iot_id, self.token = str(inner["iotId"]), str(inner.get("iotToken"))
                else:
                    self.cap_iot_id = str(inner["iotId"])
                    self.cap_token = str(inner.get("iotToken", ""))


def _split_keep(value: str) -> list[str]:
    """Split on commas outside quotes, keeping each part's text as written."""
    parts, cur, quoted = [], "", False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def _command_name(data: bytes) -> str:
    m = re.match(rb"\s*AT\s*([+^][A-Z0-9_]+)", data, re.IGNORECASE)
    return m.group(1).decode().upper() if m else ""


# ---------------------------------------------------------------------------- replay


def _load(capture: Transcript | str | os.PathLike[str]) -> Transcript:
    if isinstance(capture, Transcript):
        return capture
    from airlab.at.formats import read_capture

    return read_capture(capture)


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
