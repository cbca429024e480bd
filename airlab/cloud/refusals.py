"""Refusals in plain words: the refused rows of the connection and message logs as one
frame (:func:`refusal_frame`) and one refusal as a few lines of text
(:func:`explain_refusal`). What :meth:`airlab.cloud.console.CloudConsole.refusals` and
``explain_last_refusal`` show.

Example:
    >>> print(explain_refusal({"time": "t", "protocol": "mqtt", "event": "refused",
    ...                        "code": 5, "rule": "sign"}))
    t MQTT CONNECT refused with CONNACK 5 (not authorized)
      rule: sign
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airlab.cloud.model import CONNACK_MEANINGS, DeviceRef

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["explain_refusal", "refusal_frame"]

_REFUSAL_COLUMNS = [
    "time", "source", "protocol", "event", "device", "client_id", "remote", "code",
    "meaning", "rule", "message", "details", "reason",
]  # fmt: skip


def refusal_frame(
    conns: pd.DataFrame, msgs: pd.DataFrame, ref: DeviceRef | None = None
) -> pd.DataFrame:
    """The frame of :meth:`CloudConsole.refusals <airlab.cloud.console.CloudConsole.refusals>`
    from the connection and message log frames: their refused rows (of ``ref``, see
    :func:`_mentions`), oldest first.

    Example:
        >>> from airlab.cloud.registry import Registry
        >>> from airlab.cloud.model import ConnectionEvent
        >>> reg = Registry()
        >>> reg.log_connection(ConnectionEvent(1.0, "mqtt", "refused", False, code=4))
        >>> refusal_frame(reg.connection_frame(), reg.message_frame())["meaning"][0][:20]
        'bad user name or pas'
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for rec in conns[~conns["accepted"]].to_dict("records"):
        explanation = rec.get("explanation")
        code = rec.get("code")
        code = None if code is None or pd.isna(code) else int(code)
        rows.append(
            {
                "time": rec["time"],
                "source": "connection",
                "protocol": str(rec["protocol"]),
                "event": str(rec["event"]),
                "device": None if pd.isna(rec["device"]) else str(rec["device"]),
                "client_id": None if pd.isna(rec["client_id"]) else str(rec["client_id"]),
                "remote": None if pd.isna(rec["remote"]) else str(rec["remote"]),
                "code": code,
                "meaning": (
                    CONNACK_MEANINGS.get(code)
                    if code is not None
                    and rec["protocol"] == "mqtt"
                    and str(rec["event"]) == "refused"
                    else None
                ),
                "rule": _explanation_part(explanation, "rule"),
                "message": _explanation_part(explanation, "message"),
                "details": _details(explanation),
                "reason": None if pd.isna(rec["reason"]) else str(rec["reason"]),
            }
        )
    for rec in msgs[~msgs["accepted"]].to_dict("records"):
        reason = None if pd.isna(rec["reason"]) else str(rec["reason"])
        rows.append(
            {
                "time": rec["time"],
                "source": "message",
                "protocol": "mqtt",
                "event": "publish" if rec["direction"] == "up" else "deliver",
                "device": None if pd.isna(rec["device"]) else str(rec["device"]),
                "client_id": None if pd.isna(rec["client_id"]) else str(rec["client_id"]),
                "remote": None,
                "code": None,
                "meaning": None,
                "rule": "publish",
                "message": f"PUBLISH to {rec['topic']} dropped: {reason}",
                "details": {"topic": str(rec["topic"]), "qos": str(rec["qos"])},
                "reason": reason,
            }
        )
    if ref is not None:
        rows = [r for r in rows if _mentions(r, ref)]
    rows.sort(key=lambda r: r["time"])
    frame = pd.DataFrame(rows, columns=_REFUSAL_COLUMNS)
    if frame.empty:
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame["code"] = frame["code"].astype("Int64")
    for name in ("device", "client_id", "remote", "meaning", "rule", "message", "reason"):
        frame[name] = frame[name].astype("string")
    return frame.reset_index(drop=True)


def _details(text: object) -> dict[str, str]:
    if not isinstance(text, str) or not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    details = data.get("details") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in details.items()} if isinstance(details, dict) else {}


def _explanation_part(text: object, key: str) -> str | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    value = data.get(key) if isinstance(data, dict) else None
    return str(value) if value is not None else None


def _mentions(row: dict[str, Any], ref: DeviceRef) -> bool:
    if row.get("device") == str(ref):
        return True
    if row.get("device"):
        return False
    text = " ".join(
        str(v)
        for v in (row.get("client_id"), row.get("message"), *(row.get("details") or {}).values())
        if v
    )
    return ref.product_key in text and ref.device_name in text


def explain_refusal(row: dict[str, Any]) -> str:
    """A refusal row (see :meth:`CloudConsole.refusals`) as a few lines of text."""
    when = row.get("time")
    stamp = (
        when.strftime("%H:%M:%S") if when is not None and hasattr(when, "strftime") else str(when)
    )
    protocol, event = str(row.get("protocol") or ""), str(row.get("event") or "")
    code = row.get("code")
    if code is not None and str(code) in ("<NA>", "nan"):
        code = None  # a missing code of a pandas frame
    if protocol == "mqtt" and event == "refused":
        what = "MQTT CONNECT refused"
        if code is not None:
            what += (
                f" with CONNACK {code} ({row.get('meaning') or CONNACK_MEANINGS.get(int(code))})"
            )
    elif protocol == "mqtt" and event == "subscribe":
        what = "MQTT SUBSCRIBE refused (SUBACK 0x80)"
    elif row.get("source") == "message":
        what = "MQTT PUBLISH dropped"
    elif protocol == "http":
        route = {"auth": "/auth/devicename", "register": "/auth/register/device"}.get(event, event)
        what = f"HTTP {route} refused" + (f" with code {code}" if code is not None else "")
    else:
        what = f"{protocol} {event} refused" + (f" (code {code})" if code is not None else "")
    who = []
    if _present(row.get("device")):
        who.append(f"device {row['device']}")
    if _present(row.get("client_id")):
        who.append(f"client id {row['client_id']!r}")
    if _present(row.get("remote")):
        who.append(f"from {row['remote']}")
    lines = [f"{stamp} {what}" + (f" — {', '.join(who)}" if who else "")]
    if _present(row.get("rule")):
        lines.append(f"  rule: {row['rule']}")
    message = row.get("message") if _present(row.get("message")) else row.get("reason")
    if _present(message):
        lines.append(f"  why: {message}")
    for key, value in (row.get("details") or {}).items():
        lines.append(f"  {key}: {value}")
    return "\n".join(lines)


def _present(value: object) -> bool:
    return value is not None and str(value) not in ("", "<NA>", "nan", "None")
