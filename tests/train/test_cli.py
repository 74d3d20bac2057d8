"""`python -m train`: help on every command, one-line errors, exit codes."""

from __future__ import annotations

from tests.helpers import run_cli


def test_top_level_help_lists_commands():
    result = run_cli("train", "--help")
    assert result.returncode == 0
    assert "synth" in result.stdout


def test_no_command_is_a_usage_error():
    assert run_cli("train").returncode == 2


def test_unknown_command_is_one_line_and_exit_2():
    result = run_cli("train", "fly")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "unknown command 'fly'" in result.stderr


def test_synth_help_names_every_option():
    result = run_cli("train", "synth", "--help")
    assert result.returncode == 0
    for option in ("--out", "--scenes", "--size", "--width", "--height", "--gsd", "--bands", "--dtype", "--seed",
                   "--nodata-border", "--second-date"):
        assert option in result.stdout


def test_slim_help_names_its_options_and_is_listed():
    assert "slim" in run_cli("train", "--help").stdout
    result = run_cli("train", "slim", "--help")
    assert result.returncode == 0
    for option in ("--out", "--half", "init_weights"):
        assert option in result.stdout


def test_import_help_names_every_format_and_is_listed():
    assert "import" in run_cli("train", "--help").stdout
    result = run_cli("train", "import", "--help")
    assert result.returncode == 0
    for word in ("coco", "dota", "voc", "yolo", "--dataset", "--class", "--val-fraction", "--max-side"):
        assert word in result.stdout, word
