"""Messages the dashboard's panes send upward to the app.

Panes never reach into each other: a pane posts one of these and the app decides what
the other panes show. Textual messages are plain ``@dataclass`` subclasses of
``Message`` (not ``slots=True``: ``Message`` declares its own ``__slots__`` and sets
its attributes in ``__post_init__``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # the DAG widget imports this module
    from core.models import Workflow

    from .widgets.dag_view import DagLayout, DagModel

__all__ = ["WorkflowChosen", "RunChosen", "NodeHighlighted", "NodeOpened", "FilterChanged", "GraphBuilt"]


@dataclass
class WorkflowChosen(Message):
    """The Projects pane highlighted a workflow (by name)."""

    workflow: str


@dataclass
class RunChosen(Message):
    """The Runs pane highlighted (or opened, ``opened=True``) a run."""

    run_id: str
    opened: bool = False


@dataclass
class NodeHighlighted(Message):
    """The DAG cursor moved onto a step."""

    step: str


@dataclass
class NodeOpened(Message):
    """Enter on a DAG node: show that step's details."""

    step: str


@dataclass
class FilterChanged(Message):
    """The filter bar's text changed (an empty string clears the filter)."""

    text: str


@dataclass
class GraphBuilt(Message):
    """A worker thread built the Live DAG's graph of ``workflow`` (``error`` says why it is
    empty when the workflow's steps do not form a DAG), and laid it out (``layout``, for
    the width the pane had when the build began; None when the graph on screen stands)."""

    workflow: Workflow
    model: DagModel
    error: str = ""
    layout: DagLayout | None = None
