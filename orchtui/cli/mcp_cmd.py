"""``orchtui mcp``: serve the orchestrator's tools to AI agents over stdio (MCP).

The server speaks MCP on stdin/stdout, so an MCP client starts it as a subprocess (see
README.md, "MCP server", for the client configuration). Logs and warnings go to
stderr. Without the MCP SDK it prints one line naming the extra to install and exits 1;
there is no fallback server.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
from pathlib import Path

import click

from core.config import load_settings

from .common import CONTEXT_SETTINGS, EXIT_FAILED, handle_errors, published

__all__ = ["register", "SDK_MISSING"]

SDK_MISSING = "the MCP server needs the MCP SDK: pip install 'orchtui[mcp]'"
# The SDK and the packages it brings with it: any of them missing means "install the extra".
_SDK_MODULES = ("mcp", "mcp_types", "anyio", "pydantic", "pydantic_core")


@click.command("mcp", context_settings=CONTEXT_SETTINGS)
@click.option("--allow-shell", is_flag=True,
              help="Let workflows sent over MCP run shell steps (commands on this machine).")
@click.option("--allow-python", is_flag=True,
              help="Let workflows sent over MCP run python steps (call any importable function).")
@click.option("--allow-plugins", is_flag=True,
              help="Let workflows sent over MCP run plugin actions (with whatever parameters agents give).")
@click.option("--allow-path", "allowed_paths", multiple=True,
              type=click.Path(exists=True, path_type=Path),
              help="A directory outside the working directory that agents may name in parameters (repeatable).")
@click.option("--workflows-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="The workflows agents may run (default: setting workflows_dir, ./workflows).")
@handle_errors
def mcp_cmd(allow_shell: bool, allow_python: bool, allow_plugins: bool, allowed_paths: tuple[Path, ...],
            workflows_dir: Path | None) -> None:
    """Serve workflows, runs and projects to AI agents over stdio (MCP).

    Agents run the workflows of the workflows directory and of registered
    projects, and may define their own from builtin actions; shell and python
    steps in those only with --allow-shell / --allow-python. Runs are recorded in
    the run store, so the dashboard and `orchtui runs` show them live.

    Parameter values agents give to steps that can touch files must name places
    inside the working directory (or a project's, or an --allow-path directory).
    """
    try:
        from ..mcp_server import STOP_SIGNALS, serve_stdio
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _SDK_MODULES:
            raise
        click.echo(f"error: {SDK_MISSING}", err=True)
        sys.exit(EXIT_FAILED)
    from core.mcp_tools import OrchestrationMCPTools
    from core.process_tree import hurry_kills

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="orchtui mcp: %(levelname)s %(message)s")
    settings = load_settings()
    if workflows_dir is not None:
        settings = dataclasses.replace(settings, workflows_dir=workflows_dir.resolve())
    with OrchestrationMCPTools(settings=settings, allow_shell=allow_shell, allow_python=allow_python,
                               allow_plugins=allow_plugins,
                               allowed_paths=allowed_paths) as tools, \
            published(tools.engine.task_orchestrator, tools.engine.workflow_manager, settings.state_dir,
                      "orchtui mcp"):
        stopped_by = serve_stdio(tools)
        # Leaving this block cancels the server's runs. A stop signal meanwhile (the
        # second one) cuts their grace period short, as in `orchtui run`, and does not
        # abandon steps that ignore SIGTERM.
        for number in STOP_SIGNALS:
            signal.signal(number, lambda *_: hurry_kills())
    if stopped_by is not None:
        # Like `orchtui run`: a shell reports a command a signal ended as 128 + its number.
        sys.exit(128 + stopped_by)


def register(group: click.Group) -> None:
    """Add ``mcp`` to the ``orchtui`` command group."""
    group.add_command(mcp_cmd)
