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

import asyncio
import fcntl
import functools
import json
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.server.stdio import stdio_server
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import ConfigDict

from core.mcp_runs import ProgressCallback
from core.mcp_schemas import RESULT_SCHEMA, TOOL_SPECS, ToolSpec
from core.mcp_tools import TOOLS_THAT_WAIT, OrchestrationMCPTools

__all__ = ["build_server", "serve_stdio", "SERVER_NAME", "STOP_SIGNALS"]

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


# How long a worker thread waits for the event loop to send one progress notification.
_PROGRESS_WAIT = 5.0


def _progress_reporter(ctx: Context[Any, Any]) -> ProgressCallback:
    """Return a callback a worker thread can call to send a progress notification.

    Bounded: a thread the server abandoned (its call was cancelled, or the server is
    stopping) may report after the event loop ended, and ``anyio.from_thread.run``
    would then wait forever, keeping the process from exiting. Raises when the report
    cannot be sent (``follow_run`` then stops reporting).
    """
    loop = asyncio.get_running_loop()

    def report(done: float, total: float | None, message: str) -> None:
        notification = ctx.report_progress(done, total, message)
        try:
            sent = asyncio.run_coroutine_threadsafe(notification, loop)
        except RuntimeError:  # the loop is closed
            notification.close()
            raise
        try:
            sent.result(_PROGRESS_WAIT)
        except BaseException:
            sent.cancel()
            raise

    return report


class _Limiters:
    """How many tool calls run at once, apart for the tools that may wait long
    (:data:`~core.mcp_tools.TOOLS_THAT_WAIT`): with one shared pool, 40 calls waiting for
    their runs kept every other call, ``cancel_run`` included, from starting. Made on
    first use: a limiter belongs to the event loop that serves."""

    def __init__(self) -> None:
        self._made: dict[bool, anyio.CapacityLimiter] = {}

    def for_tool(self, name: str) -> anyio.CapacityLimiter:
        waits = name in TOOLS_THAT_WAIT
        if waits not in self._made:
            self._made[waits] = anyio.CapacityLimiter(_WAITING_CALLS if waits else _QUICK_CALLS)
        return self._made[waits]


# Threads for calls at once. A waiting call's thread mostly sleeps, so many may; a quick
# call ends soon, so a few keep up with any client.
_WAITING_CALLS = 256
_QUICK_CALLS = 16


def _tool(tools: OrchestrationMCPTools, spec: ToolSpec, limiters: _Limiters) -> Tool:
    """Return the SDK Tool for ``spec``: our schemas, a handler running the core tool on a thread."""

    async def call(**kwargs: Any) -> CallToolResult:
        ctx = kwargs.pop(_CONTEXT_KWARG)
        stop = threading.Event()
        run = functools.partial(tools.execute_tool, spec.name, kwargs, progress=_progress_reporter(ctx), stop=stop)
        try:
            # Abandoned on cancel: the client that cancelled the request gets no answer, and
            # ``stop`` tells the thread to stop waiting for the run (which goes on).
            result = await anyio.to_thread.run_sync(run, abandon_on_cancel=True,
                                                    limiter=limiters.for_tool(spec.name))
        except anyio.get_cancelled_exc_class():
            stop.set()
            raise
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
    limiters = _Limiters()
    return MCPServer(
        name=SERVER_NAME,
        title="orchtui workflow orchestrator",
        instructions=_INSTRUCTIONS,
        version=release,
        tools=[_tool(tools, spec, limiters) for spec in TOOL_SPECS],
        log_level="WARNING",
    )


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def serve_stdio(tools: OrchestrationMCPTools) -> int | None:
    """Serve ``tools`` over stdin/stdout until the client closes the connection or a stop
    signal (:data:`STOP_SIGNALS`) comes.

    Either way ``tools.stopping`` is set first, so calls waiting for runs return at
    once; the caller then closes ``tools``, which cancels the runs.

    Returns:
        The number of the signal that stopped the server; None when the client closed
        the connection.
    """
    return anyio.run(_serve_stdio, tools)


async def _serve_stdio(tools: OrchestrationMCPTools) -> int | None:
    server = build_server(tools)
    received: list[int] = []
    wire = _WireIn(on_end=tools.stopping.set)
    try:
        async with anyio.create_task_group() as group:

            async def stop_on_signals() -> None:
                with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
                    async for number in signals:
                        received.append(number)
                        tools.stopping.set()
                        group.cancel_scope.cancel()
                        return

            group.start_soon(stop_on_signals)
            # The SDK's MCPServer.run_stdio_async, with our stdin (see _WireIn).
            lowlevel = server._lowlevel_server
            async with stdio_server(stdin=wire) as (read_stream, write_stream):  # type: ignore[arg-type]
                await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
            group.cancel_scope.cancel()  # the client closed the connection: no signal to wait for
    finally:
        wire.release()
    return received[0] if received else None


class _WireIn:
    """The client's end of the connection (stdin), read line by line in the event loop.

    The SDK reads stdin on a worker thread, and a thread blocked in ``read`` cannot be
    cancelled: the server could not stop on a signal until the client closed its end.
    Here the loop waits until the descriptor is readable, then reads what is there, so a
    wait is cancelled like any other. Like the SDK, it moves the connection off
    descriptor 0 (which then reads /dev/null) while it serves, so nothing run inside the
    server can read the client's messages; :meth:`release` puts it back.
    """

    def __init__(self, on_end: Callable[[], None]) -> None:
        self._on_end = on_end
        self._buffer = bytearray()
        self._ended = False
        try:
            self._fd = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
        except OSError:  # started with stdin closed: a client that is already gone
            self._fd, self._ended = -1, True
            return
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)

    def __aiter__(self) -> _WireIn:
        return self

    async def __anext__(self) -> str:
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0 or (self._ended and self._buffer):
                size = newline + 1 if newline >= 0 else len(self._buffer)
                line = bytes(self._buffer[:size])
                del self._buffer[:size]
                return line.decode("utf-8", errors="replace")
            if self._ended:
                self._on_end()
                raise StopAsyncIteration
            try:
                await anyio.wait_readable(self._fd)
            except OSError:
                pass  # a regular file cannot be polled, and never blocks a read
            data = os.read(self._fd, 65536)
            if data:
                self._buffer += data
            else:
                self._ended = True

    def release(self) -> None:
        """Give the connection its descriptor 0 back."""
        if self._fd >= 0:
            os.dup2(self._fd, 0)
            os.close(self._fd)
            self._fd = -1
