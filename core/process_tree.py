"""Run one subprocess tree under supervision: capped logs, deadline, cancel, no orphans.

A step's command runs in its own process group, with stdin from ``/dev/null`` and
stdout/stderr on pipes. (A process group rather than a new session: ``setsid`` makes
the kernel create a scheduler autogroup, which costs about a millisecond per spawn,
roughly doubling the cost of a trivial step; the group is all that killing needs.) One thread (the caller's) waits on the pipes
and on a pidfd with ``poll``, so a step that exits quickly costs no polling sleep. Both
streams go to the attempt's log file, capped at ``log_cap_bytes`` with a visible
``[orchtui: log truncated at N bytes]`` marker; stdout is also kept (up to the same cap)
as the step's output. The log file is created on the first byte of output, so a silent
step leaves none.

Killing a tree (timeout, cancel, or processes left holding the pipes ``_PIPE_LINGER``
seconds after the main process exited) is: collect the processes first (psutil descendants of the main
process, members of its process group, and anything carrying one of this run's markers,
which catches grandchildren that double forked and called ``setsid``), SIGTERM them all,
keep draining the pipes for ``kill_grace`` seconds, then collect again and SIGKILL
whatever survived.

A step's processes carry two markers, because each can be shed: the
``ORCHTUI_STEP_TOKEN`` environment variable, which ``env -i`` clears, and an inherited
descriptor of a memfd named after the token and the owner (see below), which goes only
when a process closes descriptors it did not open (shells, ``nohup``, ``setsid`` and
``env`` do not). Together they catch
``( setsid env -i cmd >/dev/null 2>&1 & )``, which leaves the process group, the tree,
the environment and the pipes at once. (The marker is a memfd, not a pipe or a file:
its name is in ``/proc/<pid>/fd``, so finding it needs no bookkeeping, and it touches no
filesystem.) Only a process that closes every descriptor and clears its environment,
as a daemon written to escape does, gets away; cgroups would be the cure for that.

Every step process also carries ``ORCHTUI_OWNER`` (the pid and start time of the orchtui
process that started it), as a variable and in the marker memfd's name. When that
process dies without cleaning up (kill -9, OOM killer, power cut of the parent only),
its steps live on as orphans in their own process groups; :func:`kill_orphans`, which
the run store calls on the dead owner's runs, finds them by that marker and stops them
before anything resumes the run.

A memory limit is applied with ``ulimit -v`` (RLIMIT_AS) in a tiny ``/bin/sh`` wrapper
that then ``exec``s the command: unlike ``preexec_fn`` this is safe in a threaded parent
and keeps ``subprocess`` on its fast vfork path.
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import itertools
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Protocol

import psutil

__all__ = [
    "TOKEN_ENV",
    "OWNER_ENV",
    "CancelSignal",
    "ProcessResult",
    "CappedLog",
    "memory_limited_argv",
    "mark_own_children",
    "strip_own_marker",
    "supervising",
    "hurry_kills",
    "hurried",
    "spawn",
    "run_process",
    "collect_tree",
    "kill_tree",
    "kill_orphans",
    "new_token",
    "owner_marker",
    "adopt_owner",
    "this_process",
    "process_alive",
]

TOKEN_ENV = "ORCHTUI_STEP_TOKEN"
"""Environment variable marking every process of one step attempt (inherited by forks)."""
_TOKEN_KEY = TOKEN_ENV.encode()
OWNER_ENV = "ORCHTUI_OWNER"
"""Environment variable naming the orchtui process that started a step (see :func:`owner_marker`)."""
_OWNER_KEY = OWNER_ENV.encode()
_START_TIME_TOLERANCE = 1.0  # seconds; psutil start times are exact to a clock tick
# The names of the marker memfds, as ``/proc/<pid>/fd/N`` links show them.
_STEP_MEMFD = "orchtui-step-"
_OWNER_IN_MARKER = "-owner-"
_MEMFD_LINK_PREFIX = b"/memfd:" + _STEP_MEMFD.encode()

# How often a wait re-checks a cancel event that cannot wake ``poll`` by itself.
_CANCEL_SLICE = 0.05
# Bytes of stderr kept for the failure message.
_STDERR_TAIL = 4096
_READ_SIZE = 65536
# How long a step's pipes may stay open after its main process exited before whatever
# holds them counts as left behind. Not zero: another thread's spawn forks a child that
# holds a copy of every descriptor open at that moment, this step's pipe ends included,
# until it execs (close-on-exec), so a step that ends just then sees its end of file a
# moment late. Without this, 6% of 600 `true` steps on 4 threads were taken for steps
# that left processes running: each scanned /proc for its tree and noted a kill of
# nothing in its log (and shell steps ran 1.34x slower than bare subprocess.run).
_PIPE_LINGER = 0.25
_POLL_IN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR


class CancelSignal(Protocol):
    """What a cancel event must offer (``threading.Event`` does)."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


@dataclasses.dataclass(slots=True)
class ProcessResult:
    """What one supervised process tree did.

    ``returncode`` follows ``subprocess``: negative for death by a signal.
    ``killed_pids`` lists the processes this supervisor had to signal (empty when the
    command simply exited).
    """

    pid: int
    returncode: int
    stdout: bytes
    stdout_truncated: bool
    stderr_tail: bytes
    log_bytes: int
    log_truncated: bool
    timed_out: bool = False
    log_error: str = ""  # why the log stopped being written (a full disk, say), if it did
    cancelled: bool = False
    killed_pids: list[int] = dataclasses.field(default_factory=list)
    leftovers_killed: bool = False

    def stderr_lines(self, count: int = 5) -> list[str]:
        """Return the last ``count`` non-empty lines of stderr, decoded."""
        text = self.stderr_tail.decode("utf-8", errors="replace")
        return [line for line in text.splitlines() if line.strip()][-count:]


class CappedLog:
    """Append-only log writer that stops at a byte cap and says so in the file.

    The file (and its directory) is created on the first write, so a step that prints
    nothing costs no file creation and leaves no empty log. ``path=None`` keeps only
    the accounting. The file is unbuffered so a reader tailing it sees output at once.
    A log that cannot be written (a full disk, say) stops being written and says why in
    ``error``; it never raises, so the step it records goes on and ends on its own terms.
    """

    def __init__(self, path: str | os.PathLike[str] | None, cap_bytes: int) -> None:
        self.path = None if path is None else Path(path)
        self.cap = max(0, int(cap_bytes))
        self.truncated = False
        self.written = 0
        self.error = ""  # why the log stopped being written, when it did
        self._file: IO[bytes] | None = None

    def _open(self) -> IO[bytes] | None:
        if self._file is None and self.path is not None and not self.error:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - closed in close()
            except OSError as exc:
                self._failed(exc)
                return None
            self.written += self._file.tell()  # bytes already there count against the cap
        return self._file

    def _failed(self, exc: OSError) -> None:
        self.error = f"cannot write the log {self.path}: {exc.strerror or exc}"
        self.close()

    def _append(self, sink: IO[bytes], data: bytes) -> None:
        try:
            sink.write(data)
        except OSError as exc:
            self._failed(exc)

    def write(self, data: bytes) -> None:
        """Append ``data``, or the part of it that fits, then the truncation marker once."""
        if self.truncated or not data:
            return
        sink = self._open()
        room = self.cap - self.written
        if len(data) > room:
            data = data[: max(0, room)]
            self.truncated = True
        if sink is not None and data:
            self._append(sink, data)
        self.written += len(data)
        if self.truncated and self._file is not None:
            self._append(self._file, f"\n[orchtui: log truncated at {self.cap} bytes]\n".encode())

    def note(self, text: str) -> None:
        """Append an orchtui remark (never counted against, nor blocked by, the cap)."""
        sink = self._open()
        if sink is not None:
            self._append(sink, f"[orchtui: {text}]\n".encode())

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:  # unbuffered: nothing was left to write
                pass
            self._file = None


# Tokens are a random per-process prefix plus a counter: unique on the machine like a
# uuid4, without a getrandom() call per step. Each call that releases the GIL costs a
# contended re-acquisition when several workers spawn at once, so a step's path avoids
# the needless ones (here, the /dev/null open below, and reads of pipes known at EOF).
_TOKEN_PREFIX = os.urandom(8).hex()
_token_serial = itertools.count(1)


def _new_token_prefix() -> None:
    """A forked child (a process-pool worker, say) must not repeat its parent's tokens."""
    global _TOKEN_PREFIX
    _TOKEN_PREFIX = os.urandom(8).hex()


os.register_at_fork(after_in_child=_new_token_prefix)


def new_token() -> str:
    """Return a fresh value for :data:`TOKEN_ENV` (32 hex digits, unique on this machine)."""
    return f"{_TOKEN_PREFIX}{next(_token_serial):016x}"


def this_process() -> tuple[int, float]:
    """Return (pid, start time) of the current process; recomputed after a fork."""
    pid = os.getpid()
    return pid, _start_time(pid)


@functools.cache
def _start_time(pid: int) -> float:
    return psutil.Process(pid).create_time()


def process_alive(pid: int | None, started: float | None) -> bool:
    """Return True when process ``pid`` runs and is the one that started at ``started``.

    A pid alone is not proof: pids are recycled, so the start time must match too. A
    zombie counts as dead. With ``started`` unknown, any live ``pid`` counts; a process
    we may not inspect counts as alive.
    """
    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True
    return started is None or abs(created - started) < _START_TIME_TOLERANCE


def owner_marker(pid: int, started: float) -> str:
    """Return the :data:`OWNER_ENV` value of steps started by process ``pid`` (started at ``started``)."""
    return f"{pid}:{started!r}"


_adopted_owner: bytes | None = None


def adopt_owner(pid: int, started: float) -> None:
    """Mark the steps this process starts as started by process ``pid`` instead.

    For helper processes (a process-executor child) whose steps belong to the orchtui
    process that runs the workflow.
    """
    global _adopted_owner
    _adopted_owner = owner_marker(pid, started).encode()


def _owner_of_this_process() -> bytes:
    return _adopted_owner if _adopted_owner is not None else _own_marker(os.getpid())


def _step_marker(token: str) -> int | None:
    """Return a new close-on-exec memfd that marks the processes of step ``token``, started
    by this process's owner, as ``orchtui-step-<token>-owner-<pid>:<start>``; None where
    memfds do not exist (not Linux) or cannot be made (out of descriptors: the step then
    runs marked by its environment only).

    Never descriptor 3: ``subprocess`` on Python 3.11 closes a child's descriptors around
    the ones it keeps with ``close_range``, and a kept 3 makes that an empty range, an
    error, and a fallback that lists ``/proc/self/fd`` (about 0.1 ms a spawn).
    """
    try:
        fd = os.memfd_create(f"{_STEP_MEMFD}{token}{_OWNER_IN_MARKER}{_owner_of_this_process().decode()}")
    except (AttributeError, OSError):
        return None
    if fd == 3:
        try:
            moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 4)
        except OSError:
            return fd
        os.close(fd)
        fd = moved
    return fd


def mark_own_children() -> None:
    """Put this process's :data:`OWNER_ENV` marker in its own environment.

    :func:`run_process` marks the step commands it starts. Processes started any other
    way inherit the environment instead: a process executor's fork server and the
    children it forks, and whatever a ``python.call`` starts itself (``subprocess``,
    ``os.system``). With the marker there, :func:`kill_orphans` finds them too once this
    process dies, so a resume never runs beside them. Call it before starting those.
    """
    os.environ[OWNER_ENV] = _owner_of_this_process().decode()


def strip_own_marker(env: dict[str, str]) -> None:
    """Remove this process's :data:`OWNER_ENV` marker from ``env``, for a process meant to
    outlive it (a detached run the dashboard starts), which its death must not stop."""
    if env.get(OWNER_ENV, "").encode() == _owner_of_this_process():
        del env[OWNER_ENV]


_SUPERVISING = threading.local()
_hurried = False


def hurry_kills() -> None:
    """Cut every grace period of this process short: trees being stopped get SIGKILL now.

    For a second Ctrl-C (or SIGTERM) while a run is being cancelled: the user asked to stop
    waiting. Safe to call from a signal handler (it sets a flag that stopping trees poll).
    """
    global _hurried
    _hurried = True


def hurried() -> bool:
    """True once :func:`hurry_kills` was called."""
    return _hurried


def supervising() -> bool:
    """True while this thread is inside :func:`run_process`, which enforces its deadline
    itself (killing the tree and noting it in the log)."""
    return getattr(_SUPERVISING, "depth", 0) > 0


@functools.cache
def _own_marker(pid: int) -> bytes:
    return owner_marker(pid, _start_time(pid)).encode()


_devnull_fd: int | None = None
_devnull_lock = threading.Lock()


def _devnull() -> int:
    """Return a read-only descriptor of /dev/null, opened once per process, for stdin."""
    global _devnull_fd
    if _devnull_fd is None:
        with _devnull_lock:
            if _devnull_fd is None:
                _devnull_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    return _devnull_fd


def _child_environment(
    env: Mapping[str, str] | None, changes: Mapping[str, str | None] | None, token: str
) -> dict[bytes, bytes]:
    """Return the child's environment, as bytes: ``env`` (None: ours), ``changes`` laid
    over it (None unsets a variable), and the step's :data:`TOKEN_ENV` marker.

    Bytes because ``subprocess`` encodes every variable on each spawn, which for a
    trivial step costs more Python time than anything else orchtui adds; with bytes
    it only checks them. On POSIX ``os.environ`` keeps exactly that bytes form in its
    ``_data`` dict (updated in place by every change to ``os.environ``), so copying
    it is one C-level dict copy instead of decoding and re-encoding each variable.
    """
    if env is None:
        data = getattr(os.environ, "_data", None)
        if os.supports_bytes_environ and isinstance(data, dict):
            child = data.copy()
        else:  # a platform without a bytes environ behind os.environ
            child = {os.fsencode(key): os.fsencode(value) for key, value in os.environ.items()}
    else:
        child = {os.fsencode(key): os.fsencode(value) for key, value in env.items()}
    for key, value in (changes or {}).items():
        if value is None:
            child.pop(os.fsencode(key), None)
        else:
            child[os.fsencode(key)] = os.fsencode(value)
    child[_TOKEN_KEY] = token.encode()
    child[_OWNER_KEY] = _owner_of_this_process()
    return child


def memory_limited_argv(argv: Sequence[str], limit_bytes: int) -> list[str]:
    """Return an argv that runs ``argv`` with RLIMIT_AS set to ``limit_bytes``.

    ``ulimit -v`` counts KiB; the wrapper ``exec``s, so the pid stays the command's.
    """
    kib = max(1, int(limit_bytes) // 1024)
    script = 'ulimit -v "$1" || exit 125; shift; exec "$@"'
    return ["/bin/sh", "-c", script, "orchtui-memlimit", str(kib), *argv]


def spawn(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | Mapping[bytes, bytes] | None = None,
    memory_limit_bytes: int | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new process group with piped stdout/stderr and stdin from /dev/null.

    ``pass_fds`` are descriptors the child inherits (at the same numbers); no other is.

    Returns:
        The running ``Popen``; its pid is also its process group id.

    Raises:
        OSError: the program or the working directory does not exist, or is not executable.
    """
    if memory_limit_bytes:
        argv = memory_limited_argv(argv, memory_limit_bytes)
    return subprocess.Popen(
        list(argv),
        stdin=_devnull(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        process_group=0,
        pass_fds=tuple(pass_fds),
    )


# ------------------------------------------------------------------ killing


def _is_gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def collect_tree(pid: int, *, pgid: int | None = None, token: str | None = None) -> dict[int, psutil.Process]:
    """Return the live processes that belong to the tree rooted at ``pid``.

    That is ``pid`` itself, its psutil descendants, and, when given, every other process
    in process group ``pgid`` or carrying the step's ``token`` (in its environment as
    ``TOKEN_ENV=token``, or as a descriptor of the step's marker memfd). The last two need
    a scan of all processes, so they are only worth it when killing. Zombies are left
    out: they are already dead.
    """
    found: dict[int, psutil.Process] = {}
    try:
        root = psutil.Process(pid)
        found[pid] = root
        for child in root.children(recursive=True):
            found[child.pid] = child
    except psutil.Error:
        pass
    if pgid is not None or token is not None:
        me = os.getpid()
        needle = f"{TOKEN_ENV}={token}".encode() if token else None
        marker = _MEMFD_LINK_PREFIX + f"{token}{_OWNER_IN_MARKER}".encode() if token else None
        for proc in psutil.process_iter():
            if proc.pid in found or proc.pid == me:
                continue
            try:
                if pgid is not None and os.getpgid(proc.pid) == pgid:
                    found[proc.pid] = proc
                elif needle is not None and needle in _raw_environ(proc):
                    found[proc.pid] = proc
                elif marker is not None and any(link.startswith(marker) for link in _marker_links(proc.pid)):
                    found[proc.pid] = proc
            except (OSError, psutil.Error):
                continue
    return {p: proc for p, proc in found.items() if not _is_gone(proc)}


def _marker_links(pid: int) -> list[bytes]:
    """Return where process ``pid``'s descriptors of step marker memfds point (as
    ``/memfd:orchtui-step-...`` links); empty when there are none or they cannot be read."""
    if not sys.platform.startswith("linux"):
        return []
    fd_dir = b"/proc/%d/fd" % pid
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return []
    links = []
    for name in names:
        try:
            link = os.readlink(fd_dir + b"/" + name)
        except OSError:
            continue  # closed meanwhile
        if link.startswith(_MEMFD_LINK_PREFIX):
            links.append(link)
    return links


def _raw_environ(proc: psutil.Process) -> bytes:
    """Return the process environment as ``NAME=value\\0`` bytes (empty when unreadable)."""
    if sys.platform.startswith("linux"):  # cheaper than psutil's parsed dict, and enough
        try:
            return Path(f"/proc/{proc.pid}/environ").read_bytes()
        except OSError:
            return b""
    try:
        return b"\0".join(f"{k}={v}".encode() for k, v in proc.environ().items())
    except psutil.Error:
        return b""


def _signal_all(procs: dict[int, psutil.Process], pgid: int | None, sig: int) -> None:
    if pgid is not None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    for proc in procs.values():
        try:
            proc.send_signal(sig)  # psutil refuses if the pid was reused meanwhile
        except psutil.Error:
            continue


def _wait_gone(procs: dict[int, psutil.Process], timeout: float) -> dict[int, psutil.Process]:
    """Wait up to ``timeout`` s for ``procs`` to die; return those still alive.

    Polls, because the processes are mostly not our children (no waitpid), and a dead
    one may linger as a zombie of an init that does not reap.
    """
    end = time.monotonic() + timeout
    pause = 0.002
    alive = dict(procs)
    while True:
        alive = {p: proc for p, proc in alive.items() if not _is_gone(proc)}
        remaining = end - time.monotonic()
        if not alive or remaining <= 0:
            return alive
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, 0.05)


def kill_tree(pid: int, *, grace: float = 5.0, token: str | None = None, pgid: int | None = None) -> list[int]:
    """Terminate the process tree rooted at ``pid``: SIGTERM, ``grace`` s, then SIGKILL.

    The tree is collected before any signal is sent (see :func:`collect_tree`), and again
    before SIGKILL so that processes forked during the grace period die too. It does not
    reap ``pid``; its parent must (``Popen.wait``).

    Returns:
        The pids that were signalled.
    """
    procs = collect_tree(pid, pgid=pgid, token=token)
    signalled = set(procs)
    _signal_all(procs, pgid, signal.SIGTERM)
    survivors = _wait_gone({p: proc for p, proc in procs.items() if p != pid}, grace)
    if pid in procs and not _is_gone(procs[pid]):
        survivors[pid] = procs[pid]
    if survivors or pgid is not None:
        survivors.update(collect_tree(pid, pgid=pgid, token=token))
        signalled.update(survivors)
        _signal_all(survivors, pgid, signal.SIGKILL)
        _wait_gone({p: proc for p, proc in survivors.items() if p != pid}, 1.0)
    return sorted(signalled)


def _owner_start_in_environ(environ: bytes, prefix: bytes) -> float | None:
    """Return the start time that an ``ORCHTUI_OWNER=<pid>:`` marker (``prefix``) in
    ``environ`` gives; None without one."""
    start = environ.find(prefix)
    if start < 0 or (start and environ[start - 1] != 0):
        return None  # no marker, or the bytes sit inside another variable's value
    end = environ.find(b"\0", start)
    return _float_or_none(environ[start + len(prefix):end if end >= 0 else None])


def _owner_start_in_links(links: list[bytes], owner: bytes) -> float | None:
    """Return the start time that a step marker memfd link among ``links`` gives for its
    owner (``owner``: ``-owner-<pid>:``, followed by the start, then `` (deleted)``);
    None without one."""
    for link in links:
        at = link.find(owner)
        if at >= 0:
            return _float_or_none(link[at + len(owner):].split(b" ", 1)[0])
    return None


def _float_or_none(text: bytes) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def find_orphans(owner_pid: int, owner_started: float | None) -> dict[int, psutil.Process]:
    """Return the live processes marked as started by process ``owner_pid`` (started at
    ``owner_started``; None: at any time), by :data:`OWNER_ENV` or by a step marker
    memfd naming that owner. Scans every process."""
    in_environ = f"{OWNER_ENV}={owner_pid}:".encode()
    in_links = f"{_OWNER_IN_MARKER}{owner_pid}:".encode()
    me = os.getpid()
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        started = _owner_start_in_environ(_raw_environ(proc), in_environ)
        if started is None:
            started = _owner_start_in_links(_marker_links(proc.pid), in_links)
        if started is None:
            continue
        if owner_started is None or abs(started - owner_started) < _START_TIME_TOLERANCE:
            found[proc.pid] = proc
    return {p: proc for p, proc in found.items() if not _is_gone(proc)}


def kill_orphans(owner_pid: int, owner_started: float | None, *, grace: float = 2.0) -> list[int]:
    """Stop the step processes that dead orchtui process ``owner_pid`` left behind.

    SIGTERM to each process found by :func:`find_orphans`, ``grace`` seconds, then SIGKILL
    to whatever survived (found again, so forks made meanwhile go too). Does nothing
    while the owner still lives: its steps are its own business then.

    Returns:
        The pids that were signalled (empty when there were none).
    """
    if process_alive(owner_pid, owner_started):
        return []
    procs = find_orphans(owner_pid, owner_started)
    if not procs:
        return []
    signalled = set(procs)
    _signal_all(procs, None, signal.SIGTERM)
    survivors = _wait_gone(procs, grace)
    if survivors:
        survivors.update(find_orphans(owner_pid, owner_started))
        signalled.update(survivors)
        _signal_all(survivors, None, signal.SIGKILL)
        _wait_gone(survivors, 1.0)
    return sorted(signalled)


# ---------------------------------------------------------------- supervising


class _Supervisor:
    """The state of one supervised run; :func:`run_process` is its only user."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        log: CappedLog,
        output_cap: int,
        deadline: float | None,
        cancel_event: CancelSignal | None,
        kill_grace: float,
        token: str | None,
    ) -> None:
        self.proc = proc
        self.log = log
        self.output_cap = output_cap
        self.deadline = deadline
        self.cancel_event = cancel_event
        self.kill_grace = kill_grace
        self.token = token
        self.stdout = bytearray()
        self.stdout_truncated = False
        self.stderr_tail = bytearray()
        self.poller = select.poll()
        assert proc.stdout is not None and proc.stderr is not None
        self.out_fd = proc.stdout.fileno()
        self.err_fd = proc.stderr.fileno()
        self.open_fds = {self.out_fd, self.err_fd}
        for fd in self.open_fds:
            self.poller.register(fd, _POLL_IN)
        self.pidfd: int | None = None
        try:
            self.pidfd = os.pidfd_open(proc.pid)
            self.poller.register(self.pidfd, select.POLLIN)
        except (AttributeError, OSError):
            self.pidfd = None  # not Linux >= 5.3: fall back to short poll slices
        self.exited = False
        self.timed_out = False
        self.cancelled = False
        self.leftovers = False
        self.killed: set[int] = set()
        # Set once SIGTERM went out: when survivors get SIGKILL.
        self.kill_at: float | None = None
        self.killed_hard = False
        self.tree: dict[int, psutil.Process] = {}
        # Set when the main process exited with the pipes still open: when whatever holds
        # them counts as left behind (see ``_PIPE_LINGER``).
        self.linger_until: float | None = None

    # -- reading

    def _read(self, fd: int) -> None:
        try:
            data = os.read(fd, _READ_SIZE)
        except OSError:
            data = b""
        if not data:
            self.poller.unregister(fd)
            self.open_fds.discard(fd)
            return
        self.log.write(data)
        if fd == self.out_fd:
            room = self.output_cap - len(self.stdout)
            if len(data) > room:
                data = data[: max(0, room)]
                self.stdout_truncated = True
            self.stdout += data
        else:
            self.stderr_tail += data
            if len(self.stderr_tail) > 2 * _STDERR_TAIL:
                del self.stderr_tail[:-_STDERR_TAIL]

    def _poll(self, timeout: float | None) -> int:
        """Wait up to ``timeout`` s (None: forever) and handle what is ready; return the count."""
        millis = None if timeout is None else max(0, math.ceil(timeout * 1000))
        events = self.poller.poll(millis)
        for fd, event in events:
            if fd == self.pidfd:
                self._mark_exited()
            elif fd in self.open_fds:
                if event & select.POLLIN:
                    self._read(fd)
                else:  # hang-up with nothing left to read: EOF, without a read() to say so
                    self.poller.unregister(fd)
                    self.open_fds.discard(fd)
        return len(events)

    def _mark_exited(self) -> None:
        self.exited = True
        if self.pidfd is not None:
            self.poller.unregister(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = None

    def _check_exited(self) -> None:
        """Without a pidfd: see whether the main process has exited (reaping it is fine:
        its process group id stays reserved while any member lives)."""
        self.exited = self.proc.poll() is not None

    # -- the loop

    def _timeout(self, now: float) -> float | None:
        """How long the next poll may block."""
        limits = []
        if self.kill_at is not None:
            limits.append(self.kill_at - now)
            if not self.killed_hard:
                limits.append(_CANCEL_SLICE)  # a hurry (a second Ctrl-C) cuts the grace short
        else:
            if self.deadline is not None:
                limits.append(self.deadline - now)
            if self.linger_until is not None:
                limits.append(self.linger_until - now)
        if self.cancel_event is not None and self.kill_at is None:
            limits.append(_CANCEL_SLICE)
        if self.pidfd is None and not self.exited:
            limits.append(_CANCEL_SLICE)
        return max(0.0, min(limits)) if limits else None

    def run(self) -> None:
        while self.open_fds or not self.exited:
            self._poll(self._timeout(time.monotonic()))
            if self.pidfd is None and not self.exited:
                self._check_exited()
            if self.kill_at is None:
                if self.exited and self.open_fds:
                    self._drain_ready()
                    if self.open_fds:
                        if self.linger_until is None:
                            self.linger_until = time.monotonic() + _PIPE_LINGER
                        elif time.monotonic() >= self.linger_until:
                            # The step is done but something it started still holds the pipes.
                            self.leftovers = True
                            self._terminate()
                elif self.cancel_event is not None and self.cancel_event.is_set():
                    self.cancelled = True
                    self._terminate()
                elif self.deadline is not None and time.monotonic() >= self.deadline:
                    self.timed_out = True
                    self._terminate()
            elif not self.killed_hard and (_hurried or time.monotonic() >= self.kill_at):
                self._kill_survivors()
            elif self.killed_hard and time.monotonic() >= self.kill_at:
                break  # unkillable holder of the pipes (e.g. uninterruptible sleep): stop reading
        if self.kill_at is not None and not self.killed_hard:
            # Pipes closed and the main process exited within the grace period; other
            # collected processes (detached, not holding the pipes) may still be alive.
            rest = _wait_gone(self.tree, 0.0 if _hurried else max(0.0, self.kill_at - time.monotonic()))
            if rest:
                self._kill_survivors()
        if self.killed_hard:
            # A killed process closes its pipes before it has finished exiting: wait for
            # that too, so that once this returns nothing of the tree runs any more.
            _wait_gone(self.tree, max(0.0, self.kill_at - time.monotonic()))

    def _drain_ready(self) -> None:
        """Read whatever the pipes hold right now, without waiting for more."""
        while self.open_fds and self._poll(0):
            continue

    def _terminate(self) -> None:
        pid = self.proc.pid
        self.tree = collect_tree(pid, pgid=pid, token=self.token)
        self.killed.update(self.tree)
        _signal_all(self.tree, pid, signal.SIGTERM)
        self.tree.pop(pid, None)  # the main process is watched through the pidfd (or poll())
        self.kill_at = time.monotonic() + self.kill_grace

    def _kill_survivors(self) -> None:
        pid = self.proc.pid
        survivors = {p: proc for p, proc in self.tree.items() if not _is_gone(proc)}
        survivors.update(collect_tree(pid, pgid=pid, token=self.token))
        self.killed.update(survivors)
        _signal_all(survivors, pid, signal.SIGKILL)
        survivors.pop(pid, None)  # the main process is reaped by Popen.wait
        self.tree = survivors
        self.killed_hard = True
        # SIGKILL cannot be ignored; allow a moment for the kernel to close the pipes.
        self.kill_at = time.monotonic() + 2.0

    def reap(self) -> int:
        """Close the pipes and pidfd, reap the main process and return its returncode."""
        for fd in list(self.open_fds):
            self.poller.unregister(fd)
        self.open_fds.clear()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        return self.proc.wait()


def run_process(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    env_changes: Mapping[str, str | None] | None = None,
    log_path: str | os.PathLike[str] | None = None,
    log_cap_bytes: int = 5 * 1024 * 1024,
    output_cap_bytes: int | None = None,
    memory_limit_bytes: int | None = None,
    deadline: float | None = None,
    cancel_event: CancelSignal | None = None,
    kill_grace: float = 5.0,
) -> ProcessResult:
    """Run ``argv`` to completion under supervision and return what happened.

    Parameters:
        env: the complete environment of the child (``None``: inherit ours); a
            :data:`TOKEN_ENV` marker is added so detached grandchildren can be found.
        env_changes: variables set over ``env`` (a None value unsets one).
        deadline: ``time.monotonic()`` value at which the tree is killed (``timed_out``).
        cancel_event: when set, the tree is killed (``cancelled``); checked every 50 ms.
        output_cap_bytes: how much stdout to keep in memory (default ``log_cap_bytes``).

    Returns:
        A :class:`ProcessResult`. The main process is always reaped, and every process
        of the tree has been signalled when ``timed_out``/``cancelled``/``leftovers_killed``.

    Raises:
        OSError: the program could not be started (missing, not executable, bad cwd).
    """
    token = new_token()
    child_env = _child_environment(env, env_changes, token)
    log = CappedLog(log_path, log_cap_bytes)
    step_marker = _step_marker(token)
    try:
        proc = spawn(argv, cwd=cwd, env=child_env, memory_limit_bytes=memory_limit_bytes,
                     pass_fds=() if step_marker is None else (step_marker,))
    except BaseException:
        log.close()
        raise
    finally:
        if step_marker is not None:
            os.close(step_marker)  # the step's processes hold it now; this one must not
    supervisor = _Supervisor(
        proc,
        log,
        log_cap_bytes if output_cap_bytes is None else output_cap_bytes,
        deadline,
        cancel_event,
        kill_grace,
        token,
    )
    _SUPERVISING.depth = getattr(_SUPERVISING, "depth", 0) + 1
    try:
        supervisor.run()
    except BaseException:
        # KeyboardInterrupt or similar in the caller's thread: still leave no orphan.
        kill_tree(proc.pid, grace=0.5, token=token, pgid=proc.pid)
        raise
    finally:
        _SUPERVISING.depth -= 1
        returncode = supervisor.reap()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
        if supervisor.timed_out or supervisor.cancelled:
            why = "timed out" if supervisor.timed_out else "cancelled"
            how = (f"SIGKILL after the {kill_grace:g}s grace period" if supervisor.killed_hard
                   else "they ended within the grace period")
            log.note(f"{why}: sent SIGTERM to {len(supervisor.killed)} process(es) of the step; {how}")
        if supervisor.leftovers:
            log.note(f"killed {len(supervisor.killed)} process(es) the step left running" if supervisor.killed
                     else "the step's output stayed open after it ended, held by no process of its own")
        log.close()
    return ProcessResult(
        pid=proc.pid,
        returncode=returncode,
        stdout=bytes(supervisor.stdout),
        stdout_truncated=supervisor.stdout_truncated,
        stderr_tail=bytes(supervisor.stderr_tail[-_STDERR_TAIL:]),
        log_bytes=log.written,
        log_truncated=log.truncated,
        timed_out=supervisor.timed_out,
        cancelled=supervisor.cancelled,
        killed_pids=sorted(supervisor.killed),
        leftovers_killed=supervisor.leftovers,
        log_error=log.error,
    )
