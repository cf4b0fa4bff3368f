"""The Projects pane: the workflows directory's workflows, then each project's workflows.

Moving the highlight onto a workflow posts :class:`~orchtui.messages.WorkflowChosen`,
which makes the Live DAG show that workflow and its latest run.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ..dashboard_model import CatalogView
from ..messages import WorkflowChosen

__all__ = ["ProjectsPane", "workflow_option_id"]


def workflow_option_id(section: str, workflow: str) -> str:
    """Return the option id of ``workflow`` listed under ``section`` (``"dir"`` or a project)."""
    return f"{section}\x1f{workflow}"


def _workflow_label(catalog: CatalogView, name: str) -> Text:
    """A workflow's row: its name and step count; a red ✖ when it cannot be run by name
    (its file is invalid, or several files declare it: the problem lines below say why)."""
    workflow = catalog.workflow(name)
    label = Text.assemble("  ", name, no_wrap=True, overflow="ellipsis")
    if workflow is not None:
        label.append(f" {len(workflow.steps)}", "dim")
    if catalog.refusal(name) is not None:
        label.append(" ✖", "red")
    return label


class ProjectsPane(OptionList):
    """A list of runnable workflows grouped by where they come from."""

    BINDINGS = [
        Binding("k", "cursor_up", "Up", show=False, id="projects.up"),
        Binding("j", "cursor_down", "Down", show=False, id="projects.down"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._catalog = CatalogView()
        self._filter = ""
        self._shown: tuple[str, ...] = ()  # what is listed now, to skip identical rebuilds

    @property
    def selected_workflow(self) -> str | None:
        """The highlighted workflow's name, or None when a heading or nothing is highlighted."""
        option = self.highlighted_option
        if option is None or option.id is None or "\x1f" not in option.id:
            return None
        return option.id.split("\x1f", 1)[1]

    def show_catalog(self, catalog: CatalogView) -> None:
        """Rebuild the list from ``catalog``, keeping the highlight on the same workflow."""
        self._catalog = catalog
        self._rebuild()

    def set_filter(self, text: str) -> None:
        """Show only workflows whose name contains ``text`` (case-insensitive)."""
        self._filter = text.lower()
        self._rebuild()

    def _rebuild(self) -> None:
        keep = self.highlighted_option.id if self.highlighted_option is not None else None
        options: list[Option] = []
        wanted = self._filter
        catalog = self._catalog
        names = [name for name in catalog.listed() if wanted in name.lower()]
        options.append(Option(Text("workflows/", style="bold"), disabled=True))
        for name in names:
            options.append(Option(_workflow_label(catalog, name), id=workflow_option_id("dir", name)))
        if not names:
            options.append(Option(Text("  (none)", style="dim"), disabled=True))
        for problem in self._catalog.problems:
            options.append(Option(Text(f"  ✖ {problem}", style="red"), disabled=True))
        for project in self._catalog.projects:
            names = [n for n in project.workflows if wanted in n.lower()]
            if wanted and not names and wanted not in project.name.lower():
                continue
            heading = Text.assemble((f"◆ {project.name}", "bold"), (f" {project.status.value}", "dim"), no_wrap=True, overflow="ellipsis")
            options.append(Option(heading, disabled=True))
            for name in names:
                options.append(Option(Text(f"  {name}", no_wrap=True, overflow="ellipsis"), id=workflow_option_id(project.name, name)))
        shown = tuple(f"{o.id}\x1e{o.prompt}" for o in options)
        if shown == self._shown:
            return
        self._shown = shown
        self.set_options(options)
        ids = [o.id for o in options]
        if keep is not None and keep in ids:
            self.highlighted = ids.index(keep)
        else:
            self.highlighted = next((i for i, o in enumerate(options) if not o.disabled), None)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        workflow = self.selected_workflow
        if workflow is not None:
            self.post_message(WorkflowChosen(workflow))
