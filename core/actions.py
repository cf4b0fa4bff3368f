"""What a step runs: the action registry, the built-in actions and :func:`invoke`.

A step names a ``module`` and an ``action``; the registry maps the pair to a callable
``fn(ctx: ActionContext, params: dict) -> output``. The built-ins (``shell.run``,
``python.call``, ``builtin.noop|sleep|echo|fail``) live in :mod:`core.builtin_actions`.

Plugins register with the :func:`action` decorator or through the entry-point group
``orchtui.actions`` (loaded the first time a name is not found). Every backend runs an
attempt through :func:`invoke`, which never raises for a failing action: it returns a
``TaskResult`` saying what went wrong.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from .errors import OrchestrationError, TaskExecutionError
from .models import Invocation, TaskResult
from .process_tree import CancelSignal, CappedLog
from .text import closest, did_you_mean

__all__ = [
    "ActionContext",
    "ActionError",
    "StepTimeout",
    "StepCancelled",
    "UnknownActionError",
    "ActionSpec",
    "ActionRegistry",
    "ActionFn",
    "registry",
    "action",
    "invoke",
    "ENTRY_POINT_GROUP",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "orchtui.actions"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


# ------------------------------------------------------------------- errors


class ActionError(TaskExecutionError):
    """The action ran and failed; ``exit_code`` and partial ``output`` when known."""

    error_code = "ACTION_FAILED"

    def __init__(self, message: str, exit_code: int | None = None, output: Any = None) -> None:
        super().__init__(message, details={"exit_code": exit_code} if exit_code is not None else None)
        self.exit_code = exit_code
        self.output = output


class StepTimeout(TaskExecutionError, TimeoutError):
    """The attempt passed its deadline (its processes have been killed)."""

    error_code = "STEP_TIMEOUT"

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = seconds
        super().__init__(f"timed out after {seconds:g}s" if seconds is not None else "timed out")


class StepCancelled(TaskExecutionError):
    """The attempt was cancelled while it ran (its processes have been killed)."""

    error_code = "STEP_CANCELLED"

    def __init__(self, message: str = "Cancelled") -> None:
        super().__init__(message)


class UnknownActionError(OrchestrationError):
    """No action is registered under the requested ``module.action``."""

    error_code = "UNKNOWN_ACTION"


# ------------------------------------------------------------------ context


class _NeverCancelled:
    """The cancel event of an attempt nobody can cancel: never set, waits just sleep."""

    __slots__ = ()

    def is_set(self) -> bool:
        return False

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is None:
            raise ValueError("waiting forever on an event that is never set")
        time.sleep(max(0.0, timeout))
        return False


NEVER_CANCELLED = _NeverCancelled()


@dataclasses.dataclass(slots=True)
class ActionContext:
    """What an action knows about the attempt it runs in.

    ``deadline`` is a ``time.monotonic()`` value (None: no timeout). Long-running
    Python actions should call :meth:`check` now and then, or wait with :meth:`sleep`,
    so that timeouts and cancels take effect. Actions may add to ``metadata``; it ends
    up in ``TaskResult.metadata``.
    """

    task_id: str
    task_name: str
    run_id: str | None = None
    attempt: int = 1
    cancel_event: CancelSignal = NEVER_CANCELLED
    deadline: float | None = None
    log_path: Path | None = None
    log_cap_bytes: int = 5 * 1024 * 1024
    working_dir: Path | None = None
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    memory_limit_bytes: int | None = None
    kill_grace: float = 5.0
    timeout: float | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    # An action that ran a process sets this, so a success records its exit code too.
    exit_code: int | None = None

    @property
    def cancellable(self) -> bool:
        """False when nobody can cancel this attempt (no event was given)."""
        return self.cancel_event is not NEVER_CANCELLED

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def check(self) -> None:
        """Return if the attempt may go on.

        Raises:
            StepCancelled: the cancel event is set.
            StepTimeout: the deadline has passed.
        """
        if self.cancel_event.is_set():
            raise StepCancelled()
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise StepTimeout(self.timeout)

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, waking at once on cancel or at the deadline.

        Raises:
            StepCancelled: the cancel event was set before or during the sleep.
            StepTimeout: the deadline came before the sleep was over.
        """
        self.check()
        end = time.monotonic() + max(0.0, seconds)
        while True:
            now = time.monotonic()
            wake = end if self.deadline is None else min(end, self.deadline)
            if now >= wake:
                break
            # At most TIMEOUT_MAX at a time: a longer wait overflows (and a year of sleep
            # is still a sleep, woken by cancel like any other).
            if self.cancel_event.wait(min(wake - now, threading.TIMEOUT_MAX)):
                break
        self.check()

    def note(self, text: str) -> None:
        """Append an ``[orchtui: text]`` remark to the attempt's log file, if it has one."""
        if self.log_path is not None:
            sink = CappedLog(self.log_path, self.log_cap_bytes)
            sink.note(text)
            sink.close()

    def log(self, text: str) -> None:
        """Append ``text`` to the attempt's log file (within its size cap), if it has one."""
        if self.log_path is None:
            return
        sink = CappedLog(self.log_path, self.log_cap_bytes)
        try:
            sink.write(text.encode("utf-8", errors="replace"))
        finally:
            sink.close()
        if sink.error:  # a full disk, say: the step goes on, and its result says what was lost
            self.metadata["log_error"] = sink.error


ActionFn = Callable[[ActionContext, dict[str, Any]], Any]


# ----------------------------------------------------------------- registry


@dataclasses.dataclass(slots=True, frozen=True)
class ActionSpec:
    """One registered action and the parameters it declares.

    An action that declares no parameters at all accepts any; one that declares some
    rejects the others (so a typo is caught before the run).
    """

    module: str
    action: str
    fn: ActionFn
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    description: str = ""

    @property
    def name(self) -> str:
        """``"module.action"``."""
        return f"{self.module}.{self.action}"

    @property
    def accepts_any(self) -> bool:
        return not self.required and not self.optional


class ActionRegistry:
    """Maps ``(module, action)`` to an :class:`ActionSpec`. Thread-safe."""

    def __init__(self) -> None:
        self._specs: dict[str, dict[str, ActionSpec]] = {}
        self._lock = threading.Lock()
        self._entry_points_loaded = False

    def register(
        self,
        module: str,
        action: str,
        fn: ActionFn,
        *,
        required: Iterable[str] = (),
        optional: Iterable[str] = (),
        description: str = "",
        replace: bool = False,
    ) -> ActionSpec:
        """Register ``fn`` as ``module.action`` and return its spec.

        Registering the same function again is a no-op.

        Raises:
            OrchestrationError: a name is malformed, ``fn`` is not callable, or another
                function already holds the name (pass ``replace=True`` to override).
        """
        for label, value in (("module", module), ("action", action)):
            if not isinstance(value, str) or not _NAME.match(value):
                raise OrchestrationError(
                    f"cannot register action: {label} name {value!r} must start with a letter or '_' "
                    "and contain only letters, digits, '_' and '-'"
                )
        if not callable(fn):
            raise OrchestrationError(f"cannot register {module}.{action}: {fn!r} is not callable")
        spec = ActionSpec(module, action, fn, tuple(required), tuple(optional), description or (fn.__doc__ or "").strip())
        with self._lock:
            actions = self._specs.setdefault(module, {})
            existing = actions.get(action)
            if existing is not None and existing.fn is not fn and not replace:
                raise OrchestrationError(
                    f"action {module}.{action} is already registered by {_qualname(existing.fn)}; "
                    "choose another name or register with replace=True"
                )
            actions[action] = spec
        return spec

    def unregister(self, module: str, action: str) -> bool:
        """Remove ``module.action``; return whether it was registered."""
        with self._lock:
            actions = self._specs.get(module, {})
            removed = actions.pop(action, None) is not None
            if not actions:
                self._specs.pop(module, None)
        return removed

    def action(self, module: str, name: str, **kwargs: Any) -> Callable[[ActionFn], ActionFn]:
        """Decorator form of :meth:`register`; returns the function unchanged."""

        def decorate(fn: ActionFn) -> ActionFn:
            self.register(module, name, fn, **kwargs)
            return fn

        return decorate

    def _lookup(self, module: str, action: str) -> ActionSpec | None:
        spec = self._specs.get(module, {}).get(action)
        if spec is None and not self._entry_points_loaded:
            self.load_entry_points()
            spec = self._specs.get(module, {}).get(action)
        return spec

    def get(self, module: str, action: str) -> ActionSpec:
        """Return the spec of ``module.action``.

        Raises:
            UnknownActionError: nothing is registered under that name (the message
                suggests the closest name).
        """
        spec = self._lookup(module, action)
        if spec is None:
            raise UnknownActionError(self._unknown(module, action)[0])
        return spec

    def has(self, module: str, action: str) -> bool:
        """True when ``module.action`` is registered."""
        return self._lookup(module, action) is not None

    def names(self) -> list[str]:
        """Return every registered ``"module.action"``, sorted."""
        if not self._entry_points_loaded:
            self.load_entry_points()
        with self._lock:
            return sorted(f"{m}.{a}" for m, actions in self._specs.items() for a in actions)

    def specs(self) -> list[ActionSpec]:
        """Return every registered spec, sorted by name."""
        if not self._entry_points_loaded:
            self.load_entry_points()
        with self._lock:
            found = [spec for actions in self._specs.values() for spec in actions.values()]
        return sorted(found, key=lambda s: s.name)

    def _unknown(self, module: str, action: str) -> tuple[str, str]:
        with self._lock:
            modules = sorted(self._specs)
            actions = sorted(self._specs.get(module, {}))
        if not actions:
            return (
                f"unknown action module '{module}'{did_you_mean(module, modules, sep='; ')} "
                f"(known modules: {', '.join(modules) or 'none'})"
            ), "module"
        return (
            f"module '{module}' has no action '{action}'{did_you_mean(action, actions, sep='; ')} "
            f"(its actions: {', '.join(actions)})"
        ), "action"

    def problem_for(self, module: str, action: str, parameters: Mapping[str, Any] | None) -> str | None:
        """Return why a step running ``module.action`` with ``parameters`` cannot run, or None.

        Checks that the action exists (suggesting the closest name), that every required
        parameter is there and, for actions that declare their parameters, that no
        unknown parameter is given. References (``{{ ... }}``) count as present values.
        """
        found = self.located_problem(module, action, parameters)
        return found[0] if found is not None else None

    def located_problem(self, module: str, action: str,
                        parameters: Mapping[str, Any] | None) -> tuple[str, str] | None:
        """Return :meth:`problem_for`'s problem with the step field it is about, or None.

        The field is ``"module"``, ``"action"``, ``"parameters"`` (one is missing) or
        ``"parameters.NAME"`` (an unknown one), so a file's problem points at its line.
        """
        spec = self._lookup(module, action)
        if spec is None:
            return self._unknown(module, action)
        given = set(parameters or {})
        missing = [name for name in spec.required if name not in given]
        allowed = spec.required + spec.optional
        unknown = [] if spec.accepts_any else sorted(given - set(allowed))
        # A misspelt required parameter is both missing and unknown: the spelling is the news.
        unknown.sort(key=lambda name: closest(name, missing) is None)
        if unknown and (not missing or closest(unknown[0], missing) is not None):
            name = unknown[0]
            return (
                f"{spec.name} has no parameter '{name}'{did_you_mean(name, allowed, sep='; ')} "
                f"(it takes: {', '.join(allowed)})"
            ), f"parameters.{name}"
        if missing:
            listed = ", ".join(f"'{name}'" for name in missing)
            return f"{spec.name} needs parameter{'s' if len(missing) > 1 else ''} {listed}", "parameters"
        return None

    def load_entry_points(self) -> list[str]:
        """Load the plugins of entry-point group ``orchtui.actions`` (once).

        An entry point may name a module (importing it runs its ``@action`` decorators)
        or a callable, which is called with this registry. A broken plugin is logged and
        skipped, so it cannot stop orchtui from starting.

        Returns:
            One message per plugin that failed to load (empty when all loaded).
        """
        with self._lock:
            if self._entry_points_loaded:
                return []
            self._entry_points_loaded = True
        problems: list[str] = []
        for entry in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded = entry.load()
                if callable(loaded):
                    loaded(self)
            except Exception as exc:  # a plugin's bug must not take orchtui down
                message = f"action plugin {entry.name!r} ({entry.value}) failed to load: {type(exc).__name__}: {exc}"
                log.warning(message)
                problems.append(message)
        return problems


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


registry = ActionRegistry()
"""The default registry: built-ins, ``@action`` plugins and entry points."""


def action(module: str, name: str, **kwargs: Any) -> Callable[[ActionFn], ActionFn]:
    """Decorator registering ``fn(ctx, params)`` as ``module.name`` in :data:`registry`.

    Keyword arguments are those of :meth:`ActionRegistry.register` (``required``,
    ``optional``, ``description``, ``replace``).
    """
    return registry.action(module, name, **kwargs)


# ------------------------------------------------------------------- invoke


def invoke(
    invocation: Invocation,
    cancel_event: CancelSignal | None = None,
    *,
    action_registry: ActionRegistry | None = None,
) -> TaskResult:
    """Run one attempt of one task and return its result. Never raises for a failure.

    The timeout is enforced here: ``deadline = start + invocation.timeout``. Shell
    steps and the built-ins stop at the deadline (or on cancel); other actions are
    expected to cooperate through ``ctx.check()``/``ctx.sleep()``, and one that returns
    after its deadline is reported as timed out all the same.

    Returns:
        ``TaskResult`` with ``success`` and ``data`` (the output), or ``error_type``
        "ActionError" (with ``exit_code``), "TimeoutError" ("timed out after Ns"),
        "Cancelled", "UnknownActionError", or the name of an unexpected exception type.
    """
    reg = registry if action_registry is None else action_registry
    if invocation.timeout is None and (cancel_event is None or not cancel_event.is_set()):
        found = reg._specs.get(invocation.module)
        spec = found.get(invocation.action) if found else None
        if spec is not None and spec.fn in _INSTANT_ACTIONS:
            return _invoke_instant(spec.fn, invocation)
    started_at = time.time()
    start = time.monotonic()
    timeout = invocation.timeout if invocation.timeout is not None and invocation.timeout > 0 else None
    ctx = ActionContext(
        task_id=invocation.task_id,
        task_name=invocation.task_name,
        run_id=invocation.run_id,
        attempt=invocation.attempt,
        cancel_event=NEVER_CANCELLED if cancel_event is None else cancel_event,
        deadline=None if timeout is None else start + timeout,
        log_path=Path(invocation.log_path) if invocation.log_path else None,
        log_cap_bytes=invocation.log_cap_bytes,
        working_dir=Path(invocation.working_dir) if invocation.working_dir else None,
        env=dict(invocation.env or {}),
        memory_limit_bytes=invocation.memory_limit_bytes,
        kill_grace=invocation.kill_grace,
        timeout=timeout,
    )
    success = False
    output: Any = None
    error_type = ""
    message = ""
    exit_code: int | None = None
    try:
        ctx.check()
        spec = reg.get(invocation.module, invocation.action)
        output = spec.fn(ctx, dict(invocation.parameters))
        if ctx.deadline is not None and time.monotonic() > ctx.deadline:
            raise StepTimeout(timeout)
        success, exit_code = True, ctx.exit_code
    except StepTimeout:
        error_type, message = "TimeoutError", f"timed out after {timeout:g}s" if timeout else "timed out"
    except StepCancelled:
        error_type, message = "Cancelled", "Cancelled"
    except ActionError as exc:
        error_type, message, exit_code, output = "ActionError", exc.message, exc.exit_code, exc.output
    except OrchestrationError as exc:
        error_type, message = type(exc).__name__, exc.message
    except Exception as exc:  # the action's own bug or failure: report it, never raise
        error_type = type(exc).__name__
        message = f"{error_type}: {exc}" if str(exc) else error_type
        ctx.metadata["traceback"] = traceback.format_exc()
        ctx.log(ctx.metadata["traceback"])
    if ctx.log_path is not None:
        ctx.metadata.setdefault("log_path", str(ctx.log_path))
    return TaskResult(
        success=success,
        data=output,
        error_message=message,
        error_type=error_type,
        execution_time=time.monotonic() - start,
        metadata=ctx.metadata,
        exit_code=exit_code,
        attempt=invocation.attempt,
        started_at=started_at,
        finished_at=time.time(),
    )


# Actions that return at once, never raise, never block and never read their context
# (builtin.noop). For them building an ActionContext costs more than the action, so
# invoke() runs them through _invoke_instant when there is no timeout to enforce and the
# attempt is not already cancelled; anything else takes the full path.
_INSTANT_ACTIONS: set[ActionFn] = set()


def _invoke_instant(fn: ActionFn, invocation: Invocation) -> TaskResult:
    """Run an action of ``_INSTANT_ACTIONS`` (called with ``ctx=None``) and return its result."""
    started_at = time.time()
    start = time.monotonic()
    output = fn(None, dict(invocation.parameters))  # type: ignore[arg-type]  # never reads ctx
    execution_time = time.monotonic() - start
    log_path = invocation.log_path
    return TaskResult(
        success=True,
        data=output,
        execution_time=execution_time,
        metadata={"log_path": log_path} if log_path else {},
        attempt=invocation.attempt,
        started_at=started_at,
        finished_at=time.time(),
    )


def _register_builtins() -> None:
    # Imported here, not at the top: the built-ins are written against this module's
    # classes, which exist by now.
    from . import builtin_actions

    builtin_actions.register_builtins(registry)
    _INSTANT_ACTIONS.add(builtin_actions.builtin_noop)


_register_builtins()
