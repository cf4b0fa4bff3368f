"""``orchtui mcp`` end to end: the SDK's own stdio client against the real server subprocess."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
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
