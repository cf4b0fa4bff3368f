"""The ``orchtui`` command: the dashboard by default, subcommands for scripts and cron.

Exit codes: 0 success; 1 invalid input or a failed run; 2 wrong usage (click's own).
Each command group lives in its own module and adds itself in ``_COMMAND_MODULES``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click

from .common import CONTEXT_SETTINGS, emit_json

__all__ = ["main"]


class _JsonAwareGroup(click.Group):
    """The top-level group: with ``--json`` anywhere in the arguments, a usage error is
    printed as the same JSON error object every other error is, on stdout, so a script
    that parses the output never gets click's text instead (exit code 2 as before)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode or "--json" not in argv:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            emit_json({"success": False, "error": exc.format_message(), "error_type": type(exc).__name__,
                       "error_code": "USAGE_ERROR" if isinstance(exc, click.UsageError) else "COMMAND_ERROR",
                       "details": {}, "suggestions": []})
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_JsonAwareGroup, context_settings=CONTEXT_SETTINGS, invoke_without_command=True)
@click.version_option(package_name="orchtui")
@click.option("--refresh", type=click.FloatRange(min=0.5, max=60.0), default=10.0, show_default=True,
              help="Dashboard refresh rate in Hz.")
@click.pass_context
def main(ctx: click.Context, refresh: float) -> None:
    """orchtui: a terminal-first workflow orchestrator.

    With no command, opens the dashboard on this directory's workflows and runs.

    \b
    Exit codes: 0 ok, 1 invalid input or failed run, 2 usage error.
    """
    if ctx.invoked_subcommand is None:
        from .common import handle_errors
        from .dashboard_cmd import open_dashboard

        handle_errors(open_dashboard)(refresh=refresh)  # one line, not a traceback


# Each module exposes ``register(group)``; order is the order in --help.
_COMMAND_MODULES = (
    "workflow_cmds",
    "run_cmds",
    "store_cmds",
    "project_cmds",
    "mcp_cmd",
    "dashboard_cmd",
)

for _name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _exc:  # a face still being built on this branch
        if _exc.name != f"{__name__}.{_name}":
            raise
        continue
    _module.register(main)
