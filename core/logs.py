"""Step log files: where each attempt's log lives, reading it, and following it live.

Every attempt of every step writes its stdout and stderr to
``<state_dir>/runs/<run_id>/<step>.<attempt>.log``. Run ids and step names become
path components, so both are validated here and the final path is checked to lie
inside the runs directory: nothing a workflow file says can make orchtui write or
delete outside it.

Logs are size-capped by the process that writes them (``core/process_tree.py``): past
the cap it appends one line, ``[orchtui: log truncated at N bytes]``, and writes no
more. :data:`TRUNCATION_MARKER` is that same text; readers use it to tell a truncated
log from a complete one.

:func:`follow` reads a log while another thread or process is still writing it. It
polls (portable, and a step log grows slowly next to a 0.1 s poll) and survives the
file appearing late, being truncated in place, or being replaced.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import StoreError

__all__ = [
    "TRUNCATION_MARKER",
    "truncation_marker",
    "is_truncated",
    "LogFile",
    "validate_run_id",
    "validate_step_name",
    "run_log_dir",
    "log_file_name",
    "log_path",
    "attempt_log_path",
    "list_logs",
    "require_unused_log_dir",
    "RUN_ID_MAX",
    "claim_log_dir",
    "newest_log",
    "read_log",
    "follow",
]

# The exact text core/process_tree.py appends when a log reaches its size cap.
TRUNCATION_MARKER = "[orchtui: log truncated at {limit} bytes]"
_TRUNCATION_RE = re.compile(rb"\[orchtui: log truncated at \d+ bytes\]")

RUN_ID_MAX = 128
"""The longest run id, in characters."""
_RUN_ID_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{RUN_ID_MAX - 1}}}")
# Step names are free text in workflow files; only what would change the path is refused.
_STEP_FORBIDDEN_RE = re.compile(r"[/\\\x00-\x1f\x7f]")
_STEP_MAX_LEN = 200
_LOG_NAME_RE = re.compile(r"(?P<step>.+)\.(?P<attempt>\d+)\.log")
_TAIL_BLOCK = 8192


def truncation_marker(limit: int) -> str:
    """Return the marker line a log capped at ``limit`` bytes ends with."""
    return TRUNCATION_MARKER.format(limit=limit)


def is_truncated(path: Path) -> bool:
    """Return True when the log at ``path`` ends with a truncation marker.

    Returns False when the file does not exist.
    """
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 256))
            return _TRUNCATION_RE.search(fh.read()) is not None
    except FileNotFoundError:
        return False


@dataclasses.dataclass(slots=True, frozen=True)
class LogFile:
    """One attempt's log file on disk."""

    step: str
    attempt: int
    path: Path
    size: int


def validate_run_id(run_id: str) -> str:
    """Return ``run_id`` when it is safe as a directory name.

    Raises:
        StoreError: it is empty, too long, or holds anything but letters, digits,
            ``-``, ``_`` and ``.`` (or starts with a dot).
    """
    if not isinstance(run_id, str) or not _RUN_ID_RE.fullmatch(run_id) or ".." in run_id:
        raise StoreError(
            f"invalid run id {run_id!r}: use letters, digits, '-', '_' and '.' (up to 128, not starting with '.')",
            details={"run_id": str(run_id)},
        )
    return run_id


def validate_step_name(step: str) -> str:
    """Return ``step`` when it is safe as part of a file name.

    Raises:
        StoreError: it is empty, ``.``/``..``, starts with a dot, is longer than 200
            characters, or holds a path separator or a control character.
    """
    if (
        not isinstance(step, str)
        or not step
        or step.startswith(".")
        or len(step) > _STEP_MAX_LEN
        or _STEP_FORBIDDEN_RE.search(step)
    ):
        raise StoreError(
            f"invalid step name {step!r} for a log file: no '/', '\\', control characters or leading '.'",
            details={"step": str(step)},
        )
    return step


def _inside(root: Path, path: Path) -> Path:
    """Return ``path`` after checking that it resolves to somewhere under ``root``."""
    resolved_root = root.resolve()
    resolved = path.resolve()
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise StoreError(f"refusing log path {path}: it is outside {root}")
    return path


def _child(parent: Path, name: str, root: Path) -> Path:
    """Return ``parent / name`` after checking that it stays under ``root``.

    ``name`` is one validated component (no separator, not ``.`` or ``..``) and ``parent``
    is ``root`` or was checked already, so the path can only lead outside through a
    symbolic link: only a link is resolved. Resolving stats every component of the path,
    and on a busy process each system call waits for the GIL again.
    """
    path = parent / name
    return _inside(root, path) if path.is_symlink() else path


def run_log_dir(runs_dir: Path, run_id: str) -> Path:
    """Return the directory holding every log of run ``run_id``.

    Raises:
        StoreError: the run id is not a safe directory name, or it is a link that leads
            outside ``runs_dir``.
    """
    return _child(runs_dir, validate_run_id(run_id), runs_dir)


def log_file_name(step: str, attempt: int) -> str:
    """Return the name of the log of ``step``'s attempt ``attempt`` in its run's directory:
    ``<step>.<attempt>.log``. Unchecked: the dispatcher calls it for every attempt, and
    the store to rebuild a path it recorded (:func:`log_path` checks)."""
    return f"{step}.{attempt}.log"


def attempt_log_path(runs_dir: str | Path, run_id: str, step: str, attempt: int) -> str:
    """Return ``<runs_dir>/<run_id>/<step>.<attempt>.log`` as a string, unchecked.

    The path the dispatcher gives an attempt's log; the store keeps it as '' and rebuilds
    it with this (:mod:`core.store_rows`, which spells the same text inline, per row).
    """
    return f"{runs_dir}{os.sep}{run_id}{os.sep}{log_file_name(step, attempt)}"


def log_path(runs_dir: Path, run_id: str, step: str, attempt: int) -> Path:
    """Return ``runs_dir/<run_id>/<step>.<attempt>.log`` (the file need not exist).

    Raises:
        StoreError: the run id or step name is unsafe, or ``attempt`` is below 1.
    """
    if not isinstance(attempt, int) or attempt < 1:
        raise StoreError(f"invalid attempt number {attempt!r} for step {step!r}: attempts count from 1")
    directory = run_log_dir(runs_dir, run_id)
    return _child(directory, log_file_name(validate_step_name(step), attempt), runs_dir)


def list_logs(runs_dir: Path, run_id: str, step: str | None = None) -> list[LogFile]:
    """Return the log files of a run (of one step when ``step`` is given).

    Sorted by step name, then attempt. Returns an empty list when the run has no log
    directory. Raises ``StoreError`` for an unsafe run id or step name.
    """
    directory = run_log_dir(runs_dir, run_id)
    if step is not None:
        validate_step_name(step)
    found: list[LogFile] = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    for entry in entries:
        match = _LOG_NAME_RE.fullmatch(entry.name)
        if match is None or not entry.is_file():
            continue
        if step is not None and match["step"] != step:
            continue
        found.append(LogFile(match["step"], int(match["attempt"]), Path(entry.path), entry.stat().st_size))
    found.sort(key=lambda f: (f.step, f.attempt))
    return found


def require_unused_log_dir(runs_dir: Path, run_id: str) -> None:
    """Return None when run ``run_id`` has no step logs yet.

    A run given its id by the user checks this as well as the store: a run that was not
    recorded (``--no-record``) leaves logs but no run row, and a new run under its id
    would write into them.

    Raises:
        StoreError: step logs of that id exist (RUN_ID_TAKEN), or the id is unsafe.
    """
    found = list_logs(runs_dir, run_id)
    if found:
        raise StoreError(f"run id {run_id!r} is taken: {found[0].path.parent} holds its step logs; "
                         "pick another id or leave --run-id out", error_code="RUN_ID_TAKEN",
                         details={"run_id": run_id})


CLAIM_FILE = ".claimed"
"""The file in a run's log directory that says a run took that id (see :func:`claim_log_dir`)."""


def claim_log_dir(runs_dir: Path, run_id: str) -> Path:
    """Claim the log directory of run ``run_id`` for a new run given that id; return the
    claim file (removing it gives the id back).

    Of processes claiming one id at once, exactly one succeeds: the claim file is
    created exclusively. A run not recorded in the store (``--no-record``) has only this
    to keep a second run from writing into its logs; a recorded run claims too, inside
    its store transaction, so neither kind can take the other's id. A directory that
    holds step logs but no claim (written before claims existed) is taken as well.

    Raises:
        StoreError: the id is taken (RUN_ID_TAKEN), unsafe, or the claim cannot be written.
    """
    require_unused_log_dir(runs_dir, run_id)
    directory = run_log_dir(runs_dir, run_id)
    claim = directory / CLAIM_FILE
    try:
        directory.mkdir(parents=True, exist_ok=True)
        os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        raise StoreError(f"run id {run_id!r} is taken: another run claimed it ({directory}); "
                         "pick another id or leave --run-id out", error_code="RUN_ID_TAKEN",
                         details={"run_id": run_id}) from None
    except OSError as exc:
        raise StoreError(f"cannot claim run id {run_id!r} in {directory} ({exc.strerror}); "
                         "check the state directory's permissions and free space") from None
    return claim


def newest_log(runs_dir: Path, run_id: str, step: str, known_attempt: int = 0) -> tuple[Path | None, int]:
    """Return ``(path, attempt)`` of the newest log file of ``step`` in run ``run_id``, or ``(None, 0)``.

    Stats only the step's own file names, where :func:`list_logs` lists the run's
    directory: a 10k-step run keeps 10k files there, and listing them hands the GIL back
    and forth once per entry, ~8 ms on an idle process but 300+ ms while another thread
    runs Python (a dashboard's model thread, say). ``known_attempt`` is the newest
    attempt the caller knows of (the store's record): a log file appears only once an
    attempt writes output, so an earlier attempt may have none, and a newer attempt than
    the record says may have started already.

    Raises:
        StoreError: the run id or step name is unsafe, or a link leads outside ``runs_dir``.
    """
    directory = run_log_dir(runs_dir, run_id)
    validate_step_name(step)

    def written(attempt: int) -> bool:
        return os.path.isfile(directory / log_file_name(step, attempt))

    attempt = max(known_attempt, 0)
    while written(attempt + 1):
        attempt += 1
    for candidate in range(attempt, 0, -1):
        if written(candidate):
            return log_path(runs_dir, run_id, step, candidate), candidate
    return None, 0


def _tail_bytes(path: Path, lines: int) -> bytes:
    """Return the last ``lines`` lines of the file, reading backwards in blocks."""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        pos = end
        chunks: list[bytes] = []
        newlines = 0
        while pos > 0 and newlines <= lines:
            step = min(_TAIL_BLOCK, pos)
            pos -= step
            fh.seek(pos)
            chunk = fh.read(step)
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
        data = b"".join(reversed(chunks))
    # A final newline ends the last line; it does not start an empty one.
    body = data[:-1] if data.endswith(b"\n") else data
    kept = body.split(b"\n")[-lines:] if lines > 0 else []
    text = b"\n".join(kept)
    return text + b"\n" if kept and data.endswith(b"\n") else text


def read_log(path: Path, tail_lines: int | None = None) -> str:
    """Return the text of the log at ``path`` (only its last ``tail_lines`` lines if given).

    Bytes that are not UTF-8 are shown as U+FFFD rather than failing.

    Raises:
        StoreError: the file does not exist (the step never started) or cannot be read.
    """
    try:
        if tail_lines is None:
            data = path.read_bytes()
        else:
            data = _tail_bytes(path, max(0, tail_lines))
    except FileNotFoundError:
        raise StoreError(f"no log file at {path}: the step has not started or its log was pruned") from None
    except OSError as exc:
        raise StoreError(f"cannot read log {path}: {exc.strerror}") from None
    return data.decode("utf-8", errors="replace")


def follow(
    path: Path,
    stop_when: Callable[[], bool],
    *,
    poll_interval: float = 0.1,
    tail_lines: int | None = None,
) -> Iterator[str]:
    """Yield the lines of a log as they are written, until ``stop_when()`` is true.

    Each line is yielded without its newline. The file may not exist yet (a step that
    has not started): ``follow`` waits for it. When ``stop_when()`` returns True the
    file is read to its end once more, a last partial line is yielded, and the
    iterator ends; so pass a predicate such as "the step is no longer running". If the
    file shrinks or is replaced while followed, reading restarts at its beginning.
    With ``tail_lines`` only the last lines already present are shown first.

    Raises:
        StoreError: the file exists but cannot be read.
    """
    fh = None
    identity: tuple[int, int] | None = None
    pending = b""
    try:
        while True:
            stopping = stop_when()
            if fh is None:
                try:
                    fh = path.open("rb")
                except FileNotFoundError:
                    if stopping:
                        return
                    time.sleep(poll_interval)
                    continue
                except OSError as exc:
                    raise StoreError(f"cannot read log {path}: {exc.strerror}") from None
                st = os.fstat(fh.fileno())
                identity = (st.st_dev, st.st_ino)
                if tail_lines is not None:
                    # Start at the beginning of the last ``tail_lines`` lines.
                    text = _tail_bytes(path, max(0, tail_lines))
                    fh.seek(max(0, st.st_size - len(text)))
                    tail_lines = None
            data = fh.read()
            if data:
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", errors="replace")
                continue
            if stopping:
                if pending:
                    yield pending.decode("utf-8", errors="replace")
                return
            # Nothing new: has the file been truncated or replaced under us?
            try:
                st = path.stat()
            except FileNotFoundError:
                st = None
            if st is None or (st.st_dev, st.st_ino) != identity:
                fh.close()
                fh, pending = None, b""
                continue
            if st.st_size < fh.tell():
                fh.seek(0)
                pending = b""
                continue
            time.sleep(poll_interval)
    finally:
        if fh is not None:
            fh.close()
