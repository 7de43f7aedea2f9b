"""`tokenskip --help` and every command's --help render as plain text: no RST double backticks."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tokenskip.cli import build_app, command_names


@pytest.mark.parametrize("command", ["", *command_names()])
def test_help_has_no_rst_markup(command: str) -> None:
    args = [command, "--help"] if command else ["--help"]
    result = CliRunner().invoke(build_app([command] if command else None), args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "``" not in result.output, result.output
