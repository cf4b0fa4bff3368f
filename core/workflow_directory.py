"""A workflows directory kept loaded: only the files that changed are parsed again.

The dashboard looks at its workflows directory every couple of seconds. Parsing every file again
whenever any of them changed cost 2-4 s with one 10k-step file present, on each save
of any other file. :class:`WorkflowDirectory` remembers each file's result under its
size, modification time and inode, and parses a file again only when one of them moved.

Each file's result is a :class:`LoadedFile`: its workflow, or its problems and the
name it declares (an invalid file still says which workflow it means to be, so faces
can list that name as broken instead of dropping it).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import yaml

from .errors import ValidationProblem, WorkflowValidationError
from .models import Workflow
from .workflow_file import find_workflow_files, load_workflow
from .workflow_validate import RequirementCheck

__all__ = ["LoadedFile", "WorkflowDirectory", "declared_name", "load_file"]

_TOP_LEVEL_NAME = re.compile(r"""^name:[ \t]*["']?([^"'#\s]+)""", re.MULTILINE)


def declared_name(text: str) -> str | None:
    """Return the workflow name an (invalid) file's ``text`` declares, or None.

    The top-level ``name`` of the document; when the text is not YAML at all, a
    top-level ``name:`` line still says it. Only safe loading is used.
    """
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError, ValueError):  # broken, or nested past Python's stack
        found = _TOP_LEVEL_NAME.search(text)  # the top-level line may still say
        return found.group(1) if found else None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


@dataclasses.dataclass(slots=True, frozen=True)
class LoadedFile:
    """One workflow file's result: ``workflow`` when it is valid, else ``error`` and the
    ``name`` it declares (None when it does not say)."""

    path: Path
    workflow: Workflow | None
    error: WorkflowValidationError | None = None
    name: str | None = None


def load_file(path: Path, *, requirement_problem: RequirementCheck | None = None) -> LoadedFile:
    """Return ``path`` loaded: its workflow, or its problems and declared name
    (``requirement_problem`` as for :func:`~core.workflow_file.load_workflow`).

    Never raises: whatever stops one file from loading is that file's problem, so one
    file can never keep the rest of its directory from being listed.
    """
    try:
        workflow = load_workflow(path, requirement_problem=requirement_problem)
    except WorkflowValidationError as exc:
        error = exc
    except Exception as exc:  # a loader bug or a resource limit: still this file's problem only
        error = WorkflowValidationError([ValidationProblem(
            f"cannot be loaded ({type(exc).__name__}: {exc})", str(path), hint="check the file, or report this")])
    else:
        return LoadedFile(path, workflow, None, workflow.name)
    try:
        name = declared_name(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        name = None
    return LoadedFile(path, None, error, name)


def _file_key(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


class WorkflowDirectory:
    """The workflow files of ``directory``, parsed once per version of each file.

    Not thread-safe: one thread owns it (the dashboard's catalog loader).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._known: dict[Path, tuple[tuple[int, int, int] | None, LoadedFile]] = {}
        self.parsed = 0  # files parsed so far (tests look)

    def load(self) -> list[LoadedFile]:
        """Return every workflow file's result, in file order, parsing only the files
        that are new or changed since the last call (a deleted file is forgotten).

        A file rewritten in place with the same size within the file system's time
        resolution looks unchanged; every file system Linux uses keeps nanoseconds.

        Raises:
            OSError: the directory cannot be listed.
        """
        results: list[LoadedFile] = []
        paths = find_workflow_files(self.directory)
        for path in paths:
            key = _file_key(path)
            seen = self._known.get(path)
            if seen is not None and key is not None and seen[0] == key:
                loaded = seen[1]
            else:
                loaded = load_file(path)
                self.parsed += 1
                self._known[path] = (key, loaded)
            results.append(loaded)
        for gone in set(self._known) - set(paths):
            del self._known[gone]
        return results
