"""Workflow files: load YAML or JSON into a validated :class:`~core.models.Workflow`.

The YAML is read with a ``SafeConstructor``-based loader (:class:`LocatingLoader`) that
remembers the line and column of every key, value and list item, and reports duplicate
keys instead of silently keeping the last one. Before parsing, the raw bytes are
checked: at most :data:`MAX_WORKFLOW_BYTES` (checked before the file is read), not
binary, UTF-8. Every problem, from a syntax error to a dependency cycle, ends up as a
:class:`~core.errors.ValidationProblem` inside one
:class:`~core.errors.WorkflowValidationError`, located as ``file:line:col``.

JSON is YAML's subset, so JSON files go through the same loader and get the same
locations; a JSON file PyYAML cannot read (tab indentation) falls back to :mod:`json`.
"""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import yaml

from .config import RESOURCE_CONFIG_NAME
from .errors import ValidationProblem, WorkflowNotFoundError, WorkflowValidationError
from .models import TaskPriority, Workflow, WorkflowParam
from .workflow_schema import PARAM_FIELDS, STEP_FIELDS, workflow_json_schema
from .workflow_validate import Locations, RequirementCheck, infer_param_type, validate_workflow_data

__all__ = [
    "MAX_WORKFLOW_BYTES",
    "MAX_NESTING",
    "MAX_EXPANDED_VALUES",
    "WORKFLOW_SUFFIXES",
    "LocatingLoader",
    "ambiguous_name_error",
    "load_workflow",
    "workflow_from_dict",
    "parse_workflow_text",
    "load_located_yaml",
    "find_workflow_files",
    "workflow_json_schema",
    "workflow_to_data",
    "dump_workflow",
]

MAX_WORKFLOW_BYTES = 10 * 1024 * 1024
WORKFLOW_SUFFIXES = (".yaml", ".yml", ".json")
MAX_NESTING = 100  # mappings and lists inside one another
# Values that aliases (*name) may add to a document, beyond those written out: the larger
# of this and ALIAS_FACTOR times the written ones (a merge key per step of a big file
# adds many, legitimately; a 500-byte file of aliases of aliases adds 10^10).
MAX_EXPANDED_VALUES = 1_000_000
ALIAS_FACTOR = 50

# libyaml's parser is an order of magnitude faster; the constructor (what turns nodes
# into Python objects, and decides what is safe) is PyYAML's SafeConstructor either way.
_SafeBase: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LocatingLoader(_SafeBase):  # type: ignore[misc, valid-type]
    """A safe YAML loader that records positions (:class:`Locations`) and duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.locations = Locations()
        self.duplicates: list[tuple[Any, tuple[int, int], tuple[int, int]]] = []


def _pos(node: yaml.Node) -> tuple[int, int]:
    mark = node.start_mark
    return mark.line + 1, mark.column + 1


def _construct_mapping(loader: LocatingLoader, node: yaml.MappingNode) -> Any:
    data: dict[Any, Any] = {}
    yield data
    explicit = {id(key) for key, _ in node.value}
    loader.flatten_mapping(node)  # resolves `<<: *anchor` merges; explicit keys may override them
    keys: dict[Any, tuple[int, int]] = {}
    values: dict[Any, tuple[int, int]] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=False)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found an unhashable key", key_node.start_mark
            )
        if key in data and id(key_node) in explicit and keys.get(key) is not None and keys[key] != (0, 0):
            loader.duplicates.append((key, keys[key], _pos(key_node)))
        data[key] = loader.construct_object(value_node, deep=False)
        # A merged-in key gets position (0, 0) so that overriding it is not a duplicate.
        keys[key] = _pos(key_node) if id(key_node) in explicit else (0, 0)
        values[key] = _pos(value_node)
    loc = loader.locations
    loc.keys[id(data)] = {k: v for k, v in keys.items() if v != (0, 0)}
    loc.values[id(data)] = values
    loc.starts[id(data)] = _pos(node)


def _construct_sequence(loader: LocatingLoader, node: yaml.SequenceNode) -> Any:
    data: list[Any] = []
    yield data
    data.extend(loader.construct_object(child, deep=False) for child in node.value)
    loc = loader.locations
    loc.items[id(data)] = [_pos(child) for child in node.value]
    loc.starts[id(data)] = _pos(node)


LocatingLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
LocatingLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def _problem(message: str, filename: str | None, line: int | None = None, column: int | None = None, hint: str = "") -> WorkflowValidationError:
    return WorkflowValidationError([ValidationProblem(message, filename, line, column, "", hint)])


_OPENS = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSES = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def _shape_problem(text: str, filename: str | None) -> WorkflowValidationError | None:
    """Return the problem of a document that nests deeper than :data:`MAX_NESTING` or whose
    aliases add more values than :data:`MAX_EXPANDED_VALUES` (or :data:`ALIAS_FACTOR`
    times the written ones, if more), else None (also for text that is no YAML: the
    loader reports that).

    Read from the parser's events, an iterative pass, before anything is composed:
    libyaml's composer recurses once per level with no limit (200 KB of brackets crashed
    the process), Python's walks raise RecursionError, and a 500-byte file of aliases of
    aliases expands to 10^10 values for whatever walks it (checking references did, for
    hours).
    """
    total = written = 0  # values with every alias expanded; values written out
    sizes: dict[str, int] = {}  # anchor -> how many values it expands to
    opened: list[tuple[int, str | None]] = []  # (total when it opened, its anchor)
    try:
        for event in yaml.parse(text, Loader=_SafeBase):
            kind = type(event)
            if kind is yaml.ScalarEvent:
                total += 1
                written += 1
                if event.anchor:
                    sizes[event.anchor] = 1
            elif kind is yaml.AliasEvent:
                total += sizes.get(event.anchor, 1)
                written += 1
            elif kind in _OPENS:
                if len(opened) >= MAX_NESTING:
                    mark = event.start_mark
                    return _problem(f"values nest more than {MAX_NESTING} levels deep here", filename,
                                    mark.line + 1, mark.column + 1, "flatten the structure")
                opened.append((total, event.anchor))
                total += 1
                written += 1
            elif kind in _CLOSES:
                start, anchor = opened.pop()
                if anchor:
                    sizes[anchor] = total - start
            else:
                continue
            if kind is yaml.AliasEvent and total - written > max(MAX_EXPANDED_VALUES, ALIAS_FACTOR * written):
                mark = event.start_mark
                return _problem(f"its aliases expand the document by {total - written:,} values by here, which is "
                                "too many", filename, mark.line + 1, mark.column + 1,
                                "use fewer aliases (*name) of large anchored values")
    except yaml.YAMLError:
        return None
    return None


def _refuse_deep_json(data: Any, text: str, filename: str | None) -> None:
    """Raise a problem when ``data``, parsed from JSON ``text``, nests deeper than
    :data:`MAX_NESTING` (an iterative walk: the validator's own walks recurse)."""
    pending = [(data, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, (dict, list)):
            if depth >= MAX_NESTING:
                line, column = _json_depth_position(text, MAX_NESTING + 1)
                raise _problem(f"values nest more than {MAX_NESTING} levels deep here", filename, line, column,
                               "flatten the structure")
            pending.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))


def _json_depth_position(text: str, depth: int) -> tuple[int, int]:
    """Return the 1-based line and column where JSON ``text`` first opens its ``depth``-th
    nested object or array (strings skipped)."""
    level, in_string, escaped = 0, False, False
    for offset, char in enumerate(text):
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            level += 1
            if level == depth:
                line = text.count("\n", 0, offset) + 1
                return line, offset - (text.rfind("\n", 0, offset) + 1) + 1
        elif char in "]}":
            level -= 1
    return 1, 1


def _read_bytes(path: Path) -> bytes:
    """Return the file's bytes after the size check; raise WorkflowValidationError when unreadable."""
    name = str(path)
    try:
        if path.is_dir():
            raise _problem("is a directory, not a workflow file", name, hint="give the path of a .yaml or .json file")
        size = path.stat().st_size
        if size > MAX_WORKFLOW_BYTES:
            raise _problem(f"the file is {size / 1024 / 1024:.1f} MB; workflow files may be at most "
                           f"{MAX_WORKFLOW_BYTES // 1024 // 1024} MB", name, hint="split it into smaller workflows")
        # Opened without blocking: a named pipe nobody writes to would wait forever (it
        # then reads as empty), while one being written (``<(generate)``) reads as usual.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as handle:
            # Read one byte past the limit: a file that grew (or a pipe) is caught too.
            data = handle.read(MAX_WORKFLOW_BYTES + 1)
    except FileNotFoundError:
        raise _problem("no such file", name, hint="check the path") from None
    except PermissionError:
        raise _problem("permission denied while reading the file", name) from None
    except OSError as exc:
        raise _problem(f"cannot read the file ({exc.strerror or exc})", name) from None
    if len(data) > MAX_WORKFLOW_BYTES:
        raise _problem(f"the file is larger than {MAX_WORKFLOW_BYTES // 1024 // 1024} MB", name,
                       hint="split it into smaller workflows")
    return data


def _decode(data: bytes, filename: str | None) -> str:
    """Return ``data`` as text; raise WorkflowValidationError for binary or non-UTF-8 input."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _problem("the file is UTF-16 encoded", filename, 1, 1, "save it as UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        line, column = _byte_position(data, nul)
        raise _problem("the file is binary (it contains NUL bytes), not a YAML or JSON workflow", filename, line, column,
                       "give the path of a .yaml or .json text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _byte_position(data, exc.start)
        raise _problem(f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x})", filename, line, column,
                       "save the file as UTF-8") from None


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


def _yaml_error(exc: yaml.YAMLError, filename: str | None) -> WorkflowValidationError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    hint = "check the indentation and quoting on this line and the one before"
    if "\\t" in problem or "tab" in problem.lower():
        hint = "YAML does not allow tab characters for indentation; use spaces"
    elif "single document" in problem:
        hint = "a workflow file holds one document; remove the extra `---`"
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    return _problem(message, filename, line, column, hint)


def parse_workflow_text(text: str, *, filename: str | None = None,
                        requirement_problem: RequirementCheck | None = None) -> Workflow:
    """Parse and validate a workflow document given as YAML or JSON text.

    ``requirement_problem`` also checks each step's resource requirements against the
    resources here (``ResourceManager.requirement_problem``), as a run here would.

    Returns
    -------
    Workflow
        The validated workflow, ``source_path`` set to ``filename``.

    Raises
    ------
    WorkflowValidationError
        Syntax errors, empty or oversized input, duplicate keys and every validation
        problem, each located by line and column.
    """
    if len(text) > MAX_WORKFLOW_BYTES:
        raise _problem(f"the workflow text is larger than {MAX_WORKFLOW_BYTES // 1024 // 1024} MB", filename)
    if not text.strip():
        raise _problem("the file is empty", filename, 1, 1, "a workflow needs at least `name:` and `steps:`")
    json_file = filename is not None and filename.endswith(".json")
    data = _plain_json(text, strict_for=filename if json_file else None) if (
        json_file or text.lstrip().startswith("{")) else None
    if data is None:
        shape = _shape_problem(text, filename)
        if shape is not None:
            raise shape
    else:  # JSON has no aliases, and its depth is quicker checked on the parsed data
        _refuse_deep_json(data, text, filename)
        try:
            return validate_workflow_data(data, filename=filename, requirement_problem=requirement_problem)
        except WorkflowValidationError:
            pass  # parse again below, with the YAML loader, to locate each problem
    loader = LocatingLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        data = _json_fallback(text, filename)
        if data is None:
            raise _yaml_error(exc, filename) from None
        _refuse_deep_json(data, text, filename)
        loader.locations = Locations()
        loader.duplicates = []
    finally:
        loader.dispose()
    if data is None:
        raise _problem("the file is empty (it holds only comments)", filename, 1, 1,
                       "a workflow needs at least `name:` and `steps:`")
    duplicates = _duplicate_problems(loader, filename)
    return validate_workflow_data(data, filename=filename, locations=loader.locations, extra_problems=duplicates,
                                  requirement_problem=requirement_problem)


def _duplicate_problems(loader: LocatingLoader, filename: str | None) -> list[ValidationProblem]:
    return [
        ValidationProblem(f"duplicate key {key!r} (first on line {first[0]})", filename, second[0], second[1], "",
                          "each key may appear once in a mapping; remove or rename one")
        for key, first, second in loader.duplicates
    ]


def load_located_yaml(text: str, *, filename: str | None = None) -> tuple[Any, Locations]:
    """Parse one YAML document safely, as workflow files are, for other files people write
    (a ``project.yaml``, say).

    Returns:
        The data and where each part of it stood (:class:`Locations`).

    Raises:
        WorkflowValidationError: the text is not valid YAML, nests too deep, expands too
            far through aliases, or repeats a key in a mapping; located by line and column.
    """
    shape = _shape_problem(text, filename)
    if shape is not None:
        raise shape
    loader = LocatingLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, filename) from None
    finally:
        loader.dispose()
    duplicates = _duplicate_problems(loader, filename)
    if duplicates:
        raise WorkflowValidationError(duplicates)
    return data, loader.locations


class _DuplicateKey(Exception):
    pass


def _no_duplicates(items: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(items)
    if len(result) != len(items):
        raise _DuplicateKey
    return result


def _plain_json(text: str, *, strict_for: str | None = None) -> Any:
    """Parse JSON quickly (no positions); None when it is not clean JSON.

    With ``strict_for`` (a ``.json`` file's name), text that is not JSON at all is a
    located problem instead: YAML would accept a trailing comma or a comment that
    every other JSON reader of the file refuses. Duplicate keys and deep nesting still
    return None, for the callers to locate.

    Raises:
        WorkflowValidationError: ``strict_for`` is given and the text is not JSON.
    """
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        if strict_for is None:
            return None
        raise _problem(f"invalid JSON: {exc.msg}", strict_for, exc.lineno, exc.colno,
                       "a .json workflow must be plain JSON (no trailing commas or comments); "
                       "name the file .yaml to write YAML") from None
    except (ValueError, _DuplicateKey, RecursionError):
        return None


def _json_fallback(text: str, filename: str | None) -> Any:
    """Parse JSON that PyYAML refused (tabs); None when ``text`` does not look like JSON."""
    stripped = text.lstrip()
    if not (stripped.startswith("{") or (filename or "").endswith(".json")):
        return None

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                raise _problem(f"duplicate key {key!r}", filename, hint="each key may appear once in an object")
            result[key] = value
        return result

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise _problem(f"invalid JSON: {exc.msg}", filename, exc.lineno, exc.colno) from None


def load_workflow(source: Path | str | dict[str, Any], *, filename: str | None = None,
                  requirement_problem: RequirementCheck | None = None) -> Workflow:
    """Load and validate a workflow from a file, a YAML/JSON string or a dict.

    Parameters
    ----------
    source : Path, str or dict
        A ``Path`` is read as a file. A ``str`` is a file path when it is one line
        ending in ``.yaml``/``.yml``/``.json`` or naming an existing file, and YAML or
        JSON text otherwise. A ``dict`` is an already-parsed document.
    filename : str, optional
        The name shown in problem locations (default: the path, or ``<string>``).
    requirement_problem : callable, optional
        Returns why a step's ``resources`` can never be granted here, or None
        (``ResourceManager.requirement_problem``); without it resources are checked
        for their form only, since another machine may have them.

    Returns
    -------
    Workflow
        Validated, with ``source_path`` set to the file (or ``filename``).

    Raises
    ------
    WorkflowValidationError
        The file is missing, unreadable, too big, binary, not UTF-8, empty, not valid
        YAML/JSON, or the workflow breaks any rule; ``problems`` lists them all.
    """
    if isinstance(source, dict):
        return workflow_from_dict(source, filename=filename)
    if isinstance(source, str) and "\n" not in source and (
        source.strip().endswith(WORKFLOW_SUFFIXES) or _is_file(source)
    ):
        source = Path(source.strip())
    if isinstance(source, Path):
        name = filename or str(source)
        text = _decode(_read_bytes(source), name)
        return parse_workflow_text(text, filename=name, requirement_problem=requirement_problem)
    if not isinstance(source, str):
        raise _problem(f"cannot load a workflow from {type(source).__name__}; give a path, YAML text or a dict", filename)
    return parse_workflow_text(source, filename=filename, requirement_problem=requirement_problem)


def _is_file(text: str) -> bool:
    try:
        return len(text) < 4096 and Path(text).is_file()
    except (OSError, ValueError):
        return False


def workflow_from_dict(data: dict[str, Any], *, filename: str | None = None) -> Workflow:
    """Validate an already-parsed workflow document and return the Workflow.

    Problems carry a path (``steps[2].dependencies[0]``) but no line numbers.

    Raises
    ------
    WorkflowValidationError
        With every problem found.
    """
    return validate_workflow_data(data, filename=filename)


def find_workflow_files(directory: Path | str) -> list[Path]:
    """Return the workflow files (``*.yaml``, ``*.yml``, ``*.json``) directly in ``directory``, sorted.

    JSON Schema files (``*.schema.json``) and the directory's resource config
    (``resources.yaml``) are left out. A missing directory gives ``[]``.
    """
    root = Path(directory)
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir()
        if p.suffix in WORKFLOW_SUFFIXES and p.is_file() and not p.name.endswith(".schema.json")
        and not p.name.startswith(".") and p.name != RESOURCE_CONFIG_NAME
    )


def ambiguous_name_error(name: str, files: Sequence[Path | str], directory: Path | str) -> WorkflowNotFoundError:
    """Return the error for a workflow ``name`` that several ``files`` of ``directory`` define.

    Running one of them silently ran whichever file sorted first; every face (CLI, MCP,
    dashboard) refuses the name instead and asks for a rename or the file.
    """
    listed = ", ".join(Path(file).name for file in files)
    return WorkflowNotFoundError(
        f"workflow name '{name}' is defined by {len(files)} files in {directory} ({listed}); "
        "rename one, or give the file",
        error_code="WORKFLOW_AMBIGUOUS",
        details={"workflow_name": name, "files": [str(file) for file in files]},
        suggestions=["give the workflow file instead of its name"])


_NO_DEFAULT = object()
_STEP_DEFAULTS = {f.name: f.default for f in STEP_FIELDS if f.has_default}
_PARAM_DEFAULTS = {f.name: f.default for f in PARAM_FIELDS if f.has_default}


def workflow_to_data(workflow: Workflow) -> dict[str, Any]:
    """Return ``workflow`` as a file-shaped document: only what differs from the defaults.

    Loading the result with :func:`workflow_from_dict` gives an equal workflow (apart
    from ``status`` and ``source_path``, which are not part of a file).
    """
    data: dict[str, Any] = {"name": workflow.name}
    if workflow.description:
        data["description"] = workflow.description
    data["version"] = workflow.version
    if workflow.params:
        data["params"] = {name: _param_data(param) for name, param in workflow.params.items()}
    steps = []
    for step in workflow.steps:
        item: dict[str, Any] = {"name": step.name, "module": step.module, "action": step.action}
        for key, value in step.to_dict().items():
            if key in item or _STEP_DEFAULTS.get(key, _NO_DEFAULT) == value:
                continue
            if key == "priority" and value == TaskPriority.NORMAL.label:
                continue
            item[key] = value
        steps.append(item)
    data["steps"] = steps
    if workflow.metadata:
        data["metadata"] = workflow.metadata
    if workflow.tags:
        data["tags"] = list(workflow.tags)
    return data


def _param_data(param: WorkflowParam) -> Any:
    """The shorthand ``default`` when it says everything, else the full form."""
    full = {k: v for k, v in param.to_dict().items() if k != "name" and _PARAM_DEFAULTS.get(k, _NO_DEFAULT) != v}
    if "default" in full and set(full) <= {"default", "type"} and not isinstance(param.default, dict):
        if full.get("type", "any") == infer_param_type(param.default):
            return param.default
    # Always spell the type out: without it the loader would infer one from the default.
    return {"type": param.type, **full}


def dump_workflow(workflow: Workflow, fmt: str = "yaml") -> str:
    """Return ``workflow`` as the text of a workflow file, ``fmt`` ``"yaml"`` or ``"json"``.

    Raises
    ------
    ValueError
        ``fmt`` is neither ``"yaml"`` nor ``"json"``.
    """
    data = workflow_to_data(workflow)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    raise ValueError(f"unknown workflow format {fmt!r}; use 'yaml' or 'json'")
