"""What a command's WORKFLOW argument names: a workflow file, or a workflow of the workflows directory.

``orchtui run``, ``validate``, ``graph`` and ``docs`` take either. A path (it exists, or
it ends in ``.yaml``/``.yml``/``.json``, or holds a ``/``) is the file. Otherwise the
argument is a workflow name (or a file's stem) in the workflows directory. A name that
two files define is an error naming both: running one of them silently, as the first
version did, ran whichever sorted first.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from core.config import Settings
from core.errors import WorkflowNotFoundError, WorkflowValidationError
from core.models import Workflow

__all__ = ["workflow_file_for", "find_workflow"]

_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def _looks_like_a_file(target: str) -> bool:
    """True when ``target`` must be a path (a workflow file suffix or a directory separator)."""
    return Path(target).suffix.lower() in _FILE_SUFFIXES or "/" in target


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def workflow_file_for(target: str, settings: Settings) -> Path:
    """Return the workflow file ``target`` names (see the module docstring).

    Raises:
        WorkflowNotFoundError: see :func:`_locate`.
    """
    return _locate(target, settings)[0]


def _locate(target: str, settings: Settings) -> tuple[Path, Workflow | None]:
    """Return the file ``target`` names, and its workflow when finding it loaded it already.

    Raises:
        WorkflowNotFoundError: neither a file nor a workflow of that name exists (with a
            did-you-mean), or two files define that name (``WORKFLOW_AMBIGUOUS``), valid or not.
        WorkflowValidationError: the one file that declares the name is invalid.
    """
    from core.workflow_directory import declared_name
    from core.workflow_file import ambiguous_name_error, find_workflow_files, load_workflow

    path = Path(target)
    if path.exists() or path.is_symlink():
        if _looks_like_a_file(target) or not path.is_dir():  # a bare word naming a directory here is a name
            return path, None  # loading says what is wrong with anything but a regular file
    elif _looks_like_a_file(target):
        raise WorkflowNotFoundError(f"{target}: no such workflow file; give a .yaml/.json file or a workflow name")
    directory = settings.workflows_dir
    files = find_workflow_files(directory) if directory.is_dir() else []
    by_stem = next((file for file in files if file.stem == target), None)
    # Only files that mention the name can define it: parsing every file of a large
    # directory to run one workflow would cost seconds. An invalid file that declares the
    # name counts: running another file's workflow of that name instead would run the
    # wrong one without a word (its problems are reported when it is the only one).
    defining: list[tuple[Path, Workflow | None, WorkflowValidationError | None]] = []
    for file in files:
        text = _read_text(file)
        if file is by_stem or target in text:
            try:
                workflow = load_workflow(file)
            except WorkflowValidationError as exc:
                if declared_name(text) == target:
                    defining.append((file, None, exc))
                continue
            if workflow.name == target:
                defining.append((file, workflow, None))
    if len(defining) > 1:
        raise ambiguous_name_error(target, [file for file, _, _ in defining], directory)
    if defining:
        file, workflow, problem = defining[0]
        if problem is not None:
            raise problem
        return file, workflow
    if by_stem is not None:  # a file stem that holds another name (or an invalid file: loading says why)
        return by_stem, None
    names = sorted({file.stem for file in files} | _names_in(files))
    close = difflib.get_close_matches(target, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(names) or 'none'}"
    raise WorkflowNotFoundError(
        f"no workflow file or workflow named '{target}' in {directory}{hint}",
        suggestions=[f"did you mean '{close[0]}'?"] if close else ["`orchtui workflow list` shows the workflows"],
    )


def _names_in(files: list[Path]) -> set[str]:
    """The workflow names of the valid ``files`` (for a did-you-mean; only on the error path)."""
    from core.workflow_file import load_workflow

    names: set[str] = set()
    for file in files:
        try:
            names.add(load_workflow(file).name)
        except WorkflowValidationError:
            continue
    return names


def find_workflow(target: str, settings: Settings) -> Workflow:
    """Load the workflow ``target`` names (see :func:`workflow_file_for`).

    Raises:
        WorkflowNotFoundError: see :func:`workflow_file_for`.
        WorkflowValidationError: the file is invalid.
    """
    from core.workflow_file import load_workflow

    path, workflow = _locate(target, settings)
    return workflow if workflow is not None else load_workflow(path)
