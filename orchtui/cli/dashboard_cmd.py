"""``orchtui dashboard`` (and bare ``orchtui``): open the Textual dashboard."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml

from core.errors import ConfigError, OrchestrationError

from .common import handle_errors

__all__ = ["register", "open_dashboard", "load_keymap"]


def load_keymap(path: Path) -> dict[str, str]:
    """Return ``{binding id: keys}`` read from a YAML mapping file.

    Raises:
        ConfigError: the file cannot be read, is not YAML, or is not a mapping of
            strings to strings.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the keymap file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: the keymap file is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ConfigError(f"{path}: the keymap must map binding ids to keys, e.g. 'orchtui.run: ctrl+r'")
    return data


def open_dashboard(
    refresh: float = 10.0,
    *,
    state_dir: Path | None = None,
    workflows_dir: Path | None = None,
    keymap: dict[str, str] | None = None,
) -> None:
    """Run the dashboard in this terminal until the user quits.

    Raises:
        OrchestrationError: no terminal to draw on, or the store or the workflows
            directory cannot be opened.
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        # Textual would start anyway and wait for keys that never come (ssh without -t, cron, a pipe).
        raise OrchestrationError(
            "the dashboard needs a terminal, and stdin or stdout is not one; over SSH use `ssh -t`, "
            "in scripts use `orchtui run`, `orchtui runs` and `orchtui status`", error_code="NO_TERMINAL")
    from ..app import OrchTUIApp  # Textual loads only when the dashboard opens

    app = OrchTUIApp(state_dir=state_dir, workflows_dir=workflows_dir, refresh=refresh, keymap=keymap)
    app.run()
    if app.return_code:  # Textual printed the crash; the shell and scripts must see it too
        sys.exit(app.return_code)


def register(group: click.Group) -> None:
    """Add the ``dashboard`` command to ``group``."""

    @group.command("dashboard")
    @click.option("--refresh", type=click.FloatRange(min=0.5, max=60.0), default=10.0, show_default=True,
                  help="Screen refresh rate in Hz.")
    @click.option("--workflows-dir", type=click.Path(path_type=Path, file_okay=False),
                  help="Workflows directory (default: ./workflows or ORCHTUI_WORKFLOWS_DIR).")
    @click.option("--keymap", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                  help="YAML file mapping binding ids to keys, e.g. 'orchtui.run: ctrl+r'.")
    @handle_errors
    def dashboard(refresh: float, workflows_dir: Path | None, keymap: Path | None) -> None:
        """Open the live dashboard: workflows, the running DAG, queues, resources, runs, logs.

        Press ? inside it for every key. State comes from ORCHTUI_DIR (default ./.workflows).
        """
        open_dashboard(refresh, workflows_dir=workflows_dir, keymap=load_keymap(keymap) if keymap else None)
