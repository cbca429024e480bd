"""What each AT command is and what completes it, as data: command kinds and completing URCs.

Two-phase commands (spec ``at_commands.md`` sections 0 and 2.5) answer ``OK`` at once
and report their real result later with a URC: ``AT+SSLMIPSTART`` → ``CONNECT OK``,
``AT+MCONNECT`` → ``CONNACK OK``, ``AT+MPUB`` QoS1 → ``PUBACK`` ...  Those facts
live in :mod:`airlab.at.command_table` (one row per command, shared with the simulator
and the session) and are re-exported here; this module adds the analysis's own
vocabulary: command kinds.  The pairing (:mod:`airlab.analysis.pairing`) only looks
things up; to teach it a new two-phase command, add a row to the command table.

Example:
    >>> COMPLETIONS["+MCONNECT"].ok, COMPLETIONS["+MCONNECT"].late_error
    (('CONNACK OK',), True)
    >>> PUBLISH_COMPLETIONS[1].ok
    ('PUBACK',)
    >>> classify_commands(['AT+MPUB="t",1,0,"x"', "AT+CGATT?", "AT+SAPBR=1,1"])[1]
    ['publish_qos1', 'query', 'bearer']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# the command facts live in one table in airlab.at; re-exported here for the analysis
from airlab.at.command_table import (
    COMPLETION_NAMES,
    COMPLETIONS,
    HTTP_MODULE_ERRORS,
    NO_FINAL_COMMANDS,
    PUBLISH_COMMANDS,
    PUBLISH_COMPLETIONS,
    Completion,
)

__all__ = [
    "COMPLETIONS",
    "COMPLETION_NAMES",
    "HTTP_MODULE_ERRORS",
    "KINDS",
    "KIND_OF_NAME",
    "LOGIN_KINDS",
    "NO_FINAL_COMMANDS",
    "PUBLISH_COMMANDS",
    "PUBLISH_COMPLETIONS",
    "Completion",
    "classify_arrays",
    "classify_commands",
]


#: The kinds of a login, in order: bearer → HTTP auth → MQTT CONNECT.
LOGIN_KINDS: tuple[str, ...] = (
    "bearer",
    "http_setup",
    "http_data",
    "http_request",
    "http_read",
    "mqtt_config",
    "mqtt_open",
    "mqtt_connect",
)

#: Command kinds, in the order a connection goes through them.
KINDS: list[str] = [
    "basic",
    "query",
    "network",
    "reset",
    *LOGIN_KINDS,
    "subscribe",
    "unsubscribe",
    "publish_qos0",
    "publish_qos1",
    "publish_qos2",
    "mqtt_read",
    "mqtt_close",
    "tcp_open",
    "tcp_send",
    "tcp_close",
    "other",
]

#: Command name (``+SAPBR``; basic commands as written, ``ATE0`` …) → kind.  Read and
#: test forms (``AT+X?``, ``AT+X=?``) are always ``query``.
KIND_OF_NAME: dict[str, str] = {
    **dict.fromkeys(["AT", "ATE0", "ATE1", "ATE", "AT&W", "ATZ", "AT&F"], "basic"),
    **dict.fromkeys(["+CMEE", "+IPR", "+CSDT", "+SIMCROSS", "+CSCLK", "+UPGRADE"], "basic"),
    **dict.fromkeys(
        [
            "ATI",
            "+CSQ",
            "+CESQ",
            "+CGSN",
            "+CIMI",
            "+ICCID",
            "+CCID",
            "+CGMI",
            "+CGMM",
            "+CGMR",
            "+VER",
            "+CCLK",
            "+MQTTSTATU",
            "+CIPSTATUS",
        ],
        "query",
    ),
    **dict.fromkeys(["+CFUN", "+CGATT", "+CGDCONT", "+CGACT", "+CEREG", "+CREG"], "network"),
    **dict.fromkeys(["+COPS", "+CGREG"], "network"),
    "+RESET": "reset",
    **dict.fromkeys(["+SAPBR", "+CSTT", "+CIICR", "+CIFSR"], "bearer"),
    **dict.fromkeys(["+HTTPINIT", "+HTTPPARA", "+HTTPSSL", "+HTTPTERM", "+SSLCFG"], "http_setup"),
    "+HTTPDATA": "http_data",
    "+HTTPACTION": "http_request",
    **dict.fromkeys(["+HTTPREAD", "+HTTPHEAD"], "http_read"),
    **dict.fromkeys(["+MCONFIG", "+MQTTMSGSET", "+MQTTMODE"], "mqtt_config"),
    **dict.fromkeys(["+MIPSTART", "+SSLMIPSTART"], "mqtt_open"),
    "+MCONNECT": "mqtt_connect",
    "+MSUB": "subscribe",
    "+MUNSUB": "unsubscribe",
    "+MQTTMSGGET": "mqtt_read",
    **dict.fromkeys(["+MDISCONNECT", "+MIPCLOSE"], "mqtt_close"),
    "+CIPSTART": "tcp_open",
    "+CIPSEND": "tcp_send",
    **dict.fromkeys(["+CIPCLOSE", "+CIPSHUT"], "tcp_close"),
}

_NAME_RE = r"^\s*[Aa][Tt]\s*(?P<n>[+^*$#%&][A-Za-z0-9_]+)"
_BASIC_RE = r"^\s*(?P<n>[Aa][Tt][A-Za-z&]?\d?)\s*$"
_QUERY_RE = r"\?\s*$"
_QOS_RE = (
    r'^\s*[Aa][Tt]\s*\+[Mm][Pp][Uu][Bb](?:[Ee][Xx])?\s*=\s*(?:"[^"]*"|[^,]*)\s*,\s*"?(?P<n>\d)'
)

_KIND_NAMES = list(KIND_OF_NAME)
_KIND_CODES = [KINDS.index(KIND_OF_NAME[n]) for n in _KIND_NAMES]


def classify_arrays(lines: Any) -> tuple[Any, Any, Any]:
    """Vectorised :func:`classify_commands`: pyarrow names, numpy kind codes (into
    :data:`KINDS`) and float QoS (NaN when not a publish)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    if not isinstance(lines, pa.Array):
        lines = pa.array(list(lines), type=pa.large_string())
    if len(lines) > 64:  # commands repeat: classify each distinct line once, broadcast
        enc = pc.dictionary_encode(lines)
        if len(enc.dictionary) * 2 < len(lines):
            u_name, u_kind, u_qos = _classify_unique(enc.dictionary)
            idx = enc.indices
            if idx.null_count:
                return _classify_unique(lines)
            ix = np.asarray(idx)
            return u_name.take(idx), u_kind[ix], u_qos[ix]
    return _classify_unique(lines)


def _classify_unique(lines: Any) -> tuple[Any, Any, Any]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    name = pc.utf8_upper(pc.struct_field(pc.extract_regex(lines, _NAME_RE), "n"))
    missing = np.flatnonzero(np.asarray(name.is_null()))
    if len(missing):
        sub = pc.extract_regex(lines.take(pa.array(missing)), _BASIC_RE)
        basic = pc.utf8_upper(pc.struct_field(sub, "n")).to_pylist()
        names = name.to_pylist()
        for j, i in enumerate(missing.tolist()):
            names[i] = basic[j]
        name = pa.array(names, type=name.type)
    idx = pc.index_in(name, value_set=pa.array(_KIND_NAMES, type=name.type))
    codes = np.asarray([*_KIND_CODES, KINDS.index("other")], np.int8)
    kind = codes[np.array(idx.fill_null(len(_KIND_NAMES)), np.int64)]
    query = np.array(pc.match_substring_regex(lines, _QUERY_RE).fill_null(False), bool)
    kind[query] = KINDS.index("query")
    is_pub = np.asarray(
        pc.is_in(name, value_set=pa.array(sorted(PUBLISH_COMMANDS), type=name.type)).fill_null(
            False
        ),
        bool,
    )
    qos = np.full(len(lines), np.nan)
    pub = np.flatnonzero(is_pub)
    if len(pub):
        qos_s = pc.struct_field(pc.extract_regex(lines.take(pa.array(pub)), _QOS_RE), "n")
        qos[pub] = np.asarray(pc.cast(qos_s, pa.float64()).fill_null(np.nan), float)
    for q in (0, 1, 2):
        kind[is_pub & (qos == q) & ~query] = KINDS.index(f"publish_qos{q}")
    return name, kind, qos


def classify_commands(
    lines: Sequence[str],
) -> tuple[list[str | None], list[str], list[int | None]]:
    """Name, kind and QoS of each command line.

    The name is ``+SAPBR`` for ``AT+SAPBR=1,1`` (upper case) and the whole command for
    a basic one (``ATE0``); ``None`` when the line is not an AT command.  QoS is set
    for publishes only.

    >>> classify_commands(["ATE0", "AT+sslmipstart=h,1883", "hello"])
    (['ATE0', '+SSLMIPSTART', None], ['basic', 'mqtt_open', 'other'], [None, None, None])
    """
    import math

    name, kind, qos = classify_arrays(lines)
    return (
        name.to_pylist(),
        [KINDS[k] for k in kind.tolist()],
        [None if math.isnan(q) else int(q) for q in qos.tolist()],
    )
