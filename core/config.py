"""Settings: defaults, an optional config file, and environment variables.

Precedence, lowest first: built-in defaults, the file named by ``ORCHTUI_CONFIG``
(JSON or YAML, the keys of spec 002), then the ``ORCHTUI_*`` variables. Without a
``resource_config`` setting, a ``resources.yaml`` in the workflows directory is used. Relative
paths are resolved against the working directory at load time.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

__all__ = ["Settings", "load_settings", "state_dir", "RESOURCE_CONFIG_NAME", "parse_config_text"]

# Pools and locks the workflows of a directory use live beside them under this name, so a
# workflows directory that needs a lock runs as it is (ORCHTUI_RESOURCE_CONFIG overrides).
RESOURCE_CONFIG_NAME = "resources.yaml"


@dataclasses.dataclass(slots=True)
class Settings:
    """Where orchtui keeps things, and how much it may run at once."""

    state_dir: Path
    workflows_dir: Path
    projects_dir: Path
    templates_dir: Path | None = None
    resource_config: Path | None = None
    max_workers: int = 4
    performance_monitoring: bool = True
    session_timeout: float = 3600.0
    cleanup_interval: float = 300.0
    dask_scheduler: str | None = None
    log_cap_bytes: int = 5 * 1024 * 1024

    @property
    def db_path(self) -> Path:
        return self.state_dir / "orchtui.db"

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"


_INT_KEYS = {"max_workers", "log_cap_bytes"}
_FLOAT_KEYS = {"session_timeout", "cleanup_interval"}
_PATH_KEYS = {"state_dir", "workflows_dir", "projects_dir", "templates_dir", "resource_config"}


def parse_config_text(text: str, path: Path, what: str) -> Any:
    """Parse a config file's ``text`` (JSON for a ``.json`` ``path``, else YAML, safely).

    Raises:
        ConfigError: one line, ``path:line:col: what is not valid YAML/JSON: the problem``.
    """
    is_json = path.suffix.lower() == ".json"
    try:
        return json.loads(text) if is_json else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        where, problem = f"{path}:{exc.lineno}:{exc.colno}", exc.msg
    except ValueError as exc:
        where, problem = str(path), str(exc)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    raise ConfigError(f"{where}: {what} is not valid {'JSON' if is_json else 'YAML'}: {problem}",
                      details={"file": str(path)}) from None


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file named by ORCHTUI_CONFIG ({exc.strerror})") from None
    data = parse_config_text(text, path, "the config file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config file must hold a mapping of settings")
    if "orchestration_dir" in data:  # spec-002 spelling
        data.setdefault("state_dir", data.pop("orchestration_dir"))
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return data


def load_settings(cwd: Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Return the settings in force for ``cwd`` (default: the working directory).

    Raises:
        ConfigError: the config file is unreadable or malformed, or a value is not valid.
    """
    base = Path(cwd or Path.cwd())
    env = dict(os.environ if env is None else env)
    raw: dict[str, Any] = {}
    if env.get("ORCHTUI_CONFIG"):
        raw.update(_read_config_file(Path(env["ORCHTUI_CONFIG"])))
    for key, var in (
        ("state_dir", "ORCHTUI_DIR"),
        ("max_workers", "ORCHTUI_MAX_WORKERS"),
        ("resource_config", "ORCHTUI_RESOURCE_CONFIG"),
        ("dask_scheduler", "ORCHTUI_DASK_SCHEDULER"),
        ("workflows_dir", "ORCHTUI_WORKFLOWS_DIR"),
    ):
        if env.get(var):
            raw[key] = env[var]
    values: dict[str, Any] = {
        "state_dir": base / ".workflows",
        "workflows_dir": base / "workflows",
        "projects_dir": base / "projects",
    }
    for key, value in raw.items():
        try:
            if key in _INT_KEYS:
                value = int(value)
                if value < 1:
                    raise ValueError
            elif key in _FLOAT_KEYS:
                value = float(value)
            elif key in _PATH_KEYS and value is not None:
                value = Path(value)
                value = value if value.is_absolute() else base / value
        except (TypeError, ValueError):
            raise ConfigError(f"setting {key}={value!r} is not valid; give a positive number") from None
        values[key] = value
    if "resource_config" not in raw:
        beside = values["workflows_dir"] / RESOURCE_CONFIG_NAME
        if beside.is_file():
            values["resource_config"] = beside
    return Settings(**values)


def state_dir() -> Path:
    """The state directory in force now (``ORCHTUI_DIR`` or ``./.workflows``)."""
    return load_settings().state_dir
