"""How a project lives on disk: the rules for its directory name, and its ``project.yaml``.

``project.yaml`` holds the project's record (:class:`~core.models.Project`, as
``to_dict()`` gives it) without its ``path``: the path is wherever the file is found, so
a project directory copied to another machine still describes itself. It is written
atomically (a temporary file, then a rename), so a crash never leaves half a record.

A project name becomes a directory name, so it must be one safe path component:
letters, digits, ``.``, ``_`` and ``-``; not empty; no separators and no ``..``; not
starting with ``.`` or ``-``; not a Windows device name (``con``, ``nul``, ``com1`` …,
also with an extension); at most 64 characters.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from .atomic_file import write_text_atomic
from .errors import ProjectManagementError, WorkflowValidationError
from .models import Project, record_data_problems
from .workflow_file import load_located_yaml

__all__ = ["PROJECT_FILE", "MAX_NAME_LENGTH", "validate_project_name", "write_project_file", "read_project_file"]

PROJECT_FILE = "project.yaml"
MAX_NAME_LENGTH = 64
_MAX_PROJECT_FILE_BYTES = 1024 * 1024
_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]+\Z")
# Windows device names: a directory called like this cannot be created or copied there.
_RESERVED_NAMES = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(1, 10)} | {f"lpt{i}" for i in range(1, 10)}
)
_HEADER = "# orchtui project file: the project's record, kept next to its files.\n"


def _name_error(name: object, problem: str) -> ProjectManagementError:
    return ProjectManagementError(
        f"project name {name!r} {problem}",
        error_code="INVALID_PROJECT_NAME",
        details={"name": name},
        suggestions=[f"use letters, digits, '.', '_' and '-' (at most {MAX_NAME_LENGTH}), starting with a letter or digit"],
    )


def validate_project_name(name: object) -> str:
    """Return ``name`` when it can safely be a project's directory name.

    Raises:
        ProjectManagementError: the name is empty, holds a path separator or ``..``, starts
            with ``.`` or ``-``, is a reserved device name, is too long, or holds other
            characters than letters, digits, ``.``, ``_`` and ``-``.
    """
    if not isinstance(name, str):
        raise _name_error(name, "is not a string; give the project a name")
    if not name.strip():
        raise _name_error(name, "is empty; give the project a name")
    if "/" in name or "\\" in name or os.sep in name:
        raise _name_error(name, "contains a path separator; a project name is a single directory name (use --path to choose where)")
    if ".." in name:
        raise _name_error(name, "contains '..'; a project name may not point outside the projects directory")
    if name[0] in ".-":
        raise _name_error(name, f"starts with {name[0]!r}; start it with a letter or digit")
    if name.endswith("."):  # Windows drops it: the directory would be called otherwise there
        raise _name_error(name, "ends with '.'; end it with a letter, digit, '_' or '-'")
    if name.split(".")[0].lower() in _RESERVED_NAMES:
        raise _name_error(name, "is a reserved device name on Windows; choose another name")
    if len(name) > MAX_NAME_LENGTH:
        raise _name_error(name, f"is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}")
    if not _NAME_CHARS.match(name):
        bad = sorted({c for c in name if not _NAME_CHARS.match(c)})
        shown = ", ".join(repr(c) for c in bad)
        # ASCII only: a name is a directory name, a store key and part of shell commands and URLs.
        raise _name_error(name, f"contains {shown}; use only ASCII letters (a-z, A-Z), digits, '.', '_' and '-'")
    return name


def write_project_file(project: Project, directory: Path) -> Path:
    """Write ``directory/project.yaml`` for ``project`` atomically and return its path.

    Raises:
        ProjectManagementError: the record holds data YAML cannot represent, or the file
            cannot be written.
    """
    data = project.to_dict()
    data.pop("path", None)
    try:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
    except yaml.YAMLError as exc:
        raise ProjectManagementError(f"project {project.name!r} holds data that cannot be saved as YAML ({exc})") from None
    target = Path(directory) / PROJECT_FILE
    try:
        write_text_atomic(target, _HEADER + text)
    except OSError as exc:
        raise ProjectManagementError(f"{target}: cannot write the project file ({exc.strerror or exc})") from None
    return target


def read_project_file(path: Path | str) -> Project:
    """Read a project from its directory (or its ``project.yaml``) and return it.

    The returned project's ``path`` is the resolved directory the file is in.

    Raises:
        ProjectManagementError: the file is missing, unreadable, larger than 1 MB, not
            valid YAML, not a project record, or names the project unsafely.
    """
    source = Path(path).expanduser()
    file = source / PROJECT_FILE if source.is_dir() else source
    try:
        if file.stat().st_size > _MAX_PROJECT_FILE_BYTES:
            raise ProjectManagementError(f"{file}: larger than 1 MB, so not a project file")
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectManagementError(
            f"{file}: no project file here; give a project directory that holds {PROJECT_FILE}",
            error_code="PROJECT_NOT_FOUND",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectManagementError(f"{file}: cannot read the project file ({exc})") from None
    try:
        data, locations = load_located_yaml(text, filename=str(file))
    except WorkflowValidationError as exc:
        raise ProjectManagementError(str(exc.problems[0]), error_code="PROJECT_FILE_INVALID") from None
    if not isinstance(data, dict):
        raise ProjectManagementError(f"{file}: the project file must hold a mapping of project fields",
                                     error_code="PROJECT_FILE_INVALID")
    data.pop("path", None)
    data.setdefault("name", None)  # a record without one is refused by name below
    problems = record_data_problems(Project, data)
    problems += _time_problems(data, skip={field for field, _ in problems})
    if problems:
        field, problem = problems[0]
        line = (locations.key(data, field) or (None,))[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ProjectManagementError(
            f"{file}{f':{line}' if line else ''}: field {field!r} {problem}{more}; fix the project file and load it again",
            error_code="PROJECT_FILE_INVALID", details={"file": str(file), "line": line, "field": field})
    project = Project.from_dict(data)
    validate_project_name(project.name)
    project.path = str(file.parent.resolve())
    return project


# Epoch seconds of 1970-01-01 and 9999-12-31: a project's times fall between, and a time
# outside cannot be shown as a date on every platform.
_EARLIEST, _LATEST = 0.0, 253402300799.0


def _time_problems(data: dict[str, object], skip: set[str]) -> list[tuple[str, str]]:
    """Return a problem for each of the project's times (not in ``skip``) out of range."""
    return [(field, "is not a time between the years 1970 and 9999 (in seconds since 1970)")
            for field in ("created_at", "updated_at")
            if field not in skip and isinstance(value := data.get(field), (int, float))
            and not _EARLIEST <= value <= _LATEST]
