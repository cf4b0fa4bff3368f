"""The Resource gauges pane: every resource's allocation against capacity, and the machine.

Resources come from the ResourceManagers of the dashboard and of every process running
workflows (``snapshot() -> list[ResourceUsage]``, added up by the engine); the
machine's CPU and memory come from psutil through the dashboard model, each with a
sparkline of the last minute. A process on the Dask backend adds its cluster's workers:
one gauge each, steps executing against threads, and memory in use.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from core.live_state import LiveProcess, WorkerInfo
from core.models import ResourceUsage

from ..dashboard_model import MachineView

__all__ = ["ResourcesPane", "render_resources", "render_machine", "gauge", "sparkline", "cluster_workers"]


def gauge(used: float, capacity: float, width: int) -> str:
    """Return a bar of ``width`` cells filled in proportion to ``used / capacity``.

    Filled cells are ``█`` and empty ones ``░``, so the bar reads without colour.
    """
    if width <= 0:
        return ""
    ratio = 0.0 if capacity <= 0 else max(0.0, min(1.0, used / capacity))
    filled = round(ratio * width)
    return "█" * filled + "░" * (width - filled)


_SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: tuple[float, ...], width: int, scale: float = 100.0) -> str:
    """Return the last ``width`` values as block characters on a fixed ``0..scale`` axis.

    A fixed axis (unlike an auto-scaled one) keeps an idle machine's flat line low
    instead of stretching noise to full height.
    """
    tail = values[-width:] if width > 0 else ()
    top = len(_SPARK) - 1
    return "".join(_SPARK[max(0, min(top, round(v / scale * top)))] for v in tail)


def render_machine(machine: MachineView, width: int = 30) -> Text:
    """Return two lines: CPU and memory percent, each followed by its sparkline."""
    text = Text(no_wrap=True, overflow="crop")
    room = max(0, width - 9)
    text.append("CPU ", "bold")
    text.append(f"{machine.cpu:3.0f}% ")
    text.append(sparkline(machine.cpu_history, room), "cyan")
    text.append("\nMEM ", "bold")
    text.append(f"{machine.memory:3.0f}% ")
    text.append(sparkline(machine.memory_history, room), "magenta")
    return text


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _gb(amount: int) -> str:
    return f"{amount / 1024 ** 3:.1f}"


def cluster_workers(processes: tuple[LiveProcess, ...]) -> tuple[WorkerInfo, ...]:
    """Return the Dask workers the ``processes`` on that backend see, each once (by address)."""
    seen: dict[str, WorkerInfo] = {}
    for process in processes:
        if process.backend == "dask":
            for worker in process.workers:
                seen.setdefault(worker.address or worker.name, worker)
    return tuple(seen.values())


def _label(name: str, width: int) -> str:
    """``name`` padded to ``width`` cells, or cut with an ellipsis when longer."""
    return name.ljust(width) if len(name) <= width else name[: width - 1] + "…"


def _gauge_line(text: Text, name: str, used: float, capacity: float, figures: str, width: int,
                label_width: int) -> None:
    name = _label(name, label_width)
    bar_width = max(3, width - len(name) - len(figures) - 1)
    ratio = used / capacity if capacity else 0.0
    colour = "red" if ratio >= 0.9 else "yellow" if ratio >= 0.6 else "green"
    if text.plain:
        text.append("\n")
    text.append(name + " ")
    text.append(gauge(used, capacity, bar_width), colour)
    text.append(figures, "dim")


def render_resources(usages: tuple[ResourceUsage, ...], width: int = 30, workers: tuple[WorkerInfo, ...] = ()) -> Text:
    """Return one line per resource unit (name, gauge, ``used/capacity unit``), then per Dask worker.

    A worker's gauge is its executing steps against its threads, followed by its
    memory in use against its limit in GB.
    """
    text = Text(no_wrap=True, overflow="ellipsis")
    if not usages and not workers:
        text.append("no resources registered", "dim")
        return text
    # Names take what the longest needs, up to a third of the line: the gauge keeps the rest.
    names = [usage.resource_id for usage in usages] + [worker.name for worker in workers]
    label_width = min(max(len(name) for name in names), max(6, width // 3))
    for usage in usages:
        for unit, capacity in usage.capacity.items():
            used = usage.current.get(unit, 0.0)
            _gauge_line(text, usage.resource_id, used, capacity, f" {_number(used)}/{_number(capacity)} {unit}", width,
                        label_width)
    if workers:
        if text.plain:
            text.append("\n")
        threads = sum(w.nthreads for w in workers)
        busy = sum(w.executing for w in workers)
        text.append(f"dask {len(workers)} worker{'s' if len(workers) != 1 else ''} · {busy}/{threads} threads busy", "bold")
    for worker in workers:
        memory = f" {_gb(worker.memory)}/{_gb(worker.memory_limit)}G" if worker.memory_limit else ""
        _gauge_line(text, worker.name, worker.executing, worker.nthreads,
                    f" {worker.executing}/{worker.nthreads}{memory}", width, label_width)
    return text


class ResourcesPane(Vertical, can_focus=True):
    """The machine's CPU and memory sparklines above the allocation gauges."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._usages: tuple[ResourceUsage, ...] | None = None
        self._workers: tuple[WorkerInfo, ...] = ()
        self._machine: MachineView | None = None
        # Held, not queried: the app's refresh timer may still tick while the screen is
        # torn down, when a query for the children finds nothing and raises.
        self._machine_view = Static(id="machine")
        self._gauges = Static(id="resource-gauges")

    def compose(self) -> ComposeResult:
        yield self._machine_view
        yield self._gauges

    def show(self, usages: tuple[ResourceUsage, ...], machine: MachineView, processes: tuple[LiveProcess, ...] = ()) -> None:
        """Display the resources, the Dask workers of ``processes`` and the machine's load.

        Skips parts that did not change.
        """
        workers = cluster_workers(processes)
        if usages is not self._usages or workers != self._workers:
            self._usages, self._workers = usages, workers
            self._render_gauges()
        if machine is not self._machine:
            self._machine = machine
            self._render_machine()

    def _render_gauges(self) -> None:
        if self._usages is not None:
            width = max(16, self.content_region.width)
            self._gauges.update(render_resources(self._usages, width, self._workers))

    def _render_machine(self) -> None:
        if self._machine is not None:
            width = max(16, self.content_region.width)
            self._machine_view.update(render_machine(self._machine, width), layout=False)

    def on_resize(self) -> None:
        self._render_gauges()
        self._render_machine()
