"""The built-in actions: ``shell.run``, ``python.call`` and ``builtin.noop|sleep|echo|fail``.

Each is an ordinary action ``fn(ctx, params) -> output``; :mod:`core.actions` registers
them into the default registry. ``shell.run`` hands the process work to
:mod:`core.process_tree`; everything here is parameter checking and error wording.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import re
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .actions import ActionContext, ActionError, ActionRegistry, StepCancelled, StepTimeout
from .process_tree import run_process
from .step_output import printed_to
from .text import printable
from .thread_interrupt import call_interruptibly

__all__ = ["register_builtins", "shell_run", "python_call", "builtin_noop", "builtin_sleep", "builtin_echo", "builtin_fail"]


def _int_list(value: Any, what: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return list(value)
    raise ActionError(f"{what} must be an integer or a list of integers, got {value!r}")


def _format_bytes(count: int) -> str:
    gib = count / 1024**3
    return f"{gib:.3g} GB" if gib >= 1 else f"{count / 1024**2:.3g} MB"


# What a process says when RLIMIT_AS stops an allocation.
_OOM_MARKERS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory", "Out of memory")
_OOM_SIGNALS = {-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGKILL, -signal.SIGBUS}


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _shell_argv(command: Any) -> list[str]:
    if isinstance(command, str):
        if not command.strip():
            raise ActionError("shell.run: 'command' is empty")
        return ["/bin/sh", "-c", command]
    if isinstance(command, (list, tuple)) and command:
        if all(isinstance(part, (str, int, float)) and not isinstance(part, bool) for part in command):
            return [str(part) for part in command]
    raise ActionError("shell.run: 'command' must be a string or a non-empty list of strings")


def _shell_env(ctx: ActionContext, extra: Any) -> dict[str, str | None]:
    """Return the variables the step sets over the inherited environment (None: unset).

    Only the changes: :func:`~core.process_tree.run_process` lays them over its cheap
    copy of ``os.environ``, so a step that sets nothing copies no environment here.
    """
    if extra is not None and not isinstance(extra, Mapping):
        raise ActionError("shell.run: 'env' must be a mapping of variable names to values")
    env: dict[str, str | None] = dict(ctx.env)
    for key, value in (extra or {}).items():
        if value is None:
            env[str(key)] = None  # null unsets an inherited variable
        else:
            env[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return env


def _shell_cwd(ctx: ActionContext, cwd: Any) -> Path | None:
    if cwd is None:
        return ctx.working_dir
    path = Path(str(cwd)).expanduser()
    if not path.is_absolute() and ctx.working_dir is not None:
        path = ctx.working_dir / path
    if not path.is_dir():
        raise ActionError(f"shell.run: working directory {str(path)!r} does not exist; create it or fix 'cwd'")
    return path


def shell_run(ctx: ActionContext, params: dict[str, Any]) -> Any:
    """Run a command; output is its stdout, stripped (or parsed JSON with ``parse_json``)."""
    argv = _shell_argv(params.get("command"))
    ok_codes = _int_list(params.get("ok_exit_codes", [0]), "shell.run: 'ok_exit_codes'")
    env_changes = _shell_env(ctx, params.get("env"))
    cwd = _shell_cwd(ctx, params.get("cwd"))
    ctx.check()
    try:
        result = run_process(
            argv,
            cwd=cwd,
            env_changes=env_changes,
            log_path=ctx.log_path,
            log_cap_bytes=ctx.log_cap_bytes,
            memory_limit_bytes=ctx.memory_limit_bytes,
            deadline=ctx.deadline,
            cancel_event=ctx.cancel_event if ctx.cancellable else None,
            kill_grace=ctx.kill_grace,
        )
    except (StepTimeout, StepCancelled):  # TimeoutError is an OSError, but this one is no failure to start
        raise
    except FileNotFoundError:
        raise ActionError(f"shell.run: command not found: {argv[0]!r}; check the name or the PATH", exit_code=127) from None
    except PermissionError:
        raise ActionError(f"shell.run: {argv[0]!r} is not executable; check its permissions", exit_code=126) from None
    except OSError as exc:
        raise ActionError(f"shell.run: cannot start {argv[0]!r}: {exc.strerror or exc}") from None
    ctx.metadata.update(pid=result.pid, log_truncated=result.log_truncated, output_truncated=result.stdout_truncated)
    if result.log_error:
        ctx.metadata["log_error"] = result.log_error
    if result.killed_pids:
        ctx.metadata["killed_pids"] = result.killed_pids
    if result.timed_out:
        raise StepTimeout(ctx.timeout)
    if result.cancelled:
        raise StepCancelled()
    stdout = result.stdout.decode("utf-8", errors="replace").strip()
    code = result.returncode
    if code not in ok_codes:
        tail = " | ".join(result.stderr_lines())
        if ctx.memory_limit_bytes and (code in _OOM_SIGNALS or any(m in tail for m in _OOM_MARKERS)):
            raise ActionError(
                f"command exceeded its memory limit of {_format_bytes(ctx.memory_limit_bytes)} (exit code {code})"
                + (f": {tail}" if tail else ""),
                exit_code=code,
                output=stdout,
            )
        how = f"was killed by signal {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
        also = f" ({result.log_error})" if result.log_error else ""
        raise ActionError(f"command {how}" + (f": {tail}" if tail else "") + also, exit_code=code, output=stdout)
    ctx.exit_code = code
    if params.get("parse_json"):
        try:
            return json.loads(stdout)
        except ValueError as exc:
            raise ActionError(f"shell.run: parse_json is set but stdout is not valid JSON ({exc}): {stdout[:80]!r}") from None
    return stdout


_TARGET = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<attr>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$")


def _resolve_target(target: Any) -> Callable[..., Any]:
    if not isinstance(target, str) or not (match := _TARGET.match(target.strip())):
        raise ActionError(f"python.call: target {target!r} must look like 'package.module:function'")
    module_name, attr_path = match["module"], match["attr"]
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ActionError(f"python.call: cannot import module '{module_name}' ({exc}); check the target and sys.path") from None
    except Exception as exc:  # the module itself failed while importing
        raise ActionError(f"python.call: importing '{module_name}' failed: {type(exc).__name__}: {exc}") from None
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise ActionError(f"python.call: '{module_name}' has no attribute '{attr_path}'; check the target")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ActionError(f"python.call: target '{target}' is not callable")
    return obj


def _wants_ctx(fn: Callable[..., Any]) -> bool:
    try:
        return "ctx" in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


def python_call(ctx: ActionContext, params: dict[str, Any]) -> Any:
    """Call ``target`` with ``args``/``kwargs`` (and ``ctx=`` if it takes one); output is its return
    value, and what it prints goes to the step's log (:mod:`core.step_output`). On a worker
    thread the call is interrupted at its deadline or on cancel (:mod:`core.thread_interrupt`)."""
    fn = _resolve_target(params.get("target"))
    args = params.get("args", [])
    kwargs = params.get("kwargs", {})
    if not isinstance(args, (list, tuple)):
        raise ActionError(f"python.call: 'args' must be a list, got {type(args).__name__}")
    if not isinstance(kwargs, Mapping):
        raise ActionError(f"python.call: 'kwargs' must be a mapping, got {type(kwargs).__name__}")
    kwargs = dict(kwargs)
    if _wants_ctx(fn):
        if "ctx" in kwargs:
            raise ActionError("python.call: 'ctx' is reserved for the action context; rename that keyword argument")
        kwargs["ctx"] = ctx
    try:
        with printed_to(ctx.log):  # its prints belong in its log, not in orchtui's output
            if threading.current_thread() is threading.main_thread():
                return fn(*args, **kwargs)  # a process executor's child: SIGALRM and kill stop it
            # A worker thread cannot be killed: interrupt it at the deadline or on cancel.
            return call_interruptibly(ctx, fn, *args, **kwargs)
    except StepTimeout:
        ctx.note(f"timed out after {ctx.timeout:g}s: the call was interrupted" if ctx.timeout else "timed out")
        raise
    except StepCancelled:
        ctx.note("cancelled: the call was interrupted")
        raise


def builtin_noop(ctx: ActionContext, params: dict[str, Any]) -> Any:
    """Do nothing; output is the ``output`` parameter."""
    return params.get("output")


def builtin_sleep(ctx: ActionContext, params: dict[str, Any]) -> Any:
    """Sleep ``seconds`` (waking on cancel or deadline); output is the ``output`` parameter."""
    seconds = params.get("seconds", 0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < math.inf:
        raise ActionError(f"builtin.sleep: 'seconds' must be a finite number >= 0, got {seconds!r}")
    ctx.sleep(float(seconds))
    return params.get("output")


def builtin_echo(ctx: ActionContext, params: dict[str, Any]) -> Any:
    """Write ``message`` to the log; output is the message."""
    message = params.get("message", "")
    text = message if isinstance(message, str) else json.dumps(message, default=printable)
    ctx.log(text + "\n")
    return message


def builtin_fail(ctx: ActionContext, params: dict[str, Any]) -> Any:
    """Fail on purpose with ``message`` and ``exit_code``."""
    exit_code = params.get("exit_code")
    if exit_code is not None and (isinstance(exit_code, bool) or not isinstance(exit_code, int)):
        raise ActionError(f"builtin.fail: 'exit_code' must be an integer, got {exit_code!r}")
    raise ActionError(str(params.get("message") or "failed on purpose (builtin.fail)"), exit_code=exit_code)


def register_builtins(reg: ActionRegistry) -> None:
    """Register shell.run, python.call and builtin.noop|sleep|echo|fail into ``reg``."""
    reg.register("shell", "run", shell_run, required=("command",), optional=("cwd", "env", "ok_exit_codes", "parse_json"))
    reg.register("python", "call", python_call, required=("target",), optional=("args", "kwargs"))
    reg.register("builtin", "noop", builtin_noop)
    reg.register("builtin", "sleep", builtin_sleep, required=("seconds",), optional=("output",))
    reg.register("builtin", "echo", builtin_echo, optional=("message",))
    reg.register("builtin", "fail", builtin_fail, optional=("message", "exit_code"))

