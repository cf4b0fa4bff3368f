"""``orchtui`` / ``orchtui dashboard`` without a terminal: one clear line, exit 1, no hang."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


@pytest.mark.parametrize("args", [[], ["dashboard"]])
def test_the_dashboard_without_a_terminal_says_so_and_exits(
    args: list[str], orchtui_cmd: list[str], cli_env: dict[str, str], tmp_path: Path,
) -> None:
    result = subprocess.run([*orchtui_cmd, *args], env=cli_env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: the dashboard needs a terminal, and stdin or stdout is not one; over SSH use `ssh -t`, "
        "in scripts use `orchtui run`, `orchtui runs` and `orchtui status`"]
