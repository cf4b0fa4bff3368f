"""Settings come from defaults, an optional file, then ORCHTUI_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_settings
from core.errors import ConfigError


def test_defaults_are_relative_to_the_working_directory(tmp_path: Path):
    settings = load_settings(tmp_path, env={})
    assert settings.state_dir == tmp_path / ".workflows"
    assert settings.workflows_dir == tmp_path / "workflows"
    assert settings.db_path == tmp_path / ".workflows" / "orchtui.db"


def test_environment_overrides_file(tmp_path: Path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("max_workers: 2\nstate_dir: from-file\n")
    settings = load_settings(tmp_path, env={"ORCHTUI_CONFIG": str(cfg), "ORCHTUI_MAX_WORKERS": "8"})
    assert settings.max_workers == 8
    assert settings.state_dir == tmp_path / "from-file"


def test_json_config_with_spec_keys(tmp_path: Path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"max_workers": 3, "workflows_dir": "./wf", "session_timeout": 60}')
    settings = load_settings(tmp_path, env={"ORCHTUI_CONFIG": str(cfg)})
    assert (settings.max_workers, settings.workflows_dir, settings.session_timeout) == (3, tmp_path / "wf", 60.0)


def test_unknown_setting_is_a_clear_error(tmp_path: Path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("max_wrokers: 2\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(tmp_path, env={"ORCHTUI_CONFIG": str(cfg)})


def test_bad_number_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="max_workers"):
        load_settings(tmp_path, env={"ORCHTUI_MAX_WORKERS": "many"})


def test_malformed_config_file_names_the_file(tmp_path: Path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("max_workers: [\n")
    with pytest.raises(ConfigError, match="cfg.yaml"):
        load_settings(tmp_path, env={"ORCHTUI_CONFIG": str(cfg)})


def test_a_config_file_that_is_not_json_is_one_line_at_file_line_column(tmp_path: Path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"max_workers": 2,}\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, env={"ORCHTUI_CONFIG": str(cfg)})
    assert caught.value.message.startswith(f"{cfg}:1:19: the config file is not valid JSON: ")
    assert "\n" not in caught.value.message


def test_a_resources_file_beside_the_workflows_is_the_default_resource_config(tmp_path: Path):
    (tmp_path / "workflows").mkdir()
    assert load_settings(tmp_path, env={}).resource_config is None
    (tmp_path / "workflows" / "resources.yaml").write_text("resources: []\n")
    assert load_settings(tmp_path, env={}).resource_config == tmp_path / "workflows" / "resources.yaml"
    chosen = tmp_path / "mine.yaml"
    assert load_settings(tmp_path, env={"ORCHTUI_RESOURCE_CONFIG": str(chosen)}).resource_config == chosen
