"""OrchestrationMCPTools: every tool directly, bad input, safety rules, and the SDK's in-memory client."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings, load_settings
from core.mcp_schemas import TOOL_SPECS, schema_problem
from core.mcp_tools import OrchestrationMCPTools
from core.actions import registry
from core.models import Workflow, WorkflowStatus, WorkflowStep
from core.store import Store

TOOL_NAMES = [
    "execute_workflow", "create_workflow", "list_workflows", "create_project", "list_projects", "execute_task",
    "get_system_status", "get_health_status", "allocate_resources", "create_complex_workflow",
    "get_run_status", "get_step_logs", "cancel_run", "list_runs",
]

QUICK = """
name: quick
params: {who: world}
steps:
  - {name: hello, module: builtin, action: echo, parameters: {message: "hello {{ params.who }}"}}
  - {name: bye, module: builtin, action: echo, dependencies: [hello], parameters: {message: "{{ hello.output }}!"}}
"""
SLOW = """
name: slow
steps:
  - {name: first, module: builtin, action: echo, parameters: {message: started}}
  - {name: nap, module: builtin, action: sleep, dependencies: [first], parameters: {seconds: 30}}
"""
BROKEN = """
name: broken
steps:
  - {name: ok, module: builtin, action: echo, parameters: {message: fine}}
  - {name: boom, module: builtin, action: fail, dependencies: [ok], parameters: {message: it broke}}
  - {name: after, module: builtin, action: noop, dependencies: [boom]}
"""
SHELL_FILE = """
name: from_file_shell
steps:
  - {name: say, module: shell, action: run, parameters: {command: "echo operator-approved"}}
"""
TOUCH_FILE = """
name: touch
params:
  target: {type: string, default: made}
steps:
  - {name: make, module: shell, action: run, parameters: {command: "touch {{ params.target }} && echo done"}}
"""


@pytest.fixture
def settings(tmp_path: Path, isolated_state: Path) -> Settings:
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    for name, text in {"quick": QUICK, "slow": SLOW, "broken": BROKEN, "from_file_shell": SHELL_FILE,
                       "touch": TOUCH_FILE}.items():
        (workflows / f"{name}.yaml").write_text(text)
    return load_settings(cwd=tmp_path)


@pytest.fixture
def tools(settings: Settings, tmp_path: Path) -> Iterator[OrchestrationMCPTools]:
    with OrchestrationMCPTools(settings=settings, workdir=tmp_path) as made:
        yield made


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert result["success"] is True, result
    return result


def err(result: dict[str, Any], code: str) -> dict[str, Any]:
    assert result["success"] is False, result
    assert result["error_code"] == code, result
    assert result["error"] and isinstance(result["error"], str)
    assert set(result) >= {"error_type", "details", "suggestions"}
    return result


def stored_run(settings: Settings, run_id: str) -> Any:
    """The run as another process (the dashboard, `orchtui runs`) reads it."""
    with Store.open(settings, recover=False) as store:
        return store.get_run(run_id)


# ----------------------------------------------------------------- definitions


def test_definitions_name_all_fourteen_tools_with_strict_schemas(tools: OrchestrationMCPTools) -> None:
    definitions = tools.get_tool_definitions()
    assert [d["name"] for d in definitions] == TOOL_NAMES
    for definition in definitions:
        schema = definition["inputSchema"]
        assert definition["description"]
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert set(schema["required"]) <= set(schema["properties"])
        json.dumps(definition)  # plain JSON, as MCP clients get it
    by_name = {d["name"]: d["inputSchema"] for d in definitions}
    assert by_name["execute_workflow"]["required"] == ["workflow_name"]
    assert by_name["get_step_logs"]["required"] == ["run_id", "step"]
    assert by_name["list_runs"]["properties"]["status"]["enum"] == [s.value for s in WorkflowStatus]


@pytest.mark.parametrize(("tool", "arguments", "fragment"), [
    ("execute_workflow", {}, "argument 'workflow_name' is required"),
    ("execute_workflow", {"workflow_name": 7}, "'workflow_name' must be string, got integer"),
    ("execute_workflow", {"workflow_name": "quick", "wiat": False}, "'wiat' is not accepted (did you mean 'wait'?)"),
    ("execute_workflow", {"workflow_name": "quick", "wait": "yes"}, "'wait' must be boolean"),
    ("execute_workflow", {"workflow_name": "quick", "parameters": []}, "'parameters' must be object, got array"),
    ("execute_workflow", {"workflow_name": ""}, "'workflow_name' must not be empty"),
    ("get_step_logs", {"run_id": "r", "step": "s", "tail_lines": 0}, "'tail_lines' must be at least 1"),
    ("get_step_logs", {"run_id": "r", "step": "s", "tail_lines": True}, "'tail_lines' must be integer, got boolean"),
    ("list_runs", {"status": "done"}, "'status' must be one of"),
    ("execute_task", {"name": "t", "module": "builtin", "action": "echo", "priority": "asap"}, "'priority' must be one of"),
    ("create_workflow", {"name": "w", "steps": []}, "'steps' needs at least 1 item"),
    ("create_workflow", {"name": "w", "steps": [{"action": "noop"}]}, "argument 'steps[0].name' is required"),
    ("allocate_resources", {"user_id": "u", "timeout": 600}, "'timeout' must be at most 60"),
])
def test_bad_arguments_give_an_error_naming_the_argument(
    tools: OrchestrationMCPTools, tool: str, arguments: dict[str, Any], fragment: str,
) -> None:
    result = err(tools.execute_tool(tool, arguments), "INVALID_ARGUMENT")
    assert fragment in result["error"]
    assert result["error"].startswith(f"{tool}: ")


@pytest.mark.parametrize(("step", "code", "fragment"), [
    ({"name": "a", "timeout": 1e11}, "WORKFLOW_INVALID", "'timeout' must be at most"),
    ({"name": "a", "retry_delay": float("nan")}, "INVALID_ARGUMENT", "'steps[0].retry_delay' must be a finite number"),
])
def test_a_created_workflow_with_a_timer_no_scheduler_can_wait_for_is_refused(
        tools: OrchestrationMCPTools, step: dict[str, Any], code: str, fragment: str) -> None:
    # Such a step once killed the server's dispatcher, and every later tool call hung.
    result = err(tools.execute_tool("create_workflow", {"name": "w", "steps": [step]}), code)
    assert fragment in result["error"]
    assert ok(tools.execute_tool("execute_task", {"name": "t", "module": "builtin", "action": "echo",
                                                  "parameters": {"message": "still here"}}))


def test_arguments_that_are_not_an_object_are_refused(tools: OrchestrationMCPTools) -> None:
    result = err(tools.execute_tool("list_runs", ["limit", 3]), "INVALID_ARGUMENT")  # type: ignore[arg-type]
    assert "the arguments must be object" in result["error"]


def test_an_unknown_tool_suggests_the_closest(tools: OrchestrationMCPTools) -> None:
    result = err(tools.execute_tool("list_workflow", {}), "UNKNOWN_TOOL")
    assert "did you mean 'list_workflows'?" in result["error"]


def test_the_schema_checker_accepts_what_the_schema_allows() -> None:
    schema = next(s.input_schema for s in TOOL_SPECS if s.name == "execute_task")
    good = {"name": "t", "module": "builtin", "action": "sleep", "parameters": {"seconds": 1}, "timeout": 2,
            "max_retries": 1.0, "priority": "high", "wait": False}
    assert schema_problem(schema, good) is None
    assert "must be integer" in (schema_problem(schema, good | {"max_retries": 1.5}) or "")


# ------------------------------------------------------------------------ runs


def test_execute_workflow_waits_reports_progress_and_records_the_run(
    tools: OrchestrationMCPTools, settings: Settings,
) -> None:
    seen: list[tuple[float, float | None, str]] = []
    result = ok(tools.execute_tool("execute_workflow", {"workflow_name": "quick", "parameters": {"who": "mcp"}},
                                   progress=lambda done, total, text: seen.append((done, total, text))))
    assert result["status"] == "completed" and result["executed_steps"] == 2
    assert result["results"] == {"hello": "hello mcp", "bye": "hello mcp!"}
    assert seen and seen[-1][:2] == (2.0, 2.0)
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)  # progress never goes back
    run = stored_run(settings, result["run_id"])
    assert run.status == WorkflowStatus.COMPLETED and run.params == {"who": "mcp"}
    assert run.steps["bye"].output == "hello mcp!"


def test_a_workflow_file_may_use_shell_steps_without_the_flag(tools: OrchestrationMCPTools) -> None:
    result = ok(tools.execute_tool("execute_workflow", {"workflow_name": "from_file_shell"}))
    assert result["results"]["say"] == "operator-approved"


@pytest.mark.parametrize("target", ["{outside}/escaped", "~/escaped"])
def test_a_parameter_naming_a_path_outside_the_working_directory_is_refused(
    tools: OrchestrationMCPTools, tmp_path: Path, target: str,
) -> None:
    outside = tmp_path.parent
    refused = err(tools.execute_tool("execute_workflow", {
        "workflow_name": "touch", "parameters": {"target": target.format(outside=outside)}}), "PATH_OUTSIDE_WORKDIR")
    assert refused["details"]["parameter"] == "params.target" and "--allow-path" in refused["error"]
    assert refused["details"]["value"] == target.format(outside=outside)
    assert not (outside / "escaped").exists() and not (Path.home() / "escaped").exists()
    assert ok(tools.execute_tool("list_runs", {}))["runs"] == []  # nothing started


@pytest.mark.parametrize("target", ["made-inside", "sub/../made-inside", "./made-inside", "{workdir}/made-inside"])
def test_a_parameter_naming_a_path_inside_the_working_directory_runs(
    tools: OrchestrationMCPTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str,
) -> None:
    monkeypatch.chdir(tmp_path)  # where the server's runs start, as under `orchtui mcp`
    (tmp_path / "sub").mkdir()
    ok(tools.execute_tool("execute_workflow", {"workflow_name": "touch",
                                               "parameters": {"target": target.format(workdir=tmp_path)}}))
    assert (tmp_path / "made-inside").exists()


def test_a_parameter_may_name_a_directory_the_operator_allowed(settings: Settings, tmp_path: Path) -> None:
    shared = tmp_path.parent / f"{tmp_path.name}-shared"
    shared.mkdir()
    with OrchestrationMCPTools(settings=settings, workdir=tmp_path, allowed_paths=[shared]) as tools:
        ok(tools.execute_tool("execute_workflow", {"workflow_name": "touch",
                                                   "parameters": {"target": str(shared / "made")}}))
    assert (shared / "made").exists()


@pytest.mark.parametrize("inside", ["state", "workflows"])
def test_a_parameter_may_not_name_the_state_or_workflows_directory(
    tools: OrchestrationMCPTools, tmp_path: Path, inside: str,
) -> None:
    target = tmp_path / inside / "planted.yaml"
    refused = err(tools.execute_tool("execute_workflow", {"workflow_name": "touch",
                                                          "parameters": {"target": str(target)}}), "PATH_PROTECTED")
    assert str((tmp_path / inside).resolve()) in refused["error"]
    assert not target.exists()


@pytest.mark.parametrize("target", [".", "{workdir}", ""])
def test_a_parameter_may_not_name_the_working_directory_itself_or_nothing(
    tools: OrchestrationMCPTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    refused = err(tools.execute_tool("execute_workflow", {
        "workflow_name": "touch", "parameters": {"target": target.format(workdir=tmp_path)}}), "PATH_OUTSIDE_WORKDIR")
    assert refused["details"]["parameter"] == "params.target"


def test_a_project_may_not_be_created_in_the_workflows_or_state_directory(tools: OrchestrationMCPTools) -> None:
    err(tools.execute_tool("create_project", {"name": "evil", "path": "workflows/evil"}), "PATH_PROTECTED")
    err(tools.execute_tool("create_project", {"name": "evil2", "path": "state/evil2"}), "PATH_PROTECTED")


def test_parameters_of_builtin_only_workflows_are_not_read_as_paths(tools: OrchestrationMCPTools) -> None:
    result = ok(tools.execute_tool("execute_workflow", {"workflow_name": "quick", "parameters": {"who": "/etc"}}))
    assert result["results"]["hello"] == "hello /etc"


@pytest.fixture
def plugin_tools(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 ) -> Iterator[OrchestrationMCPTools]:
    """A server that allows plugins, whose runs start in its working directory."""
    monkeypatch.chdir(tmp_path)
    with OrchestrationMCPTools(settings=settings, workdir=tmp_path, allow_plugins=True) as made:
        yield made


@pytest.fixture
def written() -> Iterator[list[str]]:
    """Register the plugin action ``mcptest.write(path)``; yield the paths it wrote to."""
    paths: list[str] = []

    def write(ctx: Any, params: dict[str, Any]) -> None:
        Path(params["path"]).write_text("planted")
        paths.append(params["path"])

    registry.register("mcptest", "write", write, required=("path",))
    yield paths
    registry.unregister("mcptest", "write")


def write_step(path: str, **extra: Any) -> dict[str, Any]:
    return {"name": "w", "module": "mcptest", "action": "write", "parameters": {"path": path}, **extra}


def test_plugin_steps_from_mcp_need_the_operators_flag(tools: OrchestrationMCPTools, written: list[str]) -> None:
    refused = err(tools.execute_tool("execute_task", write_step("inside.txt")), "ACTION_NOT_ALLOWED")
    assert "--allow-plugins" in refused["error"]
    err(tools.execute_tool("create_workflow", {"name": "w", "steps": [write_step("inside.txt")]}), "ACTION_NOT_ALLOWED")
    assert written == []


def test_plugin_step_parameters_an_agent_writes_are_confined(
    plugin_tools: OrchestrationMCPTools, written: list[str],
) -> None:
    refused = err(plugin_tools.execute_tool("execute_task", write_step("/etc/passwd")), "PATH_OUTSIDE_WORKDIR")
    assert refused["details"]["parameter"] == "steps.w.parameters.path"
    defaults = {"name": "d", "steps": [write_step("{{ params.p }}")], "params": {"p": {"default": "/etc/passwd"}}}
    err(plugin_tools.execute_tool("create_workflow", defaults), "PATH_OUTSIDE_WORKDIR")
    ok(plugin_tools.execute_tool("execute_task", write_step("inside.txt")))
    assert written == ["inside.txt"]


def test_a_path_passed_to_a_plugin_step_through_a_reference_is_refused_when_it_runs(
    plugin_tools: OrchestrationMCPTools, written: list[str], tmp_path: Path,
) -> None:
    outside = str(tmp_path.parent / "laundered.txt")
    failed = err(plugin_tools.execute_tool("create_complex_workflow", {"steps": [
        {"name": "e", "module": "builtin", "action": "echo", "parameters": {"message": outside}},
        write_step("{{ e.output }}", dependencies=["e"])]}), "RUN_FAILED")
    assert "may not run" in str(failed) and outside in str(failed)
    assert written == []


def test_a_plugin_step_may_not_write_into_a_project_created_after_it_was_defined(
    plugin_tools: OrchestrationMCPTools, written: list[str], tmp_path: Path,
) -> None:
    ok(plugin_tools.execute_tool("create_workflow", {"name": "plant", "steps": [write_step("p/workflows/evil.yaml")]}))
    ok(plugin_tools.execute_tool("create_project", {"name": "p", "path": "p"}))
    failed = err(plugin_tools.execute_tool("execute_workflow", {"workflow_name": "plant"}), "RUN_FAILED")
    assert "may not run" in str(failed)
    assert written == [] and not (tmp_path / "p" / "workflows" / "evil.yaml").exists()


def test_a_workflows_directory_that_is_the_working_directory_protects_only_workflow_files(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "touch.yaml").write_text(TOUCH_FILE)
    flat = dataclasses.replace(settings, workflows_dir=tmp_path)
    with OrchestrationMCPTools(settings=flat, workdir=tmp_path) as tools:
        ok(tools.execute_tool("execute_workflow", {"workflow_name": "touch", "parameters": {"target": "made"}}))
        err(tools.execute_tool("execute_workflow", {"workflow_name": "touch", "parameters": {"target": "evil.yaml"}}),
            "PATH_PROTECTED")
    assert (tmp_path / "made").exists() and not (tmp_path / "evil.yaml").exists()


def test_a_parameter_that_only_builtin_steps_use_is_not_read_as_a_path(
    tools: OrchestrationMCPTools, settings: Settings,
) -> None:
    (settings.workflows_dir / "mixed.yaml").write_text(
        "name: mixed\nparams: {note: {type: string, default: hi}}\nsteps:\n"
        "  - {name: say, module: builtin, action: echo, parameters: {message: '{{ params.note }}'}}\n"
        "  - {name: act, module: shell, action: run, parameters: {command: 'echo ok'}}\n")
    result = ok(tools.execute_tool("execute_workflow", {"workflow_name": "mixed", "parameters": {"note": "/etc"}}))
    assert result["results"]["say"] == "/etc"


def test_run_without_waiting_then_poll_status_and_logs(tools: OrchestrationMCPTools) -> None:
    started = ok(tools.execute_tool("execute_workflow", {"workflow_name": "quick", "wait": False}))
    assert started["status"] == "running" and started["steps_total"] == 2
    deadline = time.monotonic() + 30
    while True:
        status = ok(tools.execute_tool("get_run_status", {"run_id": started["run_id"]}))
        if status["finished"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status["status"] == "completed" and status["run_succeeded"] is True
    assert status["managed_by_this_server"] is True
    assert [s["name"] for s in status["steps"]] == ["hello", "bye"]
    assert status["steps"][0]["output"] == "hello world" and status["progress"] == {"total": 2, "completed": 2}
    logs = ok(tools.execute_tool("get_step_logs", {"run_id": started["run_id"][:9], "step": "hello"}))
    assert logs["log"].strip() == "hello world" and logs["attempt"] == 1 and logs["truncated"] is False


def test_wait_seconds_returns_a_running_run_that_cancel_run_stops(
    tools: OrchestrationMCPTools, settings: Settings,
) -> None:
    started = ok(tools.execute_tool("execute_workflow", {"workflow_name": "slow", "wait_seconds": 0}))
    assert started["status"] == "running" and "still running" in started["message"]
    cancelled = ok(tools.execute_tool("cancel_run", {"run_id": started["run_id"]}))
    assert cancelled["cancelled"] is True and cancelled["status"] == "cancelled"
    again = ok(tools.execute_tool("cancel_run", {"run_id": started["run_id"]}))
    assert again["cancelled"] is False
    tools.store.flush()
    assert stored_run(settings, started["run_id"]).status == WorkflowStatus.CANCELLED


def test_a_call_told_to_stop_waiting_returns_the_running_run(tools: OrchestrationMCPTools) -> None:
    stop = threading.Event()
    outcome: list[dict[str, Any]] = []
    caller = threading.Thread(target=lambda: outcome.append(tools.execute_tool(
        "execute_workflow", {"workflow_name": "slow"}, stop=stop)))
    caller.start()
    while not tools.execute_tool("list_runs", {})["runs"]:
        time.sleep(0.02)
    stop.set()  # the client cancelled its request
    caller.join(60)
    assert not caller.is_alive()
    result = ok(outcome[0])
    assert result["status"] == "running" and result["message"].startswith("stopped waiting while it runs")
    assert ok(tools.execute_tool("cancel_run", {"run_id": result["run_id"]}))["cancelled"] is True


def test_closing_the_tools_ends_every_wait_and_cancels_the_runs(settings: Settings, tmp_path: Path) -> None:
    tools = OrchestrationMCPTools(settings=settings, workdir=tmp_path)
    outcome: list[dict[str, Any]] = []
    caller = threading.Thread(target=lambda: outcome.append(tools.execute_tool("execute_workflow",
                                                                               {"workflow_name": "slow"})))
    caller.start()
    while not (runs := tools.execute_tool("list_runs", {})["runs"]) or not tools.execute_tool(
            "get_run_status", {"run_id": runs[0]["run_id"]}).get("managed_by_this_server"):
        time.sleep(0.02)  # until the run has started, not only been recorded
    run_id = runs[0]["run_id"]
    tools.close()  # what the server does when it stops
    caller.join(60)
    assert not caller.is_alive() and outcome[0].get("run_id") == run_id, outcome
    assert stored_run(settings, run_id).status == WorkflowStatus.CANCELLED


@pytest.mark.parametrize(("arguments", "where"), [
    ({"workflow_name": "quick", "wait_seconds": float("nan")}, "argument 'wait_seconds'"),
    ({"workflow_name": "quick", "parameters": {"who": [1, float("inf")]}}, "argument 'parameters.who[1]'"),
])
def test_nan_and_infinity_anywhere_in_the_arguments_are_refused(
        tools: OrchestrationMCPTools, arguments: dict[str, Any], where: str) -> None:
    result = err(tools.execute_tool("execute_workflow", arguments), "INVALID_ARGUMENT")
    assert f"{where} must be a finite number" in result["error"]
    assert tools.execute_tool("list_runs", {})["runs"] == []


def test_a_step_that_printed_nothing_has_no_log_and_says_so(tools: OrchestrationMCPTools) -> None:
    run_id = ok(tools.execute_tool("execute_task", {"name": "quiet", "module": "builtin", "action": "noop"}))["run_id"]
    status = ok(tools.execute_tool("get_run_status", {"run_id": run_id}))
    assert status["steps"][0]["has_log"] is False
    none = err(tools.execute_tool("get_step_logs", {"run_id": run_id, "step": "quiet"}), "LOG_NOT_FOUND")
    assert none["error"] == f"step 'quiet' of run {run_id} wrote no output (it completed)"


def test_a_log_read_is_clipped_to_its_last_characters(tools: OrchestrationMCPTools) -> None:
    from core.mcp_runs import MAX_LOG_CHARS

    message = "x" * (MAX_LOG_CHARS + 5000) + "END"
    run_id = ok(tools.execute_tool("execute_task", {"name": "loud", "module": "builtin", "action": "echo",
                                                    "parameters": {"message": message}}))["run_id"]
    logs = ok(tools.execute_tool("get_step_logs", {"run_id": run_id, "step": "loud"}))
    assert logs["clipped"] is True and logs["log"].rstrip().endswith("END")
    assert logs["log"].startswith(f"[orchtui: the last {MAX_LOG_CHARS} characters]\n")
    assert len(logs["log"]) < MAX_LOG_CHARS + 100


def test_a_failed_run_is_an_error_result_with_its_outcome(tools: OrchestrationMCPTools) -> None:
    result = err(tools.execute_tool("execute_workflow", {"workflow_name": "broken"}), "RUN_FAILED")
    assert result["status"] == "failed" and result["failed_steps"] == ["boom"]
    assert result["skipped_steps"] == ["after"] and "it broke" in result["error"]
    assert any("get_step_logs" in s for s in result["suggestions"])
    status = ok(tools.execute_tool("get_run_status", {"run_id": result["run_id"]}))
    assert {s["name"]: s["status"] for s in status["steps"]} == {"ok": "completed", "boom": "failed", "after": "skipped"}
    never_ran = err(tools.execute_tool("get_step_logs", {"run_id": result["run_id"], "step": "after"}), "LOG_NOT_FOUND")
    assert "skipped" in never_ran["error"]


def test_logs_of_a_step_a_resume_reused_name_the_run_whose_log_it_is(tools: OrchestrationMCPTools) -> None:
    failed = err(tools.execute_tool("execute_workflow", {"workflow_name": "broken"}), "RUN_FAILED")["run_id"]
    workflow = Workflow(name="broken", steps=[WorkflowStep(name=s) for s in ("ok", "boom", "after")])
    tools.store.create_run("run-resumed", workflow, {}, parent_run_id=failed, preset_outputs={"ok": "fine"})
    tools.store.finish_run("run-resumed", "failed", "step 'boom' failed")
    tools.store.flush()
    reused = err(tools.execute_tool("get_step_logs", {"run_id": "run-resumed", "step": "ok"}), "LOG_NOT_FOUND")
    assert reused["error"] == (f"step 'ok' of run run-resumed did not run: it reused the output of run {failed}; "
                               f"get_step_logs(run_id='{failed}', step='ok') reads its log")
    assert reused["details"]["reused_from"] == failed
    assert "fine" in ok(tools.execute_tool("get_step_logs", {"run_id": failed, "step": "ok"}))["log"]


def test_unknown_workflow_and_bad_parameters_are_error_results(tools: OrchestrationMCPTools) -> None:
    missing = err(tools.execute_tool("execute_workflow", {"workflow_name": "quik"}), "WORKFLOW_NOT_FOUND")
    assert "did you mean 'quick'?" in missing["error"]
    bad = err(tools.execute_tool("execute_workflow", {"workflow_name": "quick", "parameters": {"whom": 1}}),
              "WORKFLOW_INVALID")
    assert "whom" in bad["error"]


def test_a_workflow_file_added_later_is_known(tools: OrchestrationMCPTools, settings: Settings) -> None:
    (settings.workflows_dir / "late.yaml").write_text(QUICK.replace("name: quick", "name: late"))
    ok(tools.execute_tool("execute_workflow", {"workflow_name": "late"}))


def test_a_name_two_files_define_is_refused_naming_both(settings: Settings, tmp_path: Path) -> None:
    (settings.workflows_dir / "quick-copy.yaml").write_text(QUICK)
    with OrchestrationMCPTools(settings=settings, workdir=tmp_path) as tools:
        refused = err(tools.execute_tool("execute_workflow", {"workflow_name": "quick"}), "WORKFLOW_AMBIGUOUS")
    assert "quick.yaml" in refused["error"] and "quick-copy.yaml" in refused["error"]


def test_a_name_an_invalid_file_declares_cannot_be_created_over_mcp(settings: Settings, tmp_path: Path) -> None:
    (settings.workflows_dir / "report.yaml").write_text("name: report\nsteps:\n  - {name: a, module: nosuch, action: x}\n")
    with OrchestrationMCPTools(settings=settings, workdir=tmp_path) as tools:
        err(tools.execute_tool("create_workflow", {"name": "report", "steps": [{"name": "a"}]}), "WORKFLOW_EXISTS")


def test_run_reads_of_unknown_runs_and_steps(tools: OrchestrationMCPTools) -> None:
    err(tools.execute_tool("get_run_status", {"run_id": "run-nope"}), "RUN_NOT_FOUND")
    err(tools.execute_tool("cancel_run", {"run_id": "run-nope"}), "RUN_NOT_FOUND")
    run_id = ok(tools.execute_tool("execute_workflow", {"workflow_name": "quick"}))["run_id"]
    wrong = err(tools.execute_tool("get_step_logs", {"run_id": run_id, "step": "helo"}), "STEP_NOT_FOUND")
    assert "did you mean 'hello'?" in wrong["error"]
    err(tools.execute_tool("get_step_logs", {"run_id": run_id, "step": "hello", "attempt": 2}), "LOG_NOT_FOUND")


def test_list_runs_filters_by_workflow_and_status(tools: OrchestrationMCPTools) -> None:
    ok(tools.execute_tool("execute_workflow", {"workflow_name": "quick"}))
    tools.execute_tool("execute_workflow", {"workflow_name": "broken"})
    every = ok(tools.execute_tool("list_runs", {}))
    assert every["total"] == 2 and {r["workflow"] for r in every["runs"]} == {"quick", "broken"}
    failed = ok(tools.execute_tool("list_runs", {"status": "failed"}))
    assert [r["workflow"] for r in failed["runs"]] == ["broken"]
    assert ok(tools.execute_tool("list_runs", {"workflow": "quick", "limit": 1}))["total"] == 1


def run_of_a_dead_process(settings: Settings, dead_owner: tuple[int, float]) -> str:
    """Store a running run whose process has died (as after ``kill -9``); return its id."""
    with Store.open(settings, recover=False) as store:
        store.create_run("run-orphan", Workflow(name="quick", steps=[WorkflowStep(name="hello")]), {})
        store.flush()
    conn = sqlite3.connect(settings.db_path)
    with conn:
        conn.execute("UPDATE runs SET owner_pid = ?, owner_started = ? WHERE id = 'run-orphan'", dead_owner)
    conn.close()
    return "run-orphan"


def test_a_run_whose_process_died_is_listed_interrupted(
    tools: OrchestrationMCPTools, settings: Settings, dead_owner: tuple[int, float]
) -> None:
    run_of_a_dead_process(settings, dead_owner)  # after the server opened the store
    assert [r["status"] for r in ok(tools.execute_tool("list_runs", {}))["runs"]] == ["interrupted"]


def test_the_status_of_a_run_whose_process_died_says_interrupted(
    tools: OrchestrationMCPTools, settings: Settings, dead_owner: tuple[int, float]
) -> None:
    run_id = run_of_a_dead_process(settings, dead_owner)
    status = ok(tools.execute_tool("get_run_status", {"run_id": run_id}))
    assert status["status"] == "interrupted" and status["finished"] is True


# ------------------------------------------------------------- defining work


STEP_SHELL = {"name": "s", "module": "shell", "action": "run", "parameters": {"command": "echo from-shell"}}
STEP_PYTHON = {"name": "p", "module": "python", "action": "call", "parameters": {"target": "os:getcwd"}}


@pytest.mark.parametrize(("step", "flag"), [(STEP_SHELL, "--allow-shell"), (STEP_PYTHON, "--allow-python")])
def test_shell_and_python_steps_from_mcp_are_refused_without_the_flag(
    tools: OrchestrationMCPTools, step: dict[str, Any], flag: str,
) -> None:
    refused = err(tools.execute_tool("create_workflow", {"name": "w", "steps": [step]}), "ACTION_NOT_ALLOWED")
    assert flag in refused["error"]
    err(tools.execute_tool("execute_task", {k: v for k, v in step.items()}), "ACTION_NOT_ALLOWED")
    err(tools.execute_tool("create_complex_workflow", {"steps": [step]}), "ACTION_NOT_ALLOWED")
    assert "w" not in ok(tools.execute_tool("list_workflows", {}))["workflows"]


def test_shell_and_python_steps_run_when_allowed(settings: Settings, tmp_path: Path) -> None:
    with OrchestrationMCPTools(settings=settings, workdir=tmp_path, allow_shell=True, allow_python=True) as tools:
        ok(tools.execute_tool("create_workflow", {"name": "w", "steps": [STEP_SHELL, STEP_PYTHON]}))
        result = ok(tools.execute_tool("execute_workflow", {"workflow_name": "w"}))
    assert result["results"]["s"] == "from-shell" and result["results"]["p"] == str(Path.cwd())


def test_create_workflow_then_run_it(tools: OrchestrationMCPTools) -> None:
    steps = [{"name": "a", "action": "echo", "parameters": {"message": "{{ params.x }}"}},
             {"name": "b", "action": "noop", "dependencies": ["a"], "parameters": {"output": "{{ a.output }}"}}]
    created = ok(tools.execute_tool("create_workflow", {"name": "mine", "steps": steps, "params": {"x": "one"}}))
    assert created["execution_order"] == [["a"], ["b"]] and created["params"]["x"]["default"] == "one"
    listed = ok(tools.execute_tool("list_workflows", {}))["workflows"]
    assert {w["name"]: w["origin"] for w in listed}["mine"] == "mcp"
    result = ok(tools.execute_tool("execute_workflow", {"workflow_name": "mine", "parameters": {"x": "two"}}))
    assert result["results"]["b"] == "two"
    ok(tools.execute_tool("create_workflow", {"name": "mine", "steps": [{"name": "c"}]}))  # its own: may replace


def test_create_workflow_refuses_invalid_definitions_and_taken_names(tools: OrchestrationMCPTools) -> None:
    cycle = [{"name": "a", "action": "noop", "dependencies": ["b"]}, {"name": "b", "action": "noop", "dependencies": ["a"]}]
    invalid = err(tools.execute_tool("create_workflow", {"name": "loop", "steps": cycle}), "WORKFLOW_INVALID")
    assert "cycle" in invalid["error"] and invalid["details"]["problems"]
    unknown = err(tools.execute_tool("create_workflow", {"name": "u", "steps": [{"name": "a", "action": "echoo"}]}),
                  "WORKFLOW_INVALID")
    assert "echo" in unknown["error"]
    greedy = err(tools.execute_tool("create_workflow", {"name": "g", "steps": [
        {"name": "a", "resources": {"cpu": {"cores": 100_000}}}]}), "STEP_CANNOT_RUN")
    assert "cpu" in greedy["error"]
    taken = err(tools.execute_tool("create_workflow", {"name": "quick", "steps": [{"name": "a"}]}), "WORKFLOW_EXISTS")
    assert "quick" in taken["error"]
    bad_name = err(tools.execute_tool("create_workflow", {"name": "../x", "steps": [{"name": "a"}]}), "WORKFLOW_INVALID")
    assert "name" in bad_name["error"]


def test_execute_task_runs_one_action(tools: OrchestrationMCPTools, settings: Settings) -> None:
    result = ok(tools.execute_tool("execute_task", {"name": "greet", "module": "builtin", "action": "echo",
                                                    "parameters": {"message": "hi"}, "priority": "high"}))
    assert result["output"] == "hi" and result["task"] == "greet"
    assert stored_run(settings, result["run_id"]).workflow == "task-greet"
    failed = err(tools.execute_tool("execute_task", {"name": "f", "module": "builtin", "action": "fail",
                                                     "parameters": {"message": "nope"}}), "RUN_FAILED")
    assert failed["output"] is None and "nope" in failed["error"]


def test_create_complex_workflow_merges_dependencies_and_warns(tools: OrchestrationMCPTools) -> None:
    result = ok(tools.execute_tool("create_complex_workflow", {
        "name": "cx",
        "steps": [{"name": "setup", "action": "echo", "parameters": {"message": "s"}},
                  {"name": "left", "action": "noop"}, {"name": "right", "action": "noop"}],
        "dependencies": {"left": ["setup"], "right": "setup"},
        "parallel_groups": [["left", "right"], ["setup", "left"]],
    }))
    assert result["execution_order"] == [["setup"], ["left", "right"]]
    assert result["warnings"] == ["parallel group ['setup', 'left']: 'left' depends on 'setup', so they run one "
                                  "after the other"]
    assert result["status"] == "completed"
    unknown = err(tools.execute_tool("create_complex_workflow", {"steps": [{"name": "a"}], "dependencies": {"b": ["a"]}}),
                  "INVALID_ARGUMENT")
    assert "'b'" in unknown["error"]
    err(tools.execute_tool("create_complex_workflow", {"steps": [{"name": "a"}], "parallel_groups": [["a", "z"]]}),
        "INVALID_ARGUMENT")


# -------------------------------------------------------------------- projects


def test_create_and_list_projects_as_in_spec_004(tools: OrchestrationMCPTools, tmp_path: Path) -> None:
    created = ok(tools.execute_tool("create_project", {"name": "ai_project", "template": "ai_analysis",
                                                       "description": "AI-powered analysis project"}))
    project = created["project"]
    assert project["type"] == "ai_analysis" and Path(project["path"]).is_dir()
    inside = ok(tools.execute_tool("create_project", {"name": "docs", "template": "documentation", "path": "sub/docs"}))
    assert Path(inside["project"]["path"]) == tmp_path / "sub" / "docs"
    listed = ok(tools.execute_tool("list_projects", {}))
    assert [p["name"] for p in listed["projects"]] == ["ai_project", "docs"]
    workflows = ok(tools.execute_tool("list_workflows", {}))["project_workflows"]
    assert workflows["ai_project"] == project["workflows"]
    err(tools.execute_tool("create_project", {"name": "ai_project"}), "PROJECT_EXISTS")


@pytest.mark.parametrize("path", ["../outside", "/tmp", ".", "sub/../../x"])
def test_project_paths_cannot_leave_the_working_directory(tools: OrchestrationMCPTools, path: str) -> None:
    result = err(tools.execute_tool("create_project", {"name": "p", "path": path}), "PATH_OUTSIDE_WORKDIR")
    assert result["error"].startswith(f"project path {path!r} ") and "--allow-path" not in result["error"]


def test_project_names_are_validated(tools: OrchestrationMCPTools) -> None:
    result = tools.execute_tool("create_project", {"name": "../evil"})
    assert result["success"] is False and "path separator" in result["error"]


def test_a_project_workflow_runs_in_the_project_directory(tools: OrchestrationMCPTools, settings: Settings) -> None:
    project = ok(tools.execute_tool("create_project", {"name": "proj"}))["project"]
    workflows = Path(project["path"]) / "workflows"
    (workflows / "where.yaml").write_text(
        "name: where\nsteps:\n  - {name: cwd, module: shell, action: run, parameters: {command: pwd}}\n")
    result = ok(tools.execute_tool("execute_workflow", {"workflow_name": "where", "project": "proj"}))
    assert result["results"]["cwd"] == project["path"]
    err(tools.execute_tool("execute_workflow", {"workflow_name": "nope", "project": "proj"}), "WORKFLOW_NOT_FOUND")
    err(tools.execute_tool("execute_workflow", {"workflow_name": "where", "project": "prj"}), "PROJECT_NOT_FOUND")


# ------------------------------------------------------- status and resources


def test_system_and_health_status(tools: OrchestrationMCPTools, tmp_path: Path) -> None:
    ok(tools.execute_tool("execute_workflow", {"workflow_name": "quick"}))
    status = ok(tools.execute_tool("get_system_status", {}))
    assert status["mcp"] == {"allow_shell": False, "allow_python": False, "allow_plugins": False, "workdir": str(tmp_path.resolve()),
                             "workflows_dir": str(tmp_path / "workflows"), "allowed_paths": []}
    assert status["workflow_manager"]["total_workflows"] == 5
    assert [r["workflow"] for r in status["recent_runs"]] == ["quick"]
    health = ok(tools.execute_tool("get_health_status", {}))
    assert health["status"] in ("healthy", "degraded") and "uptime_seconds" in health


def test_allocate_and_release_resources(tools: OrchestrationMCPTools) -> None:
    cores = tools.engine.resource_manager.get_resource("cpu").capacity["cores"]
    granted = ok(tools.execute_tool("allocate_resources", {"user_id": "agent", "requirements": {"cpu": {"cores": cores}}}))
    assert granted["allocations"] == {"cpu": "cpu"}
    busy = err(tools.execute_tool("allocate_resources", {"user_id": "other", "requirements": {"cpu": {"cores": 1}}}),
               "RESOURCE_ALLOCATION_ERROR")
    assert "in use" in busy["error"]
    assert ok(tools.execute_tool("allocate_resources", {"user_id": "agent", "release": True}))["released"] is True
    ok(tools.execute_tool("allocate_resources", {"user_id": "other", "requirements": {"cpu": {"cores": 1}}}))
    never = err(tools.execute_tool("allocate_resources", {"user_id": "x", "requirements": {"cpu": {"cores": 10_000}}}),
                "RESOURCE_ALLOCATION_ERROR")
    assert "cpu" in never["error"]
    err(tools.execute_tool("allocate_resources", {"user_id": "x"}), "INVALID_ARGUMENT")


def test_get_mcp_tools_is_the_spec_004_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.singletons import get_mcp_tools, reset_singletons

    monkeypatch.chdir(tmp_path)
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "quick.yaml").write_text(QUICK)
    try:
        tools = get_mcp_tools()
        assert tools is get_mcp_tools()
        result = ok(tools.execute_tool("execute_workflow", {"workflow_name": "quick", "parameters": {"who": "spec"}}))
        assert result["results"]["bye"] == "hello spec!"
        assert ok(tools.execute_tool("get_run_status", {"run_id": result["run_id"]}))["status"] == "completed"
    finally:
        reset_singletons()


# ------------------------------------------------- through the SDK, in memory


@pytest.fixture
def server(tools: OrchestrationMCPTools) -> Any:
    from orchtui.mcp_server import build_server

    return build_server(tools)


async def test_sdk_client_lists_the_tools_with_our_schemas(server: Any, tools: OrchestrationMCPTools) -> None:
    from mcp.client import Client

    async with Client(server) as client:
        listed = (await client.list_tools()).tools
    assert [t.name for t in listed] == TOOL_NAMES
    definitions = {d["name"]: d for d in tools.get_tool_definitions()}
    for tool in listed:
        assert tool.input_schema == definitions[tool.name]["inputSchema"]
        assert tool.output_schema is not None and tool.output_schema["required"] == ["success"]
        assert tool.annotations is not None
    assert {t.name for t in listed if t.annotations.read_only_hint} == {
        "list_workflows", "list_projects", "get_system_status", "get_health_status", "get_run_status",
        "get_step_logs", "list_runs"}


async def test_sdk_client_runs_a_workflow_with_progress(server: Any) -> None:
    from mcp.client import Client

    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async with Client(server) as client:
        result = await client.call_tool("execute_workflow", {"workflow_name": "quick"}, progress_callback=on_progress)
        status = await client.call_tool("get_run_status", {"run_id": result.structured_content["run_id"]})
    assert result.is_error is False and result.structured_content["status"] == "completed"
    assert json.loads(result.content[0].text) == result.structured_content
    assert progress and progress[-1][:2] == (2.0, 2.0) and "quick: 2/2 steps done" == progress[-1][2]
    assert status.structured_content["steps"][1]["output"] == "hello world!"


async def test_sdk_client_sees_error_results(server: Any) -> None:
    from mcp.client import Client

    async with Client(server) as client:
        bad = await client.call_tool("get_step_logs", {"run_id": "x"})
        refused = await client.call_tool("execute_task", {"name": "t", **{k: STEP_SHELL[k] for k in ("module", "action", "parameters")}})
        failed = await client.call_tool("execute_workflow", {"workflow_name": "broken"})
    assert bad.is_error and bad.structured_content["error_code"] == "INVALID_ARGUMENT"
    assert "argument 'step' is required" in bad.content[0].text
    assert refused.is_error and refused.structured_content["error_code"] == "ACTION_NOT_ALLOWED"
    assert failed.is_error and failed.structured_content["failed_steps"] == ["boom"]
