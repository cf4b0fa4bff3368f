"""The MCP server: :class:`~core.mcp_tools.OrchestrationMCPTools` served with the official SDK.

Each tool is registered on an ``mcp.server.mcpserver.MCPServer`` with the JSON Schema of
:mod:`core.mcp_schemas` as its input schema (not one derived from a Python signature,
so what clients see is exactly what the core checks) and an output schema, so every
result goes back as structured content plus its JSON text. A result with
``success: false`` is marked ``isError``. The tools run on worker threads: a long
``execute_workflow`` never blocks the server, and while it waits it sends progress
notifications (steps settled / steps in the run) to clients that asked for them.

Importing this module needs the SDK (``pip install 'orchtui[mcp]'``); ``orchtui mcp``
reports its absence in one line instead of starting anything.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import ConfigDict

from core.mcp_runs import ProgressCallback
from core.mcp_schemas import RESULT_SCHEMA, TOOL_SPECS, ToolSpec
from core.mcp_tools import OrchestrationMCPTools

__all__ = ["build_server", "serve_stdio", "SERVER_NAME"]

SERVER_NAME = "orchtui"
# The keyword the SDK hands the request Context under; no tool argument is called this.
_CONTEXT_KWARG = "mcp_request_context"

_INSTRUCTIONS = (
    "orchtui runs workflows: DAGs of steps with dependencies, retries and resources. "
    "list_workflows shows what can run; execute_workflow runs one (wait=false returns a run_id to poll "
    "with get_run_status); get_step_logs reads a step's output; cancel_run stops a run. "
    "create_workflow / create_complex_workflow / execute_task define work of your own with builtin "
    "actions (shell and python only if the operator allowed them). Every result has 'success'; "
    "a failure also has 'error', 'error_code' and 'suggestions'."
)


class _RawArguments(ArgModelBase):
    """Hands the tool its arguments untouched: the core checks them against the published schema.

    The SDK normally derives an argument model from a function signature; here the
    schema is ours, so the model only carries the arguments through.
    """

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    def model_dump_one_level(self) -> dict[str, Any]:
        """Return the arguments exactly as the client sent them."""
        return dict(self.model_extra or {})


def _progress_reporter(ctx: Context[Any, Any]) -> ProgressCallback:
    """Return a callback a worker thread can call to send a progress notification."""

    def report(done: float, total: float | None, message: str) -> None:
        anyio.from_thread.run(ctx.report_progress, done, total, message)

    return report


def _tool(tools: OrchestrationMCPTools, spec: ToolSpec) -> Tool:
    """Return the SDK Tool for ``spec``: our schemas, a handler running the core tool on a thread."""

    async def call(**kwargs: Any) -> CallToolResult:
        ctx = kwargs.pop(_CONTEXT_KWARG)
        run = functools.partial(tools.execute_tool, spec.name, kwargs, progress=_progress_reporter(ctx))
        result = await anyio.to_thread.run_sync(run)
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(result, indent=2, ensure_ascii=False))],
            structured_content=result,
            is_error=not result.get("success", False),
        )

    return Tool(
        fn=call,
        name=spec.name,
        description=spec.description,
        parameters=spec.input_schema,
        fn_metadata=FuncMetadata(arg_model=_RawArguments, output_schema=RESULT_SCHEMA),
        is_async=True,
        context_kwarg=_CONTEXT_KWARG,
        annotations=ToolAnnotations(read_only_hint=spec.read_only),
    )


def build_server(tools: OrchestrationMCPTools) -> MCPServer:
    """Return an MCPServer offering every tool of ``tools`` (not yet running)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("orchtui")
    except PackageNotFoundError:  # running from a source tree that was never installed
        release = "0"
    return MCPServer(
        name=SERVER_NAME,
        title="orchtui workflow orchestrator",
        instructions=_INSTRUCTIONS,
        version=release,
        tools=[_tool(tools, spec) for spec in TOOL_SPECS],
        log_level="WARNING",
    )


def serve_stdio(tools: OrchestrationMCPTools) -> None:
    """Serve ``tools`` over stdin/stdout until the client closes the connection."""
    anyio.run(build_server(tools).run_stdio_async)
