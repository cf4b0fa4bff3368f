"""ProjectManager: projects made from templates, their lifecycle, and their workflows.

A project is a directory (``src/``, ``tests/``, ``config/``, ``docs/``, ``workflows/``,
README.md, AGENTS.md, SPEC.md) plus a :class:`~core.models.Project` record. The record
lives twice: in the store, so every face lists it, and in ``project.yaml`` inside the
directory, so a project copied to another machine can be loaded there
(:meth:`ProjectManager.load_project`) and registered again.

Safety rules (DESIGN.md, "names that become paths"):

* A project name is one safe path component (:func:`core.project_file.validate_project_name`).
* The project directory is resolved and must lie inside the projects directory (a
  relative ``path`` too). An absolute ``path`` is the caller's explicit choice.
* A project is built in a hidden sibling directory and renamed into place in one step;
  if anything fails on the way (template, disk, store) nothing is left behind.

Lifecycle (``update_project_status``)::

    planning  -> active | archived | failed
    active    -> paused | completed | failed | archived
    paused    -> active | archived | failed
    completed -> archived | active
    failed    -> planning | archived
    archived  -> (only through unarchive_project)
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .clock import SYSTEM_CLOCK, Clock
from .config import Settings, load_settings
from .documentation_generator import DocumentationGenerator, project_variables
from .errors import OrchestrationError, ProjectManagementError, WorkflowValidationError
from .models import Project, ProjectStatus, ProjectType, Workflow
from .project_file import read_project_file, validate_project_name, write_project_file
from .project_templates import (
    SCAFFOLD_DIRS,
    ProjectTemplate,
    ScaffoldFile,
    find_template,
    list_templates,
    render_scaffold,
    template_workflows,
)
from .text import did_you_mean, first_control, iso_utc

if TYPE_CHECKING:
    from .store import Store
    from .workflow_manager import WorkflowManager

__all__ = ["ProjectManager", "ALLOWED_TRANSITIONS", "validate_project_name"]

ALLOWED_TRANSITIONS: dict[ProjectStatus, frozenset[ProjectStatus]] = {
    ProjectStatus.PLANNING: frozenset({ProjectStatus.ACTIVE, ProjectStatus.ARCHIVED, ProjectStatus.FAILED}),
    ProjectStatus.ACTIVE: frozenset(
        {ProjectStatus.PAUSED, ProjectStatus.COMPLETED, ProjectStatus.FAILED, ProjectStatus.ARCHIVED}
    ),
    ProjectStatus.PAUSED: frozenset({ProjectStatus.ACTIVE, ProjectStatus.ARCHIVED, ProjectStatus.FAILED}),
    ProjectStatus.COMPLETED: frozenset({ProjectStatus.ARCHIVED, ProjectStatus.ACTIVE}),
    ProjectStatus.FAILED: frozenset({ProjectStatus.PLANNING, ProjectStatus.ARCHIVED}),
    ProjectStatus.ARCHIVED: frozenset(),
}


def _text_field(field: str, value: str, *, lines: bool) -> str:
    """Return ``value`` when it may be the project's ``field``: text, without control
    characters (line breaks and tabs only where ``lines``).

    Raises:
        ProjectManagementError: naming the field and the first character that is refused.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ProjectManagementError(f"the project {field} {value!r} is not valid UTF-8 text; "
                                     "give it in UTF-8", error_code="INVALID_PROJECT_FIELD") from None
    # A control character would reach README.md, project.yaml and terminals as it is.
    found = first_control(value, lines_allowed=lines)
    if found is not None:
        line_break = found in "\r\n"
        what = "a line break" if line_break else f"the control character {found!r}"
        raise ProjectManagementError(f"the project {field} {value!r} holds {what}; "
                                     + ("keep it to one line of text" if line_break else "remove it"),
                                     error_code="INVALID_PROJECT_FIELD")
    return value


class ProjectManager:
    """Creates projects from templates and tracks their lifecycle, milestones and runs.

    Args:
        projects_dir: where new projects go (default: ``Settings.projects_dir``).
        store: the :class:`~core.store.Store` that lists projects for every face (default:
            ``Store.open(settings)``, opened on first use and closed by :meth:`close`).
        templates_dir: a user templates directory that adds or overrides templates
            (default: ``Settings.templates_dir``).
        settings: directories and limits (default: :func:`core.config.load_settings`).
        workflow_manager: runs project workflows (default: one created on first use that
            records runs in ``store``, shut down by :meth:`close`).
        clock: wall-clock source for timestamps (tests pass a ManualClock).
    """

    def __init__(
        self,
        projects_dir: Path | str | None = None,
        *,
        store: Store | None = None,
        templates_dir: Path | str | None = None,
        settings: Settings | None = None,
        workflow_manager: WorkflowManager | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings or load_settings()
        self.projects_dir = Path(projects_dir) if projects_dir is not None else self.settings.projects_dir
        user_templates = templates_dir if templates_dir is not None else self.settings.templates_dir
        self.templates_dir = Path(user_templates) if user_templates is not None else None
        self.docs = DocumentationGenerator(self.templates_dir)
        self.clock = clock
        self._store = store
        self._owns_store = store is None
        self._workflow_manager = workflow_manager
        self._owns_workflow_manager = workflow_manager is None
        self._lock = threading.RLock()
        self._running: dict[str, int] = {}  # project name -> runs in flight through this manager

    # ------------------------------------------------------------------ plumbing

    @property
    def store(self) -> Store:
        """The store projects are registered in (opened on first use)."""
        with self._lock:
            if self._store is None:
                from .store import Store

                self._store = Store.open(self.settings)
            return self._store

    @property
    def workflow_manager(self) -> WorkflowManager:
        """The WorkflowManager that runs project workflows (created on first use)."""
        with self._lock:
            if self._workflow_manager is None:
                from .run_recorder import StoreRecorder
                from .workflow_manager import WorkflowManager

                # Recorded in the same store, so project runs show up in every face.
                self._workflow_manager = WorkflowManager(
                    settings=self.settings, autoload=False, observers=[StoreRecorder(self.store)]
                )
            return self._workflow_manager

    def close(self) -> None:
        """Shut down what this manager opened itself (its store, its workflow manager)."""
        with self._lock:
            if self._owns_workflow_manager and self._workflow_manager is not None:
                self._workflow_manager.shutdown()
                self._workflow_manager = None
            if self._owns_store and self._store is not None:
                self._store.close()
                self._store = None

    def __enter__(self) -> ProjectManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------- templates

    def list_templates(self) -> list[str]:
        """Return the names of the available templates (built-in and user), sorted."""
        return list_templates(self.templates_dir)

    def get_template(self, name: str) -> ProjectTemplate:
        """Return the template called ``name``.

        Raises:
            ProjectManagementError: no such template (with a did-you-mean) or a bad manifest.
        """
        return find_template(name, self.templates_dir)

    # ------------------------------------------------------------------ creation

    def _target_dir(self, name: str, path: Path | str | None) -> Path:
        """Return the resolved directory a new project goes to.

        Raises:
            ProjectManagementError: a relative path leaves the projects directory.
        """
        base = self.projects_dir.expanduser().resolve()
        chosen = Path(path).expanduser() if path is not None else Path(name)
        target = (chosen if chosen.is_absolute() else base / chosen).resolve()
        if not chosen.is_absolute() and (target == base or not target.is_relative_to(base)):
            raise ProjectManagementError(
                f"project directory {chosen} would be outside the projects directory {base}; give a path inside it or an absolute path",
                error_code="INVALID_PROJECT_PATH",
                details={"path": str(chosen), "projects_dir": str(base)},
            )
        return target

    def _template_name(self, template_name: str | None, template: str | None, type: ProjectType | str | None) -> str:
        if template_name and template and template_name != template:
            raise ProjectManagementError(
                f"template_name={template_name!r} and template={template!r} disagree; pass only one of them"
            )
        chosen = template_name if template_name is not None else template
        if chosen is not None and not str(chosen).strip():
            raise ProjectManagementError("the template name is empty; `orchtui project templates` lists them",
                                         error_code="TEMPLATE_NOT_FOUND")
        if chosen:
            return str(chosen)
        if type is not None:
            return self._project_type(type).value
        return ProjectType.CUSTOM.value

    @staticmethod
    def _project_type(value: ProjectType | str) -> ProjectType:
        try:
            return ProjectType(value)
        except ValueError:
            raise ProjectManagementError(
                f"project type {value!r} is not known; use one of {', '.join(ProjectType.choices())}"
            ) from None

    @staticmethod
    def _tags(tags: Sequence[str] | str | None) -> list[str]:
        if tags is None:
            return []
        items = [tags] if isinstance(tags, str) else list(tags)
        if not all(isinstance(t, str) and t.strip() for t in items):
            raise ProjectManagementError("project tags must be non-empty strings")
        return list(dict.fromkeys(_text_field("tag", t, lines=False).strip() for t in items))

    def create_project(
        self,
        name: str,
        template_name: str | None = None,
        path: Path | str | None = None,
        *,
        template: str | None = None,
        description: str = "",
        author: str = "",
        tags: Sequence[str] | str | None = None,
        type: ProjectType | str | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> Project:
        """Scaffold a new project from a template, register it and return it.

        The template defaults to ``type`` (each ProjectType has a template of the same
        name) and then to ``custom``. ``path`` is the project's own directory (default:
        ``<projects_dir>/<name>``). ``variables`` add to the template's placeholders.

        Raises:
            ProjectManagementError: a bad name or path, an existing project or directory,
                an unknown template, a broken template (malformed placeholder, missing
                variables, invalid workflow), or a failure writing or registering it; in
                every case nothing is left behind.
        """
        name = validate_project_name(name)
        chosen = self.get_template(self._template_name(template_name, template, type))
        if not isinstance(description, str) or not isinstance(author, str):
            raise ProjectManagementError("project description and author must be strings")
        _text_field("description", description, lines=True)
        _text_field("author", author, lines=False)
        with self._lock:
            existing = self.store.get_project(name)
            if existing is not None:
                raise ProjectManagementError(
                    f"a project named {name!r} already exists at {existing.path}; choose another name",
                    error_code="PROJECT_EXISTS",
                    details={"name": name, "path": existing.path},
                )
            target = self._target_dir(name, path)
            if target.exists() or target.is_symlink():
                raise ProjectManagementError(
                    f"{target} already exists; choose another name or --path, or register the project in it with "
                    f"`orchtui project load {target}`",
                    error_code="PROJECT_EXISTS",
                    details={"path": str(target)},
                )
            now = self.clock.time()
            project = Project(
                name=name,
                description=description.strip(),
                type=self._project_type(type) if type is not None else chosen.type,
                path=str(target),
                template=chosen.name,
                author=author.strip(),
                tags=self._tags(tags),
                version=chosen.version,
                created_at=now,
                updated_at=now,
                required_modules=list(chosen.required_modules),
                config={"variables": dict(chosen.variables) | dict(variables or {})},
            )
            project.workflows = template_workflows(chosen)  # before rendering: the docs list them
            values = dict(chosen.variables) | project_variables(project) | dict(variables or {})
            files = render_scaffold(chosen, values)
            self._build(target, files, project)
            try:
                # Insert-only: the check above is not atomic across processes, and two of
                # them creating one name in different directories must not both succeed.
                taken_at = self.store.register_project(project)
            except BaseException as exc:
                shutil.rmtree(target, ignore_errors=True)  # a project the store does not know is a stray directory
                if isinstance(exc, OrchestrationError):
                    raise ProjectManagementError(
                        f"project {name!r} could not be registered in the store ({exc}); nothing was created",
                        error_code="PROJECT_REGISTRATION_FAILED",
                    ) from exc
                raise
            if taken_at is not None:
                shutil.rmtree(target, ignore_errors=True)
                raise ProjectManagementError(
                    f"a project named {name!r} was just created at {taken_at} by another process; "
                    "choose another name (nothing was created)",
                    error_code="PROJECT_EXISTS",
                    details={"name": name, "path": taken_at},
                )
            return project

    def _build(self, target: Path, files: Sequence[ScaffoldFile], project: Project) -> None:
        """Write the project into a hidden sibling directory and rename it to ``target``.

        Raises:
            ProjectManagementError: anything failed; the partial directory is removed.
        """
        # A short prefix of the name: the sibling must fit where any name that fits does.
        partial = target.parent / f".{target.name[:100]}.partial-{uuid.uuid4().hex[:8]}"
        made_parents = [d for d in (target.parent, *target.parent.parents) if not d.exists()]
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial.mkdir()
            for sub in SCAFFOLD_DIRS:
                (partial / sub).mkdir()
            for item in files:
                destination = partial.joinpath(*item.relative.parts)
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(item.content)
                if item.executable:
                    destination.chmod(destination.stat().st_mode | 0o111)
            write_project_file(project, partial)
            if target.exists():  # someone else took the name while we were building
                raise FileExistsError(errno.EEXIST, "already exists", str(target))
            # One rename: other processes see either no project or a complete one.
            os.rename(partial, target)
        except BaseException as exc:
            shutil.rmtree(partial, ignore_errors=True)
            for directory in made_parents:  # deepest first: those this build made, if still empty
                try:
                    directory.rmdir()
                except OSError:
                    break
            if isinstance(exc, OSError):
                file = next((d for d in target.parents if d.exists() and not d.is_dir()), None)
                why = f"{file} is a file, not a directory" if file is not None else exc.strerror or str(exc)
                raise ProjectManagementError(
                    f"cannot create project {project.name!r} at {target} ({why}); nothing was left behind",
                    error_code="PROJECT_CREATE_FAILED",
                    details={"path": str(target)},
                ) from None
            raise

    # -------------------------------------------------------------- persistence

    def save_project(self, project: Project) -> bool:
        """Save ``project`` to the store and to its ``project.yaml``; return True.

        Raises:
            ProjectManagementError: the name is invalid, or a file cannot be written.
        """
        validate_project_name(project.name)
        with self._lock:
            project.updated_at = self.clock.time()
            if project.path and Path(project.path).is_dir():
                write_project_file(project, Path(project.path))
            self.store.save_project(project)
        return True

    def load_project(self, path: Path | str) -> Project:
        """Read a project from its directory (or its ``project.yaml``), register it, return it.

        A project copied from another machine takes the directory it is found in as its
        path. Loading the same directory again refreshes the store's record.

        Raises:
            ProjectManagementError: the file is missing, unreadable, not valid YAML or not
                a project record, or another directory is registered under the same name.
        """
        project = read_project_file(path)
        directory = Path(project.path)

        def may_replace(registered: str) -> bool:
            """The same directory again, or one that no longer exists (moved or deleted)."""
            return not registered or Path(registered).resolve() == directory or not Path(registered).exists()

        with self._lock:
            taken_at = self.store.register_project(project, may_replace=may_replace)
        if taken_at is not None:
            raise ProjectManagementError(
                f"a different project named {project.name!r} is registered at {taken_at}; archive or remove it first",
                error_code="PROJECT_EXISTS",
                details={"name": project.name, "path": taken_at},
            )
        return project

    # ------------------------------------------------------------------- queries

    def get_project(self, name: str) -> Project | None:
        """Return the project called ``name``, or None when there is none."""
        if not isinstance(name, str) or not name:
            return None
        return self.store.get_project(name)

    def list_projects(self, include_archived: bool = False) -> list[Project]:
        """Return the projects sorted by name; archived ones only with ``include_archived``."""
        projects = self.store.list_projects()
        if not include_archived:
            projects = [p for p in projects if p.status != ProjectStatus.ARCHIVED]
        return sorted(projects, key=lambda p: p.name)

    def require_project(self, project: Project | str) -> Project:
        """Return the current record of ``project`` (a Project or a name).

        Raises:
            ProjectManagementError: there is no such project (with a did-you-mean).
        """
        name = project.name if isinstance(project, Project) else project
        found = self.get_project(name) if isinstance(name, str) else None
        if found is None:
            known = [p.name for p in self.store.list_projects()]
            hint = did_you_mean(name, known, otherwise="`orchtui project list` shows the projects")
            raise ProjectManagementError(
                f"no project named {name!r}; {hint}",
                error_code="PROJECT_NOT_FOUND",
                details={"name": name},
            )
        return found

    def get_project_status(self, name: Project | str) -> dict[str, Any] | None:
        """Return the spec-002 status of a project, or None when there is no such project.

        Keys: name, status, type, version, path, workflows (count), active_workflows
        (runs in flight through this manager), required_modules, created_at and
        updated_at (ISO 8601), milestones (with ``achieved_at`` in ISO 8601), metrics.
        """
        project = self.get_project(name.name if isinstance(name, Project) else name)
        if project is None:
            return None
        milestones: dict[str, dict[str, Any]] = {}
        for key, value in project.milestones.items():
            milestones[key] = dict(value)
            if isinstance(value.get("achieved_at"), (int, float)):  # records written by load_project may differ
                milestones[key]["achieved_at"] = iso_utc(value["achieved_at"])
        return {
            "name": project.name,
            "status": project.status.value,
            "type": project.type.value,
            "version": project.version,
            "path": project.path,
            "workflows": len(project.workflows),
            "active_workflows": self._running.get(project.name, 0),
            "required_modules": list(project.required_modules),
            "created_at": iso_utc(project.created_at),
            "updated_at": iso_utc(project.updated_at),
            "milestones": milestones,
            "metrics": dict(project.metrics),
            "description": project.description,
            "template": project.template,
            "workflow_names": list(project.workflows),
            "tags": list(project.tags),
            "author": project.author,
        }

    # ----------------------------------------------------------------- lifecycle

    def update_project_status(self, name: Project | str, status: ProjectStatus | str) -> Project:
        """Move a project to ``status`` and return it; staying put is allowed.

        Raises:
            ProjectManagementError: unknown project or status, or a transition the
                lifecycle does not allow (an archived project needs unarchive_project).
        """
        try:
            wanted = ProjectStatus(status)
        except ValueError:
            raise ProjectManagementError(
                f"project status {status!r} is not known; use one of {', '.join(ProjectStatus.choices())}"
            ) from None
        with self._lock:
            project = self.require_project(name)
            current = project.status
            if wanted == current:
                return project
            if wanted not in ALLOWED_TRANSITIONS[current]:
                allowed = ", ".join(sorted(s.value for s in ALLOWED_TRANSITIONS[current]))
                how = "use unarchive_project first" if current == ProjectStatus.ARCHIVED else f"from {current.value} it may go to {allowed}"
                raise ProjectManagementError(
                    f"project {project.name!r} cannot go from {current.value} to {wanted.value}; {how}",
                    error_code="INVALID_TRANSITION",
                    details={"from": current.value, "to": wanted.value, "allowed": sorted(s.value for s in ALLOWED_TRANSITIONS[current])},
                )
            if wanted == ProjectStatus.ARCHIVED:
                project.metadata["status_before_archive"] = current.value
            project.status = wanted
            self.save_project(project)
            return project

    def archive_project(self, name: Project | str) -> bool:
        """Archive a project; return True when it changed, False when it was archived already.

        Raises:
            ProjectManagementError: there is no such project.
        """
        with self._lock:
            project = self.require_project(name)
            if project.status == ProjectStatus.ARCHIVED:
                return False
            self.update_project_status(project.name, ProjectStatus.ARCHIVED)
            return True

    def unarchive_project(self, name: Project | str) -> Project:
        """Bring an archived project back to the status it had before; return it.

        Raises:
            ProjectManagementError: there is no such project, or it is not archived.
        """
        with self._lock:
            project = self.require_project(name)
            if project.status != ProjectStatus.ARCHIVED:
                raise ProjectManagementError(f"project {project.name!r} is {project.status.value}, not archived; nothing to unarchive")
            previous = project.metadata.pop("status_before_archive", ProjectStatus.PLANNING.value)
            project.status = ProjectStatus(previous)
            self.save_project(project)
            return project

    def add_project_milestone(self, name: Project | str, milestone: str, data: Mapping[str, Any] | None = None) -> Project:
        """Record (or update) milestone ``milestone`` with JSON-like ``data``; return the project.

        Raises:
            ProjectManagementError: unknown or archived project, an empty or overlong
                milestone name, or data that is not a JSON-like mapping.
        """
        if not isinstance(milestone, str) or not milestone.strip() or len(milestone) > 128 or not milestone.isprintable():
            raise ProjectManagementError(
                f"milestone name {milestone!r} is not valid; give 1 to 128 printable characters"
            )
        if data is not None and not isinstance(data, Mapping):
            raise ProjectManagementError("milestone data must be a mapping such as {'quality_score': 8.5}")
        payload = dict(data) if data is not None else {}
        try:
            payload = json.loads(json.dumps(payload))
        except (TypeError, ValueError) as exc:
            raise ProjectManagementError(f"milestone data must be JSON-like (strings, numbers, lists, mappings): {exc}") from None
        with self._lock:
            project = self.require_project(name)
            if project.status == ProjectStatus.ARCHIVED:
                raise ProjectManagementError(f"project {project.name!r} is archived; unarchive it before adding milestones")
            project.milestones[milestone.strip()] = {"achieved_at": self.clock.time(), "data": payload}
            self.save_project(project)
            return project

    # ----------------------------------------------------------------- workflows

    def project_workflows(self, name: Project | str) -> dict[str, Path]:
        """Return ``{workflow name: file}`` for the workflows in the project's ``workflows/``.

        Files that do not parse are left out (running one reports its problems).

        Raises:
            ProjectManagementError: unknown project.
        """
        from .workflow_file import find_workflow_files, load_workflow

        project = self.require_project(name)
        found: dict[str, Path] = {}
        for file in find_workflow_files(Path(project.path) / "workflows"):
            try:
                found.setdefault(load_workflow(file).name, file)
            except WorkflowValidationError:
                found.setdefault(file.stem, file)
        return found

    def load_project_workflow(self, name: Project | str, workflow_name: str) -> Workflow:
        """Return the project's workflow called ``workflow_name`` (or stored in that file).

        Raises:
            ProjectManagementError: unknown project or workflow (with a did-you-mean).
            WorkflowValidationError: the workflow file is invalid.
        """
        from .workflow_file import load_workflow

        available = self.project_workflows(name)
        file = available.get(workflow_name) or next((f for f in available.values() if f.stem == workflow_name), None)
        if file is None:
            hint = did_you_mean(workflow_name, available, otherwise=f"it has: {', '.join(sorted(available)) or 'none'}")
            raise ProjectManagementError(
                f"project {self.require_project(name).name!r} has no workflow {workflow_name!r}; {hint}",
                error_code="WORKFLOW_NOT_FOUND",
                details={"workflow": workflow_name, "available": sorted(available)},
            )
        return load_workflow(file)

    @contextlib.contextmanager
    def _in_flight(self, name: str) -> Iterator[None]:
        with self._lock:
            self._running[name] = self._running.get(name, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._running[name] -= 1
                if not self._running[name]:
                    del self._running[name]

    def prepare_project_run(self, project_name: Project | str, workflow_name: str) -> tuple[Project, Workflow, Path]:
        """Check that the project can run ``workflow_name`` and return the project, the
        workflow and the directory to run it in. A planning project becomes active.

        Raises:
            ProjectManagementError: unknown or archived project, a missing project
                directory, or an unknown workflow.
            WorkflowValidationError: the workflow file is invalid.
        """
        project = self.require_project(project_name)
        if project.status == ProjectStatus.ARCHIVED:
            raise ProjectManagementError(f"project {project.name!r} is archived; unarchive it before running its workflows")
        directory = Path(project.path)
        if not directory.is_dir():
            raise ProjectManagementError(
                f"project {project.name!r} has no directory at {directory}; restore it or load it from where it is now",
                error_code="PROJECT_NOT_FOUND",
            )
        workflow = self.load_project_workflow(project, workflow_name)
        if project.status == ProjectStatus.PLANNING:
            project = self.update_project_status(project.name, ProjectStatus.ACTIVE)
        return project, workflow, directory

    def execute_project_workflow(self, project_name: Project | str, workflow_name: str, /, **params: Any) -> dict[str, Any]:
        """Run one of the project's workflows with the project directory as working directory.

        A planning project becomes active on its first run. The project's metrics count
        runs, successes and failures and remember the last run.

        Returns:
            The run's spec-002 result (``success``, ``run_id``, ``executed_steps``,
            ``failed_steps``, ``results``, ``execution_time``, ``error`` …) plus
            ``project`` and ``workflow``.

        Raises:
            ProjectManagementError: unknown or archived project, a missing project
                directory, or an unknown workflow.
            WorkflowValidationError: the workflow file is invalid or ``params`` do not fit.
        """
        project, workflow, directory = self.prepare_project_run(project_name, workflow_name)
        with self._in_flight(project.name):
            handle = self.workflow_manager.start_workflow(workflow, params, working_dir=directory)
            execution = handle.wait()
        assert execution is not None  # wait() without a timeout returns only at the end
        result = execution.to_dict()
        result.update(project=project.name, workflow=workflow.name)
        self.record_project_run(project.name, workflow.name, execution.run_id, result)
        return result

    def record_project_run(self, name: str, workflow: str, run_id: str, result: Mapping[str, Any]) -> None:
        """Count a finished run of the project's ``workflow`` in its metrics (``result``:
        the run's spec-002 result) and remember it as the last run."""
        with self._lock:
            project = self.get_project(name)
            if project is None:  # removed while it ran: nothing to update
                return
            metrics = project.metrics
            metrics["runs"] = int(metrics.get("runs", 0)) + 1
            outcome = "successful_runs" if result.get("success") else "failed_runs"
            metrics[outcome] = int(metrics.get(outcome, 0)) + 1
            metrics["total_execution_time"] = round(float(metrics.get("total_execution_time", 0.0)) + float(result.get("execution_time") or 0.0), 6)
            metrics["last_run"] = {
                "workflow": workflow,
                "run_id": run_id,
                "status": str(result.get("status", "")),
                "success": bool(result.get("success")),
                "at": iso_utc(self.clock.time()),
            }
            self.save_project(project)

    # ---------------------------------------------------------------------- docs

    def generate_docs(self, name: Project | str, variables: Mapping[str, Any] | None = None) -> list[Path]:
        """Regenerate the project's README.md, AGENTS.md and SPEC.md; return their paths.

        The template's variables stored with the project fill the placeholders as at
        creation, and as then they never override the project's own facts (its name,
        description …: :func:`project_variables`); ``variables`` override everything.

        Raises:
            ProjectManagementError: unknown project, or a template error.
        """
        project = self.require_project(name)
        stored = project.config.get("variables") if isinstance(project.config.get("variables"), dict) else {}
        facts = project_variables(project)
        kept = {key: value for key, value in stored.items() if key not in facts}
        return self.docs.generate_project_docs(project, variables=kept | dict(variables or {}))
