"""Workflow-file commands: ``validate``, ``graph``, ``workflow list`` and ``schema``.

None of them runs anything; they read workflow files and report. Exit codes: 0 when
every file is valid, 1 when any is invalid (each problem printed as
``file:line:col: message; hint``), 2 for usage errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from core.config import RESOURCE_CONFIG_NAME, load_settings
from core.errors import ConfigError, OrchestrationError, WorkflowNotFoundError, WorkflowValidationError
from core.models import Workflow
from core.text import plural
from core.workflow_file import find_workflow_files, load_workflow, workflow_json_schema

from .common import CONTEXT_SETTINGS, EXIT_FAILED, emit_json, fail, handle_errors, json_option, os_error_message
from .workflow_target import find_workflow, locate_workflow

__all__ = ["register"]

_FILE = click.Path(dir_okay=False, path_type=Path)


def _problem_lines(exc: WorkflowValidationError) -> list[str]:
    return [str(p) for p in exc.problems] or [exc.message]


def _error_entry(path: Path, exc: WorkflowValidationError) -> dict[str, Any]:
    return {"file": str(path), "valid": False, "error": exc.message, "problems": [p.to_dict() for p in exc.problems]}


def _workflow_entry(path: Path, workflow: Workflow) -> dict[str, Any]:
    return {
        "file": str(path),
        "valid": True,
        "name": workflow.name,
        "description": workflow.description,
        "version": workflow.version,
        "steps": len(workflow.steps),
        "params": sorted(workflow.params),
    }


def _resource_config_entry(path: Path, as_json: bool) -> dict[str, Any]:
    """Check the resource config that sits among workflow files (``workflows/*.yaml``)."""
    from core.resource_config import load_resource_config

    try:
        resources = load_resource_config(path)
    except ConfigError as exc:
        if not as_json:
            click.echo(exc.message)
            click.secho(f"{path}: invalid resource config", fg="red")
        return {"file": str(path), "valid": False, "kind": "resources", "error": exc.message}
    if not as_json:
        click.secho(f"{path}: ok (resource config, {plural(len(resources), 'resource')})", fg="green")
    return {"file": str(path), "valid": True, "kind": "resources", "resources": [r.id for r in resources]}


def _resources_here() -> Any:
    """Return the check of resource requirements that a run here would make, or None
    when this machine's resource config cannot be read (``validate`` then checks
    requirements for their form only, and says why)."""
    from core.resource_manager import ResourceManager

    try:
        return ResourceManager().requirement_problem
    except OrchestrationError as exc:
        click.secho(f"warning: resource requirements not checked: {exc.message}", fg="yellow", err=True)
        return None


@click.command("validate", context_settings=CONTEXT_SETTINGS)
@click.argument("targets", nargs=-1, required=True, metavar="WORKFLOW...")
@click.option("--anywhere", is_flag=True,
              help="Skip the check of steps' resource requirements against this machine's resources "
                   "(for files meant for another machine, say in CI).")
@json_option
@handle_errors
def validate_cmd(targets: tuple[str, ...], anywhere: bool, as_json: bool) -> None:
    """Check each WORKFLOW (a file, or a name in the workflows directory) and print every problem found.

    Each problem is printed as FILE:LINE:COL: message; hint. Resource requirements
    are checked against this machine's resources (and resource config), as a run here
    would check them; --anywhere skips that. Exit code 0 when every file is valid, 1
    when any is not.
    """
    entries: list[dict[str, Any]] = []
    workflows_given = any(Path(target).name != RESOURCE_CONFIG_NAME for target in targets)
    requirement_problem = _resources_here() if workflows_given and not anywhere else None
    settings = load_settings()
    for target in targets:
        if Path(target).name == RESOURCE_CONFIG_NAME:  # a workflows directory's pools and locks
            entries.append(_resource_config_entry(Path(target), as_json))
            continue
        try:
            located = locate_workflow(target, settings, requirement_problem=requirement_problem)
        except WorkflowNotFoundError as exc:
            entries.append({"file": target, "valid": False, "error": exc.message, "problems": []})
            if not as_json:
                click.secho(f"error: {exc.message}", fg="red")
            continue
        located.say_note()
        path = located.path
        try:
            if located.error is not None:  # found invalid while looking for the name: not parsed again
                raise located.error
            workflow = located.workflow or load_workflow(path, requirement_problem=requirement_problem)
        except WorkflowValidationError as exc:
            entries.append(_error_entry(path, exc))
            if not as_json:
                for line in _problem_lines(exc):
                    click.echo(line)
                click.secho(f"{path}: invalid ({plural(len(exc.problems), 'problem')})", fg="red")
            continue
        entries.append(_workflow_entry(path, workflow))
        if not as_json:
            click.secho(f"{path}: ok ({workflow.name}, {len(workflow.steps)} steps)", fg="green")
    valid = all(e["valid"] for e in entries)
    if as_json:
        emit_json({"success": valid, "files": entries})
    if not valid:
        raise SystemExit(EXIT_FAILED)


@click.command("graph", context_settings=CONTEXT_SETTINGS)
@click.argument("target", metavar="WORKFLOW")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "levels"]), default="mermaid", show_default=True,
              help="mermaid: a Mermaid flowchart; dot: Graphviz; levels: the steps grouped by what can run in parallel.")
@click.option("--direction", type=click.Choice(["TD", "LR", "BT", "RL"]), default="TD", show_default=True,
              help="Mermaid flow direction.")
@json_option
@handle_errors
def graph_cmd(target: str, fmt: str, direction: str, as_json: bool) -> None:
    """Print the dependency graph of WORKFLOW (a file, or a name in the workflows directory).

    With --json, levels print as {"levels", "order", "critical_path", ...} and the other
    formats as {"format", "graph"}. Exit code 1 when the workflow is invalid.
    """
    try:
        workflow = find_workflow(target, load_settings())
    except WorkflowValidationError as exc:
        if as_json:
            emit_json(exc.to_error_dict())
        else:
            for line in _problem_lines(exc):
                click.secho(line, fg="red", err=True)
        raise SystemExit(EXIT_FAILED) from None
    from core.workflow_dag import WorkflowDAG  # networkx: a tenth of a second every other command need not pay

    dag = WorkflowDAG.from_workflow(workflow)
    if fmt == "levels":
        data = dag.to_dict()
        if as_json:
            emit_json({"workflow": workflow.name, **data})
            return
        for index, level in enumerate(data["levels"]):
            click.echo(f"level {index}: {', '.join(level)}")
        if data["critical_path_seconds"]:
            click.echo(f"critical path ({data['critical_path_seconds']:g} s of timeouts): {' -> '.join(data['critical_path'])}")
        return
    text = dag.to_mermaid(direction=direction) if fmt == "mermaid" else dag.to_dot(name=workflow.name)
    if as_json:
        emit_json({"workflow": workflow.name, "format": fmt, "graph": text})
    else:
        click.echo(text, nl=False)


@click.group("workflow", context_settings=CONTEXT_SETTINGS)
def workflow_group() -> None:
    """Inspect the workflows directory."""


@workflow_group.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Directory to list (default: the configured workflows directory, ./workflows).")
@json_option
@handle_errors
def list_cmd(directory: Path | None, as_json: bool) -> None:
    """List the workflow files of the workflows directory, valid or not.

    Invalid files are listed with their first problem; the exit code stays 0 because
    listing succeeded (use `orchtui validate` to fail on them).
    """
    root = directory or load_settings().workflows_dir
    if directory is not None and not directory.is_dir():
        # Only a directory asked for by name is an error; a missing default just has no files.
        fail(f"{directory}: workflows directory does not exist; check the --dir path", as_json=as_json)
    entries: list[dict[str, Any]] = []
    for path in find_workflow_files(root):
        try:
            entries.append(_workflow_entry(path, load_workflow(path)))
        except WorkflowValidationError as exc:
            entries.append(_error_entry(path, exc))
    files_of: dict[str, list[str]] = {}
    for entry in entries:
        if entry["valid"]:
            files_of.setdefault(entry["name"], []).append(Path(entry["file"]).name)
    for entry in entries:
        if entry["valid"] and len(files_of[entry["name"]]) > 1:
            # `run NAME` refuses such a name; say so here rather than let one shadow the other.
            entry["also_defined_by"] = [f for f in files_of[entry["name"]] if f != Path(entry["file"]).name]
    if as_json:
        emit_json({"success": True, "directory": str(root), "workflows": entries})
        return
    if not entries:
        click.echo(f"no workflow files in {root}")
        return
    width = max(len(e.get("name", "")) for e in entries) if entries else 0
    for entry in entries:
        if entry.get("also_defined_by"):
            click.secho(f"{entry['name']:<{width}}  {entry['steps']:>4} steps  {Path(entry['file']).name}  "
                        f"name also defined by {', '.join(entry['also_defined_by'])}: run it by file", fg="yellow")
        elif entry["valid"]:
            click.echo(f"{entry['name']:<{width}}  {entry['steps']:>4} steps  {Path(entry['file']).name}  {entry['description']}".rstrip())
        else:
            click.secho(f"{'(invalid)':<{width}}        {Path(entry['file']).name}  {entry['error']}", fg="red")


@click.command("schema", context_settings=CONTEXT_SETTINGS)
@click.option("--output", "-o", type=_FILE, help="Write the schema to this file instead of printing it.")
@handle_errors
def schema_cmd(output: Path | None) -> None:
    """Print the JSON Schema of workflow files (for yaml-language-server and other editors).

    Point an editor at it with a first line such as
    `# yaml-language-server: $schema=./orchtui.schema.json`.
    """
    text = json.dumps(workflow_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(os_error_message(exc, "cannot write the schema"))
    click.echo(f"wrote {output}")


def register(group: click.Group) -> None:
    """Add ``validate``, ``graph``, ``workflow`` and ``schema`` to ``group``."""
    for command in (validate_cmd, graph_cmd, workflow_group, schema_cmd):
        group.add_command(command)
