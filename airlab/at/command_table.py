"""What each AT command is, as one table: a row per command, read by firmware, session and
analysis.

A command's facts used to be re-stated wherever they were needed (the simulator's list of
commands that must stand alone on a line, the analysis's two-phase completions, the
recipes' awaited URCs).  They live here now - add a row, not code:

* ``completion``: a **two-phase** command (spec ``at_commands.md`` sections 0 and 2.5)
  answers ``OK`` at once and reports its real result later with a URC:
  ``AT+SSLMIPSTART`` → ``CONNECT OK``, ``AT+MCONNECT`` → ``CONNACK OK`` ...  Publishes
  (``publish=True``) depend on the QoS: :data:`PUBLISH_COMPLETIONS`.
* ``alone``: the firmware refuses the command when it shares a line with others
  (``AT+CSQ;+MPUB=…`` → ``ERROR``): two-phase, data-phase and power commands.
* ``data_phase``: after the command the host sends raw bytes (``DOWNLOAD`` or ``>``),
  as the parser reads them (:data:`airlab.at.urcs.DATA_PHASE_COMMANDS`).
* ``final``: false for the commands that print their answer without a final result
  (``AT+CIFSR`` → the IP only).

Example:
    >>> COMMANDS["+MCONNECT"].completion.ok, COMMANDS["+MCONNECT"].alone
    (('CONNACK OK',), True)
    >>> completion_of("+MPUB", 1).ok, completion_of("+MPUB", 0)
    (('PUBACK',), None)
    >>> completion_of("+MSUB").fail_lines
    ('ERROR', 'CLOSED')
    >>> COMMANDS["+HTTPDATA"].prompt, "+CFUN" in ALONE_COMMANDS
    ('DOWNLOAD', True)
"""

from __future__ import annotations

from dataclasses import dataclass

from airlab.at.urcs import DATA_PHASE_COMMANDS, DataPhaseSpec

__all__ = [
    "ALONE_COMMANDS",
    "COMMANDS",
    "COMPLETIONS",
    "COMPLETION_NAMES",
    "HTTP_MODULE_ERRORS",
    "NO_FINAL_COMMANDS",
    "PUBLISH_COMMANDS",
    "PUBLISH_COMPLETIONS",
    "CommandFacts",
    "Completion",
    "completion_of",
]


@dataclass(frozen=True, slots=True)
class Completion:
    """How a two-phase command ends after its ``OK``.

    ``ok``: URC names meaning success; ``fail``: URC names meaning failure;
    ``interim``: URCs on the way that do not end it (``PUBREC`` of QoS2);
    ``late_error``: an ``ERROR`` / ``+CME ERROR`` arriving after the ``OK`` ends it
    with outcome ``error`` (``AT+MCONNECT`` refused); ``closable``: a ``CLOSED`` URC
    while waiting ends it with outcome ``closed``; ``timeout``: seconds after which the
    wait counts as lost (outcome ``timeout``) when the capture goes on past it.

    >>> Completion(ok=("SUBACK",), late_error=True, closable=True).names
    ('SUBACK',)
    """

    ok: tuple[str, ...]
    fail: tuple[str, ...] = ()
    interim: tuple[str, ...] = ()
    late_error: bool = False
    closable: bool = False
    timeout: float = 30.0

    @property
    def names(self) -> tuple[str, ...]:
        """Every URC name that ends the wait."""
        return self.ok + self.fail

    @property
    def fail_lines(self) -> tuple[str, ...]:
        """What ends the wait as a failure, in the session's terms
        (:meth:`~airlab.session.ModemSession.command_and_wait` ``fail=``): the failing
        URCs, then ``"ERROR"`` for a late error and ``"CLOSED"`` when the link may drop.

        >>> Completion(ok=("CONNECT OK",), fail=("CONNECT FAIL",), closable=True).fail_lines
        ('CONNECT FAIL', 'CLOSED')
        """
        return (
            self.fail
            + (("ERROR",) if self.late_error else ())
            + (("CLOSED",) if self.closable else ())
        )


@dataclass(frozen=True, slots=True)
class CommandFacts:
    """One row of :data:`COMMANDS` (see the module docstring for the columns)."""

    name: str
    completion: Completion | None = None
    publish: bool = False
    alone: bool = False
    final: bool = True

    @property
    def data_phase(self) -> DataPhaseSpec | None:
        """How the host sends the raw data after this command (None: no data phase)."""
        return DATA_PHASE_COMMANDS.get(self.name)

    @property
    def prompt(self) -> str | None:
        """What the module prints before the data (``DOWNLOAD`` / ``>``), or None."""
        spec = self.data_phase
        return spec.prompt if spec is not None else None

    @property
    def two_phase(self) -> bool:
        """``OK`` first, then a URC (for a publish: at QoS 1 and 2)."""
        return self.completion is not None or self.publish


_TCP_OPEN = Completion(
    ok=("CONNECT OK", "ALREADY CONNECT"), fail=("CONNECT FAIL",), closable=True, timeout=75.0
)


def _ack(*ok: str, interim: tuple[str, ...] = ()) -> Completion:
    """An MQTT acknowledgement: a late ``ERROR`` or ``CLOSED`` ends the wait too."""
    return Completion(ok=ok, interim=interim, late_error=True, closable=True, timeout=30.0)


#: QoS → completion of ``AT+MPUB`` / ``AT+MPUBEX`` (QoS0 has none: ``OK`` ends it).
PUBLISH_COMPLETIONS: dict[int, Completion] = {
    1: _ack("PUBACK"),
    2: _ack("PUBCOMP", interim=("PUBREC",)),
}

_ROWS = (
    # ---- TCP / TLS link for MQTT, and the plain TCP socket
    CommandFacts("+MIPSTART", _TCP_OPEN, alone=True),
    CommandFacts("+SSLMIPSTART", _TCP_OPEN, alone=True),
    CommandFacts(
        "+CIPSTART",
        Completion(
            ok=("CONNECT OK", "CONNECT", "ALREADY CONNECT"),
            fail=("CONNECT FAIL",),
            closable=True,
            timeout=75.0,
        ),
    ),
    CommandFacts("+CIPSEND"),
    CommandFacts("+MIPCLOSE", alone=True),
    # ---- MQTT session
    CommandFacts("+MCONNECT", _ack("CONNACK OK"), alone=True),
    CommandFacts("+MSUB", _ack("SUBACK"), alone=True),
    CommandFacts("+MUNSUB", _ack("UNSUBACK"), alone=True),
    CommandFacts("+MPUB", publish=True, alone=True),
    CommandFacts("+MPUBEX", publish=True, alone=True),
    CommandFacts("+MDISCONNECT", alone=True),
    # ---- HTTP (the module's own HTTP timeout defaults to 120 s: AT+HTTPPARA="TIMEOUT")
    CommandFacts("+HTTPDATA", alone=True),
    CommandFacts("+HTTPACTION", Completion(ok=("+HTTPACTION",), timeout=125.0), alone=True),
    # ---- bearer, power
    CommandFacts("+CIFSR", final=False),
    CommandFacts("+RESET", Completion(ok=("RDY",), timeout=30.0), alone=True),
    CommandFacts("+CFUN", alone=True),
)

#: Command name (``+MCONNECT`` for ``AT+MCONNECT=1,120``) → its facts.  A command not
#: listed is a plain one: ``OK`` / ``ERROR`` ends it, it may share a line.
COMMANDS: dict[str, CommandFacts] = {row.name: row for row in _ROWS}

#: Command name → completion, for the two-phase commands whose completion does not
#: depend on an argument (publishes: :data:`PUBLISH_COMPLETIONS`).
COMPLETIONS: dict[str, Completion] = {
    row.name: row.completion for row in _ROWS if row.completion is not None
}

#: The publish commands (their completion depends on the QoS).
PUBLISH_COMMANDS: frozenset[str] = frozenset(row.name for row in _ROWS if row.publish)

#: Every URC name that can end a wait (``CLOSED`` is handled on its own).
COMPLETION_NAMES: frozenset[str] = frozenset(
    n for c in (*COMPLETIONS.values(), *PUBLISH_COMPLETIONS.values()) for n in c.names
)

#: Commands that print their answer without a final result (``AT+CIFSR`` → the IP only).
NO_FINAL_COMMANDS: frozenset[str] = frozenset(row.name for row in _ROWS if not row.final)

#: Commands that cannot share a line with others (two-phase, data mode, power).
ALONE_COMMANDS: frozenset[str] = frozenset(row.name for row in _ROWS if row.alone)

#: ``+HTTPACTION`` statuses 600–606 are the module's own errors, not the server's.
HTTP_MODULE_ERRORS: dict[int, str] = {
    600: "not an HTTP PDU",
    601: "network error",
    602: "no memory",
    603: "DNS error",
    604: "stack busy",
    605: "SSL channel setup failed",
    606: "SSL alert or communication error",
}


def completion_of(name: str | None, qos: int | None = None) -> Completion | None:
    """The completion of command ``name`` (a publish: at ``qos``); None when ``OK`` /
    ``ERROR`` ends it.

    >>> completion_of("+SSLMIPSTART").ok, completion_of("+CSQ")
    (('CONNECT OK', 'ALREADY CONNECT'), None)
    >>> completion_of("+MPUBEX", 2).interim
    ('PUBREC',)
    """
    if name in PUBLISH_COMMANDS:
        return PUBLISH_COMPLETIONS.get(qos) if qos is not None else None
    return COMPLETIONS.get(name) if name is not None else None
