"""Step log paths, reading, tailing and following (core/logs.py)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.errors import StoreError
from core.logs import (
    CLAIM_FILE,
    claim_log_dir,
    TRUNCATION_MARKER,
    attempt_log_path,
    follow,
    is_truncated,
    list_logs,
    log_path,
    newest_log,
    read_log,
    run_log_dir,
    truncation_marker,
    validate_run_id,
    validate_step_name,
)


def test_log_path_layout(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert log_path(runs, "run-abc", "build", 2) == runs / "run-abc" / "build.2.log"
    assert run_log_dir(runs, "run-abc") == runs / "run-abc"
    # Step names are free text apart from path characters.
    assert log_path(runs, "r1", "make docs v2.0", 1).name == "make docs v2.0.1.log"


def test_the_unchecked_attempt_log_path_is_the_checked_one_as_text(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for run_id, step, attempt in [("run-abc", "build", 2), ("r1", "make docs v2.0", 1), ("r-2", "ünï", 10)]:
        assert attempt_log_path(runs, run_id, step, attempt) == str(log_path(runs, run_id, step, attempt))
        assert attempt_log_path(str(runs), run_id, step, attempt) == str(log_path(runs, run_id, step, attempt))


@pytest.mark.parametrize("run_id", ["", "../x", "a/b", ".hidden", "a..b", "x" * 129, "a b", "a\\b"])
def test_unsafe_run_ids_are_refused(tmp_path: Path, run_id: str) -> None:
    with pytest.raises(StoreError, match="invalid run id"):
        log_path(tmp_path, run_id, "step", 1)
    with pytest.raises(StoreError):
        validate_run_id(run_id)


@pytest.mark.parametrize("step", ["", ".", "..", "../etc", "a/b", "a\\b", ".x", "a\x00b", "a\nb", "s" * 201])
def test_unsafe_step_names_are_refused(tmp_path: Path, step: str) -> None:
    with pytest.raises(StoreError, match="invalid step name"):
        log_path(tmp_path, "run-1", step, 1)
    with pytest.raises(StoreError):
        validate_step_name(step)


def test_attempts_count_from_one(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="attempts count from 1"):
        log_path(tmp_path, "run-1", "a", 0)


def test_a_symlinked_run_dir_cannot_escape(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (runs / "run-1").symlink_to(outside)
    with pytest.raises(StoreError, match="outside"):
        log_path(runs, "run-1", "a", 1)


def test_a_symlinked_log_file_cannot_escape(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    (runs / "run-1").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    (runs / "run-1" / "a.1.log").symlink_to(secret)
    with pytest.raises(StoreError, match="outside"):
        log_path(runs, "run-1", "a", 1)
    with pytest.raises(StoreError, match="outside"):
        newest_log(runs, "run-1", "a", known_attempt=1)


def test_read_log_whole_and_tail(tmp_path: Path) -> None:
    path = tmp_path / "a.1.log"
    path.write_text("".join(f"line {i}\n" for i in range(5000)))
    assert read_log(path).count("\n") == 5000
    assert read_log(path, tail_lines=3) == "line 4997\nline 4998\nline 4999\n"
    assert read_log(path, tail_lines=0) == ""
    path.write_text("one\ntwo\nthree")  # no final newline
    assert read_log(path, tail_lines=2) == "two\nthree"
    assert read_log(path, tail_lines=10) == "one\ntwo\nthree"


def test_read_log_tolerates_bad_utf8_and_reports_missing(tmp_path: Path) -> None:
    path = tmp_path / "a.1.log"
    path.write_bytes(b"ok \xff\xfe\n")
    assert read_log(path) == "ok \ufffd\ufffd\n"
    with pytest.raises(StoreError, match="no log file"):
        read_log(tmp_path / "missing.1.log")


def test_truncation_marker_is_the_process_tree_text(tmp_path: Path) -> None:
    assert truncation_marker(1024) == "[orchtui: log truncated at 1024 bytes]"
    assert TRUNCATION_MARKER.format(limit=5) == "[orchtui: log truncated at 5 bytes]"
    path = tmp_path / "a.1.log"
    path.write_text("x" * 100 + "\n")
    assert not is_truncated(path)
    path.write_text("x" * 100 + "\n" + truncation_marker(100) + "\n")
    assert is_truncated(path)
    assert not is_truncated(tmp_path / "missing.log")


def test_list_logs_parses_names_with_dots(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    directory = runs / "run-1"
    directory.mkdir(parents=True)
    for name in ("a.1.log", "a.2.log", "v1.2.step.1.log", "notes.txt", "b.x.log"):
        (directory / name).write_text("x")
    found = [(f.step, f.attempt) for f in list_logs(runs, "run-1")]
    assert found == [("a", 1), ("a", 2), ("v1.2.step", 1)]
    assert [f.attempt for f in list_logs(runs, "run-1", "a")] == [1, 2]
    assert list_logs(runs, "run-2") == []


def _write_logs(runs: Path, *names: str) -> None:
    directory = runs / "run-1"
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_text("x")


def test_the_newest_log_is_the_newest_attempt_that_wrote_one(tmp_path: Path) -> None:
    _write_logs(tmp_path, "a.2.log", "b.1.log")  # a's first attempt wrote nothing, its third has not yet
    assert newest_log(tmp_path, "run-1", "a", known_attempt=3) == (log_path(tmp_path, "run-1", "a", 2), 2)


def test_the_newest_log_includes_attempts_newer_than_the_known_one(tmp_path: Path) -> None:
    _write_logs(tmp_path, "a.1.log", "a.2.log")
    assert newest_log(tmp_path, "run-1", "a", known_attempt=1) == (log_path(tmp_path, "run-1", "a", 2), 2)
    assert newest_log(tmp_path, "run-1", "a") == (log_path(tmp_path, "run-1", "a", 2), 2)


def test_a_step_that_wrote_no_log_has_no_newest_log(tmp_path: Path) -> None:
    _write_logs(tmp_path, "b.1.log")
    assert newest_log(tmp_path, "run-1", "a", known_attempt=2) == (None, 0)
    assert newest_log(tmp_path, "run-2", "a") == (None, 0)


def test_the_newest_log_of_an_unsafe_step_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        newest_log(tmp_path, "run-1", "../x", known_attempt=1)


def test_follow_sees_lines_written_by_another_thread(tmp_path: Path) -> None:
    path = tmp_path / "a.1.log"
    done = threading.Event()

    def writer() -> None:
        time.sleep(0.05)  # the file appears only after follow started
        with path.open("a") as fh:
            for i in range(50):
                fh.write(f"line {i}\n")
                fh.flush()
                if i % 10 == 0:
                    time.sleep(0.01)
            fh.write("partial")
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    lines = list(follow(path, done.is_set, poll_interval=0.01))
    thread.join()
    assert lines == [f"line {i}" for i in range(50)] + ["partial"]


def test_follow_a_log_written_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "a.1.log"
    script = (
        "import sys, time\n"
        "with open(sys.argv[1], 'a') as fh:\n"
        "    for i in range(20):\n"
        "        fh.write(f'out {i}\\n'); fh.flush(); time.sleep(0.005)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)])
    lines = list(follow(path, lambda: proc.poll() is not None, poll_interval=0.01))
    assert proc.wait() == 0
    assert lines == [f"out {i}" for i in range(20)]


def test_follow_restarts_after_truncation_and_tails(tmp_path: Path) -> None:
    path = tmp_path / "a.1.log"
    path.write_text("old 1\nold 2\nold 3\n")
    seen: list[str] = []
    stop = threading.Event()

    def consume() -> None:
        for line in follow(path, stop.is_set, poll_interval=0.01, tail_lines=1):
            seen.append(line)

    thread = threading.Thread(target=consume)
    thread.start()
    deadline = time.monotonic() + 10
    while seen != ["old 3"] and time.monotonic() < deadline:
        time.sleep(0.01)
    path.write_text("new\n")  # truncates in place, shorter than before
    while "new" not in seen and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join()
    assert seen == ["old 3", "new"]


def test_follow_ends_when_the_step_never_wrote_a_log(tmp_path: Path) -> None:
    assert list(follow(tmp_path / "never.1.log", lambda: True)) == []


def test_a_claimed_run_id_cannot_be_claimed_again(tmp_path: Path) -> None:
    claim = claim_log_dir(tmp_path, "run-mine")
    assert claim == tmp_path / "run-mine" / CLAIM_FILE and claim.is_file()
    with pytest.raises(StoreError, match="'run-mine' is taken: another run claimed it") as caught:
        claim_log_dir(tmp_path, "run-mine")
    assert caught.value.error_code == "RUN_ID_TAKEN"


def test_a_run_id_whose_logs_exist_without_a_claim_is_taken(tmp_path: Path) -> None:
    (tmp_path / "run-old").mkdir()
    (tmp_path / "run-old" / "s.1.log").write_text("written before claims existed\n")
    with pytest.raises(StoreError, match="holds its step logs"):
        claim_log_dir(tmp_path, "run-old")


def test_of_many_threads_claiming_one_run_id_at_once_exactly_one_gets_it(tmp_path: Path) -> None:
    start = threading.Barrier(16)
    outcomes: list[str] = []

    def claim() -> None:
        start.wait()
        try:
            claim_log_dir(tmp_path, "run-contested")
        except StoreError as exc:
            outcomes.append(exc.error_code)
        else:
            outcomes.append("won")

    threads = [threading.Thread(target=claim) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["RUN_ID_TAKEN"] * 15 + ["won"]
