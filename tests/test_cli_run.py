"""``orchtui run``, ``status`` and ``health`` through a real subprocess."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

WAIT = 60.0


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def run_cli(cmd: list[str], env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=WAIT, cwd=cwd)


GOOD = """\
name: good
params:
  who: {type: string, default: world}
  times: {type: integer, default: 1}
steps:
  - name: hello
    module: builtin
    action: echo
    parameters: {message: "hello {{ params.who }} x{{ params.times }}"}
  - name: after
    module: builtin
    action: echo
    dependencies: [hello]
    parameters: {message: "{{ hello.output }}"}
"""

BAD = """\
name: bad
steps:
  - name: build
    module: builtin
    action: fail
    parameters: {message: compiler exploded}
  - name: test
    module: builtin
    action: echo
    dependencies: [build]
    parameters: {message: never}
  - name: docs
    module: builtin
    action: echo
    parameters: {message: fine}
"""


def test_run_success_prints_progress_and_summary_and_exits_0(tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    wf = write(tmp_path / "good.yaml", GOOD)
    done = run_cli(orchtui_cmd, cli_env, "run", str(wf), "-p", "who=cli", "-p", "times=3")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "hello: completed" in out and "after: completed" in out  # plain lines: stdout is a pipe
    assert "good: completed" in out and "2/2 steps completed" in out
    assert "run id: run-" in out and "logs: " in out


def test_run_failure_exits_1_and_names_the_failed_step(tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    wf = write(tmp_path / "bad.yaml", BAD)
    done = run_cli(orchtui_cmd, cli_env, "run", str(wf))
    assert done.returncode == 1
    assert "bad: failed" in done.stdout and "failed: build" in done.stdout and "skipped: test" in done.stdout
    assert "compiler exploded" in done.stdout


def test_run_json_reports_the_execution(tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    wf = write(tmp_path / "good.yaml", GOOD)
    done = run_cli(orchtui_cmd, cli_env, "run", str(wf), "--json", "-p", "who=json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["success"] is True and data["results"]["after"] == "hello json x1"
    assert data["step_status"] == {"hello": "completed", "after": "completed"}
    assert Path(data["log_dir"]).parent == Path(cli_env["ORCHTUI_DIR"]) / "runs"


def test_run_on_the_process_executor_passes_outputs_between_steps(tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    wf = write(tmp_path / "good.yaml", GOOD)
    done = run_cli(orchtui_cmd, cli_env, "run", str(wf), "--json", "--executor", "process", "-p", "who=proc")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"]["after"] == "hello proc x1"


def test_scheduler_without_the_dask_executor_is_a_usage_error(tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    wf = write(tmp_path / "good.yaml", GOOD)
    done = run_cli(orchtui_cmd, cli_env, "run", str(wf), "--scheduler", "tcp://127.0.0.1:8786")
    assert done.returncode == 2
    assert "--scheduler needs --executor dask" in done.stderr


def test_run_on_a_remote_dask_scheduler_over_tcp(tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    distributed = pytest.importorskip("distributed")
    wf = write(tmp_path / "good.yaml", GOOD)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None,
                                  protocol="tcp") as cluster:
        done = run_cli(orchtui_cmd, cli_env, "run", str(wf), "--json", "--executor", "dask",
                       "--scheduler", cluster.scheduler_address, "-p", "who=dask")
        ran_on_cluster = [prefix for prefix in cluster.scheduler.task_prefixes if prefix.startswith("orchtui")]
    assert done.returncode == 0, done.stderr
    assert ran_on_cluster  # the steps really went through this scheduler
    data = json.loads(done.stdout)
    assert data["results"]["after"] == "hello dask x1"


def test_an_unreachable_dask_scheduler_fails_with_one_sentence(tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    wf = write(tmp_path / "good.yaml", GOOD)
    done = run_cli(orchtui_cmd, cli_env, "run", str(wf), "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1")
    assert done.returncode == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in done.stderr
    assert "Traceback" not in done.stderr


def test_run_of_an_unwritten_pipe_or_a_symlink_loop_says_what_is_wrong(tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    fifo, loop = tmp_path / "flow.yaml", tmp_path / "loop.yaml"
    os.mkfifo(fifo)
    loop.symlink_to(loop)
    piped = run_cli(orchtui_cmd, cli_env, "run", str(fifo))
    assert piped.returncode == 1 and "the file is empty" in piped.stderr
    looped = run_cli(orchtui_cmd, cli_env, "run", str(loop))
    assert looped.returncode == 1 and "Too many levels of symbolic links" in looped.stderr


@pytest.mark.parametrize(("address", "reason"), [("garbage", "missing port number"), ("foo://x", "unknown address scheme")])
def test_a_malformed_dask_scheduler_address_fails_at_once_with_one_sentence(
        address: str, reason: str, tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    wf = write(tmp_path / "good.yaml", GOOD)
    done = run_cli(orchtui_cmd, cli_env, "run", str(wf), "--executor", "dask", "--scheduler", address)
    assert done.returncode == 1
    assert f"the Dask scheduler address {address!r} is not valid ({reason}" in done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr


def test_run_by_name_from_the_workflows_dir_and_bad_input(tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    folder = tmp_path / "wfs"
    folder.mkdir()
    write(folder / "greeting.yaml", GOOD)  # file stem differs from the workflow name "good"
    env = dict(cli_env, ORCHTUI_WORKFLOWS_DIR=str(folder))
    by_name = run_cli(orchtui_cmd, env, "run", "good", "--json")
    assert by_name.returncode == 0 and json.loads(by_name.stdout)["workflow_name"] == "good"
    by_stem = run_cli(orchtui_cmd, env, "run", "greeting", "--json")
    assert by_stem.returncode == 0
    typo = run_cli(orchtui_cmd, env, "run", "goood")
    assert typo.returncode == 1 and "did you mean 'good'?" in typo.stderr and "Traceback" not in typo.stderr
    bad_param = run_cli(orchtui_cmd, env, "run", "good", "-p", "times=many", "-p", "hwo=x")
    assert bad_param.returncode == 1
    assert "must be an integer" in bad_param.stderr and "did you mean 'who'?" in bad_param.stderr
    missing = run_cli(orchtui_cmd, env, "run", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "no such workflow file" in missing.stderr


@pytest.mark.parametrize(("stop", "code", "said", "executor", "to_group"), [
    (signal.SIGINT, 130, "Ctrl-C", "thread", False),  # a terminal's Ctrl-C
    (signal.SIGTERM, 143, "SIGTERM", "thread", False),  # timeout, cron wrappers, systemd, kill
    (signal.SIGHUP, 129, "SIGHUP", "thread", False),  # a closed terminal or a dropped SSH connection
    # A closed terminal signals the whole foreground group: the step's own process too.
    (signal.SIGHUP, 129, "SIGHUP", "process", True),
    # ``kill -TERM -PGID``, or a service manager stopping the group: the same.
    (signal.SIGTERM, 143, "SIGTERM", "process", True),
    (signal.SIGINT, 130, "Ctrl-C", "process", True),
])
def test_a_stop_signal_cancels_the_run_and_leaves_no_process_behind(
        stop: signal.Signals, code: int, said: str, executor: str, to_group: bool, tmp_path: Path,
        cli_env: dict[str, str], orchtui_cmd: list[str]):
    pidfile = tmp_path / "sleep.pid"
    command = f"sleep 300 & echo $! > {shlex.quote(str(pidfile))}; wait"
    wf = write(tmp_path / "sleepy.yaml", (
        "name: sleepy\nsteps:\n"
        "  - name: nap\n    module: shell\n    action: run\n"
        f"    parameters: {{command: {json.dumps(command)}}}\n"
        "  - name: after\n    module: builtin\n    action: echo\n    dependencies: [nap]\n"
        "    parameters: {message: too late}\n"
    ))
    # As from a terminal: a shell starts background jobs (a CI runner's test command, a
    # `pytest &`) with SIGINT ignored, and a process that inherits that keeps ignoring it.
    proc = subprocess.Popen([*orchtui_cmd, "run", str(wf), "--executor", executor], env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=to_group,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + WAIT
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the shell step never started"
            time.sleep(0.05)
        sleep_pid = int(pidfile.read_text())
        while psutil.Process(sleep_pid).name() != "sleep":  # forked, not yet exec'd
            assert time.monotonic() < deadline, "the background sleep never started"
            time.sleep(0.01)
        if to_group:
            os.killpg(proc.pid, stop)  # its own group (start_new_session), as a terminal's would be
        else:
            os.kill(proc.pid, stop)
        out, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:  # the test failed early: still leave nothing behind
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=WAIT)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert proc.returncode == code, (out, err)
    assert f"{said}: cancelling" in out and "sleepy: cancelled" in out and "Traceback" not in err
    assert not _alive(sleep_pid)
    runs = json.loads(run_cli(orchtui_cmd, cli_env, "runs", "--json").stdout)
    assert [r["status"] for r in runs] == ["cancelled"]  # recorded as such, not left "running"


def test_a_hangup_ignored_at_start_stays_ignored_as_nohup_wants(tmp_path: Path, cli_env: dict[str, str],
                                                                orchtui_cmd: list[str]):
    gate = tmp_path / "gate"
    gate.touch()
    wf = write(tmp_path / "held.yaml", (
        "name: held\nsteps:\n  - name: wait\n    module: shell\n    action: run\n"
        f"    parameters: {{command: {json.dumps(f'while [ -e {shlex.quote(str(gate))} ]; do sleep 0.05; done')}}}\n"
    ))
    proc = subprocess.Popen([*orchtui_cmd, "run", str(wf)], env=cli_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))  # what nohup does
    try:
        deadline = time.monotonic() + WAIT
        while not any(p.name() == "sh" for p in psutil.Process(proc.pid).children(recursive=True)):
            assert proc.poll() is None and time.monotonic() < deadline, "the step never started"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGHUP)
        time.sleep(0.5)
        assert proc.poll() is None  # still running: the hangup was ignored
        gate.unlink()  # let the step end
        out, err = proc.communicate(timeout=WAIT)
    finally:
        gate.unlink(missing_ok=True)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (out, err)
    assert "held: completed" in out and "SIGHUP" not in out


def test_a_run_id_of_a_stored_run_is_refused_and_that_run_is_left_intact(
        tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    wf = write(tmp_path / "good.yaml", GOOD)
    first = run_cli(orchtui_cmd, cli_env, "run", str(wf), "--run-id", "run-mine", "--json")
    assert first.returncode == 0, first.stderr
    again = run_cli(orchtui_cmd, cli_env, "run", str(wf), "--run-id", "run-mine", "-p", "who=intruder")
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert "run id 'run-mine' is taken by a stored run" in again.stderr and "hello" not in again.stdout
    shown = json.loads(run_cli(orchtui_cmd, cli_env, "show", "run-mine", "--json").stdout)
    assert shown["params"]["who"] == "world"
    assert shown["steps"]["after"]["output"] == "hello world x1"


def _counting_workflow(root: Path) -> Path:
    """A one-step workflow whose step appends a line to ``root/trace.txt`` each time it runs."""
    command = f"echo ran >> {shlex.quote(str(root / 'trace.txt'))}; echo ran"
    return write(root / "count.yaml", "name: count\nsteps:\n  - name: count\n    module: shell\n    action: run\n"
                 f"    parameters: {{command: {json.dumps(command)}}}\n")


def test_runs_started_at_once_with_one_run_id_run_once(tmp_path: Path, cli_env: dict[str, str],
                                                       orchtui_cmd: list[str]):
    wf = _counting_workflow(tmp_path)
    procs = [subprocess.Popen([*orchtui_cmd, "run", str(wf), "--run-id", "run-twin", "--json"], env=cli_env,
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    outcomes = [(proc.wait(WAIT), proc.communicate()) for proc in procs]
    assert sorted(code for code, _ in outcomes) == [0, 1, 1], outcomes
    refused = [json.loads(out) for code, (out, _) in outcomes if code == 1]
    assert {r["error_code"] for r in refused} == {"RUN_ID_TAKEN"}
    assert (tmp_path / "trace.txt").read_text() == "ran\n"
    shown = json.loads(run_cli(orchtui_cmd, cli_env, "show", "run-twin", "--json").stdout)
    assert shown["status"] == "completed"


@pytest.mark.parametrize("recorded", [0, 1], ids=["all unrecorded", "one recorded"])
def test_unrecorded_runs_started_at_once_with_one_run_id_run_once(tmp_path: Path, cli_env: dict[str, str],
                                                                  orchtui_cmd: list[str], recorded: int):
    wf = _counting_workflow(tmp_path)
    flags = [[] if i < recorded else ["--no-record"] for i in range(3)]
    procs = [subprocess.Popen([*orchtui_cmd, "run", str(wf), "--run-id", "run-twin", *flag], env=cli_env,
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for flag in flags]
    outcomes = [(proc.wait(WAIT), proc.communicate()[1]) for proc in procs]
    assert sorted(code for code, _ in outcomes) == [0, 1, 1], outcomes
    assert all("run id 'run-twin' is taken" in err for code, err in outcomes if code == 1), outcomes
    assert (tmp_path / "trace.txt").read_text() == "ran\n"


@pytest.mark.parametrize("second", [["--no-record"], []], ids=["unrecorded again", "recorded"])
def test_a_run_id_an_unrecorded_run_left_logs_under_is_refused(
        tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str], second: list[str]):
    wf = _counting_workflow(tmp_path)
    first = run_cli(orchtui_cmd, cli_env, "run", str(wf), "--run-id", "run-loose", "--no-record")
    assert first.returncode == 0, first.stderr
    again = run_cli(orchtui_cmd, cli_env, "run", str(wf), "--run-id", "run-loose", *second)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert "run id 'run-loose' is taken" in again.stderr and "holds its step logs" in again.stderr
    assert (tmp_path / "trace.txt").read_text() == "ran\n"


def test_runs_in_separate_processes_hold_a_lock_resource_in_turn(tmp_path: Path, cli_env: dict[str, str],
                                                                 orchtui_cmd: list[str]):
    # A deploy lock must keep out the cron job and the dashboard's runs: other processes.
    trace = shlex.quote(str(tmp_path / "trace.txt"))
    command = f"echo start $(date +%s.%N) >> {trace}; sleep 0.3; echo end $(date +%s.%N) >> {trace}"
    config = write(tmp_path / "resources.yaml", "resources:\n  - {id: deploy_lock, type: lock}\n")
    wf = write(tmp_path / "deploy.yaml", "name: deploy\nsteps:\n  - name: ship\n    module: shell\n"
               f"    action: run\n    parameters: {{command: {json.dumps(command)}}}\n"
               "    resources: {deploy_lock: {}}\n")
    env = cli_env | {"ORCHTUI_RESOURCE_CONFIG": str(config)}
    procs = [subprocess.Popen([*orchtui_cmd, "run", str(wf), "--json"], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    outcomes = [(proc.wait(WAIT), proc.communicate()) for proc in procs]
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    events = sorted((float(at), kind) for kind, at in (line.split() for line in (tmp_path / "trace.txt").read_text().splitlines()))
    assert [kind for _, kind in events] == ["start", "end"] * 3  # never two holders at once


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_what_a_python_step_prints_goes_to_its_log_not_into_run_json(
        tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str], executor: str):
    write(tmp_path / "talker.py", "import sys\ndef talk(n):\n    print('hello', n)\n"
          "    print('warning', n, file=sys.stderr)\n    return n * 2\n")
    wf = write(tmp_path / "talk.yaml", "name: talk\nsteps:\n  - name: say\n    module: python\n    action: call\n"
               "    parameters: {target: 'talker:talk', args: [21]}\n")
    env = cli_env | {"PYTHONPATH": f"{tmp_path}{os.pathsep}{cli_env['PYTHONPATH']}"}
    done = run_cli(orchtui_cmd, env, "run", str(wf), "--json", "--executor", executor)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # nothing the step printed got in between
    assert result["results"] == {"say": 42}
    logs = run_cli(orchtui_cmd, env, "logs", result["run_id"], "say")
    assert logs.stdout == "hello 21\nwarning 21\n"


def test_a_completed_run_whose_output_cannot_be_printed_still_reports_completed_in_json(
        tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    write(tmp_path / "boom.py", "class Boom:\n    def __repr__(self):\n        raise ValueError('no repr')\n"
          "def make():\n    return Boom()\n")
    wf = write(tmp_path / "boom.yaml", "name: boom\nsteps:\n  - {name: b, module: python, action: call, "
               "parameters: {target: 'boom:make'}}\n")
    env = cli_env | {"PYTHONPATH": f"{tmp_path}{os.pathsep}{cli_env['PYTHONPATH']}"}
    done = run_cli(orchtui_cmd, env, "run", str(wf), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "completed" and result["results"] == {"b": "<unprintable Boom>"}


def test_escape_sequences_a_step_prints_never_reach_the_terminal_from_run_or_show(
        tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    command = "printf 'out\\033]0;pwned\\007\\n'; printf 'bad\\033[2J\\n' >&2; exit 3"
    wf = write(tmp_path / "esc.yaml", "name: esc\nsteps:\n  - name: noisy\n    module: shell\n    action: run\n"
               f"    parameters: {{command: {json.dumps(command)}}}\n")
    ran = run_cli(orchtui_cmd, cli_env, "run", str(wf), "--run-id", "run-esc")
    assert ran.returncode == 1 and "bad\\x1b[2J" in ran.stdout
    shown = run_cli(orchtui_cmd, cli_env, "show", "run-esc")
    assert shown.returncode == 0 and "bad\\x1b[2J" in shown.stdout
    for output in (ran.stdout, ran.stderr, shown.stdout, shown.stderr):
        assert "\x1b" not in output and "\x07" not in output
    logs = run_cli(orchtui_cmd, cli_env, "logs", "run-esc", "noisy")
    assert "\x1b]0;pwned\x07" in logs.stdout  # the log itself is printed as written, as cat would


def _read_one_line_and_leave(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``argv`` as ``argv | head -1`` would: read one line, close the pipe, wait."""
    proc = subprocess.Popen(argv, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    code = proc.wait(WAIT)
    return code, proc.stderr.read()


def test_a_run_whose_reader_leaves_goes_on_to_its_end_and_exits_with_its_code(
        tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    wf = write(tmp_path / "loud.yaml", "name: loud\nsteps:\n  - name: count\n    module: shell\n    action: run\n"
               "    parameters: {command: 'seq 1 100000; sleep 0.5'}\n"
               "  - name: after\n    module: builtin\n    action: echo\n    dependencies: [count]\n"
               "    parameters: {message: done}\n")
    code, err = _read_one_line_and_leave([*orchtui_cmd, "run", str(wf), "--run-id", "run-headed"], cli_env)
    assert code == 0 and err == ""
    shown = json.loads(run_cli(orchtui_cmd, cli_env, "show", "run-headed", "--json").stdout)
    assert shown["status"] == "completed"


def test_show_whose_reader_leaves_exits_quietly_as_a_pipe_closed_command_does(
        tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    steps = "".join(f"  - name: s{i}\n    module: builtin\n    action: noop\n" for i in range(2000))
    wf = write(tmp_path / "many.yaml", "name: many\nsteps:\n" + steps)
    assert run_cli(orchtui_cmd, cli_env, "run", str(wf), "--run-id", "run-many", "--json").returncode == 0
    code, err = _read_one_line_and_leave([*orchtui_cmd, "show", "run-many"], cli_env)
    assert code == 141 and err == ""


def test_a_usage_error_with_json_is_a_json_error_on_stdout(cli_env: dict[str, str], orchtui_cmd: list[str]):
    out = run_cli(orchtui_cmd, cli_env, "runs", "--json", "--status", "bogus")
    assert out.returncode == 2 and out.stderr == ""
    error = json.loads(out.stdout)
    assert error["success"] is False and error["error_code"] == "USAGE_ERROR"
    assert "'bogus' is not one of" in error["error"]
    plain = run_cli(orchtui_cmd, cli_env, "runs", "--status", "bogus")
    assert plain.returncode == 2 and plain.stdout == "" and "Try 'python -m orchtui runs --help'" in plain.stderr


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_status_says_why_runs_cannot_be_listed_when_the_state_directory_is_a_file(
        tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    (tmp_path / "state-file").write_text("not a directory")
    env = {**cli_env, "ORCHTUI_DIR": str(tmp_path / "state-file")}
    out = run_cli(orchtui_cmd, env, "status")
    assert out.returncode == 0 and "Traceback" not in out.stderr
    assert f"runs: the run store is not available: the state directory {tmp_path / 'state-file'} exists but is " \
           "not a directory" in out.stdout


def test_status_and_health_json(tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    wf = write(tmp_path / "good.yaml", GOOD)
    assert run_cli(orchtui_cmd, cli_env, "run", str(wf)).returncode == 0
    status = run_cli(orchtui_cmd, cli_env, "status", "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert {"orchestration_engine", "workflow_manager", "task_orchestrator", "resource_manager"} <= set(data)
    assert data["runs"] and data["runs"][0]["workflow"] == "good" and data["runs"][0]["status"] == "completed"
    health = run_cli(orchtui_cmd, cli_env, "health", "--json", cwd=tmp_path)
    assert health.returncode == 0, health.stderr
    report = json.loads(health.stdout)
    assert report["overall_status"] in ("healthy", "degraded") and "resource_manager" in report["components"]
    assert report["components"]["store"]["status"] == "healthy"
    plain = run_cli(orchtui_cmd, cli_env, "health", cwd=tmp_path)
    assert plain.returncode == 0 and plain.stdout.startswith("overall: ")


def test_health_reports_a_damaged_store_as_unhealthy(tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    wf = write(tmp_path / "good.yaml", GOOD)
    assert run_cli(orchtui_cmd, cli_env, "run", str(wf)).returncode == 0
    db = Path(cli_env["ORCHTUI_DIR"]) / "orchtui.db"
    with db.open("r+b") as fh:  # the page after the first: the schema's tables live there
        fh.seek(4096)
        fh.write(os.urandom(4096))
    health = run_cli(orchtui_cmd, cli_env, "health", "--json", cwd=tmp_path)
    assert health.returncode == 1 and "Traceback" not in health.stderr
    report = json.loads(health.stdout)
    assert report["overall_status"] == "unhealthy" and report["components"]["store"]["status"] == "unhealthy"
    assert any(issue.startswith("store: ") and "orchtui.db" in issue for issue in report["issues"])


def test_health_with_no_store_yet_is_unhealthy_where_none_can_be_made(
        read_only_dir: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    env = cli_env | {"ORCHTUI_DIR": str(read_only_dir / "state")}
    health = run_cli(orchtui_cmd, env, "health", "--json", cwd=read_only_dir)
    assert health.returncode == 1 and "Traceback" not in health.stderr
    store = json.loads(health.stdout)["components"]["store"]
    assert store["status"] == "unhealthy"
    assert store["details"]["error"].startswith(f"{read_only_dir}: cannot create the run store there")


def test_health_skips_the_page_check_of_a_store_over_the_limit_unless_full(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from core.config import load_settings
    from core.store import Store
    from orchtui.cli import run_cmds

    settings = load_settings()
    Store.open(settings).close()
    monkeypatch.setattr(run_cmds, "_FULL_CHECK_UP_TO", 0)
    quick = run_cmds._store_health(settings)
    assert quick["status"] == "healthy" and "integrity check skipped" in quick["details"]["note"]
    full = run_cmds._store_health(settings, full=True)
    assert full["status"] == "healthy" and "note" not in full["details"]


@pytest.mark.parametrize("args", [["run", "--help"], ["status", "--help"], ["health", "--help"]])
def test_help(args: list[str], cli_env: dict[str, str], orchtui_cmd: list[str]):
    done = run_cli(orchtui_cmd, cli_env, *args)
    assert done.returncode == 0 and "Usage:" in done.stdout


def test_every_bundled_workflow_runs_to_completion(workflows_dir: Path, tmp_path: Path, cli_env: dict[str, str],
                                                  orchtui_cmd: list[str]):
    # Run from a copy, as a user would from a checkout: the directory's resources.yaml
    # supplies the lock that resource_heavy needs.
    import shutil

    shutil.copytree(workflows_dir, tmp_path / "workflows")
    cli_env = {k: v for k, v in cli_env.items() if k != "ORCHTUI_RESOURCE_CONFIG"}
    for name in ("build_test_package", "data_pipeline", "resource_heavy", "demo"):
        done = run_cli(orchtui_cmd, cli_env, "run", name, "--json", cwd=tmp_path)
        assert done.returncode == 0, (name, done.stdout[-2000:], done.stderr[-2000:])
        assert json.loads(done.stdout)["success"] is True


def test_run_json_keeps_stdout_for_the_result_when_a_step_writes_to_the_inherited_stdout(
        tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    # os.system in a python.call on the thread executor writes to orchtui's own descriptor 1.
    wf = write(tmp_path / "stray.yaml", (
        "name: stray\nsteps:\n"
        "  - {name: a, module: python, action: call, parameters: {target: 'os:system', args: ['echo stray words']}}\n"
    ))
    out = run_cli(orchtui_cmd, cli_env, "run", str(wf), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "completed"
    assert "stray words" in out.stderr


@pytest.mark.parametrize("record", [True, False], ids=["recorded", "no-record"])
def test_a_state_directory_that_is_a_file_stops_the_run_with_one_line(
        record: bool, tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str]):
    wf = write(tmp_path / "good.yaml", GOOD)
    not_a_dir = write(tmp_path / "state-file", "")
    env = dict(cli_env, ORCHTUI_DIR=str(not_a_dir))
    result = run_cli(orchtui_cmd, env, "run", str(wf), *([] if record else ["--no-record"]))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"error: the state directory {not_a_dir} exists but is not a directory; "
                             "remove it or set ORCHTUI_DIR to another path\n")


def test_a_run_that_cannot_publish_itself_still_runs_and_is_recorded(
        tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str], isolated_state: Path):
    wf = write(tmp_path / "good.yaml", GOOD)
    isolated_state.mkdir(parents=True, exist_ok=True)
    write(isolated_state / "live", "")  # where the live file's folder should be
    result = run_cli(orchtui_cmd, cli_env, "run", str(wf), "--json")
    assert result.returncode == 0, result.stderr
    assert "will not see this process's runs or be able to cancel them" in result.stderr
    runs = json.loads(run_cli(orchtui_cmd, cli_env, "runs", "--json").stdout)
    assert [r["status"] for r in runs] == ["completed"]
