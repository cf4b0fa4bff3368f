"""Parameter references: how one step uses another step's output or a workflow parameter.

Syntax (spaces inside the braces are optional)::

    {{ step.output }}            the whole output of step ``step``
    {{ step.output.key.0 }}      a key of it (nested keys; ``.0`` or ``[0]`` index lists)
    {{ params.name }}            a workflow parameter (also ``params.name.key``)
    ${step.result}  ${step.output.key}  ${params.name}     the same, spec-002 spelling

``result`` is an alias of ``output``. ``{{ step.status }}`` (the step's final status)
exists for conditions only. ``${NAME}`` without a dot is left alone, so shell
variables keep working, and so is ``{{ .Field }}`` (Go templates in docker commands).

Substitution rules:

* A reference that is the whole value keeps its type (a dict stays a dict).
* A reference embedded in a longer string is stringified (JSON for anything but a
  string).
* In a ``shell.run`` ``command`` string every substituted value is quoted for where it
  stands, so an upstream output can never inject shell syntax: ``shlex.quote`` where the
  reference is unquoted, backslashes before ``\\ " $ ` `` inside double quotes (where
  single quotes would be literal and ``$(...)`` would run), ``'\\''`` for each ``'``
  inside single quotes. A whole-value reference that resolves to a list becomes an argv
  (no shell at all).
* In an argv list each element is substituted on its own; the list is never joined.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import shlex
from collections.abc import Collection, Mapping
from typing import Any

from .errors import OrchestrationError
from .text import printable

__all__ = [
    "Reference",
    "shell_quoting",
    "UnresolvedReferenceError",
    "has_references",
    "find_references",
    "referenced_steps",
    "reference_problems",
    "reference_near_misses",
    "resolve_parameters",
    "resolve_value",
    "reference_spans",
    "ReferenceResolver",
    "lookup",
    "stringify",
]

_SEGMENT = r"(?:\.[A-Za-z0-9_\-]+|\[\s*\d+\s*\])"
# Anything dotted inside {{ }} is meant as a reference; a bad one is reported, not ignored.
_CURLY = re.compile(r"\{\{\s*(?P<body>[A-Za-z_][A-Za-z0-9_\-]*" + _SEGMENT + r"+)\s*\}\}")
# ${...} must look exactly like one of ours, otherwise it is a shell variable.
_DOLLAR = re.compile(
    r"\$\{\s*(?P<body>(?:params\.[A-Za-z0-9_\-]+|[A-Za-z_][A-Za-z0-9_\-]*\.(?:output|result|status))"
    + _SEGMENT
    + r"*)\s*\}"
)
_PIECE = re.compile(r"\.([A-Za-z0-9_\-]+)|\[\s*(\d+)\s*\]")
_FIELDS = {"output": "output", "result": "output", "status": "status"}


@dataclasses.dataclass(slots=True, frozen=True)
class Reference:
    """One reference found in a value.

    ``kind`` is "step" or "params"; ``name`` the step or parameter; ``field`` is
    "output" or "status" for steps ("" for params); ``path`` the keys/indexes below;
    ``problem`` explains a malformed reference ("" when well-formed).
    """

    text: str
    kind: str
    name: str
    field: str = ""
    path: tuple[str | int, ...] = ()
    problem: str = ""

    @property
    def expression(self) -> str:
        """The reference without its braces, e.g. ``build.output.files[0]``."""
        inner = self.text.strip()
        return inner[2:-2].strip() if inner.startswith("{{") else inner[2:-1].strip()


class UnresolvedReferenceError(OrchestrationError):
    """A reference could not be resolved; names the step, the reference and what exists."""

    error_code = "UNRESOLVED_REFERENCE"

    def __init__(self, step_name: str | None, reference: str, reason: str, available: list[str] | None = None) -> None:
        where = f"step '{step_name}'" if step_name else "a step"
        message = f"{where}: cannot resolve {reference}: {reason}"
        if available is not None:
            message += f" (available: {', '.join(available) if available else 'nothing'})"
        super().__init__(
            message,
            details={"step": step_name, "reference": reference, "available": available or []},
            suggestions=["a step may only use the outputs of steps it depends on, directly or indirectly"],
        )
        self.step_name = step_name
        self.reference = reference


def _parse(text: str, body: str) -> Reference:
    head, _, _ = body.partition(".")
    head = head.partition("[")[0]
    pieces: list[str | int] = [m[1] if m[1] else int(m[2]) for m in _PIECE.finditer(body[len(head):])]
    if head == "params":
        if not pieces or not isinstance(pieces[0], str):
            return Reference(text, "params", "", problem="write params.<name>")
        return Reference(text, "params", pieces[0], path=tuple(pieces[1:]))
    field = pieces[0] if pieces else ""
    if not isinstance(field, str) or field not in _FIELDS:
        return Reference(text, "step", head, problem=f"write {head}.output (or {head}.output.<key>) or params.<name>")
    if _FIELDS[field] == "status" and len(pieces) > 1:
        return Reference(text, "step", head, "status", problem=f"{head}.status has no keys")
    return Reference(text, "step", head, _FIELDS[field], tuple(pieces[1:]))


def reference_spans(text: str) -> list[tuple[int, int, Reference]]:
    """Return ``(start, end, reference)`` for each reference in ``text``, in order."""
    if "{{" not in text and "${" not in text:
        return []
    found = [(m.start(), m.end(), _parse(m[0], m["body"])) for m in _CURLY.finditer(text)]
    found += [(m.start(), m.end(), _parse(m[0], m["body"])) for m in _DOLLAR.finditer(text)]
    found.sort(key=lambda item: item[0])
    return found


def find_references(value: Any) -> list[Reference]:
    """Return every reference in ``value`` (strings inside dicts and lists too), in order."""
    if isinstance(value, str):
        return [ref for _, _, ref in reference_spans(value)]
    if isinstance(value, Mapping):
        return [ref for item in value.values() for ref in find_references(item)]
    if isinstance(value, (list, tuple)):
        return [ref for item in value for ref in find_references(item)]
    return []


def has_references(value: Any) -> bool:
    """True when ``value`` contains at least one reference."""
    if isinstance(value, str):
        return bool(reference_spans(value))
    if isinstance(value, Mapping):
        return any(has_references(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_references(item) for item in value)
    return False


def referenced_steps(parameters: Any) -> set[str]:
    """Return the names of the steps whose output or status ``parameters`` refer to."""
    return {ref.name for ref in find_references(parameters) if ref.kind == "step" and not ref.problem}


def reference_problems(value: Any) -> list[str]:
    """Return one message per malformed reference in ``value`` (empty when all are fine)."""
    return [f"malformed reference {ref.text}: {ref.problem}" for ref in find_references(value) if ref.problem]


_BRACED = re.compile(r"\{\{\s*(?P<body>[^{}]*?)\s*\}\}")
_HEAD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in _strings(item)]
    return []


def reference_near_misses(value: Any, step_names: Collection[str]) -> list[tuple[str, str]]:
    """Return ``(text, hint)`` for each ``{{ ... }}`` in ``value`` meant as a reference that is none.

    Such text is left as it is at run time, so ``echo {{ params }}`` prints braces. Only
    braces that start with ``params`` or one of ``step_names`` count, so other template
    languages' ``{{ name }}`` (Jinja, mustache) in a command stay allowed. Examples:
    ``{{ params }}``, ``{{ build }}``, ``{{ params.env | upper }}``, ``{{ build.output + 1 }}``.
    """
    found: list[tuple[str, str]] = []
    for text in _strings(value):
        if "{{" not in text:
            continue
        for match in _BRACED.finditer(text):
            if _CURLY.fullmatch(match[0]):
                continue
            body = match["body"]
            head_match = _HEAD.match(body)
            head = head_match[0] if head_match else ""
            if head != "params" and head not in step_names:
                continue
            if "|" in body:
                hint = f"filters are not supported; write {{{{ {body.partition('|')[0].strip()} }}}}"
            elif body == head:
                hint = "write {{ params.<name> }}" if head == "params" else f"write {{{{ {head}.output }}}}"
            else:
                hint = "only {{ step.output.key }} and {{ params.name }} are references; compare in 'conditions'"
            found.append((match[0], hint))
    return found


def lookup(root: Any, path: tuple[str | int, ...]) -> Any:
    """Follow ``path`` (dict keys, list indexes) down from ``root`` and return the value.

    Raises:
        LookupError: a key or index does not exist; the message says which and what does.
    """
    value = root
    for depth, piece in enumerate(path):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[:depth]) or "the value"
        if isinstance(value, Mapping):
            if piece in value:
                value = value[piece]
            elif isinstance(piece, str) and piece.isdigit() and int(piece) in value:
                value = value[int(piece)]
            else:
                keys = ", ".join(map(str, list(value)[:20])) or "none"
                raise LookupError(f"{where} has no key '{piece}' (keys: {keys})")
        elif isinstance(value, (list, tuple)):
            index = int(piece) if isinstance(piece, int) or piece.isdigit() else None
            if index is None or index >= len(value):
                raise LookupError(f"{where} is a list of {len(value)} item(s); '{piece}' is not an index of it")
            value = value[index]
        else:
            raise LookupError(f"{where} is of type {type(value).__name__}, which has no key '{piece}'")
    return value


def stringify(value: Any) -> str:
    """How a value reads inside a longer string: itself for strings, else JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=printable)
    except ValueError:  # circular structure
        return str(value)


class ReferenceResolver:
    """Resolves references for one step against ``params``, ``outputs`` and ``statuses``."""

    def __init__(
        self,
        step_name: str | None,
        params: Mapping[str, Any],
        outputs: Mapping[str, Any],
        statuses: Mapping[str, Any] | None = None,
    ) -> None:
        self.step_name = step_name
        self.params = params
        self.outputs = outputs
        self.statuses = statuses

    def value_of(self, ref: Reference) -> Any:
        """Return the value ``ref`` stands for; raises UnresolvedReferenceError."""
        if ref.problem:
            raise UnresolvedReferenceError(self.step_name, ref.text, ref.problem)
        if ref.kind == "params":
            if ref.name not in self.params:
                raise UnresolvedReferenceError(
                    self.step_name, ref.text, f"there is no workflow parameter '{ref.name}'", sorted(self.params)
                )
            root: Any = self.params[ref.name]
        elif ref.field == "status":
            if self.statuses is None:
                raise UnresolvedReferenceError(self.step_name, ref.text, "a step's status can only be used in conditions")
            if ref.name not in self.statuses:
                raise UnresolvedReferenceError(
                    self.step_name, ref.text, f"step '{ref.name}' has no status yet", sorted(self.statuses)
                )
            status = self.statuses[ref.name]
            return getattr(status, "value", status)
        else:
            if ref.name not in self.outputs:
                raise UnresolvedReferenceError(
                    self.step_name,
                    ref.text,
                    f"step '{ref.name}' has no output (it is unknown, or not a completed dependency)",
                    sorted(self.outputs),
                )
            root = self.outputs[ref.name]
        try:
            value = lookup(root, ref.path)
        except LookupError as exc:
            owner = f"parameter '{ref.name}'" if ref.kind == "params" else f"the output of '{ref.name}'"
            raise UnresolvedReferenceError(self.step_name, ref.text, f"in {owner}, {exc.args[0]}") from None
        return copy.deepcopy(value) if isinstance(value, (dict, list)) else value

    def string(self, text: str, *, quote: bool, keep_type: bool) -> Any:
        """Resolve the references in ``text``; see the module docstring for the rules."""
        found = reference_spans(text)
        if not found:
            return text
        if keep_type and len(found) == 1 and found[0][0] == 0 and found[0][1] == len(text):
            value = self.value_of(found[0][2])
            if not quote or isinstance(value, list):
                return value
            return shlex.quote(stringify(value))
        contexts = shell_quoting(text, [(start, end) for start, end, _ in found]) if quote else None
        parts: list[str] = []
        last = 0
        for index, (start, end, ref) in enumerate(found):
            piece = stringify(self.value_of(ref))
            parts.append(text[last:start])
            if contexts is not None:
                quoted = _quoted(piece, contexts[index])
                if quoted is None:
                    raise UnresolvedReferenceError(self.step_name, ref.text, "its value holds a line that would "
                                                   "end the here-document it stands in")
                piece = quoted
            parts.append(piece)
            last = end
        parts.append(text[last:])
        return "".join(parts)

    def value(self, value: Any) -> Any:
        """Resolve references anywhere in ``value`` (whole values keep their type)."""
        if isinstance(value, str):
            return self.string(value, quote=False, keep_type=True)
        if isinstance(value, Mapping):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.value(item) for item in value)
        return value

    def argv(self, parts: list[Any] | tuple[Any, ...]) -> list[Any]:
        """Resolve each argv element on its own, as a string; never join them."""
        resolved = []
        for part in parts:
            if isinstance(part, str):
                resolved.append(stringify(self.string(part, quote=False, keep_type=True)))
            else:
                resolved.append(part)
        return resolved


_UNQUOTED, _SINGLE, _DOUBLE, _SUBSTITUTION, _BACKTICK = "unquoted", "single", "double", "$(", "`"


def shell_quoting(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """Return, for each ``(start, end)`` span of ``text`` (a shell command with references
    in it, in order), how the shell reads text there: ``"single"`` inside single quotes,
    ``"double"`` inside double quotes, ``"`"`` unquoted inside backticks, ``"heredoc ..."``
    in a here-document's body (with its delimiter), else ``"unquoted"`` (also inside
    ``$(...)``, which starts afresh, even within double quotes).

    The spans themselves are skipped: a reference is a word, whatever its value.
    """
    # One frame per quoting opened and not yet closed, with the parentheses opened in it
    # (to find the ``)`` that closes a ``$(``).
    frames: list[list[Any]] = [[_UNQUOTED, 0]]
    contexts: list[str] = []
    spans = sorted(spans)
    heredocs: list[str] = []  # here-documents announced (``<<EOF``) whose bodies start at the next line
    at = i = 0
    while i <= len(text):
        top = frames[-1][0]
        if heredocs and i < len(text) and text[i] == "\n" and top in (_UNQUOTED, _SUBSTITUTION):
            i += 1
            for heredoc in heredocs:  # each body in turn, up to its delimiter line
                end = _heredoc_end(text, i, heredoc)
                while at < len(spans) and spans[at][0] < end:
                    contexts.append(heredoc)
                    at += 1
                i = end
            heredocs.clear()
            continue
        if at < len(spans) and i == spans[at][0]:
            inside_backticks = top not in (_SINGLE, _DOUBLE) and any(f[0] == _BACKTICK for f in frames)
            contexts.append(_BACKTICK if inside_backticks else top if top in (_SINGLE, _DOUBLE) else _UNQUOTED)
            i = spans[at][1]
            at += 1
            continue
        if i == len(text):
            break
        char = text[i]
        if top == _SINGLE:
            if char == "'":
                frames.pop()
        elif char == "\\":
            i += 1  # the next character is taken literally
        elif char == '"':
            if top == _DOUBLE:
                frames.pop()
            else:
                frames.append([_DOUBLE, 0])
        elif char == "'" and top != _DOUBLE:
            frames.append([_SINGLE, 0])
        elif char == "`":
            if top == _BACKTICK:
                frames.pop()
            else:
                frames.append([_BACKTICK, 0])
        elif text.startswith("$(", i):
            frames.append([_SUBSTITUTION, 0])
            i += 1
        elif text.startswith("<<", i) and not text.startswith("<<<", i) and top != _DOUBLE:
            heredoc, i = _heredoc_start(text, i + 2)
            heredocs.append(heredoc)
            continue
        elif top != _DOUBLE and char == "(":
            frames[-1][1] += 1
        elif top != _DOUBLE and char == ")":
            if frames[-1][1]:
                frames[-1][1] -= 1
            elif top == _SUBSTITUTION:
                frames.pop()
        i += 1
    contexts.extend(_UNQUOTED for _ in spans[at:])
    return contexts


_HEREDOC = "heredoc"  # contexts inside a here-document: "heredoc <quoted 0|1><tabs 0|1> DELIMITER"


def _heredoc_start(text: str, i: int) -> tuple[str, int]:
    """Read the here-document operator's word from ``i`` (just after ``<<``); return the
    body's context and where the scan goes on."""
    strip_tabs = text.startswith("-", i)
    i += strip_tabs
    while i < len(text) and text[i] in " \t":
        i += 1
    word = re.match(r"""(?:'[^']*'|"[^"]*"|\\.|[^\s;&|<>()])+""", text[i:])
    raw = word.group(0) if word else ""
    quoted = any(c in raw for c in "'\"\\")
    delimiter = re.sub(r"""['"\\]""", "", raw)
    return f"{_HEREDOC} {int(quoted)}{int(strip_tabs)} {delimiter}", i + len(raw)


def _heredoc_end(text: str, start: int, context: str) -> int:
    """Return where the here-document whose body starts at ``start`` ends (after its
    delimiter line, or the end of ``text``)."""
    _, flags, delimiter = context.split(" ", 2)
    i = start
    while i < len(text):
        newline = text.find("\n", i)
        line = text[i:] if newline < 0 else text[i:newline]
        if (line.lstrip("\t") if flags[1] == "1" else line) == delimiter:
            return len(text) if newline < 0 else newline + 1
        if newline < 0:
            return len(text)
        i = newline + 1
    return len(text)


def _quoted(value: str, context: str) -> str | None:
    """``value`` as literal text for where it stands in a shell command (see
    :func:`shell_quoting`); None when no quoting can keep it literal there (a line of it
    would end the here-document it stands in)."""
    if context.startswith(_HEREDOC):
        _, flags, delimiter = context.split(" ", 2)
        if any((line.lstrip("\t") if flags[1] == "1" else line) == delimiter for line in value.split("\n")):
            return None
        # A quoted delimiter makes the body literal; otherwise $, ` and \ act as in "...".
        return value if flags[0] == "1" else re.sub(r"([\\$`])", r"\\\1", value)
    if context == _DOUBLE:
        return re.sub(r'([\\"$`])', r"\\\1", value)
    if context == _SINGLE:
        return value.replace("'", "'\\''")
    if context == _BACKTICK:  # the shell unescapes \\ and ` once before it reads the quotes
        return re.sub(r"([\\`])", r"\\\1", shlex.quote(value))
    return shlex.quote(value)


def resolve_value(
    value: Any,
    *,
    params: Mapping[str, Any],
    outputs: Mapping[str, Any],
    statuses: Mapping[str, Any] | None = None,
    step_name: str | None = None,
) -> Any:
    """Return ``value`` with its references resolved (no shell quoting).

    Raises:
        UnresolvedReferenceError: a reference is malformed or names something missing.
    """
    return ReferenceResolver(step_name, params, outputs, statuses).value(value)


def resolve_parameters(
    module: str,
    action: str,
    parameters: Mapping[str, Any],
    *,
    params: Mapping[str, Any],
    outputs: Mapping[str, Any],
    step_name: str | None = None,
) -> dict[str, Any]:
    """Return a copy of a step's ``parameters`` with every reference resolved.

    ``outputs`` maps step names to their outputs; ``params`` are the run's parameters.
    For ``shell.run``, substitutions into a ``command`` string are shell-quoted and an
    argv ``command`` is substituted element by element.

    Raises:
        UnresolvedReferenceError: a reference is malformed or names a missing step,
            output key or parameter (the message names the step and the reference).
    """
    if not has_references(parameters):
        return dict(parameters)
    resolver = ReferenceResolver(step_name, params, outputs)
    resolved: dict[str, Any] = {}
    for key, value in parameters.items():
        if module == "shell" and action == "run" and key == "command":
            if isinstance(value, str):
                resolved[key] = resolver.string(value, quote=True, keep_type=True)
            elif isinstance(value, (list, tuple)):
                resolved[key] = resolver.argv(value)
            else:
                resolved[key] = resolver.value(value)
        else:
            resolved[key] = resolver.value(value)
    return resolved
