"""A Python step's prints go to its own log, each thread's to its own step."""

from __future__ import annotations

import sys
import threading

import pytest

from core.step_output import printed_to


def test_prints_of_steps_on_two_threads_each_reach_their_own_sink_and_others_pass_through(
        capsys: pytest.CaptureFixture[str]) -> None:
    sinks: dict[str, list[str]] = {"a": [], "b": []}
    both_inside = threading.Barrier(2)

    def step(name: str) -> None:
        with printed_to(sinks[name].append):
            both_inside.wait(10)  # both proxies routing at once
            for i in range(50):
                print(name, i)
                print(f"{name} err", file=sys.stderr)
            both_inside.wait(10)

    threads = [threading.Thread(target=step, args=(name,)) for name in sinks]
    for thread in threads:
        thread.start()
    print("from the main thread")
    for thread in threads:
        thread.join(10)
    for name, written in sinks.items():
        text = "".join(written)
        assert text.count(f"{name} err\n") == 50 and f"{name} 49\n" in text
        assert ("b" if name == "a" else "a") not in text.replace(f"{name} err", "")
    captured = capsys.readouterr()
    assert captured.out == "from the main thread\n" and captured.err == ""


def test_the_real_streams_are_back_after_the_last_step_leaves() -> None:
    before = sys.stdout, sys.stderr
    with printed_to(lambda text: None):
        assert sys.stdout is not before[0]
    assert (sys.stdout, sys.stderr) == before
