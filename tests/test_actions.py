"""The action registry, the built-in actions and ``invoke`` (real subprocesses throughout)."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from process_helpers import alive

from core.actions import (
    ActionContext,
    ActionError,
    ActionRegistry,
    StepCancelled,
    StepTimeout,
    UnknownActionError,
    action,
    invoke,
    registry,
)
from core.errors import OrchestrationError
from core.models import Invocation, TaskResult
from core.templating import resolve_parameters


def run(
    module: str,
    name: str,
    parameters: dict[str, Any] | None = None,
    cancel_event: Any = None,
    **fields: Any,
) -> TaskResult:
    invocation = Invocation(task_id="t1", task_name="step", module=module, action=name, parameters=parameters or {}, **fields)
    return invoke(invocation, cancel_event)


def read_pids(path: Path, count: int) -> list[int]:
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if path.exists() and len(path.read_text().split()) >= count:
            return [int(x) for x in path.read_text().split()]
        time.sleep(0.01)
    raise AssertionError(f"expected {count} pids in {path}")


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path for throwaway modules that python.call can import."""
    folder = tmp_path / "mods"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


# ------------------------------------------------------------------ shell.run


def test_shell_string_command_output_is_stripped_stdout(tmp_path: Path) -> None:
    result = run("shell", "run", {"command": "echo hello; echo noise >&2"}, working_dir=str(tmp_path))
    assert result.success, result.error_message
    assert result.data == "hello"
    assert result.exit_code == 0 and result.error_type == ""
    assert result.started_at is not None and result.finished_at is not None


def test_shell_argv_list_runs_without_a_shell() -> None:
    result = run("shell", "run", {"command": ["echo", "$HOME", "a b"]})
    assert result.data == "$HOME a b"


def test_shell_cwd_is_relative_to_the_working_dir(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    result = run("shell", "run", {"command": "pwd", "cwd": "sub"}, working_dir=str(tmp_path))
    assert Path(result.data).resolve() == (tmp_path / "sub").resolve()


def test_shell_missing_cwd_is_a_clear_failure(tmp_path: Path) -> None:
    result = run("shell", "run", {"command": "true", "cwd": "nope"}, working_dir=str(tmp_path))
    assert not result.success and result.error_type == "ActionError"
    assert "working directory" in result.error_message and "nope" in result.error_message


def test_shell_env_is_merged_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHTUI_TEST_OUTER", "outer")
    result = run(
        "shell",
        "run",
        {"command": 'echo "$ORCHTUI_TEST_OUTER $STEP_VAR $FROM_INVOCATION $COUNT"', "env": {"STEP_VAR": "inner", "COUNT": 3}},
        env={"FROM_INVOCATION": "inv"},
    )
    assert result.data == "outer inner inv 3"


def test_shell_nonzero_exit_fails_with_code_and_stderr_tail() -> None:
    result = run("shell", "run", {"command": "echo partial; echo 'disk is full' >&2; exit 3"})
    assert not result.success
    assert (result.error_type, result.exit_code) == ("ActionError", 3)
    assert "exited with code 3" in result.error_message and "disk is full" in result.error_message
    assert result.data == "partial"


def test_shell_ok_exit_codes_accept_listed_codes() -> None:
    assert run("shell", "run", {"command": "exit 3", "ok_exit_codes": [0, 3]}).success
    refused = run("shell", "run", {"command": "exit 0", "ok_exit_codes": [1]})
    assert not refused.success and refused.exit_code == 0


def test_shell_parse_json() -> None:
    good = run("shell", "run", {"command": """echo '{"n": 2, "items": [1, 2]}'""", "parse_json": True})
    assert good.data == {"n": 2, "items": [1, 2]}
    bad = run("shell", "run", {"command": "echo not-json", "parse_json": True})
    assert not bad.success and "not valid JSON" in bad.error_message


def test_shell_command_not_found_is_exit_127() -> None:
    result = run("shell", "run", {"command": ["definitely-not-a-program-xyz"]})
    assert (result.success, result.exit_code) == (False, 127)
    assert "command not found" in result.error_message


def test_shell_logs_both_streams_into_a_new_directory(tmp_path: Path) -> None:
    log = tmp_path / "runs" / "r1" / "step.1.log"
    result = run("shell", "run", {"command": "echo out-line; echo err-line >&2"}, log_path=str(log))
    assert "out-line" in log.read_text() and "err-line" in log.read_text()
    assert result.metadata["log_path"] == str(log)


def test_shell_log_truncation_marker_and_capped_output(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    command = [sys.executable, "-c", "print('y' * 50000)"]
    result = run("shell", "run", {"command": command}, log_path=str(log), log_cap_bytes=2048)
    assert result.success
    assert "[orchtui: log truncated at 2048 bytes]" in log.read_text()
    assert result.metadata["log_truncated"] and result.metadata["output_truncated"]
    assert result.data == "y" * 2048


GRANDCHILDREN = """
sleep 60 & echo $! >> "$1"
( setsid sleep 60 & echo $! >> "$1" )
( ( sleep 60 & echo $! >> "$1" ) & )
echo $$ >> "$1"
sleep 60
"""


def test_shell_timeout_kills_grandchildren_including_double_forked_setsid(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    command = ["/bin/sh", "-c", GRANDCHILDREN, "sh", str(pid_file)]
    result = run("shell", "run", {"command": command}, timeout=0.5, kill_grace=0.2)
    assert (result.success, result.error_type) == (False, "TimeoutError")
    assert result.error_message == "timed out after 0.5s"
    pids = read_pids(pid_file, 4)
    assert [pid for pid in pids if alive(pid)] == []


def test_shell_cancel_kills_the_running_tree(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    cancel = threading.Event()
    command = ["/bin/sh", "-c", GRANDCHILDREN, "sh", str(pid_file)]

    def cancel_once_running() -> None:
        read_pids(pid_file, 4)
        cancel.set()

    watcher = threading.Thread(target=cancel_once_running)
    watcher.start()
    result = run("shell", "run", {"command": command}, cancel, kill_grace=0.2)
    watcher.join()
    assert (result.error_type, result.error_message) == ("Cancelled", "Cancelled")
    assert [pid for pid in read_pids(pid_file, 4) if alive(pid)] == []


def test_cancelled_before_start_runs_nothing(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    result = run("shell", "run", {"command": f"touch {tmp_path / 'ran'}"}, cancel)
    assert result.error_type == "Cancelled"
    assert not (tmp_path / "ran").exists()


def test_memory_limit_fails_a_runaway_step_clearly() -> None:
    command = [sys.executable, "-c", "bytearray(2 * 1024 ** 3)"]
    result = run("shell", "run", {"command": command}, memory_limit_bytes=200 * 1024 * 1024)
    assert not result.success
    assert "exceeded its memory limit of 200 MB" in result.error_message
    assert result.exit_code == 1


INJECTIONS = ["$(touch pwned)", "; touch pwned", "`touch pwned`", "' ; touch pwned ; '", '"; touch pwned; "', "a\ntouch pwned"]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_reference_injection_into_a_shell_string_creates_no_file(tmp_path: Path, evil: str) -> None:
    params = resolve_parameters(
        "shell", "run", {"command": "echo {{ upstream.output }}"}, params={}, outputs={"upstream": evil}, step_name="s"
    )
    result = run("shell", "run", params, working_dir=str(tmp_path))
    assert result.success, result.error_message
    assert not (tmp_path / "pwned").exists()
    assert result.data == evil.strip()


@pytest.mark.parametrize("evil", INJECTIONS)
def test_argv_lists_pass_reference_values_literally(tmp_path: Path, evil: str) -> None:
    params = resolve_parameters(
        "shell", "run", {"command": ["printf", "%s", "{{ upstream.output }}"]}, params={}, outputs={"upstream": evil}
    )
    result = run("shell", "run", params, working_dir=str(tmp_path))
    assert result.data == evil.strip()
    assert not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------- python.call


def write_module(folder: Path, name: str, source: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(source))


def test_python_call_args_kwargs_and_return_value(module_dir: Path) -> None:
    write_module(module_dir, "calc_mod_a", "def add(a, b, scale=1):\n    return {'sum': (a + b) * scale}\n")
    result = run("python", "call", {"target": "calc_mod_a:add", "args": [2, 3], "kwargs": {"scale": 10}})
    assert result.success and result.data == {"sum": 50}


def test_python_call_passes_ctx_when_the_function_takes_it(module_dir: Path) -> None:
    write_module(module_dir, "ctx_mod_a", "def who(ctx):\n    return [ctx.task_name, ctx.attempt, ctx.run_id]\n")
    result = run("python", "call", {"target": "ctx_mod_a:who"}, attempt=2, run_id="run-1")
    assert result.data == ["step", 2, "run-1"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("no_colon_here", "must look like 'package.module:function'"),
        ("bad target:x", "must look like"),
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("json:no_such_function", "'json' has no attribute 'no_such_function'"),
        ("json:__doc__", "is not callable"),
    ],
)
def test_python_call_target_errors_are_clear(target: str, expected: str) -> None:
    result = run("python", "call", {"target": target})
    assert (result.success, result.error_type) == (False, "ActionError")
    assert expected in result.error_message


def test_python_call_module_that_fails_to_import(module_dir: Path) -> None:
    write_module(module_dir, "broken_mod_a", "raise RuntimeError('boom at import')\n")
    result = run("python", "call", {"target": "broken_mod_a:f"})
    assert result.error_type == "ActionError"
    assert "importing 'broken_mod_a' failed: RuntimeError: boom at import" in result.error_message


def test_python_call_exception_is_reported_with_its_type_and_traceback_logged(module_dir: Path, tmp_path: Path) -> None:
    write_module(module_dir, "raising_mod_a", "def f():\n    raise ValueError('bad input')\n")
    log = tmp_path / "f.log"
    result = run("python", "call", {"target": "raising_mod_a:f"}, log_path=str(log))
    assert (result.error_type, result.error_message) == ("ValueError", "ValueError: bad input")
    assert "Traceback" in log.read_text() and "bad input" in log.read_text()


def test_python_call_returning_after_its_deadline_is_a_timeout(module_dir: Path) -> None:
    write_module(module_dir, "slow_mod_a", "import time\ndef f():\n    time.sleep(0.3)\n    return 1\n")
    result = run("python", "call", {"target": "slow_mod_a:f"}, timeout=0.05)
    assert result.error_type == "TimeoutError"


def test_python_call_cooperative_function_stops_at_the_deadline(module_dir: Path) -> None:
    write_module(module_dir, "coop_mod_a", "def f(ctx):\n    while True:\n        ctx.sleep(0.01)\n")
    result = run("python", "call", {"target": "coop_mod_a:f"}, timeout=0.1)
    assert (result.error_type, result.error_message) == ("TimeoutError", "timed out after 0.1s")


def test_python_call_stopped_at_its_deadline_says_so_at_the_end_of_its_log(module_dir: Path, tmp_path: Path) -> None:
    write_module(module_dir, "coop_mod_b", "def f(ctx):\n    print('working')\n    while True:\n        ctx.sleep(0.01)\n")
    log = tmp_path / "f.log"
    run("python", "call", {"target": "coop_mod_b:f"}, timeout=0.1, log_path=str(log))
    assert log.read_text().splitlines() == ["working", "[orchtui: timed out after 0.1s: the call was interrupted]"]


# ------------------------------------------------------------------ builtins


def test_builtin_noop_returns_its_output_parameter() -> None:
    assert run("builtin", "noop", {"output": {"k": [1]}}).data == {"k": [1]}
    assert run("builtin", "noop").data is None


def test_builtin_echo_logs_and_returns_the_message(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "echo.log"
    result = run("builtin", "echo", {"message": "hi there"}, log_path=str(log))
    assert result.data == "hi there"
    assert log.read_text() == "hi there\n"


def test_builtin_fail_raises_action_error_with_exit_code() -> None:
    result = run("builtin", "fail", {"message": "nope", "exit_code": 4})
    assert (result.success, result.error_type, result.error_message, result.exit_code) == (False, "ActionError", "nope", 4)
    with pytest.raises(ActionError) as info:
        registry.get("builtin", "fail").fn(ActionContext("t", "n"), {"exit_code": 9})
    assert info.value.exit_code == 9


def test_builtin_sleep_respects_the_deadline() -> None:
    result = run("builtin", "sleep", {"seconds": 30}, timeout=0.1)
    assert (result.error_type, result.error_message) == ("TimeoutError", "timed out after 0.1s")


def test_builtin_sleep_wakes_on_cancel() -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.1, cancel.set)
    timer.start()
    result = run("builtin", "sleep", {"seconds": 30}, cancel)
    timer.join()
    assert result.error_type == "Cancelled"


@pytest.mark.parametrize("seconds", [1e10, 1e300])
def test_a_sleep_longer_than_any_wait_still_wakes_on_cancel(seconds: float) -> None:
    # One wait that long overflows the platform's time: the sleep waits in parts.
    cancel = threading.Event()
    timer = threading.Timer(0.1, cancel.set)
    timer.start()
    result = run("builtin", "sleep", {"seconds": seconds}, cancel)
    timer.join()
    assert result.error_type == "Cancelled"


@pytest.mark.parametrize("seconds", [float("inf"), float("nan"), -1])
def test_builtin_sleep_refuses_a_time_that_is_not_a_finite_number_from_zero(seconds: float) -> None:
    result = run("builtin", "sleep", {"seconds": seconds})
    assert result.error_type == "ActionError" and "'seconds' must be a finite number >= 0" in result.error_message


def test_builtin_sleep_returns_output_when_done() -> None:
    assert run("builtin", "sleep", {"seconds": 0.01, "output": 7}).data == 7


def test_context_check_and_sleep_raise() -> None:
    cancel = threading.Event()
    ctx = ActionContext("t", "n", cancel_event=cancel)
    ctx.check()
    cancel.set()
    with pytest.raises(StepCancelled):
        ctx.sleep(10)
    late = ActionContext("t", "n", deadline=time.monotonic() - 1, timeout=2)
    with pytest.raises(StepTimeout, match="timed out after 2s"):
        late.check()


# ---------------------------------------------------------- registry, plugins


def test_decorator_registers_a_plugin_that_invoke_runs() -> None:
    @action("acttest", "double", required=("value",))
    def double(ctx: ActionContext, params: dict[str, Any]) -> int:
        return params["value"] * 2

    try:
        assert registry.has("acttest", "double")
        assert "acttest.double" in registry.names()
        assert run("acttest", "double", {"value": 21}).data == 42
        assert registry.problem_for("acttest", "double", {}) == "acttest.double needs parameter 'value'"
    finally:
        registry.unregister("acttest", "double")
    assert not registry.has("acttest", "double")


def test_registering_a_taken_name_needs_replace() -> None:
    reg = ActionRegistry()
    reg.register("m", "a", lambda ctx, p: 1)
    with pytest.raises(OrchestrationError, match="already registered"):
        reg.register("m", "a", lambda ctx, p: 2)
    reg.register("m", "a", lambda ctx, p: 3, replace=True)
    assert reg.get("m", "a").fn(ActionContext("t", "n"), {}) == 3
    with pytest.raises(OrchestrationError, match="name"):
        reg.register("bad name", "a", lambda ctx, p: 1)


def test_entry_point_plugins_are_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    dist = site / "orchtui_fake_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: orchtui-fake-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[orchtui.actions]\ngood = orchtui_fake_plugin:setup\nbroken = orchtui_fake_missing_module:setup\n"
    )
    (site / "orchtui_fake_plugin.py").write_text(
        "def setup(registry):\n    registry.register('fake', 'hello', lambda ctx, params: 'hello from plugin')\n"
    )
    monkeypatch.syspath_prepend(str(site))
    reg = ActionRegistry()
    assert reg.has("fake", "hello")  # a miss loads the entry points
    problems = reg.load_entry_points()
    assert problems == []  # loaded once; the broken one was reported the first time
    fresh = ActionRegistry()
    problems = fresh.load_entry_points()
    assert len(problems) == 1 and "broken" in problems[0]
    result = invoke(Invocation("t", "n", "fake", "hello"), action_registry=fresh)
    assert result.data == "hello from plugin"


def test_problem_for_suggests_the_closest_module_and_action() -> None:
    module_problem = registry.problem_for("shel", "run", {"command": "x"})
    assert module_problem is not None and "unknown action module 'shel'; did you mean 'shell'?" in module_problem
    action_problem = registry.problem_for("shell", "rnu", {"command": "x"})
    assert action_problem is not None and "has no action 'rnu'; did you mean 'run'?" in action_problem
    assert registry.problem_for("shell", "run", {}) == "shell.run needs parameter 'command'"
    unknown_param = registry.problem_for("shell", "run", {"command": "x", "comand": "y"})
    assert unknown_param is not None and "did you mean 'command'?" in unknown_param
    assert registry.problem_for("shell", "run", {"command": "{{ a.output }}", "cwd": "/"}) is None
    assert registry.problem_for("builtin", "noop", {"anything": 1}) is None


def test_unknown_action_is_a_failed_result_not_an_exception() -> None:
    result = run("nosuchmodule", "x")
    assert (result.success, result.error_type) == (False, "UnknownActionError")
    with pytest.raises(UnknownActionError):
        registry.get("nosuchmodule", "x")


def test_result_round_trips_through_json() -> None:
    result = run("builtin", "noop", {"output": [1, "a"]})
    assert TaskResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_shell_env_null_unsets_an_inherited_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHTUI_TEST_OUTER", "outer")
    result = run("shell", "run", {"command": 'echo "${ORCHTUI_TEST_OUTER-unset}"', "env": {"ORCHTUI_TEST_OUTER": None}})
    assert result.data == "unset"


def test_noop_fast_path_reports_like_the_full_path(tmp_path: Path) -> None:
    log = str(tmp_path / "n.1.log")
    fast = invoke(Invocation("t1", "n", "builtin", "noop", {"output": {"k": 1}}, attempt=2, log_path=log))
    # A timeout forces the full path (there is a deadline to enforce).
    full = invoke(Invocation("t1", "n", "builtin", "noop", {"output": {"k": 1}}, attempt=2, log_path=log, timeout=30))
    for result in (fast, full):
        assert result.success and result.data == {"k": 1} and result.attempt == 2
        assert result.metadata.get("log_path") == log
        assert result.started_at is not None and result.finished_at is not None


def test_a_cancelled_noop_is_reported_cancelled_not_run() -> None:
    cancel = threading.Event()
    cancel.set()
    result = invoke(Invocation("t1", "n", "builtin", "noop", {"output": "x"}), cancel)
    assert not result.success and result.error_type == "Cancelled"


def test_a_successful_shell_step_records_its_exit_code() -> None:
    ok = invoke(Invocation("t1", "s", "shell", "run", {"command": ["true"]}))
    allowed = invoke(Invocation("t2", "s", "shell", "run", {"command": "exit 3", "ok_exit_codes": [0, 3]}))
    assert (ok.success, ok.exit_code) == (True, 0)
    assert (allowed.success, allowed.exit_code) == (True, 3)
