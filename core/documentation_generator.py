"""Documentation from templates: a project's RASP set and a Markdown page per workflow.

Templates use ``{{variable}}`` placeholders (whitespace inside the braces is allowed:
``{{ project_name }}``). Rendering is plain substitution: nothing is ever evaluated.
``{{{{`` and ``}}}}`` stand for a literal ``{{`` and ``}}``, so a document can show the
placeholder syntax itself. A template that uses a variable nobody supplied fails with
one error that lists every missing name, and a malformed placeholder (an unclosed
``{{``, ``{{ two words }}``) fails with its line and column, before anything is written.

The RASP set is the three documents every project carries: ``README.md`` (what it is
and how to use it), ``AGENTS.md`` (how agents and people work on it) and ``SPEC.md``
(what it must do).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .atomic_file import write_text_atomic
from .errors import ProjectManagementError
from .models import Project, Workflow

__all__ = [
    "DOC_FILES",
    "BUILTIN_TEMPLATES_DIR",
    "TemplateError",
    "Placeholder",
    "DocumentationGenerator",
    "find_placeholders",
    "render_template",
    "project_variables",
]

# The RASP documentation set, in the order it is generated.
DOC_FILES: tuple[str, ...] = ("README.md", "AGENTS.md", "SPEC.md")

BUILTIN_TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Order matters: the escapes win over a placeholder, and a bare "{{" is only reported
# when no complete placeholder starts there.
_TOKEN = re.compile(r"\{\{\{\{|\}\}\}\}|\{\{(?P<body>[^{}\n]*?)\}\}|\{\{")


class TemplateError(ProjectManagementError):
    """A template cannot be rendered: malformed placeholders or missing variables.

    ``details`` holds ``source`` and either ``missing`` (every missing variable name)
    or ``problems`` (every malformed placeholder with its line and column).
    """

    error_code = "TEMPLATE_ERROR"


@dataclasses.dataclass(slots=True, frozen=True)
class Placeholder:
    """One ``{{name}}`` in a template, located by 1-based line and column."""

    name: str
    line: int
    column: int


def _location(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _scan(text: str, source: str) -> list[tuple[re.Match[str], Placeholder | None]]:
    """Tokenise ``text``: every escape and placeholder match, in order.

    Raises:
        TemplateError: a ``{{`` is unclosed or does not hold a single variable name.
    """
    tokens: list[tuple[re.Match[str], Placeholder | None]] = []
    problems: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token in ("{{{{", "}}}}"):
            tokens.append((match, None))
            continue
        line, column = _location(text, match.start())
        body = match.group("body")
        if body is None:
            problems.append(f"{source}:{line}:{column}: '{{{{' is not closed by '}}}}' on the same line")
            continue
        name = body.strip()
        if not _NAME.match(name):
            problems.append(f"{source}:{line}:{column}: '{{{{{body}}}}}' must hold one variable name, like '{{{{ project_name }}}}'")
            continue
        tokens.append((match, Placeholder(name, line, column)))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise TemplateError(
            f"template syntax error at {problems[0]}{more}; write '{{{{{{{{' for a literal '{{{{'",
            details={"source": source, "problems": problems},
            suggestions=["close every '{{' with '}}' around one variable name", "write '{{{{' for a literal '{{'"],
        )
    return tokens


def find_placeholders(text: str, *, source: str = "<template>") -> list[Placeholder]:
    """Return every placeholder of ``text`` in order of appearance.

    Raises:
        TemplateError: the template has a malformed placeholder.
    """
    return [ph for _, ph in _scan(text, source) if ph is not None]


def _as_text(value: Any) -> str:
    """How a variable's value appears in a document: lists as a comma-separated list."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(_as_text(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def render_template(text: str, variables: Mapping[str, Any], *, source: str = "<template>") -> str:
    """Return ``text`` with every ``{{name}}`` replaced by ``variables[name]``.

    Values are inserted as text (lists joined with ``", "``, ``None`` as nothing); they
    are never evaluated and placeholders inside a value are not expanded again.

    Raises:
        TemplateError: a placeholder is malformed, or variables are missing (the error
            lists every missing name, sorted, in ``details["missing"]``).
    """
    tokens = _scan(text, source)
    missing = sorted({ph.name for _, ph in tokens if ph is not None and ph.name not in variables})
    if missing:
        raise TemplateError(
            f"{source} uses variable{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            "that nobody supplied; add them to the template's variables or pass them in",
            details={"source": source, "missing": missing},
            suggestions=[f"supply a value for {name!r}" for name in missing],
        )
    parts: list[str] = []
    last = 0
    for match, ph in tokens:
        parts.append(text[last:match.start()])
        parts.append(match.group(0)[:2] if ph is None else _as_text(variables[ph.name]))
        last = match.end()
    parts.append(text[last:])
    return "".join(parts)


def project_variables(project: Project) -> dict[str, Any]:
    """Return the variables every project template may use.

    ``project_name``, ``project_title`` (words capitalised), ``description``,
    ``author``, ``type``, ``template``, ``version``, ``status``, ``tags``,
    ``workflows``, ``required_modules``, ``created_date`` (ISO date) and ``year``.
    """
    created = _dt.datetime.fromtimestamp(project.created_at, tz=_dt.timezone.utc)
    title = re.sub(r"[-_.]+", " ", project.name).strip().title() or project.name
    return {
        "project_name": project.name,
        "project_title": title,
        "description": project.description or f"The {title} project.",
        "author": project.author or "unknown",
        "type": project.type.value,
        "template": project.template,
        "version": project.version,
        "status": project.status.value,
        "tags": list(project.tags) or ["none"],
        "workflows": list(project.workflows) or ["none"],
        "required_modules": list(project.required_modules) or ["none"],
        "created_date": created.date().isoformat(),
        "year": created.year,
    }


def _cell(value: Any) -> str:
    """Text safe inside one Markdown table cell (pipes escaped, one line)."""
    text = _as_text(value) if not isinstance(value, str) else value
    text = " ".join(text.split())
    return text.replace("\\", "\\\\").replace("|", "\\|") or " "


def _same_file(one: Path, other: Path) -> bool:
    try:
        return one.samefile(other)
    except OSError:
        return False  # one of them does not exist (yet)


def _code(value: Any) -> str:
    """A default value shown as inline JSON in a table cell (blank when there is none)."""
    if value is None:
        return " "
    return _code_span(json.dumps(value, ensure_ascii=False, default=str))


def _code_span(text: str) -> str:
    """``text`` as a Markdown code span that shows it exactly, also inside a table cell.

    Inside a code span backslashes are literal, so only ``|`` is escaped (a GFM table
    reads ``\\|`` before the span); a span fenced with more backticks than the longest
    run in ``text`` holds backticks; line breaks become spaces (a span is one line).
    """
    text = " ".join(text.splitlines()).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest else ""  # so a backtick at either end is not read as the fence
    return f"{fence}{pad}{text}{pad}{fence}"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#+!|~-])")


def _plain(value: Any) -> str:
    """``value`` as one line of Markdown text that shows it as written: no formatting,
    HTML or line break can come of it."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(_as_text(value).split()))


class DocumentationGenerator:
    """Renders documentation templates for projects and workflows.

    Args:
        templates_dir: a user templates directory searched before the built-in one for a
            project's doc templates (``<templates_dir>/<template>/README.md`` …).
    """

    def __init__(self, templates_dir: Path | str | None = None) -> None:
        self.templates_dir = Path(templates_dir) if templates_dir else None

    # ------------------------------------------------------------- plain templates

    def render_template(self, text: str, variables: Mapping[str, Any], *, source: str = "<template>") -> str:
        """Return ``text`` rendered with ``variables``; see :func:`render_template`."""
        return render_template(text, variables, source=source)

    def render_file(self, path: Path, variables: Mapping[str, Any]) -> str:
        """Return the template file at ``path`` rendered with ``variables``.

        Raises:
            TemplateError: malformed placeholders or missing variables.
            ProjectManagementError: the file cannot be read as UTF-8 text.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProjectManagementError(f"{path}: cannot read the template ({exc}); check that it is UTF-8 text") from None
        return render_template(text, variables, source=str(path))

    # ------------------------------------------------------------------ projects

    def doc_templates_dir(self, template: str) -> Path:
        """Return the directory whose README/AGENTS/SPEC templates serve ``template``.

        The user templates directory wins, then the built-in template of that name, then
        the built-in ``custom`` template.
        """
        candidates = [self.templates_dir / template] if self.templates_dir else []
        candidates += [BUILTIN_TEMPLATES_DIR / template, BUILTIN_TEMPLATES_DIR / "custom"]
        for directory in candidates:
            if all((directory / name).is_file() for name in DOC_FILES):
                return directory
        return BUILTIN_TEMPLATES_DIR / "custom"

    def render_project_docs(
        self,
        project: Project,
        *,
        template_dir: Path | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> dict[str, str]:
        """Return ``{file name: rendered text}`` for the project's RASP documents.

        Everything is rendered before anything is written, so a bad template costs
        nothing. ``variables`` add to (and override) :func:`project_variables`.

        Raises:
            TemplateError: a document template is malformed or misses variables.
        """
        directory = template_dir or self.doc_templates_dir(project.template)
        values = project_variables(project) | dict(variables or {})
        return {name: self.render_file(directory / name, values) for name in DOC_FILES}

    def generate_project_docs(
        self,
        project: Project,
        output_dir: Path | str | None = None,
        *,
        template_dir: Path | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> list[Path]:
        """Write README.md, AGENTS.md and SPEC.md for ``project`` and return their paths.

        ``output_dir`` defaults to the project's directory.

        Raises:
            TemplateError: a document template is malformed or misses variables.
            ProjectManagementError: there is no output directory, or it cannot be written.
        """
        target = Path(output_dir) if output_dir is not None else Path(project.path) if project.path else None
        if target is None:
            raise ProjectManagementError(f"project {project.name!r} has no directory; pass output_dir to generate its documentation")
        documents = self.render_project_docs(project, template_dir=template_dir, variables=variables)
        written: list[Path] = []
        try:
            target.mkdir(parents=True, exist_ok=True)
            for name, text in documents.items():
                path = target / name
                write_text_atomic(path, text)
                written.append(path)
        except OSError as exc:
            raise ProjectManagementError(f"{target}: cannot write the documentation ({exc.strerror or exc})") from None
        return written

    # ----------------------------------------------------------------- workflows

    def workflow_markdown(self, workflow: Workflow) -> str:
        """Return a Markdown page for ``workflow``.

        It holds the description, a parameters table, a step table (action, what it
        waits for, timeout, retries, priority) and the Mermaid graph of the steps.

        Raises:
            DAGValidationError: the steps do not form a DAG (the graph cannot be drawn).
        """
        from .workflow_dag import WorkflowDAG  # networkx is only needed for this page

        lines = [f"# Workflow `{workflow.name}`", ""]
        lines += [workflow.description.strip() or "_No description._", ""]
        facts = [f"**Version:** {_plain(workflow.version)}", f"**Steps:** {len(workflow.steps)}"]
        if workflow.tags:
            facts.append(f"**Tags:** {_plain(workflow.tags)}")
        if workflow.source_path:
            facts.append(f"**File:** {_code_span(str(workflow.source_path))}")
        lines += ["  \n".join(facts), ""]
        lines += self._params_section(workflow)
        lines += self._steps_section(workflow)
        dag = WorkflowDAG.from_workflow(workflow)
        lines += ["## Graph", "", "```mermaid", dag.to_mermaid().rstrip("\n"), "```", ""]
        return "\n".join(lines)

    def generate_workflow_docs(self, workflow: Workflow, output_path: Path | str) -> Path:
        """Write :meth:`workflow_markdown` to ``output_path`` and return the path.

        Raises:
            ProjectManagementError: the file cannot be written.
        """
        path = Path(output_path)
        if workflow.source_path and _same_file(path, Path(workflow.source_path)):
            raise ProjectManagementError(f"{path} is the file of workflow {workflow.name!r} itself; write its "
                                         "documentation to another file (a .md one)", error_code="DOCS_OVERWRITE")
        text = self.workflow_markdown(workflow)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, text)
        except OSError as exc:
            raise ProjectManagementError(f"{path}: cannot write the workflow documentation ({exc.strerror or exc})") from None
        return path

    @staticmethod
    def _params_section(workflow: Workflow) -> list[str]:
        lines = ["## Parameters", ""]
        if not workflow.params:
            return lines + ["_This workflow takes no parameters._", ""]
        lines += ["| name | type | default | required | description |", "|---|---|---|---|---|"]
        for name, param in workflow.params.items():
            choices = f" (one of {', '.join(map(str, param.choices))})" if param.choices else ""
            lines.append(
                f"| {_code_span(name)} | {_cell(param.type)} | {_code(param.default)} | "
                f"{'yes' if param.required else 'no'} | {_cell(param.description + choices)} |"
            )
        return lines + [""]

    @staticmethod
    def _steps_section(workflow: Workflow) -> list[str]:
        lines = ["## Steps", ""]
        if not workflow.steps:
            return lines + ["_This workflow has no steps._", ""]
        lines += [
            "| # | step | action | after | timeout | retries | priority | description |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for number, step in enumerate(workflow.steps, start=1):
            after = ", ".join(_code_span(d) for d in step.dependencies) or "—"
            timeout = f"{step.timeout:g} s" if step.timeout is not None else "—"
            lines.append(
                f"| {number} | {_code_span(step.name)} | {_code_span(f'{step.module}.{step.action}')} | {after} | "
                f"{timeout} | {step.max_retries} | {step.priority.label} | {_cell(step.description)} |"
            )
        return lines + [""]
