"""Keep the text an AI agent sends from naming places outside the directories it may touch.

A workflow file in the workflows directory is the operator's and runs as written, but
its *parameters* come from whoever starts it. Over MCP that is an agent, and a bundled
step such as ``rm -rf {{ params.build_dir }}`` would delete whatever directory the agent
names. Shell quoting stops injection, not a path choice. So every string an agent gives
to a step that can touch files is read as a path, resolved the way the step would
resolve it (relative to the run's working directory, ``~`` expanded, symbolic links
followed), and refused when:

* it lands outside the allowed roots, or on a root itself (``rm -rf .``);
* it lands in a protected directory, or on a directory that holds one: the state
  directory (the run store and logs) and the workflows directories, where a written
  file would become a workflow the server runs as written, shell steps included;
* it is empty or holds a NUL: ``{{ params.dir }}/{{ params.name }}`` with an empty
  ``dir`` is ``/`` followed by whatever ``name`` says;
* it climbs above where it starts with ``..``, even when it resolves inside: joined
  under another parameter (``{{ params.dir }}/{{ params.name }}``) it would climb
  further than it seems to (``../../../tmp/w/x`` resolves to ``/tmp/w/x`` from ``/tmp/w``).

A protected directory that holds a root (``--workflows-dir .``) would forbid everything;
there only its workflow files (``*.yaml``, ``*.yml``, ``*.json`` directly in it) are protected.

Reading *every* string as a path needs no declaration from workflow authors and cannot
be dodged by spelling (``a/../../etc``, ``~``, a symbolic link named ``out``). Text that is
not meant as a path is rarely refused: ``hello world`` or ``https://x/y`` resolve to a
name inside the working directory. Only parameters that can reach a file-touching step
are checked (:func:`file_reaching_params`), so a message that only an ``echo`` prints
may say anything.

What a workflow hard-codes (a path inside its own step) is not checked: the operator
wrote it. Nor what steps compute at run time from their inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .models import Workflow
from .templating import find_references

__all__ = ["PathRefusal", "refused_path", "strings_in", "file_reaching_params", "FILE_SAFE_MODULES"]

# Modules whose actions never open, write or run anything named by their parameters
# (echo, sleep, noop, fail): their text needs no confining.
FILE_SAFE_MODULES = frozenset({"builtin"})


@dataclass(frozen=True, slots=True)
class PathRefusal:
    """A string that names a place an agent may not name.

    Attributes:
        where: Which value it was, as a dotted path (``params.build_dir``).
        value: The string as given.
        resolved: Where it leads (None for an empty string or one holding a NUL).
        why: What is wrong with that place, as a phrase ending the sentence
            ``<where> <value> leads to <resolved>, ...``.
        code: ``PATH_OUTSIDE_WORKDIR`` or ``PATH_PROTECTED``.
    """

    where: str
    value: str
    resolved: Path | None
    why: str
    code: str = "PATH_OUTSIDE_WORKDIR"

    def sentence(self) -> str:
        """Return the refusal as the start of a one-line error message."""
        if self.resolved is None:
            return f"{self.where} {self.value!r} {self.why}"
        return f"{self.where} {self.value!r} leads to {self.resolved}, {self.why}"


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
    """Return where ``text`` leads as a path from ``base``, or None when it cannot be resolved."""
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


_WORKFLOW_SUFFIXES = (".yaml", ".yml", ".json")


def _climbs(text: str) -> bool:
    """True when relative path ``text`` goes above its start with ``..`` at some point."""
    if text.startswith(("/", "~")):
        return False  # absolute: where it leads is all that matters
    depth = 0
    for part in text.replace("\\", "/").split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _protected_place(target: Path, protected: tuple[Path, ...], roots: tuple[Path, ...]) -> Path | None:
    """Return the protected directory ``target`` is in or holds, or None."""
    for directory in protected:
        if any(root.is_relative_to(directory) for root in roots):
            # It holds a root: only its workflow files (and itself) are off limits.
            if target == directory or (target.parent == directory and target.suffix.lower() in _WORKFLOW_SUFFIXES):
                return directory
        elif _within(target, directory) or directory.is_relative_to(target):
            return directory
    return None


def refused_path(value: Any, *, base: Path, roots: Iterable[Path], protected: Iterable[Path] = (),
                 where: str) -> PathRefusal | None:
    """Return the first string in ``value`` that names a place an agent may not name, or None.

    Args:
        value: A parameter value (or a step's parameters) as an agent sent it.
        base: The directory relative paths start from (the run's working directory).
        roots: Resolved directories a path must lie strictly inside.
        protected: Resolved directories a path may neither lie in nor hold (one that holds a
            root protects only its workflow files and itself).
        where: The dotted name of ``value``, for the report.

    Returns:
        Why the first offending string is refused, or None when every string is fine.
    """
    roots, protected = tuple(roots), tuple(protected)
    for name, text in strings_in(value, where):
        if not text or "\0" in text:
            return PathRefusal(name, text, None, "is empty or holds a NUL character, which would turn "
                               "'{{ params.dir }}/file' into '/file'; give a real name")
        if _climbs(text):
            return PathRefusal(name, text, None, "climbs out of the directory it starts from with '..'; "
                               "give a path that stays below it")
        target = _leads_to(text, base)
        if target is None:
            return PathRefusal(name, text, None, "is not a path that can be resolved (a symbolic link loop?)")
        if target in roots:
            return PathRefusal(name, text, target, "the top of a directory agents may name; name a place inside it")
        if not any(target.is_relative_to(root) for root in roots):
            return PathRefusal(name, text, target, "outside the directories agents may name here")
        inside = _protected_place(target, protected, roots)
        if inside is not None:
            return PathRefusal(name, text, target, f"which is or holds {inside}, where agents may not write "
                               "(the run store, or workflows the server runs as written)", "PATH_PROTECTED")
    return None


def file_reaching_params(workflow: Workflow) -> set[str]:
    """Return the names of the parameters whose values can reach a step that touches files.

    A parameter reaches one when a step outside :data:`FILE_SAFE_MODULES` references it,
    or when a file-safe step references it and that step's output flows (through
    ``{{ step.output }}`` references, however indirectly) into such a step: an
    ``echo`` can pass a path along.
    """
    refs = {step.name: find_references(step.parameters) for step in workflow.steps}
    reaching = {step.name for step in workflow.steps if step.module not in FILE_SAFE_MODULES}
    grew = True
    while grew:
        fed = {ref.name for name in reaching for ref in refs[name] if ref.kind == "step" and not ref.problem}
        fed &= refs.keys()
        grew = not fed <= reaching
        reaching |= fed
    return {ref.name for name in reaching for ref in refs[name] if ref.kind == "params" and not ref.problem}
