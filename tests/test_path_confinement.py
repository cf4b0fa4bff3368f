"""Strings an agent sends are read as paths and refused outside the allowed roots."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.models import Workflow, WorkflowStep
from core.path_confinement import file_reaching_params, refused_path, strings_in


@pytest.fixture
def root(tmp_path: Path) -> Path:
    made = tmp_path / "work"
    (made / "data").mkdir(parents=True)
    return made.resolve()


def check(value: object, root: Path, **extra: object) -> object:
    return refused_path(value, base=root, roots=[root], where="params", **extra)


@pytest.mark.parametrize("text", ["hello world", "data", "data/out.csv", "./a/../b", "https://example.com/x",
                                  "~nosuchuser/x", " "])
def test_text_that_stays_inside_the_root_is_accepted(root: Path, text: str) -> None:
    assert check({"x": text}, root) is None


@pytest.mark.parametrize("text", ["/etc", "/", "~", "~/x", "/tmp"])
def test_absolute_and_home_paths_outside_are_refused(root: Path, text: str) -> None:
    found = check({"x": text}, root)
    assert found is not None and found.where == "params.x" and found.value == text
    assert not found.resolved.is_relative_to(root) and found.code == "PATH_OUTSIDE_WORKDIR"


@pytest.mark.parametrize("text", ["..", "../sibling", "data/../../x", "a/b/../../..", "../work/data"])
def test_a_path_that_climbs_above_its_start_is_refused_even_when_it_lands_inside(root: Path, text: str) -> None:
    found = check({"x": text}, root)
    assert found is not None and "climbs out" in found.why


def test_the_top_of_the_filesystem_cannot_be_used_to_climb_back_in(root: Path) -> None:
    # From /a/work, ../../../a/work/x is /a/work/x: inside, but joined under another
    # parameter's directory it lands elsewhere.
    found = check({"x": "../" * (len(root.parts) + 1) + str(root).lstrip("/") + "/x"}, root)
    assert found is not None and "climbs out" in found.why


@pytest.mark.parametrize("text", [".", "{root}"])
def test_the_root_itself_is_refused(root: Path, text: str) -> None:
    found = check({"x": text.format(root=root)}, root)
    assert found is not None and found.resolved == root and "the top of" in found.why


@pytest.mark.parametrize("text", ["", "a\0b"])
def test_an_empty_string_or_one_with_a_nul_is_refused(root: Path, text: str) -> None:
    found = check({"x": text}, root)
    assert found is not None and found.resolved is None and "empty" in found.why


def test_a_symbolic_link_that_leads_out_is_refused(root: Path, tmp_path: Path) -> None:
    (root / "out").symlink_to(tmp_path)
    found = check({"x": "out/anything"}, root)
    assert found is not None and found.resolved == tmp_path.resolve() / "anything"


def test_strings_nested_in_lists_and_mappings_are_checked_and_named(root: Path) -> None:
    found = check({"files": ["a", {"to": "/tmp"}]}, root)
    assert found is not None and found.where == "params.files[1].to"


def test_mapping_keys_are_checked_too(root: Path) -> None:
    found = check({"files": {"/etc/passwd": "x"}}, root)
    assert found is not None and found.value == "/etc/passwd"


def test_numbers_and_booleans_are_not_paths(root: Path) -> None:
    assert check({"n": 3, "b": True, "f": 1.5, "none": None}, root) is None


def test_a_second_root_admits_its_paths(root: Path, tmp_path: Path) -> None:
    other = (tmp_path / "shared").resolve()
    assert refused_path({"x": str(other / "f")}, base=root, roots=[root, other], where="params") is None


@pytest.mark.parametrize("text", ["data", "data/sub"])
def test_a_protected_directory_inside_the_root_is_refused(root: Path, text: str) -> None:
    found = check({"x": text}, root, protected=[root / "data"])
    assert found is not None and found.code == "PATH_PROTECTED" and str(root / "data") in found.why


def test_a_protected_directory_holding_the_root_protects_only_its_workflow_files(root: Path) -> None:
    assert check({"x": "out/data.txt"}, root, protected=[root]) is None
    found = check({"x": "planted.yaml"}, root, protected=[root])
    assert found is not None and found.code == "PATH_PROTECTED"


def test_a_directory_holding_a_protected_one_is_refused(root: Path) -> None:
    found = check({"x": "data"}, root, protected=[root / "data" / "workflows"])
    assert found is not None and found.code == "PATH_PROTECTED"
    assert check({"x": "other"}, root, protected=[root / "data" / "workflows"]) is None


def test_strings_in_yields_every_string_with_its_place() -> None:
    assert list(strings_in({"a": ["x", 1, {"b": "y"}]}, "p")) == [
        ("p.a", "a"), ("p.a[0]", "x"), ("p.a[2].b", "b"), ("p.a[2].b", "y")]


def step(name: str, module: str, parameters: dict[str, object]) -> WorkflowStep:
    return WorkflowStep(name=name, module=module, action="run" if module == "shell" else "echo", parameters=parameters)


def test_only_parameters_that_reach_a_file_touching_step_are_checked() -> None:
    workflow = Workflow(name="w", steps=[
        step("say", "builtin", {"message": "{{ params.greeting }}"}),
        step("make", "shell", {"command": "mkdir -p {{ params.dir }}"}),
    ])
    assert file_reaching_params(workflow) == {"dir"}


def test_a_parameter_passed_along_by_builtin_steps_reaches_the_step_they_feed() -> None:
    workflow = Workflow(name="w", steps=[
        step("first", "builtin", {"message": "{{ params.target }}"}),
        step("second", "builtin", {"message": "{{ first.output }}"}),
        step("use", "shell", {"command": "touch {{ second.output }}"}),
        step("aside", "builtin", {"message": "{{ params.note }} {{ ghost.output }}"}),
    ])
    assert file_reaching_params(workflow) == {"target"}
