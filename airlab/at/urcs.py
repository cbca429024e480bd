"""The vocabulary of the Luat AT firmware, as data: final results, URCs, bodies, data phases.

The parser (:mod:`airlab.at.parser`) only looks things up here; to teach it a new
URC or a new length-framed answer, add a row, not code.  Sources: the firmware
reference ``spec/at_commands.md`` (sections 0, 2, 3, 6, 7, 8, 9) and the captures.

Example:
    >>> FINAL_RESULTS["SHUT OK"]
    'SHUT OK'
    >>> "+HTTPACTION" in NAMED_URCS, "CONNACK OK" in FIXED_URCS
    (True, True)
    >>> DATA_PHASE_COMMANDS["+HTTPDATA"].prompt
    'DOWNLOAD'
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ANSWER_ALIASES",
    "DATA_PHASE_COMMANDS",
    "ERROR_PREFIXES",
    "FINAL_RESULTS",
    "FIXED_URCS",
    "MAX_BODY",
    "MULTILINK_WORDS",
    "NAMED_URCS",
    "PAYLOAD_HEADERS",
    "PREFIX_URCS",
    "DataPhaseSpec",
    "PayloadHeaderSpec",
]

#: Whole-line final results (after trimming spaces) -> the ``FinalResult.result`` word.
FINAL_RESULTS: dict[str, str] = {
    "OK": "OK",
    "ERROR": "ERROR",
    "SHUT OK": "SHUT OK",
    "CLOSE OK": "CLOSE OK",
    "SEND OK": "SEND OK",
    "SEND FAIL": "SEND FAIL",
    "NO CARRIER": "NO CARRIER",
}

#: Final results followed by ``:`` and a number or a text (CMEE=2): ``+CME ERROR: 767``.
ERROR_PREFIXES: tuple[str, ...] = ("+CME ERROR", "+CMS ERROR")

#: URCs that are a whole fixed line (``Urc.name`` is the line itself, no arguments).
FIXED_URCS: frozenset[str] = frozenset(
    {
        # TCP / MQTT connection (two-phase answers of MIPSTART, CIPSTART, MCONNECT ...)
        "CONNECT OK",
        "CONNECT",  # transparent-mode CIPSTART
        "ALREADY CONNECT",
        "CONNECT FAIL",
        "CLOSED",
        "CONNACK OK",
        "PUBACK",
        "SUBACK",
        "UNSUBACK",
        "PUBREC",
        "PUBCOMP",
        # boot and network
        "RDY",
        "+E_UTRAN Service",
        "+NO Service",
        "+PDP DEACT",
        # extended HTTP announcements without arguments
        "+HTTPEXGET",
        "+HTTPEXPOST",
        "+HTTPEXACTION",
    }
)

#: URCs written ``<name>: <args>`` (``Urc.name`` is the part before the colon, trimmed).
NAMED_URCS: frozenset[str] = frozenset(
    {
        "+HTTPACTION",
        "+HTTPEXACTION",
        "+HTTPEXPOST",
        "+HTTPEXGET",
        "+HTTPGETTOFS",
        "+MSUB",
        "STATE",
        "^MODE",
        "+CGEV",
        "+NITZ",
        "+CPIN",
        "+CREG",
        "+CEREG",
        "+CGREG",
        "+SAPBR 1",
        "+SAPBR 2",
        "+SAPBR 3",
        "+PDP",
        "+UPGRADEIND",
        "+QIND",
        "+FTPLIST",
        "+FTPGET",
        "+FTPPUT",
        "TCP ERROR",
        "UDP ERROR",
    }
)

#: URCs recognised by how the line starts: (prefix, ``Urc.name``).
PREFIX_URCS: tuple[tuple[str, str], ...] = (
    ("^boot.rom", "^boot.rom"),
    ("+IPD,", "+IPD"),
    ("+IPD:", "+IPD"),
)

#: Multi-link forms ``<n>,SEND OK`` / ``<n>, CONNECT OK``: word -> final result (True) or URC.
MULTILINK_WORDS: dict[str, bool] = {
    "SEND OK": True,
    "SEND FAIL": True,
    "CLOSE OK": True,
    "CONNECT OK": False,
    "CONNECT FAIL": False,
    "ALREADY CONNECT": False,
    "CLOSED": False,
}

#: Extra answer prefixes of a command (besides its own name): 780EPV V1011 answers
#: ``AT+CEREG?`` with ``+CGREG: 0,5`` (spec section 10).
ANSWER_ALIASES: dict[str, frozenset[str]] = {
    "+CEREG": frozenset({"+CGREG"}),
}

#: Largest body the parser will frame (bytes).  A bigger announced length is treated as
#: an ordinary line, so a corrupt ``+HTTPREAD: 99999999`` cannot swallow the stream.
MAX_BODY: int = 1 << 20


@dataclass(frozen=True, slots=True)
class PayloadHeaderSpec:
    """A line ``<name>: <args>`` announcing ``<n>`` raw bytes after its line break.

    ``length_index`` is the argument holding ``<n>``; ``nargs`` how many arguments the
    header has; ``first_arg`` (when set) the value the first argument must have
    (``+FTPGET: 2,<n>`` frames a body, ``+FTPGET: 1,1`` is a URC); ``only_answering``
    requires the matching command (``AT<name>…``) to be pending.
    """

    nargs: int
    length_index: int
    first_arg: str | None = None
    only_answering: bool = False


#: Length-framed answers: header name -> how to read it.
PAYLOAD_HEADERS: dict[str, PayloadHeaderSpec] = {
    "+HTTPREAD": PayloadHeaderSpec(nargs=1, length_index=0),
    "+HTTPHEAD": PayloadHeaderSpec(nargs=1, length_index=0),
    "+HTTPEXGET": PayloadHeaderSpec(nargs=1, length_index=0, only_answering=True),
    "+FTPGET": PayloadHeaderSpec(nargs=2, length_index=1, first_arg="2"),
    "+FTPLIST": PayloadHeaderSpec(nargs=2, length_index=1, first_arg="2"),
}


@dataclass(frozen=True, slots=True)
class DataPhaseSpec:
    """A command after which the host sends raw data instead of command lines.

    ``prompt`` is what the module prints before the data (``DOWNLOAD`` or ``>``);
    ``length_index`` maps the number of arguments to the index of the length argument
    (a command whose argument count is not listed has no announced length);
    ``until_ctrl_z``: without a length the data ends at 0x1A (0x1B aborts); when false
    a length is required, otherwise the command has no data phase.
    """

    prompt: str
    length_index: dict[int, int] = field(default_factory=dict)
    until_ctrl_z: bool = False


#: Data-phase commands: command name (``+HTTPDATA`` for ``AT+HTTPDATA=…``) -> spec.
DATA_PHASE_COMMANDS: dict[str, DataPhaseSpec] = {
    # AT+HTTPDATA=<size>,<time>  -> DOWNLOAD, <size> bytes
    "+HTTPDATA": DataPhaseSpec("DOWNLOAD", {1: 0, 2: 0}),
    # AT+MPUBEX=<topic>,<qos>,<retain>[,<len>] -> '>', len bytes or until 0x1A
    "+MPUBEX": DataPhaseSpec(">", {4: 3}, until_ctrl_z=True),
    # AT+CIPSEND[=[<n>,]<len>] -> '> ', len bytes or until 0x1A (0x1B aborts)
    "+CIPSEND": DataPhaseSpec(">", {1: 0, 2: 1}, until_ctrl_z=True),
    # AT+FSWRITE=<file>,<offset>,<len>,<timeout> -> '>', len bytes
    "+FSWRITE": DataPhaseSpec(">", {4: 2}),
    # AT+HTTPEXPOST=<len>,<timeout> -> '>', len bytes
    "+HTTPEXPOST": DataPhaseSpec(">", {1: 0, 2: 0}),
}
