"""Replacing a file whole: readers, and a crash or a full disk, see the old file or the new
one, never a part of the new one over the remains of the old."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

__all__ = ["write_text_atomic"]


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary sibling renamed over it.

    The new file keeps the permissions of the one it replaces. The temporary file is
    removed when anything fails.

    Raises:
        OSError: the file cannot be written (the old one, if any, is left as it was).
    """
    path = Path(path)
    # Unique per thread: two threads writing one file must not share a temporary file.
    temporary = path.with_name(f".{path.name[:200]}.{os.getpid()}.{threading.get_native_id()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        try:
            os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        except FileNotFoundError:
            pass
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
