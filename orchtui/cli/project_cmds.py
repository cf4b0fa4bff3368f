"""``orchtui project …`` (create, list, status, archive, milestone, templates) and ``orchtui docs``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from core.config import load_settings
from core.errors import ProjectManagementError
from core.models import Project

from .common import CONTEXT_SETTINGS, emit_json, handle_errors, json_option

__all__ = ["register"]


@contextmanager
def _manager() -> Iterator[Any]:
    """A ProjectManager on this directory's settings, closed when the command ends."""
    from core.project_manager import ProjectManager

    manager = ProjectManager(settings=load_settings())
    try:
        yield manager
    finally:
        manager.close()


def _summary(project: Project) -> dict[str, Any]:
    return {
        "name": project.name,
        "status": project.status.value,
        "type": project.type.value,
        "template": project.template,
        "path": project.path,
        "workflows": list(project.workflows),
        "tags": list(project.tags),
        "description": project.description,
    }


@click.group("project", context_settings=CONTEXT_SETTINGS)
def project_group() -> None:
    """Create projects from templates and track their lifecycle.

    \b
    Projects live in ./projects by default (setting projects_dir); each holds
    src/, tests/, config/, docs/, workflows/, README.md, AGENTS.md, SPEC.md and
    project.yaml.
    """


@project_group.command("create", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.option("--template", "-t", "template", default="custom", show_default=True,
              help="Template to start from (`orchtui project templates` lists them).")
@click.option("--path", "path", type=click.Path(path_type=Path), default=None,
              help="Project directory (default: <projects_dir>/NAME; relative paths stay inside projects_dir).")
@click.option("--description", "-d", default="", help="One line saying what the project is for.")
@click.option("--author", "-a", default="", help="Who owns the project.")
@click.option("--tag", "tags", multiple=True, help="A tag; repeat for several.")
@json_option
@handle_errors
def create_cmd(name: str, template: str, path: Path | None, description: str, author: str, tags: tuple[str, ...], as_json: bool) -> None:
    """Create project NAME from a template."""
    with _manager() as manager:
        project = manager.create_project(name, template, path, description=description, author=author, tags=list(tags))
    if as_json:
        emit_json({"success": True, "project": _summary(project)})
        return
    click.echo(f"created project {project.name} ({project.template}) at {project.path}")
    if project.workflows:
        click.echo(f"workflows: {', '.join(project.workflows)}")


@project_group.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--all", "include_archived", is_flag=True, help="Include archived projects.")
@json_option
@handle_errors
def list_cmd(include_archived: bool, as_json: bool) -> None:
    """List the projects (archived ones with --all)."""
    with _manager() as manager:
        projects = manager.list_projects(include_archived=include_archived)
    if as_json:
        emit_json({"success": True, "projects": [_summary(p) for p in projects]})
        return
    if not projects:
        click.echo("no projects yet; create one with `orchtui project create NAME --template T`")
        return
    width = max(len(p.name) for p in projects)
    for p in projects:
        click.echo(f"{p.name:<{width}}  {p.status.value:<9}  {p.type.value:<15}  {', '.join(p.workflows) or '-'}  {p.path}")


@project_group.command("status", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@json_option
@handle_errors
def status_cmd(name: str, as_json: bool) -> None:
    """Show project NAME: status, workflows, milestones, metrics."""
    with _manager() as manager:
        manager.require_project(name)  # an unknown name gets the error with a did-you-mean
        status = manager.get_project_status(name) or {}
    if as_json:
        emit_json({"success": True, **status})
        return
    click.echo(f"{status['name']}: {status['status']} ({status['type']}, version {status['version']})")
    click.echo(f"  path:       {status['path']}")
    click.echo(f"  workflows:  {', '.join(status['workflow_names']) or '-'}")
    click.echo(f"  modules:    {', '.join(status['required_modules']) or '-'}")
    click.echo(f"  created:    {status['created_at']}   updated: {status['updated_at']}")
    for milestone, info in status["milestones"].items():
        data = json.dumps(info.get("data", {}), ensure_ascii=False)
        click.echo(f"  milestone:  {milestone} at {info.get('achieved_at')} {data}")
    if status["metrics"]:
        click.echo(f"  metrics:    {json.dumps(status['metrics'], ensure_ascii=False)}")


@project_group.command("load", context_settings=CONTEXT_SETTINGS)
@click.argument("path", type=click.Path(path_type=Path))
@json_option
@handle_errors
def load_cmd(path: Path, as_json: bool) -> None:
    """Register the project in directory PATH (its project.yaml): one copied here, say.

    The directory it is found in becomes its path; loading it again refreshes the record.
    """
    with _manager() as manager:
        project = manager.load_project(path)
    if as_json:
        emit_json({"success": True, "project": project.to_dict()})
        return
    click.echo(f"registered project {project.name} at {project.path}")


@project_group.command("archive", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@json_option
@handle_errors
def archive_cmd(name: str, as_json: bool) -> None:
    """Archive project NAME (its files stay; `project list --all` still shows it)."""
    with _manager() as manager:
        changed = manager.archive_project(name)
    if as_json:
        emit_json({"success": True, "name": name, "archived": True, "changed": changed})
        return
    click.echo(f"archived project {name}" if changed else f"project {name} was already archived")


@project_group.command("milestone", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.argument("milestone")
@click.option("--data", "data", default=None, help="""Milestone data as a JSON object, e.g. '{"score": 8.5}'.""")
@json_option
@handle_errors
def milestone_cmd(name: str, milestone: str, data: str | None, as_json: bool) -> None:
    """Record MILESTONE for project NAME."""
    payload: Any = None
    if data is not None:
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise ProjectManagementError(f"--data is not valid JSON ({exc}); give an object such as '{{\"score\": 8.5}}'") from None
        if not isinstance(payload, dict):
            raise ProjectManagementError("--data must be a JSON object such as '{\"score\": 8.5}'")
    with _manager() as manager:
        project = manager.add_project_milestone(name, milestone, payload)
    recorded = project.milestones[milestone.strip()]
    if as_json:
        emit_json({"success": True, "name": project.name, "milestone": milestone.strip(), "data": recorded["data"]})
        return
    click.echo(f"recorded milestone {milestone.strip()} for project {project.name}")


@project_group.command("templates", context_settings=CONTEXT_SETTINGS)
@json_option
@handle_errors
def templates_cmd(as_json: bool) -> None:
    """List the project templates (built-in and from templates_dir)."""
    templates = []
    broken: dict[str, str] = {}  # a template whose manifest cannot be read hides no other
    with _manager() as manager:
        for name in manager.list_templates():
            try:
                templates.append(manager.get_template(name))
            except ProjectManagementError as exc:
                broken[name] = exc.message
    if as_json:
        emit_json({"success": True, "templates": [t.to_dict() for t in templates],
                   "broken": [{"name": name, "error": error} for name, error in broken.items()]})
        return
    width = max(len(name) for name in [*(t.name for t in templates), *broken])
    for t in templates:
        origin = "" if t.builtin else "  (user)"
        click.echo(f"{t.name:<{width}}  {t.description}{origin}")
    for name, error in broken.items():
        click.echo(f"{name:<{width}}  (broken: {error})")


@click.command("docs", context_settings=CONTEXT_SETTINGS)
@click.argument("target", metavar="WORKFLOW")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the Markdown here instead of printing it.")
@click.option("--force", is_flag=True, help="Replace an existing workflow file (.yaml, .yml, .json) with -o.")
@json_option
@handle_errors
def docs_cmd(target: str, output: Path | None, force: bool, as_json: bool) -> None:
    """Write a Markdown page for WORKFLOW (a file, or a name in the workflows directory):
    description, parameters, steps, Mermaid graph."""
    from core.documentation_generator import DocumentationGenerator
    from core.errors import ProjectManagementError
    from core.workflow_file import WORKFLOW_SUFFIXES

    from .workflow_target import find_workflow

    generator = DocumentationGenerator()
    workflow = find_workflow(target, load_settings())
    if output is not None and not force and output.suffix.lower() in WORKFLOW_SUFFIXES and output.exists():
        raise ProjectManagementError(f"{output} exists and looks like a workflow file; write the documentation to "
                                     "a .md file, or pass --force to replace it", error_code="DOCS_OVERWRITE")
    if output is not None:
        path = generator.generate_workflow_docs(workflow, output)
        if as_json:
            emit_json({"success": True, "workflow": workflow.name, "output": str(path)})
        else:
            click.echo(f"wrote {path}")
        return
    text = generator.workflow_markdown(workflow)
    if as_json:
        emit_json({"success": True, "workflow": workflow.name, "markdown": text})
    else:
        click.echo(text, nl=False)


def register(group: click.Group) -> None:
    """Add ``project`` and ``docs`` to the ``orchtui`` command group."""
    group.add_command(project_group)
    group.add_command(docs_cmd)
