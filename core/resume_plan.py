"""Planning a resume (or a rerun) of a stored run: which steps run, with which definition.

Resume semantics are at-least-once. A resume is a new run (its ``parent_run_id`` is the
run it continues) that takes over the committed outputs of the steps that completed
and runs everything else:

* :func:`plan_resume`: failed, cancelled, interrupted, skipped and pending steps run
  again, and so does every step downstream of one of them; the other completed steps
  keep their committed outputs and do not run.
* :func:`plan_rerun_from`: the named step and everything downstream of it run again;
  the other completed steps keep their outputs.

A step whose completion was committed is never run again by a resume (unless a step
upstream of it runs again, which only ``continue_on_failure`` or ``--from`` allow). A
step that finished but whose completion had not been committed when the process died
(the last ~50 ms) runs again: design steps to tolerate that.

Which definition: by default the snapshot stored with the run, so a resume does what
the run set out to do. After fixing the workflow file (the usual reason a run failed),
pass the file's current definition (:func:`current_definition`, ``resume --reload``):
steps it adds run, steps it drops are gone, and completed steps it changed keep their
outputs (``rerun --from STEP --reload`` runs them again). :func:`definition_changes`
says what differs, so the CLI can tell the user that the file moved on.

Parameters: the run's own, unless the caller overrides some (``resume -p``). Those
reach only the steps that run; :func:`kept_steps_using` names the reused steps that
were made with the old values.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import StoreError
from .models import Workflow, WorkflowStatus
from .process_tree import process_alive
from .store import Store, already_resumed
from .templating import find_references

if TYPE_CHECKING:
    from .store_records import RunRecord

__all__ = ["plan_resume", "plan_rerun_from", "current_definition", "definition_changes", "file_changes",
           "params_for", "kept_steps_using", "reused_origin"]

Plan = tuple[Workflow, dict[str, Any], dict[str, Any]]


def _resumable(store: Store, run_id: str) -> tuple[RunRecord, Workflow]:
    """Return the run and its workflow snapshot, checking it may be resumed now.

    Raises:
        StoreError: no such run, it still runs in a live process, a later run already
            resumed it, or its workflow snapshot cannot be read.
    """
    run = store.get_run(run_id)
    if run is None:
        raise StoreError(f"no run {run_id!r} in {store.db_path}; list runs with `orchtui runs`",
                         error_code="RUN_NOT_FOUND")
    if not run.status.is_terminal and process_alive(run.owner_pid, run.owner_started_at):
        raise StoreError(f"run {run_id} is still running (pid {run.owner_pid} on {run.host}); "
                         "wait for it to end or cancel it first", error_code="RUN_ACTIVE")
    children = store.resumed_by(run_id)
    if children:
        raise already_resumed(run_id, children[0])
    if run.definition is None:
        raise StoreError(f"run {run_id} stored a workflow this orchtui cannot read; upgrade orchtui")
    return run, run.definition


def _downstream(workflow: Workflow, roots: Iterable[str]) -> set[str]:
    """Return ``roots`` and every step that depends on one of them, directly or not."""
    dependents: dict[str, list[str]] = {s.name: [] for s in workflow.steps}
    for step in workflow.steps:
        for dep in step.dependencies:
            if dep in dependents:
                dependents[dep].append(step.name)
    found: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in found:
            continue
        found.add(name)
        stack.extend(dependents.get(name, ()))
    return found


def _committed(store: Store, run_id: str, workflow: Workflow) -> dict[str, Any]:
    """The committed outputs of ``run_id``'s completed steps that ``workflow`` still has."""
    names = set(workflow.step_names)
    return {name: output for name, output in store.committed_outputs(run_id).items() if name in names}


def params_for(run: RunRecord, workflow: Workflow) -> tuple[dict[str, Any], list[str]]:
    """Return the parameters to resume ``run`` with under ``workflow``, and the ones dropped.

    The store keeps a run's parameters with the defaults filled in. Under the stored
    definition they are used as they are. Under a reloaded one, a value equal to the old
    default counts as not given (the new default applies), and a parameter the new
    definition no longer declares is dropped (named in the second list).
    """
    params = dict(run.params)
    stored = run.definition
    if stored is None or workflow is stored:
        return params, []
    given = {name: value for name, value in params.items()
             if name not in stored.params or value != stored.params[name].default}
    if not workflow.params:  # declares none: takes anything
        return given, []
    dropped = sorted(name for name in given if name not in workflow.params)
    return {name: value for name, value in given.items() if name in workflow.params}, dropped


def kept_steps_using(workflow: Workflow, preset: Iterable[str], changed: Iterable[str]) -> list[str]:
    """Return the steps of ``preset`` (reused, not run) whose parameters or conditions
    refer to a parameter in ``changed``, in workflow order.

    A resume with a new parameter value runs only the steps that have not completed:
    these kept outputs were made with the old value, and the caller should say so.
    """
    kept, names = set(preset), set(changed)
    return [step.name for step in workflow.steps if step.name in kept and any(
        ref.kind == "params" and ref.name in names
        for ref in find_references([step.parameters, step.conditions]))]


def plan_resume(store: Store, run_id: str, *, definition: Workflow | None = None) -> Plan:
    """Plan the resume of run ``run_id``: ``(workflow, params, preset_outputs)``.

    ``preset_outputs`` holds the committed output of each completed step that need not
    run again; every other step (failed, cancelled, interrupted, skipped, pending, and
    anything downstream of those) runs. Pass the three to
    ``WorkflowManager.start_workflow(workflow, params, preset_outputs=...)``.

    Args:
        definition: The workflow to run instead of the stored snapshot (see
            :func:`current_definition`); its steps that the run never completed run.

    Raises:
        StoreError: the run is unknown, still running, already resumed, or completed.
    """
    run, stored = _resumable(store, run_id)
    workflow = definition or stored
    committed = _committed(store, run_id, workflow)
    if run.status is WorkflowStatus.COMPLETED and set(workflow.step_names) <= set(stored.step_names):
        raise StoreError(f"run {run_id} completed: nothing to resume; "
                         f"`orchtui rerun {run_id} --from STEP` runs steps again", error_code="RUN_COMPLETED")
    again = _downstream(workflow, [s for s in workflow.step_names if s not in committed])
    preset = {name: output for name, output in committed.items() if name not in again}
    return workflow, params_for(run, workflow)[0], preset


def plan_rerun_from(store: Store, run_id: str, step: str, *, definition: Workflow | None = None) -> Plan:
    """Plan running ``step`` of run ``run_id`` and everything downstream of it again.

    Returns ``(workflow, params, preset_outputs)`` like :func:`plan_resume`; the other
    completed steps keep their committed outputs. ``definition`` as for :func:`plan_resume`.

    Raises:
        StoreError: the run is unknown, still running or already resumed, or it has no
            step of that name.
    """
    run, recorded = _resumable(store, run_id)
    workflow = definition or recorded
    if step not in workflow.step_names:
        close = difflib.get_close_matches(step, workflow.step_names, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; its steps: {', '.join(workflow.step_names)}"
        if definition is not None and step in recorded.step_names:  # the reloaded file dropped it, not the run
            source = definition.source_path or "the workflow file"
            raise StoreError(f"the reloaded workflow ({source}) has no step {step!r}, though run {run_id} had it"
                             f"{hint}; rerun without --reload to use the run's own definition",
                             error_code="STEP_NOT_FOUND")
        raise StoreError(f"run {run_id} has no step {step!r}{hint}", error_code="STEP_NOT_FOUND")
    again = _downstream(workflow, [step])
    preset = {name: output for name, output in _committed(store, run_id, workflow).items() if name not in again}
    return workflow, params_for(run, workflow)[0], preset


def _source_file(run: RunRecord) -> Path | None:
    """The run's workflow file, or None when it came from none (or the path was stored relative).

    Runs recorded before the store kept absolute paths hold a path relative to a working
    directory nobody recorded; read from here it could name another project's file.
    """
    source = run.definition.source_path if run.definition is not None else None
    if not source or source.startswith("<") or not Path(source).is_absolute():  # "<mcp>": not a file
        return None
    return Path(source)


def current_definition(run: RunRecord) -> Workflow:
    """Return the workflow as its file defines it now, for resuming ``run`` with it.

    Raises:
        StoreError: the run's workflow came from no file (MCP, Python), the file is
            gone, or it now defines another workflow (``DEFINITION_UNAVAILABLE``).
        WorkflowValidationError: the file does not validate any more (problems located).
    """
    from .workflow_file import load_workflow

    file = _source_file(run)
    if file is None:
        raise StoreError(f"run {run.run_id}'s workflow was not read from a file orchtui can find again "
                         "(it came from MCP or Python, or was recorded with a relative path); "
                         "resume without --reload", error_code="DEFINITION_UNAVAILABLE")
    if not file.is_file():
        raise StoreError(f"run {run.run_id}'s workflow file {file} no longer exists; resume without --reload",
                         error_code="DEFINITION_UNAVAILABLE")
    workflow = load_workflow(file)
    if run.definition is not None and workflow.name != run.definition.name:
        raise StoreError(f"{file} now defines workflow {workflow.name!r}, not {run.definition.name!r}; "
                         "resume without --reload", error_code="DEFINITION_UNAVAILABLE")
    return workflow


def definition_changes(stored: Workflow, current: Workflow) -> list[str]:
    """Return what ``current`` changes of ``stored``, one phrase each (empty when nothing).

    Compares the steps (added, removed, changed) and the declared parameters.
    """
    before = {step.name: step.to_dict() for step in stored.steps}
    after = {step.name: step.to_dict() for step in current.steps}
    changes = [f"step {name!r} added" for name in after if name not in before]
    changes += [f"step {name!r} removed" for name in before if name not in after]
    changes += [f"step {name!r} changed" for name in after if name in before and after[name] != before[name]]
    if {n: p.to_dict() for n, p in stored.params.items()} != {n: p.to_dict() for n, p in current.params.items()}:
        changes.append("parameters changed")
    return changes


def file_changes(run: RunRecord) -> tuple[Path, list[str]] | None:
    """Return the run's workflow file and what it changes of the stored definition, or None.

    None when the run came from no file, the file is gone or invalid, or nothing changed:
    a notice, never an error.
    """
    from .errors import WorkflowValidationError

    file = _source_file(run)
    if run.definition is None or file is None or not file.is_file():
        return None
    try:
        current = current_definition(run)
    except StoreError:
        return file, ["it now defines another workflow"]
    except WorkflowValidationError:
        return file, ["it no longer validates"]
    changes = definition_changes(run.definition, current)
    return (file, changes) if changes else None


def reused_origin(store: Store, run: RunRecord, step: str) -> tuple[str, bool]:
    """Return the run that ran ``step`` of ``run``, and whether it is still stored.

    A resume names only its parent as the source of a reused step (``reused_from``), and
    the parent may itself have reused it: this follows the chain back to the run that
    ran the step, whose log is the step's. False once a run of the chain was pruned
    (its logs went with it); then the run named is that pruned one. A step ``run`` did
    not reuse is its own.
    """
    origin = run.steps[step].reused_from
    seen = {run.run_id}
    while origin is not None and origin not in seen:  # ``seen``: a corrupt chain must not loop
        seen.add(origin)
        earlier = store.get_run(origin)
        if earlier is None or step not in earlier.steps:
            return origin, False
        if earlier.steps[step].reused_from is None:
            return origin, True
        origin = earlier.steps[step].reused_from
    return origin or run.run_id, True
