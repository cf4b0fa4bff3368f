"""What every command shares: JSON output, and errors as one sentence, not a traceback."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from core.errors import OrchestrationError, WorkflowValidationError, error_dict
from core.text import printable

__all__ = ["CONTEXT_SETTINGS", "json_option", "emit_json", "fail", "handle_errors", "os_error_message", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
param_option = click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
                            help="A workflow parameter; repeat for several. Values take the declared type.")


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON (non-JSON values via ``str``)."""
    click.echo(json.dumps(data, indent=2, default=printable, ensure_ascii=False))


def fail(message: str, *, as_json: bool = False, data: dict[str, Any] | None = None, code: int = EXIT_FAILED) -> None:
    """Report one failure and exit with ``code`` (1 by default)."""
    if as_json:
        emit_json(data or {"success": False, "error": message})
    else:
        click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def os_error_message(exc: OSError, doing: str = "") -> str:
    """Return one sentence for a failed file operation: path, what failed, why, what to do.

    ``doing`` says what was attempted ("cannot write the schema"); without it the
    operating system's reason stands alone. ``str(OSError)`` ("[Errno 20] ...") is for
    programmers, not for the person at the terminal.
    """
    reason = (exc.strerror or str(exc)).rstrip(".")
    where = f"{exc.filename}: " if exc.filename is not None else ""
    what = f"{doing} ({reason.lower()})" if doing else reason.lower()
    return f"{where}{what}; check the path and its permissions"


# What a shell reports for a command that SIGPIPE ended (128 + 13), as `git log | head` does.
EXIT_READER_LEFT = 141


def silence_stdout() -> None:
    """Point stdout at /dev/null once its reader (``| head``) has closed it, so nothing
    printed later (nor the interpreter's flush at exit) fails again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def keep_stdout_for_json() -> None:
    """Keep stdout for the JSON result alone: from now on this process's file descriptor 1
    (which every process it starts inherits) is stderr, and ``sys.stdout`` writes to the
    real stdout through a descriptor of its own.

    A step's commands, and anything a ``python.call`` runs with ``subprocess`` or
    ``os.system`` on the thread executor, write to descriptor 1: on stdout they would
    break ``run --json`` for the script reading it. On stderr they are still seen.
    """
    import os

    try:
        sys.stdout.flush()
        private = os.dup(sys.stdout.fileno())
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    except (OSError, ValueError):  # no real descriptors (an embedding test harness): nothing to protect
        return
    sys.stdout = os.fdopen(private, "w", encoding=sys.stdout.encoding, errors=sys.stdout.errors,
                           buffering=1)


class StdoutConsole(Console):
    """A rich Console on stdout whose closed reader raises BrokenPipeError where it happened.

    Rich's own answer to a closed pipe is ``SystemExit(1)`` from deep inside a print, which
    would end ``orchtui run ... | head`` as a failure and cancel its run; the command decides.
    """

    def on_broken_pipe(self) -> None:
        silence_stdout()
        raise BrokenPipeError(32, "the reader of stdout closed it")


@contextlib.contextmanager
def published(orchestrator: Any, manager: Any, state_dir: Path, label: str) -> Iterator[None]:
    """Publish this process's runs for the other faces while the block runs
    (``core.live_state.LivePublisher``): dashboards show them and can cancel them.

    A state directory that cannot take the live file does not stop the work: a warning
    says what is lost, and the block runs unpublished.
    """
    from core.live_state import LivePublisher

    publisher = LivePublisher(orchestrator, manager, state_dir, label=label)
    try:
        publisher.start()
    except OrchestrationError as exc:
        click.secho(f"warning: other orchtui processes (the dashboard, the MCP server) will not see this "
                    f"process's runs or be able to cancel them: {exc.message}", fg="yellow", err=True)
        yield
        return
    try:
        yield
    finally:
        publisher.stop()


def reader_left(code: int = EXIT_READER_LEFT) -> None:
    """Exit quietly with ``code`` once whoever read stdout has closed it."""
    silence_stdout()
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn orchtui errors (and a few OS ones) into one clear line and exit code 1.

    A validation error prints each of its problems on a line of its own. With ``--json``
    (an ``as_json`` parameter) the spec-002 error dict is printed on stdout instead, so a
    script gets structured errors.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return func(*args, **kwargs)
        except WorkflowValidationError as exc:  # every problem, one line each
            if not as_json:
                for problem in exc.problems[:-1]:
                    click.secho(f"error: {problem}", fg="red", err=True)
            last = str(exc.problems[-1]) if exc.problems else exc.message
            fail(last, as_json=as_json, data=exc.to_error_dict())
        except OrchestrationError as exc:
            fail(exc.message, as_json=as_json, data=exc.to_error_dict())
        except BrokenPipeError:  # `orchtui show RUN | head`: the reader has all it wanted
            reader_left()
        except OSError as exc:
            fail(os_error_message(exc), as_json=as_json, data=error_dict(exc) | {"error": os_error_message(exc)})
        except ValueError as exc:
            fail(str(exc), as_json=as_json, data=error_dict(exc))
        except KeyboardInterrupt:
            fail("interrupted", as_json=as_json, code=130)

    return wrapper  # type: ignore[return-value]
