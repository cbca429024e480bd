"""Compare what a student typed with the tutorial, step by step, and say why it differs.

The student types on their own device (a fresh one per lesson run) while the tutorial's
captures used the tutorial's device.  So each typed line is compared with the line
expected *for the student's device, built the tutorial's way* (their DeviceName, their
secret's sign, their iotId/iotToken, their random), and the capture's line is shown
beside it.  Differences that come only from the device (name, sign, token) or from
parts that vary by nature (tokens, iotId, lengths of replies, times) are notes, never
mistakes.  Secrets stay out: an expected signature or token shows as its first four
characters (:func:`~airlab.aliyun.verification.signature_prefix`).

This module walks the turns; the rows it builds are in :mod:`airlab.follow.report`,
the expected lines in :mod:`airlab.follow.expect`, and why a step differs in
:mod:`airlab.follow.diagnose_http` and :mod:`airlab.follow.diagnose_mqtt`.

Example:
    >>> from types import SimpleNamespace
    >>> from airlab.at import Direction, parse_stream
    >>> me = SimpleNamespace(product_key="k1hipglLdjU", device_name="869480000000001",
    ...     device_secret="0123456789abcdef0123456789abcdef", product_secret=None,
    ...     region="cn-shanghai")
    >>> host = "a1qsHBbKtmc.iot-as-mqtt.cn-shanghai.aliyuncs.com"
    >>> events = parse_stream([
    ...     (Direction.SENT, f'AT+SSLMIPSTART="{host}",1883\\r\\n'.encode(), 0.0, 0.0),
    ...     (Direction.RECEIVED, b"\\r\\nOK\\r\\n\\r\\nCONNECT OK\\r\\n", 0.1, 0.1)])
    >>> row = follow_events("direct_mqtt", me, events).rows[-1]
    >>> row.verdict.value, row.step.name_zh
    ('differs', '建立连接')
    >>> print(row.why)  # doctest: +ELLIPSIS
    host: a1qsHBbKtmc.iot-as-mqtt... carries the productKey a1qsHBbKtmc, not yours (k1hipglLdjU)...
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from airlab.aliyun.methods import DEFAULT_SIGN_METHOD, parse_sign_method, wire_sign_method
from airlab.at.events import Event, Urc
from airlab.follow.diagnose_http import (
    _d_apn,
    _d_body,
    _d_cgatt,
    _d_header,
    _d_httpaction,
    _d_httpdata,
    _d_httpread,
    _d_url,
    _intended_body,
)
from airlab.follow.diagnose_mqtt import (
    _d_mconfig,
    _d_mconnect,
    _d_mipstart,
    _d_mpub,
    _d_msgset,
    _d_msub,
    _login_refusal,
)
from airlab.follow.expect import (
    MCONNECT_WINDOW,
    _args,
    _Context,
    _expected,
    _Options,
    _result_findings,
)
from airlab.follow.expect import (
    OTHER_HOST_KEY as OTHER_HOST_KEY,  # re-exported
)
from airlab.follow.expect import (
    TUTORIAL_DEVICE_NAME as TUTORIAL_DEVICE_NAME,  # re-exported
)
from airlab.follow.expect import (
    TUTORIAL_IOT_ID as TUTORIAL_IOT_ID,  # re-exported
)
from airlab.follow.expect import (
    TUTORIAL_IOT_TOKEN as TUTORIAL_IOT_TOKEN,  # re-exported
)
from airlab.follow.expect import (
    TUTORIAL_PRODUCT_KEY as TUTORIAL_PRODUCT_KEY,  # re-exported
)
from airlab.follow.expect import (
    TUTORIAL_SIGNS as TUTORIAL_SIGNS,  # re-exported
)
from airlab.follow.report import (
    DeviceLike,
    Finding,
    FollowReport,
    StepCheck,
    Verdict,
)
from airlab.follow.tutorial import (
    AWAITED_URCS,
    Method,
    Turn,
    TutorialStep,
    split_turns,
    tutorial_steps,
)

# ---------------------------------------------------------------------------- diagnosis

__all__ = [
    "MCONNECT_WINDOW",
    "DeviceLike",
    "Finding",
    "FollowReport",
    "StepCheck",
    "TutorialFollower",
    "Verdict",
    "follow_events",
]


def _diagnose(
    step: TutorialStep, turn: Turn, opts: _Options, ctx: _Context, following: Turn | None
) -> list[Finding]:
    fn = _DIAGNOSE.get(step.key)
    return fn(step, turn, opts, ctx, following) if fn else []


_DIAGNOSE = {
    "cgatt": _d_cgatt,
    "sapbr_apn": _d_apn,
    "url": _d_url,
    "header": _d_header,
    "httpdata": _d_httpdata,
    "body": _d_body,
    "httpaction": _d_httpaction,
    "httpread": _d_httpread,
    "mconfig": _d_mconfig,
    "mipstart": _d_mipstart,
    "mconnect": _d_mconnect,
    "mpub0": _d_mpub,
    "mpub1": _d_mpub,
    "msub": _d_msub,
    "msgset": _d_msgset,
}


# ---------------------------------------------------------------------------- the checker


def _masked_got(turn: Turn) -> tuple[str, ...]:
    """The replies, a deviceSecret or iotToken in them shown by its first characters."""
    out = []
    for text in turn.reply_texts:
        text = re.sub(r'("(?:deviceSecret|iotToken)"\s*:\s*")([^"]{4})[^"]*(")', r"\1\2…\3", text)
        out.append(text)
    return tuple(out)


def _awaiting(step: TutorialStep, turn: Turn) -> bool:
    """True while the module's answer to ``turn`` is still to come."""
    final = turn.final
    if step.key == "httpdata":
        return final is None and turn.prompt is None
    if final is None:
        return True
    if not final.ok:
        return False
    names = AWAITED_URCS.get(step.key)
    if not names:
        return False
    if step.key == "mconnect" and _login_refusal(turn):
        return False
    return turn.urc(*names) is None


def _check_turn(
    step: TutorialStep,
    turn: Turn,
    opts: _Options,
    ctx: _Context,
    following: Turn | None,
    last: bool,
) -> StepCheck:
    findings = _diagnose(step, turn, opts, ctx, following)
    findings = [*_joined(turn), *_result_findings(turn), *findings]
    waiting = _awaiting(step, turn)
    if waiting and not last:
        names = AWAITED_URCS.get(step.key, ())
        what = names[0] if names and turn.final is not None else "final result"
        findings.append(Finding("result", f"no {what} came before your next command"))
    expected = _expected(step, opts, ctx, turn.sent)
    if step.key == "httpdata":
        args = _args(turn.sent)
        ctx.announced = int(args[0]) if args and args[0].isdigit() else None
    if waiting and last and turn.final is None:
        verdict = Verdict.PENDING  # judged once the module has answered: the why is whole
    elif any(f.mistake for f in findings):
        verdict = Verdict.DIFFERS
    elif waiting and last:
        verdict = Verdict.PENDING
    else:
        verdict = Verdict.OK
    if (
        verdict is Verdict.OK
        and expected is not None
        and step.key not in _FREE_FORM
        and turn.sent.strip() != expected.strip()
    ):
        findings.append(_line_diff(turn.sent, expected))
        verdict = Verdict.DIFFERS
    return StepCheck(
        step,
        verdict,
        turn.joined + turn.sent if not turn.body else _intended_body(turn)[0],
        _masked_got(turn),
        expected,
        tuple(findings),
        turn.wall,
    )


# Steps whose line may differ from the expected one without a mistake (their own
# diagnosis decides): quoting, header case, order of form fields, messages, tokens.
_FREE_FORM = frozenset(
    {
        "url",
        "header",
        "httpdata",
        "body",
        "mconfig",
        "mpub0",
        "mpub1",
        "sapbr_apn",
        "mconnect",
        "mipstart",
    }
)


def _line_diff(sent: str, expected: str) -> Finding:
    a, b = sent.strip(), expected.strip()
    i = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    if a.upper() == b.upper():
        return Finding("value", "differs only in upper/lower case from the expected line")
    yours = a[max(0, i - 8) : i + 8]
    want = b[max(0, i - 8) : i + 8]
    return Finding(
        "value",
        f"differs from the expected line at character {i + 1}: yours '…{yours}…', expected "
        f"'…{want}…'",
    )


def _match(steps: Sequence[TutorialStep], key: str, cursor: int) -> int | None:
    """Index of the step ``key`` names: the next one from ``cursor``, else the latest
    one before (a retry)."""
    for i in range(cursor, len(steps)):
        if steps[i].key == key:
            return i
    for i in range(min(cursor, len(steps)) - 1, -1, -1):
        if steps[i].key == key:
            return i
    return None


def _joined(turn: Turn) -> list[Finding]:
    """The leftover of a body that ran into the next typed line."""
    if not turn.joined:
        return []
    final = turn.final
    took = final is not None and final.ok
    text = (
        f"the {len(turn.joined.encode())} byte(s) {turn.joined[:12]!r} left over from your "
        f"body ran into this line (no CR LF between them): the module read "
        f"{(turn.joined + turn.sent)[:40]!r}"
    )
    text += " and still found the command in it" if took else ": type the command again"
    return [Finding("length", text, mistake=not took)]


def _suggest(text: str, steps: Sequence[TutorialStep], cursor: int) -> list[Finding]:
    import difflib

    out = []
    final_hint = ""
    line = text.strip()
    if not line.upper().startswith("AT"):
        return [
            Finding(
                "value",
                "not an AT command: the module does not answer it (a body goes right after "
                "DOWNLOAD, within HTTPDATA's time)",
            )
        ]
    if cursor < len(steps):
        nxt = steps[cursor]
        name = line.split("=")[0].split("?")[0].upper()
        want = nxt.sent.split("=")[0].split("?")[0].upper()
        if difflib.SequenceMatcher(None, name, want).ratio() > 0.75 and name != want:
            final_hint = f"did you mean {want}? (next step: {nxt.index} {nxt.name_zh})"
    if final_hint:
        out.append(Finding("value", final_hint))
    else:
        out.append(Finding("value", "not one of this method's steps", mistake=False))
    return out


def follow_events(
    method: Method | str,
    me: DeviceLike,
    events: Iterable[Event],
    *,
    sign_method: str | None = None,
    timestamp: bool | None = None,
    steps: Sequence[TutorialStep] | None = None,
    window: float = MCONNECT_WINDOW,
) -> FollowReport:
    """Check typed events against the tutorial's steps for ``method``.

    ``me``: the student's device (``lab.identity``); ``sign_method``: the one the
    direct-MQTT login must use (default hmacmd5, the tutorial's); ``timestamp``: True
    (required), False (forbidden) or None (either); ``steps``: the tutorial's steps
    (default :func:`~airlab.follow.tutorial.tutorial_steps`).
    """
    m = Method(method)
    tsteps = tuple(steps) if steps is not None else tutorial_steps(m)
    opts = _Options(m, me, sign_method or DEFAULT_SIGN_METHOD.value, timestamp, window)
    wire_sign_method(opts.sign_method)
    ctx = _Context()
    turns = split_turns(events)
    rows: list[StepCheck] = []
    latest: dict[int, StepCheck] = {}
    skipped: set[int] = set()
    cursor = 0
    for n, turn in enumerate(turns):
        following = turns[n + 1] if n + 1 < len(turns) else None
        last = following is None or all(t.stray for t in turns[n + 1 :])
        if turn.key is None:
            if turn.stray and turn.sent.strip() == "":
                continue
            finds = _suggest(turn.sent, tsteps, cursor) + _result_findings(turn)
            rows.append(
                StepCheck(
                    None, Verdict.EXTRA, turn.sent, _masked_got(turn), None, tuple(finds), turn.wall
                )
            )
            _track_urcs(turn, ctx)
            continue
        i = _match(tsteps, turn.key, cursor)
        if i is None:
            rows.append(
                StepCheck(
                    None,
                    Verdict.EXTRA,
                    turn.sent,
                    _masked_got(turn),
                    None,
                    (
                        Finding("value", "not one of this method's steps", mistake=False),
                        *_result_findings(turn),
                    ),
                    turn.wall,
                )
            )
            _track_urcs(turn, ctx)
            continue
        for j in range(cursor, i):
            if j not in latest:
                skipped.add(j)
                rows.append(
                    StepCheck(
                        tsteps[j],
                        Verdict.MISSING,
                        expected=_expected(tsteps[j], opts, ctx, None),
                        findings=(_missing(tsteps[j]),),
                    )
                )
        row = _check_turn(tsteps[i], turn, opts, ctx, following, last)
        _track_urcs(turn, ctx)
        rows.append(row)
        latest[i] = row
        skipped.discard(i)
        cursor = max(cursor, i + 1)
    per_step = []
    for j, s in enumerate(tsteps):
        if j in latest:
            per_step.append(latest[j])
        elif j in skipped or j < cursor:
            per_step.append(StepCheck(s, Verdict.MISSING, expected=_expected(s, opts, ctx, None),
                                      findings=(_missing(s),)))  # fmt: skip
        else:
            per_step.append(StepCheck(s, Verdict.TODO, expected=_expected(s, opts, ctx, None)))
    return FollowReport(m, tuple(rows), tuple(per_step))


def _missing(step: TutorialStep) -> Finding:
    why = {
        "cgatt": "ask AT+CGATT? first: the SAPBR commands need +CGATT: 1 (注意)",
        "header": 'the form needs its header: "Content-type: application/x-www-form-urlencoded"',
        "httpread": "read the reply: it holds what the next step needs",
        "mconnect": "log in: send AT+MCONNECT=1,120 right after CONNECT OK",
    }.get(step.key, f"the tutorial sends {step.sent[:40]} here")
    return Finding("missing", f"skipped: {why}")


def _track_urcs(turn: Turn, ctx: _Context) -> None:
    for r in turn.replies:
        if isinstance(r, Urc) and r.name == "CLOSED" and ctx.connect_ok is not None:
            ctx.closed_after_connect = True


class TutorialFollower:
    """Follows a typed session for one method: :meth:`feed` it events (a session's, in
    order) and read :attr:`report`.  Pure: no threads, no clock (the widget
    :class:`~airlab.widgets.follow.FollowTutorial` feeds it live).

    Example:
        >>> from types import SimpleNamespace
        >>> from airlab.at import Direction, parse_stream
        >>> me = SimpleNamespace(product_key="k1hipglLdjU", device_name="869480000000001",
        ...     device_secret="0123456789abcdef0123456789abcdef", product_secret=None,
        ...     region="cn-shanghai")
        >>> f = TutorialFollower("http_auth_then_mqtt", me)
        >>> f.feed(parse_stream([(Direction.SENT, b"AT+CGATT?\\r\\n", 0.0, 0.0),
        ...     (Direction.RECEIVED, b"\\r\\n+CGATT: 1\\r\\n\\r\\nOK\\r\\n", 0.1, 0.1)])).progress
        '1/14 ok'
    """

    def __init__(
        self,
        method: Method | str,
        me: DeviceLike,
        *,
        sign_method: str | None = None,
        timestamp: bool | None = None,
        captures: str | None = None,
        window: float = MCONNECT_WINDOW,
    ) -> None:
        self.method = Method(method)
        self.me = me
        self.sign_method = sign_method
        self.timestamp = timestamp
        self.window = window
        if sign_method is not None:
            parse_sign_method(sign_method)
        self.steps = tutorial_steps(self.method, captures)
        self._events: list[Event] = []
        self._report = self._follow(())

    @property
    def report(self) -> FollowReport:
        """The latest report."""
        return self._report

    @property
    def events(self) -> list[Event]:
        return list(self._events)

    def feed(self, events: Iterable[Event]) -> FollowReport:
        """Add events and recompute the report (a later answer can change a row)."""
        self._events.extend(events)
        self._report = self._follow(self._events)
        return self._report

    def _follow(self, events: Iterable[Event]) -> FollowReport:
        return follow_events(
            self.method,
            self.me,
            events,
            sign_method=self.sign_method,
            timestamp=self.timestamp,
            steps=self.steps,
            window=self.window,
        )

    def reset(self) -> None:
        """Forget the events fed so far."""
        self._events.clear()
        self.feed(())
