"""``orchtui mcp`` end to end: the SDK's own stdio client against the real server subprocess."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from process_helpers import alive, kill_if_alive
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from core.config import load_settings
from core.models import TaskStatus, WorkflowStatus
from core.store import Store

REPO = Path(__file__).resolve().parent.parent
SHELL_STEP = {"name": "say", "module": "shell", "action": "run", "parameters": {"command": "echo from-an-agent"}}


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A working directory holding a copy of the bundled workflows."""
    shutil.copytree(REPO / "workflows", tmp_path / "workflows")
    return tmp_path


@asynccontextmanager
async def mcp_session(cwd: Path, env: dict[str, str], *flags: str) -> AsyncIterator[ClientSession]:
    """Start ``python -m orchtui mcp`` in ``cwd`` and yield an initialized client session."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "orchtui", "mcp", "--workflows-dir", "workflows", *flags],
        env=env, cwd=cwd)
    with (cwd / "server-stderr.log").open("w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=120) as session:
                await session.initialize()
                yield session


def structured(result: Any) -> dict[str, Any]:
    assert result.structured_content is not None, result
    return result.structured_content


@pytest.mark.slow
async def test_stdio_server_end_to_end(project_dir: Path, cli_env: dict[str, str]) -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async with mcp_session(project_dir, cli_env) as session:
        tools = (await session.list_tools()).tools
        assert len(tools) == 14
        for tool in tools:
            assert tool.input_schema["type"] == "object" and tool.input_schema["additionalProperties"] is False
        assert {t.name: t.input_schema["required"] for t in tools}["execute_workflow"] == ["workflow_name"]

        run = await session.call_tool("execute_workflow", {"workflow_name": "demo", "parameters": {"nap": 0.1}},
                                      progress_callback=on_progress)
        outcome = structured(run)
        assert run.is_error is False and outcome["status"] == "completed" and outcome["executed_steps"] == 8
        assert progress and progress[-1][:2] == (8.0, 8.0)

        status = structured(await session.call_tool("get_run_status", {"run_id": outcome["run_id"]}))
        assert status["status"] == "completed" and len(status["steps"]) == 8
        assert all(step["status"] == "completed" for step in status["steps"])
        logs = structured(await session.call_tool("get_step_logs", {"run_id": outcome["run_id"], "step": "start"}))
        assert logs["log"].strip() == "hello from orchtui"

        bad = await session.call_tool("execute_workflow", {"workflow_name": "demo", "wait": "soon"})
        assert bad.is_error and structured(bad)["error_code"] == "INVALID_ARGUMENT"
        assert "'wait' must be boolean" in bad.content[0].text
        missing = await session.call_tool("execute_workflow", {"workflow_name": "no_such_flow"})
        assert missing.is_error and structured(missing)["error_code"] == "WORKFLOW_NOT_FOUND"

        refused = await session.call_tool("create_workflow", {"name": "agent_shell", "steps": [SHELL_STEP]})
        assert refused.is_error and structured(refused)["error_code"] == "ACTION_NOT_ALLOWED"
        assert "--allow-shell" in structured(refused)["error"]
        task = await session.call_tool("execute_task", SHELL_STEP)
        assert task.is_error and structured(task)["error_code"] == "ACTION_NOT_ALLOWED"

    async with mcp_session(project_dir, cli_env, "--allow-shell") as session:
        created = await session.call_tool("create_workflow", {"name": "agent_shell", "steps": [SHELL_STEP]})
        assert created.is_error is False, created
        shell_run = structured(await session.call_tool("execute_workflow", {"workflow_name": "agent_shell"}))
        assert shell_run["success"] is True and shell_run["results"]["say"] == "from-an-agent"

    # What the dashboard and `orchtui runs` read: the shared store.
    settings = load_settings(cwd=project_dir, env=cli_env)
    with Store.open(settings, recover=False) as store:
        demo = store.get_run(outcome["run_id"])
        assert demo is not None and demo.status == WorkflowStatus.COMPLETED
        assert demo.params["nap"] == 0.1
        assert all(step.status == TaskStatus.COMPLETED for step in demo.steps.values())
        agent = store.get_run(shell_run["run_id"])
        assert agent is not None and agent.workflow == "agent_shell" and agent.steps["say"].output == "from-an-agent"


@pytest.mark.parametrize("missing", ["mcp", "anyio"])  # the SDK itself, or a package it brings
def test_without_the_sdk_the_command_says_what_to_install(missing: str, project_dir: Path, cli_env: dict[str, str]) -> None:
    # None in sys.modules is how Python reports a package that cannot be imported.
    code = f"import sys; sys.modules[{missing!r}] = None; from orchtui.cli import main; main(['mcp'])"
    done = subprocess.run([sys.executable, "-c", code], cwd=project_dir, env=cli_env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: the MCP server needs the MCP SDK: pip install 'orchtui[mcp]'"
    assert done.stdout == ""


def test_mcp_help_lists_the_flags(cli_env: dict[str, str], orchtui_cmd: list[str]) -> None:
    done = subprocess.run([*orchtui_cmd, "mcp", "--help"], env=cli_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    for flag in ("--allow-shell", "--allow-python", "--workflows-dir"):
        assert flag in done.stdout


def test_a_missing_workflows_dir_is_a_usage_error(
    tmp_path: Path, cli_env: dict[str, str], orchtui_cmd: list[str],
) -> None:
    done = subprocess.run([*orchtui_cmd, "mcp", "--workflows-dir", "nowhere"], cwd=tmp_path, env=cli_env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "nowhere" in done.stderr


class RawClient:
    """``orchtui mcp`` spoken to in JSON-RPC lines over pipes: for what the SDK's client
    hides, such as a signal to the server or a client that leaves in the middle of a call."""

    def __init__(self, cwd: Path, env: dict[str, str], *flags: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "orchtui", "mcp", *flags], cwd=cwd, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=(cwd / "server-stderr.log").open("wb"))
        self._buffer = b""
        self._next_id = 0
        self.send({"method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
        self.answer(self._next_id)
        self.send({"method": "notifications/initialized"}, notification=True)

    def send(self, message: dict[str, Any], *, notification: bool = False) -> int:
        if not notification:
            self._next_id += 1
            message = {"id": self._next_id, **message}
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
        self.process.stdin.flush()
        return self._next_id

    def call(self, tool: str, arguments: dict[str, Any]) -> int:
        """Send a tools/call; return its id (read its answer with :meth:`answer`)."""
        return self.send({"method": "tools/call", "params": {"name": tool, "arguments": arguments}})

    def answer(self, wanted: int, timeout: float = 60.0) -> tuple[dict[str, Any], list[int]]:
        """Read until the answer to request ``wanted``; return it and the ids answered before it."""
        assert self.process.stdout is not None
        end, before = time.monotonic() + timeout, []
        while True:
            while b"\n" not in self._buffer:
                ready, _, _ = select.select([self.process.stdout], [], [], max(0.0, end - time.monotonic()))
                assert ready, f"no answer to request {wanted} in {timeout} s"
                chunk = os.read(self.process.stdout.fileno(), 1 << 16)
                assert chunk, "the server closed its output"
                self._buffer += chunk
            line, self._buffer = self._buffer.split(b"\n", 1)
            message = json.loads(line)
            if message.get("id") == wanted:
                return message, before
            if "id" in message:
                before.append(message["id"])

    def close_input(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:  # a test that failed: leave no server behind
            self.process.kill()
            self.process.wait()


def started_step(pid_file: Path) -> int:
    """Wait for a step to write its pid to ``pid_file``; return it."""
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.05)
    return int(pid_file.read_text())


def stored_status(cwd: Path, env: dict[str, str], run_id: str) -> WorkflowStatus:
    with Store.open(load_settings(cwd=cwd, env=env)) as store:
        run = store.get_run(run_id)
    assert run is not None
    return run.status


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_cancels_the_servers_runs_and_exits_as_the_signal_says(
        project_dir: Path, cli_env: dict[str, str], stop: signal.Signals) -> None:
    pid_file = project_dir / "step.pid"
    with RawClient(project_dir, cli_env, "--allow-shell") as client:
        started, _ = client.answer(client.call("execute_task", {
            "name": "t", "module": "shell", "action": "run", "wait": False,
            "parameters": {"command": f"echo $$ > {pid_file}; exec sleep 60"}}))
        step = started_step(pid_file)
        try:
            client.process.send_signal(stop)
            assert client.process.wait(60) == 128 + stop
            assert not alive(step)
        finally:
            kill_if_alive(step)
    assert stored_status(project_dir, cli_env, started["result"]["structuredContent"]["run_id"]) is \
        WorkflowStatus.CANCELLED


def test_a_client_that_leaves_in_the_middle_of_a_call_has_its_runs_cancelled(
        project_dir: Path, cli_env: dict[str, str]) -> None:
    pid_file = project_dir / "step.pid"
    with RawClient(project_dir, cli_env, "--allow-shell") as client:
        client.call("execute_task", {"name": "t", "module": "shell", "action": "run", "wait": True,
                                     "parameters": {"command": f"echo $$ > {pid_file}; exec sleep 60"}})
        step = started_step(pid_file)
        try:
            client.close_input()  # the client went away: the call it made will never be answered
            assert client.process.wait(60) == 0
            assert not alive(step)
        finally:
            kill_if_alive(step)
    with Store.open(load_settings(cwd=project_dir, env=cli_env)) as store:
        assert [run.status for run in store.list_runs()] == [WorkflowStatus.CANCELLED]


def test_a_status_read_is_answered_while_many_calls_wait_for_their_runs(
        project_dir: Path, cli_env: dict[str, str]) -> None:
    # More waiting calls than a thread pool of 40 (anyio's default) once let nothing else start.
    with RawClient(project_dir, cli_env) as client:
        waiting = [client.call("execute_task", {"name": f"nap{i}", "module": "builtin", "action": "sleep",
                                                "parameters": {"seconds": 60}, "wait": True}) for i in range(45)]
        health, answered_before = client.answer(client.call("get_health_status", {}))
        assert health["result"]["structuredContent"]["success"] is True
        assert not set(answered_before) & set(waiting)  # no run ended: the answer did not wait for one
        client.close_input()
        assert client.process.wait(180) == 0  # 45 runs to cancel and record: slow on a loaded machine


def test_a_second_stop_signal_kills_at_once_a_step_that_ignores_sigterm(
        project_dir: Path, cli_env: dict[str, str]) -> None:
    pid_file = project_dir / "step.pid"
    with RawClient(project_dir, cli_env, "--allow-shell") as client:
        client.answer(client.call("execute_task", {
            "name": "t", "module": "shell", "action": "run", "wait": False, "timeout": 3600,
            "parameters": {"command": f"trap '' TERM; echo $$ > {pid_file}; while :; do sleep 0.1; done"}}))
        step = started_step(pid_file)
        try:
            client.process.send_signal(signal.SIGINT)  # cancels the run: SIGTERM, ignored, then 5 s of grace
            time.sleep(0.5)
            client.process.send_signal(signal.SIGINT)  # the user will not wait: SIGKILL now
            assert client.process.wait(60) == 130
            assert not alive(step)
            assert "Traceback" not in (project_dir / "server-stderr.log").read_text()
        finally:
            kill_if_alive(step)


def test_a_progress_report_after_the_event_loop_ended_fails_at_once_instead_of_hanging() -> None:
    # A call the server abandoned reports from its worker thread after the loop is gone;
    # waiting for the loop then kept the process from ever exiting.
    import anyio
    import anyio.to_thread

    from orchtui.mcp_server import _progress_reporter

    class Context:
        async def report_progress(self, done: float, total: float | None, message: str) -> None:
            return None

    loop_ended = threading.Event()
    outcome: list[BaseException] = []

    async def serve_then_abandon() -> None:
        report = _progress_reporter(Context())  # type: ignore[arg-type]

        def late_report() -> None:
            loop_ended.wait(30)
            try:
                report(1.0, 2.0, "half")
            except BaseException as exc:
                outcome.append(exc)

        with anyio.move_on_after(0.2):
            await anyio.to_thread.run_sync(late_report, abandon_on_cancel=True)

    anyio.run(serve_then_abandon)
    loop_ended.set()
    deadline = time.monotonic() + 30
    while not outcome and time.monotonic() < deadline:
        time.sleep(0.05)
    assert outcome and isinstance(outcome[0], RuntimeError)
