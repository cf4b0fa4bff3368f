"""The ``orchtui`` command: the dashboard by default, subcommands for scripts and cron.

Exit codes: 0 success; 1 invalid input or a failed run; 2 wrong usage (click's own).
Each command group lives in its own module and adds itself in ``_COMMAND_MODULES``.
"""

from __future__ import annotations

import importlib

import click

from .common import CONTEXT_SETTINGS

__all__ = ["main"]


@click.group(context_settings=CONTEXT_SETTINGS, invoke_without_command=True)
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
        from .dashboard_cmd import open_dashboard

        open_dashboard(refresh=refresh)


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
