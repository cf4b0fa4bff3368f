"""Workflow files: loading, locations, every bad input, the schema and dumping."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from core.errors import ValidationProblem, WorkflowValidationError
from core.models import TaskPriority
from core.workflow_directory import WorkflowDirectory
from core.workflow_file import (
    MAX_NESTING,
    MAX_WORKFLOW_BYTES,
    dump_workflow,
    find_workflow_files,
    load_workflow,
    workflow_from_dict,
    workflow_json_schema,
)

GOOD = """\
name: sample
description: a test workflow
params:
  rows: 10
  mode: {default: fast, choices: [fast, slow], description: speed}
steps:
  - name: first
    module: builtin
    action: echo
    parameters: {message: "{{ params.rows }}"}
  - name: second
    module: builtin
    action: sleep
    parameters: {seconds: 0.1}
    dependencies: [first]
    priority: HIGH
    timeout: 5
    max_retries: 2
    resources: {cpu: {cores: 1}, memory: {gb: 0.5, enforce: true}, deploy_lock: {}}
"""


def problems_of(source: object, **kwargs: object) -> list[ValidationProblem]:
    with pytest.raises(WorkflowValidationError) as info:
        load_workflow(source, **kwargs)  # type: ignore[arg-type]
    assert info.value.problems
    return info.value.problems


def only(problems: list[ValidationProblem], fragment: str) -> ValidationProblem:
    found = [p for p in problems if fragment in p.message]
    assert len(found) == 1, [str(p) for p in problems]
    return found[0]


def test_load_good_workflow_from_file(tmp_path: Path) -> None:
    path = tmp_path / "sample.yaml"
    path.write_text(GOOD)
    wf = load_workflow(path)
    assert wf.name == "sample" and wf.source_path == str(path)
    assert wf.step_names == ["first", "second"]
    second = wf.step("second")
    assert second.priority is TaskPriority.HIGH and second.timeout == 5.0 and second.max_retries == 2
    assert second.resources["memory"] == {"gb": 0.5, "enforce": True}
    assert wf.params["rows"].default == 10 and wf.params["rows"].type == "integer"
    assert wf.params["mode"].choices == ["fast", "slow"]
    assert load_workflow(str(path)).step_names == ["first", "second"]  # a str path works too


def test_load_from_string_json_and_dict() -> None:
    assert load_workflow(GOOD).name == "sample"
    data = yaml.safe_load(GOOD)
    assert load_workflow(json.dumps(data)).step("second").priority is TaskPriority.HIGH
    assert workflow_from_dict(data).params["mode"].default == "fast"


def test_tab_indented_json_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "tabs.json"
    path.write_text(json.dumps(yaml.safe_load(GOOD), indent="\t"))
    assert load_workflow(path).step_names == ["first", "second"]


def test_malformed_yaml_is_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nsteps:\n  - name: a\n   module: shell\n")
    (problem,) = problems_of(path)
    assert problem.message.startswith("invalid YAML")
    assert problem.file == str(path) and problem.line == 4


def test_an_unknown_module_is_located_at_its_module_line(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("name: m\nsteps:\n  - name: a\n    module: shel\n    action: run\n")
    (problem,) = problems_of(path)
    assert "unknown action module 'shel'; did you mean 'shell'?" in problem.message
    assert problem.line == 4 and problem.path == "steps[0].module"


def test_a_misspelt_required_parameter_is_named_at_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("name: m\nsteps:\n  - name: a\n    module: shell\n    action: run\n"
                    "    parameters:\n      cwd: /tmp\n      comand: ls\n")
    (problem,) = problems_of(path)
    assert "has no parameter 'comand'; did you mean 'command'?" in problem.message
    assert problem.line == 8 and problem.path == "steps[0].parameters.comand"


def test_empty_and_comment_only_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert "empty" in problems_of(empty)[0].message
    comments = tmp_path / "comments.yaml"
    comments.write_text("# nothing here\n")
    assert "empty" in problems_of(comments)[0].message


def test_binary_and_non_utf8_files(tmp_path: Path) -> None:
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: x\n\x00\x01\x02")
    (problem,) = problems_of(binary)
    assert "binary" in problem.message and problem.line == 2
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    (problem,) = problems_of(latin)
    assert "not valid UTF-8" in problem.message and (problem.line, problem.column) == (1, 10)


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(MAX_WORKFLOW_BYTES + 1)  # sparse: refused by size, never parsed
    (problem,) = problems_of(big)
    assert "at most 10 MB" in problem.message


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "nope.yaml")[0].message == "no such file"
    assert "directory" in problems_of(tmp_path)[0].message


def test_a_pipe_nobody_writes_to_reads_as_empty_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "flow.yaml"
    os.mkfifo(fifo)  # no writer: a blocking open would wait forever
    assert problems_of(fifo)[0].message == "the file is empty"


def test_a_pipe_such_as_a_shells_process_substitution_is_read_like_a_file() -> None:
    read_end, write_end = os.pipe()  # what `orchtui validate <(generate)` hands over, as /dev/fd/N
    try:
        os.write(write_end, b"name: piped\nsteps:\n  - name: a\n")
        os.close(write_end)
        assert load_workflow(Path(f"/dev/fd/{read_end}")).name == "piped"
    finally:
        os.close(read_end)


def test_duplicate_keys_report_both_lines() -> None:
    problem = only(problems_of("name: a\nsteps:\n  - name: s\n    name: t\n"), "duplicate key")
    assert problem.message == "duplicate key 'name' (first on line 3)" and problem.line == 4


def test_merge_keys_may_be_overridden_without_a_duplicate() -> None:
    text = "name: m\nsteps:\n  - &base {name: a, module: builtin, action: noop}\n  - <<: *base\n    name: b\n"
    assert load_workflow(text).step_names == ["a", "b"]


def test_non_mapping_root() -> None:
    assert "must be a mapping" in problems_of("- a\n- b\n")[0].message


@pytest.mark.parametrize(("field", "value", "says"), [
    ("timeout", ".inf", "'timeout' must be a finite number, not inf"),
    ("timeout", ".nan", "'timeout' must be a finite number, not nan"),
    ("timeout", "10000000000", "'timeout' must be at most 2.592e+06, not 10000000000"),
    ("retry_delay", ".nan", "'retry_delay' must be a finite number"),
    ("retry_delay", "1.0e+300", "'retry_delay' must be at most 86400"),
    ("retry_backoff", "1.0e+300", "'retry_backoff' must be at most 1000"),
    ("retry_max_delay", ".inf", "'retry_max_delay' must be a finite number"),
])
def test_a_timer_no_scheduler_can_wait_for_is_refused_where_it_is_written(field: str, value: str, says: str) -> None:
    problems = problems_of(f"name: t\nsteps:\n  - name: a\n    {field}: {value}\n")
    assert only(problems, says).line == 4


def test_an_endless_timeout_is_refused_with_how_to_have_no_limit() -> None:
    problem = only(problems_of("name: t\nsteps:\n  - name: a\n    timeout: .inf\n"), "'timeout' must be a finite")
    assert problem.hint == "leave it out for no limit"


def test_wrong_types_are_all_reported_with_locations() -> None:
    text = "name: 5\nsteps:\n  - name: a\n    timeout: soon\n    max_retries: -1\n    dependencies: a\n    continue_on_failure: maybe\n"
    problems = problems_of(text)
    assert only(problems, "'name' must be a string").line == 1
    assert (only(problems, "'timeout' must be").line, only(problems, "'timeout' must be").column) == (4, 14)
    assert only(problems, "'max_retries' must be at least 0").line == 5
    assert only(problems, "'dependencies' must be a list").line == 6
    assert only(problems, "'continue_on_failure' must be true or false").line == 7


@pytest.mark.parametrize(("written", "described"), [
    ("123", "an integer"), ("true", "a boolean"), ("null", "null"), ("1.5", "a number"), ("[x]", "a list"),
    ("{a: 1}", "a mapping"), ("2024-01-01", "a date"),
])
def test_a_step_name_that_is_no_string_is_reported_not_dropped(written: str, described: str) -> None:
    text = f"name: w\nsteps:\n  - name: a\n    module: builtin\n    action: noop\n  - name: {written}\n"
    problem = only(problems_of(text), "step name must be a string")
    assert problem.message == f"step name must be a string, not {described}"
    assert (problem.line, problem.path) == (6, "steps[1].name") and "quote the value" in problem.hint


@pytest.mark.parametrize(("text", "column", "what"), [
    ('{"name": "x", "steps": [{"name": "a"},]}', 39, "Expecting value"),  # a trailing comma
    ('{"name": "x", # a comment\n "steps": []}', 15, "Expecting property name"),
])
def test_a_json_file_is_read_as_json_only(tmp_path: Path, text: str, column: int, what: str) -> None:
    # YAML would read both; every other JSON reader of the file would not.
    path = tmp_path / "wf.json"
    path.write_text(text)
    with pytest.raises(WorkflowValidationError) as caught:
        load_workflow(path)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (1, column) and problem.message.startswith(f"invalid JSON: {what}")
    assert "name the file .yaml" in problem.hint


def test_the_same_text_in_a_yaml_file_is_read_as_yaml(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text('{"name": "x", "steps": [{"name": "a", "module": "builtin", "action": "echo"},]}')
    assert load_workflow(path).step_names == ["a"]


def test_a_json_step_name_that_is_no_string_is_reported() -> None:
    problem = only(problems_of('{"name": "w", "steps": [{"name": 7}]}'), "step name must be a string")
    assert (problem.line, problem.column) == (1, 34)


_ONE_STEP = "name: w\nsteps:\n  - name: a\n    module: builtin\n    action: echo\n"


def test_values_nested_too_deep_are_a_located_problem_not_a_crash() -> None:
    depth = 5000  # libyaml composes recursively in C: far deeper, the process crashed
    text = _ONE_STEP + "    parameters: {message: " + "[" * depth + "x" + "]" * depth + "}\n"
    problem = only(problems_of(text), "levels deep")
    assert problem.message == f"values nest more than {MAX_NESTING} levels deep here"
    assert problem.line == 6


def test_json_nested_too_deep_is_a_located_problem() -> None:
    depth = 600  # parsed by json, then walked by Python: RecursionError before
    text = ('{"name": "w", "steps": [{"name": "a", "module": "builtin", "action": "echo", "parameters": '
            '{"message": ' + "[" * depth + "1" + "]" * depth + "}}]}")
    assert only(problems_of(text), "levels deep").line == 1


def test_aliases_that_expand_past_the_limit_are_a_problem() -> None:
    lines = ["name: w", "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]  # 10^7 values
    text = "\n".join(lines) + "\n" + _ONE_STEP.split("\n", 1)[1] + "    parameters: {message: *a6}\n"
    problem = only(problems_of(text), "its aliases expand the document by")
    assert problem.message.endswith("values by here, which is too many") and problem.line is not None


def test_a_merge_key_in_every_step_of_a_big_file_is_fine() -> None:
    defaults = "{" + ", ".join(f"k{i}: v{i}" for i in range(60)) + "}"  # ~60 values, merged 20k times
    lines = ["name: w",
             f"metadata: {{defaults: &d {{module: builtin, action: echo, parameters: {{message: {defaults}}}}}}}",
             "steps:"] + [f"  - {{<<: *d, name: s{i}}}" for i in range(20_000)]
    workflow = load_workflow("\n".join(lines) + "\n")
    assert len(workflow.steps) == 20_000 and workflow.steps[-1].parameters["message"]["k59"] == "v59"


def test_json_that_only_the_json_parser_reads_is_still_checked_for_depth() -> None:
    depth = 900  # a surrogate pair libyaml refuses: the YAML pass never saw this document
    text = ('{"name": "w", "steps": [{"name": "a", "module": "builtin", "action": "echo", "parameters": '
            '{"message": ' + "[" * depth + '"\\ud83d\\ude00"' + "]" * depth + "}}]}")
    problem = only(problems_of(text), "levels deep")
    assert problem.message == f"values nest more than {MAX_NESTING} levels deep here"
    assert (problem.line, problem.column) == (1, text.index("[[") + MAX_NESTING - 3)  # 4 levels open before


def test_a_few_aliases_of_small_values_are_fine() -> None:
    text = ("name: w\nmetadata: {env: &env {A: '1', B: '2'}}\nsteps:\n"
            "  - {name: a, module: builtin, action: echo, parameters: {message: *env}}\n"
            "  - {name: b, module: builtin, action: echo, parameters: {message: *env}}\n")
    assert load_workflow(text).step("b").parameters == {"message": {"A": "1", "B": "2"}}


def test_unknown_key_did_you_mean() -> None:
    problem = only(problems_of("name: a\nsteps:\n  - name: s\n    depends_on: [x]\n    timeot: 3\n"), "'timeot'")
    assert problem.hint == "did you mean 'timeout'?" and (problem.line, problem.column) == (5, 5)
    alias = only(problems_of("name: a\nsteps:\n  - name: s\n    depends_on: [x]\n"), "depends_on")
    assert alias.hint == "did you mean 'dependencies'?"


def test_unknown_dependency_names_closest_step() -> None:
    problem = only(problems_of("name: a\nsteps:\n  - name: build\n  - name: test\n    dependencies: [biuld]\n"), "unknown step")
    assert problem.hint == "did you mean 'build'?" and (problem.line, problem.column) == (5, 20)
    assert problem.path == "steps[1].dependencies[0]"


def test_unknown_dependency_without_a_close_match_lists_the_steps() -> None:
    problem = only(problems_of("name: a\nsteps:\n  - name: build\n  - name: test\n    dependencies: [zz]\n"), "unknown step")
    assert problem.hint == "steps here: build, test"


def test_self_dependency_and_reserved_name() -> None:
    problems = problems_of("name: a\nsteps:\n  - name: a1\n    dependencies: [a1]\n  - name: params\n")
    assert only(problems, "depends on itself").line == 4
    assert only(problems, "reserved word").line == 5
    assert "is not allowed" in only(problems_of("name: a\nsteps:\n  - name: 'bad name!'\n"), "step name").message


def test_cycle_is_reported_with_full_path() -> None:
    text = "name: c\nsteps:\n  - name: a\n    dependencies: [c]\n  - name: b\n    dependencies: [a]\n  - name: c\n    dependencies: [b]\n"
    problem = only(problems_of(text), "dependency cycle")
    assert problem.message == "dependency cycle: a -> b -> c -> a" and problem.line == 4


def test_duplicate_step_names() -> None:
    problem = only(problems_of("name: a\nsteps:\n  - name: s\n  - name: s\n"), "duplicate step name")
    assert "first defined on line 3" in problem.message and problem.line == 4


def test_priority_case_insensitive_and_bad_priority() -> None:
    wf = load_workflow("name: p\nsteps:\n  - {name: a, priority: Critical}\n  - {name: b, priority: 4}\n")
    assert [s.priority for s in wf.steps] == [TaskPriority.CRITICAL, TaskPriority.BACKGROUND]
    assert only(problems_of("name: p\nsteps:\n  - {name: a, priority: hihg}\n"), "priority").hint == "did you mean 'high'?"


def test_params_rules() -> None:
    problems = problems_of(
        "name: p\nparams:\n  n: {default: x, type: integer}\n  m: {default: z, choices: [a, b]}\n"
        "  r: {required: true, default: 1}\n  bad-name: 1\nsteps:\n  - name: s\n"
    )
    assert only(problems, "not of type integer").line == 3
    assert only(problems, "not one of its choices").line == 4
    assert only(problems, "required and also has a default").line == 5
    assert only(problems, "parameter name").line == 6


def test_resources_rules() -> None:
    problems = problems_of("name: r\nsteps:\n  - name: s\n    resources: {cpu: {cores: -1}, gpu: 2, memory: {enforce: yes_please}}\n")
    assert len([p for p in problems if "resource" in p.message]) == 3


def test_references_must_be_upstream_and_known() -> None:
    text = (
        "name: r\nparams: {rows: 1}\nsteps:\n"
        "  - name: a\n    module: builtin\n    action: echo\n    parameters: {message: '{{ b.output }} {{ params.rowz }}'}\n"
        "  - name: b\n    module: builtin\n    action: echo\n    parameters: {message: hi}\n"
    )
    problems = problems_of(text)
    assert only(problems, "not one of its dependencies").line == 7
    assert only(problems, "unknown parameter 'rowz'").hint == "did you mean 'rows'?"


NEAR_MISSES = (
    "name: r\nparams: {env: prod}\nsteps:\n"
    "  - {name: a, module: builtin, action: echo, parameters: {message: hi}}\n"
    "  - name: b\n    module: builtin\n    action: echo\n    dependencies: [a]\n"
    "    parameters: {message: '{message}'}\n"
)


@pytest.mark.parametrize(("written", "hint"), [
    ("{{ params }}", "write {{ params.<name> }}"),
    ("{{ a }}", "write {{ a.output }}"),
    ("{{ params.env | upper }}", "filters are not supported; write {{ params.env }}"),
    ("{{ a.output + 1 }}", "only {{ step.output.key }} and {{ params.name }} are references"),
])
def test_braces_meant_as_a_reference_that_are_none_are_located(written: str, hint: str) -> None:
    problem = only(problems_of(NEAR_MISSES.replace("{message}", written)), "not a reference")
    assert written in problem.message and problem.line == 9 and hint in problem.hint


@pytest.mark.parametrize("written", ["{{ name }}", "{{ .Values.image }}", "{{ ghost }}", "{{ a.output }} {{ params.env }}"])
def test_other_template_languages_braces_are_left_alone(written: str) -> None:
    assert load_workflow(NEAR_MISSES.replace("{message}", written)).step_names == ["a", "b"]


def test_a_step_status_in_parameters_is_located() -> None:
    problem = only(problems_of(NEAR_MISSES.replace("{message}", "{{ a.status }}")), "status exists only in conditions")
    assert problem.line == 9


def test_unknown_action_is_reported() -> None:
    problem = only(problems_of("name: a\nsteps:\n  - {name: s, module: builtin, action: slep}\n"), "slep")
    assert "sleep" in problem.message and problem.line == 3


def test_many_problems_are_reported_at_once() -> None:
    text = "name: a\nsteps:\n  - name: s\n    timeot: 1\n  - name: t\n    dependencies: [x]\n  - name: env\n"
    assert len(problems_of(text)) == 3


def test_error_message_names_file_line_and_count(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("name: a\nsteps:\n  - name: s\n    timeot: 1\n  - name: t\n    dependencies: [x]\n")
    with pytest.raises(WorkflowValidationError) as info:
        load_workflow(path)
    assert str(info.value).startswith(f"{path}:4:5: unknown step key 'timeot'")
    assert str(info.value).endswith("(and 1 more problem)")


def test_dict_problems_have_paths_but_no_lines() -> None:
    with pytest.raises(WorkflowValidationError) as info:
        workflow_from_dict({"name": "d", "steps": [{"name": "a", "dependencies": ["zz"]}]})
    (problem,) = info.value.problems
    assert problem.line is None and problem.path == "steps[0].dependencies[0]"


def test_dump_round_trip(tmp_path: Path) -> None:
    wf = load_workflow(GOOD)
    for fmt in ("yaml", "json"):
        again = load_workflow(dump_workflow(wf, fmt))
        assert again.to_dict() == wf.to_dict() | {"source_path": None}
    with pytest.raises(ValueError):
        dump_workflow(wf, "toml")


def test_find_and_load_directory(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yml").write_text("name: [\n")
    (tmp_path / "x.schema.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "resources.yaml").write_text("resources: []\n")  # the directory's pools and locks
    assert [p.name for p in find_workflow_files(tmp_path)] == ["a.yaml", "b.yml"]
    loaded = WorkflowDirectory(tmp_path).load()
    workflows = [f.workflow for f in loaded if f.workflow is not None]
    errors = [f.error for f in loaded if f.error is not None]
    assert [w.name for w in workflows] == ["sample"]
    assert len(errors) == 1 and errors[0].problems[0].file.endswith("b.yml")
    assert find_workflow_files(tmp_path / "missing") == []


def test_schema_accepts_good_and_rejects_bad() -> None:
    schema = workflow_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors(yaml.safe_load(GOOD)))
    bad = {"name": "x", "steps": [{"name": "params", "timeot": 1, "priority": "hihg"}]}
    assert len(list(validator.iter_errors(bad))) >= 3
    step = schema["$defs"]["step"]["properties"]
    assert step["priority"]["anyOf"][0]["enum"][:5] == TaskPriority.choices()
    assert all("description" in spec for spec in step.values())


def test_bundled_workflows_validate_and_match_the_schema(workflows_dir: Path) -> None:
    files = find_workflow_files(workflows_dir)
    assert {p.name for p in files} >= {"build_test_package.yaml", "data_pipeline.yaml", "resource_heavy.yaml", "demo.yaml"}
    validator = jsonschema.Draft202012Validator(workflow_json_schema())
    for path in files:
        load_workflow(path)
        assert not list(validator.iter_errors(yaml.safe_load(path.read_text()))), path
        assert path.read_text().startswith("# yaml-language-server: $schema=./orchtui.schema.json")


def test_bundled_schema_file_is_up_to_date(workflows_dir: Path) -> None:
    stored = json.loads((workflows_dir / "orchtui.schema.json").read_text())
    assert stored == workflow_json_schema(), "run: orchtui schema --output workflows/orchtui.schema.json"
