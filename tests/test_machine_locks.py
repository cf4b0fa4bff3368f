"""Lock resources held across processes: flock files in the state directory."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from core.machine_locks import MachineLocks

HOLD_AND_WAIT = """
import sys, time
from pathlib import Path
from core.machine_locks import MachineLocks
locks = MachineLocks(Path(sys.argv[1]))
assert locks.try_acquire("deploy")
print("held", flush=True)
time.sleep(600)
"""


def test_a_lock_one_holder_has_is_refused_to_another(tmp_path: Path) -> None:
    first, second = MachineLocks(tmp_path), MachineLocks(tmp_path)
    assert first.try_acquire("deploy")
    assert first.try_acquire("deploy")  # this holder again: still held, not refused
    assert not second.try_acquire("deploy")
    assert second.try_acquire("other")  # another lock is another file
    first.release("deploy")
    assert second.try_acquire("deploy")


def test_a_lock_is_free_again_once_its_process_is_killed(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_AND_WAIT, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        locks = MachineLocks(tmp_path)
        assert locks.held_elsewhere("deploy") and not locks.try_acquire("deploy")
        holder.kill()  # SIGKILL: nothing of the holder's runs to let go
        holder.wait(30)
        assert not locks.held_elsewhere("deploy")
        assert locks.try_acquire("deploy")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(30)


def test_held_elsewhere_is_false_for_this_processs_own_hold_and_a_lock_never_made(tmp_path: Path) -> None:
    locks = MachineLocks(tmp_path / "locks")
    assert not locks.held_elsewhere("never")
    assert not (tmp_path / "locks" / "never.lock").exists()  # looking makes no file
    locks.try_acquire("mine")
    assert not locks.held_elsewhere("mine")


def test_any_resource_id_becomes_one_file_name_in_the_directory(tmp_path: Path) -> None:
    locks = MachineLocks(tmp_path / "locks")
    assert locks.try_acquire("../db/primary")
    assert [p.name for p in (tmp_path / "locks").iterdir()] == ["..%2Fdb%2Fprimary.lock"]


def test_without_a_lock_file_the_lock_is_this_processs_alone(read_only_dir: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    locks = MachineLocks(read_only_dir / "locks")
    with caplog.at_level(logging.WARNING, logger="core.machine_locks"):
        assert locks.try_acquire("deploy")
        assert locks.try_acquire("deploy")
    assert [r.message for r in caplog.records if "held by this process only" in r.message]
    assert len(caplog.records) == 1  # warned once
