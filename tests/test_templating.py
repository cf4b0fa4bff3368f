"""Parameter references: typing, nesting, shell quoting, argv handling and clear failures."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from core.errors import OrchestrationError
from core.templating import (
    Reference,
    UnresolvedReferenceError,
    find_references,
    has_references,
    reference_problems,
    referenced_steps,
    resolve_parameters,
    resolve_value,
    shell_quoting,
)

OUTPUTS: dict[str, Any] = {
    "extract": {"rows": 3, "files": ["a.csv", {"name": "b.csv"}], "meta": {"source": "db"}},
    "count": 42,
    "flag": True,
    "text": "it's here",
    "nothing": None,
}
PARAMS: dict[str, Any] = {"env": "prod", "limits": {"cpu": 2}}


def noop(parameters: dict[str, Any], step: str = "consumer") -> dict[str, Any]:
    return resolve_parameters("builtin", "noop", parameters, params=PARAMS, outputs=OUTPUTS, step_name=step)


def shell(command: Any) -> Any:
    return resolve_parameters("shell", "run", {"command": command}, params=PARAMS, outputs=OUTPUTS, step_name="sh")["command"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{ extract.output }}", OUTPUTS["extract"]),
        ("{{extract.output.rows}}", 3),
        ("{{ extract.output.files.0 }}", "a.csv"),
        ("{{ extract.output.files[1].name }}", "b.csv"),
        ("{{ extract.output.meta }}", {"source": "db"}),
        ("${extract.result}", OUTPUTS["extract"]),
        ("${extract.output.rows}", 3),
        ("${params.env}", "prod"),
        ("{{ params.limits.cpu }}", 2),
        ("{{ count.output }}", 42),
        ("{{ flag.result }}", True),
        ("{{ nothing.output }}", None),
    ],
)
def test_whole_value_reference_keeps_its_type(value: str, expected: Any) -> None:
    assert noop({"v": value})["v"] == expected


def test_embedded_references_are_stringified_json_for_containers() -> None:
    resolved = noop({"v": "rows={{ extract.output.rows }} meta={{ extract.output.meta }} ok={{ flag.output }} p=${params.env}"})
    assert resolved["v"] == 'rows=3 meta={"source": "db"} ok=true p=prod'


def test_references_inside_nested_parameters_resolve() -> None:
    resolved = noop({"outer": {"list": ["{{ count.output }}", "x-{{ params.env }}"], "n": 1}})
    assert resolved == {"outer": {"list": [42, "x-prod"], "n": 1}}


def test_resolved_containers_are_copies() -> None:
    resolved = noop({"v": "{{ extract.output.meta }}"})
    resolved["v"]["source"] = "changed"
    assert OUTPUTS["extract"]["meta"]["source"] == "db"


def test_parameters_without_references_come_back_equal() -> None:
    params = {"command": "echo hi", "n": [1, 2]}
    assert resolve_parameters("shell", "run", params, params={}, outputs={}) == params


def test_shell_command_string_values_are_quoted() -> None:
    assert shell("echo {{ text.output }} {{ count.output }}") == "echo 'it'\"'\"'s here' 42"
    assert shell("cat {{ extract.output.files.0 }}") == "cat a.csv"


def test_whole_shell_command_reference_is_quoted_unless_it_is_an_argv_list() -> None:
    assert shell("{{ text.output }}") == "'it'\"'\"'s here'"
    outputs = {"plan": ["echo", "a; b"]}
    command = resolve_parameters("shell", "run", {"command": "{{ plan.output }}"}, params={}, outputs=outputs)["command"]
    assert command == ["echo", "a; b"]


def test_argv_lists_substitute_per_element_and_are_never_joined() -> None:
    argv = shell(["grep", "{{ text.output }}", "--count={{ count.output }}", "{{ extract.output.meta }}"])
    assert argv == ["grep", "it's here", "--count=42", '{"source": "db"}']


@pytest.mark.parametrize("evil", ["$(touch pwned)", "; touch pwned", "`touch pwned`", "x' ; touch pwned ; echo '"])
def test_quoted_value_runs_as_literal_text_in_a_real_shell(tmp_path: Path, evil: str) -> None:
    command = resolve_parameters("shell", "run", {"command": "echo {{ up.output }}"}, params={}, outputs={"up": evil})["command"]
    done = subprocess.run(["/bin/sh", "-c", command], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == evil
    assert not (tmp_path / "pwned").exists()


EVIL = "$(touch pwned) `touch pwned` it's \"q\" \\ $HOME ; touch pwned"


@pytest.mark.parametrize("command", [
    'echo "{{ up.output }}"',  # double quotes: single quotes inside would be literal, $( ) would run
    "echo '{{ up.output }}'",
    'echo "before $(echo {{ up.output }}) after"',
    'echo "$(printf "%s" "{{ up.output }}")"',
    "echo `echo {{ up.output }}`",
    'echo "`echo {{ up.output }}`"',
])
def test_a_value_is_literal_text_wherever_the_reference_stands_in_the_command(tmp_path: Path, command: str) -> None:
    resolved = resolve_parameters("shell", "run", {"command": command}, params={}, outputs={"up": EVIL})["command"]
    done = subprocess.run(["/bin/sh", "-c", resolved], cwd=tmp_path, capture_output=True, text=True, check=True)
    printed = done.stdout.strip()
    assert printed.removeprefix("before ").removesuffix(" after") == EVIL
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("command", ["cat <<EOF\n{{ up.output }}\nEOF", "cat <<'EOF'\n{{ up.output }}\nEOF",
                                     "cat <<-EOF\n\t{{ up.output }}\n\tEOF"])
def test_a_value_in_a_here_document_is_literal_text(tmp_path: Path, command: str) -> None:
    resolved = resolve_parameters("shell", "run", {"command": command}, params={}, outputs={"up": EVIL})["command"]
    done = subprocess.run(["/bin/sh", "-c", resolved], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert done.stdout == EVIL + "\n"
    assert not (tmp_path / "pwned").exists()


def test_a_value_that_would_end_its_here_document_is_refused() -> None:
    with pytest.raises(UnresolvedReferenceError, match="would end the here-document"):
        resolve_parameters("shell", "run", {"command": "cat <<EOF\n{{ up.output }}\nEOF"}, params={},
                           outputs={"up": "x\nEOF\ntouch pwned"})


def test_shell_quoting_reads_the_quoting_around_each_reference() -> None:
    text = """a {{ x }} "b {{ x }} $(c {{ x }} 'd') " 'e {{ x }}' `f {{ x }}` \\"{{ x }}"""
    spans = [(m.start(), m.end()) for m in re.finditer(r"\{\{ x \}\}", text)]
    assert shell_quoting(text, spans) == ["unquoted", "double", "unquoted", "single", "`", "unquoted"]


def test_shell_variables_and_go_templates_are_left_alone() -> None:
    text = "echo ${HOME} $PATH {{ .ID }} ${extract.output.rows}"
    assert shell(text) == "echo ${HOME} $PATH {{ .ID }} 3"
    assert not has_references("echo ${HOME} {{ .Names }}")


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        ("{{ missing.output }}", ["step 'consumer'", "{{ missing.output }}", "step 'missing' has no output", "available: count"]),
        ("{{ extract.output.nope }}", ["{{ extract.output.nope }}", "no key 'nope'", "keys: rows, files, meta"]),
        ("{{ extract.output.files.9 }}", ["list of 2 item(s)", "'9' is not an index"]),
        ("{{ count.output.x }}", ["is of type int, which has no key 'x'"]),
        ("${params.region}", ["no workflow parameter 'region'", "available: env, limits"]),
        ("{{ extract.outptu }}", ["write extract.output"]),
        ("{{ extract.status }}", ["only be used in conditions"]),
    ],
)
def test_unresolvable_references_name_the_step_and_the_reference(value: str, fragments: list[str]) -> None:
    with pytest.raises(UnresolvedReferenceError) as info:
        noop({"v": f"prefix {value}"})
    for fragment in fragments:
        assert fragment in info.value.message
    assert isinstance(info.value, OrchestrationError)
    assert info.value.details["step"] == "consumer"


def test_find_references_parses_each_form() -> None:
    refs = find_references({"a": "{{ s1.output.k[2] }}", "b": ["${s2.result}", "${params.p.q}"], "c": 5})
    assert refs == [
        Reference("{{ s1.output.k[2] }}", "step", "s1", "output", ("k", 2)),
        Reference("${s2.result}", "step", "s2", "output", ()),
        Reference("${params.p.q}", "params", "p", "", ("q",)),
    ]
    assert refs[0].expression == "s1.output.k[2]"


def test_referenced_steps_and_has_references() -> None:
    parameters = {"cmd": "run {{ a.output }} ${b.result.x}", "n": ["{{ params.z }}"], "when": "{{ c.status }}"}
    assert referenced_steps(parameters) == {"a", "b", "c"}
    assert referenced_steps({"x": "{{ params.only }}"}) == set()
    assert has_references(parameters)
    assert not has_references({"cmd": "echo hi", "n": [1, None]})


def test_reference_problems_lists_malformed_references() -> None:
    assert reference_problems({"a": "{{ step.outpt }}", "b": "{{ step.output }}"}) == [
        "malformed reference {{ step.outpt }}: write step.output (or step.output.<key>) or params.<name>"
    ]


def test_resolve_value_supports_status_when_given() -> None:
    value = resolve_value("{{ a.status }}", params={}, outputs={}, statuses={"a": "completed"})
    assert value == "completed"
