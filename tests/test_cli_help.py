"""``edgeps --help`` and every command's ``--help`` print and exit 0 (a stray ``%`` in a help
string once made argparse raise a TypeError on ``edgeps --help``)."""

from __future__ import annotations

import pytest

from edgeps.apps.cli import main
from edgeps.apps.commands import COMMANDS


def test_top_level_help_lists_every_command(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    missing = [name for name, _, _ in COMMANDS if name not in out]
    assert not missing, missing
    assert "tracked % of" in out  # the literal percent sign survives argparse's formatting


@pytest.mark.parametrize("name", [name for name, _, _ in COMMANDS])
def test_command_help_prints_its_options(name, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"edgeps {name}" in out and "--" in out
