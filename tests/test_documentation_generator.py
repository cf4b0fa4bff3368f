"""DocumentationGenerator: {{variable}} rendering, project docs, workflow pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.documentation_generator import (
    DOC_FILES,
    DocumentationGenerator,
    TemplateError,
    find_placeholders,
    project_variables,
    render_template,
)
from core.errors import ProjectManagementError
from core.models import Project, ProjectType
from core.workflow_file import load_workflow


def test_substitutes_with_and_without_spaces() -> None:
    assert render_template("a {{x}} b {{ y }} c {{  x  }}", {"x": 1, "y": "two"}) == "a 1 b two c 1"


def test_lists_join_and_none_is_empty() -> None:
    assert render_template("[{{ tags }}] [{{ nothing }}] [{{ flag }}]", {"tags": ["a", "b"], "nothing": None, "flag": True}) == "[a, b] [] [yes]"


def test_missing_variables_are_all_listed() -> None:
    with pytest.raises(TemplateError) as info:
        render_template("{{ zeta }} {{ alpha }} {{ known }} {{ zeta }} {{ mid }}", {"known": 1}, source="doc.md")
    assert info.value.details["missing"] == ["alpha", "mid", "zeta"]
    assert "alpha, mid, zeta" in info.value.message and "doc.md" in info.value.message
    assert isinstance(info.value, ProjectManagementError)


def test_unclosed_placeholder_reports_line_and_column() -> None:
    with pytest.raises(TemplateError) as info:
        render_template("line one\n  {{ name\nmore", {"name": "x"}, source="t.md")
    assert "t.md:2:3" in info.value.message
    assert "not closed" in info.value.message


@pytest.mark.parametrize("text", ["{{ two words }}", "{{}}", "{{ 9lives }}", "{{ __import__('os').system('id') }}", "{{{ x }}}"])
def test_malformed_placeholders_are_errors(text: str) -> None:
    with pytest.raises(TemplateError) as info:
        render_template(text, {"x": 1, "two": 1, "words": 1})
    assert info.value.details["problems"]


def test_every_syntax_problem_is_collected() -> None:
    with pytest.raises(TemplateError) as info:
        render_template("{{ a b }}\n{{ open\n{{ ok }}", {"ok": 1})
    assert len(info.value.details["problems"]) == 2
    assert "and 1 more" in info.value.message


def test_quadruple_braces_are_literal_braces() -> None:
    # No variable called "name" is needed: the escaped form is not a placeholder.
    assert render_template("write {{{{ name }}}} for {{ what }}", {"what": "a variable"}) == "write {{ name }} for a variable"


def test_values_are_inserted_verbatim_not_expanded_again() -> None:
    assert render_template("{{ a }}", {"a": "{{ b }}", "b": "no"}) == "{{ b }}"


def test_find_placeholders_locates_each_use() -> None:
    found = find_placeholders("x\n {{ a }} {{b}}")
    assert [(p.name, p.line, p.column) for p in found] == [("a", 2, 2), ("b", 2, 10)]


def _project(tmp_path: Path, **changes: object) -> Project:
    values: dict[str, object] = dict(
        name="demo-proj", description="A demo.", type=ProjectType.RESEARCH, path=str(tmp_path / "demo-proj"),
        template="research", author="Ada", tags=["x", "y"], workflows=["experiment"], created_at=1_700_000_000.0,
    )
    values.update(changes)
    return Project(**values)  # type: ignore[arg-type]


def test_project_variables(tmp_path: Path) -> None:
    values = project_variables(_project(tmp_path))
    assert values["project_name"] == "demo-proj"
    assert values["project_title"] == "Demo Proj"
    assert values["created_date"] == "2023-11-14" and values["year"] == 2023
    assert values["tags"] == ["x", "y"] and values["type"] == "research"


def test_generate_project_docs_writes_the_rasp_set(tmp_path: Path) -> None:
    project = _project(tmp_path)
    written = DocumentationGenerator().generate_project_docs(
        project, tmp_path / "out", variables={"hypothesis": "it helps", "trials": 3}
    )
    assert [p.name for p in written] == list(DOC_FILES)
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert "{{" not in text and "Demo Proj" in text
    assert "it helps" in (tmp_path / "out" / "SPEC.md").read_text(encoding="utf-8")


def test_generate_project_docs_needs_template_variables(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as info:
        DocumentationGenerator().generate_project_docs(_project(tmp_path), tmp_path / "out")
    assert info.value.details["missing"] == ["hypothesis"] or "hypothesis" in info.value.details["missing"]
    assert not (tmp_path / "out").exists()


def test_user_templates_dir_overrides_doc_templates(tmp_path: Path) -> None:
    user = tmp_path / "templates" / "research"
    user.mkdir(parents=True)
    for name in DOC_FILES:
        (user / name).write_text(f"{name} of {{{{ project_name }}}} by {{{{ author }}}}\n", encoding="utf-8")
    written = DocumentationGenerator(tmp_path / "templates").generate_project_docs(_project(tmp_path), tmp_path / "o")
    assert written[0].read_text(encoding="utf-8") == "README.md of demo-proj by Ada\n"


def test_generate_project_docs_without_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ProjectManagementError, match="no directory"):
        DocumentationGenerator().generate_project_docs(_project(tmp_path, path=""))


WORKFLOW = """
name: release pipeline
description: Builds and ships.
tags: [ci]
params:
  target:
    type: string
    default: prod
    description: "where | to"
    choices: [prod, staging]
  dry_run: false
steps:
  - name: build
    module: builtin
    action: echo
    parameters: {message: hi}
    description: "compile | link"
    timeout: 30
  - name: test
    action: sleep
    parameters: {seconds: 0}
    dependencies: [build]
    max_retries: 2
    priority: high
  - name: ship
    dependencies: [build, test]
"""


def test_workflow_markdown_has_all_sections() -> None:
    workflow = load_workflow(WORKFLOW)
    text = DocumentationGenerator().workflow_markdown(workflow)
    assert text.startswith("# Workflow `release pipeline`")
    assert "Builds and ships." in text
    params = re.search(r"## Parameters\n\n(.*?)\n\n", text, re.S)
    assert params is not None
    rows = params.group(1).splitlines()
    assert rows[0] == "| name | type | default | required | description |"
    assert rows[2].startswith('| `target` | string | `"prod"` | no | where \\| to (one of prod, staging) |')
    assert rows[3].startswith("| `dry_run` | boolean | `false` | no |")
    steps = re.search(r"## Steps\n\n(.*?)\n\n", text, re.S)
    assert steps is not None
    step_rows = steps.group(1).splitlines()[2:]
    assert len(step_rows) == 3
    assert step_rows[0] == "| 1 | `build` | `builtin.echo` | — | 30 s | 0 | normal | compile \\| link |"
    assert "| 2 | `test` | `builtin.sleep` | `build` | — | 2 | high |" in step_rows[1]
    mermaid = re.search(r"```mermaid\n(.*?)\n```", text, re.S)
    assert mermaid is not None and mermaid.group(1).startswith(("flowchart", "graph"))
    assert mermaid.group(1).count("-->") == 3


def test_workflow_markdown_without_params() -> None:
    workflow = load_workflow("name: tiny\nsteps:\n  - name: only\n")
    text = DocumentationGenerator().workflow_markdown(workflow)
    assert "_This workflow takes no parameters._" in text and "_No description._" in text


def test_generate_workflow_docs_writes_the_page(tmp_path: Path) -> None:
    target = DocumentationGenerator().generate_workflow_docs(load_workflow(WORKFLOW), tmp_path / "docs" / "release.md")
    assert target.read_text(encoding="utf-8").count("```mermaid") == 1


def test_workflow_markdown_shows_defaults_exactly_in_code_spans() -> None:
    workflow = load_workflow("name: w\nparams:\n  path: {default: 'C:\\dir\\new'}\n"
                             "  tick: {default: 'a`b|c<img src=x>'}\nsteps:\n  - name: a\n")
    text = DocumentationGenerator().workflow_markdown(workflow)
    assert '| `path` | string | `"C:\\\\dir\\\\new"` |' in text  # the JSON, backslashes not doubled again
    assert '| `tick` | string | `` "a`b\\|c<img src=x>" `` |' in text  # a longer fence holds the backtick


def test_workflow_markdown_shows_version_and_tags_as_plain_text() -> None:
    workflow = load_workflow('name: w\nversion: "1.0\\n\\n## Fake"\ntags: ["a|b", "<b>x</b>"]\nsteps:\n  - name: a\n')
    text = DocumentationGenerator().workflow_markdown(workflow)
    assert "**Version:** 1.0 \\#\\# Fake  \n" in text and "\n## Fake" not in text
    assert "**Tags:** a\\|b, \\<b\\>x\\</b\\>\n" in text


def test_generate_workflow_docs_refuses_to_overwrite_the_workflow_file(tmp_path: Path) -> None:
    source = tmp_path / "w.yaml"
    source.write_text("name: w\nsteps:\n  - name: a\n", encoding="utf-8")
    with pytest.raises(ProjectManagementError, match="is the file of workflow 'w' itself"):
        DocumentationGenerator().generate_workflow_docs(load_workflow(source), source)
    assert source.read_text(encoding="utf-8").startswith("name: w")


def test_generate_workflow_docs_replaces_the_old_page_whole(tmp_path: Path) -> None:
    page = tmp_path / "docs" / "w.md"
    page.parent.mkdir()
    page.write_text("old page\n", encoding="utf-8")
    with page.open(encoding="utf-8") as reader:  # a reader of the old page keeps reading it whole
        DocumentationGenerator().generate_workflow_docs(load_workflow(WORKFLOW), page)
        assert reader.read() == "old page\n"
    assert page.read_text(encoding="utf-8").startswith("# Workflow `release pipeline`")
    assert [p.name for p in page.parent.iterdir()] == ["w.md"]  # no temporary file left
