"""Supervised subprocess trees: capped logs, deadlines, cancel, no orphans, memory limits."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from process_helpers import alive, kill_if_alive

from core.process_tree import (
    OWNER_ENV,
    TOKEN_ENV,
    CappedLog,
    collect_tree,
    kill_orphans,
    kill_tree,
    new_token,
    owner_marker,
    run_process,
    spawn,
    this_process,
)


def wait_for_lines(path: Path, count: int, limit: float = 10.0) -> list[int]:
    """Wait until ``path`` holds ``count`` pid lines (the child writes them) and return them."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if path.exists():
            lines = path.read_text().split()
            if len(lines) >= count:
                return [int(x) for x in lines]
        time.sleep(0.01)
    raise AssertionError(f"the child did not write {count} pids to {path}")


# A tree with every way of escaping a naive kill: a plain background child, a child that
# ignores SIGTERM, a grandchild that double-forked and called setsid (new session, new
# process group, parent gone), and the main shell itself.
TREE_SCRIPT = """
sleep 60 & echo $! >> "$1"
sh -c 'trap "" TERM; echo $$ >> "$1"; sleep 60; sleep 60' sh "$1" &
( setsid sleep 60 & echo $! >> "$1" )
echo $$ >> "$1"
sleep 60
"""


def tree_argv(pid_file: Path) -> list[str]:
    return ["/bin/sh", "-c", TREE_SCRIPT, "sh", str(pid_file)]


def test_timeout_kills_the_whole_tree_including_setsid_grandchildren(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    result = run_process(tree_argv(pid_file), deadline=time.monotonic() + 0.5, kill_grace=0.2)
    pids = wait_for_lines(pid_file, 4)
    assert result.timed_out and not result.cancelled
    assert set(pids) <= set(result.killed_pids)
    assert [pid for pid in pids if alive(pid)] == []


# A grandchild that sheds every mark but one: a new session (so another process group),
# a parent that exits (so no longer a descendant), an empty environment (so no token),
# and its output on /dev/null (so it holds none of the step's pipes).
ESCAPING_SCRIPT = """
( setsid env -i /bin/sh -c 'echo $$ >> "$1"; exec sleep 60' sh "$1" >/dev/null 2>&1 & )
sleep 60
"""


def test_timeout_kills_a_grandchild_that_left_the_session_the_environment_and_the_pipes(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    result = run_process(["/bin/sh", "-c", ESCAPING_SCRIPT, "sh", str(pid_file)],
                         deadline=time.monotonic() + 0.5, kill_grace=0.2)
    (escaped,) = wait_for_lines(pid_file, 1)
    try:
        assert result.timed_out and escaped in result.killed_pids
        assert not alive(escaped)
    finally:
        kill_if_alive(escaped)


@pytest.mark.parametrize(("command", "ending"), [
    ("sleep 30", "they ended within the grace period]"),
    ("trap '' TERM; sleep 30", "SIGKILL after the 0.2s grace period]"),
])
def test_a_timed_out_steps_log_says_how_it_was_stopped(tmp_path: Path, command: str, ending: str) -> None:
    log = tmp_path / "step.log"
    result = run_process(["/bin/sh", "-c", f"echo started; {command}"], deadline=time.monotonic() + 0.3,
                         kill_grace=0.2, log_path=log)
    assert result.timed_out
    lines = log.read_text().splitlines()
    assert lines[0] == "started" and lines[-1].startswith("[orchtui: timed out: sent SIGTERM to ")
    assert lines[-1].endswith(ending)


def test_cancel_kills_the_running_tree(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    cancel = threading.Event()

    def cancel_when_started() -> None:
        wait_for_lines(pid_file, 4)
        cancel.set()

    watcher = threading.Thread(target=cancel_when_started)
    watcher.start()
    result = run_process(tree_argv(pid_file), cancel_event=cancel, kill_grace=0.2)
    watcher.join()
    assert result.cancelled and not result.timed_out
    assert [pid for pid in wait_for_lines(pid_file, 4) if alive(pid)] == []


def test_a_hurry_cuts_the_grace_period_of_a_tree_being_stopped_short(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A second Ctrl-C: the user will not wait out the grace period of a step that ignores SIGTERM.
    import core.process_tree as process_tree

    monkeypatch.setattr(process_tree, "_hurried", False)
    started = tmp_path / "started"
    cancel = threading.Event()
    outcome: list[process_tree.ProcessResult] = []
    stopper = threading.Thread(target=lambda: outcome.append(run_process(
        ["/bin/sh", "-c", f"trap '' TERM; touch {started}; while :; do sleep 0.05; done"],
        cancel_event=cancel, kill_grace=3600)))
    stopper.start()
    deadline = time.monotonic() + 30
    while not started.exists():
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.02)
    cancel.set()  # SIGTERM, ignored: an hour of grace would follow
    process_tree.hurry_kills()
    stopper.join(60)
    assert not stopper.is_alive(), "the hurry did not end the grace period"
    assert outcome[0].cancelled and outcome[0].returncode == -9


def test_background_processes_left_holding_the_pipes_are_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    result = run_process(["/bin/sh", "-c", f"sleep 60 & echo $! > {pid_file}; echo done"], kill_grace=0.2)
    assert result.returncode == 0
    assert result.stdout == b"done\n"
    assert result.leftovers_killed
    (pid,) = wait_for_lines(pid_file, 1)
    assert not alive(pid)


def test_steps_ending_while_other_threads_spawn_are_not_taken_for_leaving_processes_behind() -> None:
    # Another thread's spawn briefly holds a copy of this step's pipes (until its child
    # execs): the end of file comes a moment after the exit, which is not a leftover.
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: run_process(["true"]), range(400)))
    assert [r for r in results if r.leftovers_killed or r.killed_pids] == []
    assert all(r.returncode == 0 for r in results)


def test_exit_code_stdout_and_stderr_tail() -> None:
    result = run_process(["/bin/sh", "-c", "echo out; echo one >&2; echo two >&2; exit 3"])
    assert result.returncode == 3
    assert result.stdout == b"out\n"
    assert result.stderr_lines() == ["one", "two"]
    assert not result.timed_out and not result.killed_pids


def test_both_streams_go_to_the_log_in_a_new_directory(tmp_path: Path) -> None:
    log = tmp_path / "runs" / "r1" / "step.1.log"
    run_process(["/bin/sh", "-c", "echo to-out; echo to-err >&2"], log_path=log)
    text = log.read_text()
    assert "to-out" in text and "to-err" in text


def test_log_and_output_are_capped_with_a_visible_marker(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    script = "import sys; sys.stdout.write('x' * 100000); sys.stdout.flush()"
    result = run_process([sys.executable, "-c", script], log_path=log, log_cap_bytes=1000)
    data = log.read_bytes()
    assert data.startswith(b"x" * 1000)
    assert data.count(b"x") == 1000
    assert b"[orchtui: log truncated at 1000 bytes]" in data
    assert result.log_truncated and result.stdout_truncated
    assert result.stdout == b"x" * 1000
    assert result.returncode == 0


def test_capped_log_counts_what_the_file_already_holds(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"12345")
    sink = CappedLog(path, 8)
    sink.write(b"abcdef")
    sink.close()
    assert path.read_bytes().startswith(b"12345abc\n[orchtui: log truncated at 8 bytes]")


FULL_DISK = Path("/dev/full")  # every write fails with ENOSPC, as on a full disk


def test_a_log_on_a_full_disk_says_why_and_never_raises() -> None:
    sink = CappedLog(FULL_DISK, 1000)
    sink.write(b"lost")
    sink.note("also lost")
    sink.close()
    assert sink.error == f"cannot write the log {FULL_DISK}: No space left on device"


def test_a_log_whose_directory_cannot_be_made_says_why(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    sink = CappedLog(tmp_path / "file" / "step.1.log", 1000)
    sink.write(b"lost")
    assert sink.error.startswith("cannot write the log") and not (tmp_path / "file").is_dir()


def test_a_command_whose_log_cannot_be_written_still_runs_to_its_end() -> None:
    result = run_process(["/bin/sh", "-c", "echo printed; echo more >&2; exit 4"], log_path=FULL_DISK)
    assert result.returncode == 4 and result.stdout == b"printed\n" and result.stderr_lines() == ["more"]
    assert "No space left on device" in result.log_error


def test_memory_limit_makes_a_runaway_child_fail() -> None:
    script = "bytearray(2 * 1024 ** 3)"
    result = run_process([sys.executable, "-c", script], memory_limit_bytes=200 * 1024 * 1024)
    assert result.returncode != 0
    assert any("MemoryError" in line for line in result.stderr_lines())


def test_memory_limit_leaves_a_modest_child_alone() -> None:
    result = run_process([sys.executable, "-c", "print(len(bytearray(10 ** 6)))"], memory_limit_bytes=200 * 1024 * 1024)
    assert (result.returncode, result.stdout) == (0, b"1000000\n")


def test_spawn_gives_the_child_stdin_from_dev_null() -> None:
    proc = spawn(["/bin/sh", "-c", "cat; echo $?"])
    out, _ = proc.communicate(timeout=10)
    assert out.strip() == b"0"  # cat read EOF at once instead of waiting on our terminal


def test_spawn_puts_the_child_in_its_own_process_group() -> None:
    proc = spawn(["sleep", "5"])
    try:
        assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
    finally:
        kill_tree(proc.pid, grace=0.2, pgid=proc.pid)
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def test_child_carries_the_step_token() -> None:
    result = run_process(["/bin/sh", "-c", f'echo "${TOKEN_ENV}"'])
    assert len(result.stdout.strip()) == 32


def test_missing_program_raises_oserror() -> None:
    with pytest.raises(FileNotFoundError):
        run_process(["/nonexistent/program"])


def test_kill_tree_finds_a_detached_grandchild_by_token(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    env = dict(os.environ, **{TOKEN_ENV: "tok-test-123"})
    proc = subprocess.Popen(
        ["/bin/sh", "-c", f"( setsid sleep 60 & echo $! > {pid_file} ); sleep 60"], env=env, start_new_session=True
    )
    (grandchild,) = wait_for_lines(pid_file, 1)
    assert grandchild not in collect_tree(proc.pid)  # neither a descendant nor in the group
    assert grandchild in collect_tree(proc.pid, token="tok-test-123")
    signalled = kill_tree(proc.pid, grace=0.2, token="tok-test-123", pgid=proc.pid)
    proc.wait()
    assert {proc.pid, grandchild} <= set(signalled)
    assert not alive(grandchild)


def test_a_silent_command_creates_no_log_file(tmp_path: Path) -> None:
    log = tmp_path / "runs" / "quiet.log"
    assert run_process(["true"], log_path=log).returncode == 0
    assert not log.exists()


def test_env_changes_set_and_unset_over_the_current_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Set after import: the child must see os.environ as it is at spawn time.
    monkeypatch.setenv("ORCHTUI_TEST_KEEP", "kept")
    monkeypatch.setenv("ORCHTUI_TEST_DROP", "dropped")
    script = 'echo "${ORCHTUI_TEST_KEEP}|${ORCHTUI_TEST_DROP-unset}|${ORCHTUI_TEST_NEW}"'
    result = run_process(["/bin/sh", "-c", script],
                         env_changes={"ORCHTUI_TEST_DROP": None, "ORCHTUI_TEST_NEW": "new"})
    assert result.stdout.decode().strip() == "kept|unset|new"
    monkeypatch.delenv("ORCHTUI_TEST_KEEP")
    result = run_process(["/bin/sh", "-c", script])
    assert result.stdout.decode().strip() == "|dropped|"


def test_a_forked_process_makes_other_tokens_than_its_parent() -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next token and leave at once
        os.write(write_end, new_token().encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        child_token = pipe.read().decode()
    mine = new_token()
    assert len(child_token) == len(mine) == 32
    assert child_token[:16] != mine[:16]


# A short-lived owner: runs a step under supervision (so it carries the owner marker),
# prints its own identity and the step's pid, and dies without cleaning up.
ABANDONING_OWNER = """
import os, sys, threading, time
from core.process_tree import run_process, this_process
pid_file = sys.argv[1]
threading.Thread(target=run_process, args=(["sh", "-c", 'echo $$ > "$0"; ' + sys.argv[2], pid_file],),
                 daemon=True).start()
while not (os.path.exists(pid_file) and open(pid_file).read().strip()):
    time.sleep(0.01)
pid, started = this_process()
print(pid, repr(started), open(pid_file).read().strip(), flush=True)
os._exit(0)
"""


def abandon_a_step(tmp_path: Path, command: str = "exec sleep 60") -> tuple[int, float, int]:
    """Run an owner process that leaves a step running ``command`` (a shell command that
    must keep the step's pid) behind; return (owner pid, start, step pid)."""
    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", ABANDONING_OWNER, str(tmp_path / "step.pid"), command], cwd=repo,
                          capture_output=True, text=True, timeout=60, check=True)
    owner, started, step = done.stdout.split()
    return int(owner), float(started), int(step)


def test_steps_carry_the_marker_of_the_process_that_started_them(tmp_path: Path) -> None:
    owner, started, step = abandon_a_step(tmp_path)
    try:
        assert psutil.Process(step).environ()[OWNER_ENV] == owner_marker(owner, started)
    finally:
        kill_orphans(owner, started, grace=0.2)


def test_kill_orphans_stops_the_steps_a_dead_owner_left_behind(tmp_path: Path) -> None:
    owner, started, step = abandon_a_step(tmp_path)
    assert alive(step)  # the owner is gone, its step is not
    assert kill_orphans(owner, started, grace=1.0) == [step]
    assert not alive(step)


def test_kill_orphans_stops_a_step_process_that_cleared_its_environment(tmp_path: Path) -> None:
    owner, started, step = abandon_a_step(tmp_path, "exec env -i sleep 60")
    try:
        assert OWNER_ENV not in psutil.Process(step).environ()
        assert kill_orphans(owner, started, grace=1.0) == [step]
        assert not alive(step)
    finally:
        kill_if_alive(step)


def test_kill_orphans_leaves_the_steps_of_a_live_owner_alone(tmp_path: Path) -> None:
    pid_file = tmp_path / "step.pid"
    cancel = threading.Event()
    runner = threading.Thread(target=run_process, args=(["sh", "-c", 'echo $$ > "$0"; exec sleep 30', str(pid_file)],),
                              kwargs={"cancel_event": cancel, "kill_grace": 0.2})
    runner.start()
    try:
        step = wait_for_lines(pid_file, 1)[0]
        assert kill_orphans(*this_process(), grace=0.1) == []
        assert alive(step)
    finally:
        cancel.set()
        runner.join()


def test_kill_orphans_ignores_another_process_that_reused_the_owner_pid(tmp_path: Path) -> None:
    owner, started, step = abandon_a_step(tmp_path)
    try:
        # Same pid, another start time: these steps are not that process's.
        assert kill_orphans(owner, started - 100.0, grace=0.1) == []
        assert alive(step)
    finally:
        kill_orphans(owner, started, grace=0.2)


def test_a_detached_process_gets_no_owner_marker_of_ours_but_keeps_another(tmp_path: Path) -> None:
    from core.process_tree import OWNER_ENV, owner_marker, strip_own_marker, this_process

    ours = {OWNER_ENV: owner_marker(*this_process()), "KEEP": "1"}
    strip_own_marker(ours)
    assert ours == {"KEEP": "1"}
    foreign = {OWNER_ENV: owner_marker(1, 12.5)}
    strip_own_marker(foreign)
    assert foreign == {OWNER_ENV: owner_marker(1, 12.5)}
