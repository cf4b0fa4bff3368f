"""Lock resources held across every process that shares a state directory.

A ``lock`` resource (a deploy lock, say) has one holder at a time. The
:class:`~core.resource_manager.ResourceManager` enforces that among its own process's
tasks, but the runs that must keep out of each other are often in different processes:
the dashboard starts each run as its own process, cron starts more, a second terminal
another. So each lock resource is also an ``flock`` on ``<state_dir>/locks/<id>.lock``,
which the process takes when one of its tasks is granted the lock and drops when the
last one releases it. The kernel drops it when the process ends, however it ends, so a
crash never leaves a lock held.

A process cannot be told when another one drops a lock; the resource manager tries
again on a short timer while one of its grants waits for it (:data:`RECHECK_SECONDS`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from urllib.parse import quote

__all__ = ["MachineLocks", "RECHECK_SECONDS"]

log = logging.getLogger(__name__)

# How soon a process looks again at a lock that another process held.
RECHECK_SECONDS = 0.2


class MachineLocks:
    """The ``flock`` files of one state directory's lock resources, as held by this process.

    Thread-safe. A lock file that cannot be made (a read-only state directory) leaves
    that lock enforced within this process only, with a warning logged once.

    Args:
        directory: where the lock files go (``<state_dir>/locks``); made when first needed.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._held: dict[str, int] = {}  # resource id -> the descriptor whose flock this process holds
        self._lock = threading.Lock()
        self._warned = False

    def path(self, resource_id: str) -> Path:
        """Return the lock file of ``resource_id`` (any id: it is quoted into one file name)."""
        return self.directory / f"{quote(resource_id, safe='')}.lock"

    def try_acquire(self, resource_id: str) -> bool:
        """Take the lock of ``resource_id`` for this process without waiting; True when this
        process holds it now (also when it already did), False when another process does."""
        with self._lock:
            if resource_id in self._held:
                return True
            fd = self._open(resource_id)
            if fd is None:
                return True  # no lock file possible: this process alone enforces the lock
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            self._held[resource_id] = fd
            return True

    def release(self, resource_id: str) -> None:
        """Drop this process's hold on ``resource_id`` (nothing when it holds none)."""
        with self._lock:
            fd = self._held.pop(resource_id, None)
        if fd is not None:
            os.close(fd)  # closing the only descriptor drops the flock

    def held_elsewhere(self, resource_id: str) -> bool:
        """True when another process holds the lock of ``resource_id`` at this moment.

        Looks by taking a shared lock for an instant, so only for reports (``orchtui
        status``): a process that tries to take the lock at that instant fails once and
        tries again on its timer.
        """
        with self._lock:
            if resource_id in self._held:
                return False
        if not self.path(resource_id).exists():
            return False
        fd = self._open(resource_id)
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False

    def close(self) -> None:
        """Drop every lock this process holds."""
        with self._lock:
            held, self._held = self._held, {}
        for fd in held.values():
            os.close(fd)

    def _open(self, resource_id: str) -> int | None:
        path = self.path(resource_id)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("lock resources are held by this process only: cannot use %s (%s)",
                            path, exc.strerror or exc)
            return None
