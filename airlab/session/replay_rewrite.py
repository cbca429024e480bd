"""The capture as replay steps (each chunk the host sent with what the module printed
until the next) and the rewriting of what is sent for the replay's device (names,
signatures, HTTPDATA lengths, the cloud's iotId / iotToken).

Example:
    >>> from airlab.session.replay_rewrite import _split_keep
    >>> _split_keep('"x,y", 1')
    ['"x,y"', ' 1']
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from airlab.at.events import (
    Direction,
    Event,
    Payload,
)
from airlab.at.parser import AtParser
from airlab.at.transcript import RecordKind, Transcript
from airlab.errors import UsageError
from airlab.session.replay_report import (
    _SENT_KINDS,
    ReplayReport,
)

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


def _load(capture: Transcript | str | os.PathLike[str]) -> Transcript:
    if isinstance(capture, Transcript):
        return capture
    from airlab.at.formats import read_capture

    return read_capture(capture)
