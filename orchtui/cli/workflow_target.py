"""What a command's WORKFLOW argument names: a workflow file, or a workflow of the workflows directory.

``orchtui run``, ``validate``, ``graph`` and ``docs`` take either. A path (it exists, or
it ends in ``.yaml``/``.yml``/``.json``, or holds a ``/``) is the file. Otherwise the
argument is a workflow name (or a file's stem) in the workflows directory. A name that
two files define is an error naming both: running one of them silently, as the first
version did, ran whichever sorted first.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import TYPE_CHECKING

import click

from core.config import Settings
from core.errors import WorkflowNotFoundError, WorkflowValidationError
from core.models import Workflow

if TYPE_CHECKING:
    from core.workflow_validate import RequirementCheck

__all__ = ["LocatedWorkflow", "find_workflow", "locate_workflow", "workflow_file_for"]

_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def _looks_like_a_file(target: str) -> bool:
    """True when ``target`` must be a path (a workflow file suffix or a directory separator)."""
    return Path(target).suffix.lower() in _FILE_SUFFIXES or "/" in target


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


@dataclasses.dataclass(slots=True, frozen=True)
class LocatedWorkflow:
    """Where a WORKFLOW argument led: the file, and what finding it learnt of it.

    ``workflow`` is the file's workflow when finding it loaded it already, ``error`` its
    problems when it is invalid (both None: not loaded yet). ``note`` is one line worth
    telling the user (a file named like the argument holds another workflow).
    """

    path: Path
    workflow: Workflow | None = None
    error: WorkflowValidationError | None = None
    note: str = ""

    def say_note(self) -> None:
        """Print the note on stderr, when there is one."""
        if self.note:
            click.echo(f"note: {self.note}", err=True)


def workflow_file_for(target: str, settings: Settings) -> Path:
    """Return the workflow file ``target`` names (see the module docstring).

    Raises:
        WorkflowNotFoundError: see :func:`locate_workflow`.
    """
    located = locate_workflow(target, settings)
    located.say_note()
    return located.path


def locate_workflow(target: str, settings: Settings, *,
                    requirement_problem: RequirementCheck | None = None) -> LocatedWorkflow:
    """Return the file ``target`` names, with its workflow or problems when finding it
    loaded it (``requirement_problem`` as for ``load_workflow``).

    Raises:
        WorkflowNotFoundError: neither a file nor a workflow of that name exists (with a
            did-you-mean), or two files define that name (``WORKFLOW_AMBIGUOUS``), valid or not.
    """
    from core.workflow_directory import load_file
    from core.workflow_file import ambiguous_name_error, find_workflow_files

    path = Path(target)
    if path.exists() or path.is_symlink():
        if _looks_like_a_file(target) or not path.is_dir():  # a bare word naming a directory here is a name
            return LocatedWorkflow(path)  # loading says what is wrong with anything but a regular file
    elif _looks_like_a_file(target):
        raise WorkflowNotFoundError(f"{target}: no such workflow file; give a .yaml/.json file or a workflow name")
    directory = settings.workflows_dir
    files = find_workflow_files(directory) if directory.is_dir() else []
    by_stem = next((file for file in files if file.stem == target), None)
    stem_result: LocatedWorkflow | None = None
    # Only files that mention the name can define it: parsing every file of a large
    # directory to run one workflow would cost seconds. An invalid file that declares the
    # name counts: running another file's workflow of that name instead would run the
    # wrong one without a word (its problems are reported when it is the only one).
    defining: list[LocatedWorkflow] = []
    for file in files:
        if file is by_stem or target in _read_text(file):
            loaded = load_file(file, requirement_problem=requirement_problem)
            result = LocatedWorkflow(file, loaded.workflow, loaded.error)
            if loaded.name == target:  # the workflow's name, or the one an invalid file declares
                defining.append(result)
            elif file is by_stem:
                stem_result = result
    if len(defining) > 1:
        raise ambiguous_name_error(target, [found.path for found in defining], directory)
    if defining:
        found = defining[0]
        if stem_result is None:
            return found
        named = f"workflow '{stem_result.workflow.name}'" if stem_result.workflow is not None else "no valid workflow"
        return dataclasses.replace(found, note=(
            f"{stem_result.path.name} holds {named}; '{target}' is the workflow of {found.path.name} "
            f"(give {stem_result.path} to use that file)"))
    if stem_result is not None:  # a file stem that holds another name (or an invalid file)
        return stem_result
    names = sorted({file.stem for file in files} | _names_in(files))
    close = difflib.get_close_matches(target, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(names) or 'none'}"
    raise WorkflowNotFoundError(
        f"no workflow file or workflow named '{target}' in {directory}{hint}",
        suggestions=[f"did you mean '{close[0]}'?"] if close else ["`orchtui workflow list` shows the workflows"],
    )


def _names_in(files: list[Path]) -> set[str]:
    """The workflow names ``files`` declare, valid or not (for a did-you-mean; only on the
    error path). Read, not validated: a name is a name even in a file with problems,
    which running it then reports."""
    from core.workflow_directory import declared_name

    return {name for file in files if (name := declared_name(_read_text(file))) is not None}


def find_workflow(target: str, settings: Settings) -> Workflow:
    """Load the workflow ``target`` names (see :func:`locate_workflow`).

    Raises:
        WorkflowNotFoundError: see :func:`locate_workflow`.
        WorkflowValidationError: the file is invalid.
    """
    from core.workflow_file import load_workflow

    located = locate_workflow(target, settings)
    located.say_note()
    if located.error is not None:
        raise located.error
    return located.workflow if located.workflow is not None else load_workflow(located.path)
