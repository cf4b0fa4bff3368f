"""Forms: a workflow's parameters before a run, and a new project.

Values are typed in as text and converted the way the CLI converts ``-p key=value``
(``core.workflow_params``), so the dashboard and the CLI accept exactly the same input.
A problem is shown inside the form; the form stays open until the input is valid or
the user cancels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import yaml
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from rich.text import Text
from textual.widgets import Button, Input, Label, Select, Static

from core.errors import OrchestrationError
from core.models import ProjectType, Workflow
from core.workflow_params import coerce_cli_params, resolve_params

__all__ = ["ParamFormScreen", "CreateProjectScreen", "ProjectRequest", "param_text"]


def param_text(value: Any) -> str:
    """Return how a default value is pre-filled in the form (YAML flow style for lists/maps)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return str(value)


class _FormScreen(ModalScreen[Any]):
    """What both forms share: Enter in a field or the primary button submits, Esc or
    the other button cancels (dismissing with None).

    Subclasses name their primary button in ``SUBMIT_BUTTON`` and define ``_result``:
    it returns what the form dismisses with, or raises ``OrchestrationError`` whose
    message is then shown in the form (which stays open).
    """

    SUBMIT_BUTTON: ClassVar[str] = ""
    _result: Callable[[], Any]

    def action_submit(self) -> None:
        try:
            result = self._result()
        except OrchestrationError as exc:
            error = self.query_one("#form-error", Static)
            error.update(Text(exc.message))  # it quotes what was typed: "[/x]" is no markup
            error.add_class("-shown")
            return
        self.dismiss(result)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == self.SUBMIT_BUTTON:
            self.action_submit()
        else:
            self.action_cancel()


class ParamFormScreen(_FormScreen):
    """Asks for ``workflow``'s parameters, pre-filled with their defaults.

    Dismisses with the resolved parameters (defaults merged, values typed), or None.
    """

    SUBMIT_BUTTON = "form-run"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
        Binding("ctrl+s", "submit", "Run", id="form.submit"),
    ]

    def __init__(self, workflow: Workflow) -> None:
        super().__init__()
        self.workflow = workflow

    def compose(self) -> ComposeResult:
        with Vertical(id="param-form", classes="dialog"):
            yield Label(f"Run [b]{self.workflow.name}[/b]", classes="dialog-title")
            with VerticalScroll(id="param-fields"):
                if not self.workflow.params:
                    yield Static("This workflow takes no parameters.", classes="dim")
                for index, (name, param) in enumerate(self.workflow.params.items()):
                    hint = param.type + (", required" if param.required else "")
                    if param.choices:
                        hint += ", one of " + ", ".join(param_text(c) for c in param.choices)
                    yield Label(Text.assemble(name, " ", (f"({hint})", "dim"),
                                              f" — {param.description}" if param.description else ""))
                    yield Input(param_text(param.default), id=f"param-{index}", classes="param-input")
            yield Static("", id="form-error", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Run (enter)", variant="primary", id="form-run")
                yield Button("Cancel (esc)", id="form-cancel")

    def on_mount(self) -> None:
        inputs = self.query(Input)
        (inputs.first() if inputs else self.query_one("#form-run", Button)).focus()

    def _result(self) -> dict[str, Any]:
        pairs = []
        for index, (name, param) in enumerate(self.workflow.params.items()):
            # widget ids are by position: parameter names need not be valid CSS identifiers
            value = self.query_one(f"#param-{index}", Input).value
            if value != "":  # an empty field gives nothing: a required parameter is then missing
                pairs.append(f"{name}={value}")
        return resolve_params(self.workflow, coerce_cli_params(self.workflow, pairs))


@dataclasses.dataclass(slots=True, frozen=True)
class ProjectRequest:
    """What the create-project form returns."""

    name: str
    template: str = ProjectType.CUSTOM.value
    description: str = ""


class CreateProjectScreen(_FormScreen):
    """Asks for a new project's name, template and description, and creates it with
    ``create``; dismisses with what that returns. What ``create`` refuses (a bad or taken
    name, say) is shown in the form, which keeps what was typed."""

    SUBMIT_BUTTON = "form-create"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="project_form.cancel")]

    def __init__(self, name: str = "", templates: Sequence[str] = (),
                 create: Callable[[ProjectRequest], Any] = lambda request: request) -> None:
        super().__init__()
        self._initial_name = name
        self._create = create
        # The built-in ones and the user's (templates_dir), as `orchtui project templates` lists them.
        self._templates = list(templates) or [t.value for t in ProjectType]

    def compose(self) -> ComposeResult:
        with Vertical(id="project-form", classes="dialog"):
            yield Label("Create project", classes="dialog-title")
            yield Label("name")
            yield Input(self._initial_name, id="project-name", placeholder="letters, digits, - and _")
            yield Label("template")
            default = ProjectType.CUSTOM.value if ProjectType.CUSTOM.value in self._templates else self._templates[0]
            yield Select([(t, t) for t in self._templates], value=default, id="project-template", allow_blank=False)
            yield Label("description")
            yield Input("", id="project-description")
            yield Static("", id="form-error", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create (enter)", variant="primary", id="form-create")
                yield Button("Cancel (esc)", id="form-cancel")

    def on_mount(self) -> None:
        self.query_one("#project-name", Input).focus()

    def _result(self) -> Any:
        name = self.query_one("#project-name", Input).value.strip()
        if not name:
            raise OrchestrationError("Give the project a name.")
        return self._create(ProjectRequest(
            name=name,
            template=str(self.query_one("#project-template", Select).value),
            description=self.query_one("#project-description", Input).value.strip(),
        ))
