"""A WORKFLOW argument names a file, or a workflow (or file stem) in the workflows directory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.config import Settings, load_settings
from core.errors import WorkflowNotFoundError, WorkflowValidationError
from orchtui.cli.workflow_target import find_workflow, locate_workflow, workflow_file_for


def flow(name: str, message: str = "hi") -> str:
    return f"name: {name}\nsteps:\n  - {{name: s, module: builtin, action: echo, parameters: {{message: {message}}}}}\n"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    folder = tmp_path / "wfs"
    folder.mkdir()
    (folder / "greeting.yaml").write_text(flow("hello"))
    (folder / "broken.yaml").write_text("name: other\ndescription: hello\nsteps: 3\n")  # mentions the name only
    monkeypatch.chdir(tmp_path)
    return dataclasses.replace(load_settings(cwd=tmp_path), workflows_dir=folder)


def test_a_name_finds_the_file_that_defines_it(settings: Settings) -> None:
    assert workflow_file_for("hello", settings) == settings.workflows_dir / "greeting.yaml"


def test_a_file_stem_finds_its_file(settings: Settings) -> None:
    assert find_workflow("greeting", settings).name == "hello"


def test_a_path_is_the_file_itself(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "here.yaml").write_text(flow("here"))
    assert workflow_file_for("here.yaml", settings) == Path("here.yaml")


def test_a_missing_path_says_no_such_file(settings: Settings) -> None:
    with pytest.raises(WorkflowNotFoundError, match="no such workflow file"):
        workflow_file_for("gone.yaml", settings)


def test_an_unknown_name_suggests_the_closest(settings: Settings) -> None:
    with pytest.raises(WorkflowNotFoundError, match="did you mean 'hello'"):
        workflow_file_for("helo", settings)


def test_an_unknown_name_suggests_a_name_only_an_invalid_file_declares(settings: Settings) -> None:
    with pytest.raises(WorkflowNotFoundError, match="did you mean 'other'"):  # broken.yaml's
        workflow_file_for("othr", settings)


def test_a_name_two_files_define_is_an_error_naming_both(settings: Settings) -> None:
    (settings.workflows_dir / "again.yaml").write_text(flow("hello", "other"))
    with pytest.raises(WorkflowNotFoundError, match=r"defined by 2 files .*\(again.yaml, greeting.yaml\)") as info:
        workflow_file_for("hello", settings)
    assert info.value.error_code == "WORKFLOW_AMBIGUOUS"


def test_an_invalid_file_named_by_its_stem_reports_its_problems(settings: Settings) -> None:
    with pytest.raises(WorkflowValidationError, match="'steps' must be a list"):
        find_workflow("broken", settings)


def test_a_directory_named_like_the_workflow_does_not_hide_it(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "hello").mkdir()
    assert find_workflow("hello", settings).name == "hello"


def test_an_invalid_file_declaring_the_name_makes_it_ambiguous_instead_of_being_skipped(settings: Settings) -> None:
    (settings.workflows_dir / "prod-hello.yaml").write_text("name: hello\nsteps:\n  - {name: a, dependencies: [ghost]}\n")
    with pytest.raises(WorkflowNotFoundError, match="prod-hello.yaml") as refused:
        find_workflow("hello", settings)
    assert refused.value.error_code == "WORKFLOW_AMBIGUOUS"


def test_the_only_file_declaring_the_name_reports_its_problems_when_invalid(settings: Settings) -> None:
    (settings.workflows_dir / "greeting.yaml").unlink()
    (settings.workflows_dir / "prod.yaml").write_text("name: hello\nsteps:\n  - {name: a, dependencies: [ghost]}\n")
    with pytest.raises(WorkflowValidationError, match="ghost"):
        find_workflow("hello", settings)


def test_an_invalid_yaml_file_declaring_the_name_is_found_by_its_top_level_line(settings: Settings) -> None:
    (settings.workflows_dir / "greeting.yaml").unlink()
    (settings.workflows_dir / "prod.yaml").write_text("name: hello\nsteps: [\n")
    with pytest.raises(WorkflowValidationError):
        find_workflow("hello", settings)


def test_a_name_another_file_defines_wins_over_a_stem_with_a_note_naming_the_stems_file(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    (settings.workflows_dir / "hello.yaml").write_text(flow("bonjour"))  # stem 'hello', workflow 'bonjour'
    located = locate_workflow("hello", settings)
    assert located.path == settings.workflows_dir / "greeting.yaml"
    assert located.note == ("hello.yaml holds workflow 'bonjour'; 'hello' is the workflow of greeting.yaml "
                            f"(give {settings.workflows_dir / 'hello.yaml'} to use that file)")
    assert find_workflow("hello", settings).name == "hello"
    assert capsys.readouterr().err == f"note: {located.note}\n"


def test_finding_a_workflow_by_name_hands_over_the_workflow_it_loaded(settings: Settings) -> None:
    located = locate_workflow("hello", settings)
    assert located.workflow is not None and located.workflow.name == "hello" and located.error is None


def test_finding_an_invalid_file_by_its_stem_hands_over_its_problems(settings: Settings) -> None:
    located = locate_workflow("broken", settings)
    assert located.workflow is None and located.error is not None
    assert "'steps' must be a list" in str(located.error)
