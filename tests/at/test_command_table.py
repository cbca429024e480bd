"""The command table is the one place a command's facts live; its readers agree with it."""

from __future__ import annotations

from airlab.analysis import kinds
from airlab.at import command_table as table
from airlab.at.urcs import DATA_PHASE_COMMANDS


def test_every_two_phase_row_has_a_completion_or_is_a_publish() -> None:
    for name, row in table.COMMANDS.items():
        assert row.name == name
        assert row.two_phase == (name in table.COMPLETIONS or name in table.PUBLISH_COMMANDS)


def test_the_simulator_refuses_exactly_the_commands_marked_alone() -> None:
    from airlab.sim import firmware

    assert frozenset(firmware._ALONE) == table.ALONE_COMMANDS


def test_analysis_reads_the_table() -> None:
    assert kinds.COMPLETIONS is table.COMPLETIONS
    assert kinds.PUBLISH_COMPLETIONS is table.PUBLISH_COMPLETIONS
    assert kinds.Completion is table.Completion
    assert kinds.NO_FINAL_COMMANDS is table.NO_FINAL_COMMANDS


def test_data_phase_prompts_come_from_the_parser_table() -> None:
    for name, spec in DATA_PHASE_COMMANDS.items():
        row = table.COMMANDS.get(name)
        if row is not None:
            assert row.prompt == spec.prompt
    assert table.COMMANDS["+MPUBEX"].prompt == ">"
    assert table.COMMANDS["+MCONNECT"].prompt is None


def test_fail_lines_are_what_the_recipes_waited_for() -> None:
    assert table.completion_of("+MCONNECT").fail_lines == ("ERROR", "CLOSED")
    assert table.completion_of("+MSUB").fail_lines == ("ERROR", "CLOSED")
    assert table.completion_of("+HTTPACTION").fail_lines == ()
    assert table.completion_of("+SSLMIPSTART").fail_lines == ("CONNECT FAIL", "CLOSED")
    assert table.completion_of("+MPUB", 2).ok == ("PUBCOMP",)
    assert table.completion_of(None) is None
