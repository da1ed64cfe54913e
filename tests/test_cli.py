import subprocess
import sys

from jaximpala import __version__
from jaximpala.cli import main


def test_version_flag(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == __version__


def test_python_dash_m_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "jaximpala", "--version"], capture_output=True, text=True,
        check=True,
    )
    assert out.stdout.strip() == __version__


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: jaximpala" in capsys.readouterr().out


def test_every_command_has_help(capsys):
    import pytest

    for command in ("train", "eval", "render", "plot"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: jaximpala {command}" in capsys.readouterr().out
