"""Project templates: finding them, reading their manifest, rendering their files.

A template is a directory holding ``template.yaml`` (the manifest) and the files a new
project starts with: ``src/``, ``tests/``, ``config/``, ``docs/``, the documentation set
(``README.md``, ``AGENTS.md``, ``SPEC.md``) and ``workflows/``. The built-in templates
live in ``core/templates/`` (one per :class:`~core.models.ProjectType`); a user
templates directory (setting ``templates_dir``) adds templates and overrides built-in
ones of the same name.

Text files are rendered with ``{{variable}}`` placeholders
(:mod:`core.documentation_generator`), except under ``workflows/``: there ``{{ ... }}``
is a run-time reference (``{{ params.x }}``, ``{{ step.output }}``), so workflow files are
copied as they are. Files that are not UTF-8 text are copied byte for byte.

Everything is read, rendered and checked in memory first (:func:`render_scaffold`), so a
broken template fails before a single file of the new project is written.

Manifest keys: ``description`` (required), ``type`` (a ProjectType value; default: the
template's name when it is one, else ``custom``), ``version``, ``required_modules``,
``workflows`` (names of the workflows the project starts with; default: every workflow
under ``workflows/``) and ``variables`` (defaults for the placeholders).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from .documentation_generator import BUILTIN_TEMPLATES_DIR, DOC_FILES, TemplateError, find_placeholders, render_template
from .errors import ProjectManagementError, WorkflowValidationError
from .models import ProjectType
from .text import did_you_mean

__all__ = [
    "MANIFEST_FILE",
    "PROJECT_FILE",
    "SCAFFOLD_DIRS",
    "ProjectTemplate",
    "ScaffoldFile",
    "list_templates",
    "find_template",
    "load_template",
    "render_scaffold",
    "template_workflows",
]

MANIFEST_FILE = "template.yaml"
# Written by the project manager into every project; a template may not ship its own.
PROJECT_FILE = "project.yaml"
SCAFFOLD_DIRS: tuple[str, ...] = ("src", "tests", "config", "docs", "workflows")
WORKFLOWS_DIR = "workflows"
_WORKFLOW_SUFFIXES = (".yaml", ".yml", ".json")
_MANIFEST_KEYS = ("description", "type", "version", "required_modules", "workflows", "variables")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TEMPLATE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
# Editor and interpreter droppings that must not end up in a new project.
_IGNORED_NAMES = frozenset({"__pycache__", ".DS_Store", ".git", ".pytest_cache", ".mypy_cache"})
_IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", "~")
_MAX_TEMPLATE_BYTES = 50 * 1024 * 1024


@dataclasses.dataclass(slots=True)
class ProjectTemplate:
    """A template directory and what its manifest says about it."""

    name: str
    path: Path
    description: str
    type: ProjectType
    version: str = "0.1.0"
    required_modules: list[str] = dataclasses.field(default_factory=list)
    workflows: list[str] = dataclasses.field(default_factory=list)
    variables: dict[str, Any] = dataclasses.field(default_factory=dict)
    builtin: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return the template as plain data (for ``--json`` and the MCP tools)."""
        return {
            "name": self.name,
            "path": str(self.path),
            "description": self.description,
            "type": self.type.value,
            "version": self.version,
            "required_modules": list(self.required_modules),
            "workflows": list(self.workflows),
            "variables": dict(self.variables),
            "builtin": self.builtin,
        }


@dataclasses.dataclass(slots=True, frozen=True)
class ScaffoldFile:
    """One file of a new project: where it goes, its bytes, whether it is executable."""

    relative: PurePosixPath
    content: bytes
    executable: bool = False


# ------------------------------------------------------------------- discovery


def _template_dirs(user_dir: Path | None) -> dict[str, tuple[Path, bool]]:
    """Return ``{name: (directory, builtin)}``; user templates override built-in ones."""
    found: dict[str, tuple[Path, bool]] = {}
    roots = [(BUILTIN_TEMPLATES_DIR, True)]
    if user_dir is not None and Path(user_dir).is_dir():
        roots.append((Path(user_dir), False))
    for root, builtin in roots:
        for entry in sorted(root.iterdir()):
            if entry.is_dir() and _TEMPLATE_NAME.match(entry.name) and (entry / MANIFEST_FILE).is_file():
                found[entry.name] = (entry, builtin)
    return found


def list_templates(user_dir: Path | None = None) -> list[str]:
    """Return the names of every available template, sorted."""
    return sorted(_template_dirs(user_dir))


def find_template(name: str, user_dir: Path | None = None) -> ProjectTemplate:
    """Return the template called ``name`` (a user template wins over a built-in one).

    Raises:
        ProjectManagementError: there is no such template (with a did-you-mean), or its
            manifest is invalid.
    """
    known = _template_dirs(user_dir)
    key = str(name).strip()
    if key not in known and key.lower().replace("-", "_") in known:
        key = key.lower().replace("-", "_")  # "web-application" means web_application
    if key not in known:
        hint = did_you_mean(key, known, otherwise=f"available: {', '.join(sorted(known))}")
        raise ProjectManagementError(
            f"unknown project template {name!r}; {hint}",
            error_code="TEMPLATE_NOT_FOUND",
            details={"template": name, "available": sorted(known)},
            suggestions=[f"use one of: {', '.join(sorted(known))}"],
        )
    directory, builtin = known[key]
    return load_template(directory, builtin=builtin)


def _manifest_error(path: Path, problem: str) -> ProjectManagementError:
    return ProjectManagementError(
        f"{path}: {problem}",
        error_code="TEMPLATE_INVALID",
        details={"manifest": str(path)},
        suggestions=[f"fix {path.name}; keys: {', '.join(_MANIFEST_KEYS)}"],
    )


def _string_list(path: Path, data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _manifest_error(path, f"'{key}' must be a list of non-empty strings")
    return list(value)


def load_template(directory: Path, *, builtin: bool = False) -> ProjectTemplate:
    """Read and check the manifest of the template in ``directory``.

    Raises:
        ProjectManagementError: the manifest is missing, not YAML, or has unknown keys or
            values of the wrong type (every message names the file).
    """
    path = Path(directory) / MANIFEST_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _manifest_error(path, f"cannot read the template manifest ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise _manifest_error(path, "the template manifest is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise _manifest_error(path, f"the template manifest is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise _manifest_error(path, "the template manifest must be a mapping with at least 'description'")
    unknown = sorted(set(map(str, data)) - set(_MANIFEST_KEYS))
    if unknown:
        hint = did_you_mean(unknown[0], _MANIFEST_KEYS, sep="; ")
        raise _manifest_error(path, f"unknown manifest key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}{hint}")
    description = data.get("description")
    if not isinstance(description, str) or not description.strip():
        raise _manifest_error(path, "'description' is required and must be a non-empty string")
    name = Path(directory).name
    raw_type = data.get("type", name if name in ProjectType.choices() else ProjectType.CUSTOM.value)
    try:
        project_type = ProjectType(raw_type)
    except ValueError:
        raise _manifest_error(path, f"'type' is {raw_type!r}; use one of {', '.join(ProjectType.choices())}") from None
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise _manifest_error(path, "'variables' must be a mapping of name to default value")
    bad = sorted(str(k) for k in variables if not isinstance(k, str) or not _IDENTIFIER.match(k))
    if bad:
        raise _manifest_error(path, f"variable name{'s' if len(bad) > 1 else ''} {', '.join(bad)} must be identifiers")
    version = data.get("version", "0.1.0")
    if not isinstance(version, (str, int, float)) or isinstance(version, bool):
        raise _manifest_error(path, "'version' must be a string such as '0.1.0'")
    return ProjectTemplate(
        name=name,
        path=Path(directory),
        description=description.strip(),
        type=project_type,
        version=str(version),
        required_modules=_string_list(path, data, "required_modules"),
        workflows=_string_list(path, data, "workflows"),
        variables=dict(variables),
        builtin=builtin,
    )


# ------------------------------------------------------------------- rendering


def _ignored(name: str) -> bool:
    return name in _IGNORED_NAMES or name.endswith(_IGNORED_SUFFIXES)


def _template_files(template: ProjectTemplate) -> list[tuple[PurePosixPath, Path]]:
    """Return ``(relative path, source)`` of every file the template ships, sorted.

    Raises:
        ProjectManagementError: the template holds a symlink or special file, a file
            called project.yaml at its top, or more than 50 MB.
    """
    files: list[tuple[PurePosixPath, Path]] = []
    total = 0
    for root, dirs, names in os.walk(template.path, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not _ignored(d))
        base = Path(root)
        for entry in [base / d for d in dirs] + [base / n for n in sorted(names) if not _ignored(n)]:
            relative = PurePosixPath(entry.relative_to(template.path).as_posix())
            if entry.is_symlink():
                # A link could pull in (or point the new project at) anything on the machine.
                raise ProjectManagementError(
                    f"template {template.name!r} contains a symbolic link ({relative}); templates may only hold regular files",
                    error_code="TEMPLATE_INVALID",
                )
            if entry.is_dir():
                continue
            if not entry.is_file():
                raise ProjectManagementError(
                    f"template {template.name!r} contains {relative}, which is not a regular file; remove it",
                    error_code="TEMPLATE_INVALID",
                )
            if str(relative) == MANIFEST_FILE:
                continue
            if str(relative) == PROJECT_FILE:
                raise ProjectManagementError(
                    f"template {template.name!r} ships its own {PROJECT_FILE}, which orchtui writes itself; remove it",
                    error_code="TEMPLATE_INVALID",
                )
            total += entry.stat().st_size
            files.append((relative, entry))
    if total > _MAX_TEMPLATE_BYTES:
        raise ProjectManagementError(
            f"template {template.name!r} holds {total // (1024 * 1024)} MB of files, more than the 50 MB a template may have",
            error_code="TEMPLATE_INVALID",
        )
    return files


def _is_workflow_file(relative: PurePosixPath) -> bool:
    return relative.parts[0] == WORKFLOWS_DIR and relative.suffix in _WORKFLOW_SUFFIXES


def template_workflows(template: ProjectTemplate) -> list[str]:
    """Parse and validate the template's workflow files; return the workflow names.

    The names come in the manifest's order when it lists them, then the others.

    Raises:
        ProjectManagementError: a workflow is invalid, or the manifest names a workflow
            the template does not have.
    """
    from .workflow_file import parse_workflow_text  # the workflow parser pulls in the schema tables

    names: list[str] = []
    files: dict[str, str] = {}  # workflow name -> the file that declares it
    for relative, source in _template_files(template):
        if not _is_workflow_file(relative):
            continue
        try:
            workflow = parse_workflow_text(source.read_bytes().decode("utf-8", errors="replace"), filename=f"{template.name}/{relative}")
        except WorkflowValidationError as exc:
            raise ProjectManagementError(
                f"template {template.name!r} ships an invalid workflow: {exc.message}",
                error_code="TEMPLATE_INVALID",
                details=exc.details,
                suggestions=exc.suggestions,
            ) from None
        if workflow.name in files:
            # A project runs its workflows by name: one of the two could never be run.
            raise ProjectManagementError(
                f"template {template.name!r} ships two workflows named {workflow.name!r}: {files[workflow.name]} "
                f"and {relative}; rename one",
                error_code="TEMPLATE_INVALID",
            )
        files[workflow.name] = str(relative)
        names.append(workflow.name)
    unknown = [w for w in template.workflows if w not in names]
    if unknown:
        raise ProjectManagementError(
            f"template {template.name!r} lists workflow {', '.join(unknown)} in {MANIFEST_FILE} but "
            f"{WORKFLOWS_DIR}/ holds {', '.join(names) or 'none'}",
            error_code="TEMPLATE_INVALID",
        )
    return list(template.workflows) + [w for w in names if w not in template.workflows]


def render_scaffold(template: ProjectTemplate, variables: Mapping[str, Any]) -> list[ScaffoldFile]:
    """Read and render every file of ``template`` and return them; nothing is written.

    Every UTF-8 text file outside ``workflows/`` is rendered with ``variables``;
    workflow files and binary files are kept byte for byte.

    Raises:
        TemplateError: a placeholder is malformed, or variables are missing; the error
            lists every missing name over all files (``details["missing"]``) and the
            files that use them (``details["files"]``).
        ProjectManagementError: the template lacks a documentation file, or holds a
            symlink, a special file or its own project.yaml.
    """
    sources = _template_files(template)
    shipped = {str(rel) for rel, _ in sources}
    lacking = [doc for doc in DOC_FILES if doc not in shipped]
    if lacking:
        raise ProjectManagementError(
            f"template {template.name!r} lacks {', '.join(lacking)}; every template ships README.md, AGENTS.md and SPEC.md",
            error_code="TEMPLATE_INVALID",
        )
    texts: dict[PurePosixPath, str] = {}
    raw: dict[PurePosixPath, bytes] = {}
    missing: dict[str, list[str]] = {}
    for relative, source in sources:
        data = source.read_bytes()
        raw[relative] = data
        if _is_workflow_file(relative):
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # binary: copied byte for byte
        texts[relative] = text
        for placeholder in find_placeholders(text, source=f"{template.name}/{relative}"):
            if placeholder.name not in variables:
                users = missing.setdefault(placeholder.name, [])
                if str(relative) not in users:
                    users.append(str(relative))
    if missing:
        names = sorted(missing)
        files = sorted({f for fs in missing.values() for f in fs})
        raise TemplateError(
            f"template {template.name!r} uses variable{'s' if len(names) > 1 else ''} {', '.join(names)} "
            f"(in {', '.join(files)}) that nobody supplied; give each a default under 'variables' in {MANIFEST_FILE}",
            details={"template": template.name, "missing": names, "files": files},
            suggestions=[f"add '{name}' to the template's variables or pass it in" for name in names],
        )
    files = []
    for relative, source in sources:
        content = raw[relative]
        if relative in texts:
            text = texts[relative]
            if relative.suffix in (".yaml", ".yml"):
                text = _yaml_whole_values(text, variables)
            content = render_template(text, variables, source=f"{template.name}/{relative}").encode("utf-8")
        files.append(ScaffoldFile(relative, content, executable=bool(source.stat().st_mode & 0o111)))
    return files


# ``key: {{ name }}`` or ``- {{ name }}``: a placeholder that is a whole YAML value (maybe
# followed by a comment), which :func:`_yaml_whole_values` renders as a YAML scalar.
_WHOLE_YAML_VALUE = re.compile(
    r"^(?P<lead>[ \t]*(?:-[ \t]+|[^\s#][^#\n]*?:[ \t]+))\{\{[ \t]*(?P<name>[A-Za-z_][A-Za-z0-9_]*)[ \t]*\}\}"
    r"(?P<rest>[ \t]*(?:#.*)?)$",
    re.MULTILINE,
)


def _yaml_whole_values(text: str, variables: Mapping[str, Any]) -> str:
    """Render each placeholder that is a whole value of YAML ``text`` so that the file
    reads back the variable's value, of its type: a string that YAML would take for
    something else (``true``, ``0x1F``, ``*/5 * * * *``, a line break) is quoted; a
    number stays a number. Other placeholders are left to :func:`render_template`."""

    def scalar(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in variables:
            return match.group(0)  # render_template reports it
        return f"{match.group('lead')}{_yaml_scalar(variables[name])}{match.group('rest')}"

    return _WHOLE_YAML_VALUE.sub(scalar, text)


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, str):
        if value and "\n" not in value:
            try:
                if yaml.safe_load(f"k: {value}") == {"k": value}:
                    return value  # plain, as the template author wrote it
            except yaml.YAMLError:
                pass
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted one
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)  # JSON is YAML flow style
    return yaml.safe_dump(value).split("\n", 1)[0]  # null, true, 8080, 0.5, .nan
