"""Command palette providers (``:`` or ``ctrl+p``): run a workflow, open a run, create a project.

Each provider reads the dashboard's latest immutable state, so searching never touches
the core directly.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape

from core.text import terminal_safe

if TYPE_CHECKING:
    from .app import OrchTUIApp

__all__ = ["RunWorkflowCommands", "OpenRunCommands", "CreateProjectCommands"]

_MAX_RUN_HITS = 200


class _DashboardProvider(Provider):
    @property
    def dashboard(self) -> OrchTUIApp:
        return cast("OrchTUIApp", self.app)


class RunWorkflowCommands(_DashboardProvider):
    """``Run workflow <name>``: opens the parameter form for that workflow."""

    def _commands(self) -> list[tuple[str, str, str]]:
        catalog = self.dashboard.model.state.catalog
        return [
            (f"Run workflow {w.name}", w.name, w.description or f"{len(w.steps)} steps")
            for w in catalog.workflows
        ]

    async def discover(self) -> Hits:
        for text, name, help_text in self._commands():
            yield DiscoveryHit(Content(text), partial(self.dashboard.request_run, name), help=escape(terminal_safe(help_text)))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, name, help_text in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(self.dashboard.request_run, name), text=text,
                          help=escape(terminal_safe(help_text)))


class OpenRunCommands(_DashboardProvider):
    """``Open run <id> <workflow> <status>``: shows that run in the Live DAG."""

    def _commands(self) -> list[tuple[str, str, str]]:
        runs = self.dashboard.model.state.runs[:_MAX_RUN_HITS]
        return [(f"Open run {r.run_id} {r.workflow} ({r.status.value})", r.run_id, r.error) for r in runs]

    async def discover(self) -> Hits:
        for text, run_id, help_text in self._commands()[:10]:
            yield DiscoveryHit(Content(text), partial(self.dashboard.open_run, run_id), help=escape(terminal_safe(help_text)) or None)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, run_id, help_text in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(self.dashboard.open_run, run_id), text=text,
                          help=escape(terminal_safe(help_text)) or None)


class CreateProjectCommands(_DashboardProvider):
    """``Create project …``: opens the project form (pre-filled with any name typed after it)."""

    async def discover(self) -> Hits:
        yield DiscoveryHit("Create project …", self.dashboard.request_create_project, help="a new project from a template")

    async def search(self, query: str) -> Hits:
        text = "Create project …"
        matcher = self.matcher(query)
        score = matcher.match(text)
        lowered = query.lower()
        prefix = "create project "
        name = query[len(prefix):].strip() if lowered.startswith(prefix) else ""
        if name:
            label = f"Create project {name}"
            yield Hit(1.0, Content(label), partial(self.dashboard.request_create_project, name), text=label)
        elif score > 0:
            yield Hit(score, matcher.highlight(text), self.dashboard.request_create_project, text=text)
