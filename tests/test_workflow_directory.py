"""A workflows directory kept loaded: only changed files are parsed again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from core.workflow_directory import WorkflowDirectory, declared_name


def write(path: Path, name: str, steps: int = 1) -> None:
    lines = [f"name: {name}", "steps:"] + [f"  - name: s{i}" for i in range(steps)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "wfs"
    folder.mkdir()
    write(folder / "a.yaml", "alpha")
    write(folder / "b.yaml", "beta")
    return folder


def test_every_file_is_parsed_the_first_time(folder: Path) -> None:
    directory = WorkflowDirectory(folder)
    assert [f.name for f in directory.load()] == ["alpha", "beta"]
    assert directory.parsed == 2


def test_an_unchanged_file_is_not_parsed_again_and_keeps_its_workflow_object(folder: Path) -> None:
    directory = WorkflowDirectory(folder)
    first = directory.load()
    again = directory.load()
    assert directory.parsed == 2
    assert again[0].workflow is first[0].workflow


def test_only_the_changed_file_is_parsed_again(folder: Path) -> None:
    directory = WorkflowDirectory(folder)
    directory.load()
    write(folder / "b.yaml", "beta", steps=3)
    loaded = directory.load()
    assert directory.parsed == 3
    assert loaded[1].workflow is not None and len(loaded[1].workflow.steps) == 3


def test_a_file_rewritten_with_the_same_size_and_an_older_time_is_parsed_again(folder: Path) -> None:
    directory = WorkflowDirectory(folder)
    directory.load()
    stat = os.stat(folder / "b.yaml")
    write(folder / "b.yaml", "betb")  # same size
    os.utime(folder / "b.yaml", ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**9))  # as a restored backup would
    assert directory.load()[1].name == "betb"


def test_a_new_file_is_added_and_a_deleted_one_forgotten(folder: Path) -> None:
    directory = WorkflowDirectory(folder)
    directory.load()
    (folder / "a.yaml").unlink()
    write(folder / "c.yaml", "gamma")
    assert [f.name for f in directory.load()] == ["beta", "gamma"]


def test_an_invalid_file_gives_its_problems_and_the_name_it_declares(folder: Path) -> None:
    (folder / "a.yaml").write_text("name: alpha\nsteps:\n  - name: s0\n    dependencies: [nope]\n", encoding="utf-8")
    broken = WorkflowDirectory(folder).load()[0]
    assert broken.workflow is None and broken.name == "alpha"
    assert broken.error is not None and "nope" in str(broken.error)


def test_a_file_that_is_not_yaml_still_declares_its_top_level_name() -> None:
    assert declared_name("name: alpha\nsteps: [\n  - oops: {\n") == "alpha"
    assert declared_name("steps: [") is None


def test_a_json_file_declares_its_name() -> None:
    assert declared_name(json.dumps({"name": "alpha", "steps": 3})) == "alpha"
    assert declared_name(json.dumps(["name", "alpha"])) is None


def test_a_file_nested_past_pythons_stack_is_its_own_problem_only(folder: Path) -> None:
    (folder / "deep.json").write_text('{"name": "deep", "steps": ' + "[" * 5000 + "]" * 5000 + "}", encoding="utf-8")
    loaded = {f.path.name: f for f in WorkflowDirectory(folder).load()}
    assert loaded["deep.json"].workflow is None and loaded["deep.json"].error is not None
    assert loaded["a.yaml"].name == "alpha" and loaded["b.yaml"].name == "beta"


def test_a_deeply_nested_text_declares_no_name_instead_of_raising() -> None:
    assert declared_name('{"steps": ' + "[" * 5000 + "]" * 5000 + "}") is None
