"""kill -9 a real ``orchtui run`` at several points; ``orchtui resume`` finishes the run.

Each step appends ``start-<step>`` to a trace file, then blocks while its block file
exists, then appends ``<step>``. After the kill, whatever the store had committed must
never run again: its ``start-`` line appears exactly once at the end, while the step
that was killed mid-way starts twice (at-least-once) and every step finishes once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from core.models import TaskStatus, WorkflowStatus
from core.store import Store

REPO = Path(__file__).resolve().parent.parent
STEPS = ("s1", "s2", "s3")


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every process under it, like a machine losing power would."""
    parent = psutil.Process(pid)
    children = parent.children(recursive=True)
    parent.send_signal(signal.SIGKILL)
    for child in children:
        try:
            child.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            continue


def write_workflow(root: Path) -> Path:
    trace = shlex.quote(str(root / "trace.txt"))
    lines = ["name: crashy", "steps:"]
    for i, step in enumerate(STEPS):
        block = shlex.quote(str(root / f"block-{step}"))
        command = (f"echo start-{step} >> {trace}; while [ -e {block} ]; do sleep 0.05; done; "
                   f"echo {step} >> {trace}; echo out-{step}")
        lines += [f"  - name: {step}", "    module: shell", "    action: run",
                  f"    parameters: {{command: {json.dumps(command)}}}"]
        if i:
            lines.append(f"    dependencies: [{STEPS[i - 1]}]")
    path = root / "crashy.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def trace(root: Path) -> Counter[str]:
    path = root / "trace.txt"
    return Counter(path.read_text().split()) if path.exists() else Counter()


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchtui", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("killed_in", STEPS)
def test_kill_9_then_resume_runs_no_committed_step_twice(
    killed_in: str, tmp_path: Path, cli_env: dict[str, str], isolated_state: Path
) -> None:
    workflow = write_workflow(tmp_path)
    (tmp_path / f"block-{killed_in}").touch()
    proc = subprocess.Popen([sys.executable, "-m", "orchtui", "run", str(workflow), "--json"], env=cli_env,
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: trace(tmp_path)[f"start-{killed_in}"] == 1, f"{killed_in} to start")
        before = STEPS[: STEPS.index(killed_in)]
        with Store(isolated_state / "orchtui.db", recover=False) as store:
            def committed() -> bool:
                runs = store.list_runs()
                if not runs or set(store.committed_outputs(runs[0].run_id)) != set(before):
                    return False
                run = store.get_run(runs[0].run_id)
                return run is not None and run.steps[killed_in].status is TaskStatus.RUNNING

            wait_for(committed, f"the completion of {before} and the start of {killed_in} to be committed")
            run_id = store.list_runs()[0].run_id
    finally:
        kill_tree(proc.pid)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    listed = cli(["runs", "--json"], cli_env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [(r["run_id"], r["status"]) for r in json.loads(listed.stdout)] == [(run_id, "interrupted")]

    (tmp_path / f"block-{killed_in}").unlink()
    resumed = cli(["resume", run_id[:10], "--json"], cli_env, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["success"] and result["reused_steps"] == sorted(before)

    counts = trace(tmp_path)
    for step in STEPS:
        assert counts[step] == 1, f"{step} finished {counts[step]} times: {counts}"
        assert counts[f"start-{step}"] == (2 if step == killed_in else 1), counts
    with Store(isolated_state / "orchtui.db") as store:
        new_run = store.get_run(result["run_id"])
        assert new_run is not None and new_run.status is WorkflowStatus.COMPLETED
        assert new_run.parent_run_id == run_id
        assert store.committed_outputs(new_run.run_id) == {s: f"out-{s}" for s in STEPS}
        old = store.get_run(run_id)
        assert old is not None and old.steps[killed_in].status is TaskStatus.INTERRUPTED


ALLOCATING_SCRIPT = """
import sys
from core.config import load_settings
from core.models import Workflow, WorkflowStep
from core.resource_manager import ResourceManager
from core.run_recorder import StoreRecorder
from core.store import Store
from core.task_orchestrator import TaskOrchestrator
from core.workflow_manager import WorkflowManager

settings = load_settings()
store = Store.open(settings)
resources = ResourceManager(detect=False)
resources.register_resource("gpu", "gpu", {"units": 1})
recorder = StoreRecorder(store, resource_manager=resources)
orchestrator = TaskOrchestrator(2, resource_manager=resources)
manager = WorkflowManager(settings=settings, orchestrator=orchestrator, resource_manager=resources,
                          observers=[recorder], autoload=False)
step = WorkflowStep(name="train", module="builtin", action="sleep", parameters={"seconds": 600},
                    resources={"gpu": {"units": 1}})
handle = manager.start_workflow(Workflow(name="gpu-job", steps=[step]), {}, run_id="run-gpu")
while not store.open_allocations("run-gpu"):
    store.flush()
    handle.wait(0.05)
print("holding", flush=True)
handle.wait()
"""


def test_a_killed_process_leaves_no_allocation_open(tmp_path: Path, cli_env: dict[str, str],
                                                    isolated_state: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", ALLOCATING_SCRIPT], env=cli_env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.strip() == "holding", proc.stderr.read() if proc.stderr else ""
    finally:
        kill_tree(proc.pid)
        proc.communicate(timeout=30)
    db = isolated_state / "orchtui.db"
    with Store(db, recover=False) as store:
        assert [a.resource_id for a in store.open_allocations("run-gpu")] == ["gpu"]
    with Store(db) as store:  # opening the store notices the dead owner
        assert store.open_allocations() == []
        run = store.get_run("run-gpu")
        assert run is not None and run.status is WorkflowStatus.INTERRUPTED
        assert run.steps["train"].status is TaskStatus.INTERRUPTED


def write_sleeper(root: Path, pid_file: Path, *, ignore_sigterm: bool = False) -> Path:
    """Write a workflow whose one shell step writes its pid to ``pid_file`` and sleeps."""
    command = f"echo $$ > {shlex.quote(str(pid_file))}; exec sleep 300"
    if ignore_sigterm:
        command = "trap '' TERM; " + command
    workflow = root / "sleeper.yaml"
    workflow.write_text("name: sleeper\nsteps:\n  - name: long\n    module: shell\n    action: run\n"
                        f"    parameters: {{command: {json.dumps(command)}}}\n")
    return workflow


def run_and_kill_owner(workflow: Path, env: dict[str, str], pid_file: Path, state: Path,
                       *options: str) -> psutil.Process:
    """Run ``workflow`` until its run is committed and its step wrote a pid to ``pid_file``,
    SIGKILL the orchtui process alone (the OOM killer's way), and return the pid's process."""
    proc = subprocess.Popen([sys.executable, "-m", "orchtui", "run", str(workflow), *options],
                            env=env, cwd=workflow.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), "the step to start")
        with Store(state / "orchtui.db", recover=False) as store:
            wait_for(store.list_runs, "the run to be committed")
        return psutil.Process(int(pid_file.read_text()))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def wait_gone(process: psutil.Process, what: str, timeout: float) -> None:
    """Wait until ``process`` has ended (killing it afterwards either way, so no test leaks it)."""
    try:
        wait_for(lambda: not process.is_running() or process.status() == psutil.STATUS_ZOMBIE, what, timeout)
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def test_steps_orphaned_by_a_kill_9_are_stopped_when_the_store_next_opens(
    tmp_path: Path, cli_env: dict[str, str], isolated_state: Path
) -> None:
    # Only the orchtui process dies (the OOM killer's way, not a power cut's): its step
    # lives on in its own process group until recovery stops it, so a resume can never
    # run the step while its first attempt still does.
    pid_file = tmp_path / "step.pid"
    step = run_and_kill_owner(write_sleeper(tmp_path, pid_file), cli_env, pid_file, isolated_state)
    assert step.is_running() and step.status() != psutil.STATUS_ZOMBIE  # orphaned, still running

    listed = cli(["runs", "--json"], cli_env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [r["status"] for r in json.loads(listed.stdout)] == ["interrupted"]
    wait_gone(step, "the orphan to be stopped", timeout=10)


PYTHON_STEP = """
import os
import re
import time
from pathlib import Path


def sleep_in_python(pid_file):
    Path(pid_file).write_text(str(os.getpid()))
    while True:  # never looks at its context: only a signal stops it
        time.sleep(0.05)


def spawn_and_wait(pid_file):
    import subprocess
    child = subprocess.Popen(["sleep", "60"])  # inherits the environment: no step marker of its own
    Path(pid_file + ".child").write_text(str(child.pid))
    Path(pid_file).write_text(str(os.getpid()))
    child.wait()


def hold_the_gil(pid_file):
    Path(pid_file).write_text(str(os.getpid()))
    re.match(r"(a+)+$", "a" * 40 + "b")  # one C call that holds the GIL for days
"""


@pytest.mark.parametrize("function", ["sleep_in_python", "hold_the_gil"])
def test_a_python_step_of_the_process_executor_dies_with_its_orchtui_process(
    function: str, tmp_path: Path, cli_env: dict[str, str], isolated_state: Path
) -> None:
    # The step's child process is forked by multiprocessing's fork server, so it carries
    # no owner marker that recovery could find: it must notice its owner's death itself,
    # even while its step keeps the interpreter busy, or a resume would run the step while
    # its first attempt still does.
    pid_file = tmp_path / "step.pid"
    step = _run_python_step_and_kill_owner(function, pid_file, cli_env, isolated_state)
    wait_gone(step, "the step's process to die with its owner", timeout=15)


def _run_python_step_and_kill_owner(function: str, pid_file: Path, cli_env: dict[str, str],
                                    state: Path) -> psutil.Process:
    """Run PYTHON_STEP's ``function`` as a process-executor step, kill its orchtui process
    as it runs, and return the step's process (see :func:`run_and_kill_owner`)."""
    (pid_file.parent / "orphan_step.py").write_text(PYTHON_STEP)
    workflow = pid_file.parent / "python-orphan.yaml"
    workflow.write_text("name: python-orphan\nsteps:\n  - name: work\n    module: python\n    action: call\n"
                        f"    parameters: {{target: 'orphan_step:{function}', args: [{json.dumps(str(pid_file))}]}}\n")
    env = {**cli_env, "PYTHONPATH": str(pid_file.parent) + os.pathsep + cli_env["PYTHONPATH"]}
    return run_and_kill_owner(workflow, env, pid_file, state, "--executor", "process")


def test_a_process_executor_step_and_what_its_python_started_are_gone_once_recovery_ran(
    tmp_path: Path, cli_env: dict[str, str], isolated_state: Path
) -> None:
    # An immediate resume used to run the step beside its first attempt for the stand-in's
    # grace period: the fork server's child and the process it started carried no owner
    # marker, so recovery could not find them, and the child ignored the cancel signal.
    pid_file = tmp_path / "step.pid"
    step = _run_python_step_and_kill_owner("spawn_and_wait", pid_file, cli_env, isolated_state)
    processes = [step]
    with contextlib.suppress(psutil.NoSuchProcess):  # else the step's stand-in, seeing its owner die, was quicker
        processes.append(psutil.Process(int(Path(f"{pid_file}.child").read_text())))
    with Store(isolated_state / "orchtui.db"):  # opening recovers: marks the run, stops its leftovers
        pass
    for process in processes:
        wait_gone(process, "recovery to have stopped it", timeout=0.5)


@pytest.mark.parametrize("ignore_sigterm", [False, True], ids=["stops-on-sigterm", "ignores-sigterm"])
def test_the_commands_of_a_process_executor_step_are_stopped_when_its_orchtui_process_dies(
    ignore_sigterm: bool, tmp_path: Path, cli_env: dict[str, str], isolated_state: Path
) -> None:
    # The step's child process is cancelled before it is killed, so the command stops even
    # if no orchtui process opens the store afterwards to recover the run; one that ignores
    # SIGTERM gets its SIGKILL from the step's supervisor before the child is killed.
    pid_file = tmp_path / "command.pid"
    workflow = write_sleeper(tmp_path, pid_file, ignore_sigterm=ignore_sigterm)
    command_process = run_and_kill_owner(workflow, cli_env, pid_file, isolated_state, "--executor", "process")
    wait_gone(command_process, "the command to be stopped", timeout=30)
