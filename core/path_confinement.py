"""Keep the text an AI agent sends from naming places outside the directories it may touch.

A workflow file in the workflows directory is the operator's and runs as written, but
its *parameters* come from whoever starts it. Over MCP that is an agent, and a bundled
step such as ``rm -rf {{ params.build_dir }}`` would delete whatever directory the agent
names. Shell quoting stops injection, not a path choice. So every string an agent gives
to a step that can touch files is read as a path, resolved the way the step would
resolve it (relative to the run's working directory, ``~`` expanded, symbolic links
followed), and refused when it lands outside the allowed roots.

Reading *every* string as a path needs no declaration from workflow authors and cannot
be dodged by spelling (``a/../../etc``, ``~``, a symbolic link named ``out``). Text that is
not meant as a path is almost never refused: ``hello world`` or ``https://x/y`` resolve to
a name inside the working directory. What is refused is text that starts with ``/`` or
``~`` or climbs out with ``..``, or names a link that leads out; the operator widens the
roots (``orchtui mcp --allow-path DIR``) when agents must name such places.

Inside the roots, some directories stay off limits (``protected``): the state directory
(the run store and logs) and the workflows directories. A file an agent's parameters
wrote there would become a workflow the server runs as written, shell steps included.

What a workflow hard-codes (a path inside its own step) is not checked: the operator
wrote it. Nor what steps compute at run time from their inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PathRefusal", "refused_path", "strings_in", "FILE_SAFE_MODULES"]

# Modules whose actions never open, write or run anything named by their parameters
# (echo, sleep, noop, fail): their text needs no confining.
FILE_SAFE_MODULES = frozenset({"builtin"})


@dataclass(frozen=True, slots=True)
class PathRefusal:
    """A string that names a place an agent may not name.

    Attributes:
        where: Which value it was, as a dotted path (``params.build_dir``).
        value: The string as given.
        resolved: Where it leads.
        protected: The protected directory it lies in, or None when it lies outside every root.
    """

    where: str
    value: str
    resolved: Path
    protected: Path | None = None


def strings_in(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Yield ``(where, text)`` for every string in ``value``, descending into lists and mappings.

    Mapping keys are yielded too (a step could use them as file names).
    """
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                yield f"{where}.{key}", key
            yield from strings_in(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from strings_in(item, f"{where}[{index}]")


def _leads_to(text: str, base: Path) -> Path | None:
    """Return where ``text`` leads as a path from ``base``, or None when it cannot be a path."""
    if not text or "\0" in text:
        return None  # no system call accepts it as a path
    try:
        chosen = Path(text).expanduser()
    except RuntimeError:  # "~nobody": no such user, so it is a relative name
        chosen = Path(text)
    try:
        return (base / chosen).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a name too long
        return None


def _within(target: Path, directory: Path) -> bool:
    return target == directory or target.is_relative_to(directory)


def refused_path(value: Any, *, base: Path, roots: Iterable[Path], protected: Iterable[Path] = (),
                 where: str) -> PathRefusal | None:
    """Return the first string in ``value`` that leads outside every root or into a protected directory.

    Args:
        value: A parameter value, or a mapping of them, as an agent sent it.
        base: The directory relative paths start from (the run's working directory).
        roots: Resolved directories a path may lie in (or be).
        protected: Resolved directories a path may not lie in (or be), even inside a root.
        where: The dotted name of ``value``, for the report.

    Returns:
        The offending string and where it leads, or None when every string is fine.
    """
    roots, protected = tuple(roots), tuple(protected)
    for name, text in strings_in(value, where):
        target = _leads_to(text, base)
        if target is None:
            continue
        if not any(_within(target, root) for root in roots):
            return PathRefusal(name, text, target)
        inside = next((directory for directory in protected if _within(target, directory)), None)
        if inside is not None:
            return PathRefusal(name, text, target, inside)
    return None
