"""Looking at and cleaning up real processes in tests (shared by the process-tree, action and MCP tests)."""

from __future__ import annotations

import psutil


def alive(pid: int) -> bool:
    """True while ``pid`` is a running process (a zombie is dead: it only awaits reaping)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_if_alive(pid: int) -> None:
    """Leave no process behind when a test that expected it killed fails."""
    try:
        psutil.Process(pid).kill()
    except psutil.Error:
        pass
