"""Strings an agent sends are read as paths and refused outside the allowed roots."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.path_confinement import refused_path, strings_in


@pytest.fixture
def root(tmp_path: Path) -> Path:
    made = tmp_path / "work"
    (made / "data").mkdir(parents=True)
    return made.resolve()


def check(value: object, root: Path, **extra: object) -> object:
    return refused_path(value, base=root, roots=[root], where="params", **extra)


@pytest.mark.parametrize("text", ["hello world", "data", "data/out.csv", ".", "./a/../b", "https://example.com/x",
                                  "~nosuchuser/x", "a\0b", ""])
def test_text_that_stays_inside_the_root_is_accepted(root: Path, text: str) -> None:
    assert check({"x": text}, root) is None


@pytest.mark.parametrize("text", ["/etc", "/", "..", "../sibling", "data/../../x", "~", "~/x"])
def test_absolute_home_and_climbing_paths_are_refused(root: Path, text: str) -> None:
    found = check({"x": text}, root)
    assert found is not None and found.where == "params.x" and found.value == text
    assert not found.resolved.is_relative_to(root) and found.protected is None


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


def test_a_protected_directory_inside_the_root_is_refused(root: Path) -> None:
    found = check({"x": "data/sub"}, root, protected=[root / "data"])
    assert found is not None and found.protected == root / "data"
    assert check({"x": "data"}, root, protected=[root / "data"]) is not None


def test_strings_in_yields_every_string_with_its_place() -> None:
    assert list(strings_in({"a": ["x", 1, {"b": "y"}]}, "p")) == [
        ("p.a", "a"), ("p.a[0]", "x"), ("p.a[2].b", "b"), ("p.a[2].b", "y")]
